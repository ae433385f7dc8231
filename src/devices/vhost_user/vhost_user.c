// SPDX-License-Identifier: MIT
#include "devices/vhost_user/vhost_user.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/efd.h"
#include "util/log.h"
#include "util/time.h"
#include "vhost_user/front.h"
#include "virtio/remote.h"
#include "virtio/standin.h"

/* What the guest sees as QueueNumMax; every back-end here takes it. */
#define QUEUE_MAX 256
#define RECONNECT_MS 200
/* Requests failed per queue per pass, whatever the guest posted. */
#define FAIL_BUDGET 1024
/* The virtio-blk config through write_zeroes (virtio 1.2, 5.2.4). */
#define BLK_CONFIG_SIZE 60
#define BLK_CONFIG_WCE_OFF 32
#define FS_CONFIG_SIZE (VHU_FS_TAG_MAX + 4)

/* Device feature bits passed from the back-end to the guest: what wisp's
 * transport and these device types are known to handle. */
#define BLK_FEATURES                                                           \
	((1ull << 1) | (1ull << 2) | (1ull << 4) | (1ull << 5) | (1ull << 6) | \
	 (1ull << 9) | (1ull << 10) | (1ull << 11) | (1ull << 13) |            \
	 (1ull << 14))
#define GENERIC_FEATURES 0xffffffull
#define TRANSPORT_FEATURES                       \
	((1ull << VIRTIO_F_RING_INDIRECT_DESC) | \
	 (1ull << VIRTIO_F_RING_EVENT_IDX) | (1ull << VIRTIO_F_VERSION_1))

struct vhu_dev {
	struct virtio_dev vdev;
	struct virtio_remote rem;
	struct vhu_front front;
	char name[48];
	char *path;
	uint64_t offered;
	uint8_t config[VHU_MAX_CONFIG];
	bool remote_config; /* the back-end serves the config space */
	bool started; /* the rings are the back-end's */
	bool lost; /* reconnecting */
	int inflight_fd;
	uint8_t *inflight;
	uint64_t inflight_size;
	uint64_t last_retry_log_ns;
};

static struct vhu_dev *to_vhu(struct virtio_dev *d)
{
	return d->priv;
}

static uint64_t vhu_features(struct virtio_dev *d)
{
	return to_vhu(d)->offered;
}

static void vhu_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data,
			    uint32_t len)
{
	memcpy(data, to_vhu(d)->config + off, len);
}

static void lose(struct vhu_dev *v, const char *why);

static void vhu_config_write(struct virtio_dev *d, uint32_t off,
			     const uint8_t *data, uint32_t len)
{
	struct vhu_dev *v = to_vhu(d);
	struct err e;

	/* virtio-blk has one writable field (writeback); virtio-fs none. */
	if (!v->remote_config || (d->device_id == VIRTIO_ID_BLOCK &&
				  (off != BLK_CONFIG_WCE_OFF || len != 1)))
		return;
	memcpy(v->config + off, data, len);
	if (!v->lost && vhu_front_set_config(&v->front, off, data, len, &e))
		lose(v, e.msg);
}

static void unmap_inflight(struct vhu_dev *v)
{
	if (v->inflight)
		munmap(v->inflight, v->inflight_size);
	if (v->inflight_fd >= 0)
		close(v->inflight_fd);
	v->inflight = NULL;
	v->inflight_fd = -1;
	v->inflight_size = 0;
}

static int cmp_counter(const void *a, const void *b, void *arg)
{
	const struct vhu_inflight_queue *qr = arg;
	uint64_t ca = qr->desc[*(const uint16_t *)a].counter;
	uint64_t cb = qr->desc[*(const uint16_t *)b].counter;

	return ca < cb ? -1 : ca > cb;
}

/* Fails, with the back-end's inflight buffer, exactly the requests it
 * had taken from queue q and not completed, oldest first (the buffer is
 * the dead back-end's and is only trusted for descriptor indices, each
 * checked). Returns how many, or -1 when the buffer says nothing. */
static int fail_inflight_exact(struct vhu_dev *v, int q)
{
	struct virtq vq = v->vdev.vq[q];
	struct vhu_inflight_queue *qr;
	uint16_t heads[QUEUE_MAX], used_now, avail_now, h;
	struct virtq_chain *c;
	const char *why = NULL;
	int n = 0, nh = 0;

	if (!v->inflight ||
	    (uint64_t)(q + 1) * vhu_inflight_queue_size(QUEUE_MAX) >
		    v->inflight_size)
		return -1;
	qr = (void *)(v->inflight +
		      (uint64_t)q * vhu_inflight_queue_size(QUEUE_MAX));
	if (!qr->version || qr->desc_num < vq.size)
		return -1;
	used_now = virtq_used_idx_in_ring(&vq);
	avail_now = virtq_avail_idx(&vq);
	/* The last batch the back-end published may still be marked. */
	h = qr->last_batch_head;
	for (uint16_t k = 0; k < (uint16_t)(used_now - qr->used_idx) &&
			     k < vq.size && h < vq.size;
	     k++) {
		qr->desc[h].inflight = 0;
		h = qr->desc[h].next;
	}
	for (uint16_t i = 0; i < vq.size; i++)
		if (qr->desc[i].inflight == 1)
			heads[nh++] = i;
	qsort_r(heads, (size_t)nh, sizeof(heads[0]), cmp_counter, qr);
	c = malloc(sizeof(*c));
	if (!c)
		return -1;
	vq.used_idx = used_now;
	for (int i = 0; i < nh && n < (uint16_t)(avail_now - used_now); i++) {
		if (virtq_chain_at(&vq, heads[i], c, &why) ||
		    !virtio_blk_fail_chain(c))
			continue;
		virtq_push(&vq, c->head, 1);
		qr->desc[heads[i]].inflight = 0;
		n++;
	}
	free(c);
	vq.last_avail = vq.used_idx;
	virtq_update_avail_event(&vq);
	if (n)
		virtio_dev_raise_vring(&v->vdev);
	return n;
}

static void fail_inflight(struct vhu_dev *v, int q)
{
	int n;

	if (v->vdev.device_id != VIRTIO_ID_BLOCK || !v->vdev.vq[q].ready)
		return;
	n = fail_inflight_exact(v, q);
	if (n < 0)
		n = virtio_remote_fail_pending(
			&v->vdev, q, virtio_blk_fail_chain, FAIL_BUDGET);
	if (n)
		log_warn("%s: failed %d request(s) the back-end had in flight "
			 "on queue %d",
			 v->name, n, q);
}

/* The back-end is gone or misbehaved: drop it, fail what it had, and
 * start reconnecting. */
static void lose(struct vhu_dev *v, const char *why)
{
	if (v->lost)
		return;
	log_warn("%s: vhost-user back-end lost: %s; reconnecting to '%s'",
		 v->name, why, v->path);
	virtio_remote_watch(&v->rem, -1);
	vhu_front_close(&v->front);
	if (v->started)
		for (int q = 0; q < v->vdev.nr_queues; q++)
			fail_inflight(v, q);
	v->started = false;
	unmap_inflight(v);
	v->lost = true;
	if (v->vdev.status & VIRTIO_STATUS_DRIVER_OK) {
		v->vdev.status |= VIRTIO_STATUS_NEEDS_RESET;
		virtio_dev_notify_config(&v->vdev);
	}
	virtio_remote_timer(&v->rem, RECONNECT_MS);
}

static int start_rings(struct vhu_dev *v, struct err *e)
{
	struct virtio_dev *d = &v->vdev;
	int ret;

	ret = vhu_front_set_features(&v->front, d->features, e);
	if (ret)
		return ret;
	if (vhu_front_has(&v->front, VHU_PF_INFLIGHT_SHMFD)) {
		if (!v->inflight)
			ret = vhu_front_get_inflight(&v->front,
						     (uint16_t)d->nr_queues,
						     QUEUE_MAX, &v->inflight_fd,
						     (void **)&v->inflight,
						     &v->inflight_size, e);
		if (!ret)
			ret = vhu_front_set_inflight(&v->front, v->inflight_fd,
						     v->inflight_size,
						     (uint16_t)d->nr_queues,
						     QUEUE_MAX, e);
		if (ret)
			return ret;
	}
	for (int q = 0; q < d->nr_queues; q++) {
		struct virtq *vq = &d->vq[q];
		struct vhu_vring_setup s = { .index = (uint32_t)q,
					     .num = vq->size,
					     .kick = d->kick_fds[q],
					     .call = d->irq_fd,
					     .err = v->rem.err[q] };

		if (!vq->ready)
			continue;
		/* The rings were checked against guest RAM at QueueReady. */
		s.desc_ua = (uintptr_t)guest_mem_ptr(d->mem, vq->desc_gpa,
						     16ull * vq->size);
		s.avail_ua = (uintptr_t)guest_mem_ptr(d->mem, vq->avail_gpa,
						      6 + 2ull * vq->size);
		s.used_ua = (uintptr_t)guest_mem_ptr(d->mem, vq->used_gpa,
						     6 + 8ull * vq->size);
		/* Where the guest is: what a previous back-end completed or
		 * wisp failed is behind the used index. With EVENT_IDX the
		 * driver kicks only past avail_event, which a dead back-end
		 * left where it stopped: publish the base, so the next kick
		 * comes for the first new buffer. */
		s.base = virtq_used_idx_in_ring(vq);
		if (vq->event_idx) {
			struct virtq tmp = *vq;

			tmp.last_avail = s.base;
			virtq_update_avail_event(&tmp);
		}
		ret = vhu_front_start_vring(&v->front, &s, e);
		if (ret)
			return ret;
	}
	v->started = true;
	/* Requests posted while no back-end ran: look at them now. */
	for (int q = 0; q < d->nr_queues; q++)
		if (d->vq[q].ready)
			efd_signal(d->kick_fds[q]);
	return 0;
}

static int vhu_activate(struct virtio_dev *d)
{
	struct vhu_dev *v = to_vhu(d);
	struct err e;

	if (v->lost)
		return 0; /* the rings start when the back-end is back */
	if (start_rings(v, &e))
		lose(v, e.msg);
	return 0;
}

static void vhu_reset(struct virtio_dev *d)
{
	struct vhu_dev *v = to_vhu(d);
	struct err e;

	if (v->started && !v->lost) {
		for (int q = 0; q < d->nr_queues; q++) {
			uint16_t base;

			if (d->vq[q].ready &&
			    vhu_front_stop_vring(&v->front, (uint32_t)q, &base,
						 &e)) {
				lose(v, e.msg);
				break;
			}
		}
	}
	v->started = false;
	/* A reset device gets a new inflight buffer (vhost-user.rst). */
	unmap_inflight(v);
}

/* wisp's transport is virtio 1 only (virtio-mmio version 2). */
static int check_version(struct vhu_dev *v, struct err *e)
{
	if (!(v->front.features & (1ull << VIRTIO_F_VERSION_1)))
		return err_config(e, -ENOTSUP,
				  "%s: the vhost-user back-end at '%s' does "
				  "not offer VIRTIO_F_VERSION_1",
				  v->name, v->path);
	return 0;
}

/* Memory, config: what a new connection needs before any ring. */
static int setup_connection(struct vhu_dev *v, struct err *e)
{
	struct guest_mem *m = v->vdev.mem;
	struct vhu_region r[GUEST_MEM_MAX_REGIONS];
	int ret = check_version(v, e);

	if (ret)
		return ret;
	for (int i = 0; i < m->nr_regions; i++)
		r[i] = (struct vhu_region){
			.gpa = m->regions[i].gpa,
			.size = m->regions[i].size,
			.ua = (uintptr_t)(m->host + m->regions[i].offset),
			.offset = m->regions[i].offset,
		};
	ret = vhu_front_set_mem(&v->front, r, m->nr_regions, m->memfd, e);
	if (!ret && v->remote_config)
		ret = vhu_front_get_config(&v->front, 0, v->config,
					   v->vdev.config_size, e);
	return ret;
}

static void vhu_timer(struct virtio_dev *d)
{
	struct vhu_dev *v = to_vhu(d);
	uint64_t now = now_ns();
	struct err e;
	int ret;

	if (!v->lost) {
		virtio_remote_timer(&v->rem, 0);
		return;
	}
	/* Block requests posted while nobody serves them fail at once. */
	if ((d->status & VIRTIO_STATUS_DRIVER_OK) &&
	    d->device_id == VIRTIO_ID_BLOCK)
		for (int q = 0; q < d->nr_queues; q++)
			virtio_remote_fail_pending(d, q, virtio_blk_fail_chain,
						   FAIL_BUDGET);
	ret = vhu_front_connect(&v->front, &e);
	if (!ret && (d->status & VIRTIO_STATUS_DRIVER_OK) &&
	    (d->features & ~v->front.features))
		ret = err_set(&e, -ENOTSUP,
			      "%s: the new back-end lacks features the "
			      "driver uses (0x%llx)",
			      v->name,
			      (unsigned long long)(d->features &
						   ~v->front.features));
	if (!ret)
		ret = setup_connection(v, &e);
	if (!ret && (d->status & VIRTIO_STATUS_DRIVER_OK))
		ret = start_rings(v, &e);
	if (!ret)
		ret = virtio_remote_watch(&v->rem, v->front.sock);
	if (ret) {
		vhu_front_close(&v->front);
		v->started = false;
		unmap_inflight(v);
		if (!v->last_retry_log_ns ||
		    now - v->last_retry_log_ns > 5000000000ull) {
			v->last_retry_log_ns = now;
			log_info("%s: reconnect: %s", v->name, e.msg);
		}
		return;
	}
	v->lost = false;
	v->last_retry_log_ns = 0;
	virtio_remote_timer(&v->rem, 0);
	d->status &= ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET;
	d->broken = false;
	log_warn("%s: vhost-user back-end at '%s' reconnected", v->name,
		 v->path);
	/* The config may have changed (a resized image). */
	virtio_dev_notify_config(d);
}

static void vhu_sock_ready(struct virtio_dev *d)
{
	struct vhu_dev *v = to_vhu(d);
	char b;
	ssize_t n;

	if (v->front.sock < 0)
		return;
	n = recv(v->front.sock, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	lose(v, n == 0 ? "it closed the connection" :
		n > 0  ? "it sent a message nobody asked for" :
			 strerror(errno));
}

static void vhu_ring_error(struct virtio_dev *d, int q)
{
	char why[64];

	snprintf(why, sizeof(why), "the back-end reported an error on queue %d",
		 q);
	virtio_dev_set_broken(d, why);
}

static const struct virtio_remote_ops remote_ops = {
	.ring_error = vhu_ring_error,
	.sock_ready = vhu_sock_ready,
	.timer = vhu_timer,
};

static void vhu_fd_ready(struct virtio_dev *d, int fd)
{
	virtio_remote_fd_ready(&to_vhu(d)->rem);
}

static void vhu_destroy(struct virtio_dev *d)
{
	struct vhu_dev *v = to_vhu(d);

	vhu_front_close(&v->front);
	unmap_inflight(v);
	virtio_remote_fini(&v->rem);
	virtio_dev_fini(d);
	free(v->path);
	free(v);
}

static const struct virtio_dev_ops vhu_ops = {
	.features = vhu_features,
	.config_read = vhu_config_read,
	.config_write = vhu_config_write,
	.activate = vhu_activate,
	.reset = vhu_reset,
	.fd_ready = vhu_fd_ready,
	.destroy = vhu_destroy,
};

int vhu_dev_create(const struct vhu_dev_config *c, struct guest_mem *mem,
		   struct virtio_dev **out, struct err *e)
{
	struct vhu_dev *v;
	uint32_t config_size = 0;
	uint64_t mask = GENERIC_FEATURES;
	int nq = c->queues, ret;
	const char *kind = "vhost-user";

	*out = NULL;
	switch (c->device_id) {
	case VIRTIO_ID_BLOCK:
		nq = 1;
		config_size = BLK_CONFIG_SIZE;
		mask = BLK_FEATURES;
		kind = "vhost-user-blk";
		break;
	case VIRTIO_ID_FS:
		nq = 2; /* hiprio + one request queue */
		config_size = FS_CONFIG_SIZE;
		mask = 0;
		kind = "fs";
		break;
	default:
		config_size = c->config_size;
		break;
	}
	if (nq < 1 || nq > VIRTIO_MAX_QUEUES || config_size > VHU_MAX_CONFIG)
		return err_config(e, -EINVAL,
				  "vhost-user device: %d queues (1 to %d), "
				  "config of %u bytes (at most %d)",
				  nq, VIRTIO_MAX_QUEUES, config_size,
				  VHU_MAX_CONFIG);
	v = calloc(1, sizeof(*v));
	if (!v)
		return err_set(e, -ENOMEM, "vhost-user device: out of memory");
	v->inflight_fd = -1;
	v->path = strdup(c->socket);
	snprintf(v->name, sizeof(v->name), "%s%s%s", kind, c->id ? " " : "",
		 c->id ? c->id : "");
	virtio_dev_init(&v->vdev, v->name, c->device_id, &vhu_ops, v, mem, nq,
			QUEUE_MAX, config_size);
	vhu_front_init(&v->front, v->name, v->path ? v->path : "");
	ret = v->path ? virtio_remote_init(&v->rem, &v->vdev, &remote_ops, e) :
			err_set(e, -ENOMEM, "%s: out of memory", v->name);
	if (ret) {
		virtio_dev_fini(&v->vdev);
		free(v->path);
		free(v);
		return ret;
	}
	if (c->device_id == VIRTIO_ID_FS) {
		size_t n = strlen(c->tag);

		memcpy(v->config, c->tag,
		       n > VHU_FS_TAG_MAX ? VHU_FS_TAG_MAX : n);
		v->config[VHU_FS_TAG_MAX] = 1; /* num_request_queues, LE */
	} else if (config_size) {
		v->remote_config = true;
	}
	ret = vhu_front_connect(&v->front, e);
	if (ret == -ENOENT || ret == -ECONNREFUSED)
		e->cls = ERR_CONFIG; /* nobody serves the socket given */
	if (!ret)
		ret = check_version(v, e);
	if (!ret && v->remote_config &&
	    !vhu_front_has(&v->front, VHU_PF_CONFIG))
		ret = err_config(e, -ENOTSUP,
				 "%s: the back-end at '%s' does not serve the "
				 "device's config space (no CONFIG protocol "
				 "feature)",
				 v->name, v->path);
	if (!ret)
		ret = setup_connection(v, e);
	if (!ret)
		ret = virtio_remote_watch(&v->rem, v->front.sock);
	if (ret) {
		vhu_destroy(&v->vdev);
		return ret;
	}
	v->offered = v->front.features & (mask | TRANSPORT_FEATURES);
	log_info("%s: vhost-user back-end at '%s': features 0x%llx, protocol "
		 "features 0x%llx",
		 v->name, v->path, (unsigned long long)v->front.features,
		 (unsigned long long)v->front.protocol);
	*out = &v->vdev;
	return 0;
}
