// SPDX-License-Identifier: MIT
#include "devices/console/console.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/outfd.h"
#include "util/counter.h"
#include "util/log.h"

#define CFG_EMERG_WR 8

struct vconsole {
	struct virtio_dev dev;
	int out_fd; /* -1 after a hard error */
	size_t out_chunk; /* outfd_chunk(out_fd) */
	void (*rx_space)(void *opaque);
	void *rx_space_opaque;

	/* Guarded by dev.lock. */
	uint8_t rx[VCONSOLE_RX_SIZE];
	size_t rx_head, rx_count;
	bool rx_was_full;
	struct virtq_chain chain;
	struct vconsole_stats st;
};

static struct vconsole *to_vc(struct virtio_dev *d)
{
	return d->priv;
}

static uint64_t vc_features(struct virtio_dev *d)
{
	return 1ULL << VIRTIO_CONSOLE_F_SIZE |
	       1ULL << VIRTIO_CONSOLE_F_EMERG_WRITE;
}

static void vc_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data,
			   uint32_t len)
{
	uint8_t cfg[VCONSOLE_CONFIG_SIZE] = {
		VCONSOLE_COLS & 0xff, VCONSOLE_COLS >> 8, /* cols */
		VCONSOLE_ROWS & 0xff, VCONSOLE_ROWS >> 8, /* rows */
		/* max_nr_ports (no MULTIPORT) and emerg_wr read as 0 */
	};

	memset(data, 0, len);
	if (off < sizeof(cfg))
		memcpy(data, cfg + off,
		       len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

/* Writes all of buf to out_fd or drops (and counts) what it cannot. */
static void out_write(struct vconsole *vc, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n;

		if (vc->out_fd < 0) {
			counter_add(&vc->st.out_dropped_bytes, len);
			return;
		}
		n = (ssize_t)outfd_room(vc->out_fd, vc->out_chunk, len);
		if (n == 0) {
			/* A slow reader: drop rather than hold the lock. */
			counter_add(&vc->st.out_dropped_bytes, len);
			return;
		}
		n = write(vc->out_fd, buf, (size_t)n);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;

			counter_add(&vc->st.out_dropped_bytes, len);
			if (err != EAGAIN && err != EWOULDBLOCK) {
				log_warn("%s: output: %s; dropping further "
					 "output",
					 vc->dev.name, strerror(err));
				vc->out_fd = -1;
			}
			return;
		}
		counter_add(&vc->st.out_bytes, (uint64_t)n);
		buf += n;
		len -= (size_t)n;
	}
}

static void vc_config_write(struct virtio_dev *d, uint32_t off,
			    const uint8_t *data, uint32_t len)
{
	/* emerg_wr: the low byte of a write at its offset is a character. */
	if (off == CFG_EMERG_WR && len >= 1)
		out_write(to_vc(d), data, 1);
}

static int vc_activate(struct virtio_dev *d)
{
	return 0;
}

static void vc_reset(struct virtio_dev *d)
{
	/* Buffered input belongs to the host side and survives a reset; it
	 * is delivered once the driver posts buffers again. */
}

static bool rxq_live(const struct virtio_dev *d)
{
	return !d->broken && (d->status & VIRTIO_STATUS_DRIVER_OK) &&
	       d->vq[VCONSOLE_RXQ].ready;
}

/* Moves buffered input into posted receive buffers. Lock held. */
static void rx_flush_locked(struct vconsole *vc)
{
	struct virtio_dev *d = &vc->dev;
	struct virtq *vq = &d->vq[VCONSOLE_RXQ];
	struct virtq_chain *c = &vc->chain;
	bool pushed = false;

	/* An empty queue (with EVENT_IDX) asks for a kick when the driver
	 * posts more. */
	while (vc->rx_count && rxq_live(d) &&
	       virtio_dev_pop(d, VCONSOLE_RXQ, c) > 0) {
		uint32_t done = 0;

		if (c->nr_read) {
			virtio_dev_set_broken(
				d, "receive buffer is device-readable");
			break;
		}
		while (vc->rx_count && done < c->write_len) {
			size_t n = VCONSOLE_RX_SIZE - vc->rx_head;

			if (n > vc->rx_count)
				n = vc->rx_count;
			if (n > c->write_len - done)
				n = c->write_len - done;
			virtq_chain_write(c, done, vc->rx + vc->rx_head,
					  (uint32_t)n);
			done += (uint32_t)n;
			vc->rx_head = (vc->rx_head + n) % VCONSOLE_RX_SIZE;
			vc->rx_count -= n;
		}
		counter_add(&vc->st.in_bytes, done);
		virtq_push(vq, c->head, done);
		pushed = true;
	}
	if (!vc->rx_count)
		vc->rx_head = 0;
	if (pushed)
		virtio_dev_notify_queue(d, VCONSOLE_RXQ);
}

static void tx_locked(struct vconsole *vc)
{
	struct virtio_dev *d = &vc->dev;
	struct virtq *vq = &d->vq[VCONSOLE_TXQ];
	struct virtq_chain *c = &vc->chain;
	bool pushed = false;

	while (virtio_dev_pop(d, VCONSOLE_TXQ, c) > 0) {
		/* Device-writable parts of a transmit buffer are ignored. */
		for (int i = 0; i < c->nr_read; i++)
			out_write(vc, c->seg[i].host, c->seg[i].len);
		virtq_push(vq, c->head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_queue(d, VCONSOLE_TXQ);
}

static void vc_queue_notify(struct virtio_dev *d, int q)
{
	struct vconsole *vc = to_vc(d);
	void (*cb)(void *) = NULL;
	void *opaque = NULL;

	if (q == VCONSOLE_TXQ) {
		tx_locked(vc);
		return;
	}
	if (q != VCONSOLE_RXQ)
		return;
	rx_flush_locked(vc);
	if (vc->rx_was_full && vc->rx_count <= VCONSOLE_RX_SIZE / 2) {
		vc->rx_was_full = false;
		cb = vc->rx_space;
		opaque = vc->rx_space_opaque;
	}
	if (cb) {
		/* The callback may push more input, which takes the lock. */
		pthread_mutex_unlock(&d->lock);
		cb(opaque);
		pthread_mutex_lock(&d->lock);
	}
}

static void vc_destroy(struct virtio_dev *d)
{
	virtio_dev_fini(d);
	free(to_vc(d));
}

static const struct virtio_dev_ops vc_ops = {
	.features = vc_features,
	.config_read = vc_config_read,
	.config_write = vc_config_write,
	.activate = vc_activate,
	.queue_notify = vc_queue_notify,
	.reset = vc_reset,
	.destroy = vc_destroy,
};

int vconsole_create(int out_fd, struct guest_mem *mem, struct virtio_dev **out,
		    struct err *e)
{
	struct vconsole *vc;

	*out = NULL;
	vc = calloc(1, sizeof(*vc));
	if (!vc)
		return err_set(e, -ENOMEM, "virtio-console: out of memory");
	vc->out_fd = out_fd;
	vc->out_chunk = outfd_chunk(out_fd);
	virtio_dev_init(&vc->dev, "virtio-console", VIRTIO_ID_CONSOLE, &vc_ops,
			vc, mem, 2, VCONSOLE_QUEUE_SIZE, VCONSOLE_CONFIG_SIZE);
	*out = &vc->dev;
	return 0;
}

size_t vconsole_push_input(struct virtio_dev *d, const uint8_t *buf, size_t len)
{
	struct vconsole *vc = to_vc(d);
	size_t taken = 0;

	pthread_mutex_lock(&d->lock);
	while (taken < len) {
		size_t space = VCONSOLE_RX_SIZE - vc->rx_count;
		size_t n = len - taken < space ? len - taken : space;
		size_t before;

		for (size_t i = 0; i < n; i++)
			vc->rx[(vc->rx_head + vc->rx_count + i) %
			       VCONSOLE_RX_SIZE] = buf[taken + i];
		vc->rx_count += n;
		taken += n;
		before = vc->rx_count;
		rx_flush_locked(vc);
		/* Stop when the guest took nothing and no room is left. */
		if (vc->rx_count == before && vc->rx_count == VCONSOLE_RX_SIZE)
			break;
	}
	/* The caller stops reading its input until rx-space when we could
	 * not take everything. */
	vc->rx_was_full = taken < len;
	pthread_mutex_unlock(&d->lock);
	return taken;
}

void vconsole_set_rx_space_cb(struct virtio_dev *d, void (*cb)(void *),
			      void *opaque)
{
	struct vconsole *vc = to_vc(d);

	pthread_mutex_lock(&d->lock);
	vc->rx_space = cb;
	vc->rx_space_opaque = opaque;
	pthread_mutex_unlock(&d->lock);
}

bool vconsole_rx_paused(struct virtio_dev *d)
{
	struct vconsole *vc = to_vc(d);
	bool paused;

	pthread_mutex_lock(&d->lock);
	paused = vc->rx_was_full;
	pthread_mutex_unlock(&d->lock);
	return paused;
}

uint64_t vconsole_out_dropped(struct virtio_dev *d)
{
	struct vconsole *vc = to_vc(d);
	uint64_t n;

	pthread_mutex_lock(&d->lock);
	n = vc->st.out_dropped_bytes;
	pthread_mutex_unlock(&d->lock);
	return n;
}

void vconsole_get_stats(struct virtio_dev *d, struct vconsole_stats *s)
{
	struct vconsole *vc = to_vc(d);

	s->in_bytes = counter_get(&vc->st.in_bytes);
	s->out_bytes = counter_get(&vc->st.out_bytes);
	s->out_dropped_bytes = counter_get(&vc->st.out_dropped_bytes);
}
