// SPDX-License-Identifier: MIT
/* The watchdog's stall detector: a report once per stall, only after the
 * limit, re-armed by movement and by a pause. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vmm/watchdog.h"

#define S 1000000000ull

static void test_reports_once_after_limit(void **state)
{
	struct stall s = { 0 };

	assert_false(stall_check(&s, 7, 0, 2 * S));
	assert_false(stall_check(&s, 7, S, 2 * S));
	assert_false(stall_check(&s, 7, 2 * S - 1, 2 * S));
	assert_true(stall_check(&s, 7, 2 * S, 2 * S));
	/* Once per stall, however long it lasts. */
	assert_false(stall_check(&s, 7, 3 * S, 2 * S));
	assert_false(stall_check(&s, 7, 100 * S, 2 * S));
}

static void test_movement_rearms(void **state)
{
	struct stall s = { 0 };

	assert_false(stall_check(&s, 1, 0, S));
	assert_true(stall_check(&s, 1, S, S));
	/* It moved: the clock starts again from this sample. */
	assert_false(stall_check(&s, 2, 5 * S, S));
	assert_false(stall_check(&s, 2, 5 * S + S / 2, S));
	assert_true(stall_check(&s, 2, 6 * S, S));
	/* Steady movement never reports. */
	for (uint64_t t = 7; t < 20; t++)
		assert_false(stall_check(&s, 2 + t, t * S, S));
}

static void test_first_sample_never_reports(void **state)
{
	struct stall s = { 0 };

	/* A counter of 0 at time 0 is not "unchanged since the start". */
	assert_false(stall_check(&s, 0, 10 * S, S));
	assert_true(stall_check(&s, 0, 11 * S, S));
}

static void test_pause_restarts(void **state)
{
	struct stall s = { 0 };

	assert_false(stall_check(&s, 4, 0, 2 * S));
	assert_false(stall_check(&s, 4, S, 2 * S));
	/* Paused for a long time: no report for the paused stretch. */
	stall_reset(&s);
	assert_false(stall_check(&s, 4, 50 * S, 2 * S));
	assert_false(stall_check(&s, 4, 51 * S, 2 * S));
	assert_true(stall_check(&s, 4, 52 * S, 2 * S));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reports_once_after_limit),
		cmocka_unit_test(test_movement_rearms),
		cmocka_unit_test(test_first_sample_never_reports),
		cmocka_unit_test(test_pause_restarts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
