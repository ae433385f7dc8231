/* SPDX-License-Identifier: MIT */
/*
 * The transport side of a virtio-mmio device whose queues another
 * process runs (a vhost-user back-end; vhost-net later): the doorbells
 * stay the transport's ioeventfd lanes (virtio_dev.kick_fds, handed to
 * the back-end as they are), and so does the interrupt: the back-end's
 * "call" eventfd is the transport's irqfd (virtio_dev.irq_fd), so a completion reaches the guest without waking a
 * wisp thread; the transport keeps the used-buffer bit of InterruptStatus
 * set, which the back-end cannot. This piece owns the rest of what comes
 * back: one "err" eventfd per queue, a socket to watch for the peer going
 * away, and a timer for whatever the device retries (a reconnect). All of
 * them sit in one epoll set that is the device's watch fd, so the
 * device's I/O thread waits on them and the set can change while it runs.
 *
 * The eventfds are shared with the back-end, which may clear O_NONBLOCK
 * or fill them: every operation on them is bounded (util/efd.h).
 *
 * Threads: virtio_remote_fd_ready runs on the I/O thread with the
 * device's lock held; the callbacks too.
 */
#ifndef WISP_VIRTIO_REMOTE_H
#define WISP_VIRTIO_REMOTE_H

#include <stdint.h>

#include "util/err.h"
#include "virtio/standin.h"
#include "virtio/virtio.h"

struct virtio_remote_ops {
	/* The back-end signalled queue q's error eventfd. */
	void (*ring_error)(struct virtio_dev *d, int q);
	/* The watched socket is readable or hung up. */
	void (*sock_ready)(struct virtio_dev *d);
	/* The timer fired. */
	void (*timer)(struct virtio_dev *d);
};

struct virtio_remote {
	struct virtio_dev *dev;
	const struct virtio_remote_ops *ops;
	int epfd; /* dev->watch_fds[0] */
	int err[VIRTIO_MAX_QUEUES];
	int timer; /* timerfd */
	int sock; /* watched, not owned; -1: none */
};

/* For a device already through virtio_dev_init (before its transport):
 * creates the eventfds, timer and epoll set, marks the device's queues
 * remote (its interrupt direct), and makes the set its watch fd. On failure everything created
 * is closed again (virtio_remote_fini is still safe). */
int virtio_remote_init(struct virtio_remote *r, struct virtio_dev *d,
		       const struct virtio_remote_ops *ops, struct err *e);
void virtio_remote_fini(struct virtio_remote *r);

/* Watch sock (-1: stop watching the current one). Returns 0 or -errno. */
int virtio_remote_watch(struct virtio_remote *r, int sock);

/* Fire every interval_ms from now (0: stop). */
int virtio_remote_timer(struct virtio_remote *r, unsigned int interval_ms);

/* The device's fd_ready for its watch fd: handles what is ready. */
void virtio_remote_fd_ready(struct virtio_remote *r);

/* Completes with fail() every chain between used->idx and avail->idx of
 * queue q, in ring order (requests the driver posted that no back-end
 * will see), at most budget chains, and interrupts the driver if any
 * was failed. Returns how many. Lock held; the queue must be ready. */
int virtio_remote_fail_pending(struct virtio_dev *d, int q,
			       virtio_fail_chain_fn fail, int budget);

#endif
