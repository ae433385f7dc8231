// SPDX-License-Identifier: MIT
/* mptable_write(): parses the tables back out of guest memory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "mem/guest_mem.h"

#define MIB (1ULL << 20)

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static void check_tables(struct guest_mem *m, int ncpus)
{
	const uint8_t *mpf = guest_mem_ptr(m, LAYOUT_MPTABLE, 1024);
	const uint8_t *mpc, *p;
	uint16_t len, count;
	int cpus = 0, buses = 0, ioapics = 0, ioints = 0, lints = 0;
	bool pin_used[24] = { false };

	assert_non_null(mpf);
	/* Floating pointer. */
	assert_memory_equal(mpf, "_MP_", 4);
	assert_int_equal(mpf[8], 1); /* length in 16-byte units */
	assert_int_equal(mpf[9], 4); /* spec 1.4 */
	assert_int_equal(sum(mpf, 16), 0);
	assert_int_equal(rd32(mpf + 4), LAYOUT_MPTABLE + 16);

	/* Configuration table header. */
	mpc = mpf + 16;
	assert_memory_equal(mpc, "PCMP", 4);
	len = rd16(mpc + 4);
	assert_int_equal(mpc[6], 4);
	assert_true(16 + len <= 1024);
	assert_int_equal(sum(mpc, len), 0);
	assert_memory_equal(mpc + 8, "WISP    ", 8);
	assert_memory_equal(mpc + 16, "WISPVM      ", 12);
	count = rd16(mpc + 34);
	assert_int_equal(rd32(mpc + 36), LAYOUT_LAPIC_ADDR);
	assert_int_equal(count, ncpus + 1 + 1 + 16 + 2);

	p = mpc + 44;
	for (int i = 0; i < count; i++) {
		assert_true(p < mpc + len);
		switch (p[0]) {
		case 0:
			assert_int_equal(p[1], cpus);
			assert_int_equal(p[2], 0x14);
			assert_int_equal(p[3], cpus == 0 ? 0x3 : 0x1);
			assert_int_equal(rd32(p + 4), 0x600);
			assert_int_equal(rd32(p + 8), 0x201);
			cpus++;
			p += 20;
			break;
		case 1:
			assert_int_equal(p[1], 0);
			assert_memory_equal(p + 2, "ISA   ", 6);
			buses++;
			p += 8;
			break;
		case 2:
			assert_int_equal(p[1], ncpus);
			assert_int_equal(p[2], 0x11);
			assert_int_equal(p[3], 1);
			assert_int_equal(rd32(p + 4), LAYOUT_IOAPIC_ADDR);
			ioapics++;
			p += 8;
			break;
		case 3:
			assert_int_equal(p[1], 0); /* INT */
			assert_int_equal(rd16(p + 2), 0);
			assert_int_equal(p[4], 0);
			assert_int_equal(p[6], ncpus);
			assert_true(p[5] < 16);
			assert_int_equal(p[7], p[5]);
			assert_false(pin_used[p[7]]);
			pin_used[p[7]] = true;
			ioints++;
			p += 8;
			break;
		case 4:
			assert_int_equal(p[6], 0xff);
			if (p[7] == 0)
				assert_int_equal(p[1], 3); /* ExtINT */
			else
				assert_int_equal(p[1], 1); /* NMI */
			lints++;
			p += 8;
			break;
		default:
			fail_msg("unknown MP entry type %u", p[0]);
		}
	}
	assert_ptr_equal(p, mpc + len);
	assert_int_equal(cpus, ncpus);
	assert_int_equal(buses, 1);
	assert_int_equal(ioapics, 1);
	assert_int_equal(ioints, 16);
	assert_int_equal(lints, 2);
}

static void test_mptable_counts(void **state)
{
	struct guest_mem m;
	struct err e;
	static const int n[] = { 1, 2, 4, 7, MPTABLE_MAX_CPUS };

	(void)state;
	assert_int_equal(guest_mem_init(&m, 16 * MIB, &e), 0);
	for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++) {
		memset(guest_mem_ptr(&m, LAYOUT_MPTABLE, 1024), 0xcc, 1024);
		assert_int_equal(mptable_write(&m, n[i]), 0);
		check_tables(&m, n[i]);
	}
	guest_mem_destroy(&m);
}

static void test_mptable_bad_ncpus(void **state)
{
	struct guest_mem m;
	struct err e;

	(void)state;
	assert_int_equal(guest_mem_init(&m, 16 * MIB, &e), 0);
	assert_int_equal(mptable_write(&m, 0), -EINVAL);
	assert_int_equal(mptable_write(&m, -1), -EINVAL);
	assert_int_equal(mptable_write(&m, MPTABLE_MAX_CPUS + 1), -EINVAL);
	guest_mem_destroy(&m);

	/* RAM ends before the table's area. */
	assert_int_equal(guest_mem_init(&m, 512 * 1024, &e), 0);
	assert_int_equal(mptable_write(&m, 1), -EFAULT);
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mptable_counts),
		cmocka_unit_test(test_mptable_bad_ncpus),
	};

	return cmocka_run_group_tests_name("mptable", tests, NULL, NULL);
}
