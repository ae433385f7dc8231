// SPDX-License-Identifier: MIT
/* The io_uring engine: one ring per disk, completions announced on an
 * eventfd that the device's I/O thread watches.
 *
 * The image is not registered as a fixed file: the ring would hold a
 * reference to it until the kernel's asynchronous ring teardown, so the
 * image's OFD lock would outlive the device and a new device on the same
 * image (a VM restarted at once) would find it locked. */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "devices/blk/blk_engine.h"

struct uring_engine {
	struct blk_engine en;
	struct io_uring ring;
};

static struct uring_engine *to_uring(struct blk_engine *en)
{
	return (struct uring_engine *)en;
}

static struct io_uring_sqe *get_sqe(struct uring_engine *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (sqe)
		return sqe;
	/* The submission queue is full of prepared entries: hand them to
	 * the kernel and try once more. */
	if (io_uring_submit(&u->ring) < 0)
		return NULL;
	u->en.stats.submits++;
	return io_uring_get_sqe(&u->ring);
}

static int uring_rw(struct blk_engine *en, bool write, bool dsync,
		    const struct iovec *iov, int n, uint64_t pos, uint64_t tag)
{
	struct uring_engine *u = to_uring(en);
	struct io_uring_sqe *sqe = get_sqe(u);

	if (!sqe)
		return -EAGAIN;
	if (write) {
		io_uring_prep_writev2(sqe, en->fd, iov, (unsigned int)n, pos,
				      dsync ? RWF_DSYNC : 0);
		en->stats.writes++;
		if (dsync)
			en->stats.dsync_writes++;
	} else {
		io_uring_prep_readv(sqe, en->fd, iov, (unsigned int)n, pos);
		en->stats.reads++;
	}
	io_uring_sqe_set_data64(sqe, tag);
	return 0;
}

static int uring_flush(struct blk_engine *en, uint64_t tag)
{
	struct uring_engine *u = to_uring(en);
	struct io_uring_sqe *sqe = get_sqe(u);

	if (!sqe)
		return -EAGAIN;
	io_uring_prep_fsync(sqe, en->fd, IORING_FSYNC_DATASYNC);
	/* Starts only after every earlier SQE has completed, so it covers
	 * every write queued before it, acknowledged or not. */
	sqe->flags |= IOSQE_IO_DRAIN;
	io_uring_sqe_set_data64(sqe, tag);
	en->stats.flushes++;
	return 0;
}

static int uring_submit(struct blk_engine *en)
{
	struct uring_engine *u = to_uring(en);

	for (;;) {
		int r;

		if (!io_uring_sq_ready(&u->ring))
			return 0;
		r = io_uring_submit(&u->ring);
		en->stats.submits++;
		if (r >= 0)
			return 0;
		if (r != -EINTR && r != -EAGAIN)
			return r;
		if (r == -EAGAIN)
			return 0; /* the kernel is short of memory: next time */
	}
}

static int uring_reap(struct blk_engine *en, struct blk_cqe *out, int max,
		      uint64_t timeout_ns)
{
	struct uring_engine *u = to_uring(en);
	struct io_uring_cqe *cqes[64];
	int n = 0;

	if (timeout_ns && !io_uring_cq_ready(&u->ring)) {
		struct __kernel_timespec ts = {
			.tv_sec = (long long)(timeout_ns / 1000000000u),
			.tv_nsec = (long long)(timeout_ns % 1000000000u),
		};
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts);

		if (r == -ETIME || r == -EINTR)
			return 0;
		if (r < 0)
			return r;
	}
	while (n < max) {
		unsigned int want = (unsigned int)(max - n), got;

		if (want > 64)
			want = 64;
		got = io_uring_peek_batch_cqe(&u->ring, cqes, want);
		if (!got)
			break;
		for (unsigned int i = 0; i < got; i++) {
			out[n].tag = io_uring_cqe_get_data64(cqes[i]);
			out[n].res = cqes[i]->res;
			n++;
		}
		io_uring_cq_advance(&u->ring, got);
	}
	return n;
}

static void uring_destroy(struct blk_engine *en)
{
	struct uring_engine *u = to_uring(en);

	/* The kernel finishes or cancels whatever is still in flight before
	 * the ring's memory goes; the device drained its requests first. */
	io_uring_queue_exit(&u->ring);
	if (en->event_fd >= 0)
		close(en->event_fd);
	free(u);
}

static const struct blk_engine_ops uring_ops = {
	.rw = uring_rw,
	.flush = uring_flush,
	.submit = uring_submit,
	.reap = uring_reap,
	.destroy = uring_destroy,
};

int blk_engine_uring_create(int fd, unsigned int depth, struct blk_engine **out,
			    struct err *e)
{
	struct uring_engine *u = calloc(1, sizeof(*u));
	struct io_uring_params p = { 0 };
	int ret;

	*out = NULL;
	if (!u)
		return err_set(e, -ENOMEM, "io_uring engine: out of memory");
	u->en.event_fd = -1;
	/* Room for every completion of a full queue plus a flush. */
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = 2 * depth;
	ret = io_uring_queue_init_params(depth, &u->ring, &p);
	if (ret < 0) {
		free(u);
		return err_set(e, ret, "io_uring_queue_init: %s",
			       strerror(-ret));
	}
	u->en.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->en.event_fd < 0) {
		ret = -errno;
		err_set(e, ret, "io_uring engine: eventfd: %s",
			strerror(errno));
		goto fail;
	}
	ret = io_uring_register_eventfd(&u->ring, u->en.event_fd);
	if (ret < 0) {
		err_set(e, ret, "io_uring_register_eventfd: %s",
			strerror(-ret));
		goto fail;
	}
	u->en.ops = &uring_ops;
	u->en.name = "uring";
	u->en.fd = fd;
	*out = &u->en;
	return 0;

fail:
	io_uring_queue_exit(&u->ring);
	if (u->en.event_fd >= 0)
		close(u->en.event_fd);
	free(u);
	return ret;
}
