// SPDX-License-Identifier: MIT
/* The shared rate limiter (util/ratelimit.h): Firecracker's pair of
 * buckets takes a request from both or from neither, a refund undoes
 * exactly what was taken (burst first), and no limit means no wait. The
 * single-bucket arithmetic is tested in test_virtio_net.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/ratelimit.h"

#define MS 1000000ull

static void test_none(void **state)
{
	struct rate_limiter rl;

	(void)state;
	rl_init(&rl, NULL, 0);
	assert_false(rl_active(&rl));
	assert_int_equal(rl_consume(&rl, UINT64_MAX, UINT64_MAX, 0), 0);
}

/* bw 1000 bytes per 100 ms, ops 2 per second. */
static void test_both_or_neither(void **state)
{
	struct rl_config c = { { 1000, 0, 100 }, { 2, 0, 1000 } };
	struct rate_limiter rl;

	(void)state;
	rl_init(&rl, &c, 0);
	assert_true(rl_active(&rl));
	assert_int_equal(rl_consume(&rl, 600, 1, 0), 0);
	/* Bytes short: the op it would have used is given back. */
	assert_int_equal(rl_consume(&rl, 600, 1, 0), 20 * MS);
	assert_int_equal(tb_available(&rl.ops, 0), 1);
	assert_int_equal(rl_consume(&rl, 400, 1, 0), 0);
	/* Ops short: no bytes are taken. */
	assert_int_equal(tb_available(&rl.bw, 500 * MS), 1000);
	assert_int_equal(rl_consume(&rl, 10, 1, 0), 500 * MS);
	assert_int_equal(rl_consume(&rl, 10, 1, 500 * MS), 0);
	assert_int_equal(tb_available(&rl.bw, 500 * MS), 990);
}

/* The ops burst is spent first and restored exactly on a refund. */
static void test_refund_burst(void **state)
{
	struct rl_config c = { { 100, 0, 1000 }, { 1, 1, 1000 } };
	struct rate_limiter rl;

	(void)state;
	rl_init(&rl, &c, 0);
	assert_int_equal(rl_consume(&rl, 100, 1, 0), 0); /* burst op */
	assert_int_equal(rl.ops.burst_left, 0);
	assert_true(rl_consume(&rl, 100, 1, 0) > 0); /* no bytes left */
	assert_int_equal(tb_available(&rl.ops, 0), 1);
	assert_int_equal(rl_consume(&rl, 0, 1, 0), 0);
	assert_int_equal(tb_available(&rl.ops, 0), 0);
	/* A refund never makes the bucket more than full. */
	tb_refund(&rl.ops, 5);
	assert_int_equal(tb_available(&rl.ops, 0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_both_or_neither),
		cmocka_unit_test(test_refund_burst),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
