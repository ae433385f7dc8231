// SPDX-License-Identifier: MIT
#include "devices/vsock/vsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/vsock/uds.h"
#include "util/le.h"
#include "util/log.h"
#include "util/ser.h"

struct vsock {
	struct virtio_dev dev;
	char name[32];
	uint64_t cid;
	char *uds;
	struct vsock_mux *mux;
	bool reset_pending; /* a TRANSPORT_RESET event waits for a buffer */
	/* Sent, and the driver has not kicked the event queue since: it
	 * may not have handled it yet, so host clients wait (the driver
	 * kicks after it refilled the buffer it handled the event in). */
	bool reset_unacked;
	/* The event queue's avail index when the event went out: a kick
	 * with it unchanged is not the driver's refill (the restore's
	 * re-signal of every queue is one). */
	uint16_t reset_avail;
	uint64_t tx_malformed, resets_sent;
	uint8_t pkt[VSOCK_MAX_PKT]; /* one packet's payload, either way */
	struct virtq_chain chain;
};

static struct vsock *to_vsock(struct virtio_dev *d)
{
	return d->priv;
}

/* Gives back a chain taken for a packet that did not come: nothing was
 * completed, so the driver still owns it. */
static void unpop(struct virtq *vq)
{
	vq->last_avail = (uint16_t)(vq->last_avail - 1);
}

static void rx_process(struct vsock *v)
{
	struct virtio_dev *d = &v->dev;
	struct virtq *vq = &d->vq[VSOCK_RXQ];
	bool pushed = false;

	if (!vq->ready)
		return;
	while (vsock_mux_has_work(v->mux)) {
		uint8_t hb[VSOCK_HDR_SIZE];
		struct vsock_hdr h;
		uint32_t max;
		int r = virtio_dev_pop(d, VSOCK_RXQ, &v->chain);

		if (r <= 0)
			break;
		if (v->chain.nr_read) {
			virtio_dev_set_broken(
				d, "rx buffer with device-readable parts");
			break;
		}
		if (v->chain.write_len < VSOCK_HDR_SIZE) {
			virtio_dev_set_broken(
				d, "rx buffer too small for a header");
			break;
		}
		max = v->chain.write_len - VSOCK_HDR_SIZE;
		if (max > VSOCK_MAX_PKT)
			max = VSOCK_MAX_PKT;
		if (!vsock_mux_to_guest(v->mux, &h, v->pkt, max)) {
			unpop(vq);
			break;
		}
		vsock_hdr_encode(&h, hb);
		virtq_chain_write(&v->chain, 0, hb, sizeof(hb));
		virtq_chain_write(&v->chain, VSOCK_HDR_SIZE, v->pkt, h.len);
		virtq_push(vq, v->chain.head, VSOCK_HDR_SIZE + h.len);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_queue(d, VSOCK_RXQ);
}

static void tx_process(struct vsock *v)
{
	struct virtio_dev *d = &v->dev;
	struct virtq *vq = &d->vq[VSOCK_TXQ];
	bool pushed = false;

	if (!vq->ready)
		return;
	while (virtio_dev_pop(d, VSOCK_TXQ, &v->chain) > 0) {
		uint8_t hb[VSOCK_HDR_SIZE];
		struct vsock_hdr h;
		uint32_t avail;

		if (v->chain.nr_write) {
			virtio_dev_set_broken(
				d, "tx buffer with device-writable parts");
			break;
		}
		if (v->chain.read_len < VSOCK_HDR_SIZE) {
			v->tx_malformed++;
		} else {
			/* Copied once: the guest may rewrite it meanwhile. */
			virtq_chain_read(&v->chain, 0, hb, sizeof(hb));
			vsock_hdr_decode(hb, &h);
			avail = v->chain.read_len - VSOCK_HDR_SIZE;
			if (avail > VSOCK_MAX_PKT)
				avail = VSOCK_MAX_PKT;
			if (h.len < avail)
				avail = h.len;
			virtq_chain_read(&v->chain, VSOCK_HDR_SIZE, v->pkt,
					 avail);
			vsock_mux_from_guest(v->mux, &h, v->pkt, avail);
		}
		virtq_push(vq, v->chain.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_queue(d, VSOCK_TXQ);
}

static void ev_process(struct vsock *v)
{
	struct virtio_dev *d = &v->dev;
	uint8_t ev[VSOCK_EVENT_SIZE];

	if (!v->reset_pending || !d->vq[VSOCK_EVQ].ready)
		return;
	if (virtio_dev_pop(d, VSOCK_EVQ, &v->chain) <= 0)
		return;
	if (v->chain.nr_read || v->chain.write_len < VSOCK_EVENT_SIZE) {
		virtio_dev_set_broken(d, "event buffer too small or readable");
		return;
	}
	put32(ev, VSOCK_EVENT_TRANSPORT_RESET);
	virtq_chain_write(&v->chain, 0, ev, sizeof(ev));
	virtq_push(&d->vq[VSOCK_EVQ], v->chain.head, sizeof(ev));
	/* The driver's kick after it handled the event ends the hold on
	 * host clients; with EVENT_IDX it kicks only if avail_event says
	 * so: ask for a kick on the next buffer it adds, not on the next
	 * one this device would pop (the buffers it has are already
	 * there). */
	{
		struct virtq tmp = d->vq[VSOCK_EVQ];

		tmp.last_avail = virtq_avail_idx(&tmp);
		virtq_update_avail_event(&tmp);
		v->reset_avail = tmp.last_avail;
	}
	v->reset_pending = false;
	v->reset_unacked = true;
	v->resets_sent++;
	virtio_dev_notify_queue(d, VSOCK_EVQ);
}

/* Everything that can move: the guest's packets first (they may ask for
 * answers and open sockets), then the host sockets (the new ones'
 * first events included, so the watch goes quiet), then what the guest
 * is owed. */
static void pump(struct vsock *v)
{
	struct virtio_dev *d = &v->dev;
	bool live = !d->broken && (d->status & VIRTIO_STATUS_DRIVER_OK);

	if (live)
		tx_process(v);
	vsock_mux_poll(v->mux);
	if (!live || d->broken)
		return;
	rx_process(v);
	if (!d->broken)
		ev_process(v);
}

static uint64_t vsock_features(struct virtio_dev *d)
{
	/* Stream sockets only: with no feature bit the device is a
	 * stream device (5.10.3). */
	return 0;
}

static void vsock_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data,
			      uint32_t len)
{
	uint8_t cfg[VSOCK_CONFIG_SIZE];

	put64(cfg, to_vsock(d)->cid);
	if (off > sizeof(cfg) || len > sizeof(cfg) - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, cfg + off, len);
}

static void vsock_config_write(struct virtio_dev *d, uint32_t off,
			       const uint8_t *data, uint32_t len)
{
	/* guest_cid is read-only. */
}

static int vsock_activate(struct virtio_dev *d)
{
	pump(to_vsock(d));
	return 0;
}

static void vsock_queue_notify(struct virtio_dev *d, int q)
{
	struct vsock *v = to_vsock(d);

	if (q == VSOCK_EVQ && v->reset_unacked &&
	    virtq_avail_idx(&d->vq[VSOCK_EVQ]) != v->reset_avail) {
		v->reset_unacked = false;
		vsock_mux_hold_host(v->mux, false);
	}
	pump(v);
}

static void vsock_fd_ready(struct virtio_dev *d, int fd)
{
	/* Always drained, live driver or not: the set is level-triggered
	 * for the I/O thread. */
	pump(to_vsock(d));
}

static void vsock_reset(struct virtio_dev *d)
{
	struct vsock *v = to_vsock(d);

	vsock_mux_reset(v->mux);
	v->reset_pending = false;
	v->reset_unacked = false;
	vsock_mux_hold_host(v->mux, false);
}

static void vsock_destroy(struct virtio_dev *d)
{
	struct vsock *v = to_vsock(d);

	vsock_mux_destroy(v->mux);
	free(v->uds);
	virtio_dev_fini(d);
	free(v);
}

/* Connections are host sockets, which no state file can carry: a
 * restored device starts with none and owes the driver a
 * TRANSPORT_RESET, so the guest drops its connections (ECONNRESET) and
 * re-reads its CID, as after Firecracker's restore. The payload: a
 * version and the next host-side port (vsock_mux_next_port). */
#define VSOCK_STATE_VERSION 1

static void vsock_save(struct virtio_dev *d, struct ser_w *w)
{
	ser_u32(w, VSOCK_STATE_VERSION);
	ser_u32(w, vsock_mux_next_port(to_vsock(d)->mux));
}

static int vsock_load(struct virtio_dev *d, const uint8_t *p, uint32_t len,
		      const char **why)
{
	struct ser_r r = { p, len, 0, false };
	struct vsock *v = to_vsock(d);
	uint32_t ver = deser_u32(&r), port = deser_u32(&r);

	if (ver != VSOCK_STATE_VERSION || !deser_done(&r) ||
	    port < VSOCK_LOCAL_PORT_BASE) {
		*why = "unknown or malformed virtio-vsock state";
		return -EINVAL;
	}
	vsock_mux_set_next_port(v->mux, port);
	/* Sent by activate (which follows for a live driver) or on the
	 * driver's next event-queue kick if no buffer is there yet. */
	if (d->status & VIRTIO_STATUS_DRIVER_OK) {
		/* A host client that got in between the listener's creation
		 * and this load has not reached the guest (the device was
		 * not live): it waits for the hold, with the later ones,
		 * instead of reaching the guest before the event and being
		 * reset by it. */
		vsock_mux_reset_known(v->mux);
		v->reset_pending = true;
		vsock_mux_hold_host(v->mux, true);
	}
	return 0;
}

static const struct virtio_dev_ops vsock_ops = {
	.features = vsock_features,
	.save = vsock_save,
	.load = vsock_load,
	.config_read = vsock_config_read,
	.config_write = vsock_config_write,
	.activate = vsock_activate,
	.queue_notify = vsock_queue_notify,
	.reset = vsock_reset,
	.fd_ready = vsock_fd_ready,
	.destroy = vsock_destroy,
};

int vsock_create(const struct vsock_config *cfg, struct guest_mem *mem,
		 struct virtio_dev **out, struct err *e)
{
	struct vsock *v;
	int ret;

	*out = NULL;
	if (cfg->guest_cid < VSOCK_CID_MIN || cfg->guest_cid > VSOCK_CID_MAX)
		return err_config(e, -EINVAL,
				  "vsock: guest CID %llu is not in %u..%u",
				  (unsigned long long)cfg->guest_cid,
				  VSOCK_CID_MIN, VSOCK_CID_MAX);
	ret = vsock_uds_check_path(cfg->uds_path, e);
	if (ret)
		return ret;
	v = calloc(1, sizeof(*v));
	if (!v || !(v->uds = strdup(cfg->uds_path))) {
		free(v);
		return err_set(e, -ENOMEM, "vsock: out of memory");
	}
	v->cid = cfg->guest_cid;
	snprintf(v->name, sizeof(v->name), "virtio-vsock");
	ret = vsock_mux_create(v->cid, v->uds, &v->mux, e);
	if (ret) {
		free(v->uds);
		free(v);
		return ret;
	}
	virtio_dev_init(&v->dev, v->name, VIRTIO_ID_VSOCK, &vsock_ops, v, mem,
			3, VSOCK_QUEUE_SIZE, VSOCK_CONFIG_SIZE);
	v->dev.watch_fds[0] = vsock_mux_fd(v->mux);
	v->dev.nr_watch_fds = 1;
	*out = &v->dev;
	return 0;
}

void vsock_transport_reset(struct virtio_dev *d)
{
	struct vsock *v = to_vsock(d);

	pthread_mutex_lock(&d->lock);
	vsock_mux_reset(v->mux);
	v->reset_pending = true;
	vsock_mux_hold_host(v->mux, true);
	if (!d->broken && (d->status & VIRTIO_STATUS_DRIVER_OK))
		ev_process(v);
	pthread_mutex_unlock(&d->lock);
}

void vsock_get_stats(struct virtio_dev *d, struct vsock_stats *s)
{
	struct vsock *v = to_vsock(d);

	vsock_mux_get_stats(v->mux, &s->mux);
	s->tx_malformed = v->tx_malformed;
	s->resets_sent = v->resets_sent;
}
