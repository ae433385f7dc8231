/* SPDX-License-Identifier: MIT */
/*
 * A device's I/O thread: waits on the device's doorbell eventfds (one per
 * queue; signalled by KVM ioeventfd lanes without a VM exit, or by the
 * transport on the exit path) and on the device's extra watch fds, and
 * runs the device's handlers under its lock. One thread per device keeps
 * a slow disk from delaying another device's queues.
 */
#ifndef WISP_VIRTIO_IOTHREAD_H
#define WISP_VIRTIO_IOTHREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "virtio/virtio.h"

struct virtio_iothread {
	struct virtio_dev *dev;
	int epfd, stop_efd, pause_efd;
	int kick_efd[VIRTIO_MAX_QUEUES]; /* owned by the caller */
	pthread_t thread;
	bool started;
	/* Pausing (a VM pause, a snapshot): guarded by pm. The thread
	 * parks outside the device lock, so console input and register
	 * reads from other threads go on. */
	pthread_mutex_t pm;
	pthread_cond_t pc;
	bool pause_req, parked, stopping;
	/* For the state dump and the watchdog (virtio/dump.h): written by
	 * the thread alone with relaxed stores, read by any. busy_ns is
	 * the CLOCK_MONOTONIC time the current wake-up began, 0 while the
	 * thread waits in epoll; busy_tag what it is serving (a queue
	 * index, or IOT_TAG_*). */
	uint64_t wakeups, busy_ns;
	uint32_t busy_tag;
};

#define IOT_TAG_STOP 0xffff
#define IOT_TAG_PAUSE 0xfffe
#define IOT_TAG_WATCH_BASE 0x10000

/* Starts the thread with all signals blocked (the VMM's signals go to
 * its signalfd). kick_efds has dev->nr_queues entries. */
int virtio_iothread_start(struct virtio_iothread *t, struct virtio_dev *d,
			  const int *kick_efds, struct err *e);
void virtio_iothread_stop(struct virtio_iothread *t);

/* Parks the thread between two handler runs after the device's quiesce
 * op (requests in flight completed or dropped): when this returns 0 the
 * device touches neither guest memory nor its backend until resume.
 * Waits at most timeout_ms for the thread (-ETIMEDOUT: not paused, the
 * thread runs on). A thread not started is trivially paused. */
int virtio_iothread_pause(struct virtio_iothread *t, int timeout_ms);
void virtio_iothread_resume(struct virtio_iothread *t);

#endif
