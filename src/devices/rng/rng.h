/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng (virtio 1.2, 5.4): one queue of device-writable buffers
 * filled from getrandom(). An optional rate limit (a token bucket holding
 * at most one second of bytes) leaves buffers queued when the budget is
 * spent and arms a timerfd, published in d->watch_fds[0]; the I/O thread
 * calls ops->fd_ready(d, fd) when it fires.
 *
 * Threads: everything runs under the device's lock (struct virtio_dev).
 */
#ifndef WISP_DEVICES_RNG_RNG_H
#define WISP_DEVICES_RNG_RNG_H

#include <stdint.h>

#include "mem/guest_mem.h"
#include "util/err.h"
#include "virtio/virtio.h"

#define RNG_QUEUE_SIZE 256

struct rng_config {
	uint64_t rate_bytes_per_sec; /* 0: unlimited */
};

/* cfg (NULL: unlimited) is not kept. On success *out belongs to the
 * caller, released with (*out)->ops->destroy or handed to a transport; on
 * failure *out is NULL and nothing is left allocated. Failures are host
 * errors (memory, timerfd); every 64-bit rate is valid. */
int rng_create(const struct rng_config *cfg, struct guest_mem *mem,
	       struct virtio_dev **out, struct err *e);

/* Firecracker's "entropy" names; counted under d->lock where the
 * buffers are filled (util/counter.h). */
struct rng_stats {
	uint64_t entropy_bytes; /* given to the guest */
	uint64_t entropy_event_count; /* buffers completed */
	uint64_t host_rng_fails; /* getrandom() failed */
};

/* Any thread, without d->lock: each counter is read whole. */
void rng_get_stats(struct virtio_dev *d, struct rng_stats *s);

/* The rate-limit timerfd (also d->watch_fds[0]); -1 when unlimited. */
int rng_watch_fd(struct virtio_dev *d);

#endif
