// SPDX-License-Identifier: MIT
/* e820_build(): the map for small, 3 GiB-boundary and 4 GiB+ guests. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "mem/guest_mem.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

static void check_entry(const struct e820_entry *x, uint64_t addr,
			uint64_t size, uint32_t type)
{
	assert_int_equal(x->addr, addr);
	assert_int_equal(x->size, size);
	assert_int_equal(x->type, type);
}

static void check_low(const struct e820_entry *map, uint64_t low_end)
{
	check_entry(&map[0], 0, LAYOUT_EBDA_START, E820_RAM);
	check_entry(&map[1], LAYOUT_EBDA_START,
		    LAYOUT_HIGH_MEMORY - LAYOUT_EBDA_START, E820_RESERVED);
	check_entry(&map[2], LAYOUT_HIGH_MEMORY, low_end - LAYOUT_HIGH_MEMORY,
		    E820_RAM);
}

static void test_small_guest(void **state)
{
	struct guest_mem m;
	struct err e;
	struct e820_entry map[E820_MAX_ENTRIES];

	(void)state;
	assert_int_equal(guest_mem_init(&m, 128 * MIB, &e), 0);
	assert_int_equal(e820_build(&m, map, E820_MAX_ENTRIES), 3);
	check_low(map, 128 * MIB);
	/* Not enough room in out[]. */
	assert_int_equal(e820_build(&m, map, 2), -ENOSPC);
	guest_mem_destroy(&m);

	/* Exactly the 2 MiB minimum, then below it. */
	assert_int_equal(guest_mem_init(&m, 2 * MIB, &e), 0);
	assert_int_equal(e820_build(&m, map, E820_MAX_ENTRIES), 3);
	check_low(map, 2 * MIB);
	guest_mem_destroy(&m);
	assert_int_equal(guest_mem_init(&m, 2 * MIB - 4096, &e), 0);
	assert_int_equal(e820_build(&m, map, E820_MAX_ENTRIES), -EINVAL);
	guest_mem_destroy(&m);
}

static void test_exactly_3g(void **state)
{
	struct guest_mem m;
	struct err e;
	struct e820_entry map[E820_MAX_ENTRIES];

	(void)state;
	if (guest_mem_init(&m, 3 * GIB, &e) < 0)
		skip();
	assert_int_equal(e820_build(&m, map, E820_MAX_ENTRIES), 3);
	check_low(map, GUEST_MMIO_HOLE_START);
	guest_mem_destroy(&m);
}

static void test_above_4g(void **state)
{
	struct guest_mem m;
	struct err e;
	struct e820_entry map[E820_MAX_ENTRIES];

	(void)state;
	if (guest_mem_init(&m, 3 * GIB + 512 * MIB, &e) < 0)
		skip();
	assert_int_equal(e820_build(&m, map, E820_MAX_ENTRIES), 4);
	check_low(map, GUEST_MMIO_HOLE_START);
	/* Nothing in [3 GiB, 4 GiB): the MMIO hole. */
	check_entry(&map[3], GUEST_MMIO_HOLE_END, 512 * MIB, E820_RAM);
	assert_true(map[2].addr + map[2].size <= GUEST_MMIO_HOLE_START);
	assert_int_equal(e820_build(&m, map, 3), -ENOSPC);
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_guest),
		cmocka_unit_test(test_exactly_3g),
		cmocka_unit_test(test_above_4g),
	};

	return cmocka_run_group_tests_name("e820", tests, NULL, NULL);
}
