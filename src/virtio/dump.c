// SPDX-License-Identifier: MIT
#include "virtio/dump.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "util/time.h"

/* 0 with m held, or ETIMEDOUT after VIRTIO_DUMP_LOCK_MS. */
static int lock_bounded(pthread_mutex_t *m)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += VIRTIO_DUMP_LOCK_MS * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
}

static void iothread_line(struct virtio_mmio *t, enum log_level lvl)
{
	struct virtio_iothread *io = &t->io;
	uint64_t busy = __atomic_load_n(&io->busy_ns, __ATOMIC_RELAXED);
	uint32_t tag = __atomic_load_n(&io->busy_tag, __ATOMIC_RELAXED);
	uint64_t wakeups = __atomic_load_n(&io->wakeups, __ATOMIC_RELAXED);
	const char *name = t->dev->name;
	char what[32];
	bool parked = false, pause_req = false;

	if (!io->started) {
		log_msg(lvl, "%s: I/O thread: not started", name);
		return;
	}
	/* pm is held only around short state changes; still bounded. */
	if (!lock_bounded(&io->pm)) {
		parked = io->parked;
		pause_req = io->pause_req;
		pthread_mutex_unlock(&io->pm);
	}
	if (tag == IOT_TAG_PAUSE)
		snprintf(what, sizeof(what), "pause");
	else if (tag == IOT_TAG_STOP)
		snprintf(what, sizeof(what), "stop");
	else if (tag >= IOT_TAG_WATCH_BASE)
		snprintf(what, sizeof(what), "watch fd %u",
			 tag - IOT_TAG_WATCH_BASE);
	else
		snprintf(what, sizeof(what), "queue %u", tag);
	if (parked)
		log_msg(lvl, "%s: I/O thread: parked (paused), %llu wake-ups",
			name, (unsigned long long)wakeups);
	else if (busy)
		log_msg(lvl,
			"%s: I/O thread: busy for %llu ms (last served %s)%s, "
			"%llu wake-ups",
			name, (unsigned long long)((now_ns() - busy) / 1000000),
			what, pause_req ? ", pause requested" : "",
			(unsigned long long)wakeups);
	else
		log_msg(lvl,
			"%s: I/O thread: waiting for a kick (last served %s)%s, "
			"%llu wake-ups",
			name, what, pause_req ? ", pause requested" : "",
			(unsigned long long)wakeups);
}

static void queue_line(struct virtio_dev *d, int q, enum log_level lvl)
{
	const struct virtq *vq = &d->vq[q];
	struct virtq_rings r;

	if (!vq->ready) {
		log_msg(lvl, "%s: q%d: not ready", d->name, q);
		return;
	}
	if (!virtq_peek(vq, &r)) {
		log_msg(lvl,
			"%s: q%d: size %u last_avail %u used %u; rings not "
			"reachable",
			d->name, q, vq->size, vq->last_avail, vq->used_idx);
		return;
	}
	/* pending: buffers the driver made available that the device has
	 * not taken; unseen: used entries past the last interrupt. */
	log_msg(lvl,
		"%s: q%d: size %u avail.idx %u last_avail %u (pending %u) "
		"used.idx %u (ours %u) signalled %u%s avail.flags %#x "
		"used.flags %#x%s used_event %u avail_event %u",
		d->name, q, vq->size, r.avail_idx, vq->last_avail,
		(uint16_t)(r.avail_idx - vq->last_avail), r.used_idx,
		vq->used_idx, vq->signalled_used,
		vq->signalled_valid ? "" : " (none yet)", r.avail_flags,
		r.used_flags, vq->event_idx ? " event_idx" : "", r.used_event,
		r.avail_event);
}

void virtio_mmio_dump(struct virtio_mmio *t, enum log_level lvl)
{
	struct virtio_dev *d = t->dev;
	int ret;

	ret = lock_bounded(&d->lock);
	if (ret) {
		log_msg(lvl,
			"%s: at %#llx gsi %u: device lock held for over %d ms "
			"(a handler is busy or stuck); interrupt status %#x",
			d->name, (unsigned long long)t->base, t->gsi,
			VIRTIO_DUMP_LOCK_MS, atomic_load(t->isr));
	} else {
		log_msg(lvl,
			"%s: at %#llx gsi %u: status %#x%s features %#llx "
			"interrupt status %#x",
			d->name, (unsigned long long)t->base, t->gsi, d->status,
			d->broken ? " (needs reset)" : "",
			(unsigned long long)d->features, atomic_load(t->isr));
		for (int q = 0; q < d->nr_queues; q++)
			queue_line(d, q, lvl);
		pthread_mutex_unlock(&d->lock);
	}
	iothread_line(t, lvl);
}

uint64_t virtio_mmio_progress(const struct virtio_mmio *t)
{
	return __atomic_load_n(&t->io.wakeups, __ATOMIC_RELAXED);
}
