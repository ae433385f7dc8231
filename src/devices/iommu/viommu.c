// SPDX-License-Identifier: MIT
#include "devices/iommu/viommu.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "iommu/inflight.h"
#include "iommu/iova.h"
#include "iommu/registry.h"
#include "util/efd.h"
#include "util/log.h"
#include "util/time.h"
#include "util/le.h"
#include "util/ser.h"

#define REQ_Q 0
#define EVENT_Q 1
#define EP_CACHE 4
/* How long a removal waits for the endpoint's requests in flight. */
#define DRAIN_MS 1000
/* How long a remote endpoint's replay of a domain may take in all. */
#define REPLAY_BUDGET_NS 2000000000ull

struct viommu;

struct viommu_domain {
	uint32_t id; /* the guest's (local) ID */
	uint32_t global; /* the host's ID for the address space */
	bool bypass;
	struct iova_space space;
};

struct viommu_ep {
	struct viommu *v;
	uint32_t id;
	bool used;
	struct viommu_domain *domain; /* NULL: not attached */
	struct virtq_dma dma;
	struct dma_inflight infl; /* in-process: requests in flight */
	/* Out of process: its server keeps its own table (NULL: local). */
	const struct viommu_remote_ops *remote;
	void *remote_opaque;
	/* Copies of recently used mappings; cleared by every request that
	 * changes what the endpoint sees, before it completes. */
	struct iova_map cache[EP_CACHE];
	bool cache_valid[EP_CACHE];
	unsigned cache_next;
};

struct viommu_fault {
	uint8_t reason;
	uint32_t flags, endpoint;
	uint64_t address;
};

struct viommu {
	struct virtio_dev dev;
	struct viommu_config cfg;
	struct ioasid_sys ids;
	struct ioasid_set *set;
	struct virtq_chain chain;

	/* Guards everything below: taken by requests (IOMMU thread) and
	 * translations (endpoint threads). */
	pthread_mutex_t xlate_lock;
	struct iova_quota quota;
	struct viommu_ep ep[VIOMMU_MAX_ENDPOINTS];
	uint32_t nr_domains;
	uint8_t bypass_cfg; /* the config field */
	bool bypass_now; /* what unattached endpoints get */
	struct viommu_fault pending[VIOMMU_MAX_PENDING_FAULTS];
	unsigned pend_head, pend_nr;
	uint64_t faults, faults_dropped;
	/* Numbers the changes remote endpoints are told about (their
	 * snapshots say up to which one they are current). */
	uint64_t seq;
	uint64_t drain_timeouts, remote_errors;
	/* poll_requests' counts: written with the device lock held,
	 * read relaxed by viommu_get_stats. */
	uint64_t polls, poll_hits;
	uint64_t gap_ns; /* poll_requests' average gap; device lock */

	/* Fault delivery from a thread that found the device lock taken:
	 * the I/O thread (watch fd) delivers them. */
	int fault_efd;
	struct ioasid_registry registry;
	bool have_registry;
};

/* What a request changed for which endpoints, applied after xlate_lock
 * is dropped (waits and round trips must not hold it: translations take
 * it). The device lock stays held, so no other request changes a domain
 * meanwhile. */
enum effect_kind { EF_NONE, EF_MAP, EF_UNMAP, EF_RESET };
struct effect {
	enum effect_kind kind;
	uint32_t local_mask, remote_mask; /* endpoint slots */
	uint64_t start, last, phys;
	uint32_t perm;
	/* EF_RESET: every endpoint in remote_mask goes to this endpoint
	 * state: a domain (mappings replayed), bypass, or blocked. */
	struct viommu_domain *dom;
	bool bypass;
	uint64_t seq;
};

static struct viommu *to_v(struct virtio_dev *d)
{
	return d->priv;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void cache_clear(struct viommu_ep *ep)
{
	memset(ep->cache_valid, 0, sizeof(ep->cache_valid));
}

/* Every endpoint that sees dom (all of them for NULL) forgets what it
 * cached. xlate_lock held. */
static void invalidate(struct viommu *v, const struct viommu_domain *dom)
{
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++)
		if (v->ep[i].used && (!dom || v->ep[i].domain == dom))
			cache_clear(&v->ep[i]);
}

/* ---- Faults ---------------------------------------------------------- */

static void queue_fault(struct viommu *v, const struct viommu_fault *f)
{
	v->faults++;
	if (v->pend_nr == VIOMMU_MAX_PENDING_FAULTS) {
		v->faults_dropped++;
		return;
	}
	v->pending[(v->pend_head + v->pend_nr) % VIOMMU_MAX_PENDING_FAULTS] =
		*f;
	v->pend_nr++;
}

/* Moves pending faults into eventq buffers while there are both. Device
 * lock held (it takes xlate_lock itself). */
static void deliver_faults_locked(struct viommu *v)
{
	struct virtio_dev *d = &v->dev;
	struct virtq_chain *c = &v->chain;
	bool pushed = false;

	if (d->broken || !(d->status & VIRTIO_STATUS_DRIVER_OK) ||
	    !d->vq[EVENT_Q].ready)
		return;
	for (;;) {
		struct viommu_fault f;
		uint8_t rec[VIOMMU_FAULT_LEN] = { 0 };
		bool have;

		pthread_mutex_lock(&v->xlate_lock);
		have = v->pend_nr > 0;
		if (have)
			f = v->pending[v->pend_head];
		pthread_mutex_unlock(&v->xlate_lock);
		if (!have || virtio_dev_pop(d, EVENT_Q, c) <= 0)
			break;
		pthread_mutex_lock(&v->xlate_lock);
		v->pend_head = (v->pend_head + 1) % VIOMMU_MAX_PENDING_FAULTS;
		v->pend_nr--;
		pthread_mutex_unlock(&v->xlate_lock);
		rec[0] = f.reason;
		put32(rec + 4, f.flags);
		put32(rec + 8, f.endpoint);
		put64(rec + 16, f.address);
		/* A buffer too small for a record gets what fits (the
		 * driver's own sizing error); a readable one gets nothing. */
		virtq_push(&d->vq[EVENT_Q], c->head,
			   virtq_chain_write(c, 0, rec, sizeof(rec)));
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_queue(d, EVENT_Q);
}

/* Delivers pending faults now if the device lock is free, else leaves
 * them to the I/O thread: an endpoint thread must never wait for the
 * IOMMU's lock, which the IOMMU holds while it waits for the endpoint's
 * requests to drain. */
static void kick_faults(struct viommu *v)
{
	uint64_t one = 1;
	ssize_t n;

	if (pthread_mutex_trylock(&v->dev.lock) == 0) {
		deliver_faults_locked(v);
		pthread_mutex_unlock(&v->dev.lock);
		return;
	}
	/* Non-blocking and ours: at worst EAGAIN, and then it is set. */
	n = write(v->fault_efd, &one, sizeof(one));
	(void)n;
}

static void viommu_fd_ready(struct virtio_dev *d, int fd)
{
	uint64_t val;
	ssize_t n = read(fd, &val, sizeof(val));

	(void)n;
	deliver_faults_locked(to_v(d));
}

/* ---- Translation (endpoint threads) ---------------------------------- */

static const struct iova_map *lookup(struct viommu_ep *ep, uint64_t iova)
{
	const struct iova_map *m;

	for (int i = 0; i < EP_CACHE; i++)
		if (ep->cache_valid[i] && ep->cache[i].start <= iova &&
		    iova <= ep->cache[i].last)
			return &ep->cache[i];
	m = iova_space_find(&ep->domain->space, iova);
	if (m) {
		ep->cache[ep->cache_next] = *m;
		ep->cache_valid[ep->cache_next] = true;
		ep->cache_next = (ep->cache_next + 1) % EP_CACHE;
	}
	return m;
}

static int ep_translate(void *opaque, int token, uint64_t iova, uint64_t len,
			bool write, uint64_t *gpa, uint64_t *plen)
{
	struct viommu_ep *ep = opaque;
	struct viommu *v = ep->v;
	struct viommu_fault f = { 0 };
	const struct iova_map *m;
	uint32_t need = write ? IOVA_PERM_WRITE : IOVA_PERM_READ;
	int ret = 0;

	if (len == 0)
		return -EFAULT;
	pthread_mutex_lock(&v->xlate_lock);
	if ((!ep->domain && v->bypass_now) ||
	    (ep->domain && ep->domain->bypass)) {
		*gpa = iova;
		*plen = len;
		goto record;
	}
	f.endpoint = ep->id;
	f.flags = write ? VIRTIO_IOMMU_FAULT_F_WRITE :
			  VIRTIO_IOMMU_FAULT_F_READ;
	if (!ep->domain) {
		f.reason = VIRTIO_IOMMU_FAULT_R_DOMAIN;
		ret = -EFAULT;
		goto out;
	}
	m = lookup(ep, iova);
	if (!m || !(m->perm & need)) {
		f.reason = VIRTIO_IOMMU_FAULT_R_MAPPING;
		f.flags |= VIRTIO_IOMMU_FAULT_F_ADDRESS;
		f.address = iova;
		ret = -EFAULT;
		goto out;
	}
	*gpa = m->phys + (iova - m->start);
	/* Bytes left in this mapping, without overflowing at 2^64. */
	*plen = m->last - iova >= len - 1 ? len : m->last - iova + 1;
record:
	/* Under xlate_lock, like the table: a removal that changes the
	 * table after this sees the range recorded. */
	dma_inflight_record(&ep->infl, token, iova, iova + (*plen - 1));
out:
	if (ret)
		queue_fault(v, &f);
	pthread_mutex_unlock(&v->xlate_lock);
	if (ret)
		kick_faults(v);
	return ret;
}

static int ep_begin(void *opaque)
{
	return dma_inflight_begin(&((struct viommu_ep *)opaque)->infl);
}

static void ep_end(void *opaque, int token)
{
	dma_inflight_end(&((struct viommu_ep *)opaque)->infl, token);
}

/* ---- Domains --------------------------------------------------------- */

static void domain_freed(void *opaque, uint32_t id, void *priv)
{
	struct viommu *v = opaque;
	struct viommu_domain *dom = priv;

	iova_space_fini(&dom->space);
	free(dom);
	v->nr_domains--;
}

static struct viommu_domain *find_domain(struct viommu *v, uint32_t id)
{
	uint32_t global;
	void *priv;

	if (ioasid_local_to_global(v->set, id, &global) < 0 ||
	    ioasid_find(v->set, global, &priv) < 0)
		return NULL;
	return priv;
}

static struct viommu_ep *find_ep(struct viommu *v, uint32_t id)
{
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++)
		if (v->ep[i].used && v->ep[i].id == id)
			return &v->ep[i];
	return NULL;
}

/* The endpoint leaves its domain; the last one frees the domain and its
 * mappings (through the IOASID free notifier). */
static void ep_detach(struct viommu *v, struct viommu_ep *ep)
{
	struct viommu_domain *dom = ep->domain;

	if (!dom)
		return;
	ep->domain = NULL;
	cache_clear(ep);
	ioasid_put(v->set, dom->global);
}

/* The endpoints that see dom, split by where their table lives. */
static void eps_of(struct viommu *v, const struct viommu_domain *dom,
		   struct effect *ef)
{
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++) {
		struct viommu_ep *ep = &v->ep[i];

		if (!ep->used || ep->domain != dom)
			continue;
		if (ep->remote)
			ef->remote_mask |= 1u << i;
		else
			ef->local_mask |= 1u << i;
	}
}

/* ep now sees what ep->domain (or, unattached, bypass_now) says. */
static void ep_changed(struct viommu *v, struct viommu_ep *ep,
		       struct effect *ef)
{
	int i = (int)(ep - v->ep);

	ef->kind = EF_RESET;
	ef->dom = ep->domain;
	ef->bypass = ep->domain ? ep->domain->bypass : v->bypass_now;
	if (ep->remote)
		ef->remote_mask |= 1u << i;
	else
		ef->local_mask |= 1u << i;
}

static uint8_t do_attach(struct viommu *v, const uint8_t *r, struct effect *ef)
{
	uint32_t domain = le32(r + 4), endpoint = le32(r + 8);
	uint32_t flags = le32(r + 12);
	bool bypass = flags & VIRTIO_IOMMU_ATTACH_F_BYPASS;
	struct viommu_domain *dom;
	struct viommu_ep *ep;
	int ret;

	if (!all_zero(r + 16, 4) || (flags & ~VIRTIO_IOMMU_ATTACH_F_BYPASS))
		return VIRTIO_IOMMU_S_INVAL;
	if (bypass &&
	    !virtio_has_feature(&v->dev, VIRTIO_IOMMU_F_BYPASS_CONFIG))
		return VIRTIO_IOMMU_S_INVAL;
	ep = find_ep(v, endpoint);
	if (!ep)
		return VIRTIO_IOMMU_S_NOENT;
	if (domain > v->cfg.domain_end)
		return VIRTIO_IOMMU_S_RANGE;
	dom = find_domain(v, domain);
	if (dom) {
		/* A domain is either translated or bypass for its life. */
		if (dom->bypass != bypass)
			return VIRTIO_IOMMU_S_INVAL;
		if (ep->domain == dom)
			return VIRTIO_IOMMU_S_OK;
		if (ioasid_get(v->set, dom->global) < 0)
			return VIRTIO_IOMMU_S_DEVERR;
	} else {
		dom = calloc(1, sizeof(*dom));
		if (!dom)
			return VIRTIO_IOMMU_S_NOMEM;
		dom->id = domain;
		dom->bypass = bypass;
		iova_space_init(&dom->space, v->cfg.max_maps_per_domain,
				&v->quota);
		ret = ioasid_bind_local(v->set, domain, dom, &dom->global);
		if (ret < 0) {
			free(dom);
			/* Quota or ID space exhausted: the guest asked for
			 * more domains than it may hold. */
			return ret == -EDQUOT || ret == -ENOSPC ||
					       ret == -ENOMEM ?
				       VIRTIO_IOMMU_S_NOMEM :
				       VIRTIO_IOMMU_S_DEVERR;
		}
		v->nr_domains++;
	}
	/* Moving to another domain detaches from the old one first
	 * (5.13.6.3); the endpoint's cache goes either way. */
	ep_detach(v, ep);
	ep->domain = dom;
	cache_clear(ep);
	ep_changed(v, ep, ef);
	return VIRTIO_IOMMU_S_OK;
}

static uint8_t do_detach(struct viommu *v, const uint8_t *r, struct effect *ef)
{
	uint32_t domain = le32(r + 4), endpoint = le32(r + 8);
	struct viommu_ep *ep;

	if (!all_zero(r + 12, 8))
		return VIRTIO_IOMMU_S_INVAL;
	ep = find_ep(v, endpoint);
	if (!ep)
		return VIRTIO_IOMMU_S_NOENT;
	if (!ep->domain || ep->domain->id != domain)
		return VIRTIO_IOMMU_S_INVAL;
	ep_detach(v, ep);
	ep_changed(v, ep, ef);
	return VIRTIO_IOMMU_S_OK;
}

static uint8_t do_map(struct viommu *v, const uint8_t *r, struct effect *ef)
{
	uint32_t domain = le32(r + 4), flags = le32(r + 32);
	uint64_t start = le64(r + 8), last = le64(r + 16), phys = le64(r + 24);
	uint64_t gran = VIOMMU_PAGE_SIZE_MASK & -VIOMMU_PAGE_SIZE_MASK;
	uint32_t known = VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE |
			 VIRTIO_IOMMU_MAP_F_MMIO;
	struct viommu_domain *dom;
	uint32_t perm = 0;

	if (flags & ~known)
		return VIRTIO_IOMMU_S_INVAL;
	if ((flags & VIRTIO_IOMMU_MAP_F_MMIO) &&
	    !virtio_has_feature(&v->dev, VIRTIO_IOMMU_F_MMIO))
		return VIRTIO_IOMMU_S_INVAL;
	dom = find_domain(v, domain);
	if (!dom)
		return VIRTIO_IOMMU_S_NOENT;
	if (dom->bypass)
		return VIRTIO_IOMMU_S_INVAL;
	if (last < start)
		return VIRTIO_IOMMU_S_INVAL;
	/* virt_end + 1 may wrap to 0 at 2^64, which is aligned; the input
	 * range check below refuses it anyway. */
	if ((start | phys | (last + 1)) & (gran - 1))
		return VIRTIO_IOMMU_S_RANGE;
	if (last > VIOMMU_INPUT_END || phys + (last - start) < phys)
		return VIRTIO_IOMMU_S_RANGE;
	if (flags & VIRTIO_IOMMU_MAP_F_READ)
		perm |= IOVA_PERM_READ;
	if (flags & VIRTIO_IOMMU_MAP_F_WRITE)
		perm |= IOVA_PERM_WRITE;
	if (flags & VIRTIO_IOMMU_MAP_F_MMIO)
		perm |= IOVA_PERM_MMIO;
	switch (iova_space_map(&dom->space, start, last, phys, perm)) {
	case 0:
		*ef = (struct effect){ .kind = EF_MAP,
				       .start = start,
				       .last = last,
				       .phys = phys,
				       .perm = perm,
				       .dom = dom };
		eps_of(v, dom, ef);
		return VIRTIO_IOMMU_S_OK;
	case -EEXIST:
		return VIRTIO_IOMMU_S_INVAL;
	case -ENOSPC:
	case -EDQUOT:
	case -ENOMEM:
		return VIRTIO_IOMMU_S_NOMEM;
	default:
		return VIRTIO_IOMMU_S_RANGE;
	}
}

static uint8_t do_unmap(struct viommu *v, const uint8_t *r, struct effect *ef)
{
	uint32_t domain = le32(r + 4);
	uint64_t start = le64(r + 8), last = le64(r + 16);
	struct viommu_domain *dom;
	uint32_t removed = 0;
	int ret;

	dom = find_domain(v, domain);
	if (!dom)
		return VIRTIO_IOMMU_S_NOENT;
	if (dom->bypass || last < start)
		return VIRTIO_IOMMU_S_INVAL;
	ret = iova_space_unmap(&dom->space, start, last, &removed);
	if (ret == -ERANGE)
		return VIRTIO_IOMMU_S_RANGE;
	if (ret < 0)
		return VIRTIO_IOMMU_S_INVAL;
	invalidate(v, dom);
	/* Nothing removed: no request can be using it. */
	if (removed) {
		*ef = (struct effect){ .kind = EF_UNMAP,
				       .start = start,
				       .last = last,
				       .dom = dom };
		eps_of(v, dom, ef);
	}
	return VIRTIO_IOMMU_S_OK;
}

/* ---- Making a change true for the endpoints (xlate_lock dropped) ------ */

static int remote_apply(struct viommu *v, struct viommu_ep *ep,
			const struct effect *ef)
{
	const struct viommu_remote_ops *o = ep->remote;
	uint64_t t0 = now_ns();
	uint32_t mode;
	int ret;

	switch (ef->kind) {
	case EF_MAP:
		return o->map(ep->remote_opaque, ef->seq, ef->start, ef->last,
			      ef->phys,
			      ef->perm & (IOVA_PERM_READ | IOVA_PERM_WRITE));
	case EF_UNMAP:
		return o->unmap(ep->remote_opaque, ef->seq, ef->start,
				ef->last);
	case EF_RESET:
		mode = ef->bypass ? VIOMMU_EP_BYPASS :
		       ef->dom	  ? VIOMMU_EP_TRANSLATE :
				    VIOMMU_EP_BLOCK;
		ret = o->reset(ep->remote_opaque, ef->seq, mode);
		/* The device lock is held: no request changes the domain's
		 * table while it is walked without xlate_lock. Each answer
		 * is bounded, and so is the whole replay: a server that
		 * answers slowly gets the request failed, and at worst
		 * lacks mappings (its device's DMA then faults). */
		for (uint32_t i = 0; !ret && mode == VIOMMU_EP_TRANSLATE &&
				     i < ef->dom->space.nr;
		     i++) {
			const struct iova_map *m = &ef->dom->space.maps[i];

			if (now_ns() - t0 > REPLAY_BUDGET_NS)
				return -ETIMEDOUT;
			ret = o->map(ep->remote_opaque, ef->seq, m->start,
				     m->last, m->phys,
				     m->perm & (IOVA_PERM_READ |
						IOVA_PERM_WRITE));
		}
		return ret;
	default:
		return 0;
	}
}

/* Waits for the local endpoints' requests that may use what was removed
 * and tells the remote ones (each confirms the same). Device lock held,
 * xlate_lock not. 0, or the first failure (-ETIMEDOUT: a device did not
 * complete its requests in time; else the server's answer or lack of
 * one). */
static int propagate(struct viommu *v, const struct effect *ef)
{
	int ret = 0;

	if (ef->kind == EF_NONE)
		return 0;
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++) {
		uint32_t bit = 1u << i;
		int r = 0;

		/* UNMAP: the requests that use its range; the others
		 * (ATTACH, DETACH, a mode change) took everything away. */
		if ((ef->local_mask & bit) && ef->kind != EF_MAP &&
		    dma_inflight_drain(&v->ep[i].infl,
				       ef->kind == EF_UNMAP ? ef->start : 0,
				       ef->kind == EF_UNMAP ? ef->last :
							      UINT64_MAX,
				       DRAIN_MS) < 0) {
			r = -ETIMEDOUT;
			v->drain_timeouts++;
			log_warn("virtio-iommu: endpoint %u: requests still in "
				 "flight after %d ms: the removal fails",
				 v->ep[i].id, DRAIN_MS);
		}
		if (ef->remote_mask & bit) {
			r = remote_apply(v, &v->ep[i], ef);
			if (r)
				v->remote_errors++;
		}
		if (r && !ret)
			ret = r;
	}
	return ret;
}

/* Numbers a change remote endpoints must hear of. xlate_lock held. */
static void number(struct viommu *v, struct effect *ef)
{
	if (ef->remote_mask)
		ef->seq = ++v->seq;
}

/* PROBE: the properties go at the start of the writable part, which must
 * hold probe_size bytes before the tail. */
static uint8_t do_probe(struct viommu *v, const uint8_t *r,
			const struct virtq_chain *c)
{
	uint8_t props[VIOMMU_PROBE_SIZE] = { 0 };

	if (!all_zero(r + 8, 64))
		return VIRTIO_IOMMU_S_INVAL;
	if (!find_ep(v, le32(r + 4)))
		return VIRTIO_IOMMU_S_NOENT;
	if (c->write_len < VIOMMU_PROBE_SIZE + VIOMMU_TAIL_LEN)
		return VIRTIO_IOMMU_S_INVAL;
	/* The x86 MSI doorbell: the driver must never map IOVAs there. */
	put16(props, VIRTIO_IOMMU_PROBE_T_RESV_MEM);
	put16(props + 2, 20);
	props[4] = VIRTIO_IOMMU_RESV_MEM_T_MSI;
	put64(props + 8, VIOMMU_MSI_START);
	put64(props + 16, VIOMMU_MSI_END);
	/* The rest stays zero: a NONE property ends the list. */
	virtq_chain_write(c, 0, props, sizeof(props));
	return VIRTIO_IOMMU_S_OK;
}

static uint8_t handle_request(struct viommu *v, const struct virtq_chain *c)
{
	uint8_t r[VIOMMU_PROBE_LEN];
	struct effect ef = { .kind = EF_NONE };
	uint32_t need;
	uint8_t st;
	int ret;

	if (c->read_len < 4)
		return VIRTIO_IOMMU_S_INVAL;
	virtq_chain_read(c, 0, r, 4);
	switch (r[0]) {
	case VIRTIO_IOMMU_T_ATTACH:
		need = VIOMMU_ATTACH_LEN;
		break;
	case VIRTIO_IOMMU_T_DETACH:
		need = VIOMMU_DETACH_LEN;
		break;
	case VIRTIO_IOMMU_T_MAP:
		need = VIOMMU_MAP_LEN;
		break;
	case VIRTIO_IOMMU_T_UNMAP:
		need = VIOMMU_UNMAP_LEN;
		break;
	case VIRTIO_IOMMU_T_PROBE:
		need = VIOMMU_PROBE_LEN;
		break;
	default:
		return VIRTIO_IOMMU_S_UNSUPP;
	}
	if (c->read_len < need)
		return VIRTIO_IOMMU_S_INVAL;
	/* Copy once: the guest may change the buffer under us. */
	virtq_chain_read(c, 0, r, need);
	pthread_mutex_lock(&v->xlate_lock);
	switch (r[0]) {
	case VIRTIO_IOMMU_T_ATTACH:
		st = do_attach(v, r, &ef);
		break;
	case VIRTIO_IOMMU_T_DETACH:
		st = do_detach(v, r, &ef);
		break;
	case VIRTIO_IOMMU_T_MAP:
		st = do_map(v, r, &ef);
		break;
	case VIRTIO_IOMMU_T_UNMAP:
		st = do_unmap(v, r, &ef);
		break;
	default:
		st = do_probe(v, r, c);
		break;
	}
	number(v, &ef);
	pthread_mutex_unlock(&v->xlate_lock);
	/* The request completes once every endpoint's device is done with
	 * what it removed (and a remote one has what it added). */
	ret = propagate(v, &ef);
	if (!ret)
		return st;
	if (ef.kind == EF_MAP) {
		struct effect undo = { .kind = EF_UNMAP,
				       .start = ef.start,
				       .last = ef.last,
				       .dom = ef.dom };

		/* The guest is told the MAP failed: no endpoint may keep
		 * it, the servers that took it included. */
		pthread_mutex_lock(&v->xlate_lock);
		iova_space_unmap(&ef.dom->space, ef.start, ef.last, NULL);
		invalidate(v, ef.dom);
		eps_of(v, ef.dom, &undo);
		undo.local_mask = 0; /* never used a mapping it never had */
		number(v, &undo);
		pthread_mutex_unlock(&v->xlate_lock);
		propagate(v, &undo);
		return ret == -ENOSPC || ret == -ENOMEM || ret == -EDQUOT ?
			       VIRTIO_IOMMU_S_NOMEM :
			       VIRTIO_IOMMU_S_DEVERR;
	}
	/* The table says the mapping is gone, but some device may still
	 * use it: the guest must not reuse the memory. */
	return VIRTIO_IOMMU_S_DEVERR;
}

/* ---- virtio_dev_ops -------------------------------------------------- */

static uint64_t viommu_features(struct virtio_dev *d)
{
	return 1ull << VIRTIO_IOMMU_F_INPUT_RANGE |
	       1ull << VIRTIO_IOMMU_F_DOMAIN_RANGE |
	       1ull << VIRTIO_IOMMU_F_MAP_UNMAP | 1ull << VIRTIO_IOMMU_F_PROBE |
	       1ull << VIRTIO_IOMMU_F_MMIO |
	       1ull << VIRTIO_IOMMU_F_BYPASS_CONFIG;
}

static void viommu_config_read(struct virtio_dev *d, uint32_t off,
			       uint8_t *data, uint32_t len)
{
	struct viommu *v = to_v(d);
	uint8_t cfg[VIOMMU_CONFIG_SIZE] = { 0 };

	put64(cfg + VIOMMU_CFG_PAGE_SIZE_MASK, VIOMMU_PAGE_SIZE_MASK);
	put64(cfg + VIOMMU_CFG_INPUT_START, 0);
	put64(cfg + VIOMMU_CFG_INPUT_END, VIOMMU_INPUT_END);
	put32(cfg + VIOMMU_CFG_DOMAIN_START, 0);
	put32(cfg + VIOMMU_CFG_DOMAIN_END, v->cfg.domain_end);
	put32(cfg + VIOMMU_CFG_PROBE_SIZE, VIOMMU_PROBE_SIZE);
	pthread_mutex_lock(&v->xlate_lock);
	cfg[VIOMMU_CFG_BYPASS] = v->bypass_cfg;
	pthread_mutex_unlock(&v->xlate_lock);
	memcpy(data, cfg + off, len);
}

/* Every unattached endpoint now sees bypass_now. xlate_lock held. */
static void unattached_changed(struct viommu *v, struct effect *ef)
{
	*ef = (struct effect){ .kind = EF_RESET, .bypass = v->bypass_now };
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++)
		if (v->ep[i].used && !v->ep[i].domain)
			*(v->ep[i].remote ? &ef->remote_mask :
					    &ef->local_mask) |= 1u << i;
	number(v, ef);
}

static void viommu_config_write(struct virtio_dev *d, uint32_t off,
				const uint8_t *data, uint32_t len)
{
	struct viommu *v = to_v(d);
	struct effect ef;

	/* Only bypass is writable, and only once the driver took
	 * BYPASS_CONFIG (5.13.4.2); other writes are ignored. */
	if (off != VIOMMU_CFG_BYPASS || len != 1 ||
	    !virtio_has_feature(d, VIRTIO_IOMMU_F_BYPASS_CONFIG))
		return;
	pthread_mutex_lock(&v->xlate_lock);
	v->bypass_cfg = data[0] ? 1 : 0;
	v->bypass_now = v->bypass_cfg;
	invalidate(v, NULL);
	unattached_changed(v, &ef);
	pthread_mutex_unlock(&v->xlate_lock);
	if (propagate(v, &ef))
		log_warn("virtio-iommu: bypass %u: not every endpoint "
			 "confirmed it",
			 data[0] ? 1 : 0);
}

static int viommu_activate(struct virtio_dev *d)
{
	struct viommu *v = to_v(d);

	/* Without BYPASS_CONFIG (and without the legacy BYPASS, which is
	 * not offered) unattached endpoints are blocked. */
	struct effect ef;
	bool was;

	pthread_mutex_lock(&v->xlate_lock);
	was = v->bypass_now;
	v->bypass_now = virtio_has_feature(d, VIRTIO_IOMMU_F_BYPASS_CONFIG) &&
			v->bypass_cfg;
	if (was != v->bypass_now) {
		invalidate(v, NULL);
		unattached_changed(v, &ef);
	} else {
		ef.kind = EF_NONE;
	}
	pthread_mutex_unlock(&v->xlate_lock);
	if (propagate(v, &ef))
		log_warn("virtio-iommu: not every endpoint confirmed the "
			 "bypass mode");
	return 0;
}

/* Runs the requests there are, at most max: 0 once the queue is empty,
 * 1 when max were run (more may wait), -1 once the device broke. */
static int run_requests(struct viommu *v, int q, unsigned int max)
{
	struct virtio_dev *d = &v->dev;
	struct virtq_chain *c = &v->chain;
	bool pushed = false;
	unsigned int n = 0;
	int r = 0;

	while (n < max && (r = virtio_dev_pop(d, q, c)) > 0) {
		uint8_t tail[VIOMMU_TAIL_LEN] = { 0 };

		n++;
		if (c->write_len < VIOMMU_TAIL_LEN) {
			/* Nowhere to put a status: the request is not run,
			 * and the driver gets it back with 0 bytes. */
			virtq_push(&d->vq[q], c->head, 0);
			pushed = true;
			continue;
		}
		tail[0] = handle_request(v, c);
		virtq_chain_write(c, c->write_len - VIOMMU_TAIL_LEN, tail,
				  sizeof(tail));
		virtq_push(&d->vq[q], c->head, c->write_len);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_queue(d, q);
	if (d->broken || (n < max && r < 0))
		return -1;
	return n < max ? 0 : 1;
}

/* Linux waits for each MAP (one per buffer a request maps) by polling
 * the used ring: its next one often comes soon after the answer, and a
 * kick costs it an exit. So after answering, the device looks for more
 * itself, with kicks held back, for four times the usual gap between
 * an answer and the next request (the gaps it found, gap_ns; twice
 * missed a third of them under nested emulation), within
 * [POLL_MIN_NS, poll_ns]: microseconds where an exit costs little, more
 * where it costs much. At most POLL_MAX_NS in all: the device lock is
 * held meanwhile. */
#define POLL_MIN_NS 5000ull
#define POLL_MAX_NS 2000000ull

static uint64_t poll_window(const struct viommu *v)
{
	uint64_t w = 4 * v->gap_ns;

	if (w < POLL_MIN_NS)
		w = POLL_MIN_NS;
	return w > (uint64_t)v->cfg.poll_ns ? (uint64_t)v->cfg.poll_ns : w;
}

static void poll_requests(struct viommu *v, int q)
{
	struct virtq *vq = &v->dev.vq[q];
	uint64_t t0, since, now, until;

	if (v->cfg.poll_ns <= 0 || !vq->event_idx)
		return;
	t0 = since = now = now_ns();
	until = t0 + poll_window(v);
	__atomic_fetch_add(&v->polls, 1, __ATOMIC_RELAXED);
	virtq_hold_kicks(vq);
	while (now < until) {
		if (virtq_avail_idx(vq) != vq->last_avail) {
			__atomic_fetch_add(&v->poll_hits, 1, __ATOMIC_RELAXED);
			v->gap_ns = (v->gap_ns * 7 + (now - since)) / 8;
			if (run_requests(v, q, UINT_MAX) < 0)
				return;
			virtq_hold_kicks(vq);
			since = now = now_ns();
			until = now + poll_window(v);
			if (until > t0 + POLL_MAX_NS)
				until = t0 + POLL_MAX_NS;
			continue;
		}
		__builtin_ia32_pause();
		now = now_ns();
	}
	/* Kicks on again, and one more look: a buffer added before the
	 * driver could see that would come without one. */
	run_requests(v, q, UINT_MAX);
}

static void viommu_queue_notify(struct virtio_dev *d, int q)
{
	struct viommu *v = to_v(d);

	if (q == EVENT_Q) {
		deliver_faults_locked(v);
		return;
	}
	if (q != REQ_Q)
		return;
	if (run_requests(v, q, UINT_MAX) == 0)
		poll_requests(v, q);
}

/* The requestq's kicks, in the kicking vCPU's thread (with
 * cfg.vcpu_requests): Linux spins on the used ring for each request's
 * answer, so an answer written before the vCPU re-enters saves the I/O
 * thread's wake-up and the spin, for one userspace exit. A ring's worth
 * at most: the rest, which only another vCPU can have added meanwhile,
 * goes to the I/O thread. */
static void viommu_queue_notify_exit(struct virtio_dev *d, int q)
{
	struct viommu *v = to_v(d);
	int ret;

	if (run_requests(v, q, d->vq[q].size) <= 0)
		return;
	ret = efd_signal_private(d->kick_fds[q]);
	if (ret && ret != -EAGAIN)
		log_warn("virtio-iommu: requestq: handing on to the I/O "
			 "thread: %s",
			 strerror(-ret));
}

/* Reset: every endpoint detached, every domain gone, bypass back to the
 * configured default, pending faults dropped. */
static void viommu_reset(struct virtio_dev *d)
{
	struct viommu *v = to_v(d);

	struct effect ef;

	pthread_mutex_lock(&v->xlate_lock);
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++)
		if (v->ep[i].used)
			ep_detach(v, &v->ep[i]);
	v->bypass_cfg = v->cfg.bypass;
	v->bypass_now = v->cfg.bypass;
	v->pend_head = v->pend_nr = 0;
	unattached_changed(v, &ef);
	pthread_mutex_unlock(&v->xlate_lock);
	if (propagate(v, &ef))
		log_warn("virtio-iommu: reset: not every endpoint confirmed "
			 "it");
}

static void viommu_destroy(struct virtio_dev *d)
{
	struct viommu *v = to_v(d);

	ioasid_set_destroy(v->set);
	ioasid_sys_destroy(&v->ids);
	if (v->have_registry)
		ioasid_registry_close(&v->registry);
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++)
		if (v->ep[i].used && !v->ep[i].remote)
			dma_inflight_destroy(&v->ep[i].infl);
	close(v->fault_efd);
	pthread_mutex_destroy(&v->xlate_lock);
	virtio_dev_fini(d);
	free(v);
}

/* ---- Snapshot ---------------------------------------------------------- */

#define STATE_VERSION 1

/* The domains (each with its guest-local ID and mappings) and which
 * endpoint is attached to which; global IDs are the host's and are
 * allocated anew on load. Pending fault records are not kept. Device
 * lock held. */
static void viommu_save(struct virtio_dev *d, struct ser_w *w)
{
	struct viommu *v = to_v(d);
	const struct viommu_domain *doms[VIOMMU_MAX_ENDPOINTS];
	uint32_t nd = 0, ne = 0;

	pthread_mutex_lock(&v->xlate_lock);
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++) {
		const struct viommu_domain *dom = v->ep[i].domain;
		uint32_t k;

		if (!v->ep[i].used || !dom)
			continue;
		ne++;
		for (k = 0; k < nd && doms[k] != dom; k++)
			;
		if (k == nd)
			doms[nd++] = dom;
	}
	ser_u32(w, STATE_VERSION);
	ser_u8(w, v->bypass_cfg);
	ser_u32(w, nd);
	for (uint32_t k = 0; k < nd; k++) {
		ser_u32(w, doms[k]->id);
		ser_u8(w, doms[k]->bypass);
		ser_u32(w, doms[k]->space.nr);
		for (uint32_t m = 0; m < doms[k]->space.nr; m++) {
			const struct iova_map *mp = &doms[k]->space.maps[m];

			ser_u64(w, mp->start);
			ser_u64(w, mp->last);
			ser_u64(w, mp->phys);
			ser_u32(w, mp->perm);
		}
	}
	ser_u32(w, ne);
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++)
		if (v->ep[i].used && v->ep[i].domain) {
			ser_u32(w, v->ep[i].id);
			ser_u32(w, v->ep[i].domain->id);
		}
	pthread_mutex_unlock(&v->xlate_lock);
}

/* Replays the saved state as the guest's own ATTACH and MAP requests, so
 * every check a guest request gets applies to the file too (ranges,
 * quotas, overlaps, features) and each domain gets a new global ID. The
 * device was reset (a new VM), so nothing is attached yet. Device lock
 * held. */
static int viommu_load(struct virtio_dev *d, const uint8_t *p, uint32_t len,
		       const char **why)
{
	struct viommu *v = to_v(d);
	struct ser_r r = { p, len, 0, false };
	const uint8_t *maps_at[VIOMMU_MAX_ENDPOINTS];
	uint32_t ids[VIOMMU_MAX_ENDPOINTS], nmaps[VIOMMU_MAX_ENDPOINTS];
	bool byp[VIOMMU_MAX_ENDPOINTS];
	uint32_t nd, ne;
	uint8_t bypass_cfg;
	int ret = 0;

	*why = "malformed virtio-iommu state";
	if (deser_u32(&r) != STATE_VERSION)
		return -EINVAL;
	bypass_cfg = deser_u8(&r);
	nd = deser_u32(&r);
	if (r.fail || bypass_cfg > 1 || nd > VIOMMU_MAX_ENDPOINTS)
		return -EINVAL;
	for (uint32_t k = 0; k < nd; k++) {
		ids[k] = deser_u32(&r);
		byp[k] = deser_bool(&r);
		nmaps[k] = deser_u32(&r);
		if (nmaps[k] > (UINT32_MAX / 28))
			return -EINVAL;
		maps_at[k] = ser_r_take(&r, (size_t)nmaps[k] * 28);
	}
	ne = deser_u32(&r);
	if (r.fail || ne > VIOMMU_MAX_ENDPOINTS ||
	    r.len - r.off != (size_t)ne * 8)
		return -EINVAL;
	pthread_mutex_lock(&v->xlate_lock);
	v->bypass_cfg = bypass_cfg;
	/* Endpoints first: the first ATTACH to a domain creates it. */
	for (uint32_t i = 0; i < ne && !ret; i++) {
		uint8_t req[VIOMMU_ATTACH_LEN] = { VIRTIO_IOMMU_T_ATTACH };
		uint32_t ep = deser_u32(&r), dom = deser_u32(&r), k;

		for (k = 0; k < nd && ids[k] != dom; k++)
			;
		if (k == nd) {
			*why = "an endpoint attached to a domain not saved";
			ret = -EINVAL;
			break;
		}
		put32(req + 4, dom);
		put32(req + 8, ep);
		put32(req + 12, byp[k] ? VIRTIO_IOMMU_ATTACH_F_BYPASS : 0);
		struct effect ef = { 0 };

		/* Remote endpoints are brought up to date below, once. */
		if (do_attach(v, req, &ef) != VIRTIO_IOMMU_S_OK) {
			*why = "an endpoint's ATTACH was refused";
			ret = -EINVAL;
		}
	}
	for (uint32_t k = 0; k < nd && !ret; k++) {
		if (!find_domain(v, ids[k])) {
			*why = "a domain no endpoint is attached to";
			ret = -EINVAL;
			break;
		}
		for (uint32_t m = 0; m < nmaps[k] && !ret; m++) {
			const uint8_t *e = maps_at[k] + (size_t)m * 28;
			uint8_t req[VIOMMU_MAP_LEN] = { VIRTIO_IOMMU_T_MAP };
			uint32_t perm = le32(e + 24), flags = 0;
			struct effect ef = { 0 };

			if (perm & IOVA_PERM_READ)
				flags |= VIRTIO_IOMMU_MAP_F_READ;
			if (perm & IOVA_PERM_WRITE)
				flags |= VIRTIO_IOMMU_MAP_F_WRITE;
			if (perm & IOVA_PERM_MMIO)
				flags |= VIRTIO_IOMMU_MAP_F_MMIO;
			put32(req + 4, ids[k]);
			memcpy(req + 8, e, 24); /* start, last, phys */
			put32(req + 32, flags);
			if ((perm & ~(IOVA_PERM_READ | IOVA_PERM_WRITE |
				      IOVA_PERM_MMIO)) ||
			    do_map(v, req, &ef) != VIRTIO_IOMMU_S_OK) {
				*why = "a mapping was refused";
				ret = -EINVAL;
			}
		}
	}
	if (ret)
		/* Back to nothing attached: the restore fails as a whole. */
		for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++)
			if (v->ep[i].used)
				ep_detach(v, &v->ep[i]);
	invalidate(v, NULL);
	pthread_mutex_unlock(&v->xlate_lock);
	/* An endpoint served out of process gets its whole table (a
	 * server that attaches later gets it at attach). */
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS && !ret; i++) {
		struct effect ef = { 0 };

		pthread_mutex_lock(&v->xlate_lock);
		if (v->ep[i].used && v->ep[i].remote) {
			ep_changed(v, &v->ep[i], &ef);
			ef.local_mask = 0;
			number(v, &ef);
		}
		pthread_mutex_unlock(&v->xlate_lock);
		if (ef.kind != EF_NONE && propagate(v, &ef)) {
			*why = "a device server did not take the restored "
			       "mappings";
			ret = -EIO;
		}
	}
	return ret;
}

static const struct virtio_dev_ops viommu_ops = {
	.save = viommu_save,
	.load = viommu_load,
	.features = viommu_features,
	.config_read = viommu_config_read,
	.config_write = viommu_config_write,
	.activate = viommu_activate,
	.queue_notify = viommu_queue_notify,
	.queue_notify_exit = viommu_queue_notify_exit,
	.reset = viommu_reset,
	.fd_ready = viommu_fd_ready,
	.destroy = viommu_destroy,
};

int viommu_create(const struct viommu_config *cfg, struct guest_mem *mem,
		  struct virtio_dev **out, struct err *e)
{
	struct viommu_config c = cfg ? *cfg : (struct viommu_config){ 0 };
	struct ioasid_sys_config ic;
	struct viommu *v;
	int ret;

	*out = NULL;
	if (!c.max_domains)
		c.max_domains = 64;
	if (!c.max_maps_per_domain)
		c.max_maps_per_domain = 16384;
	if (!c.max_total_maps)
		c.max_total_maps = 65536;
	if (!c.domain_end)
		c.domain_end = 1023;
	if (c.vcpu_requests)
		c.poll_ns = -1; /* the vCPU never waits for the I/O thread */
	if (!c.poll_ns) {
		cpu_set_t cpus;

		c.poll_ns = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 &&
					    CPU_COUNT(&cpus) > 1 ?
				    VIOMMU_POLL_NS :
				    -1;
	}
	if (c.domain_end >= (1u << 24))
		return err_config(e, -EINVAL,
				  "virtio-iommu: domain range end %u is above "
				  "%u",
				  c.domain_end, (1u << 24) - 1);
	v = calloc(1, sizeof(*v));
	if (!v)
		return err_set(e, -ENOMEM, "virtio-iommu: out of memory");
	v->cfg = c;
	v->gap_ns = c.poll_ns > 0 ? (uint64_t)c.poll_ns / 4 : 0;
	if (c.poll_ns > 0)
		log_info("virtio-iommu: after each answer, looks for the next "
			 "request for up to %lld us",
			 (long long)(c.poll_ns / 1000));
	v->fault_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->fault_efd < 0) {
		ret = err_set(e, -errno, "virtio-iommu: eventfd: %s",
			      strerror(errno));
		free(v);
		return ret;
	}
	/* The guest's domain IDs are the local range; each domain's
	 * address space holds a global ID above it. With the host-wide
	 * registry the global range is shared by every wisp process of
	 * the user, each holding at most its quota. */
	ic = (struct ioasid_sys_config){
		.id_min = 0,
		.split = c.domain_end + 1,
		.id_max = c.domain_end + c.max_domains,
		.capacity = c.max_domains,
	};
	if (c.host_registry) {
		ret = ioasid_registry_open(&v->registry, c.registry_path, e);
		if (ret < 0)
			goto fail_efd;
		v->have_registry = true;
		ic.registry = &v->registry;
		ic.id_max = c.domain_end + VIOMMU_HOST_GLOBAL_IDS;
	}
	ret = ioasid_sys_init(&v->ids, &ic, e);
	if (ret < 0)
		goto fail_free;
	ret = ioasid_set_create(&v->ids, c.max_domains, 0, c.domain_end,
				&v->set, e);
	if (ret < 0)
		goto fail_sys;
	ret = ioasid_set_notify(v->set, domain_freed, v);
	if (ret < 0) {
		err_set(e, ret, "virtio-iommu: IOASID notifier: %s",
			strerror(-ret));
		goto fail_set;
	}
	pthread_mutex_init(&v->xlate_lock, NULL);
	v->quota.max_total = c.max_total_maps;
	v->bypass_cfg = c.bypass;
	v->bypass_now = c.bypass;
	virtio_dev_init(&v->dev, "virtio-iommu", VIRTIO_ID_IOMMU, &viommu_ops,
			v, mem, 2, VIOMMU_QUEUE_SIZE, VIOMMU_CONFIG_SIZE);
	v->dev.watch_fds[0] = v->fault_efd;
	v->dev.nr_watch_fds = 1;
	if (c.vcpu_requests)
		v->dev.exit_queues = 1u << REQ_Q;
	*out = &v->dev;
	return 0;

fail_set:
	ioasid_set_destroy(v->set);
fail_sys:
	ioasid_sys_destroy(&v->ids);
fail_free:
	if (v->have_registry)
		ioasid_registry_close(&v->registry);
fail_efd:
	close(v->fault_efd);
	free(v);
	return ret;
}

int viommu_add_endpoint(struct virtio_dev *iommu, uint32_t id,
			const struct virtq_dma **dma, struct err *e)
{
	struct viommu *v = to_v(iommu);
	struct viommu_ep *free_ep = NULL;
	int ret = 0;

	*dma = NULL;
	pthread_mutex_lock(&v->xlate_lock);
	if (find_ep(v, id)) {
		ret = err_config(e, -EEXIST,
				 "virtio-iommu: endpoint %u declared twice",
				 id);
		goto out;
	}
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS && !free_ep; i++)
		if (!v->ep[i].used)
			free_ep = &v->ep[i];
	if (!free_ep) {
		ret = err_config(e, -ENOSPC,
				 "virtio-iommu: more than %d endpoints",
				 VIOMMU_MAX_ENDPOINTS);
		goto out;
	}
	*free_ep = (struct viommu_ep){ .v = v, .id = id };
	ret = dma_inflight_init(&free_ep->infl, 0);
	if (ret) {
		err_set(e, ret, "virtio-iommu: endpoint %u: %s", id,
			strerror(-ret));
		goto out;
	}
	free_ep->used = true;
	free_ep->dma.translate = ep_translate;
	free_ep->dma.begin = ep_begin;
	free_ep->dma.end = ep_end;
	free_ep->dma.opaque = free_ep;
	*dma = &free_ep->dma;
out:
	pthread_mutex_unlock(&v->xlate_lock);
	return ret;
}

int viommu_add_remote_endpoint(struct virtio_dev *iommu, uint32_t id,
			       const struct viommu_remote_ops *ops,
			       void *opaque, struct err *e)
{
	struct viommu *v = to_v(iommu);
	int ret = -ENOSPC;

	pthread_mutex_lock(&v->xlate_lock);
	if (find_ep(v, id)) {
		ret = err_config(e, -EEXIST,
				 "virtio-iommu: endpoint %u declared twice",
				 id);
		goto out;
	}
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++) {
		if (v->ep[i].used)
			continue;
		v->ep[i] = (struct viommu_ep){ .v = v,
					       .id = id,
					       .used = true,
					       .remote = ops,
					       .remote_opaque = opaque };
		ret = 0;
		goto out;
	}
	err_config(e, ret, "virtio-iommu: more than %d endpoints",
		   VIOMMU_MAX_ENDPOINTS);
out:
	pthread_mutex_unlock(&v->xlate_lock);
	return ret;
}

int viommu_snapshot(struct virtio_dev *iommu, uint32_t id, uint32_t *mode,
		    struct iova_map **maps, uint32_t *nr, uint64_t *seq)
{
	struct viommu *v = to_v(iommu);
	struct viommu_ep *ep;
	int ret = 0;

	*maps = NULL;
	*nr = 0;
	pthread_mutex_lock(&v->xlate_lock);
	ep = find_ep(v, id);
	if (!ep) {
		ret = -ENOENT;
		goto out;
	}
	*seq = v->seq;
	if (!ep->domain) {
		*mode = v->bypass_now ? VIOMMU_EP_BYPASS : VIOMMU_EP_BLOCK;
		goto out;
	}
	if (ep->domain->bypass) {
		*mode = VIOMMU_EP_BYPASS;
		goto out;
	}
	*mode = VIOMMU_EP_TRANSLATE;
	if (!ep->domain->space.nr)
		goto out;
	*maps = malloc(sizeof(**maps) * ep->domain->space.nr);
	if (!*maps) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(*maps, ep->domain->space.maps,
	       sizeof(**maps) * ep->domain->space.nr);
	*nr = ep->domain->space.nr;
out:
	pthread_mutex_unlock(&v->xlate_lock);
	return ret;
}

void viommu_report_fault(struct virtio_dev *iommu, uint32_t id, uint64_t iova,
			 bool write)
{
	struct viommu *v = to_v(iommu);
	struct viommu_fault f = { .endpoint = id };
	struct viommu_ep *ep;

	pthread_mutex_lock(&v->xlate_lock);
	ep = find_ep(v, id);
	if (ep && ep->remote) {
		f.flags = write ? VIRTIO_IOMMU_FAULT_F_WRITE :
				  VIRTIO_IOMMU_FAULT_F_READ;
		if (ep->domain) {
			f.reason = VIRTIO_IOMMU_FAULT_R_MAPPING;
			f.flags |= VIRTIO_IOMMU_FAULT_F_ADDRESS;
			f.address = iova;
		} else {
			f.reason = VIRTIO_IOMMU_FAULT_R_DOMAIN;
		}
		queue_fault(v, &f);
	}
	pthread_mutex_unlock(&v->xlate_lock);
	if (ep && ep->remote)
		kick_faults(v);
}

void viommu_get_stats(struct virtio_dev *iommu, struct viommu_stats *st)
{
	struct viommu *v = to_v(iommu);

	pthread_mutex_lock(&v->xlate_lock);
	st->faults = v->faults;
	st->faults_dropped = v->faults_dropped;
	st->domains = v->nr_domains;
	st->mappings = v->quota.total;
	st->drain_timeouts = v->drain_timeouts;
	st->remote_errors = v->remote_errors;
	pthread_mutex_unlock(&v->xlate_lock);
	st->polls = __atomic_load_n(&v->polls, __ATOMIC_RELAXED);
	st->poll_hits = __atomic_load_n(&v->poll_hits, __ATOMIC_RELAXED);
}

int viommu_domain_global(struct virtio_dev *iommu, uint32_t domain,
			 uint32_t *global)
{
	struct viommu *v = to_v(iommu);
	struct viommu_domain *dom;

	pthread_mutex_lock(&v->xlate_lock);
	dom = find_domain(v, domain);
	if (dom)
		*global = dom->global;
	pthread_mutex_unlock(&v->xlate_lock);
	return dom ? 0 : -ENOENT;
}
