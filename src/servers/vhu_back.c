// SPDX-License-Identifier: MIT
#include "servers/vhu_back.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/efd.h"
#include "util/time.h"
#include "vhost_user/memtab.h"
#include "vhost_user/msg.h"

#define PROTOCOL                                            \
	((1ull << VHU_PF_MQ) | (1ull << VHU_PF_REPLY_ACK) | \
	 (1ull << VHU_PF_CONFIG))
#define TRANSPORT                                                           \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX) | \
	 (1ull << VIRTIO_F_RING_INDIRECT_DESC))
/* A reply the front-end does not read in time ends the connection. */
#define SEND_TIMEOUT_NS 2000000000ull

struct back {
	struct virtio_dev *d;
	struct guest_mem *gm;
	struct vhu_memtab tab;
	uint64_t protocol;
	int kick[VIRTIO_MAX_QUEUES], call[VIRTIO_MAX_QUEUES],
		err[VIRTIO_MAX_QUEUES];
};

static void back_raise(void *opaque, bool config)
{
	struct back *b = opaque;

	/* No back-end channel: a config change cannot be announced, but a
	 * device that needs a reset (a guest's broken ring) tells the
	 * front-end through each started ring's error eventfd, which it
	 * turns into NEEDS_RESET for the guest. Without that the guest
	 * would wait on a ring nobody serves. The transport does not say
	 * which queue, so every started one hears it (a spurious
	 * interrupt is harmless). */
	if (config) {
		for (int q = 0; b->d->broken && q < b->d->nr_queues; q++)
			if (b->err[q] >= 0 && b->d->vq[q].ready)
				efd_signal(b->err[q]);
		return;
	}
	for (int q = 0; q < b->d->nr_queues; q++)
		if (b->call[q] >= 0 && b->d->vq[q].ready)
			efd_signal(b->call[q]);
}

static const struct virtio_transport_ops back_tops = { .raise = back_raise };

static int perr(struct err *e, const struct vhu_msg *m, const char *why)
{
	return err_set(e, -EPROTO, "vhost-user %s: %s",
		       vhu_req_name(m->hdr.request), why);
}

static int reply(int sock, const struct vhu_msg *req, struct vhu_msg *r,
		 uint32_t size)
{
	r->hdr.request = req->hdr.request;
	r->hdr.flags = VHU_VERSION | VHU_FLAG_REPLY;
	r->hdr.size = size;
	return vhu_send(sock, r, NULL, 0, now_ns() + SEND_TIMEOUT_NS);
}

static void set_fd(int *slot, int fd)
{
	if (*slot >= 0)
		close(*slot);
	*slot = fd;
}

/* The guest memory the device sees: one mapping of the regions' file
 * (they must all be one file, as QEMU's memfd and wisp's are), at most
 * GUEST_MEM_MAX_REGIONS regions. */
static int set_memory(struct back *b, const int *fds, struct err *e)
{
	struct guest_mem *gm = b->gm;
	struct stat st0, st;
	void *p;

	if (b->tab.n > GUEST_MEM_MAX_REGIONS)
		return err_set(e, -ENOTSUP, "%d memory regions (at most %d)",
			       b->tab.n, GUEST_MEM_MAX_REGIONS);
	if (fstat(fds[0], &st0) < 0)
		return err_set(e, -errno, "memory: fstat: %s", strerror(errno));
	for (int i = 1; i < b->tab.n; i++)
		if (fstat(fds[i], &st) < 0 || st.st_dev != st0.st_dev ||
		    st.st_ino != st0.st_ino)
			return err_set(e, -ENOTSUP,
				       "memory regions in different files");
	p = mmap(NULL, (size_t)st0.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fds[0], 0);
	if (p == MAP_FAILED)
		return err_set(e, -errno, "memory: mmap: %s", strerror(errno));
	if (gm->host)
		munmap(gm->host, gm->size);
	gm->host = p;
	gm->size = (uint64_t)st0.st_size;
	gm->nr_regions = b->tab.n;
	for (int i = 0; i < b->tab.n; i++)
		gm->regions[i] = (struct guest_mem_region){
			.gpa = b->tab.reg[i].r.gpa,
			.size = b->tab.reg[i].r.size,
			.offset = b->tab.reg[i].r.offset,
		};
	return 0;
}

static bool any_ring_started(const struct back *b)
{
	for (int q = 0; q < b->d->nr_queues; q++)
		if (b->d->vq[q].ready)
			return true;
	return false;
}

/* User address of the front-end -> guest address, for ring addresses. */
static uint64_t ua_to_gpa(const struct back *b, uint64_t ua)
{
	for (int i = 0; i < b->tab.n; i++) {
		const struct vhu_region *r = &b->tab.reg[i].r;

		if (ua >= r->ua && ua - r->ua < r->size)
			return r->gpa + (ua - r->ua);
	}
	return UINT64_MAX;
}

/* Handles one checked request; *rsize >= 0: reply with r of that size. */
static int handle(struct back *b, const struct vhu_msg *m, int *fds, int nfds,
		  struct vhu_msg *r, int *rsize, struct err *e)
{
	struct virtio_dev *d = b->d;
	uint64_t offered = d->ops->features(d) | TRANSPORT |
			   (1ull << VHU_F_PROTOCOL_FEATURES);
	const char *why = NULL;
	int q;

	*rsize = -1;
	switch (m->hdr.request) {
	case VHU_GET_FEATURES:
		r->u64 = offered;
		*rsize = 8;
		return 0;
	case VHU_SET_FEATURES:
		if (m->u64 & ~offered)
			return perr(e, m, "features that were not offered");
		d->features = m->u64 & ~(1ull << VHU_F_PROTOCOL_FEATURES);
		return 0;
	case VHU_GET_PROTOCOL_FEATURES:
		r->u64 = PROTOCOL;
		*rsize = 8;
		return 0;
	case VHU_SET_PROTOCOL_FEATURES:
		if (m->u64 & ~PROTOCOL)
			return perr(e, m, "protocol features not offered");
		b->protocol = m->u64;
		return 0;
	case VHU_GET_QUEUE_NUM:
		r->u64 = (uint64_t)d->nr_queues;
		*rsize = 8;
		return 0;
	case VHU_SET_OWNER:
	case VHU_RESET_OWNER:
	case VHU_SET_VRING_ENABLE:
		return 0;
	case VHU_SET_MEM_TABLE: {
		int ret;

		if (any_ring_started(b))
			return perr(e, m, "memory changed under running rings");
		ret = vhu_memtab_set(&b->tab, m->mem.regions,
				     (int)m->mem.nregions, fds, e);
		return ret ? ret : set_memory(b, fds, e);
	}
	case VHU_SET_VRING_NUM:
		q = (int)m->state.index;
		if (d->vq[q].ready)
			return perr(e, m, "ring running");
		/* The front-end chose the size (QEMU's virtio-mmio offers
		 * the guest 1024 whatever the device says): any valid split
		 * ring. The devices take more requests than they have slots
		 * for (blk does the rest synchronously). */
		if (!m->state.num || m->state.num > VIRTQ_MAX_SIZE)
			return err_set(e, -EPROTO,
				       "vhost-user SET_VRING_NUM: %u entries "
				       "(1 to %u)",
				       m->state.num, VIRTQ_MAX_SIZE);
		d->vq[q].size = (uint16_t)m->state.num;
		return 0;
	case VHU_SET_VRING_ADDR:
		q = (int)m->addr.index;
		if (d->vq[q].ready)
			return perr(e, m, "ring running");
		if (vhu_check_vring(&b->tab, &m->addr, d->vq[q].size, &why))
			return perr(e, m, why);
		d->vq[q].desc_gpa = ua_to_gpa(b, m->addr.desc_ua);
		d->vq[q].avail_gpa = ua_to_gpa(b, m->addr.avail_ua);
		d->vq[q].used_gpa = ua_to_gpa(b, m->addr.used_ua);
		return 0;
	case VHU_SET_VRING_BASE:
		q = (int)m->state.index;
		if (d->vq[q].ready || m->state.num > 0xffff)
			return perr(e, m, "ring running or base out of range");
		d->vq[q].last_avail = (uint16_t)m->state.num;
		return 0;
	case VHU_SET_VRING_KICK: {
		struct virtq *vq;

		q = (int)(m->u64 & VHU_VRING_IDX_MASK);
		vq = &d->vq[q];
		if (!nfds)
			return perr(e, m, "polled rings are not supported");
		if (!vq->size || virtq_validate_rings(vq, &why))
			return perr(e, m, why ? why : "ring not set up");
		set_fd(&b->kick[q], fds[0]);
		fds[0] = -1;
		/* The ring starts: the device runs it as its transport
		 * would after DRIVER_OK. */
		vq->event_idx = virtio_has_feature(d, VIRTIO_F_RING_EVENT_IDX);
		vq->indirect =
			virtio_has_feature(d, VIRTIO_F_RING_INDIRECT_DESC);
		vq->used_idx = virtq_used_idx_in_ring(vq);
		vq->signalled_valid = false;
		vq->ready = true;
		d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
		if (d->ops->activate && d->ops->activate(d) < 0)
			return perr(e, m, "the device refused to start");
		efd_signal(b->kick[q]); /* look at what is there already */
		return 0;
	}
	case VHU_SET_VRING_CALL:
	case VHU_SET_VRING_ERR:
		q = (int)(m->u64 & VHU_VRING_IDX_MASK);
		set_fd(m->hdr.request == VHU_SET_VRING_CALL ? &b->call[q] :
							      &b->err[q],
		       nfds ? fds[0] : -1);
		if (nfds)
			fds[0] = -1;
		return 0;
	case VHU_GET_VRING_BASE:
		q = (int)m->state.index;
		/* Stop: nothing in flight may complete into the ring after
		 * the reply. */
		if (d->ops->quiesce)
			d->ops->quiesce(d);
		d->vq[q].ready = false;
		set_fd(&b->kick[q], -1);
		/* Every ring stopped is the front-end's device reset (the
		 * guest's, after NEEDS_RESET): the rings it starts next are
		 * served again. */
		if (!any_ring_started(b)) {
			d->broken = false;
			d->status &= ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET;
		}
		r->state.index = (uint32_t)q;
		r->state.num = d->vq[q].last_avail;
		*rsize = sizeof(r->state);
		return 0;
	case VHU_GET_CONFIG:
	case VHU_SET_CONFIG: {
		uint8_t *p = (uint8_t *)m->raw + sizeof(m->config);

		if (m->hdr.request == VHU_GET_CONFIG) {
			r->config = m->config;
			p = r->raw + sizeof(r->config);
			memset(p, 0, m->config.size);
		}
		for (uint32_t i = 0; i < m->config.size; i++) {
			uint32_t off = m->config.offset + i;

			if (off >= d->config_size)
				break;
			if (m->hdr.request == VHU_GET_CONFIG &&
			    d->ops->config_read)
				d->ops->config_read(d, off, p + i, 1);
			else if (m->hdr.request == VHU_SET_CONFIG &&
				 d->ops->config_write)
				d->ops->config_write(d, off, p + i, 1);
		}
		if (m->hdr.request == VHU_GET_CONFIG)
			*rsize = (int)(sizeof(r->config) + m->config.size);
		return 0;
	}
	default:
		/* Known to the table, not offered here. */
		return perr(e, m, "not supported by this back-end");
	}
}

static int on_message(struct back *b, int sock, struct err *e)
{
	struct vhu_msg m, r;
	int fds[VHU_MAX_FDS], nfds = 0, rsize, ret;
	const char *why = NULL;

	ret = vhu_recv(sock, &m, fds, &nfds, now_ns() + SEND_TIMEOUT_NS);
	if (ret == -ECONNRESET)
		return 1;
	if (ret)
		return err_set(e, ret, "vhost-user: receive: %s",
			       ret == -EPROTO ? "malformed message" :
						strerror(-ret));
	/* WISP_VHU_TRACE=1: every request on stderr, for debugging a
	 * front-end. */
	if (getenv("WISP_VHU_TRACE"))
		fprintf(stderr, "vhost-user: %s size %u fds %d\n",
			vhu_req_name(m.hdr.request), m.hdr.size, nfds);
	ret = vhu_check_request(&m, nfds, b->d->nr_queues, &why);
	if (ret) {
		ret = perr(e, &m, why);
		goto out;
	}
	memset(&r, 0, sizeof(r));
	pthread_mutex_lock(&b->d->lock);
	ret = handle(b, &m, fds, nfds, &r, &rsize, e);
	pthread_mutex_unlock(&b->d->lock);
	if (rsize < 0 && (m.hdr.flags & VHU_FLAG_NEED_REPLY) &&
	    (b->protocol & (1ull << VHU_PF_REPLY_ACK))) {
		r.u64 = ret ? 1 : 0;
		rsize = 8;
		/* A refused request is answered, not a broken connection. */
		if (ret)
			fprintf(stderr, "%s (refused)\n", e->msg);
		ret = 0;
	}
	if (!ret && rsize >= 0 && reply(sock, &m, &r, (uint32_t)rsize))
		ret = err_set(e, -EPIPE, "vhost-user %s: reply not sent",
			      vhu_req_name(m.hdr.request));
out:
	vhu_close_fds(fds, nfds);
	return ret;
}

int vhu_back_serve(int sock, struct virtio_dev *d, struct guest_mem *gm,
		   volatile sig_atomic_t *stop, struct err *e)
{
	struct back b = { .d = d, .gm = gm };
	int ret = 0;

	vhu_memtab_init(&b.tab);
	for (int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		b.kick[q] = b.call[q] = b.err[q] = -1;
	d->tops = &back_tops;
	d->transport = &b;
	while (!ret && !*stop) {
		struct pollfd p[1 + VIRTIO_MAX_QUEUES + 2];
		int map[1 + VIRTIO_MAX_QUEUES + 2], n = 0;

		p[n] = (struct pollfd){ .fd = sock, .events = POLLIN };
		map[n++] = -1;
		for (int q = 0; q < d->nr_queues; q++)
			if (b.kick[q] >= 0) {
				p[n] = (struct pollfd){ .fd = b.kick[q],
							.events = POLLIN };
				map[n++] = q;
			}
		for (int i = 0; i < d->nr_watch_fds; i++) {
			p[n] = (struct pollfd){ .fd = d->watch_fds[i],
						.events = POLLIN };
			map[n++] = 1000 + i;
		}
		if (poll(p, (nfds_t)n, 1000) < 0) {
			if (errno == EINTR)
				continue;
			ret = err_set(e, -errno, "poll: %s", strerror(errno));
			break;
		}
		for (int i = n - 1; i >= 0 && !ret; i--) {
			if (!p[i].revents)
				continue;
			if (map[i] == -1) {
				ret = on_message(&b, sock, e);
			} else if (map[i] >= 1000) {
				pthread_mutex_lock(&d->lock);
				if (d->ops->fd_ready)
					d->ops->fd_ready(
						d, d->watch_fds[map[i] - 1000]);
				pthread_mutex_unlock(&d->lock);
			} else {
				/* Drain first: a kick during the run re-arms. */
				efd_drain(b.kick[map[i]]);
				virtio_dev_kick(d, map[i]);
			}
		}
	}
	pthread_mutex_lock(&d->lock);
	if (d->ops->quiesce)
		d->ops->quiesce(d);
	for (int q = 0; q < d->nr_queues; q++) {
		d->vq[q].ready = false;
		set_fd(&b.kick[q], -1);
		set_fd(&b.call[q], -1);
		set_fd(&b.err[q], -1);
	}
	d->status = 0;
	d->tops = NULL;
	d->transport = NULL;
	pthread_mutex_unlock(&d->lock);
	vhu_memtab_clear(&b.tab);
	return ret > 0 ? 0 : ret;
}

int vhu_back_listen(const char *path, struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_config(e, -ENAMETOOLONG, "socket path '%s' too long",
				  path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_config(e, -EEXIST,
					  "'%s' exists and is not a socket",
					  path);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, -errno, "socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, 0600) < 0 || listen(fd, 1) < 0) {
		int ret = -errno;

		close(fd);
		return err_set(e, ret, "socket '%s': %s", path, strerror(-ret));
	}
	return fd;
}

int vhu_back_accept(int lfd, struct err *e)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd;

	do {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return err_set(e, -errno, "accept: %s", strerror(errno));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
	    (cr.uid != geteuid() && cr.uid != 0)) {
		close(fd);
		return err_set(e, -EACCES,
			       "front-end (uid %u) is not this user or root: "
			       "refused",
			       (unsigned)cr.uid);
	}
	return fd;
}
