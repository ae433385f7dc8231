// SPDX-License-Identifier: MIT
#include "devices/iommu/viommu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iommu/iova.h"
#include "util/log.h"
#include "util/le.h"
#include "util/ser.h"

#define REQ_Q 0
#define EVENT_Q 1
#define EP_CACHE 4

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

static int ep_translate(void *opaque, uint64_t iova, uint64_t len, bool write,
			uint64_t *gpa, uint64_t *plen)
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
		goto out;
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
out:
	if (ret)
		queue_fault(v, &f);
	pthread_mutex_unlock(&v->xlate_lock);
	if (ret) {
		pthread_mutex_lock(&v->dev.lock);
		deliver_faults_locked(v);
		pthread_mutex_unlock(&v->dev.lock);
	}
	return ret;
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

static uint8_t do_attach(struct viommu *v, const uint8_t *r)
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
	return VIRTIO_IOMMU_S_OK;
}

static uint8_t do_detach(struct viommu *v, const uint8_t *r)
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
	return VIRTIO_IOMMU_S_OK;
}

static uint8_t do_map(struct viommu *v, const uint8_t *r)
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

static uint8_t do_unmap(struct viommu *v, const uint8_t *r)
{
	uint32_t domain = le32(r + 4);
	uint64_t start = le64(r + 8), last = le64(r + 16);
	struct viommu_domain *dom;
	int ret;

	dom = find_domain(v, domain);
	if (!dom)
		return VIRTIO_IOMMU_S_NOENT;
	if (dom->bypass || last < start)
		return VIRTIO_IOMMU_S_INVAL;
	ret = iova_space_unmap(&dom->space, start, last, NULL);
	if (ret == -ERANGE)
		return VIRTIO_IOMMU_S_RANGE;
	if (ret < 0)
		return VIRTIO_IOMMU_S_INVAL;
	invalidate(v, dom);
	return VIRTIO_IOMMU_S_OK;
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
	uint32_t need;
	uint8_t st;

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
		st = do_attach(v, r);
		break;
	case VIRTIO_IOMMU_T_DETACH:
		st = do_detach(v, r);
		break;
	case VIRTIO_IOMMU_T_MAP:
		st = do_map(v, r);
		break;
	case VIRTIO_IOMMU_T_UNMAP:
		st = do_unmap(v, r);
		break;
	default:
		st = do_probe(v, r, c);
		break;
	}
	pthread_mutex_unlock(&v->xlate_lock);
	return st;
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

static void viommu_config_write(struct virtio_dev *d, uint32_t off,
				const uint8_t *data, uint32_t len)
{
	struct viommu *v = to_v(d);

	/* Only bypass is writable, and only once the driver took
	 * BYPASS_CONFIG (5.13.4.2); other writes are ignored. */
	if (off != VIOMMU_CFG_BYPASS || len != 1 ||
	    !virtio_has_feature(d, VIRTIO_IOMMU_F_BYPASS_CONFIG))
		return;
	pthread_mutex_lock(&v->xlate_lock);
	v->bypass_cfg = data[0] ? 1 : 0;
	v->bypass_now = v->bypass_cfg;
	invalidate(v, NULL);
	pthread_mutex_unlock(&v->xlate_lock);
}

static int viommu_activate(struct virtio_dev *d)
{
	struct viommu *v = to_v(d);

	/* Without BYPASS_CONFIG (and without the legacy BYPASS, which is
	 * not offered) unattached endpoints are blocked. */
	pthread_mutex_lock(&v->xlate_lock);
	v->bypass_now = virtio_has_feature(d, VIRTIO_IOMMU_F_BYPASS_CONFIG) &&
			v->bypass_cfg;
	pthread_mutex_unlock(&v->xlate_lock);
	return 0;
}

static void viommu_queue_notify(struct virtio_dev *d, int q)
{
	struct viommu *v = to_v(d);
	struct virtq_chain *c = &v->chain;
	bool pushed = false;

	if (q == EVENT_Q) {
		deliver_faults_locked(v);
		return;
	}
	if (q != REQ_Q)
		return;
	while (virtio_dev_pop(d, q, c) > 0) {
		uint8_t tail[VIOMMU_TAIL_LEN] = { 0 };

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
}

/* Reset: every endpoint detached, every domain gone, bypass back to the
 * configured default, pending faults dropped. */
static void viommu_reset(struct virtio_dev *d)
{
	struct viommu *v = to_v(d);

	pthread_mutex_lock(&v->xlate_lock);
	for (int i = 0; i < VIOMMU_MAX_ENDPOINTS; i++)
		if (v->ep[i].used)
			ep_detach(v, &v->ep[i]);
	v->bypass_cfg = v->cfg.bypass;
	v->bypass_now = v->cfg.bypass;
	v->pend_head = v->pend_nr = 0;
	pthread_mutex_unlock(&v->xlate_lock);
}

static void viommu_destroy(struct virtio_dev *d)
{
	struct viommu *v = to_v(d);

	ioasid_set_destroy(v->set);
	ioasid_sys_destroy(&v->ids);
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
		if (do_attach(v, req) != VIRTIO_IOMMU_S_OK) {
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
			    do_map(v, req) != VIRTIO_IOMMU_S_OK) {
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
	.reset = viommu_reset,
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
	if (c.domain_end >= (1u << 24))
		return err_config(e, -EINVAL,
				  "virtio-iommu: domain range end %u is above "
				  "%u",
				  c.domain_end, (1u << 24) - 1);
	v = calloc(1, sizeof(*v));
	if (!v)
		return err_set(e, -ENOMEM, "virtio-iommu: out of memory");
	v->cfg = c;
	/* The guest's domain IDs are the local range; each domain's
	 * address space holds a global ID above it. */
	ic = (struct ioasid_sys_config){
		.id_min = 0,
		.split = c.domain_end + 1,
		.id_max = c.domain_end + c.max_domains,
		.capacity = c.max_domains,
	};
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
	*out = &v->dev;
	return 0;

fail_set:
	ioasid_set_destroy(v->set);
fail_sys:
	ioasid_sys_destroy(&v->ids);
fail_free:
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
	*free_ep = (struct viommu_ep){ .v = v, .id = id, .used = true };
	free_ep->dma.translate = ep_translate;
	free_ep->dma.opaque = free_ep;
	*dma = &free_ep->dma;
out:
	pthread_mutex_unlock(&v->xlate_lock);
	return ret;
}

void viommu_get_stats(struct virtio_dev *iommu, struct viommu_stats *st)
{
	struct viommu *v = to_v(iommu);

	pthread_mutex_lock(&v->xlate_lock);
	st->faults = v->faults;
	st->faults_dropped = v->faults_dropped;
	st->domains = v->nr_domains;
	st->mappings = v->quota.total;
	pthread_mutex_unlock(&v->xlate_lock);
}
