// SPDX-License-Identifier: MIT
/* virtio-blk through a fake driver: normal requests against a temp image
 * (checked with pread), request-level errors answered with a status, and
 * hostile chains that must leave the device NEEDS_RESET. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/blk/blk.h"
#include "devices/blk/blk_engine.h"
#include "fake_driver.h"
#include "util/time.h"

#define IMG_SIZE (1ULL << 20) /* 2048 sectors */
#define QSIZE 16
#define WANT_ALL (~0ULL)

/* Test seam: this definition replaces libc's for the whole test binary,
 * device code included, so a test can see which requests were made
 * durable and make durability fail. */
static int nr_syncs;
static int sync_errno; /* fdatasync fails with it ... */
static int sync_fails; /* ... this many times (-1: always) */

int fdatasync(int fd)
{
	nr_syncs++;
	if (sync_fails) {
		if (sync_fails > 0)
			sync_fails--;
		errno = sync_errno;
		return -1;
	}
	return (int)syscall(SYS_fdatasync, fd);
}

/* Every test runs once per engine (main). */
static enum blk_engine_kind engine;

static int create(const struct blk_config *cfg, struct guest_mem *mem,
		  struct virtio_dev **d, struct err *e)
{
	struct blk_config c = *cfg;
	int ret;

	c.engine = engine;
	ret = blk_create(&c, mem, d, e);
	if (!ret)
		assert_string_equal(blk_engine_name(*d),
				    engine == BLK_ENGINE_SYNC ? "sync" :
								"uring");
	return ret;
}

/* A kick, then whatever the engine has in flight completed (the I/O
 * thread would reap the uring engine's eventfd). */
static void kick(struct fake_driver *f)
{
	fake_kick(f, 0);
	assert_int_equal(blk_test_settle(f->d, 5000000000ull), 0);
}

struct ctx {
	struct fake_driver f;
	char path[PATH_MAX];
	int fd; /* test's own fd on the image, for pread */
	uint8_t orig[IMG_SIZE]; /* image content before the test */
};

static struct ctx *setup_common(bool readonly, uint64_t want)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct blk_config cfg = { 0 };
	struct virtio_dev *d;
	struct err e;

	assert_non_null(c);
	c->fd = fake_make_image(c->path, IMG_SIZE);
	assert_int_equal(pread(c->fd, c->orig, IMG_SIZE, 0), IMG_SIZE);
	fake_init(&c->f);
	cfg.path = c->path;
	cfg.readonly = readonly;
	assert_int_equal(create(&cfg, &c->f.mem, &d, &e), 0);
	fake_attach(&c->f, d, want, QSIZE);
	return c;
}

static int setup_rw(void **state)
{
	*state = setup_common(false, WANT_ALL);
	return 0;
}

static int setup_ro(void **state)
{
	*state = setup_common(true, WANT_ALL);
	return 0;
}

static int setup_noflush(void **state)
{
	*state = setup_common(false, WANT_ALL & ~(1ULL << VIRTIO_BLK_F_FLUSH));
	return 0;
}

static int setup_plain(void **state)
{
	/* No EVENT_IDX, no INDIRECT_DESC. */
	*state = setup_common(false, ~(1ULL << VIRTIO_F_RING_EVENT_IDX |
				       1ULL << VIRTIO_F_RING_INDIRECT_DESC));
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	sync_fails = 0;
	fake_destroy(&c->f);
	close(c->fd);
	unlink(c->path);
	free(c);
	return 0;
}

static void file_unchanged(struct ctx *c)
{
	static uint8_t now[IMG_SIZE];
	struct stat st;

	assert_int_equal(fstat(c->fd, &st), 0);
	assert_int_equal(st.st_size, IMG_SIZE);
	assert_int_equal(pread(c->fd, now, IMG_SIZE, 0), IMG_SIZE);
	assert_memory_equal(now, c->orig, IMG_SIZE);
}

static uint64_t make_hdr(struct ctx *c, uint32_t type, uint64_t sector)
{
	uint64_t g = fake_alloc(&c->f, 16);
	uint8_t *p = fake_ptr(&c->f, g, 16);

	memcpy(p, &type, 4);
	memcpy(p + 8, &sector, 8);
	return g;
}

static uint64_t make_status(struct ctx *c)
{
	uint64_t g = fake_alloc(&c->f, 1);

	*(uint8_t *)fake_ptr(&c->f, g, 1) = 0xee; /* not a valid status */
	return g;
}

static uint8_t status_at(struct ctx *c, uint64_t g)
{
	return *(uint8_t *)fake_ptr(&c->f, g, 1);
}

/* header | data (len bytes, writable for IN-like) | status */
static uint16_t add_req(struct ctx *c, uint32_t type, uint64_t sector,
			uint64_t data, uint32_t len, bool data_write,
			uint64_t st)
{
	struct fake_buf b[3];
	int n = 0;

	b[n++] = (struct fake_buf){ make_hdr(c, type, sector), 16, false };
	if (len)
		b[n++] = (struct fake_buf){ data, len, data_write };
	b[n++] = (struct fake_buf){ st, 1, true };
	return fake_add_chain(&c->f, 0, b, n);
}

static void expect_used(struct ctx *c, uint16_t head, uint32_t len)
{
	uint32_t id, l;

	assert_true(fake_get_used(&c->f, 0, &id, &l));
	assert_int_equal(id, head);
	assert_int_equal(l, len);
}

/* One request, kicked; returns its status byte and checks used len. */
static uint8_t one_req(struct ctx *c, uint32_t type, uint64_t sector,
		       uint64_t data, uint32_t len, bool data_write,
		       uint32_t used_len)
{
	uint64_t st = make_status(c);
	uint16_t head = add_req(c, type, sector, data, len, data_write, st);

	kick(&c->f);
	assert_false(c->f.d->broken);
	expect_used(c, head, used_len);
	return status_at(c, st);
}

static uint32_t cfg32(struct virtio_dev *d, uint32_t off)
{
	uint32_t v;

	d->ops->config_read(d, off, (uint8_t *)&v, 4);
	return v;
}

static void test_config(void **state)
{
	struct ctx *c = *state;
	struct virtio_dev *d = c->f.d;
	uint64_t f = d->ops->features(d), cap;
	uint16_t nq;

	assert_int_equal(d->device_id, VIRTIO_ID_BLOCK);
	assert_int_equal(d->config_size, 60);
	assert_int_equal(d->nr_queues, 1);
	assert_int_equal(d->queue_max[0], 256);
	assert_true(f & 1ULL << VIRTIO_BLK_F_FLUSH);
	assert_true(f & 1ULL << VIRTIO_BLK_F_DISCARD);
	assert_true(f & 1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	assert_true(f & 1ULL << VIRTIO_BLK_F_BLK_SIZE);
	assert_true(f & 1ULL << VIRTIO_BLK_F_SEG_MAX);
	assert_true(f & 1ULL << VIRTIO_BLK_F_SIZE_MAX);
	assert_false(f & 1ULL << VIRTIO_BLK_F_RO);
	d->ops->config_read(d, 0, (uint8_t *)&cap, 8);
	assert_int_equal(cap, IMG_SIZE / 512);
	assert_int_equal(cfg32(d, 20), 512);
	assert_int_equal(cfg32(d, 12), BLK_SEG_MAX);
	assert_int_equal(cfg32(d, 8), BLK_SIZE_MAX);
	d->ops->config_read(d, 34, (uint8_t *)&nq, 2);
	assert_int_equal(nq, 1);
	assert_int_equal(cfg32(d, 36), BLK_MAX_DISCARD_SECTORS);
	assert_int_equal(cfg32(d, 40), BLK_MAX_DISCARD_SEG);
	assert_int_equal(cfg32(d, 48), BLK_MAX_WRITE_ZEROES_SECTORS);
	assert_int_equal(cfg32(d, 52), BLK_MAX_WRITE_ZEROES_SEG);
	/* Writes are ignored. */
	cap = 1;
	d->ops->config_write(d, 0, (uint8_t *)&cap, 8);
	d->ops->config_read(d, 0, (uint8_t *)&cap, 8);
	assert_int_equal(cap, IMG_SIZE / 512);
}

static void test_config_ro(void **state)
{
	struct ctx *c = *state;
	struct virtio_dev *d = c->f.d;
	uint64_t f = d->ops->features(d);

	assert_true(f & 1ULL << VIRTIO_BLK_F_RO);
	assert_false(f & 1ULL << VIRTIO_BLK_F_DISCARD);
	assert_false(f & 1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	assert_true(f & 1ULL << VIRTIO_BLK_F_FLUSH);
}

static void test_read(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 4096);

	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, 3, data, 4096, true, 4097),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_ptr(&c->f, data, 4096), c->orig + 3 * 512,
			    4096);
	assert_int_equal(c->f.irqs, 1);
	assert_int_equal(c->f.config_irqs, 0);
	/* Last sector exactly. */
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, IMG_SIZE / 512 - 1, data,
				 512, true, 513),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_ptr(&c->f, data, 512),
			    c->orig + IMG_SIZE - 512, 512);
	file_unchanged(c);
}

/* Data split over odd-sized segments, the last one also holding the
 * status byte. */
static void test_read_scattered(void **state)
{
	struct ctx *c = *state;
	uint64_t a = fake_alloc(&c->f, 100), b = fake_alloc(&c->f, 412),
		 t = fake_alloc(&c->f, 513);
	uint8_t *tail = fake_ptr(&c->f, t, 513);
	struct fake_buf bufs[4] = {
		{ make_hdr(c, VIRTIO_BLK_T_IN, 100), 16, false },
		{ a, 100, true },
		{ b, 412, true },
		{ t, 513, true },
	};
	uint16_t head;

	tail[512] = 0xee;
	head = fake_add_chain(&c->f, 0, bufs, 4);
	kick(&c->f);
	expect_used(c, head, 1025);
	assert_int_equal(tail[512], VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_ptr(&c->f, a, 100), c->orig + 100 * 512, 100);
	assert_memory_equal(fake_ptr(&c->f, b, 412), c->orig + 100 * 512 + 100,
			    412);
	assert_memory_equal(tail, c->orig + 101 * 512, 512);
}

static void test_write_flush(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 1024), st1 = make_status(c),
		 st2 = make_status(c);
	uint8_t *p = fake_ptr(&c->f, data, 1024), back[1024];
	uint16_t h1, h2;

	for (int i = 0; i < 1024; i++)
		p[i] = (uint8_t)(0xa5 ^ i);
	/* Two requests in one batch: one interrupt. */
	h1 = add_req(c, VIRTIO_BLK_T_OUT, 10, data, 1024, false, st1);
	h2 = add_req(c, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, st2);
	kick(&c->f);
	expect_used(c, h1, 1);
	expect_used(c, h2, 1);
	assert_int_equal(status_at(c, st1), VIRTIO_BLK_S_OK);
	assert_int_equal(status_at(c, st2), VIRTIO_BLK_S_OK);
	assert_int_equal(c->f.irqs, 1);
	assert_int_equal(pread(c->fd, back, 1024, 10 * 512), 1024);
	assert_memory_equal(back, p, 1024);
	/* The neighbours are untouched. */
	memcpy(c->orig + 10 * 512, p, 1024);
	file_unchanged(c);
}

static void test_write_indirect(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 512), st = make_status(c);
	uint8_t *p = fake_ptr(&c->f, data, 512), back[512];
	struct fake_buf bufs[3] = {
		{ make_hdr(c, VIRTIO_BLK_T_OUT, 7), 16, false },
		{ data, 512, false },
		{ st, 1, true },
	};
	uint16_t head;

	memset(p, 0x5a, 512);
	head = fake_add_indirect(&c->f, 0, bufs, 3);
	kick(&c->f);
	expect_used(c, head, 1);
	assert_int_equal(status_at(c, st), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(c->fd, back, 512, 7 * 512), 512);
	assert_memory_equal(back, p, 512);
}

static void test_get_id(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 20);
	char id1[21] = { 0 }, id2[21] = { 0 };
	struct blk_config cfg = { .path = c->path, .readonly = true };
	struct virtio_dev *d2;
	struct err e;

	assert_int_equal(one_req(c, VIRTIO_BLK_T_GET_ID, 0, data, 20, true, 21),
			 VIRTIO_BLK_S_OK);
	memcpy(id1, fake_ptr(&c->f, data, 20), 20);
	assert_int_equal(strlen(id1), 20);
	assert_memory_equal(id1, "wisp", 4);

	/* Derived from the image: the same for another open of it. Use a
	 * second guest so the queues are independent. */
	fake_destroy(&c->f);
	fake_init(&c->f);
	assert_int_equal(create(&cfg, &c->f.mem, &d2, &e), 0);
	fake_attach(&c->f, d2, WANT_ALL, QSIZE);
	data = fake_alloc(&c->f, 20);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_GET_ID, 0, data, 20, true, 21),
			 VIRTIO_BLK_S_OK);
	memcpy(id2, fake_ptr(&c->f, data, 20), 20);
	assert_string_equal(id1, id2);
}

static void test_get_id_configured(void **state)
{
	struct fake_driver f;
	struct ctx *c = *state;
	struct blk_config cfg = { .path = c->path, .id = "my-disk" };
	struct virtio_dev *d;
	struct err e;
	uint8_t want[20] = "my-disk";

	/* Replace the fixture's device (it holds the write lock). */
	fake_destroy(&c->f);
	fake_init(&c->f);
	assert_int_equal(create(&cfg, &c->f.mem, &d, &e), 0);
	fake_attach(&c->f, d, WANT_ALL, QSIZE);
	uint64_t data = fake_alloc(&c->f, 20);

	memset(fake_ptr(&c->f, data, 20), 0xff, 20);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_GET_ID, 0, data, 20, true, 21),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_ptr(&c->f, data, 20), want, 20);

	/* An id longer than 20 bytes is refused at creation. */
	fake_init(&f);
	cfg.id = "abcdefghijklmnopqrstu";
	cfg.readonly = true;
	assert_int_equal(create(&cfg, &f.mem, &d, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "20 bytes"));
	fake_destroy(&f);
}

static uint64_t make_dwz(struct ctx *c, int n, const uint64_t *sector,
			 const uint32_t *num, const uint32_t *flags)
{
	uint64_t g = fake_alloc(&c->f, 16ULL * n);

	for (int i = 0; i < n; i++) {
		uint8_t *p = fake_ptr(&c->f, g + 16ULL * i, 16);

		memcpy(p, &sector[i], 8);
		memcpy(p + 8, &num[i], 4);
		memcpy(p + 12, &flags[i], 4);
	}
	return g;
}

static void expect_zero(struct ctx *c, uint64_t sector, uint32_t num)
{
	uint8_t buf[512];

	for (uint32_t i = 0; i < num; i++) {
		assert_int_equal(pread(c->fd, buf, 512,
				       (off_t)((sector + i) * 512)),
				 512);
		for (int j = 0; j < 512; j++)
			assert_int_equal(buf[j], 0);
		memset(c->orig + (sector + i) * 512, 0, 512);
	}
}

static void test_discard_write_zeroes(void **state)
{
	struct ctx *c = *state;
	uint64_t sec[2] = { 0, 24 };
	uint32_t num[2] = { 8, 3 }, fl[2] = { 0, 0 };
	uint64_t g = make_dwz(c, 2, sec, num, fl);

	/* Two discard ranges: they read back as zeros, size unchanged. */
	assert_int_equal(one_req(c, VIRTIO_BLK_T_DISCARD, 0, g, 32, false, 1),
			 VIRTIO_BLK_S_OK);
	expect_zero(c, 0, 8);
	expect_zero(c, 24, 3);
	file_unchanged(c);

	/* Write zeroes without and with the unmap flag. */
	sec[0] = 100;
	num[0] = 5;
	sec[1] = 300;
	num[1] = 9;
	fl[1] = VIRTIO_BLK_WZ_F_UNMAP;
	g = make_dwz(c, 2, sec, num, fl);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_WRITE_ZEROES, 0, g, 32, false,
				 1),
			 VIRTIO_BLK_S_OK);
	expect_zero(c, 100, 5);
	expect_zero(c, 300, 9);
	file_unchanged(c);

	/* Discard with the unmap flag, unknown flags: UNSUPP. */
	fl[0] = VIRTIO_BLK_WZ_F_UNMAP;
	g = make_dwz(c, 1, sec, num, fl);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_DISCARD, 0, g, 16, false, 1),
			 VIRTIO_BLK_S_UNSUPP);
	fl[0] = 4;
	g = make_dwz(c, 1, sec, num, fl);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_WRITE_ZEROES, 0, g, 16, false,
				 1),
			 VIRTIO_BLK_S_UNSUPP);

	/* Second range beyond capacity: IOERR and nothing done, not even
	 * the first range. */
	sec[0] = 50;
	num[0] = 1;
	fl[0] = fl[1] = 0;
	sec[1] = IMG_SIZE / 512 - 1;
	num[1] = 2;
	g = make_dwz(c, 2, sec, num, fl);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_WRITE_ZEROES, 0, g, 32, false,
				 1),
			 VIRTIO_BLK_S_IOERR);
	/* More sectors than advertised, overflowing sector. */
	sec[0] = 0;
	num[0] = BLK_MAX_DISCARD_SECTORS + 1;
	g = make_dwz(c, 1, sec, num, fl);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_DISCARD, 0, g, 16, false, 1),
			 VIRTIO_BLK_S_IOERR);
	sec[0] = UINT64_MAX - 1;
	num[0] = 4;
	g = make_dwz(c, 1, sec, num, fl);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_DISCARD, 0, g, 16, false, 1),
			 VIRTIO_BLK_S_IOERR);
	/* Payload not a multiple of 16, or empty. */
	assert_int_equal(one_req(c, VIRTIO_BLK_T_DISCARD, 0, g, 12, false, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_DISCARD, 0, 0, 0, false, 1),
			 VIRTIO_BLK_S_IOERR);
	/* More segments than max_discard_seg. */
	{
		uint64_t s[BLK_MAX_DISCARD_SEG + 1] = { 0 };
		uint32_t n[BLK_MAX_DISCARD_SEG + 1] = { 0 },
						 f[BLK_MAX_DISCARD_SEG + 1] = {
							 0
						 };

		n[0] = 1;
		g = make_dwz(c, BLK_MAX_DISCARD_SEG + 1, s, n, f);
		assert_int_equal(one_req(c, VIRTIO_BLK_T_DISCARD, 0, g,
					 16 * (BLK_MAX_DISCARD_SEG + 1), false,
					 1),
				 VIRTIO_BLK_S_IOERR);
	}
	file_unchanged(c);
}

/* Without FLUSH the driver has no way to ask for durability, so every
 * request that changes the image is durable before it completes: OUT,
 * DISCARD and WRITE_ZEROES alike. With FLUSH negotiated none of them
 * syncs on its own. */
/* Sync points the device asked for: fdatasync calls (both engines, and
 * the synchronous DISCARD/WRITE_ZEROES path) plus what the uring engine
 * put in its ring: RWF_DSYNC writes and IORING_OP_FSYNC entries. */
static int durable_ops(struct ctx *c)
{
	const struct blk_engine_stats *st = blk_test_stats(c->f.d);

	if (engine == BLK_ENGINE_SYNC)
		return nr_syncs;
	return nr_syncs + (int)(st->dsync_writes + st->flushes);
}

static void reset_durable_ops(struct ctx *c)
{
	struct blk_engine_stats *st =
		(struct blk_engine_stats *)blk_test_stats(c->f.d);

	nr_syncs = 0;
	st->dsync_writes = st->flushes = 0;
}

static void durability(struct ctx *c, int expect)
{
	uint64_t data = fake_alloc(&c->f, 512);
	uint64_t sec[1] = { 40 };
	uint32_t num[1] = { 8 }, fl[1] = { 0 };
	static const uint32_t types[] = { VIRTIO_BLK_T_OUT,
					  VIRTIO_BLK_T_DISCARD,
					  VIRTIO_BLK_T_WRITE_ZEROES };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		bool out = types[i] == VIRTIO_BLK_T_OUT;
		uint64_t g = out ? data : make_dwz(c, 1, sec, num, fl);

		reset_durable_ops(c);
		assert_int_equal(one_req(c, types[i], 40, g, out ? 512 : 16,
					 false, 1),
				 VIRTIO_BLK_S_OK);
		if (durable_ops(c) != expect)
			fail_msg("request type %u: %d sync points, want %d",
				 types[i], durable_ops(c), expect);
	}
	/* Reads change nothing and never sync. */
	reset_durable_ops(c);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, 0, data, 512, true, 513),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(durable_ops(c), 0);
}

static void test_write_through_noflush(void **state)
{
	struct ctx *c = *state;
	uint64_t sec[1] = { 40 };
	uint32_t num[1] = { 8 }, fl[1] = { 0 };

	durability(c, 1);
	/* A failed sync fails the request: the guest must not believe the
	 * data is safe. */
	sync_errno = EIO;
	sync_fails = -1;
	assert_int_equal(one_req(c, VIRTIO_BLK_T_DISCARD, 0,
				 make_dwz(c, 1, sec, num, fl), 16, false, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_WRITE_ZEROES, 0,
				 make_dwz(c, 1, sec, num, fl), 16, false, 1),
			 VIRTIO_BLK_S_IOERR);
	/* The uring engine's write-through is one RWF_DSYNC write: its
	 * failure comes back as the completion's result. */
	if (engine == BLK_ENGINE_URING)
		blk_test_inject(c->f.d, -EIO, 1);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_OUT, 40,
				 fake_alloc(&c->f, 512), 512, false, 1),
			 VIRTIO_BLK_S_IOERR);
	/* EINTR is retried, not reported: two of them, then success. */
	sync_errno = EINTR;
	sync_fails = 2;
	nr_syncs = 0;
	assert_int_equal(one_req(c, VIRTIO_BLK_T_WRITE_ZEROES, 0,
				 make_dwz(c, 1, sec, num, fl), 16, false, 1),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(nr_syncs, 3);
	sync_fails = 0;
}

static void test_writeback_with_flush(void **state)
{
	durability(*state, 0);
}

static void test_readonly(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 512);
	uint64_t sec = 0;
	uint32_t num = 1, fl = 0;

	memset(fake_ptr(&c->f, data, 512), 0x77, 512);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_OUT, 0, data, 512, false, 1),
			 VIRTIO_BLK_S_IOERR);
	/* Not offered on a read-only disk, so not negotiated. */
	data = make_dwz(c, 1, &sec, &num, &fl);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_DISCARD, 0, data, 16, false,
				 1),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_WRITE_ZEROES, 0, data, 16,
				 false, 1),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, 1),
			 VIRTIO_BLK_S_OK);
	data = fake_alloc(&c->f, 512);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, 5, data, 512, true, 513),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_ptr(&c->f, data, 512), c->orig + 5 * 512, 512);
	file_unchanged(c);
}

/* Request-level errors: answered with a status, the file untouched, the
 * device still healthy. */
static void test_request_errors(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 4096);
	uint64_t cap = IMG_SIZE / 512;
	uint8_t *p = fake_ptr(&c->f, data, 4096);

	memset(p, 0x33, 4096);
	/* Beyond capacity, partly and fully. */
	assert_int_equal(one_req(c, VIRTIO_BLK_T_OUT, cap - 1, data, 1024,
				 false, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_OUT, cap, data, 512, false, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, cap - 1, data, 1024, true,
				 1),
			 VIRTIO_BLK_S_IOERR);
	/* sector * 512 and sector + n overflow. */
	assert_int_equal(one_req(c, VIRTIO_BLK_T_OUT, UINT64_MAX, data, 512,
				 false, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, UINT64_MAX / 512 + 1, data,
				 512, true, 1),
			 VIRTIO_BLK_S_IOERR);
	/* Not a multiple of 512. */
	assert_int_equal(one_req(c, VIRTIO_BLK_T_OUT, 0, data, 513, false, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, 0, data, 100, true, 1),
			 VIRTIO_BLK_S_IOERR);
	/* Unknown types. */
	assert_int_equal(one_req(c, 99, 0, data, 512, true, 1),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(one_req(c, 2, 0, 0, 0, false, 1), VIRTIO_BLK_S_UNSUPP);
	/* Header too short: 8 readable bytes then the status. */
	{
		uint64_t st = make_status(c);
		struct fake_buf b[2] = {
			{ make_hdr(c, VIRTIO_BLK_T_IN, 0), 8, false },
			{ st, 1, true },
		};
		uint16_t head = fake_add_chain(&c->f, 0, b, 2);

		kick(&c->f);
		expect_used(c, head, 1);
		assert_int_equal(status_at(c, st), VIRTIO_BLK_S_IOERR);
	}
	/* Zero-length data (a valid, empty read). */
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, 0, 0, 0, true, 1),
			 VIRTIO_BLK_S_OK);
	assert_false(c->f.d->broken);
	assert_int_equal(c->f.config_irqs, 0);
	file_unchanged(c);
	/* The metrics count what the guest was told. */
	{
		struct blk_stats st;
		uint64_t n = 0;

		blk_get_stats(c->f.d, &st);
		assert_int_equal(st.execute_fails, 8);
		assert_int_equal(st.invalid_reqs_count, 2);
		assert_int_equal(st.read_count, 1);
		assert_int_equal(st.read_bytes, 0);
		assert_int_equal(st.write_count, 0);
		assert_int_equal(st.write_bytes, 0);
		for (int k = 0; k < BLK_LAT_BUCKETS; k++)
			n += st.latency_us[k];
		assert_int_equal(n, 11);
	}
}

/* Zero-length descriptors are skipped by the queue layer: the request is
 * answered normally. */
static void test_zero_length_descs(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 512), st = make_status(c);
	struct fake_buf b[5] = {
		{ make_hdr(c, VIRTIO_BLK_T_IN, 1), 16, false },
		{ 0, 0, false },
		{ data, 512, true },
		{ data, 0, true },
		{ st, 1, true },
	};
	uint16_t head = fake_add_chain(&c->f, 0, b, 5);

	kick(&c->f);
	assert_false(c->f.d->broken);
	expect_used(c, head, 513);
	assert_int_equal(status_at(c, st), VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_ptr(&c->f, data, 512), c->orig + 512, 512);
}

static void test_event_idx(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 512);

	/* used_event 0: the first used entry (idx 0 -> 1) interrupts. */
	fake_set_used_event(&c->f, 0, 0);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, 0, data, 512, true, 513),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(c->f.irqs, 1);
	/* The device asked for a kick at the next buffer. */
	assert_int_equal(fake_avail_event(&c->f, 0), 1);
	/* used_event far ahead: no interrupt. */
	fake_set_used_event(&c->f, 0, 100);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, 0, data, 512, true, 513),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(c->f.irqs, 1);
	assert_int_equal(fake_avail_event(&c->f, 0), 2);
	/* used_event = 2: crossing it interrupts again. */
	fake_set_used_event(&c->f, 0, 2);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, 0, data, 512, true, 513),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(c->f.irqs, 2);
}

static void test_no_interrupt_flag(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 512);
	uint16_t flags = VIRTQ_AVAIL_F_NO_INTERRUPT;

	memcpy(fake_ptr(&c->f, c->f.q[0].avail, 2), &flags, 2);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, 0, data, 512, true, 513),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(c->f.irqs, 0);
}

static void test_lock_conflict(void **state)
{
	struct ctx *c = *state;
	struct blk_config cfg = { .path = c->path };
	struct virtio_dev *d;
	struct err e;

	/* The fixture's device holds the write lock. */
	memset(&e, 0, sizeof(e));
	assert_int_equal(create(&cfg, &c->f.mem, &d, &e), -EBUSY);
	assert_null(d);
	assert_non_null(strstr(e.msg, c->path));
	assert_non_null(strstr(e.msg, "in use by another process (locked)"));
	cfg.readonly = true;
	assert_int_equal(create(&cfg, &c->f.mem, &d, &e), -EBUSY);

	/* After it is gone: two read-only opens share, a writer is
	 * refused. */
	fake_destroy(&c->f);
	fake_init(&c->f);
	struct virtio_dev *r1, *r2;

	assert_int_equal(create(&cfg, &c->f.mem, &r1, &e), 0);
	assert_int_equal(create(&cfg, &c->f.mem, &r2, &e), 0);
	cfg.readonly = false;
	assert_int_equal(create(&cfg, &c->f.mem, &d, &e), -EBUSY);
	r1->ops->destroy(r1);
	r2->ops->destroy(r2);
	assert_int_equal(create(&cfg, &c->f.mem, &d, &e), 0);
	fake_attach(&c->f, d, WANT_ALL, QSIZE);
}

static void *close_later(void *arg)
{
	usleep(60000);
	close(*(int *)arg);
	return NULL;
}

/* A lock whose holder is going (its file closes 60 ms later) is waited
 * for; one that stays is refused once the bounded wait is over. */
static void test_lock_released_while_waiting(void **state)
{
	struct ctx *c = *state;
	struct blk_config cfg = { .path = c->path };
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct virtio_dev *d;
	struct err e;
	pthread_t t;
	uint64_t t0;
	int fd;

	fake_destroy(&c->f);
	fake_init(&c->f);
	fd = open(c->path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
	t0 = now_ms();
	assert_int_equal(create(&cfg, &c->f.mem, &d, &e), -EBUSY);
	assert_true(now_ms() - t0 >= 250);

	assert_int_equal(pthread_create(&t, NULL, close_later, &fd), 0);
	t0 = now_ms();
	assert_int_equal(create(&cfg, &c->f.mem, &d, &e), 0);
	assert_true(now_ms() - t0 >= 50);
	assert_int_equal(pthread_join(t, NULL), 0);
	fake_attach(&c->f, d, WANT_ALL, QSIZE);
}

static void test_open_errors(void **state)
{
	struct fake_driver f;
	struct blk_config cfg = { .path = "/nonexistent/wisp.img" };
	struct virtio_dev *d;
	struct err e;

	(void)state;
	fake_init(&f);
	assert_int_equal(create(&cfg, &f.mem, &d, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "disk '/nonexistent/wisp.img'"));
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_null(d);
	cfg.path = "/tmp";
	cfg.readonly = true;
	assert_int_equal(create(&cfg, &f.mem, &d, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not a regular file"));
	assert_int_equal(e.cls, ERR_CONFIG);
	cfg.path = "";
	assert_int_equal(create(&cfg, &f.mem, &d, &e), -EINVAL);
	assert_int_equal(e.cls, ERR_CONFIG);
	fake_destroy(&f);
}

/* Running out of fds is the host's problem, not a wrong path. */
static void test_open_host_error(void **state)
{
	struct fake_driver f;
	struct blk_config cfg = { 0 };
	struct virtio_dev *d;
	struct rlimit old, low;
	struct err e;
	char path[PATH_MAX];
	int fd, ret, held[1024], nheld = 0;

	(void)state;
	fake_init(&f);
	fd = fake_make_image(path, 4096);
	cfg.path = path;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)fd + 1; /* no fd above the image's is free */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nheld < 1024 && (held[nheld] = dup(fd)) >= 0)
		nheld++;
	ret = create(&cfg, &f.mem, &d, &e);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	while (nheld)
		close(held[--nheld]);
	assert_int_equal(ret, -EMFILE);
	assert_int_equal(e.cls, ERR_HOST);
	assert_null(d);
	close(fd);
	unlink(path);
	fake_destroy(&f);
}

static void test_odd_size(void **state)
{
	struct fake_driver f;
	char path[PATH_MAX];
	int fd = fake_make_image(path, 1000);
	struct blk_config cfg = { .path = path };
	struct virtio_dev *d;
	struct err e;
	uint64_t cap;

	(void)state;
	fake_init(&f);
	assert_int_equal(create(&cfg, &f.mem, &d, &e), 0);
	d->ops->config_read(d, 0, (uint8_t *)&cap, 8);
	assert_int_equal(cap, 1);
	f.d = d;
	fake_destroy(&f);
	close(fd);
	unlink(path);
}

static void test_direct(void **state)
{
	struct fake_driver f;
	char path[PATH_MAX];
	int fd = fake_make_image(path, IMG_SIZE);
	struct blk_config cfg = { .path = path, .direct = true };
	struct virtio_dev *d;
	struct err e;
	uint64_t hdr, al, un, st;
	uint8_t back[1024];
	struct fake_buf b[3];
	uint32_t id, len;
	int ret;

	(void)state;
	fake_init(&f);
	ret = create(&cfg, &f.mem, &d, &e);
	if (ret == -EINVAL) {
		close(fd);
		unlink(path);
		fake_destroy(&f);
		skip(); /* file system without O_DIRECT */
	}
	assert_int_equal(ret, 0);
	fake_attach(&f, d, WANT_ALL, QSIZE);
	f.heap = (f.heap + 4095) & ~4095ULL;
	al = fake_alloc(&f, 4096); /* page aligned: direct path */
	un = fake_alloc(&f, 1024 + 16) + 8; /* misaligned: bounce */
	st = fake_alloc(&f, 1);

	/* Unaligned write of 2 sectors, aligned read back. */
	memset(fake_ptr(&f, un, 1024), 0xc3, 1024);
	hdr = fake_alloc(&f, 16);
	memcpy(fake_ptr(&f, hdr, 4), &(uint32_t){ VIRTIO_BLK_T_OUT }, 4);
	memcpy(fake_ptr(&f, hdr + 8, 8), &(uint64_t){ 4 }, 8);
	b[0] = (struct fake_buf){ hdr, 16, false };
	b[1] = (struct fake_buf){ un, 1024, false };
	b[2] = (struct fake_buf){ st, 1, true };
	fake_add_chain(&f, 0, b, 3);
	kick(&f);
	assert_true(fake_get_used(&f, 0, &id, &len));
	assert_int_equal(*(uint8_t *)fake_ptr(&f, st, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(fd, back, 1024, 4 * 512), 1024);
	assert_memory_equal(back, fake_ptr(&f, un, 1024), 1024);

	hdr = fake_alloc(&f, 16);
	memcpy(fake_ptr(&f, hdr + 8, 8), &(uint64_t){ 4 }, 8);
	b[0] = (struct fake_buf){ hdr, 16, false };
	b[1] = (struct fake_buf){ al, 1024, true };
	fake_add_chain(&f, 0, b, 3);
	kick(&f);
	assert_true(fake_get_used(&f, 0, &id, &len));
	assert_int_equal(len, 1025);
	assert_memory_equal(fake_ptr(&f, al, 1024), back, 1024);

	/* Unaligned read. */
	b[1] = (struct fake_buf){ un, 512, true };
	fake_add_chain(&f, 0, b, 3);
	kick(&f);
	assert_true(fake_get_used(&f, 0, &id, &len));
	assert_int_equal(len, 513);
	assert_memory_equal(fake_ptr(&f, un, 512), back, 512);
	assert_false(d->broken);
	fake_destroy(&f);
	close(fd);
	unlink(path);
}

/* ---- hostile chains: each must leave the device NEEDS_RESET ---- */

static void expect_broken(struct ctx *c)
{
	uint16_t used = fake_used_idx(&c->f, 0);
	uint64_t data = fake_alloc(&c->f, 512), st = make_status(c);

	kick(&c->f);
	assert_true(fake_broken(&c->f));
	assert_int_equal(c->f.config_irqs, 1);
	assert_int_equal(fake_used_idx(&c->f, 0), used);
	/* A broken device ignores further kicks, even for a good request. */
	add_req(c, VIRTIO_BLK_T_OUT, 0, data, 512, false, st);
	kick(&c->f);
	assert_int_equal(fake_used_idx(&c->f, 0), used);
	assert_int_equal(status_at(c, st), 0xee);
	file_unchanged(c);
}

static void test_bad_head_index(void **state)
{
	struct ctx *c = *state;

	fake_publish(&c->f, 0, QSIZE + 3);
	expect_broken(c);
}

static void test_bad_next_index(void **state)
{
	struct ctx *c = *state;

	fake_set_desc(&c->f, 0, 0, make_hdr(c, VIRTIO_BLK_T_IN, 0), 16,
		      VIRTQ_DESC_F_NEXT, QSIZE);
	fake_publish(&c->f, 0, 0);
	expect_broken(c);
}

static void test_addr_outside_ram(void **state)
{
	struct ctx *c = *state;
	struct fake_buf b[3] = {
		{ make_hdr(c, VIRTIO_BLK_T_IN, 0), 16, false },
		{ FAKE_MEM_SIZE - 256, 512, true }, /* crosses the end */
		{ make_status(c), 1, true },
	};

	fake_add_chain(&c->f, 0, b, 3);
	expect_broken(c);
}

static void test_addr_far_outside(void **state)
{
	struct ctx *c = *state;
	struct fake_buf b[2] = {
		{ 0xC0000000ULL, 16, false }, /* the MMIO hole */
		{ make_status(c), 1, true },
	};

	fake_add_chain(&c->f, 0, b, 2);
	expect_broken(c);
}

static void test_addr_len_overflow(void **state)
{
	struct ctx *c = *state;
	struct fake_buf b[2] = {
		{ UINT64_MAX - 10, 100, false },
		{ make_status(c), 1, true },
	};

	fake_add_chain(&c->f, 0, b, 2);
	expect_broken(c);
}

static void test_desc_loop(void **state)
{
	struct ctx *c = *state;
	uint64_t h = make_hdr(c, VIRTIO_BLK_T_OUT, 0);

	fake_set_desc(&c->f, 0, 0, h, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_set_desc(&c->f, 0, 1, h, 16, VIRTQ_DESC_F_NEXT, 0);
	fake_publish(&c->f, 0, 0);
	expect_broken(c);
}

/* Longer than the queue without revisiting the head: 0 -> 1 -> ... ->
 * 15 -> 3. */
static void test_chain_longer_than_queue(void **state)
{
	struct ctx *c = *state;
	uint64_t h = make_hdr(c, VIRTIO_BLK_T_OUT, 0);

	for (int i = 0; i < QSIZE; i++)
		fake_set_desc(&c->f, 0, i, h, 16, VIRTQ_DESC_F_NEXT,
			      i + 1 < QSIZE ? i + 1 : 3);
	fake_publish(&c->f, 0, 0);
	expect_broken(c);
}

static void test_write_before_read(void **state)
{
	struct ctx *c = *state;
	struct fake_buf b[3] = {
		{ make_status(c), 1, true },
		{ make_hdr(c, VIRTIO_BLK_T_IN, 0), 16, false },
		{ make_status(c), 1, true },
	};

	fake_add_chain(&c->f, 0, b, 3);
	expect_broken(c);
}

static void test_no_status_byte(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 512);
	struct fake_buf b[2] = {
		{ make_hdr(c, VIRTIO_BLK_T_OUT, 0), 16, false },
		{ data, 512, false },
	};

	fake_add_chain(&c->f, 0, b, 2);
	expect_broken(c);
}

static void test_only_zero_length_writable(void **state)
{
	struct ctx *c = *state;
	struct fake_buf b[2] = {
		{ make_hdr(c, VIRTIO_BLK_T_FLUSH, 0), 16, false },
		{ make_status(c), 0, true },
	};

	fake_add_chain(&c->f, 0, b, 2);
	expect_broken(c);
}

static void put_desc(uint8_t *p, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

/* virtio 1.2, 2.7.5.3.2: the device must handle direct descriptors
 * followed by one indirect descriptor ending the chain. */
/* Indirect tables need no alignment (Linux's SLOB gives 8-byte ones). */
static void test_indirect_unaligned_table(void **state)
{
	struct ctx *c = *state;
	uint64_t t = fake_alloc(&c->f, 64) + 8, data = fake_alloc(&c->f, 512);
	uint64_t st = make_status(c);
	uint8_t *p = fake_ptr(&c->f, data, 512), back[512];

	memset(p, 0x77, 512);
	put_desc(fake_ptr(&c->f, t, 16), make_hdr(c, VIRTIO_BLK_T_OUT, 5), 16,
		 VIRTQ_DESC_F_NEXT, 1);
	put_desc(fake_ptr(&c->f, t + 16, 16), data, 512, VIRTQ_DESC_F_NEXT, 2);
	put_desc(fake_ptr(&c->f, t + 32, 16), st, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_set_desc(&c->f, 0, 0, t, 48, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&c->f, 0, 0);
	kick(&c->f);
	expect_used(c, 0, 1);
	assert_int_equal(status_at(c, st), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(c->fd, back, 512, 5 * 512), 512);
	assert_memory_equal(back, p, 512);
}

static void test_direct_then_indirect(void **state)
{
	struct ctx *c = *state;
	uint64_t t = fake_alloc(&c->f, 32), data = fake_alloc(&c->f, 512);
	uint64_t st = make_status(c);
	uint8_t *p = fake_ptr(&c->f, data, 512), back[512];

	memset(p, 0xc3, 512);
	put_desc(fake_ptr(&c->f, t, 16), data, 512, VIRTQ_DESC_F_NEXT, 1);
	put_desc(fake_ptr(&c->f, t + 16, 16), st, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_set_desc(&c->f, 0, 0, make_hdr(c, VIRTIO_BLK_T_OUT, 3), 16,
		      VIRTQ_DESC_F_NEXT, 1);
	fake_set_desc(&c->f, 0, 1, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&c->f, 0, 0);
	kick(&c->f);
	expect_used(c, 0, 1);
	assert_int_equal(status_at(c, st), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(c->fd, back, 512, 3 * 512), 512);
	assert_memory_equal(back, p, 512);
}

static void test_indirect_in_indirect(void **state)
{
	struct ctx *c = *state;
	uint64_t inner = fake_alloc(&c->f, 32), outer = fake_alloc(&c->f, 16);

	put_desc(fake_ptr(&c->f, inner, 16), make_hdr(c, 0, 0), 16,
		 VIRTQ_DESC_F_NEXT, 1);
	put_desc(fake_ptr(&c->f, inner + 16, 16), make_status(c), 1,
		 VIRTQ_DESC_F_WRITE, 0);
	put_desc(fake_ptr(&c->f, outer, 16), inner, 32, VIRTQ_DESC_F_INDIRECT,
		 0);
	fake_set_desc(&c->f, 0, 0, outer, 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&c->f, 0, 0);
	expect_broken(c);
}

static void test_indirect_bad_len(void **state)
{
	struct ctx *c = *state;
	uint64_t t = fake_alloc(&c->f, 48);

	put_desc(fake_ptr(&c->f, t, 16), make_hdr(c, 0, 0), 16,
		 VIRTQ_DESC_F_NEXT, 1);
	put_desc(fake_ptr(&c->f, t + 16, 16), make_status(c), 1,
		 VIRTQ_DESC_F_WRITE, 0);
	fake_set_desc(&c->f, 0, 0, t, 40, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&c->f, 0, 0);
	expect_broken(c);
}

static void test_indirect_with_next(void **state)
{
	struct ctx *c = *state;
	uint64_t t = fake_alloc(&c->f, 32);

	put_desc(fake_ptr(&c->f, t, 16), make_hdr(c, 0, 0), 16,
		 VIRTQ_DESC_F_NEXT, 1);
	put_desc(fake_ptr(&c->f, t + 16, 16), make_status(c), 1,
		 VIRTQ_DESC_F_WRITE, 0);
	fake_set_desc(&c->f, 0, 0, t, 32,
		      VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	fake_set_desc(&c->f, 0, 1, make_status(c), 1, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&c->f, 0, 0);
	expect_broken(c);
}

static void test_indirect_loop(void **state)
{
	struct ctx *c = *state;
	uint64_t t = fake_alloc(&c->f, 32);

	put_desc(fake_ptr(&c->f, t, 16), make_hdr(c, 1, 0), 16,
		 VIRTQ_DESC_F_NEXT, 1);
	put_desc(fake_ptr(&c->f, t + 16, 16), make_hdr(c, 1, 0), 16,
		 VIRTQ_DESC_F_NEXT, 0);
	fake_set_desc(&c->f, 0, 0, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&c->f, 0, 0);
	expect_broken(c);
}

static void test_indirect_too_large(void **state)
{
	struct ctx *c = *state;
	int n = VIRTQ_MAX_SEGS + 1;
	uint64_t t = fake_alloc(&c->f, 16ULL * n), h = make_hdr(c, 0, 0);

	for (int i = 0; i < n; i++)
		put_desc(fake_ptr(&c->f, t + 16ULL * i, 16), h, 16,
			 i + 1 < n ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	fake_set_desc(&c->f, 0, 0, t, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&c->f, 0, 0);
	expect_broken(c);
}

static void test_indirect_not_negotiated(void **state)
{
	struct ctx *c = *state;
	struct fake_buf b[2] = {
		{ make_hdr(c, VIRTIO_BLK_T_FLUSH, 0), 16, false },
		{ make_status(c), 1, true },
	};

	fake_add_indirect(&c->f, 0, b, 2);
	expect_broken(c);
}

static void test_indirect_outside_ram(void **state)
{
	struct ctx *c = *state;

	fake_set_desc(&c->f, 0, 0, FAKE_MEM_SIZE - 16, 32,
		      VIRTQ_DESC_F_INDIRECT, 0);
	fake_publish(&c->f, 0, 0);
	expect_broken(c);
}

static void test_huge_len(void **state)
{
	struct ctx *c = *state;
	struct fake_buf b[2] = {
		{ make_hdr(c, VIRTIO_BLK_T_OUT, 0), UINT32_MAX, false },
		{ make_status(c), 1, true },
	};

	fake_add_chain(&c->f, 0, b, 2);
	expect_broken(c);
}

/* Each buffer is inside RAM but together they exceed the chain limit
 * (VIRTQ_MAX_CHAIN_BYTES): 20 overlapping 15 MiB buffers. */
static void test_huge_total(void **state)
{
	struct ctx *c = *state;
	struct fake_buf b[20];

	b[0] = (struct fake_buf){ make_hdr(c, VIRTIO_BLK_T_IN, 0), 16, false };
	for (int i = 1; i < 19; i++)
		b[i] = (struct fake_buf){ 0, 15u << 20, true };
	b[19] = (struct fake_buf){ make_status(c), 1, true };
	fake_add_indirect(&c->f, 0, b, 20);
	expect_broken(c);
}

static void test_avail_idx_jump(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 512);

	/* A valid request in slot 0, but the index claims size + 1. */
	add_req(c, VIRTIO_BLK_T_OUT, 0, data, 512, false, make_status(c));
	fake_set_avail_idx(&c->f, 0, QSIZE + 1);
	expect_broken(c);
}

/* A good request before a bad one is completed; the bad one breaks the
 * device. */
static void test_good_then_bad(void **state)
{
	struct ctx *c = *state;
	uint64_t data = fake_alloc(&c->f, 512), st = make_status(c);
	uint16_t head = add_req(c, VIRTIO_BLK_T_IN, 2, data, 512, true, st);

	fake_publish(&c->f, 0, QSIZE + 1);
	kick(&c->f);
	expect_used(c, head, 513);
	assert_int_equal(status_at(c, st), VIRTIO_BLK_S_OK);
	assert_true(fake_broken(&c->f));
	assert_int_equal(c->f.irqs, 1);
	assert_int_equal(c->f.config_irqs, 1);
}

/* ---- many requests in flight ---- */

static uint8_t c_orig_sector0[512];

#define NR_FLIGHT 32
#define QSIZE_BIG 128

static int setup_big(void **state)
{
	struct ctx *c = setup_common(false, WANT_ALL);

	/* Re-attach with a queue deep enough for NR_FLIGHT 3-descriptor
	 * requests. */
	fake_attach(&c->f, c->f.d, WANT_ALL, QSIZE_BIG);
	*state = c;
	return 0;
}

struct flight {
	uint16_t head[NR_FLIGHT];
	uint64_t data[NR_FLIGHT], st[NR_FLIGHT];
};

/* NR_FLIGHT 4 KiB reads of distinct sectors, kicked once, held in the
 * engine. */
static void submit_held_reads(struct ctx *c, struct flight *fl)
{
	blk_test_hold(c->f.d, true);
	for (int i = 0; i < NR_FLIGHT; i++) {
		fl->data[i] = fake_alloc(&c->f, 4096);
		fl->st[i] = make_status(c);
		fl->head[i] = add_req(c, VIRTIO_BLK_T_IN, (uint64_t)i * 8,
				      fl->data[i], 4096, true, fl->st[i]);
	}
	fake_kick(&c->f, 0);
	assert_false(c->f.d->broken);
	assert_int_equal(blk_test_inflight(c->f.d, NULL), NR_FLIGHT);
	assert_int_equal(fake_used_idx(&c->f, 0), 0);
	assert_int_equal(c->f.irqs, 0);
}

/* Guest memory a completion could write: data, status bytes, the used
 * ring. Filled with a sentinel the device must leave alone. */
static void poison(struct ctx *c, struct flight *fl)
{
	for (int i = 0; i < NR_FLIGHT; i++) {
		memset(fake_ptr(&c->f, fl->data[i], 4096), 0x5a, 4096);
		*(uint8_t *)fake_ptr(&c->f, fl->st[i], 1) = 0xee;
	}
	memset(fake_ptr(&c->f, c->f.q[0].used, 4 + 8 * QSIZE_BIG), 0x5a,
	       4 + 8 * QSIZE_BIG);
}

static void untouched(struct ctx *c, struct flight *fl)
{
	uint8_t *u = fake_ptr(&c->f, c->f.q[0].used, 4 + 8 * QSIZE_BIG);

	for (int i = 0; i < NR_FLIGHT; i++) {
		uint8_t *d = fake_ptr(&c->f, fl->data[i], 4096);

		for (int j = 0; j < 4096; j++)
			if (d[j] != 0x5a)
				fail_msg("request %d: data byte %d written "
					 "after the reset",
					 i, j);
		assert_int_equal(status_at(c, fl->st[i]), 0xee);
	}
	for (int j = 0; j < 4 + 8 * QSIZE_BIG; j++)
		if (u[j] != 0x5a)
			fail_msg("used ring byte %d written after the reset",
				 j);
}

/* Every request completes exactly once, with its own data, and the whole
 * batch costs one interrupt (EVENT_IDX: used_event is 0). */
static void test_inflight_complete_once(void **state)
{
	struct ctx *c = *state;
	struct flight fl;
	int seen[QSIZE_BIG] = { 0 };
	uint32_t id, len;

	submit_held_reads(c, &fl);
	blk_test_hold(c->f.d, false);
	assert_int_equal(blk_test_settle(c->f.d, 5000000000ull), 0);
	assert_int_equal(fake_used_idx(&c->f, 0), NR_FLIGHT);
	assert_int_equal(c->f.irqs, 1);
	for (int i = 0; i < NR_FLIGHT; i++) {
		assert_true(fake_get_used(&c->f, 0, &id, &len));
		assert_true(id < QSIZE_BIG);
		seen[id]++;
		assert_int_equal(len, 4097);
	}
	assert_false(fake_get_used(&c->f, 0, &id, &len));
	for (int i = 0; i < NR_FLIGHT; i++) {
		assert_int_equal(seen[fl.head[i]], 1);
		assert_int_equal(status_at(c, fl.st[i]), VIRTIO_BLK_S_OK);
		assert_memory_equal(fake_ptr(&c->f, fl.data[i], 4096),
				    c->orig + (uint64_t)i * 4096, 4096);
	}
	/* A second settle finds nothing: no double completion. */
	assert_int_equal(blk_test_settle(c->f.d, 100000000ull), 0);
	assert_int_equal(fake_used_idx(&c->f, 0), NR_FLIGHT);
}

/* What the transport does on Status <- 0 (mmio.c reset_locked), for the
 * queue the fake driver set up. */
static void transport_reset(struct ctx *c)
{
	struct virtio_dev *d = c->f.d;

	pthread_mutex_lock(&d->lock);
	d->ops->reset(d);
	d->vq[0].ready = false;
	virtq_reset(&d->vq[0]);
	d->status = 0;
	pthread_mutex_unlock(&d->lock);
}

/* A reset with requests in flight returns only when the kernel is done
 * with them; nothing the completions could write is written after it. */
static void test_inflight_reset(void **state)
{
	struct ctx *c = *state;
	struct flight fl;
	uint64_t dropped;

	submit_held_reads(c, &fl);
	transport_reset(c);
	assert_int_equal(blk_test_inflight(c->f.d, &dropped), 0);
	assert_int_equal(dropped, NR_FLIGHT);
	poison(c, &fl);
	blk_test_hold(c->f.d, false);
	blk_test_settle(c->f.d, 100000000ull);
	c->f.d->ops->fd_ready(c->f.d, c->f.d->watch_fds[0]);
	untouched(c, &fl);
	assert_int_equal(c->f.irqs, 0);
	/* The device works again after the driver sets it up anew. */
	c->f.q[0] = (struct fake_queue){ 0 };
	fake_attach(&c->f, c->f.d, WANT_ALL, QSIZE_BIG);
	assert_int_equal(one_req(c, VIRTIO_BLK_T_IN, 0, fake_alloc(&c->f, 512),
				 512, true, 513),
			 VIRTIO_BLK_S_OK);
	/* The dropped reads were never answered: not counted. */
	{
		struct blk_stats st;

		blk_get_stats(c->f.d, &st);
		assert_int_equal(st.read_count, 1);
		assert_int_equal(st.read_bytes, 512);
		assert_int_equal(st.execute_fails, 0);
	}
}

/* QueueReady <- 0 does not reach the device: the requests of the old
 * ring are dropped when they complete, never pushed into it, and never
 * into the ring the driver sets up next. */
static void test_inflight_queue_disable(void **state)
{
	struct ctx *c = *state;
	struct virtio_dev *d = c->f.d;
	struct flight fl;
	uint64_t dropped;

	submit_held_reads(c, &fl);
	pthread_mutex_lock(&d->lock);
	d->vq[0].ready = false;
	pthread_mutex_unlock(&d->lock);
	blk_test_hold(d, false);
	assert_int_equal(blk_test_settle(d, 5000000000ull), 0);
	assert_int_equal(blk_test_inflight(d, &dropped), 0);
	assert_int_equal(dropped, NR_FLIGHT);
	for (int i = 0; i < NR_FLIGHT; i++)
		assert_int_equal(status_at(c, fl.st[i]), 0xee);
	assert_int_equal(fake_used_idx(&c->f, 0), 0);

	/* Disabled and re-enabled before the completions arrive. */
	c->f.q[0] = (struct fake_queue){ 0 };
	fake_attach(&c->f, d, WANT_ALL, QSIZE_BIG);
	submit_held_reads(c, &fl);
	pthread_mutex_lock(&d->lock);
	d->vq[0].ready = false;
	virtq_reset(&d->vq[0]);
	d->vq[0].ready = true;
	pthread_mutex_unlock(&d->lock);
	c->f.q[0].avail_idx = c->f.q[0].used_seen = c->f.q[0].next_desc = 0;
	fake_set_avail_idx(&c->f, 0, 0);
	poison(c, &fl);
	blk_test_hold(d, false);
	assert_int_equal(blk_test_settle(d, 5000000000ull), 0);
	untouched(c, &fl);
}

/* QueueReady <- 0 through the transport (ops->queue_disable): when the
 * write returns nothing is in flight, and the buffers the driver may now
 * reuse are never written by the old requests. */
static void test_inflight_queue_disable_op(void **state)
{
	struct ctx *c = *state;
	struct virtio_dev *d = c->f.d;
	struct flight fl;
	uint64_t dropped;

	submit_held_reads(c, &fl);
	assert_non_null(d->ops->queue_disable);
	pthread_mutex_lock(&d->lock);
	d->ops->queue_disable(d, 0);
	d->vq[0].ready = false;
	pthread_mutex_unlock(&d->lock);
	assert_int_equal(blk_test_inflight(d, &dropped), 0);
	assert_int_equal(dropped, NR_FLIGHT);
	assert_int_equal(fake_used_idx(&c->f, 0), 0);
	poison(c, &fl);
	blk_test_hold(d, false);
	blk_test_settle(d, 100000000ull);
	d->ops->fd_ready(d, d->watch_fds[0]);
	untouched(c, &fl);
}

/* Before a guest memory remap (wisp-blk's pause hook) every request in
 * flight is completed, in one batch with one interrupt, even while the
 * hold seam would keep them. */
static void test_inflight_quiesce(void **state)
{
	struct ctx *c = *state;
	struct flight fl;

	submit_held_reads(c, &fl);
	pthread_mutex_lock(&c->f.d->lock);
	blk_quiesce(c->f.d);
	pthread_mutex_unlock(&c->f.d->lock);
	assert_int_equal(blk_test_inflight(c->f.d, NULL), 0);
	assert_int_equal(fake_used_idx(&c->f, 0), NR_FLIGHT);
	assert_int_equal(c->f.irqs, 1);
	for (int i = 0; i < NR_FLIGHT; i++) {
		assert_int_equal(status_at(c, fl.st[i]), VIRTIO_BLK_S_OK);
		assert_memory_equal(fake_ptr(&c->f, fl.data[i], 4096),
				    c->orig + (uint64_t)i * 4096, 4096);
	}
}

/* A server disconnect tears the device down with requests in flight:
 * each is reaped once (ASan sees no leak or use after free) and nothing
 * is written to guest memory afterwards. */
static void test_inflight_teardown(void **state)
{
	struct ctx *c = *state;
	struct flight fl;

	submit_held_reads(c, &fl);
	c->f.d->ops->destroy(c->f.d);
	c->f.d = NULL;
	poison(c, &fl);
	usleep(20000);
	untouched(c, &fl);
}

/* Writes and a FLUSH in one batch: the flush is ordered after the writes
 * (IOSQE_IO_DRAIN), completes last, and is one fsync of the engine's own
 * kind (IORING_OP_FSYNC for uring, fdatasync for sync). */
static void test_inflight_flush_order(void **state)
{
	struct ctx *c = *state;
	const struct blk_engine_stats *st = blk_test_stats(c->f.d);
	uint64_t flushes = st->flushes;
	uint16_t fh, head[8];
	uint64_t s[8], fst = make_status(c);
	uint32_t id, len;
	uint8_t back[512];

	nr_syncs = 0;
	for (int i = 0; i < 8; i++) {
		uint64_t g = fake_alloc(&c->f, 512);

		memset(fake_ptr(&c->f, g, 512), 0x30 + i, 512);
		s[i] = make_status(c);
		head[i] = add_req(c, VIRTIO_BLK_T_OUT, 100 + (uint64_t)i, g,
				  512, false, s[i]);
	}
	fh = add_req(c, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, fst);
	kick(&c->f);
	for (int i = 0; i < 9; i++) {
		assert_true(fake_get_used(&c->f, 0, &id, &len));
		if (i == 8)
			assert_int_equal(id, fh);
		else
			assert_int_not_equal(id, fh);
	}
	assert_int_equal(status_at(c, fst), VIRTIO_BLK_S_OK);
	assert_int_equal(st->flushes - flushes, 1);
	assert_int_equal(nr_syncs, engine == BLK_ENGINE_SYNC ? 1 : 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(status_at(c, s[i]), VIRTIO_BLK_S_OK);
		assert_int_equal(pread(c->fd, back, 512, (100 + i) * 512), 512);
		assert_int_equal(back[0], 0x30 + i);
		(void)head[i];
	}
}

/* io_uring refused the way seccomp refuses it (EPERM from io_uring_setup,
 * in a child so the filter does not outlive the test): the automatic
 * choice falls back to synchronous I/O that works, engine=uring is a
 * config error that says why. */
static int child_fallback(void)
{
	struct sock_filter prog[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog fp = { sizeof(prog) / sizeof(prog[0]), prog };
	struct fake_driver f;
	char path[PATH_MAX];
	int fd = fake_make_image(path, IMG_SIZE);
	struct blk_config cfg = { .path = path };
	struct virtio_dev *d;
	struct err e = { 0 };
	int ret = 10;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp))
		goto out;
	fake_init(&f);
	ret = 11;
	cfg.engine = BLK_ENGINE_URING;
	if (blk_create(&cfg, &f.mem, &d, &e) != -EPERM || e.cls != ERR_CONFIG ||
	    !strstr(e.msg, "engine=uring") || !strstr(e.msg, "not permitted"))
		goto out_mem;
	ret = 12;
	cfg.engine = BLK_ENGINE_AUTO;
	if (blk_create(&cfg, &f.mem, &d, &e) ||
	    strcmp(blk_engine_name(d), "sync"))
		goto out_mem;
	fake_attach(&f, d, WANT_ALL, QSIZE);
	{
		uint64_t hdr = fake_alloc(&f, 16), data = fake_alloc(&f, 512);
		uint64_t st = fake_alloc(&f, 1);
		struct fake_buf b[3] = { { hdr, 16, false },
					 { data, 512, true },
					 { st, 1, true } };
		uint32_t id, len;

		fake_add_chain(&f, 0, b, 3);
		fake_kick(&f, 0);
		ret = 13;
		if (!fake_get_used(&f, 0, &id, &len) || len != 513 ||
		    *(uint8_t *)fake_ptr(&f, st, 1) != VIRTIO_BLK_S_OK ||
		    memcmp(fake_ptr(&f, data, 512), c_orig_sector0, 512))
			goto out_mem;
	}
	ret = 0;
out_mem:
	fake_destroy(&f);
out:
	close(fd);
	unlink(path);
	return ret;
}

static void test_uring_refused_fallback(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	for (int i = 0; i < 512; i++)
		c_orig_sector0[i] = fake_pattern((uint64_t)i);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_fallback());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status))
		fail_msg("child failed at step %d", WEXITSTATUS(status));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_rw, teardown)
#define TB(fn) cmocka_unit_test_setup_teardown(fn, setup_big, teardown)
#define TP(fn) cmocka_unit_test_setup_teardown(fn, setup_plain, teardown)

/* Rate limits set on a running device: an ops bucket of 2 (refilled in
 * 1 s) lets two of four requests through at once, the third goes when
 * the timer fires about half a second later, and lifting the limit
 * lets the last one through at once. */
static void test_rate_limit(void **state)
{
	struct ctx *c = *state;
	struct virtio_dev *d = c->f.d;
	struct rl_config rl = { .ops = { 2, 0, 1000 } };
	uint64_t data = fake_alloc(&c->f, 4 * 512), st[4], t0;
	int tfd = d->watch_fds[d->nr_watch_fds - 1];
	struct pollfd p = { tfd, POLLIN, 0 };
	uint16_t head[4];
	uint32_t id, len;

	blk_set_limits(d, &rl);
	for (int i = 0; i < 4; i++) {
		st[i] = make_status(c);
		head[i] = add_req(c, VIRTIO_BLK_T_IN, (uint64_t)i,
				  data + 512 * (uint64_t)i, 512, true, st[i]);
	}
	t0 = now_ns();
	kick(&c->f);
	expect_used(c, head[0], 513);
	expect_used(c, head[1], 513);
	assert_false(fake_get_used(&c->f, 0, &id, &len));
	assert_int_equal(status_at(c, st[2]), 0xee);
	assert_int_equal(blk_throttled(d), 1);
	/* Another kick changes nothing: the budget is spent. */
	kick(&c->f);
	assert_false(fake_get_used(&c->f, 0, &id, &len));
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_true(now_ns() - t0 >= 400000000ull);
	pthread_mutex_lock(&d->lock);
	d->ops->fd_ready(d, tfd);
	pthread_mutex_unlock(&d->lock);
	assert_int_equal(blk_test_settle(d, 5000000000ull), 0);
	expect_used(c, head[2], 513);
	assert_false(fake_get_used(&c->f, 0, &id, &len));
	/* No limit: the last request goes at once. */
	rl = (struct rl_config){ 0 };
	blk_set_limits(d, &rl);
	assert_int_equal(blk_test_settle(d, 5000000000ull), 0);
	expect_used(c, head[3], 513);
	for (int i = 0; i < 4; i++)
		assert_int_equal(status_at(c, st[i]), VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_ptr(&c->f, data, 2048), c->orig, 2048);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_config),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup_rw,
						teardown),
		cmocka_unit_test_setup_teardown(test_config_ro, setup_ro,
						teardown),
		T(test_read),
		T(test_read_scattered),
		T(test_write_flush),
		T(test_write_indirect),
		T(test_direct_then_indirect),
		T(test_indirect_unaligned_table),
		T(test_get_id),
		T(test_get_id_configured),
		T(test_discard_write_zeroes),
		cmocka_unit_test_setup_teardown(test_write_through_noflush,
						setup_noflush, teardown),
		T(test_writeback_with_flush),
		cmocka_unit_test_setup_teardown(test_readonly, setup_ro,
						teardown),
		T(test_request_errors),
		T(test_zero_length_descs),
		T(test_event_idx),
		TP(test_no_interrupt_flag),
		T(test_lock_conflict),
		T(test_lock_released_while_waiting),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_open_host_error),
		cmocka_unit_test(test_odd_size),
		cmocka_unit_test(test_direct),
		T(test_bad_head_index),
		T(test_bad_next_index),
		T(test_addr_outside_ram),
		T(test_addr_far_outside),
		T(test_addr_len_overflow),
		T(test_desc_loop),
		T(test_chain_longer_than_queue),
		T(test_write_before_read),
		T(test_no_status_byte),
		T(test_only_zero_length_writable),
		T(test_indirect_in_indirect),
		T(test_indirect_bad_len),
		T(test_indirect_with_next),
		T(test_indirect_loop),
		T(test_indirect_too_large),
		TP(test_indirect_not_negotiated),
		T(test_indirect_outside_ram),
		T(test_huge_len),
		T(test_huge_total),
		T(test_avail_idx_jump),
		T(test_good_then_bad),
		TB(test_inflight_complete_once),
		TB(test_inflight_reset),
		TB(test_inflight_queue_disable),
		TB(test_inflight_queue_disable_op),
		TB(test_inflight_teardown),
		TB(test_inflight_quiesce),
		TB(test_inflight_flush_order),
		cmocka_unit_test(test_uring_refused_fallback),
	};

	int failed;

	engine = BLK_ENGINE_SYNC;
	failed = cmocka_run_group_tests_name("engine=sync", tests, NULL, NULL);
	engine = BLK_ENGINE_URING;
	failed +=
		cmocka_run_group_tests_name("engine=uring", tests, NULL, NULL);
	return failed;
}
