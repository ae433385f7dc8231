// SPDX-License-Identifier: MIT
/* virtio-console through a fake driver: output to a pipe, emergency
 * writes, input into posted buffers, input held while none are posted,
 * the bounded buffer and its rx-space callback, a dead output fd. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/console/console.h"
#include "fake_driver.h"

#define QSIZE 16
#define RXQ VCONSOLE_RXQ
#define TXQ VCONSOLE_TXQ

struct ctx {
	struct fake_driver f;
	int pipe[2];
	int space_calls;
};

static struct ctx *setup_pipe(int flags)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct virtio_dev *d;
	struct err e;

	assert_non_null(c);
	assert_int_equal(pipe2(c->pipe, flags | O_CLOEXEC), 0);
	fake_init(&c->f);
	assert_int_equal(vconsole_create(c->pipe[1], &c->f.mem, &d, &e), 0);
	fake_attach(&c->f, d, ~0ULL, QSIZE);
	return c;
}

static int setup(void **state)
{
	*state = setup_pipe(O_NONBLOCK);
	return 0;
}

/* The owner left the fd blocking (as wisp's stdout is today). */
static int setup_blocking(void **state)
{
	*state = setup_pipe(0);
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	fake_destroy(&c->f);
	close(c->pipe[0]);
	if (c->pipe[1] >= 0)
		close(c->pipe[1]);
	free(c);
	return 0;
}

static uint16_t add_out(struct ctx *c, const char *s)
{
	size_t n = strlen(s);
	uint64_t g = fake_alloc(&c->f, n);
	struct fake_buf b = { g, (uint32_t)n, false };

	memcpy(fake_ptr(&c->f, g, n), s, n);
	return fake_add_chain(&c->f, TXQ, &b, 1);
}

static uint64_t add_in(struct ctx *c, uint32_t len)
{
	uint64_t g = fake_alloc(&c->f, len);
	struct fake_buf b = { g, len, true };

	fake_add_chain(&c->f, RXQ, &b, 1);
	return g;
}

static void expect_pipe(struct ctx *c, const char *want)
{
	char buf[256];
	ssize_t n = read(c->pipe[0], buf, sizeof(buf));

	assert_int_equal(n, (ssize_t)strlen(want));
	assert_memory_equal(buf, want, n);
}

static void test_config(void **state)
{
	struct ctx *c = *state;
	struct virtio_dev *d = c->f.d;
	uint16_t v;
	uint64_t f = d->ops->features(d);

	assert_int_equal(d->device_id, VIRTIO_ID_CONSOLE);
	assert_int_equal(d->nr_queues, 2);
	assert_true(f & 1ULL << VIRTIO_CONSOLE_F_SIZE);
	assert_true(f & 1ULL << VIRTIO_CONSOLE_F_EMERG_WRITE);
	assert_false(f & 2ULL); /* no MULTIPORT */
	d->ops->config_read(d, 0, (uint8_t *)&v, 2);
	assert_int_equal(v, 80);
	d->ops->config_read(d, 2, (uint8_t *)&v, 2);
	assert_int_equal(v, 25);
}

static void test_output(void **state)
{
	struct ctx *c = *state;
	uint64_t a = fake_alloc(&c->f, 6), b = fake_alloc(&c->f, 6);
	struct fake_buf bufs[2] = { { a, 6, false }, { b, 6, false } };
	uint32_t id, len;
	uint16_t h1, h2;

	memcpy(fake_ptr(&c->f, a, 6), "hello ", 6);
	memcpy(fake_ptr(&c->f, b, 6), "world\n", 6);
	h1 = fake_add_chain(&c->f, TXQ, bufs, 2);
	h2 = add_out(c, "again");
	fake_kick(&c->f, TXQ);
	expect_pipe(c, "hello world\nagain");
	assert_true(fake_get_used(&c->f, TXQ, &id, &len));
	assert_int_equal(id, h1);
	assert_int_equal(len, 0);
	assert_true(fake_get_used(&c->f, TXQ, &id, &len));
	assert_int_equal(id, h2);
	assert_int_equal(c->f.irqs, 1);
	{
		struct vconsole_stats st;

		vconsole_get_stats(c->f.d, &st);
		assert_int_equal(st.out_bytes, 17);
		assert_int_equal(st.out_dropped_bytes, 0);
		assert_int_equal(st.in_bytes, 0);
	}
}

static void test_emerg_write(void **state)
{
	struct ctx *c = *state;
	uint32_t v = 'X';
	uint8_t b = 'y';

	c->f.d->ops->config_write(c->f.d, 8, (uint8_t *)&v, 4);
	c->f.d->ops->config_write(c->f.d, 8, &b, 1);
	/* Other offsets are not emerg_wr. */
	c->f.d->ops->config_write(c->f.d, 0, &b, 1);
	expect_pipe(c, "Xy");
}

static void test_input_posted(void **state)
{
	struct ctx *c = *state;
	uint64_t a = add_in(c, 8), b = add_in(c, 8);
	uint32_t id, len;

	assert_int_equal(vconsole_push_input(
				 c->f.d, (const uint8_t *)"0123456789AB", 12),
			 12);
	assert_true(fake_get_used(&c->f, RXQ, &id, &len));
	assert_int_equal(len, 8);
	assert_memory_equal(fake_ptr(&c->f, a, 8), "01234567", 8);
	assert_true(fake_get_used(&c->f, RXQ, &id, &len));
	assert_int_equal(len, 4);
	assert_memory_equal(fake_ptr(&c->f, b, 4), "89AB", 4);
	assert_int_equal(c->f.irqs, 1);
	{
		struct vconsole_stats st;

		vconsole_get_stats(c->f.d, &st);
		assert_int_equal(st.in_bytes, 12);
		assert_int_equal(st.out_bytes, 0);
	}
}

static void test_input_held(void **state)
{
	struct ctx *c = *state;
	uint32_t id, len;
	uint64_t a;

	/* No buffers posted: held, nothing used. */
	assert_int_equal(vconsole_push_input(c->f.d, (const uint8_t *)"abc", 3),
			 3);
	assert_int_equal(vconsole_push_input(c->f.d, (const uint8_t *)"de", 2),
			 2);
	assert_false(fake_get_used(&c->f, RXQ, &id, &len));
	assert_int_equal(c->f.irqs, 0);
	/* The driver posts a buffer and kicks: delivered in order. */
	a = add_in(c, 64);
	fake_kick(&c->f, RXQ);
	assert_true(fake_get_used(&c->f, RXQ, &id, &len));
	assert_int_equal(len, 5);
	assert_memory_equal(fake_ptr(&c->f, a, 5), "abcde", 5);
	assert_int_equal(c->f.irqs, 1);
	/* Nothing buffered: a posted buffer stays posted. */
	add_in(c, 64);
	fake_kick(&c->f, RXQ);
	assert_false(fake_get_used(&c->f, RXQ, &id, &len));
}

static void on_space(void *opaque)
{
	struct ctx *c = opaque;

	c->space_calls++;
	/* The lock is dropped: pushing from the callback must not
	 * deadlock. */
	assert_int_equal(vconsole_push_input(c->f.d, (const uint8_t *)"!", 1),
			 1);
}

static void test_input_full(void **state)
{
	struct ctx *c = *state;
	static uint8_t in[5000];
	uint8_t got[VCONSOLE_RX_SIZE + 1];
	uint32_t id, len, total = 0;
	uint64_t g[3];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 31 + 7);
	vconsole_set_rx_space_cb(c->f.d, on_space, c);
	assert_int_equal(vconsole_push_input(c->f.d, in, sizeof(in)),
			 VCONSOLE_RX_SIZE);
	assert_int_equal(vconsole_push_input(c->f.d, in, 1), 0);
	assert_int_equal(c->space_calls, 0);
	assert_true(vconsole_rx_paused(c->f.d));
	/* Only a quarter drained: no callback yet. */
	g[0] = add_in(c, 1024);
	fake_kick(&c->f, RXQ);
	assert_int_equal(c->space_calls, 0);
	assert_true(vconsole_rx_paused(c->f.d));
	/* Drained to empty: one callback, which pushes one byte. */
	g[1] = add_in(c, 3072);
	fake_kick(&c->f, RXQ);
	assert_int_equal(c->space_calls, 1);
	assert_false(vconsole_rx_paused(c->f.d));
	g[2] = add_in(c, 16);
	fake_kick(&c->f, RXQ);
	assert_int_equal(c->space_calls, 1);
	for (int i = 0; i < 3; i++) {
		assert_true(fake_get_used(&c->f, RXQ, &id, &len));
		memcpy(got + total, fake_ptr(&c->f, g[i], len), len);
		total += len;
	}
	assert_false(fake_get_used(&c->f, RXQ, &id, &len));
	assert_int_equal(total, VCONSOLE_RX_SIZE + 1);
	assert_memory_equal(got, in, VCONSOLE_RX_SIZE);
	assert_int_equal(got[VCONSOLE_RX_SIZE], '!');
}

static void test_input_before_driver_ok(void **state)
{
	struct ctx *c = *state;
	uint32_t id, len;
	uint64_t a;

	c->f.d->status &= ~VIRTIO_STATUS_DRIVER_OK;
	a = add_in(c, 16);
	assert_int_equal(vconsole_push_input(c->f.d, (const uint8_t *)"zz", 2),
			 2);
	assert_false(fake_get_used(&c->f, RXQ, &id, &len));
	c->f.d->status |= VIRTIO_STATUS_DRIVER_OK;
	fake_kick(&c->f, RXQ);
	assert_true(fake_get_used(&c->f, RXQ, &id, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(fake_ptr(&c->f, a, 2), "zz", 2);
}

static void test_output_closed(void **state)
{
	struct ctx *c = *state;
	uint32_t id, len;

	signal(SIGPIPE, SIG_IGN);
	close(c->pipe[0]);
	c->pipe[0] = open("/dev/null", O_RDONLY);
	add_out(c, "lost");
	add_out(c, "also lost");
	fake_kick(&c->f, TXQ);
	/* The guest goes on: buffers returned, device healthy. */
	assert_true(fake_get_used(&c->f, TXQ, &id, &len));
	assert_true(fake_get_used(&c->f, TXQ, &id, &len));
	assert_false(c->f.d->broken);
	assert_int_equal(vconsole_out_dropped(c->f.d), 13);
	c->f.d->ops->config_write(c->f.d, 8, (const uint8_t *)"e", 1);
	assert_int_equal(vconsole_out_dropped(c->f.d), 14);
	{
		struct vconsole_stats st;

		vconsole_get_stats(c->f.d, &st);
		assert_int_equal(st.out_dropped_bytes, 14);
		assert_int_equal(st.out_bytes, 0);
	}
}

static void test_output_full_pipe(void **state)
{
	struct ctx *c = *state;
	static char big[200000];
	uint32_t id, len;
	uint64_t g = fake_alloc(&c->f, sizeof(big));
	struct fake_buf b = { g, sizeof(big), false };
	char buf[16];

	/* A non-blocking pipe that cannot take it all: the rest is dropped,
	 * the fd stays in use. */
	memset(fake_ptr(&c->f, g, sizeof(big)), 'q', sizeof(big));
	fake_add_chain(&c->f, TXQ, &b, 1);
	fake_kick(&c->f, TXQ);
	assert_true(fake_get_used(&c->f, TXQ, &id, &len));
	assert_false(c->f.d->broken);
	assert_true(vconsole_out_dropped(c->f.d) > 0);
	while (read(c->pipe[0], buf, sizeof(buf)) > 0)
		;
	add_out(c, "ok");
	fake_kick(&c->f, TXQ);
	expect_pipe(c, "ok");
}

struct kicker {
	struct fake_driver *f;
	volatile int done;
};

static void *kick_tx(void *arg)
{
	struct kicker *k = arg;

	fake_kick(k->f, TXQ);
	k->done = 1;
	return NULL;
}

/* A blocking pipe nobody reads: the I/O thread holds the device lock
 * while it writes, so the write must return (dropping what does not fit)
 * instead of sleeping until a reader shows up. */
static void test_output_stalled_blocking(void **state)
{
	struct ctx *c = *state;
	static char big[200000];
	uint64_t g = fake_alloc(&c->f, sizeof(big));
	struct fake_buf b = { g, sizeof(big), false };
	struct kicker k = { &c->f, 0 };
	uint32_t id, len;
	pthread_t t;
	char buf[4096];

	memset(fake_ptr(&c->f, g, sizeof(big)), 'q', sizeof(big));
	fake_add_chain(&c->f, TXQ, &b, 1);
	assert_int_equal(pthread_create(&t, NULL, kick_tx, &k), 0);
	for (int i = 0; i < 2000 && !k.done; i++)
		usleep(1000);
	if (!k.done)
		fail_msg("virtio-console output blocked on a full pipe");
	pthread_join(t, NULL);
	assert_true(fake_get_used(&c->f, TXQ, &id, &len));
	assert_true(vconsole_out_dropped(c->f.d) > 0);
	assert_true(vconsole_out_dropped(c->f.d) < sizeof(big));
	/* Once the reader catches up, output flows again. */
	assert_int_equal(fcntl(c->pipe[0], F_SETFL, O_NONBLOCK), 0);
	while (read(c->pipe[0], buf, sizeof(buf)) > 0)
		;
	add_out(c, "ok");
	fake_kick(&c->f, TXQ);
	expect_pipe(c, "ok");
}

static void test_rx_readable_buffer(void **state)
{
	struct ctx *c = *state;
	uint64_t g = fake_alloc(&c->f, 8);
	struct fake_buf b = { g, 8, false };
	uint32_t id, len;

	fake_add_chain(&c->f, RXQ, &b, 1);
	assert_int_equal(vconsole_push_input(c->f.d, (const uint8_t *)"x", 1),
			 1);
	assert_true(fake_broken(&c->f));
	assert_false(fake_get_used(&c->f, RXQ, &id, &len));
	/* Input is still taken (buffered), never delivered. */
	assert_int_equal(vconsole_push_input(c->f.d, (const uint8_t *)"y", 1),
			 1);
}

static void test_tx_bad_chain(void **state)
{
	struct ctx *c = *state;
	uint32_t id, len;

	fake_set_desc(&c->f, TXQ, 0, 0, 8, VIRTQ_DESC_F_NEXT, 0);
	fake_publish(&c->f, TXQ, 0);
	fake_kick(&c->f, TXQ);
	assert_true(fake_broken(&c->f));
	assert_false(fake_get_used(&c->f, TXQ, &id, &len));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_config),
		T(test_output),
		T(test_emerg_write),
		T(test_input_posted),
		T(test_input_held),
		T(test_input_full),
		T(test_input_before_driver_ok),
		T(test_output_closed),
		T(test_output_full_pipe),
		cmocka_unit_test_setup_teardown(test_output_stalled_blocking,
						setup_blocking, teardown),
		T(test_rx_readable_buffer),
		T(test_tx_bad_chain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
