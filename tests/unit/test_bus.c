// SPDX-License-Identifier: MIT
/* The PIO/MMIO range maps: registration rules and dispatch. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"

static uint64_t last_off, last_val;
static int writes;

static void r(void *o, int cpu, uint64_t off, uint8_t *d, uint32_t len)
{
	uint64_t v = (uintptr_t)o + off;

	memcpy(d, &v, len);
}

static void w(void *o, int cpu, uint64_t off, const uint8_t *d, uint32_t len)
{
	last_off = off;
	last_val = 0;
	memcpy(&last_val, d, len);
	writes++;
}

static const struct bus_ops ops = { r, w };

static void test_overlaps_refused(void **state)
{
	struct bus b;

	bus_init(&b, "mmio");
	assert_int_equal(bus_register(&b, 0x1000, 0x100, &ops, NULL, "a"), 0);
	assert_int_equal(bus_register(&b, 0x3000, 0x100, &ops, NULL, "b"), 0);
	/* Same start, inside, straddling either end, covering. */
	assert_int_equal(bus_register(&b, 0x1000, 0x10, &ops, NULL, "x"),
			 -EEXIST);
	assert_int_equal(bus_register(&b, 0x1080, 0x10, &ops, NULL, "x"),
			 -EEXIST);
	assert_int_equal(bus_register(&b, 0x0f80, 0x100, &ops, NULL, "x"),
			 -EEXIST);
	assert_int_equal(bus_register(&b, 0x10ff, 0x2, &ops, NULL, "x"),
			 -EEXIST);
	assert_int_equal(bus_register(&b, 0x0, 0x10000, &ops, NULL, "x"),
			 -EEXIST);
	/* Adjacent on both sides is fine. */
	assert_int_equal(bus_register(&b, 0x0f00, 0x100, &ops, NULL, "c"), 0);
	assert_int_equal(bus_register(&b, 0x1100, 0x100, &ops, NULL, "d"), 0);
	/* Empty and wrapping ranges. */
	assert_int_equal(bus_register(&b, 0x5000, 0, &ops, NULL, "x"), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX - 1, 4, &ops, NULL, "x"),
			 -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX, 1, &ops, NULL, "e"), 0);
	assert_int_equal(b.nr, 5);
	for (int i = 1; i < b.nr; i++)
		assert_true(b.ranges[i - 1].base + b.ranges[i - 1].len <=
			    b.ranges[i].base);
	bus_destroy(&b);
}

static void test_dispatch(void **state)
{
	struct bus b;
	uint8_t d[8];
	uint32_t v;

	bus_init(&b, "pio");
	/* Many ranges, registered out of order: lookups must find each. */
	for (int i = 199; i >= 0; i--)
		assert_int_equal(
			bus_register(&b, (uint64_t)i * 0x20, 0x10, &ops,
				     (void *)(uintptr_t)(i << 16), "r"),
			0);
	for (int i = 0; i < 200; i++) {
		const struct bus_range *rg =
			bus_find(&b, (uint64_t)i * 0x20 + 7);

		assert_non_null(rg);
		assert_int_equal(rg->base, (uint64_t)i * 0x20);
		/* The gaps between ranges belong to nobody. */
		assert_null(bus_find(&b, (uint64_t)i * 0x20 + 0x10));
	}
	assert_true(bus_read(&b, 0, 5 * 0x20 + 4, d, 4));
	memcpy(&v, d, 4);
	assert_int_equal(v, (5 << 16) + 4);
	assert_true(
		bus_write(&b, 0, 7 * 0x20 + 2, (const uint8_t *)"\x2a\0", 2));
	assert_int_equal(last_off, 2);
	assert_int_equal(last_val, 42);
	/* Nobody there: all-ones, writes dropped. */
	memset(d, 0, sizeof(d));
	assert_false(bus_read(&b, 0, 0x10000, d, 4));
	memcpy(&v, d, 4);
	assert_int_equal(v, 0xffffffff);
	writes = 0;
	assert_false(bus_write(&b, 0, 0x10000, d, 4));
	assert_int_equal(writes, 0);
	bus_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlaps_refused),
		cmocka_unit_test(test_dispatch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
