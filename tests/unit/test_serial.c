// SPDX-License-Identifier: MIT
/* The 8250 through its register interface: input flow control (the
 * rx-space callback must fire whenever a full receive buffer gets room,
 * including through an FCR receive-FIFO reset) and output to a console
 * reader that does not read (a THR write must return promptly). */
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
#include <time.h>
#include <unistd.h>

#include "devices/serial.h"
#include "util/le.h"
#include "util/time.h"

#define RBR 0
#define IIR_FCR 2
#define LSR 5
#define LSR_DR 0x01
#define LSR_THRE 0x20

static int space_calls;

static void on_space(void *opaque)
{
	(void)opaque;
	space_calls++;
}

static uint8_t reg_read(struct serial *s, uint64_t off)
{
	uint8_t v;

	serial_bus_ops.read(s, 0, off, &v, 1);
	return v;
}

static void reg_write(struct serial *s, uint64_t off, uint8_t v)
{
	serial_bus_ops.write(s, 0, off, &v, 1);
}

static void init(struct serial *s, int fd)
{
	struct irq_line none = { 0 };

	serial_init(s, fd, none);
	s->rx_space = on_space;
	s->rx_space_opaque = NULL;
	space_calls = 0;
}

static void fill_rx(struct serial *s)
{
	static uint8_t buf[SERIAL_RX_SIZE + 16];

	memset(buf, 'a', sizeof(buf));
	assert_int_equal(serial_push_input(s, buf, sizeof(buf)),
			 SERIAL_RX_SIZE);
	assert_true(serial_rx_paused(s));
}

/* Draining a full buffer to half through RBR calls the callback once. */
static void test_rx_drain_wakes(void **state)
{
	struct serial s;

	(void)state;
	init(&s, -1);
	fill_rx(&s);
	for (int i = 0; i < SERIAL_RX_SIZE / 2 - 1; i++)
		reg_read(&s, RBR);
	assert_int_equal(space_calls, 0);
	assert_true(serial_rx_paused(&s));
	reg_read(&s, RBR);
	assert_int_equal(space_calls, 1);
	assert_false(serial_rx_paused(&s));
	while (reg_read(&s, LSR) & LSR_DR)
		reg_read(&s, RBR);
	assert_int_equal(space_calls, 1);
	serial_destroy(&s);
}

/* FCR with CLEAR_RX empties the buffer: that is room too. */
static void test_fcr_clear_rx_wakes(void **state)
{
	struct serial s;

	(void)state;
	init(&s, -1);
	fill_rx(&s);
	reg_write(&s, IIR_FCR, 0x03); /* ENABLE_FIFO | CLEAR_RX */
	assert_false(reg_read(&s, LSR) & LSR_DR);
	assert_int_equal(space_calls, 1);
	assert_false(serial_rx_paused(&s));
	/* Input flows again and a second fill/clear wakes again. */
	fill_rx(&s);
	reg_write(&s, IIR_FCR, 0x03);
	assert_int_equal(space_calls, 2);
	/* Clearing a buffer that was not full owes nobody a wake-up. */
	assert_int_equal(serial_push_input(&s, (const uint8_t *)"xy", 2), 2);
	reg_write(&s, IIR_FCR, 0x03);
	assert_int_equal(space_calls, 2);
	serial_destroy(&s);
}

/* The event loop's side of the race: it learned "full" from push_input,
 * but the guest drained before it paused stdin. The callback found stdin
 * still polled and did nothing; the re-check after pausing must see that
 * the wake-up already happened. */
static void test_pause_recheck(void **state)
{
	struct serial s;

	(void)state;
	init(&s, -1);
	fill_rx(&s);
	for (int i = 0; i < SERIAL_RX_SIZE / 2; i++)
		reg_read(&s, RBR);
	assert_int_equal(space_calls, 1);
	/* ...now the event loop pauses and re-checks. */
	assert_false(serial_rx_paused(&s));
	serial_destroy(&s);
}

struct writer {
	struct serial *s;
	int n;
	volatile int done;
};

static void *write_thr(void *arg)
{
	struct writer *w = arg;

	for (int i = 0; i < w->n; i++)
		reg_write(w->s, RBR, (uint8_t)('A' + i % 26));
	w->done = 1;
	return NULL;
}

/* Fills the pipe's buffer so that the next write would block. */
static void fill_pipe(int wfd)
{
	static uint8_t junk[65536];
	int fl = fcntl(wfd, F_GETFL);

	assert_int_equal(fcntl(wfd, F_SETFL, fl | O_NONBLOCK), 0);
	while (write(wfd, junk, sizeof(junk)) > 0)
		;
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(fcntl(wfd, F_SETFL, fl), 0);
}

/* THR writes to a console nobody reads return within a bound, whether or
 * not the owner made the fd non-blocking. The vCPU holds the device lock
 * while it writes: blocking here stalls every vCPU that touches COM1. */
static void run_stalled(bool nonblock)
{
	struct serial s;
	struct writer w = { &s, 3 * SERIAL_TX_SIZE, 0 };
	pthread_t t;
	uint64_t t0;
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fill_pipe(p[1]);
	if (nonblock)
		assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
	init(&s, p[1]);
	assert_int_equal(pthread_create(&t, NULL, write_thr, &w), 0);
	t0 = now_ns();
	while (!w.done && now_ns() - t0 < 2000000000ull)
		usleep(1000);
	if (!w.done)
		fail_msg("THR writes blocked on a full pipe (%s fd)",
			 nonblock ? "non-blocking" : "blocking");
	pthread_join(t, NULL);
	/* A bounded backlog, the rest dropped and counted; THRE reports the
	 * full transmit buffer. */
	assert_int_equal(serial_out_dropped(&s),
			 3 * SERIAL_TX_SIZE - SERIAL_TX_SIZE);
	assert_false(reg_read(&s, LSR) & LSR_THRE);

	/* The reader catches up: the backlog goes out in order, THRE is
	 * back. */
	{
		static uint8_t buf[65536];
		uint8_t out[SERIAL_TX_SIZE];
		size_t got = 0;

		assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
		while (read(p[0], buf, sizeof(buf)) > 0)
			;
		assert_true(reg_read(&s, LSR) & LSR_THRE);
		t0 = now_ns();
		while (got < sizeof(out) && now_ns() - t0 < 2000000000ull) {
			ssize_t n = read(p[0], out + got, sizeof(out) - got);

			if (n > 0)
				got += (size_t)n;
			else
				reg_read(&s, LSR); /* lets the device flush */
		}
		assert_int_equal(got, sizeof(out));
		for (size_t i = 0; i < sizeof(out); i++)
			assert_int_equal(out[i], 'A' + i % 26);
	}
	serial_destroy(&s);
	close(p[0]);
	close(p[1]);
}

static void test_stalled_reader_nonblock(void **state)
{
	(void)state;
	run_stalled(true);
}

static void test_stalled_reader_blocking(void **state)
{
	(void)state;
	run_stalled(false);
}

/* A broken console (reader gone) drops output and never stops the guest. */
static void test_broken_console(void **state)
{
	struct serial s;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	close(p[0]);
	init(&s, p[1]);
	for (int i = 0; i < 10; i++)
		reg_write(&s, RBR, 'x');
	assert_int_equal(serial_out_dropped(&s), 10);
	assert_true(reg_read(&s, LSR) & LSR_THRE);
	serial_destroy(&s);
	close(p[1]);
	/* No console at all (--serial none) discards without counting. */
	init(&s, -1);
	reg_write(&s, RBR, 'x');
	assert_int_equal(serial_out_dropped(&s), 0);
	assert_true(reg_read(&s, LSR) & LSR_THRE);
	serial_destroy(&s);
}

/* Snapshot state (serial_state.c): registers and buffered input come
 * back in a fresh port; a cut-short or oversized payload is refused with
 * the port unchanged. */
static void test_snapshot_state(void **state)
{
	struct serial a, b;
	struct ser_w w = { 0 };
	struct err e = { 0 };

	init(&a, -1);
	init(&b, -1);
	reg_write(&a, 3, 0x83); /* LCR: DLAB */
	reg_write(&a, 0, 0x0c); /* DLL */
	reg_write(&a, 3, 0x03);
	reg_write(&a, 7, 0x5a); /* SCR */
	serial_push_input(&a, (const uint8_t *)"hey", 3);
	serial_save(&a, &w);
	assert_false(w.fail);
	for (size_t l = 0; l < w.len; l++)
		assert_int_equal(serial_load(&b, w.p, l, &e), -EINVAL);
	assert_int_equal(reg_read(&b, 7), 0);
	assert_int_equal(serial_load(&b, w.p, w.len, &e), 0);
	assert_int_equal(reg_read(&b, 7), 0x5a);
	assert_int_equal(reg_read(&b, 3), 0x03);
	assert_int_equal(reg_read(&b, 0), 'h');
	assert_int_equal(reg_read(&b, 0), 'e');
	assert_int_equal(reg_read(&b, 0), 'y');
	/* An input count above the buffer's size. */
	put32(w.p + 4 + 9, SERIAL_RX_SIZE + 1);
	assert_int_equal(serial_load(&b, w.p, w.len, &e), -EINVAL);
	free(w.p);
	serial_destroy(&a);
	serial_destroy(&b);
}

/* Posted THR writes: a fake owner that records what the serial asks. */
static int post_on_calls, post_off_calls, post_drains, post_ret_on,
	post_ret_off;

static int fake_set(void *opaque, bool on)
{
	(void)opaque;
	if (on) {
		post_on_calls++;
		return post_ret_on;
	}
	post_off_calls++;
	return post_ret_off;
}

static void fake_drain(void *opaque)
{
	(void)opaque;
	post_drains++;
}

static void init_post(struct serial *s)
{
	init(s, -1);
	s->post = (struct serial_post){ fake_set, fake_drain, NULL };
	post_on_calls = post_off_calls = post_drains = 0;
	post_ret_on = post_ret_off = 0;
}

static void thr_bytes(struct serial *s, int cpu, int n)
{
	for (int i = 0; i < n; i++) {
		uint8_t b = 'x';

		serial_bus_ops.write(s, cpu, 0, &b, 1);
	}
}

/* Posting starts after SERIAL_POST_AFTER THR writes that exited while
 * safe; drained (BUS_CPU_NONE) writes and register writes do not count. */
static void test_post_starts_after_burst(void **state)
{
	struct serial s;

	(void)state;
	init_post(&s);
	thr_bytes(&s, BUS_CPU_NONE, 100);
	reg_write(&s, 7, 1);
	assert_int_equal(post_on_calls, 0);
	thr_bytes(&s, 0, SERIAL_POST_AFTER - 1);
	assert_int_equal(post_on_calls, 0);
	assert_false(serial_posting(&s));
	thr_bytes(&s, 1, 1);
	assert_int_equal(post_on_calls, 1);
	assert_true(serial_posting(&s));
	thr_bytes(&s, 0, 100);
	assert_int_equal(post_on_calls, 1);
	assert_int_equal(post_off_calls, 0);
	serial_destroy(&s);
}

/* IER.THRI and MCR.LOOP stop posting at the write that sets them (and the
 * owner drains after the stop); while they are set nothing starts it;
 * DLAB does not stop it; clearing them starts over from zero. */
static void test_post_unsafe_stops(void **state)
{
	struct serial s;

	(void)state;
	init_post(&s);
	thr_bytes(&s, 0, SERIAL_POST_AFTER);
	assert_true(serial_posting(&s));
	reg_write(&s, 3, 0x83); /* DLAB */
	thr_bytes(&s, 0, 2); /* divisor bytes */
	reg_write(&s, 3, 0x03);
	assert_true(serial_posting(&s));
	assert_int_equal(post_off_calls, 0);
	reg_write(&s, 1, 0x01); /* IER.RDI alone is safe */
	assert_true(serial_posting(&s));
	reg_write(&s, 1, 0x03); /* IER.THRI */
	assert_false(serial_posting(&s));
	assert_int_equal(post_off_calls, 1);
	assert_int_equal(post_drains, 1);
	thr_bytes(&s, 0, 3 * SERIAL_POST_AFTER);
	assert_int_equal(post_on_calls, 1);
	reg_write(&s, 1, 0x01);
	thr_bytes(&s, 0, SERIAL_POST_AFTER - 1);
	assert_int_equal(post_on_calls, 1);
	thr_bytes(&s, 0, 1);
	assert_int_equal(post_on_calls, 2);
	reg_write(&s, 4, 0x18); /* MCR.LOOP */
	assert_false(serial_posting(&s));
	assert_int_equal(post_off_calls, 2);
	assert_int_equal(post_drains, 2);
	thr_bytes(&s, 0, 3 * SERIAL_POST_AFTER);
	assert_int_equal(post_on_calls, 2);
	reg_write(&s, 4, 0x08);
	thr_bytes(&s, 0, SERIAL_POST_AFTER);
	assert_int_equal(post_on_calls, 3);
	serial_destroy(&s);
}

/* An owner that cannot post (no coalesced PIO) is asked once; one that
 * cannot stop is asked again at the next write, and no drain runs before
 * the stop succeeded, nor after a stop at a drained write. */
static void test_post_failures(void **state)
{
	struct serial s;

	(void)state;
	init_post(&s);
	post_ret_on = -EOPNOTSUPP;
	thr_bytes(&s, 0, 10 * SERIAL_POST_AFTER);
	assert_int_equal(post_on_calls, 1);
	assert_false(serial_posting(&s));
	serial_destroy(&s);

	init_post(&s);
	thr_bytes(&s, 0, SERIAL_POST_AFTER);
	assert_true(serial_posting(&s));
	post_ret_off = -ENOMEM;
	reg_write(&s, 1, 0x02);
	assert_true(serial_posting(&s));
	assert_int_equal(post_drains, 0);
	reg_write(&s, 7, 0);
	assert_int_equal(post_off_calls, 2);
	post_ret_off = 0;
	reg_write(&s, 7, 0);
	assert_false(serial_posting(&s));
	assert_int_equal(post_off_calls, 3);
	assert_int_equal(post_drains, 1);
	serial_destroy(&s);

	/* The stop that succeeds at a drained byte (the drain's own write)
	 * must not drain again: the drain holds its lock. */
	init_post(&s);
	thr_bytes(&s, 0, SERIAL_POST_AFTER);
	post_ret_off = -ENOMEM;
	reg_write(&s, 1, 0x02);
	assert_true(serial_posting(&s));
	post_ret_off = 0;
	thr_bytes(&s, BUS_CPU_NONE, 1);
	assert_false(serial_posting(&s));
	assert_int_equal(post_off_calls, 2);
	assert_int_equal(post_drains, 0);
	serial_destroy(&s);
}

/* The ring going idle stops posting (with a drain); it starts again after
 * another burst. Loading a state that is unsafe stops it too. */
static void test_post_idle_and_load(void **state)
{
	struct serial s, t;
	struct ser_w w = { 0 };
	struct err e = { 0 };

	(void)state;
	init_post(&s);
	serial_post_idle(&s); /* not posting: nothing to stop */
	assert_int_equal(post_off_calls, 0);
	assert_int_equal(post_drains, 0);
	thr_bytes(&s, 0, SERIAL_POST_AFTER);
	assert_true(serial_posting(&s));
	serial_post_idle(&s);
	assert_false(serial_posting(&s));
	assert_int_equal(post_off_calls, 1);
	assert_int_equal(post_drains, 1);
	thr_bytes(&s, 0, SERIAL_POST_AFTER);
	assert_int_equal(post_on_calls, 2);

	init(&t, -1);
	reg_write(&t, 1, 0x02);
	serial_save(&t, &w);
	assert_false(w.fail);
	assert_int_equal(serial_load(&s, w.p, w.len, &e), 0);
	assert_false(serial_posting(&s));
	assert_int_equal(post_off_calls, 2);
	assert_int_equal(post_drains, 2);
	free(w.p);
	serial_destroy(&s);
	serial_destroy(&t);
}

/* The lost-edge recovery: a line held high with no IIR read for the
 * limit is pulsed low and high once per limit; an IIR read, a low line
 * or a fresh edge restarts the wait. */
static int levels[16], nlevels;

static void rec_level(void *opaque, unsigned int gsi, int level)
{
	(void)opaque;
	(void)gsi;
	if (nlevels < 16)
		levels[nlevels++] = level;
}

static void test_lost_edge_pulsed(void **state)
{
	struct irq_line rec = { .set_level = rec_level };
	struct serial_irq_watch w = { 0 };
	const uint64_t ms = 1000000, limit = 1000 * ms;
	uint64_t t = 5000 * ms;
	struct serial s;

	(void)state;
	serial_init(&s, -1, rec);
	nlevels = 0;
	/* quiet line: nothing to recover, however long */
	for (int i = 0; i < 4; i++, t += limit)
		assert_false(serial_irq_check(&s, &w, t, limit));
	/* THRI enabled on an empty THR: the line goes high (one edge) */
	reg_write(&s, 1, 0x02);
	assert_int_equal(nlevels, 1);
	assert_int_equal(levels[0], 1);
	assert_false(serial_irq_check(&s, &w, t, limit));
	assert_false(serial_irq_check(&s, &w, t + limit - 1, limit));
	/* never read: pulsed, once per limit */
	assert_true(serial_irq_check(&s, &w, t + limit, limit));
	assert_int_equal(nlevels, 3);
	assert_int_equal(levels[1], 0);
	assert_int_equal(levels[2], 1);
	assert_false(serial_irq_check(&s, &w, t + limit + 1, limit));
	assert_true(serial_irq_check(&s, &w, t + 2 * limit, limit));
	assert_int_equal(w.reraised, 2);
	/* an IIR read (the handler ran) acks THRI: line low, wait over */
	assert_int_equal(reg_read(&s, IIR_FCR) & 0x0f, 0x02);
	t += 3 * limit;
	for (int i = 0; i < 3; i++, t += limit)
		assert_false(serial_irq_check(&s, &w, t, limit));
	/* a THR write raises it again; a handler that reads IIR within
	 * the limit is not pulsed */
	nlevels = 0;
	reg_write(&s, RBR, 'x');
	assert_false(serial_irq_check(&s, &w, t, limit));
	assert_int_equal(reg_read(&s, IIR_FCR) & 0x0f, 0x02);
	assert_false(serial_irq_check(&s, &w, t + limit, limit));
	assert_false(serial_irq_check(&s, &w, t + 2 * limit, limit));
	assert_int_equal(nlevels, 2); /* the write's edge, the read's low */
	assert_int_equal(w.reraised, 2);
	serial_destroy(&s);
}

/* An interrupt-driven driver (Linux's 8250 with THRI on) transmits only
 * from its handler, and only when LSR says THRE: a handler that found
 * the backlog full waits for the next THR-empty interrupt. Once the
 * reader catches up, serial_tx_retry (the event loop's tick) must write
 * the backlog and raise that interrupt; nothing else touches the device
 * then. */
static void test_thre_owed_after_backlog(void **state)
{
	struct irq_line rec = { .set_level = rec_level };
	static uint8_t buf[65536];
	struct serial s;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	fill_pipe(p[1]);
	serial_init(&s, p[1], rec);
	nlevels = 0;
	reg_write(&s, 1, 0x02); /* IER: THRI */
	for (int i = 0; i < SERIAL_TX_SIZE; i++)
		reg_write(&s, RBR, 'A' + i % 26);
	/* the handler: IIR acks THRI, LSR says the transmitter is busy */
	assert_int_equal(reg_read(&s, IIR_FCR) & 0x0f, 0x02);
	assert_false(reg_read(&s, LSR) & LSR_THRE);
	assert_int_equal(reg_read(&s, IIR_FCR) & 0x0f, 0x01);
	/* still nobody reads: no interrupt owed yet */
	serial_tx_retry(&s);
	assert_int_equal(reg_read(&s, IIR_FCR) & 0x0f, 0x01);
	nlevels = 0;
	while (read(p[0], buf, sizeof(buf)) > 0)
		;
	serial_tx_retry(&s);
	assert_int_equal(nlevels, 1);
	assert_int_equal(levels[0], 1);
	assert_int_equal(reg_read(&s, IIR_FCR) & 0x0f, 0x02);
	assert_true(reg_read(&s, LSR) & LSR_THRE);
	/* owed once: a second tick raises nothing */
	nlevels = 0;
	serial_tx_retry(&s);
	assert_int_equal(nlevels, 0);
	/* the backlog went out, in order, after the pipe's junk */
	{
		uint8_t out[SERIAL_TX_SIZE];
		size_t got = 0;
		ssize_t n;

		while ((n = read(p[0], out + got, sizeof(out) - got)) > 0)
			got += (size_t)n;
		assert_int_equal(got, sizeof(out));
		for (size_t i = 0; i < sizeof(out); i++)
			assert_int_equal(out[i], 'A' + i % 26);
	}
	serial_destroy(&s);
	close(p[0]);
	close(p[1]);
}

/* The state dump's serial line: where the guest's bytes went (by exit,
 * written, dropped) and its last register writes, oldest first. */
static void test_describe(void **state)
{
	char line[512];
	struct serial s;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	init(&s, p[1]);
	reg_write(&s, 1, 0x05); /* IER */
	for (int i = 0; i < 3; i++)
		reg_write(&s, RBR, 'a' + i);
	serial_describe(&s, line, sizeof(line));
	assert_non_null(strstr(line, "IER 0x05"));
	assert_non_null(strstr(line,
			       "THR bytes 3 by exit, 0 posted, 3 written, 0 "
			       "dropped;"));
	assert_non_null(strstr(line, "(reg:value) 1:05 0:61 0:62 0:63"));
	/* the history keeps the last SERIAL_HIST writes */
	for (int i = 0; i < SERIAL_HIST + 2; i++)
		reg_write(&s, 7, (uint8_t)i); /* SCR */
	serial_describe(&s, line, sizeof(line));
	assert_null(strstr(line, "1:05"));
	assert_null(strstr(line, "7:01 "));
	assert_non_null(strstr(line, " 7:02 "));
	assert_non_null(strstr(line, " 7:0d"));
	/* a short buffer is cut, never overrun */
	serial_describe(&s, line, 40);
	assert_int_equal(strlen(line), 39);
	serial_destroy(&s);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_state),
		cmocka_unit_test(test_rx_drain_wakes),
		cmocka_unit_test(test_fcr_clear_rx_wakes),
		cmocka_unit_test(test_pause_recheck),
		cmocka_unit_test(test_stalled_reader_nonblock),
		cmocka_unit_test(test_stalled_reader_blocking),
		cmocka_unit_test(test_broken_console),
		cmocka_unit_test(test_post_starts_after_burst),
		cmocka_unit_test(test_post_unsafe_stops),
		cmocka_unit_test(test_post_failures),
		cmocka_unit_test(test_post_idle_and_load),
		cmocka_unit_test(test_lost_edge_pulsed),
		cmocka_unit_test(test_thre_owed_after_backlog),
		cmocka_unit_test(test_describe),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
