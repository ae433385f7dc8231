// SPDX-License-Identifier: MIT
/* guest_mem_ptr() bounds: region ends, crossings, the MMIO hole and
 * gpa + len overflow. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "mem/guest_mem.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

static void test_small(void **state)
{
	struct guest_mem m;
	struct err e;
	uint64_t sz = 16 * MIB;
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[8];

	(void)state;
	assert_int_equal(guest_mem_init(&m, sz, &e), 0);
	assert_int_equal(m.nr_regions, 1);
	assert_int_equal(guest_mem_low_end(&m), sz);

	assert_ptr_equal(guest_mem_ptr(&m, 0, sz), m.host);
	assert_ptr_equal(guest_mem_ptr(&m, sz - 1, 1), m.host + sz - 1);
	/* len 0 at the very end is allowed, 1 byte is not. */
	assert_ptr_equal(guest_mem_ptr(&m, sz, 0), m.host + sz);
	assert_null(guest_mem_ptr(&m, sz, 1));
	assert_null(guest_mem_ptr(&m, sz + 1, 0));
	/* Crossing the end. */
	assert_null(guest_mem_ptr(&m, sz - 4, 8));
	assert_null(guest_mem_ptr(&m, 0, sz + 1));
	/* gpa + len overflows 64 bits. */
	assert_null(guest_mem_ptr(&m, 16, UINT64_MAX));
	assert_null(guest_mem_ptr(&m, UINT64_MAX, 2));
	assert_null(guest_mem_ptr(&m, UINT64_MAX - 3, 8));

	assert_int_equal(guest_mem_write(&m, sz - 8, buf, 8), 0);
	assert_int_equal(guest_mem_read(&m, sz - 8, out, 8), 0);
	assert_memory_equal(buf, out, 8);
	assert_int_equal(guest_mem_write(&m, sz - 7, buf, 8), -EFAULT);
	assert_int_equal(guest_mem_read(&m, sz - 7, out, 8), -EFAULT);
	guest_mem_destroy(&m);
}

static void test_bad_sizes(void **state)
{
	struct guest_mem m;
	struct err e;

	(void)state;
	assert_int_equal(guest_mem_init(&m, 0, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "multiple of 4 KiB"));
	assert_int_equal(guest_mem_init(&m, 4097, &e), -EINVAL);
	assert_int_equal(guest_mem_init(&m, 1ULL << 50, &e), -EINVAL);
}

static void test_two_regions(void **state)
{
	struct guest_mem m;
	struct err e;
	uint8_t *lo, *hi;

	(void)state;
	if (guest_mem_init(&m, 3 * GIB + 256 * MIB, &e) < 0)
		skip();
	assert_int_equal(m.nr_regions, 2);
	assert_int_equal(guest_mem_low_end(&m), GUEST_MMIO_HOLE_START);
	lo = guest_mem_ptr(&m, GUEST_MMIO_HOLE_START - 4096, 4096);
	assert_ptr_equal(lo, m.host + GUEST_MMIO_HOLE_START - 4096);
	/* From low RAM into the hole. */
	assert_null(guest_mem_ptr(&m, GUEST_MMIO_HOLE_START - 4096, 8192));
	/* Inside the hole. */
	assert_null(guest_mem_ptr(&m, GUEST_MMIO_HOLE_START, 1));
	assert_null(guest_mem_ptr(&m, 0xfec00000, 4));
	assert_null(guest_mem_ptr(&m, GUEST_MMIO_HOLE_END - 1, 2));
	/* High region: at 4 GiB, backed right after the low region. */
	hi = guest_mem_ptr(&m, GUEST_MMIO_HOLE_END, 256 * MIB);
	assert_ptr_equal(hi, m.host + GUEST_MMIO_HOLE_START);
	assert_null(guest_mem_ptr(&m, GUEST_MMIO_HOLE_END, 256 * MIB + 1));
	assert_null(guest_mem_ptr(&m, GUEST_MMIO_HOLE_END + 256 * MIB, 1));
	assert_null(
		guest_mem_ptr(&m, GUEST_MMIO_HOLE_END + 4096, UINT64_MAX - 8));
	hi[0] = 0x5a;
	assert_int_equal(*(uint8_t *)guest_mem_ptr(&m, 4 * GIB, 1), 0x5a);
	guest_mem_destroy(&m);
}

/* A device process gets the memfd: it must not be able to resize it
 * (a shrink would SIGBUS wisp), while the RAM stays writable for DMA. */
static void test_memfd_sealed(void **state)
{
	struct guest_mem m;
	uint64_t v = 0x55aa, back = 0;
	int seals;

	assert_int_equal(guest_mem_init(&m, 1 << 20, NULL), 0);
	seals = fcntl(m.memfd, F_GET_SEALS);
	assert_true(seals >= 0);
	assert_int_equal(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
			 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	assert_int_equal(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE), 0);
	assert_int_equal(ftruncate(m.memfd, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(m.memfd, 2 << 20), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fcntl(m.memfd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	assert_int_equal(guest_mem_write(&m, (1 << 20) - 8, &v, 8), 0);
	assert_int_equal(guest_mem_read(&m, (1 << 20) - 8, &back, 8), 0);
	assert_true(back == v);
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_two_regions),
		cmocka_unit_test(test_memfd_sealed),
	};

	return cmocka_run_group_tests_name("guest_mem", tests, NULL, NULL);
}
