// SPDX-License-Identifier: MIT
/* The synchronous engine: each operation runs when it is queued, and its
 * completion waits in a small ring until the device reaps it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/blk/blk_engine.h"

struct sync_engine {
	struct blk_engine en;
	unsigned int depth, head, count;
	struct blk_cqe *done; /* depth entries, a ring */
	/* blk_rw_all advances through a copy: the caller's iovecs stay as they
	 * were, so it can finish a short transfer from them. */
	struct iovec *scratch;
	int scratch_cap;
};

static struct sync_engine *to_sync(struct blk_engine *en)
{
	return (struct sync_engine *)en;
}

static int queue_done(struct sync_engine *s, uint64_t tag, int64_t res)
{
	if (s->count == s->depth)
		return -EAGAIN;
	s->done[(s->head + s->count) % s->depth] =
		(struct blk_cqe){ .tag = tag, .res = res };
	s->count++;
	return 0;
}

static int64_t datasync(int fd)
{
	while (fdatasync(fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int64_t blk_rw_all(int fd, bool write, struct iovec *iov, int n, uint64_t pos)
{
	int64_t done = 0;

	while (n > 0) {
		ssize_t r = write ? pwritev(fd, iov, n, (off_t)pos) :
				    preadv(fd, iov, n, (off_t)pos);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return done ? done : -errno;
		if (r == 0)
			break;
		done += r;
		pos += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return done;
}

static int sync_rw(struct blk_engine *en, bool write, bool dsync,
		   const struct iovec *iov, int n, uint64_t pos, uint64_t tag)
{
	struct sync_engine *s = to_sync(en);
	int64_t r;

	if (s->count == s->depth)
		return -EAGAIN;
	if (n > s->scratch_cap) {
		struct iovec *v = realloc(s->scratch, sizeof(*v) * (size_t)n);

		if (!v)
			return -ENOMEM;
		s->scratch = v;
		s->scratch_cap = n;
	}
	if (n)
		memcpy(s->scratch, iov, sizeof(*iov) * (size_t)n);
	r = blk_rw_all(en->fd, write, s->scratch, n, pos);
	if (write) {
		en->stats.writes++;
		/* Durable before it completes: a failed sync fails it. */
		if (dsync && r >= 0) {
			int64_t sr = datasync(en->fd);

			en->stats.dsync_writes++;
			en->stats.flushes++;
			if (sr < 0)
				r = sr;
		}
	} else {
		en->stats.reads++;
	}
	return queue_done(s, tag, r);
}

static int sync_flush(struct blk_engine *en, uint64_t tag)
{
	struct sync_engine *s = to_sync(en);

	if (s->count == s->depth)
		return -EAGAIN;
	en->stats.flushes++;
	return queue_done(s, tag, datasync(en->fd));
}

static int sync_submit(struct blk_engine *en)
{
	return 0;
}

static int sync_reap(struct blk_engine *en, struct blk_cqe *out, int max,
		     uint64_t timeout_ns)
{
	struct sync_engine *s = to_sync(en);
	int n = 0;

	/* Nothing runs in the background: waiting would not help. */
	while (n < max && s->count) {
		out[n++] = s->done[s->head];
		s->head = (s->head + 1) % s->depth;
		s->count--;
	}
	return n;
}

static void sync_destroy(struct blk_engine *en)
{
	struct sync_engine *s = to_sync(en);

	free(s->done);
	free(s->scratch);
	free(s);
}

static const struct blk_engine_ops sync_ops = {
	.rw = sync_rw,
	.flush = sync_flush,
	.submit = sync_submit,
	.reap = sync_reap,
	.destroy = sync_destroy,
};

int blk_engine_sync_create(int fd, unsigned int depth, struct blk_engine **out,
			   struct err *e)
{
	struct sync_engine *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (s)
		s->done = calloc(depth ? depth : 1, sizeof(*s->done));
	if (!s || !s->done) {
		free(s);
		return err_set(e, -ENOMEM, "sync I/O engine: out of memory");
	}
	s->depth = depth ? depth : 1;
	s->en.ops = &sync_ops;
	s->en.name = "sync";
	s->en.fd = fd;
	s->en.event_fd = -1;
	*out = &s->en;
	return 0;
}
