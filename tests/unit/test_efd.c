// SPDX-License-Identifier: MIT
/* util/efd: signal, drain and wait stay bounded on an eventfd whose
 * other owner cleared O_NONBLOCK and emptied or filled the counter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/efd.h"
#include "util/time.h"

static uint64_t ms_since(uint64_t t0)
{
	return (now_ns() - t0) / 1000000;
}

static void test_nonblocking_roundtrip(void **state)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_int_equal(efd_drain(fd), 0);
	assert_int_equal(efd_signal(fd), 0);
	assert_int_equal(efd_signal(fd), 0);
	assert_int_equal(efd_signal_private(fd), 0);
	assert_int_equal(efd_drain(fd), 3);
	assert_int_equal(efd_drain(fd), 0);
	assert_int_equal(efd_signal(-1), 0);
	close(fd);
}

/* Blocking and empty: a plain read would wait forever. */
static void test_drain_blocking_empty(void **state)
{
	int fd = eventfd(0, EFD_CLOEXEC);
	uint64_t t0 = now_ns();

	assert_int_equal(efd_drain(fd), 0);
	assert_true(ms_since(t0) < 50);
	close(fd);
}

/* Blocking and full: a plain write would wait until someone reads. */
static void test_signal_blocking_full(void **state)
{
	uint64_t full = 0xfffffffffffffffeull, t0;
	int fd = eventfd(0, EFD_CLOEXEC);

	assert_int_equal(write(fd, &full, 8), 8);
	for (int i = 0; i < 3; i++) {
		t0 = now_ns();
		assert_int_equal(efd_signal(fd), -EAGAIN);
		assert_true(ms_since(t0) < EFD_BLOCK_BOUND_MS + 50);
	}
	/* Full and non-blocking: refused at once. */
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(efd_signal(fd), -EAGAIN);
	assert_true(efd_drain(fd) == INT64_MAX); /* saturated */
	assert_int_equal(efd_signal(fd), 0);
	close(fd);
}

static void test_wait_deadline(void **state)
{
	int fd = eventfd(0, EFD_CLOEXEC);
	uint64_t t0 = now_ns();

	assert_int_equal(efd_wait(fd, t0 + 100000000ull), 0);
	assert_true(ms_since(t0) >= 99 && ms_since(t0) < 300);
	assert_int_equal(efd_wait(fd, 0), 0); /* already passed: no wait */
	assert_int_equal(efd_signal(fd), 0);
	assert_int_equal(efd_wait(fd, now_ns() + 1000000000ull), 1);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nonblocking_roundtrip),
		cmocka_unit_test(test_drain_blocking_empty),
		cmocka_unit_test(test_signal_blocking_full),
		cmocka_unit_test(test_wait_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
