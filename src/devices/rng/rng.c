// SPDX-License-Identifier: MIT
#include "devices/rng/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "util/counter.h"
#include "util/log.h"
#include "util/time.h"

#define NSEC_PER_SEC 1000000000ULL
/* When the bucket is empty, wait until this many bytes are available (or
 * the whole rate, if smaller) before serving again. */
#define RNG_MIN_GRANT 256

struct rng {
	struct virtio_dev dev;
	uint64_t rate; /* bytes per second; 0: unlimited */
	/* Token bucket in units of 1/NSEC_PER_SEC byte, capped at one
	 * second's worth (rate * NSEC_PER_SEC). */
	unsigned __int128 tokens;
	uint64_t last_ns;
	int watch_fd; /* timerfd, -1 when unlimited */
	bool timer_armed;
	struct virtq_chain chain;
	struct rng_stats st;
};

static struct rng *to_rng(struct virtio_dev *d)
{
	return d->priv;
}

static void refill(struct rng *r)
{
	uint64_t now = now_ns();
	unsigned __int128 cap = (unsigned __int128)r->rate * NSEC_PER_SEC;

	if (now > r->last_ns) {
		r->tokens += (unsigned __int128)(now - r->last_ns) * r->rate;
		if (r->tokens > cap)
			r->tokens = cap;
	}
	r->last_ns = now;
}

static uint64_t available(const struct rng *r)
{
	return (uint64_t)(r->tokens / NSEC_PER_SEC);
}

static void arm_timer(struct rng *r)
{
	uint64_t want = r->rate < RNG_MIN_GRANT ? r->rate : RNG_MIN_GRANT;
	unsigned __int128 need = (unsigned __int128)want * NSEC_PER_SEC;
	uint64_t wait_ns;
	struct itimerspec its = { 0 };

	if (r->tokens >= need)
		wait_ns = 1;
	else
		wait_ns =
			(uint64_t)((need - r->tokens + r->rate - 1) / r->rate);
	if (!wait_ns)
		wait_ns = 1;
	its.it_value.tv_sec = (time_t)(wait_ns / NSEC_PER_SEC);
	its.it_value.tv_nsec = (long)(wait_ns % NSEC_PER_SEC);
	if (timerfd_settime(r->watch_fd, 0, &its, NULL) == 0)
		r->timer_armed = true;
	else
		log_warn("%s: timerfd_settime: %s", r->dev.name,
			 strerror(errno));
}

static void disarm_timer(struct rng *r)
{
	struct itimerspec its = { 0 };

	if (r->watch_fd >= 0 && r->timer_armed)
		timerfd_settime(r->watch_fd, 0, &its, NULL);
	r->timer_armed = false;
}

static uint64_t rng_features(struct virtio_dev *d)
{
	return 0;
}

static void rng_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data,
			    uint32_t len)
{
	memset(data, 0, len); /* no config space */
}

static void rng_config_write(struct virtio_dev *d, uint32_t off,
			     const uint8_t *data, uint32_t len)
{
}

static int rng_activate(struct virtio_dev *d)
{
	return 0;
}

static int fill(uint8_t *p, uint32_t len)
{
	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (uint32_t)n;
	}
	return 0;
}

static void rng_queue_notify(struct virtio_dev *d, int q)
{
	struct rng *r = to_rng(d);
	struct virtq *vq = &d->vq[q];
	struct virtq_chain *c = &r->chain;
	bool pushed = false;

	if (q != 0 || d->broken || !vq->ready)
		return;
	for (;;) {
		uint64_t budget = UINT64_MAX;
		uint32_t written = 0;

		if (r->rate) {
			refill(r);
			budget = available(r);
			if (!budget) {
				/* Leave the buffers queued until the bucket
				 * has refilled a little. */
				if (!r->timer_armed)
					arm_timer(r);
				break;
			}
		}
		if (virtio_dev_pop(d, q, c) <= 0)
			break;
		if (c->nr_read) {
			virtio_dev_set_broken(
				d,
				"entropy request with device-readable buffers");
			break;
		}
		for (int i = 0; i < c->nr_write && budget; i++) {
			uint32_t n = c->seg[i].len;

			if (n > budget)
				n = (uint32_t)budget;
			if (fill(c->seg[i].host, n) < 0) {
				counter_add(&r->st.host_rng_fails, 1);
				log_warn("%s: getrandom: %s", d->name,
					 strerror(errno));
				break;
			}
			written += n;
			budget -= n;
		}
		if (r->rate)
			r->tokens -= (unsigned __int128)written * NSEC_PER_SEC;
		counter_add(&r->st.entropy_bytes, written);
		counter_add(&r->st.entropy_event_count, 1);
		virtq_push(vq, c->head, written);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_queue(d, q);
}

static void rng_fd_ready(struct virtio_dev *d, int fd)
{
	struct rng *r = to_rng(d);
	uint64_t ticks;

	if (fd != r->watch_fd)
		return;
	while (read(fd, &ticks, sizeof(ticks)) < 0 && errno == EINTR)
		;
	r->timer_armed = false;
	if (d->broken || !(d->status & VIRTIO_STATUS_DRIVER_OK))
		return;
	rng_queue_notify(d, 0);
}

static void rng_reset(struct virtio_dev *d)
{
	disarm_timer(to_rng(d));
}

static void rng_destroy(struct virtio_dev *d)
{
	struct rng *r = to_rng(d);

	if (r->watch_fd >= 0)
		close(r->watch_fd);
	virtio_dev_fini(d);
	free(r);
}

static const struct virtio_dev_ops rng_ops = {
	.features = rng_features,
	.config_read = rng_config_read,
	.config_write = rng_config_write,
	.activate = rng_activate,
	.queue_notify = rng_queue_notify,
	.reset = rng_reset,
	.fd_ready = rng_fd_ready,
	.destroy = rng_destroy,
};

int rng_create(const struct rng_config *cfg, struct guest_mem *mem,
	       struct virtio_dev **out, struct err *e)
{
	struct rng *r;

	*out = NULL;
	/* tokens are kept in nano-bytes in 128 bits: any 64-bit rate fits. */
	r = calloc(1, sizeof(*r));
	if (!r)
		return err_set(e, -ENOMEM, "virtio-rng: out of memory");
	r->rate = cfg ? cfg->rate_bytes_per_sec : 0;
	r->watch_fd = -1;
	if (r->rate) {
		r->watch_fd = timerfd_create(CLOCK_MONOTONIC,
					     TFD_CLOEXEC | TFD_NONBLOCK);
		if (r->watch_fd < 0) {
			int ret = -errno;

			free(r);
			return err_set(e, ret, "virtio-rng: timerfd_create: %s",
				       strerror(-ret));
		}
		/* Start with a full bucket: one second of burst. */
		r->tokens = (unsigned __int128)r->rate * NSEC_PER_SEC;
		r->last_ns = now_ns();
	}
	virtio_dev_init(&r->dev, "virtio-rng", VIRTIO_ID_RNG, &rng_ops, r, mem,
			1, RNG_QUEUE_SIZE, 0);
	if (r->watch_fd >= 0) {
		r->dev.watch_fds[0] = r->watch_fd;
		r->dev.nr_watch_fds = 1;
	}
	*out = &r->dev;
	return 0;
}

int rng_watch_fd(struct virtio_dev *d)
{
	return to_rng(d)->watch_fd;
}

void rng_get_stats(struct virtio_dev *d, struct rng_stats *s)
{
	struct rng *r = to_rng(d);

	s->entropy_bytes = counter_get(&r->st.entropy_bytes);
	s->entropy_event_count = counter_get(&r->st.entropy_event_count);
	s->host_rng_fails = counter_get(&r->st.host_rng_fails);
}
