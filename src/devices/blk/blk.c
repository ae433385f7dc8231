// SPDX-License-Identifier: MIT
#include "devices/blk/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "config/devopts.h"
#include "devices/blk/blk_engine.h"
#include "util/counter.h"
#include "util/log.h"
#include "util/time.h"

#define BLK_HDR_SIZE 16
#define BLK_DWZ_SEG_SIZE 16
#define BLK_BOUNCE_SIZE (1u << 20)
#define BLK_MAX_DWZ_SEG                                   \
	(BLK_MAX_DISCARD_SEG > BLK_MAX_WRITE_ZEROES_SEG ? \
		 BLK_MAX_DISCARD_SEG :                    \
		 BLK_MAX_WRITE_ZEROES_SEG)
/* Requests in flight at most: a full queue. */
#define BLK_MAX_INFLIGHT BLK_QUEUE_SIZE
/* How long a reset or teardown waits for the kernel to finish requests
 * already handed to it (their reads land in guest memory). */
#define BLK_DRAIN_TIMEOUT_NS (10ull * 1000000000ull)
/* start_request: queued to the engine, completes later. */
#define BLK_ASYNC 256

/* A request handed to the engine. Everything needed to complete it is
 * copied out of the chain: the chain scratch is reused for the next. */
struct blk_req {
	bool busy;
	bool dsync; /* an OUT that must be durable before it completes */
	uint32_t type; /* VIRTIO_BLK_T_IN, _OUT or _FLUSH */
	uint16_t head;
	uint32_t epoch; /* b->epoch when queued: stale after a reset */
	uint8_t *status; /* the chain's last writable byte */
	uint64_t start_ns; /* popped from the ring, for the latency */
	uint64_t pos, len;
	int niov, iov_cap;
	struct iovec *iov; /* data buffers in guest memory */
};

struct blk {
	struct virtio_dev dev;
	char name[64];
	char *path; /* for messages */
	int fd;
	bool readonly, direct;
	uint64_t capacity; /* 512-byte sectors */
	uint8_t id[VIRTIO_BLK_ID_BYTES]; /* NUL-padded */
	uint8_t config[BLK_CONFIG_SIZE];
	/* O_DIRECT: required alignment of buffer addresses and of lengths
	 * and file offsets. */
	size_t mem_align, io_align;
	uint8_t *bounce; /* BLK_BOUNCE_SIZE, aligned; lazily allocated */
	/* Per-request scratch, used under the device lock only. */
	struct virtq_chain chain;
	struct iovec iov[VIRTQ_MAX_SEGS];
	uint64_t t0; /* when the request being handled was popped */
	uint64_t io_errors;
	struct blk_stats st;

	/* The engine and the requests in flight in it. */
	struct blk_engine *en;
	struct blk_req req[BLK_MAX_INFLIGHT];
	uint16_t free_req[BLK_MAX_INFLIGHT];
	unsigned int nr_free, inflight;
	/* Bumped by reset and when the queue was reset or disabled behind
	 * the device's back: a completion of an older epoch is dropped
	 * without touching guest memory. */
	uint32_t epoch;
	uint16_t popped; /* vq->last_avail after our last pop */
	uint64_t dropped; /* completions dropped as stale */
	uint64_t throttled; /* waits on the rate limiter */
	struct blk_cqe cqes[BLK_MAX_INFLIGHT];
	/* Rate limits: a request over budget stays in the ring until the
	 * timer (a watch fd) says the buckets allow it. */
	struct rate_limiter rl;
	int timer_fd;
	bool timer_armed;
	/* Test seams (blk_test_*). */
	bool hold;
	int64_t inject_res;
	int inject_count;
};

/* The front ends pass the parsed option through a cast. */
_Static_assert(BLK_ENGINE_AUTO == (int)DEVOPTS_ENGINE_AUTO &&
		       BLK_ENGINE_SYNC == (int)DEVOPTS_ENGINE_SYNC &&
		       BLK_ENGINE_URING == (int)DEVOPTS_ENGINE_URING,
	       "engine enums differ");

struct dwz_seg {
	uint64_t sector;
	uint32_t num, flags;
};

static struct blk *to_blk(struct virtio_dev *d)
{
	return d->priv;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, v);
	put_le16(p + 2, v >> 16);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, v);
	put_le32(p + 4, v >> 32);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static uint64_t blk_features(struct virtio_dev *d)
{
	struct blk *b = to_blk(d);
	uint64_t f = 1ULL << VIRTIO_BLK_F_SIZE_MAX |
		     1ULL << VIRTIO_BLK_F_SEG_MAX |
		     1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_FLUSH;

	if (b->readonly)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	else
		f |= 1ULL << VIRTIO_BLK_F_DISCARD |
		     1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	return f;
}

static void blk_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data,
			    uint32_t len)
{
	struct blk *b = to_blk(d);

	/* The transport checked off + len <= config_size; stay safe
	 * anyway. */
	memset(data, 0, len);
	if (off < sizeof(b->config))
		memcpy(data, b->config + off,
		       len < sizeof(b->config) - off ? len :
						       sizeof(b->config) - off);
}

static void blk_config_write(struct virtio_dev *d, uint32_t off,
			     const uint8_t *data, uint32_t len)
{
	/* Nothing is writable (no CONFIG_WCE): ignored. */
}

static int blk_activate(struct virtio_dev *d)
{
	return 0;
}

static void drain(struct blk *b, const char *why);

/* QueueReady <- 0: the guest may reuse the buffers of requests in
 * flight as soon as the register write returns, so wait for them as on
 * a reset (their completions are dropped: the epoch moved). */
static void blk_queue_disable(struct virtio_dev *d, int q)
{
	if (q == 0)
		drain(to_blk(d), "queue disable");
}

static void blk_reset(struct virtio_dev *d)
{
	/* The driver may reuse every buffer once the reset is done. */
	drain(to_blk(d), "reset");
}

static bool range_ok(const struct blk *b, uint64_t sector, uint64_t nsec)
{
	return sector <= b->capacity && nsec <= b->capacity - sector;
}

/* iovecs for [off, off + len) of the segments [first, first + count) of
 * the chain. Returns the number of iovecs. */
static int build_iov(struct iovec *iov, const struct virtq_chain *c, int first,
		     int count, uint64_t off, uint64_t len)
{
	int n = 0;

	for (int i = first; i < first + count && len; i++) {
		const struct virtq_seg *s = &c->seg[i];
		uint64_t take;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		take = s->len - off;
		if (take > len)
			take = len;
		if (take) {
			iov[n].iov_base = s->host + off;
			iov[n].iov_len = take;
			n++;
		}
		len -= take;
		off = 0;
	}
	return n;
}

static bool iov_aligned(const struct blk *b, const struct iovec *iov, int n)
{
	for (int i = 0; i < n; i++) {
		if ((uintptr_t)iov[i].iov_base % b->mem_align ||
		    iov[i].iov_len % b->io_align)
			return false;
	}
	return true;
}

static int64_t rw_iov(struct blk *b, bool write, struct iovec *iov, int n,
		      uint64_t pos)
{
	return blk_rw_all(b->fd, write, iov, n, pos);
}

static int64_t rw_buf(struct blk *b, bool write, void *buf, size_t len,
		      uint64_t pos)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return rw_iov(b, write, &iov, 1, pos);
}

static uint8_t *get_bounce(struct blk *b)
{
	if (!b->bounce) {
		b->bounce = aligned_alloc(4096, BLK_BOUNCE_SIZE);
		if (!b->bounce)
			log_warn("%s: cannot allocate the bounce buffer",
				 b->name);
	}
	return b->bounce;
}

/* Moves len bytes between the file at pos and the chain: IN writes the
 * guest's writable bytes [0, len), OUT reads its readable bytes
 * [BLK_HDR_SIZE, BLK_HDR_SIZE + len). Returns the bytes moved. */
static uint64_t transfer(struct blk *b, const struct virtq_chain *c, bool write,
			 uint64_t pos, uint64_t len)
{
	int n;
	int64_t r;

	if (write)
		n = build_iov(b->iov, c, 0, c->nr_read, BLK_HDR_SIZE, len);
	else
		n = build_iov(b->iov, c, c->nr_read, c->nr_write, 0, len);

	if (!b->direct || iov_aligned(b, b->iov, n)) {
		r = rw_iov(b, write, b->iov, n, pos);
		return r < 0 ? 0 : (uint64_t)r;
	}

	/* O_DIRECT with a guest buffer it cannot take: bounce. */
	uint8_t *buf = get_bounce(b);
	uint64_t done = 0;

	if (!buf)
		return 0;
	while (done < len) {
		uint32_t chunk = len - done < BLK_BOUNCE_SIZE ?
					 (uint32_t)(len - done) :
					 BLK_BOUNCE_SIZE;

		if (write) {
			if (virtq_chain_read(c, BLK_HDR_SIZE + done, buf,
					     chunk) != chunk)
				break;
			r = rw_buf(b, true, buf, chunk, pos + done);
		} else {
			r = rw_buf(b, false, buf, chunk, pos + done);
			if (r > 0)
				virtq_chain_write(c, done, buf, (uint32_t)r);
		}
		if (r <= 0)
			break;
		done += (uint64_t)r;
		if ((uint64_t)r < chunk)
			break;
	}
	return done;
}

static uint8_t do_in(struct blk *b, const struct virtq_chain *c,
		     uint64_t sector, uint32_t *written)
{
	uint64_t len = c->write_len - 1;
	uint64_t done;

	if (len % BLK_SECTOR_SIZE ||
	    !range_ok(b, sector, len / BLK_SECTOR_SIZE))
		return VIRTIO_BLK_S_IOERR;
	done = transfer(b, c, false, sector * BLK_SECTOR_SIZE, len);
	*written = (uint32_t)done;
	if (done != len) {
		b->io_errors++;
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_out(struct blk *b, const struct virtq_chain *c,
		      uint64_t sector)
{
	uint64_t len = c->read_len - BLK_HDR_SIZE;

	if (b->readonly || len % BLK_SECTOR_SIZE ||
	    !range_ok(b, sector, len / BLK_SECTOR_SIZE))
		return VIRTIO_BLK_S_IOERR;
	if (transfer(b, c, true, sector * BLK_SECTOR_SIZE, len) != len) {
		b->io_errors++;
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_flush(struct blk *b)
{
	if (b->readonly)
		return VIRTIO_BLK_S_OK;
	while (fdatasync(b->fd) < 0) {
		if (errno != EINTR) {
			b->io_errors++;
			return VIRTIO_BLK_S_IOERR;
		}
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_get_id(struct blk *b, const struct virtq_chain *c,
			 uint32_t *written)
{
	uint32_t len = c->write_len - 1;

	if (len > VIRTIO_BLK_ID_BYTES)
		len = VIRTIO_BLK_ID_BYTES;
	*written = virtq_chain_write(c, 0, b->id, len);
	return VIRTIO_BLK_S_OK;
}

static int write_zeros(struct blk *b, uint64_t pos, uint64_t len)
{
	uint8_t *buf = get_bounce(b);

	if (!buf)
		return -ENOMEM;
	memset(buf, 0, BLK_BOUNCE_SIZE);
	while (len) {
		size_t chunk = len < BLK_BOUNCE_SIZE ? len : BLK_BOUNCE_SIZE;
		int64_t r = rw_buf(b, true, buf, chunk, pos);

		if (r <= 0)
			return r < 0 ? (int)r : -EIO;
		pos += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

static int do_fallocate(struct blk *b, int mode, uint64_t pos, uint64_t len)
{
	while (fallocate(b->fd, mode, (off_t)pos, (off_t)len) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static uint8_t do_discard_wz(struct blk *b, const struct virtq_chain *c,
			     uint32_t type)
{
	bool discard = type == VIRTIO_BLK_T_DISCARD;
	uint32_t max_seg = discard ? BLK_MAX_DISCARD_SEG :
				     BLK_MAX_WRITE_ZEROES_SEG;
	uint32_t max_sec = discard ? BLK_MAX_DISCARD_SECTORS :
				     BLK_MAX_WRITE_ZEROES_SECTORS;
	struct dwz_seg segs[BLK_MAX_DWZ_SEG];
	uint32_t len = c->read_len - BLK_HDR_SIZE, nr;

	if (!virtio_has_feature(&b->dev, discard ? VIRTIO_BLK_F_DISCARD :
						   VIRTIO_BLK_F_WRITE_ZEROES))
		return VIRTIO_BLK_S_UNSUPP;
	if (b->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (len == 0 || len % BLK_DWZ_SEG_SIZE)
		return VIRTIO_BLK_S_IOERR;
	nr = len / BLK_DWZ_SEG_SIZE;
	if (nr > max_seg)
		return VIRTIO_BLK_S_IOERR;

	/* Copy and check every segment before touching the file. */
	for (uint32_t i = 0; i < nr; i++) {
		uint8_t raw[BLK_DWZ_SEG_SIZE];

		virtq_chain_read(c, BLK_HDR_SIZE + i * BLK_DWZ_SEG_SIZE, raw,
				 sizeof(raw));
		segs[i].sector = get_le64(raw);
		segs[i].num = get_le32(raw + 8);
		segs[i].flags = get_le32(raw + 12);
		if (segs[i].flags & ~(uint32_t)VIRTIO_BLK_WZ_F_UNMAP)
			return VIRTIO_BLK_S_UNSUPP;
		if (discard && segs[i].flags)
			return VIRTIO_BLK_S_UNSUPP;
		if (segs[i].num > max_sec ||
		    !range_ok(b, segs[i].sector, segs[i].num))
			return VIRTIO_BLK_S_IOERR;
	}

	for (uint32_t i = 0; i < nr; i++) {
		uint64_t pos = segs[i].sector * BLK_SECTOR_SIZE;
		uint64_t n = (uint64_t)segs[i].num * BLK_SECTOR_SIZE;
		int r;

		if (!n)
			continue;
		if (discard) {
			r = do_fallocate(
				b, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				pos, n);
			/* Discard is a hint: a file system that cannot
			 * punch holes just keeps the data. */
			if (r == -EOPNOTSUPP)
				r = 0;
		} else {
			int mode = (segs[i].flags & VIRTIO_BLK_WZ_F_UNMAP) ?
					   FALLOC_FL_PUNCH_HOLE |
						   FALLOC_FL_KEEP_SIZE :
					   FALLOC_FL_ZERO_RANGE |
						   FALLOC_FL_KEEP_SIZE;

			r = do_fallocate(b, mode, pos, n);
			if (r == -EOPNOTSUPP || r == -EINVAL)
				r = write_zeros(b, pos, n);
		}
		if (r < 0) {
			b->io_errors++;
			return VIRTIO_BLK_S_IOERR;
		}
	}
	return VIRTIO_BLK_S_OK;
}

static bool write_through(const struct blk *b)
{
	return !virtio_has_feature(&b->dev, VIRTIO_BLK_F_FLUSH);
}

static uint8_t *status_ptr(const struct virtq_chain *c)
{
	const struct virtq_seg *s = &c->seg[c->nr_read + c->nr_write - 1];

	return s->host + s->len - 1;
}

/* A free request slot, not yet taken (commit_req takes it). */
static struct blk_req *peek_req(struct blk *b)
{
	return b->nr_free ? &b->req[b->free_req[b->nr_free - 1]] : NULL;
}

static void commit_req(struct blk *b, struct blk_req *r,
		       const struct virtq_chain *c, uint32_t type)
{
	b->nr_free--;
	b->inflight++;
	r->busy = true;
	r->type = type;
	r->head = c->head;
	r->epoch = b->epoch;
	r->status = status_ptr(c);
	r->start_ns = b->t0;
}

/* One completed request into the metrics: where its status byte is
 * written, so what is counted is what the guest was told. */
static void account(struct blk *b, uint32_t type, uint8_t st, uint64_t bytes,
		    uint64_t start_ns)
{
	static const uint64_t bound_us[] = BLK_LAT_BOUNDS_US;
	uint64_t us = (now_ns() - start_ns) / 1000;
	size_t k = 0;

	if (st == VIRTIO_BLK_S_OK) {
		if (type == VIRTIO_BLK_T_IN) {
			counter_add(&b->st.read_count, 1);
			counter_add(&b->st.read_bytes, bytes);
		} else if (type == VIRTIO_BLK_T_OUT) {
			counter_add(&b->st.write_count, 1);
			counter_add(&b->st.write_bytes, bytes);
		} else if (type == VIRTIO_BLK_T_FLUSH) {
			counter_add(&b->st.flush_count, 1);
		}
	} else if (st == VIRTIO_BLK_S_UNSUPP) {
		counter_add(&b->st.invalid_reqs_count, 1);
	} else {
		counter_add(&b->st.execute_fails, 1);
	}
	while (k < sizeof(bound_us) / sizeof(bound_us[0]) && us > bound_us[k])
		k++;
	counter_add(&b->st.latency_us[k], 1);
}

static void put_req(struct blk *b, struct blk_req *r)
{
	r->busy = false;
	b->free_req[b->nr_free++] = (uint16_t)(r - b->req);
	b->inflight--;
}

/* Queues an operation; with the submission queue full, submits what is
 * there and tries once more. */
static int queue_op(struct blk *b, struct blk_req *r, bool flush)
{
	for (int tries = 0;; tries++) {
		int ret = flush ? b->en->ops->flush(b->en, r - b->req) :
				  b->en->ops->rw(b->en,
						 r->type == VIRTIO_BLK_T_OUT,
						 r->dsync, r->iov, r->niov,
						 r->pos, r - b->req);

		if (ret != -EAGAIN || tries)
			return ret;
		if (b->en->ops->submit(b->en) < 0)
			return -EAGAIN;
	}
}

/* IN or OUT: to the engine when the guest's buffers can go straight to
 * the file, otherwise (O_DIRECT with unaligned buffers, no free slot)
 * done here and now through the bounce path. */
static int start_rw(struct blk *b, const struct virtq_chain *c, uint32_t type,
		    uint64_t sector, uint32_t *written)
{
	bool write = type == VIRTIO_BLK_T_OUT;
	uint64_t len = write ? c->read_len - BLK_HDR_SIZE : c->write_len - 1;
	int max = write ? c->nr_read : c->nr_write;
	struct blk_req *r = peek_req(b);
	uint8_t st;

	if ((write && b->readonly) || len % BLK_SECTOR_SIZE ||
	    !range_ok(b, sector, len / BLK_SECTOR_SIZE))
		return VIRTIO_BLK_S_IOERR;
	if (!r || !len)
		goto now;
	if (r->iov_cap < max) {
		struct iovec *iov = realloc(r->iov, sizeof(*iov) * (size_t)max);

		if (!iov)
			goto now;
		r->iov = iov;
		r->iov_cap = max;
	}
	r->niov =
		write ? build_iov(r->iov, c, 0, c->nr_read, BLK_HDR_SIZE, len) :
			build_iov(r->iov, c, c->nr_read, c->nr_write, 0, len);
	if (b->direct && !iov_aligned(b, r->iov, r->niov))
		goto now;
	r->type = type;
	r->dsync = write && write_through(b);
	r->pos = sector * BLK_SECTOR_SIZE;
	r->len = len;
	if (queue_op(b, r, false) < 0)
		goto now;
	commit_req(b, r, c, type);
	return BLK_ASYNC;

now:
	if (!write)
		return do_in(b, c, sector, written);
	st = do_out(b, c, sector);
	if (st == VIRTIO_BLK_S_OK && write_through(b))
		st = do_flush(b);
	return st;
}

static int start_flush(struct blk *b, const struct virtq_chain *c)
{
	struct blk_req *r = peek_req(b);

	if (b->readonly)
		return VIRTIO_BLK_S_OK;
	if (!r)
		return do_flush(b);
	r->type = VIRTIO_BLK_T_FLUSH;
	if (queue_op(b, r, true) < 0)
		return do_flush(b);
	commit_req(b, r, c, VIRTIO_BLK_T_FLUSH);
	return BLK_ASYNC;
}

/* Handles one request. Returns the status byte, BLK_ASYNC when it went to
 * the engine, or -1 when the chain has no writable byte to put the
 * status in. *written: data bytes given to the guest (not counting the
 * status). */
static int handle_request(struct blk *b, const struct virtq_chain *c,
			  uint32_t *written)
{
	uint8_t hdr[BLK_HDR_SIZE];
	uint32_t type;
	uint64_t sector;
	uint8_t st;
	int r;

	*written = 0;
	if (c->write_len == 0)
		return -1;
	if (c->read_len < BLK_HDR_SIZE) {
		account(b, UINT32_MAX, VIRTIO_BLK_S_IOERR, 0, b->t0);
		return VIRTIO_BLK_S_IOERR;
	}
	virtq_chain_read(c, 0, hdr, sizeof(hdr));
	type = get_le32(hdr);
	sector = get_le64(hdr + 8);

	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		r = start_rw(b, c, type, sector, written);
		if (r != BLK_ASYNC)
			account(b, type, (uint8_t)r,
				type == VIRTIO_BLK_T_IN ?
					*written :
					c->read_len - BLK_HDR_SIZE,
				b->t0);
		return r;
	case VIRTIO_BLK_T_FLUSH:
		r = start_flush(b, c);
		if (r != BLK_ASYNC)
			account(b, type, (uint8_t)r, 0, b->t0);
		return r;
	case VIRTIO_BLK_T_GET_ID:
		st = do_get_id(b, c, written);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		st = do_discard_wz(b, c, type);
		/* The one durability rule for every request that changes the
		 * image: without FLUSH the driver cannot ask for durability
		 * later, so the device is write-through and syncs before
		 * completing (OUT through the engine: a dsync write, see
		 * start_rw). */
		if (st == VIRTIO_BLK_S_OK && write_through(b))
			st = do_flush(b);
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	account(b, type, st, 0, b->t0);
	return st;
}

/* The queue was reset or disabled without the device being told (the
 * transport resets the ring indices on QueueReady): whatever is in flight
 * belongs to a ring the driver has given up. */
static void check_queue(struct blk *b)
{
	struct virtq *vq = &b->dev.vq[0];

	if (b->inflight &&
	    (!vq->ready || !(b->dev.status & VIRTIO_STATUS_DRIVER_OK) ||
	     vq->last_avail != b->popped))
		b->epoch++;
	b->popped = vq->last_avail;
}

/* The rest of a short read or write, done synchronously. Returns the
 * bytes moved in total, or 0 when a write-through sync failed. */
static uint64_t finish_rw(struct blk *b, struct blk_req *r, uint64_t done)
{
	bool write = r->type == VIRTIO_BLK_T_OUT;
	struct iovec *iov = r->iov;
	uint64_t skip = done;
	int n = r->niov;
	int64_t m;

	while (n && skip >= iov->iov_len) {
		skip -= iov->iov_len;
		iov++;
		n--;
	}
	if (n) {
		iov->iov_base = (uint8_t *)iov->iov_base + skip;
		iov->iov_len -= skip;
	}
	m = rw_iov(b, write, iov, n, r->pos + done);
	if (m > 0)
		done += (uint64_t)m;
	if (write && r->dsync && done == r->len &&
	    do_flush(b) != VIRTIO_BLK_S_OK)
		return 0;
	return done;
}

/* One completion from the engine: status byte and used entry, unless the
 * request is stale (then guest memory is not touched). Returns whether
 * an entry was pushed. */
static bool complete_one(struct blk *b, const struct blk_cqe *cq)
{
	struct blk_req *r;
	int64_t res = cq->res;
	uint32_t written = 0;
	uint8_t st;

	if (cq->tag >= BLK_MAX_INFLIGHT || !b->req[cq->tag].busy) {
		log_warn("%s: engine completion for no request (tag %llu)",
			 b->name, (unsigned long long)cq->tag);
		return false;
	}
	r = &b->req[cq->tag];
	if (b->inject_count) {
		res = b->inject_res;
		b->inject_count--;
	}
	if (r->epoch != b->epoch) {
		b->dropped++;
		put_req(b, r);
		return false;
	}
	if (r->type == VIRTIO_BLK_T_FLUSH) {
		st = res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	} else {
		uint64_t done = 0;

		/* Interrupted or refused for now: do all of it here. */
		if (res == -EAGAIN || res == -EINTR)
			res = 0;
		if (res >= 0) {
			done = (uint64_t)res;
			if (done < r->len)
				done = finish_rw(b, r, done);
		}
		st = done == r->len ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
		if (r->type == VIRTIO_BLK_T_IN)
			written = (uint32_t)done;
	}
	if (st != VIRTIO_BLK_S_OK)
		b->io_errors++;
	account(b, r->type, st,
		r->type == VIRTIO_BLK_T_IN			     ? written :
		r->type == VIRTIO_BLK_T_OUT && st == VIRTIO_BLK_S_OK ? r->len :
								       0,
		r->start_ns);
	*r->status = st;
	virtq_push(&b->dev.vq[0], r->head, written + 1);
	put_req(b, r);
	return true;
}

/* Reaps what the engine has (waiting up to timeout_ns for the first) and
 * completes it. Returns the number reaped or -errno. */
static int reap(struct blk *b, uint64_t timeout_ns, bool *pushed)
{
	int n;

	if (!b->inflight)
		return 0;
	check_queue(b);
	n = b->en->ops->reap(b->en, b->cqes, BLK_MAX_INFLIGHT, timeout_ns);
	for (int i = 0; i < n; i++) {
		if (complete_one(b, &b->cqes[i]))
			*pushed = true;
	}
	return n;
}

/* Waits (bounded) until the kernel is done with every request in flight
 * and drops them: after this no read lands in guest memory and no status
 * or used entry is written. */
static void drain(struct blk *b, const char *why)
{
	uint64_t start = now_ns();
	bool pushed = false;

	b->epoch++;
	if (!b->inflight)
		return;
	if (b->en->ops->submit(b->en) < 0)
		log_warn("%s: %s: submitting queued requests failed", b->name,
			 why);
	while (b->inflight) {
		uint64_t el = now_ns() - start, wait;
		int r;

		if (el >= BLK_DRAIN_TIMEOUT_NS) {
			log_error("%s: %s: %u requests still in flight after "
				  "%llu s; the kernel may still write their "
				  "buffers",
				  b->name, why, b->inflight,
				  BLK_DRAIN_TIMEOUT_NS / 1000000000ull);
			return;
		}
		wait = BLK_DRAIN_TIMEOUT_NS - el;
		if (wait > 100000000ull)
			wait = 100000000ull;
		r = reap(b, wait, &pushed);
		if (r < 0) {
			log_error("%s: %s: reaping completions: %s", b->name,
				  why, strerror(-r));
			return;
		}
	}
}

/* A request's cost: one operation, and its data bytes for IN and OUT. */
static uint64_t req_bytes(const struct virtq_chain *c)
{
	uint8_t t[4];

	if (virtq_chain_read(c, 0, t, sizeof(t)) != sizeof(t))
		return 0;
	switch (get_le32(t)) {
	case VIRTIO_BLK_T_IN:
		return c->write_len ? c->write_len - 1 : 0;
	case VIRTIO_BLK_T_OUT:
		return c->read_len > 16 ? c->read_len - 16 : 0;
	default:
		return 0;
	}
}

static void arm_timer(struct blk *b, uint64_t wait_ns)
{
	struct itimerspec its = { 0 };

	if (b->timer_armed)
		return;
	its.it_value.tv_sec = (time_t)(wait_ns / 1000000000ULL);
	its.it_value.tv_nsec = (long)(wait_ns % 1000000000ULL);
	if (timerfd_settime(b->timer_fd, 0, &its, NULL) < 0) {
		log_warn("%s: timerfd_settime: %s", b->name, strerror(errno));
		return;
	}
	b->timer_armed = true;
}

static void blk_queue_notify(struct virtio_dev *d, int q)
{
	struct blk *b = to_blk(d);
	struct virtq *vq = &d->vq[q];
	struct virtq_chain *c = &b->chain;
	bool pushed = false;

	if (q != 0)
		return;
	check_queue(b);
	while (virtio_dev_pop(d, q, c) > 0) {
		uint32_t written = 0;
		uint8_t st;
		int r;

		b->popped = vq->last_avail;
		b->t0 = now_ns();
		if (rl_active(&b->rl)) {
			uint64_t wait =
				rl_consume(&b->rl, req_bytes(c), 1, b->t0);

			if (wait) {
				/* Back to the driver's side of the ring until
				 * the timer fires. */
				vq->last_avail--;
				b->popped = vq->last_avail;
				b->throttled++;
				arm_timer(b, wait);
				break;
			}
		}
		/* A buffer the IOMMU refused: the request fails without
		 * touching the image (the status byte lands if its own
		 * buffer is mapped). */
		r = c->dma_fault ? (c->write_len ? VIRTIO_BLK_S_IOERR : -1) :
				   handle_request(b, c, &written);
		if (r < 0) {
			virtio_dev_set_broken(
				d, "request without a writable status byte");
			break;
		}
		if (r == BLK_ASYNC)
			continue;
		st = (uint8_t)r;
		virtq_chain_write(c, c->write_len - 1, &st, 1);
		virtq_push(vq, c->head, written + 1);
		pushed = true;
	}
	if (b->en->ops->submit(b->en) < 0)
		virtio_dev_set_broken(d, "the I/O engine refused requests");
	/* What finished at submit (page-cache hits, the sync engine) goes
	 * out with this batch's interrupt. */
	if (!b->hold)
		reap(b, 0, &pushed);
	if (pushed)
		virtio_dev_notify_queue(d, q);
}

/* Completions announced on the engine's eventfd: one batch, one
 * interrupt if the driver wants it (EVENT_IDX's used_event). */
static void blk_fd_ready(struct virtio_dev *d, int fd)
{
	struct blk *b = to_blk(d);
	bool pushed = false;
	uint64_t cnt;

	if (fd == b->timer_fd) {
		if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
			log_warn("%s: timerfd: %s", b->name, strerror(errno));
		b->timer_armed = false;
		if (!d->broken && (d->status & VIRTIO_STATUS_DRIVER_OK) &&
		    d->vq[0].ready)
			blk_queue_notify(d, 0);
		return;
	}
	if (fd != b->en->event_fd)
		return;
	/* Cleared before reaping: a completion after this read sets it
	 * again. */
	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("%s: engine eventfd: %s", b->name, strerror(errno));
	if (b->hold)
		return;
	while (reap(b, 0, &pushed) > 0)
		;
	if (pushed)
		virtio_dev_notify_queue(d, 0);
}

static void blk_destroy(struct virtio_dev *d)
{
	struct blk *b = to_blk(d);

	if (b->en) {
		drain(b, "teardown");
		b->en->ops->destroy(b->en);
	}
	for (int i = 0; i < BLK_MAX_INFLIGHT; i++)
		free(b->req[i].iov);
	if (b->fd >= 0)
		close(b->fd);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	free(b->bounce);
	free(b->path);
	virtio_dev_fini(d);
	free(b);
}

static const struct virtio_dev_ops blk_ops = {
	.features = blk_features,
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.activate = blk_activate,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.queue_disable = blk_queue_disable,
	.quiesce = blk_quiesce,
	.fd_ready = blk_fd_ready,
	.destroy = blk_destroy,
};

/* A stable id from the image's identity: "wisp" + 16 hex digits. */
static void derive_id(struct blk *b, const struct stat *st)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a over dev and ino */
	uint64_t v[2] = { (uint64_t)st->st_dev, (uint64_t)st->st_ino };
	char s[VIRTIO_BLK_ID_BYTES + 1];

	for (int i = 0; i < 2; i++) {
		for (int j = 0; j < 8; j++) {
			h ^= (v[i] >> (8 * j)) & 0xff;
			h *= 0x100000001b3ULL;
		}
	}
	snprintf(s, sizeof(s), "wisp%016llx", (unsigned long long)h);
	memcpy(b->id, s, VIRTIO_BLK_ID_BYTES);
}

static int set_id(struct blk *b, const char *id, struct err *e)
{
	size_t n = strlen(id);

	if (n > VIRTIO_BLK_ID_BYTES)
		return err_config(e, -EINVAL,
				  "disk '%s': id '%s' is longer than %d bytes",
				  b->path, id, VIRTIO_BLK_ID_BYTES);
	for (size_t i = 0; i < n; i++) {
		if (id[i] < 0x20 || id[i] > 0x7e)
			return err_config(
				e, -EINVAL,
				"disk '%s': id must be printable ASCII",
				b->path);
	}
	memset(b->id, 0, sizeof(b->id));
	memcpy(b->id, id, n);
	return 0;
}

static void probe_dio_align(struct blk *b)
{
	struct statx stx;

	/* Conservative defaults; the file system may tell us better. */
	b->mem_align = 4096;
	b->io_align = BLK_SECTOR_SIZE;
#ifdef STATX_DIOALIGN
	if (statx(b->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_mem_align &&
	    stx.stx_dio_offset_align) {
		b->mem_align = stx.stx_dio_mem_align;
		b->io_align = stx.stx_dio_offset_align;
	}
#else
	(void)stx;
#endif
	if (b->io_align > BLK_SECTOR_SIZE)
		log_warn("disk '%s': O_DIRECT needs %zu-byte aligned I/O; "
			 "smaller guest requests will fail",
			 b->path, b->io_align);
}

static int make_engine(struct blk *b, enum blk_engine_kind kind, struct err *e)
{
	struct err ue = { 0 };
	int ret;

	if (kind != BLK_ENGINE_SYNC) {
		ret = blk_engine_uring_create(b->fd, BLK_MAX_INFLIGHT, &b->en,
					      &ue);
		if (!ret)
			return 0;
		if (kind == BLK_ENGINE_URING)
			return err_config(e, ret,
					  "disk '%s': engine=uring: %s "
					  "(engine=sync works without it)",
					  b->path, ue.msg);
		log_info("disk '%s': %s; using synchronous I/O", b->path,
			 ue.msg);
	}
	ret = blk_engine_sync_create(b->fd, BLK_MAX_INFLIGHT, &b->en, e);
	return ret;
}

/* What the user can fix (a wrong path, permissions, a read-only file
 * system for a writable disk) versus what the host ran out of. */
static enum err_class open_err_class(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case EACCES:
	case EPERM:
	case EISDIR:
	case ELOOP:
	case ENAMETOOLONG:
	case EROFS:
	case ETXTBSY:
	case ENXIO:
	case ENODEV:
	case EFBIG:
	case EOVERFLOW:
		return ERR_CONFIG;
	default:
		return ERR_HOST;
	}
}

int blk_open_file(const struct blk_config *cfg, struct err *e)
{
	int flags = (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	int fd;

	if (cfg->direct)
		flags |= O_DIRECT;
	fd = open(cfg->path, flags);
	if (fd < 0) {
		if (errno == EINVAL && cfg->direct)
			return err_config(
				e, -EINVAL,
				"disk '%s': O_DIRECT is not supported "
				"by its file system",
				cfg->path);
		return err_setc(e, open_err_class(errno), -errno,
				"disk '%s': %s", cfg->path, strerror(errno));
	}
	return fd;
}

/* The image's OFD lock, waiting a bounded moment for a holder that is
 * already going: the lock lives as long as the open file description, and
 * the kernel may still hold that a little after its owner closed it or
 * exited (io_uring's workers and its ring teardown run asynchronously), so
 * a device made again on the same image at once (a fuzzer's next input, a
 * VM restarted or restored right after the last one exited) could find it
 * locked by nobody. A live holder still gets the error, LOCK_WAIT_MS late. */
#define LOCK_WAIT_MS 250
static int lock_image(int fd, struct flock *fl, const char *path, struct err *e)
{
	uint64_t start = now_ms();
	unsigned int tries = 0;

	while (fcntl(fd, F_OFD_SETLK, fl) < 0) {
		if (errno != EAGAIN && errno != EACCES)
			return err_set(e, -errno, "disk '%s': lock: %s", path,
				       strerror(errno));
		if (now_ms() - start >= LOCK_WAIT_MS)
			return err_config(e, -EBUSY,
					  "disk '%s': in use by another "
					  "process (locked)",
					  path);
		tries++;
		usleep(2000);
	}
	if (tries)
		log_info("disk '%s': its lock was free after %llu ms", path,
			 (unsigned long long)(now_ms() - start));
	return 0;
}

static int open_image(struct blk *b, const struct blk_config *cfg, int fd,
		      struct stat *st, struct err *e)
{
	struct flock fl = {
		.l_type = cfg->readonly ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
	};
	uint64_t size;
	int ret;

	if (fd >= 0) {
		b->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (b->fd < 0)
			return err_set(e, -errno, "disk '%s': dup: %s",
				       cfg->path, strerror(errno));
	} else {
		fd = blk_open_file(cfg, e);
		if (fd < 0)
			return fd;
		b->fd = fd;
	}
	if (fstat(b->fd, st) < 0)
		return err_set(e, -errno, "disk '%s': fstat: %s", cfg->path,
			       strerror(errno));
	if (S_ISREG(st->st_mode)) {
		size = (uint64_t)st->st_size;
	} else if (S_ISBLK(st->st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &size) < 0)
			return err_set(e, -errno, "disk '%s': BLKGETSIZE64: %s",
				       cfg->path, strerror(errno));
	} else {
		return err_config(
			e, -EINVAL,
			"disk '%s': not a regular file or block device",
			cfg->path);
	}
	ret = lock_image(b->fd, &fl, cfg->path, e);
	if (ret < 0)
		return ret;
	if (size % BLK_SECTOR_SIZE)
		log_warn("disk '%s': size %llu is not a multiple of 512; the "
			 "last %llu bytes are not visible to the guest",
			 cfg->path, (unsigned long long)size,
			 (unsigned long long)(size % BLK_SECTOR_SIZE));
	b->capacity = size / BLK_SECTOR_SIZE;
	return 0;
}

static void fill_config(struct blk *b)
{
	uint8_t *c = b->config;

	memset(c, 0, sizeof(b->config));
	put_le64(c + 0, b->capacity);
	put_le32(c + 8, BLK_SIZE_MAX);
	put_le32(c + 12, BLK_SEG_MAX);
	/* geometry (16) and topology (24) are not offered: zero. */
	put_le32(c + 20, BLK_SECTOR_SIZE);
	c[32] = 0; /* writeback: no CONFIG_WCE */
	put_le16(c + 34, 1); /* num_queues */
	if (!b->readonly) {
		put_le32(c + 36, BLK_MAX_DISCARD_SECTORS);
		put_le32(c + 40, BLK_MAX_DISCARD_SEG);
		put_le32(c + 44, BLK_DISCARD_ALIGNMENT);
		put_le32(c + 48, BLK_MAX_WRITE_ZEROES_SECTORS);
		put_le32(c + 52, BLK_MAX_WRITE_ZEROES_SEG);
		c[56] = 1; /* write_zeroes_may_unmap */
	}
}

int blk_create(const struct blk_config *cfg, struct guest_mem *mem,
	       struct virtio_dev **out, struct err *e)
{
	return blk_create_fd(cfg, -1, mem, out, e);
}

int blk_create_fd(const struct blk_config *cfg, int fd, struct guest_mem *mem,
		  struct virtio_dev **out, struct err *e)
{
	struct blk *b;
	struct stat st;
	int ret;

	*out = NULL;
	if (!cfg->path || !*cfg->path)
		return err_config(e, -EINVAL, "disk: no path given");
	b = calloc(1, sizeof(*b));
	if (!b)
		return err_set(e, -ENOMEM, "disk '%s': out of memory",
			       cfg->path);
	b->fd = -1;
	b->timer_fd = -1;
	b->readonly = cfg->readonly;
	b->direct = cfg->direct;
	b->path = strdup(cfg->path);
	if (!b->path) {
		free(b);
		return err_set(e, -ENOMEM, "disk '%s': out of memory",
			       cfg->path);
	}
	if (cfg->id) {
		ret = set_id(b, cfg->id, e);
		if (ret < 0)
			goto fail;
	}
	ret = open_image(b, cfg, fd, &st, e);
	if (ret < 0)
		goto fail;
	if (!cfg->id)
		derive_id(b, &st);
	if (b->direct)
		probe_dio_align(b);
	rl_init(&b->rl, &cfg->rl, now_ns());
	/* Always: limits may be set while the device runs. */
	b->timer_fd =
		timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (b->timer_fd < 0) {
		ret = err_set(e, -errno, "disk '%s': timerfd_create: %s",
			      cfg->path, strerror(errno));
		goto fail;
	}
	ret = make_engine(b, cfg->engine, e);
	if (ret < 0)
		goto fail;
	fill_config(b);
	for (unsigned int i = 0; i < BLK_MAX_INFLIGHT; i++)
		b->free_req[i] = (uint16_t)(BLK_MAX_INFLIGHT - 1 - i);
	b->nr_free = BLK_MAX_INFLIGHT;
	snprintf(b->name, sizeof(b->name), "virtio-blk '%s'", cfg->path);
	virtio_dev_init(&b->dev, b->name, VIRTIO_ID_BLOCK, &blk_ops, b, mem, 1,
			BLK_QUEUE_SIZE, BLK_CONFIG_SIZE);
	if (b->en->event_fd >= 0)
		b->dev.watch_fds[b->dev.nr_watch_fds++] = b->en->event_fd;
	b->dev.watch_fds[b->dev.nr_watch_fds++] = b->timer_fd;
	b->dev.dma_fault_aware = true;
	*out = &b->dev;
	return 0;

fail:
	if (b->fd >= 0)
		close(b->fd);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	free(b->path);
	free(b);
	return ret;
}

void blk_quiesce(struct virtio_dev *d)
{
	struct blk *b = to_blk(d);
	uint64_t start = now_ns();
	bool pushed = false;

	if (b->inflight && b->en->ops->submit(b->en) < 0)
		log_warn("%s: quiesce: submitting queued requests failed",
			 b->name);
	while (b->inflight && now_ns() - start < BLK_DRAIN_TIMEOUT_NS) {
		if (reap(b, 100000000ull, &pushed) < 0)
			break;
	}
	if (b->inflight) {
		/* Their status pointers may not survive the remap: drop them
		 * when they complete rather than write through them. */
		log_error("%s: %u requests still in flight after %llu s before "
			  "a guest memory remap; dropping them",
			  b->name, b->inflight,
			  BLK_DRAIN_TIMEOUT_NS / 1000000000ull);
		b->epoch++;
	}
	if (pushed)
		virtio_dev_notify_queue(d, 0);
}

const char *blk_engine_name(struct virtio_dev *d)
{
	return to_blk(d)->en->name;
}

/* ---- test seams (blk_engine.h) ---- */

const struct blk_engine_stats *blk_test_stats(struct virtio_dev *d)
{
	return &to_blk(d)->en->stats;
}

void blk_test_hold(struct virtio_dev *d, bool hold)
{
	pthread_mutex_lock(&d->lock);
	to_blk(d)->hold = hold;
	pthread_mutex_unlock(&d->lock);
}

unsigned int blk_test_settle(struct virtio_dev *d, uint64_t timeout_ns)
{
	struct blk *b = to_blk(d);
	uint64_t start = now_ns();
	bool pushed = false;
	unsigned int left;

	pthread_mutex_lock(&d->lock);
	while (b->inflight && now_ns() - start < timeout_ns) {
		if (reap(b, 10000000ull, &pushed) < 0)
			break;
	}
	if (pushed)
		virtio_dev_notify_queue(d, 0);
	left = b->inflight;
	pthread_mutex_unlock(&d->lock);
	return left;
}

void blk_test_inject(struct virtio_dev *d, int64_t res, int count)
{
	pthread_mutex_lock(&d->lock);
	to_blk(d)->inject_res = res;
	to_blk(d)->inject_count = count;
	pthread_mutex_unlock(&d->lock);
}

unsigned int blk_test_inflight(struct virtio_dev *d, uint64_t *dropped)
{
	unsigned int n;

	pthread_mutex_lock(&d->lock);
	n = to_blk(d)->inflight;
	if (dropped)
		*dropped = to_blk(d)->dropped;
	pthread_mutex_unlock(&d->lock);
	return n;
}

void blk_set_limits(struct virtio_dev *d, const struct rl_config *rl)
{
	struct blk *b = to_blk(d);

	pthread_mutex_lock(&d->lock);
	rl_init(&b->rl, rl, now_ns());
	/* Requests that waited on the old limits go now, or wait anew. */
	if (!d->broken && (d->status & VIRTIO_STATUS_DRIVER_OK) &&
	    d->vq[0].ready)
		blk_queue_notify(d, 0);
	pthread_mutex_unlock(&d->lock);
}

uint64_t blk_throttled(struct virtio_dev *d)
{
	return to_blk(d)->throttled;
}

void blk_get_stats(struct virtio_dev *d, struct blk_stats *s)
{
	struct blk *b = to_blk(d);

	s->read_count = counter_get(&b->st.read_count);
	s->write_count = counter_get(&b->st.write_count);
	s->read_bytes = counter_get(&b->st.read_bytes);
	s->write_bytes = counter_get(&b->st.write_bytes);
	s->flush_count = counter_get(&b->st.flush_count);
	s->execute_fails = counter_get(&b->st.execute_fails);
	s->invalid_reqs_count = counter_get(&b->st.invalid_reqs_count);
	for (int k = 0; k < BLK_LAT_BUCKETS; k++)
		s->latency_us[k] = counter_get(&b->st.latency_us[k]);
}
