/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk I/O engines: how reads, writes and flushes reach the image.
 * Two implementations share one interface so that blk.c has a single
 * request path:
 *
 *   uring  io_uring through liburing: many requests in flight, completions
 *          signalled on an eventfd the device's I/O thread watches.
 *   sync   preadv/pwritev/fdatasync done at queue time; the completion is
 *          ready as soon as the call returns. The fallback where io_uring
 *          is unavailable (io_uring_setup refused by seccomp, ENOSYS, a
 *          sysctl) and the choice for `engine=sync`.
 *
 * Ordering: a flush is ordered after every operation queued before it
 * (the uring engine uses IOSQE_IO_DRAIN), so it covers every write whose
 * completion the device has already reported and every write still in
 * flight. A write queued with dsync is durable when it completes
 * (RWF_DSYNC for uring, pwritev then fdatasync for sync).
 *
 * Threads: an engine is used under its device's lock only.
 */
#ifndef WISP_DEVICES_BLK_BLK_ENGINE_H
#define WISP_DEVICES_BLK_BLK_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/err.h"

struct blk_engine;

struct blk_cqe {
	uint64_t tag;
	int64_t res; /* bytes moved, 0 for a flush, or -errno */
};

/* What an engine has sent to the kernel: the durability tests count
 * these, and the numbers name what actually happened. */
struct blk_engine_stats {
	uint64_t reads, writes;
	uint64_t dsync_writes; /* writes queued durable-on-completion */
	uint64_t flushes; /* fdatasync calls or IORING_OP_FSYNC SQEs */
	uint64_t submits; /* io_uring_submit calls (uring) */
};

struct blk_engine_ops {
	/* Queues a read or write of iov (n entries, kept valid and
	 * unchanged by the caller until the completion is reaped; the
	 * engine does not change them either) at pos. -EAGAIN: no room until completions are reaped.
	 * A short result is possible (EOF, a signal): the caller finishes
	 * the rest. */
	int (*rw)(struct blk_engine *en, bool write, bool dsync,
		  const struct iovec *iov, int n, uint64_t pos, uint64_t tag);
	/* Queues fdatasync, ordered after everything queued before. */
	int (*flush)(struct blk_engine *en, uint64_t tag);
	/* Hands what was queued to the kernel. */
	int (*submit)(struct blk_engine *en);
	/* Up to max completions. With timeout_ns 0 it only looks; otherwise
	 * it waits up to timeout_ns for the first one. Returns the number
	 * (0 on timeout) or -errno. */
	int (*reap)(struct blk_engine *en, struct blk_cqe *out, int max,
		    uint64_t timeout_ns);
	void (*destroy)(struct blk_engine *en);
};

struct blk_engine {
	const struct blk_engine_ops *ops;
	const char *name; /* "uring" or "sync" */
	int fd; /* the image; not owned */
	/* Readable when completions may be waiting (cleared by the device
	 * before it reaps); -1 when completions are ready right after
	 * submit. Owned by the engine. */
	int event_fd;
	struct blk_engine_stats stats;
};

/* Both constructors: depth is the most operations in flight at once. On
 * success *out belongs to the caller (release with ops->destroy, which
 * does not close fd); on failure *out is NULL. The uring engine returns
 * the errno of io_uring_queue_init (-EPERM, -ENOSYS, ...) so the caller
 * can fall back. */
int blk_engine_uring_create(int fd, unsigned int depth, struct blk_engine **out,
			    struct err *e);
int blk_engine_sync_create(int fd, unsigned int depth, struct blk_engine **out,
			   struct err *e);

/* preadv/pwritev at pos until everything moved, EOF or an error,
 * advancing through iov (which it modifies): the bytes moved, or -errno
 * if nothing moved. Shared by the sync engine and blk.c's own paths. */
int64_t blk_rw_all(int fd, bool write, struct iovec *iov, int n, uint64_t pos);

/* Test seams for tests/unit (they take the device's lock). */
struct virtio_dev;
const struct blk_engine_stats *blk_test_stats(struct virtio_dev *d);
/* While held, completions stay in the engine: only blk_test_settle, a
 * reset and teardown reap them. */
void blk_test_hold(struct virtio_dev *d, bool hold);
/* Reaps and completes until nothing is in flight or timeout_ns passed;
 * returns how many are still in flight. */
unsigned int blk_test_settle(struct virtio_dev *d, uint64_t timeout_ns);
/* The next count completions report res instead of the engine's. */
void blk_test_inject(struct virtio_dev *d, int64_t res, int count);
/* Requests in flight; *dropped: completions dropped as stale. */
unsigned int blk_test_inflight(struct virtio_dev *d, uint64_t *dropped);

#endif
