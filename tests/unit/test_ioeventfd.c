// SPDX-License-Identifier: MIT
/* The ioeventfd-lane registry: KVM_IOEVENTFD's argument checks, collision
 * and deassign rules, GenieZone's range rule, write matching, the host
 * mirror, and lookups among many lanes. Every rule has its own test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bus/ioeventfd.h"
#include "util/time.h"

#define DM IOEVR_F_DATAMATCH
#define PIO IOEVR_F_PIO
#define NR_EFD 4

struct host_mock {
	int assign_calls, deassign_calls;
	int assign_ret, deassign_ret;
	uint64_t addr, datamatch;
	uint32_t len, flags;
	int fd;
};

struct fix {
	struct ioeventfd_registry r;
	struct host_mock h;
	int efd[NR_EFD];
};

static int mock_assign(void *opaque, uint64_t addr, uint32_t len,
		       uint32_t flags, uint64_t datamatch, int fd)
{
	struct host_mock *h = opaque;

	h->assign_calls++;
	h->addr = addr;
	h->len = len;
	h->flags = flags;
	h->datamatch = datamatch;
	h->fd = fd;
	return h->assign_ret;
}

static int mock_deassign(void *opaque, uint64_t addr, uint32_t len,
			 uint32_t flags, uint64_t datamatch, int fd)
{
	struct host_mock *h = opaque;

	h->deassign_calls++;
	h->addr = addr;
	h->len = len;
	h->flags = flags;
	h->datamatch = datamatch;
	h->fd = fd;
	return h->deassign_ret;
}

static struct fix *fix_new(bool with_host)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct ioevr_host host = { mock_assign, mock_deassign, NULL };
	int i;

	assert_non_null(f);
	host.opaque = &f->h;
	assert_int_equal(ioevr_init(&f->r, with_host ? &host : NULL), 0);
	for (i = 0; i < NR_EFD; i++) {
		f->efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_true(f->efd[i] >= 0);
	}
	return f;
}

static int setup(void **state)
{
	*state = fix_new(false);
	return 0;
}

static int setup_host(void **state)
{
	*state = fix_new(true);
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	int i;

	ioevr_destroy(&f->r);
	for (i = 0; i < NR_EFD; i++)
		close(f->efd[i]);
	free(f);
	return 0;
}

/* The eventfd's counter (reading resets it); 0 when never signalled. */
static uint64_t drain(int efd)
{
	uint64_t v = 0;

	if (read(efd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
		assert_int_equal(errno, EAGAIN);
		return 0;
	}
	return v;
}

/* --- argument checks --- */

static void test_valid_lens(void **state)
{
	struct fix *f = *state;
	static const uint32_t lens[] = { 0, 1, 2, 4, 8 };
	int i;

	for (i = 0; i < 5; i++)
		assert_int_equal(ioevr_assign(&f->r, 0x1000 + 0x100 * i,
					      lens[i], 0, 0, f->efd[0]),
				 0);
	/* Datamatch with every nonzero length. */
	for (i = 1; i < 5; i++)
		assert_int_equal(ioevr_assign(&f->r, 0x2000 + 0x100 * i,
					      lens[i], DM, 7, f->efd[0]),
				 0);
	assert_int_equal(ioevr_count(&f->r), 9);
}

static void test_bad_len(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 3, 0, 0, f->efd[0]),
			 -EINVAL);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 5, DM, 1, f->efd[0]),
			 -EINVAL);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 16, 0, 0, f->efd[0]),
			 -EINVAL);
	assert_int_equal(ioevr_count(&f->r), 0);
}

static void test_unknown_flag(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 1u << 3, 0, f->efd[0]),
			 -EINVAL);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM | (1u << 31), 0,
				      f->efd[0]),
			 -EINVAL);
	assert_int_equal(ioevr_count(&f->r), 0);
}

static void test_overflow(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0xffffffffffffffffull, 8, 0, 0,
				      f->efd[0]),
			 -EINVAL);
	assert_int_equal(ioevr_assign(&f->r, 0xffffffffffffffffull, 1, 0, 0,
				      f->efd[0]),
			 -EINVAL);
	/* KVM's check is addr + len < addr: ending exactly at 2^64 wraps. */
	assert_int_equal(ioevr_assign(&f->r, 0xfffffffffffffff8ull, 8, 0, 0,
				      f->efd[0]),
			 -EINVAL);
	assert_int_equal(ioevr_assign(&f->r, 0xfffffffffffffff0ull, 8, 0, 0,
				      f->efd[0]),
			 0);
	/* len 0 never overflows. */
	assert_int_equal(ioevr_assign(&f->r, 0xffffffffffffffffull, 0, 0, 0,
				      f->efd[0]),
			 0);
	assert_int_equal(ioevr_count(&f->r), 2);
}

static void test_len0_datamatch(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 0, DM, 0, f->efd[0]),
			 -EINVAL);
	assert_int_equal(ioevr_count(&f->r), 0);
}

static void test_bad_fd(void **state)
{
	struct fix *f = *state;
	int p[2], closed = eventfd(0, 0);

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, -1), -EBADF);
	assert_true(closed >= 0);
	close(closed);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, closed), -EBADF);
	/* An open file that is not an eventfd: KVM says -EINVAL. */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, p[1]), -EINVAL);
	close(p[0]);
	close(p[1]);
	assert_int_equal(ioevr_count(&f->r), 0);
	/* Deassign checks the fd the same way. */
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, 0, 0, -1), -EBADF);
}

/* --- collisions --- */

static void test_wildcard_vs_datamatch(void **state)
{
	struct fix *f = *state;

	/* Wildcard first, then a datamatch lane of the same len. */
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 1, f->efd[1]),
			 -EEXIST);
	/* Datamatch first, then a wildcard. */
	assert_int_equal(ioevr_assign(&f->r, 0x2000, 4, DM, 1, f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x2000, 4, 0, 0, f->efd[1]),
			 -EEXIST);
	/* Two wildcards. */
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, f->efd[1]),
			 -EEXIST);
	assert_int_equal(ioevr_count(&f->r), 2);
}

static void test_equal_datamatch(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 5, f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 5, f->efd[1]),
			 -EEXIST);
	/* The very same lane twice. */
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 5, f->efd[0]),
			 -EEXIST);
	assert_int_equal(ioevr_count(&f->r), 1);
}

static void test_different_datamatch(void **state)
{
	struct fix *f = *state;
	int q;

	/* One QueueNotify register, one lane per queue. */
	for (q = 0; q < NR_EFD; q++)
		assert_int_equal(ioevr_assign(&f->r, 0xd0000050, 4, DM,
					      (uint64_t)q, f->efd[q]),
				 0);
	assert_int_equal(ioevr_count(&f->r), NR_EFD);
	for (q = NR_EFD - 1; q >= 0; q--)
		assert_true(ioevr_write(&f->r, false, 0xd0000050, 4, q));
	for (q = 0; q < NR_EFD; q++)
		assert_int_equal(drain(f->efd[q]), 1);
}

static void test_len0_vs_any(void **state)
{
	struct fix *f = *state;

	/* len 0 first: nothing else at that address. */
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 0, 0, 0, f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, f->efd[1]),
			 -EEXIST);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 1, DM, 3, f->efd[1]),
			 -EEXIST);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 0, 0, 0, f->efd[1]),
			 -EEXIST);
	/* len 0 second. */
	assert_int_equal(ioevr_assign(&f->r, 0x2000, 2, DM, 3, f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x2000, 0, 0, 0, f->efd[1]),
			 -EEXIST);
	assert_int_equal(ioevr_count(&f->r), 2);
}

static void test_same_addr_different_len(void **state)
{
	struct fix *f = *state;

	/* KVM allows it: no access can match both lanes. */
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 2, 0, 0, f->efd[1]), 0);
	assert_true(ioevr_write(&f->r, false, 0x1000, 2, 0));
	assert_int_equal(drain(f->efd[1]), 1);
	assert_int_equal(drain(f->efd[0]), 0);
	assert_true(ioevr_write(&f->r, false, 0x1000, 4, 0));
	assert_int_equal(drain(f->efd[0]), 1);
	assert_int_equal(drain(f->efd[1]), 0);
}

static void test_pio_mmio_separate(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x60, 4, 0, 0, f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x60, 4, PIO, 0, f->efd[1]), 0);
	/* GenieZone's range rule stays within one space too. */
	assert_int_equal(ioevr_assign(&f->r, 0x62, 1, PIO | DM, 0, f->efd[2]),
			 -EEXIST);
	assert_int_equal(ioevr_assign(&f->r, 0x64, 0, PIO, 0, f->efd[2]), 0);
	assert_true(ioevr_write(&f->r, true, 0x60, 4, 9));
	assert_int_equal(drain(f->efd[1]), 1);
	assert_int_equal(drain(f->efd[0]), 0);
	assert_true(ioevr_write(&f->r, false, 0x60, 4, 9));
	assert_int_equal(drain(f->efd[0]), 1);
	assert_int_equal(drain(f->efd[1]), 0);
}

static void test_inside_range(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 1, f->efd[0]), 0);
	/* New lane's address inside the existing [0x1000, 0x1004). */
	assert_int_equal(ioevr_assign(&f->r, 0x1002, 1, 0, 0, f->efd[1]),
			 -EEXIST);
	assert_int_equal(ioevr_assign(&f->r, 0x1003, 0, 0, 0, f->efd[1]),
			 -EEXIST);
	assert_int_equal(ioevr_assign(&f->r, 0x1001, 8, DM, 2, f->efd[1]),
			 -EEXIST);
	/* The other direction: the existing address inside the new range. */
	assert_int_equal(ioevr_assign(&f->r, 0x0ffe, 4, 0, 0, f->efd[1]),
			 -EEXIST);
	assert_int_equal(ioevr_assign(&f->r, 0x0ffa, 8, DM, 2, f->efd[1]),
			 -EEXIST);
	/* Adjacent on both sides is fine. */
	assert_int_equal(ioevr_assign(&f->r, 0x1004, 4, 0, 0, f->efd[1]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x0ffc, 4, 0, 0, f->efd[1]), 0);
	/* A len-0 lane occupies its own address only. */
	assert_int_equal(ioevr_assign(&f->r, 0x2000, 0, 0, 0, f->efd[2]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1ffe, 4, 0, 0, f->efd[3]),
			 -EEXIST);
	assert_int_equal(ioevr_assign(&f->r, 0x1ffc, 4, 0, 0, f->efd[3]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x2001, 4, 0, 0, f->efd[3]), 0);
	assert_int_equal(ioevr_count(&f->r), 6);
}

/* --- deassign --- */

static void test_deassign_mismatch(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 7, f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x2000, 2, PIO, 0, f->efd[0]), 0);
	/* Wrong fd, address, len, value. */
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, DM, 7, f->efd[1]),
			 -ENOENT);
	assert_int_equal(ioevr_deassign(&f->r, 0x1004, 4, DM, 7, f->efd[0]),
			 -ENOENT);
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 2, DM, 7, f->efd[0]),
			 -ENOENT);
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, DM, 8, f->efd[0]),
			 -ENOENT);
	/* Wildcard-ness, both ways. */
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, 0, 7, f->efd[0]),
			 -ENOENT);
	assert_int_equal(ioevr_deassign(&f->r, 0x2000, 2, PIO | DM, 0,
					f->efd[0]),
			 -ENOENT);
	/* Address space, both ways. */
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, PIO | DM, 7,
					f->efd[0]),
			 -ENOENT);
	assert_int_equal(ioevr_deassign(&f->r, 0x2000, 2, 0, 0, f->efd[0]),
			 -ENOENT);
	assert_int_equal(ioevr_count(&f->r), 2);
	/* A wildcard's datamatch argument is ignored, as in KVM. */
	assert_int_equal(ioevr_deassign(&f->r, 0x2000, 2, PIO, 99, f->efd[0]),
			 0);
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, DM, 7, f->efd[0]), 0);
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, DM, 7, f->efd[0]),
			 -ENOENT);
	assert_int_equal(ioevr_count(&f->r), 0);
}

static void test_deassign_flag(void **state)
{
	struct fix *f = *state;

	/* IOEVR_F_DEASSIGN turns ioevr_assign into ioevr_deassign. */
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 7, f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM | IOEVR_F_DEASSIGN,
				      7, f->efd[0]),
			 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM | IOEVR_F_DEASSIGN,
				      7, f->efd[0]),
			 -ENOENT);
	/* And is accepted (ignored) by ioevr_deassign. */
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 7, f->efd[0]), 0);
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, DM | IOEVR_F_DEASSIGN,
					7, f->efd[0]),
			 0);
	/* Argument checks come first. */
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 3, 0, 0, f->efd[0]),
			 -EINVAL);
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, 1u << 5, 0,
					f->efd[0]),
			 -EINVAL);
}

static void test_deassign_reassign(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 1, f->efd[1]),
			 -EEXIST);
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, 0, 0, f->efd[0]), 0);
	assert_false(ioevr_write(&f->r, false, 0x1000, 4, 1));
	assert_int_equal(drain(f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 1, f->efd[1]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 2, f->efd[0]), 0);
	assert_true(ioevr_write(&f->r, false, 0x1000, 4, 1));
	assert_int_equal(drain(f->efd[1]), 1);
}

/* --- writes --- */

static void test_write_match(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 0x42, f->efd[0]),
			 0);
	assert_true(ioevr_write(&f->r, false, 0x1000, 4, 0x42));
	assert_int_equal(drain(f->efd[0]), 1);
	assert_true(ioevr_write(&f->r, false, 0x1000, 4, 0x42));
	assert_true(ioevr_write(&f->r, false, 0x1000, 4, 0x42));
	assert_int_equal(drain(f->efd[0]), 2);
	assert_int_equal(drain(f->efd[0]), 0);
}

static void test_write_wrong_value(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 0x42, f->efd[0]),
			 0);
	assert_false(ioevr_write(&f->r, false, 0x1000, 4, 0x43));
	assert_false(ioevr_write(&f->r, false, 0x1000, 4, 0x4200));
	assert_int_equal(drain(f->efd[0]), 0);
}

static void test_write_wrong_size(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 0x42, f->efd[0]),
			 0);
	assert_int_equal(ioevr_assign(&f->r, 0x2000, 2, 0, 0, f->efd[1]), 0);
	assert_false(ioevr_write(&f->r, false, 0x1000, 2, 0x42));
	assert_false(ioevr_write(&f->r, false, 0x1000, 8, 0x42));
	assert_false(ioevr_write(&f->r, false, 0x2000, 1, 0));
	assert_false(ioevr_write(&f->r, false, 0x2000, 4, 0));
	assert_int_equal(drain(f->efd[0]), 0);
	assert_int_equal(drain(f->efd[1]), 0);
}

static void test_write_other_address(void **state)
{
	struct fix *f = *state;

	/* The address must be exact: inside the lane's bytes is a miss. */
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, f->efd[0]), 0);
	assert_false(ioevr_write(&f->r, false, 0x1002, 2, 0));
	assert_false(ioevr_write(&f->r, false, 0x0fff, 4, 0));
	assert_false(ioevr_write(&f->r, true, 0x1000, 4, 0));
	assert_int_equal(drain(f->efd[0]), 0);
}

static void test_write_wildcard(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, f->efd[0]), 0);
	assert_true(ioevr_write(&f->r, false, 0x1000, 4, 0));
	assert_true(ioevr_write(&f->r, false, 0x1000, 4, 0xdeadbeef));
	assert_int_equal(drain(f->efd[0]), 2);
}

static void test_write_len0_any_size(void **state)
{
	struct fix *f = *state;
	uint32_t len;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 0, 0, 0, f->efd[0]), 0);
	for (len = 1; len <= 8; len++)
		assert_true(ioevr_write(&f->r, false, 0x1000, len, len));
	assert_int_equal(drain(f->efd[0]), 8);
	/* Not an access: no match. */
	assert_false(ioevr_write(&f->r, false, 0x1000, 0, 0));
	assert_false(ioevr_write(&f->r, false, 0x1000, 9, 0));
	assert_int_equal(drain(f->efd[0]), 0);
}

static void test_write_truncation(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 1, DM, 0x12, f->efd[0]),
			 0);
	assert_int_equal(ioevr_assign(&f->r, 0x2000, 2, DM, 0x1234, f->efd[1]),
			 0);
	assert_int_equal(
		ioevr_assign(&f->r, 0x3000, 4, DM, 0x89abcdef, f->efd[2]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x4000, 8, DM,
				      0xffffffff00000001ull, f->efd[3]),
			 0);
	/* Bits above the access size are ignored. */
	assert_true(ioevr_write(&f->r, false, 0x1000, 1, 0xab12));
	assert_true(ioevr_write(&f->r, false, 0x2000, 2, 0xffff1234));
	assert_true(
		ioevr_write(&f->r, false, 0x3000, 4, 0x1234567889abcdefull));
	assert_true(
		ioevr_write(&f->r, false, 0x4000, 8, 0xffffffff00000001ull));
	assert_false(ioevr_write(&f->r, false, 0x4000, 8, 1));
	assert_int_equal(drain(f->efd[0]), 1);
	assert_int_equal(drain(f->efd[1]), 1);
	assert_int_equal(drain(f->efd[2]), 1);
	assert_int_equal(drain(f->efd[3]), 1);
}

static void test_datamatch_wider_than_len(void **state)
{
	struct fix *f = *state;
	uint64_t v;

	/* As in KVM, the lane's value is not truncated: 0x1ff can never be
	 * written in one byte, so the lane never fires. */
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 1, DM, 0x1ff, f->efd[0]),
			 0);
	for (v = 0; v < 0x200; v++)
		assert_false(ioevr_write(&f->r, false, 0x1000, 1, v));
	assert_int_equal(drain(f->efd[0]), 0);
	/* It still collides only with an equal value. */
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 1, DM, 0xff, f->efd[1]),
			 0);
	assert_true(ioevr_write(&f->r, false, 0x1000, 1, 0x1ff));
	assert_int_equal(drain(f->efd[1]), 1);
}

/* --- host mirror --- */

static void test_host_mirror(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0xd0000050, 4, DM, 3, f->efd[0]),
			 0);
	assert_int_equal(f->h.assign_calls, 1);
	assert_int_equal(f->h.addr, 0xd0000050);
	assert_int_equal(f->h.len, 4);
	assert_int_equal(f->h.flags, DM);
	assert_int_equal(f->h.datamatch, 3);
	assert_int_equal(f->h.fd, f->efd[0]);
	assert_true(ioevr_in_kernel(&f->r, 0xd0000050, 4, DM, 3, f->efd[0]));
	assert_false(ioevr_in_kernel(&f->r, 0xd0000050, 4, DM, 4, f->efd[0]));
	/* Rejected lanes never reach the host. */
	assert_int_equal(ioevr_assign(&f->r, 0xd0000050, 4, DM, 3, f->efd[1]),
			 -EEXIST);
	assert_int_equal(ioevr_assign(&f->r, 0xd0000050, 3, DM, 3, f->efd[1]),
			 -EINVAL);
	assert_int_equal(f->h.assign_calls, 1);
	/* The exit path leaves an in-kernel lane to the bus (the write
	 * exited before KVM had the lane). */
	assert_false(ioevr_write(&f->r, false, 0xd0000050, 4, 3));
	assert_int_equal(drain(f->efd[0]), 0);
	/* Deassign goes to the host, without the DEASSIGN bit. */
	assert_int_equal(ioevr_deassign(&f->r, 0xd0000050, 4,
					DM | IOEVR_F_DEASSIGN, 3, f->efd[0]),
			 0);
	assert_int_equal(f->h.deassign_calls, 1);
	assert_int_equal(f->h.flags, DM);
	assert_int_equal(f->h.datamatch, 3);
	assert_false(ioevr_in_kernel(&f->r, 0xd0000050, 4, DM, 3, f->efd[0]));
	/* A PIO wildcard lane: flags carry PIO only. */
	assert_int_equal(ioevr_assign(&f->r, 0x3f8, 1, PIO, 0, f->efd[1]), 0);
	assert_int_equal(f->h.flags, PIO);
	assert_true(ioevr_in_kernel(&f->r, 0x3f8, 1, PIO, 0, f->efd[1]));
}

static void test_host_refuses(void **state)
{
	struct fix *f = *state;

	f->h.assign_ret = -ENOSYS;
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 1, f->efd[0]), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 2, f->efd[1]), 0);
	assert_int_equal(f->h.assign_calls, 2);
	assert_false(ioevr_in_kernel(&f->r, 0x1000, 4, DM, 1, f->efd[0]));
	/* Served on the exit path. */
	assert_true(ioevr_write(&f->r, false, 0x1000, 4, 2));
	assert_int_equal(drain(f->efd[1]), 1);
	assert_int_equal(drain(f->efd[0]), 0);
	/* Still subject to collisions. */
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, f->efd[2]),
			 -EEXIST);
	/* Deassign does not call the host for a userspace lane. */
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, DM, 1, f->efd[0]), 0);
	assert_int_equal(f->h.deassign_calls, 0);
	/* Host accepts again: the next lane is in the kernel. */
	f->h.assign_ret = 0;
	assert_int_equal(ioevr_assign(&f->r, 0x2000, 4, 0, 0, f->efd[2]), 0);
	assert_true(ioevr_in_kernel(&f->r, 0x2000, 4, 0, 0, f->efd[2]));
	assert_false(ioevr_in_kernel(&f->r, 0x1000, 4, DM, 2, f->efd[1]));
}

/* exit_lanes: the exit path's lock-free "nothing for me" follows the
 * lanes the host refused, through assign and deassign of both kinds. */
static void test_exit_lanes_count(void **state)
{
	struct fix *f = *state;

	assert_int_equal(atomic_load(&f->r.exit_lanes), 0);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, f->efd[0]), 0);
	assert_int_equal(atomic_load(&f->r.exit_lanes), 0);
	f->h.assign_ret = -ENOSPC;
	assert_int_equal(ioevr_assign(&f->r, 0x2000, 4, 0, 0, f->efd[1]), 0);
	assert_int_equal(atomic_load(&f->r.exit_lanes), 1);
	/* The refused lane is served, the in-kernel one is not. */
	assert_true(ioevr_write(&f->r, false, 0x2000, 4, 9));
	assert_int_equal(drain(f->efd[1]), 1);
	assert_false(ioevr_write(&f->r, false, 0x1000, 4, 9));
	assert_int_equal(drain(f->efd[0]), 0);
	/* A lane the registry refuses (a collision) is never counted. */
	assert_int_equal(ioevr_assign(&f->r, 0x2000, 4, 0, 0, f->efd[2]),
			 -EEXIST);
	assert_int_equal(atomic_load(&f->r.exit_lanes), 1);
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, 0, 0, f->efd[0]), 0);
	assert_int_equal(atomic_load(&f->r.exit_lanes), 1);
	assert_int_equal(ioevr_deassign(&f->r, 0x2000, 4, 0, 0, f->efd[1]), 0);
	assert_int_equal(atomic_load(&f->r.exit_lanes), 0);
	assert_false(ioevr_write(&f->r, false, 0x2000, 4, 9));
	assert_int_equal(drain(f->efd[1]), 0);
	/* A host deassign that fails keeps an in-kernel lane uncounted. */
	f->h.assign_ret = 0;
	assert_int_equal(ioevr_assign(&f->r, 0x3000, 4, 0, 0, f->efd[3]), 0);
	f->h.deassign_ret = -EIO;
	assert_int_equal(ioevr_deassign(&f->r, 0x3000, 4, 0, 0, f->efd[3]),
			 -EIO);
	assert_int_equal(atomic_load(&f->r.exit_lanes), 0);
	f->h.deassign_ret = 0;
	assert_int_equal(ioevr_deassign(&f->r, 0x3000, 4, 0, 0, f->efd[3]), 0);
	assert_int_equal(atomic_load(&f->r.exit_lanes), 0);
}

static void test_host_deassign_fails(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, 0, 0, f->efd[0]), 0);
	f->h.deassign_ret = -EIO;
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, 0, 0, f->efd[0]),
			 -EIO);
	/* The kernel still has it, so the registry keeps it. */
	assert_true(ioevr_in_kernel(&f->r, 0x1000, 4, 0, 0, f->efd[0]));
	assert_int_equal(ioevr_count(&f->r), 1);
	f->h.deassign_ret = 0;
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, 0, 0, f->efd[0]), 0);
	assert_int_equal(f->h.deassign_calls, 2);
	assert_int_equal(ioevr_count(&f->r), 0);
}

/* --- many lanes --- */

#define MANY 1000
#define QUEUES 64

static void test_many_lanes(void **state)
{
	struct fix *f = *state;
	uint64_t want[NR_EFD] = { 0 };
	int i, k;

	/* Spread lanes, assigned in a scrambled order (7919 is prime), plus
	 * QUEUES datamatch lanes on one register, on both spaces. */
	for (k = 0; k < MANY; k++) {
		i = (k * 7919) % MANY;
		assert_int_equal(ioevr_assign(&f->r, 0x100000 + 8ull * i, 4, DM,
					      (uint64_t)i, f->efd[i % NR_EFD]),
				 0);
		assert_int_equal(ioevr_assign(&f->r, 0x100000 + 8ull * i,
					      i % 2 ? 2 : 0, PIO, 0,
					      f->efd[i % NR_EFD]),
				 0);
	}
	for (k = QUEUES - 1; k >= 0; k--)
		assert_int_equal(ioevr_assign(&f->r, 0x50, 4, DM, (uint64_t)k,
					      f->efd[k % NR_EFD]),
				 0);
	assert_int_equal(ioevr_count(&f->r), 2 * MANY + QUEUES);
	/* A duplicate anywhere is still caught. */
	assert_int_equal(ioevr_assign(&f->r, 0x100000 + 8ull * 517, 4, DM, 517,
				      f->efd[0]),
			 -EEXIST);
	assert_int_equal(ioevr_assign(&f->r, 0x100000 + 8ull * 517 + 2, 1, 0, 0,
				      f->efd[0]),
			 -EEXIST);

	for (i = 0; i < MANY; i++) {
		uint64_t a = 0x100000 + 8ull * i;

		assert_true(ioevr_write(&f->r, false, a, 4, i));
		assert_false(ioevr_write(&f->r, false, a, 4, i + 1));
		assert_false(ioevr_write(&f->r, false, a + 4, 4, i));
		assert_true(ioevr_write(&f->r, true, a, 2, 0));
		assert_int_equal(ioevr_write(&f->r, true, a, 1, 0), i % 2 == 0);
		want[i % NR_EFD] += i % 2 ? 2 : 3;
	}
	for (k = 0; k < QUEUES; k++) {
		assert_true(ioevr_write(&f->r, false, 0x50, 4, k));
		want[k % NR_EFD]++;
	}
	assert_false(ioevr_write(&f->r, false, 0x50, 4, QUEUES));
	for (k = 0; k < NR_EFD; k++)
		assert_int_equal(drain(f->efd[k]), want[k]);

	/* Remove the even MMIO lanes; the odd ones still match. */
	for (i = 0; i < MANY; i += 2)
		assert_int_equal(ioevr_deassign(&f->r, 0x100000 + 8ull * i, 4,
						DM, (uint64_t)i,
						f->efd[i % NR_EFD]),
				 0);
	for (i = 0; i < MANY; i++)
		assert_int_equal(ioevr_write(&f->r, false, 0x100000 + 8ull * i,
					     4, i),
				 i % 2 == 1);
	assert_int_equal(ioevr_count(&f->r), 2 * MANY + QUEUES - MANY / 2);
}

/* --- threads: lanes change while a vCPU thread writes --- */

struct writer {
	struct ioeventfd_registry *r;
	atomic_bool stop;
	long hits;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	while (!atomic_load(&w->stop))
		w->hits += ioevr_write(w->r, false, 0x1000, 4, 1);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fix *f = *state;
	struct writer w = { .r = &f->r };
	pthread_t t;
	int i;

	assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
	for (i = 0; i < 2000; i++) {
		assert_int_equal(
			ioevr_assign(&f->r, 0x1000, 4, DM, 1, f->efd[0]), 0);
		assert_int_equal(ioevr_assign(&f->r, 0x1000 + 8 * (i % 16), 4,
					      DM, 2, f->efd[1]),
				 0);
		assert_int_equal(ioevr_deassign(&f->r, 0x1000 + 8 * (i % 16), 4,
						DM, 2, f->efd[1]),
				 0);
		assert_int_equal(
			ioevr_deassign(&f->r, 0x1000, 4, DM, 1, f->efd[0]), 0);
	}
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);
	assert_int_equal(drain(f->efd[0]), (uint64_t)w.hits);
	assert_int_equal(drain(f->efd[1]), 0);
	assert_int_equal(ioevr_count(&f->r), 0);
}

/* --- a lane whose eventfd a server made blocking and full --- */

struct blocked_write {
	struct ioeventfd_registry *r;
	bool hit;
	uint64_t ms;
	atomic_bool done;
};

static void *blocked_writer(void *arg)
{
	struct blocked_write *b = arg;
	uint64_t t0 = now_ns();

	b->hit = ioevr_write(b->r, false, 0x1000, 4, 1);
	b->ms = (now_ns() - t0) / 1000000;
	atomic_store(&b->done, true);
	return NULL;
}

struct other_lane {
	struct fix *f;
	bool ok;
	atomic_bool done;
};

static void *other_lane_main(void *arg)
{
	struct other_lane *o = arg;

	o->ok = ioevr_assign(&o->f->r, 0x2000, 4, DM, 1, o->f->efd[1]) == 0 &&
		ioevr_write(&o->f->r, false, 0x2000, 4, 1);
	atomic_store(&o->done, true);
	return NULL;
}

static void test_write_to_blocking_full_eventfd(void **state)
{
	struct fix *f = *state;
	struct blocked_write b = { .r = &f->r };
	struct other_lane o = { .f = f };
	uint64_t full = 0xfffffffffffffffeull, t0, ms;
	pthread_t t, t2;
	int i;

	/* The server shares the fd's open file description: it can clear
	 * O_NONBLOCK and fill the counter, so a plain write(2) blocks. */
	assert_int_equal(fcntl(f->efd[0], F_SETFL, 0), 0);
	assert_int_equal(write(f->efd[0], &full, 8), 8);
	assert_int_equal(ioevr_assign(&f->r, 0x1000, 4, DM, 1, f->efd[0]), 0);
	assert_int_equal(pthread_create(&t, NULL, blocked_writer, &b), 0);
	usleep(20000);
	/* Every PIO/MMIO exit takes the registry lock: another lane must
	 * stay usable while that write is stuck. */
	t0 = now_ns();
	assert_int_equal(pthread_create(&t2, NULL, other_lane_main, &o), 0);
	for (i = 0; i < 2000 && !atomic_load(&o.done); i++)
		usleep(1000);
	ms = (now_ns() - t0) / 1000000;
	print_message("other lane took %llu ms\n", (unsigned long long)ms);
	assert_true(atomic_load(&o.done)); /* else: stuck behind the lock */
	pthread_join(t2, NULL);
	assert_true(o.ok);
	assert_true(ms < 50);
	for (i = 0; i < 200 && !atomic_load(&b.done); i++)
		usleep(10000);
	assert_true(atomic_load(&b.done));
	pthread_join(t, NULL);
	print_message("the full lane's write returned after %llu ms\n",
		      (unsigned long long)b.ms);
	/* Consumed (the guest's write went to its lane), not delivered. */
	assert_true(b.hit);
	assert_true(b.ms < 500);
	assert_int_equal(drain(f->efd[1]), 1);
	assert_int_equal(ioevr_deassign(&f->r, 0x1000, 4, DM, 1, f->efd[0]), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TH(fn) cmocka_unit_test_setup_teardown(fn, setup_host, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_valid_lens),
		T(test_bad_len),
		T(test_unknown_flag),
		T(test_overflow),
		T(test_len0_datamatch),
		T(test_bad_fd),
		T(test_wildcard_vs_datamatch),
		T(test_equal_datamatch),
		T(test_different_datamatch),
		T(test_len0_vs_any),
		T(test_same_addr_different_len),
		T(test_pio_mmio_separate),
		T(test_inside_range),
		T(test_deassign_mismatch),
		T(test_deassign_flag),
		T(test_deassign_reassign),
		T(test_write_match),
		T(test_write_wrong_value),
		T(test_write_wrong_size),
		T(test_write_other_address),
		T(test_write_wildcard),
		T(test_write_len0_any_size),
		T(test_write_truncation),
		T(test_datamatch_wider_than_len),
		TH(test_host_mirror),
		TH(test_host_refuses),
		TH(test_exit_lanes_count),
		TH(test_host_deassign_fails),
		T(test_many_lanes),
		T(test_concurrent),
		T(test_write_to_blocking_full_eventfd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
