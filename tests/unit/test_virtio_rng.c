// SPDX-License-Identifier: MIT
/* virtio-rng through a fake driver: buffers filled with random bytes,
 * the token-bucket rate limit (first burst, then resumption through the
 * timerfd), and chains the device must refuse. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>

#include "devices/rng/rng.h"
#include "fake_driver.h"

#define QSIZE 16

static struct fake_driver *setup(uint64_t rate)
{
	struct fake_driver *f = calloc(1, sizeof(*f));
	struct rng_config cfg = { .rate_bytes_per_sec = rate };
	struct virtio_dev *d;
	struct err e;

	assert_non_null(f);
	fake_init(f);
	assert_int_equal(rng_create(&cfg, &f->mem, &d, &e), 0);
	fake_attach(f, d, ~0ULL, QSIZE);
	return f;
}

static void done(struct fake_driver *f)
{
	fake_destroy(f);
	free(f);
}

static uint16_t add_buf(struct fake_driver *f, uint64_t gpa, uint32_t len)
{
	struct fake_buf b = { gpa, len, true };

	return fake_add_chain(f, 0, &b, 1);
}

static bool constant(const uint8_t *p, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (p[i] != p[0])
			return false;
	return true;
}

static void test_fill(void **state)
{
	struct fake_driver *f = setup(0);
	uint64_t a = fake_alloc(f, 64), b = fake_alloc(f, 128),
		 c1 = fake_alloc(f, 1000), c2 = fake_alloc(f, 24);
	struct fake_buf two[2] = { { c1, 1000, true }, { c2, 24, true } };
	uint16_t ha, hb, hc;
	uint32_t id, len;

	(void)state;
	assert_int_equal(f->d->device_id, VIRTIO_ID_RNG);
	assert_int_equal(f->d->nr_watch_fds, 0);
	assert_int_equal(rng_watch_fd(f->d), -1);
	ha = add_buf(f, a, 64);
	hb = add_buf(f, b, 128);
	hc = fake_add_chain(f, 0, two, 2);
	fake_kick(f, 0);
	assert_true(fake_get_used(f, 0, &id, &len));
	assert_int_equal(id, ha);
	assert_int_equal(len, 64);
	assert_true(fake_get_used(f, 0, &id, &len));
	assert_int_equal(id, hb);
	assert_int_equal(len, 128);
	assert_true(fake_get_used(f, 0, &id, &len));
	assert_int_equal(id, hc);
	assert_int_equal(len, 1024);
	assert_false(fake_get_used(f, 0, &id, &len));
	assert_int_equal(f->irqs, 1);
	/* Random, not constant, and not the same twice. */
	assert_false(constant(fake_ptr(f, a, 64), 64));
	assert_false(constant(fake_ptr(f, b, 128), 128));
	assert_false(constant(fake_ptr(f, c1, 1000), 1000));
	assert_false(constant(fake_ptr(f, c2, 24), 24));
	assert_memory_not_equal(fake_ptr(f, a, 64), fake_ptr(f, b, 64), 64);
	assert_false(f->d->broken);
	{
		struct rng_stats st;

		rng_get_stats(f->d, &st);
		assert_int_equal(st.entropy_bytes, 64 + 128 + 1024);
		assert_int_equal(st.entropy_event_count, 3);
		assert_int_equal(st.host_rng_fails, 0);
	}
	done(f);
}

static uint32_t drain(struct fake_driver *f, int *count)
{
	uint32_t id, len, total = 0;

	*count = 0;
	while (fake_get_used(f, 0, &id, &len)) {
		total += len;
		(*count)++;
	}
	return total;
}

static void test_rate_limit(void **state)
{
	struct fake_driver *f = setup(100);
	struct itimerspec its;
	struct pollfd pfd;
	int n, fd;

	(void)state;
	fd = rng_watch_fd(f->d);
	assert_true(fd >= 0);
	assert_int_equal(f->d->nr_watch_fds, 1);
	assert_int_equal(f->d->watch_fds[0], fd);
	for (int i = 0; i < 6; i++)
		add_buf(f, fake_alloc(f, 64), 64);
	fake_kick(f, 0);
	/* One second of burst: 64 + 36 bytes, the rest stays queued. */
	assert_int_equal(drain(f, &n), 100);
	assert_int_equal(n, 2);
	assert_int_equal(f->irqs, 1);
	/* A kick while out of tokens serves nothing. */
	fake_kick(f, 0);
	assert_int_equal(drain(f, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(timerfd_gettime(fd, &its), 0);
	assert_true(its.it_value.tv_sec || its.it_value.tv_nsec);

	/* The timer fires within about a second; the I/O thread would call
	 * fd_ready with the lock held. */
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 3000), 1);
	pthread_mutex_lock(&f->d->lock);
	f->d->ops->fd_ready(f->d, fd);
	pthread_mutex_unlock(&f->d->lock);
	uint32_t more = drain(f, &n);

	/* About one more second's worth, never more than the bucket. */
	assert_true(more >= 90 && more <= 100);
	assert_int_equal(f->irqs, 2);
	assert_false(f->d->broken);
	done(f);
}

static void test_readable_buffer(void **state)
{
	struct fake_driver *f = setup(0);
	uint64_t a = fake_alloc(f, 64);
	struct fake_buf b[2] = { { a, 16, false }, { a + 16, 48, true } };
	uint32_t id, len;

	(void)state;
	fake_add_chain(f, 0, b, 2);
	fake_kick(f, 0);
	assert_true(fake_broken(f));
	assert_int_equal(f->config_irqs, 1);
	assert_false(fake_get_used(f, 0, &id, &len));
	assert_true(constant(fake_ptr(f, a, 64), 64)); /* untouched */
	done(f);
}

/* A zero-length buffer carries nothing, whichever its direction: the
 * request completes with 0 bytes and the device stays live (the rig's
 * hostile-rng battery expects exactly this, chain-zero-len and
 * chain-zero-readonly). */
static void test_zero_length(void **state)
{
	struct fake_driver *f = setup(0);
	uint64_t a = fake_alloc(f, 64);
	struct fake_buf w = { a, 0, true }, r = { a, 0, false };
	uint16_t hw, hr;
	uint32_t id, len;

	(void)state;
	memset(fake_ptr(f, a, 64), 0xa5, 64);
	hw = fake_add_chain(f, 0, &w, 1);
	hr = fake_add_chain(f, 0, &r, 1);
	fake_kick(f, 0);
	assert_false(fake_broken(f));
	assert_true(fake_get_used(f, 0, &id, &len));
	assert_int_equal(id, hw);
	assert_int_equal(len, 0);
	assert_true(fake_get_used(f, 0, &id, &len));
	assert_int_equal(id, hr);
	assert_int_equal(len, 0);
	assert_true(constant(fake_ptr(f, a, 64), 64));
	assert_int_equal(*(uint8_t *)fake_ptr(f, a, 1), 0xa5);
	done(f);
}

static void test_bad_chain(void **state)
{
	struct fake_driver *f = setup(0);
	uint32_t id, len;

	(void)state;
	fake_set_desc(f, 0, 0, FAKE_MEM_SIZE, 64, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(f, 0, 0);
	fake_kick(f, 0);
	assert_true(fake_broken(f));
	assert_false(fake_get_used(f, 0, &id, &len));
	done(f);
}

static void test_not_live(void **state)
{
	struct fake_driver *f = setup(0);
	uint32_t id, len;

	(void)state;
	/* Before DRIVER_OK the kick is ignored. */
	f->d->status &= ~VIRTIO_STATUS_DRIVER_OK;
	add_buf(f, fake_alloc(f, 32), 32);
	fake_kick(f, 0);
	assert_false(fake_get_used(f, 0, &id, &len));
	f->d->status |= VIRTIO_STATUS_DRIVER_OK;
	fake_kick(f, 0);
	assert_true(fake_get_used(f, 0, &id, &len));
	assert_int_equal(len, 32);
	done(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fill),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_readable_buffer),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_bad_chain),
		cmocka_unit_test(test_not_live),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
