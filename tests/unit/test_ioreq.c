// SPDX-License-Identifier: MIT
/* The IOREQ protocol end to end inside one process: libwisp-ioreq in a
 * thread as the server, the VMM side driven as a vCPU would; then fake
 * servers speaking raw, malformed protocol to the VMM side. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "ioreq/msg.h"
#include "ioreq/server.h"
#include "ioreq/client.h"

#define WIN 0xd0000000ull

static char sock_path[108];
static struct guest_mem gmem;
static uint64_t last_write, posted_writes;

static void s_read(void *o, int cpu, uint64_t off, uint8_t *d, uint32_t len)
{
	struct wisp_ioreq_server *s = o;
	uint64_t v = 0x1234 + off;

	if (off == 0x80) /* guest RAM through the server's own mapping */
		guest_mem_read(&s->mem, 0x1000, &v, 8);
	memcpy(d, &v, len);
}

static void s_write(void *o, int cpu, uint64_t off, const uint8_t *d,
		    uint32_t len)
{
	last_write = 0;
	memcpy(&last_write, d, len);
}

static void s_posted(void *o, int cpu, uint64_t off, const uint8_t *d,
		     uint32_t len)
{
	posted_writes++;
	s_write(o, cpu, off, d, len);
}

static const struct bus_ops sync_ops = { s_read, s_write };
static const struct bus_ops posted_ops = { s_read, s_posted };

static void *server_thread(void *arg)
{
	struct wisp_ioreq_server *s;
	struct err e;
	int lfd = *(int *)arg;

	if (wisp_ioreq_accept(lfd, "unit",
			      IOREQ_F_BUFFERED_RING | IOREQ_F_DOORBELLS, &s,
			      &e))
		return NULL;
	if (!wisp_ioreq_map_range(s, WIN, 0x100, IOREQ_RANGE_SYNC, &sync_ops, s,
				  &e) &&
	    !wisp_ioreq_map_range(s, WIN + 0x100, 0x100, IOREQ_RANGE_POSTED,
				  &posted_ops, s, &e) &&
	    !wisp_ioreq_ready(s, &e))
		wisp_ioreq_serve(s, &e);
	wisp_ioreq_close(s);
	return NULL;
}

static struct ioreq_client_config client_cfg(int irq)
{
	struct ioreq_client_config c = { 0 };

	c.name = "unit";
	c.socket_path = sock_path;
	c.nr_vcpus = 2;
	c.mem = &gmem;
	c.window_base = WIN;
	c.window_size = 0x1000;
	c.gsi = 5;
	c.irq_efd = irq;
	c.timeout_ms = 500;
	c.connect_timeout_ms = 500;
	return c;
}

static int setup(void **state)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/wisp-unit-%d.sock",
		 (int)getpid());
	assert_int_equal(guest_mem_init(&gmem, 4 << 20, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	guest_mem_destroy(&gmem);
	unlink(sock_path);
	return 0;
}

/* The vCPU the window accesses are made as. */
static int win_cpu = BUS_CPU_NONE;

static uint32_t win_read(struct ioreq_client *c, uint64_t off)
{
	uint32_t v;

	ioreq_window_ops.read(c, win_cpu, off, (uint8_t *)&v, 4);
	return v;
}

static void win_write(struct ioreq_client *c, uint64_t off, uint32_t v)
{
	ioreq_window_ops.write(c, win_cpu, off, (const uint8_t *)&v, 4);
}

static void test_forwarding_and_remap(void **state)
{
	struct ioreq_client_config cfg;
	struct ioreq_client *c;
	struct ioreq_stats st;
	pthread_t th;
	struct err e;
	int irq = eventfd(0, EFD_CLOEXEC), lfd;
	uint64_t v = 0xfeedface12345678ull;

	lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, server_thread, &lfd), 0);
	cfg = client_cfg(irq);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	assert_true(ioreq_client_attached(c));
	assert_false(ioreq_client_is_virtio(c));

	win_cpu = 1;
	assert_int_equal(win_read(c, 0x10), 0x1234 + 0x10);
	win_write(c, 0x20, 77);
	assert_int_equal(last_write, 77);
	win_write(c, 0x100, 78); /* posted, through the ring */
	assert_int_equal(win_read(c, 0x0), 0x1234); /* sync: ring drained */
	assert_int_equal(last_write, 78);
	assert_int_equal(posted_writes, 1);
	/* Outside every mapped range: all-ones, nothing forwarded. */
	assert_int_equal(win_read(c, 0x800), 0xffffffff);

	guest_mem_write(&gmem, 0x1000, &v, 8);
	assert_int_equal(win_read(c, 0x80), (uint32_t)v);
	/* Invalidate: the server unmaps, answers, maps the layout again. */
	assert_int_equal(ioreq_client_remap(c, &e), 0);
	v = 0x0badcafe;
	guest_mem_write(&gmem, 0x1000, &v, 8);
	assert_int_equal(win_read(c, 0x80), 0x0badcafe);
	ioreq_client_stats(c, &st);
	assert_true(st.sync >= 5);
	assert_int_equal(st.posted, 1);
	win_cpu = BUS_CPU_NONE;

	ioreq_client_destroy(c); /* sends BYE: the server thread returns */
	pthread_join(th, NULL);
	close(lfd);
	close(irq);
}

/* IOREQ_F_SHARED_ISR: InterruptStatus and InterruptACK of a virtio-mmio
 * window are served from the ring header's word, with no round trip; the
 * guest gets the defined bits of whatever is there, its reads are
 * counted for the server; other sizes and offsets are forwarded. Without
 * the feature the same read is a round trip. */
struct isr_srv {
	int lfd;
	uint32_t features;
	uint32_t *isr, *reads;
};

static void *isr_server_thread(void *arg)
{
	struct isr_srv *v = arg;
	struct wisp_ioreq_server *s;
	struct err e;

	if (wisp_ioreq_accept(v->lfd, "unit", v->features, &s, &e))
		return NULL;
	v->isr = wisp_ioreq_shared_isr(s, &v->reads);
	if (!wisp_ioreq_map_range(s, WIN, 0x100, IOREQ_RANGE_SYNC, &sync_ops, s,
				  &e) &&
	    !wisp_ioreq_ready(s, &e))
		wisp_ioreq_serve(s, &e);
	wisp_ioreq_close(s);
	return NULL;
}

static void shared_isr_case(uint32_t features, bool shared)
{
	struct isr_srv v = { .features = features };
	struct ioreq_client_config cfg;
	struct ioreq_client *c;
	struct ioreq_stats st0, st;
	pthread_t th;
	struct err e;
	int irq = eventfd(0, EFD_CLOEXEC);
	uint16_t h = 0;

	v.lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(v.lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, isr_server_thread, &v), 0);
	cfg = client_cfg(irq);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	assert_int_equal(ioreq_client_is_virtio(c),
			 !!(features & IOREQ_F_VIRTIO_MMIO));
	win_cpu = 0;
	ioreq_client_stats(c, &st0);
	if (!shared) {
		assert_null(v.isr);
		assert_int_equal(win_read(c, 0x60), 0x1234 + 0x60);
		ioreq_client_stats(c, &st);
		assert_int_equal(st.sync, st0.sync + 1);
		assert_int_equal(st.shared_isr, 0);
		goto out;
	}
	assert_non_null(v.isr);
	__atomic_store_n(v.isr, 1, __ATOMIC_SEQ_CST); /* a used buffer */
	assert_int_equal(win_read(c, 0x60), 1);
	assert_int_equal(__atomic_load_n(v.reads, __ATOMIC_SEQ_CST), 1);
	last_write = 0;
	win_write(c, 0x64, 1);
	assert_int_equal(__atomic_load_n(v.isr, __ATOMIC_SEQ_CST), 0);
	assert_int_equal(last_write, 0); /* not forwarded */
	/* A server's garbage: the guest sees bits 0 and 1 only. */
	__atomic_store_n(v.isr, 0xfffffffeu, __ATOMIC_SEQ_CST);
	assert_int_equal(win_read(c, 0x60), 2);
	ioreq_client_stats(c, &st);
	assert_int_equal(st.sync, st0.sync);
	assert_int_equal(st.shared_isr, 3);
	/* Another size is the device's business. */
	ioreq_window_ops.read(c, win_cpu, 0x60, (uint8_t *)&h, 2);
	assert_int_equal(h, 0x1234 + 0x60);
	ioreq_client_stats(c, &st);
	assert_int_equal(st.sync, st0.sync + 1);
out:
	win_cpu = BUS_CPU_NONE;
	ioreq_client_destroy(c);
	pthread_join(th, NULL);
	close(v.lfd);
	close(irq);
}

static void test_shared_isr(void **state)
{
	shared_isr_case(IOREQ_F_BUFFERED_RING | IOREQ_F_VIRTIO_MMIO |
				IOREQ_F_SHARED_ISR,
			true);
}

/* Not asked for; asked for without a virtio-mmio window or without the
 * ring that holds it: not granted, the read is a round trip. */
static void test_no_shared_isr(void **state)
{
	shared_isr_case(IOREQ_F_BUFFERED_RING | IOREQ_F_VIRTIO_MMIO, false);
	shared_isr_case(IOREQ_F_BUFFERED_RING | IOREQ_F_SHARED_ISR, false);
	shared_isr_case(IOREQ_F_VIRTIO_MMIO | IOREQ_F_SHARED_ISR, false);
}

/* --- fake servers --- */

struct fake {
	int lfd;
	int mode;
};

enum {
	F_BAD_MAGIC,
	F_BAD_VERSION,
	F_SHORT_HELLO,
	F_SILENT,
	F_RANGE_OUTSIDE,
	F_DOORBELL_NO_FD,
	F_FDS_ON_READY,
	F_CLOSE_AFTER_WELCOME,
};

static void *fake_thread(void *arg)
{
	struct fake *f = arg;
	struct ioreq_hello h = { { IOREQ_MSG_HELLO, sizeof(h), 0, 0 },
				 IOREQ_MAGIC,
				 IOREQ_VERSION,
				 IOREQ_F_ALL,
				 0,
				 "fake" };
	uint8_t buf[IOREQ_MAX_MSG];
	int fds[IOREQ_MAX_FDS], nfds, s = accept(f->lfd, NULL, NULL);

	if (s < 0)
		return NULL;
	if (f->mode == F_BAD_MAGIC)
		h.magic = 0xdeadbeef;
	if (f->mode == F_BAD_VERSION)
		h.version = 0; /* below IOREQ_VERSION_MIN */
	if (f->mode == F_SILENT) {
		usleep(800000);
		close(s);
		return NULL;
	}
	ioreq_send(s, &h, f->mode == F_SHORT_HELLO ? 40 : sizeof(h), NULL, 0);
	if (f->mode == F_SHORT_HELLO) /* header says 64, packet is 40 */
		((struct ioreq_hdr *)&h)->len = 40;
	if (ioreq_recv(s, buf, sizeof(buf), fds, IOREQ_MAX_FDS, &nfds, 2000) >
	    0)
		ioreq_close_fds(fds, nfds);
	if (ioreq_recv(s, buf, sizeof(buf), fds, IOREQ_MAX_FDS, &nfds, 2000) >
	    0)
		ioreq_close_fds(fds, nfds);
	if (f->mode == F_CLOSE_AFTER_WELCOME) {
		close(s);
		return NULL;
	}
	if (f->mode == F_RANGE_OUTSIDE) {
		struct ioreq_map_range m = { { IOREQ_MSG_MAP_RANGE, sizeof(m),
					       7, 0 },
					     0,
					     0,
					     WIN + 0x2000,
					     0x100 };
		struct ioreq_ack *a = (struct ioreq_ack *)buf;

		ioreq_send(s, &m, sizeof(m), NULL, 0);
		if (ioreq_recv(s, buf, sizeof(buf), fds, IOREQ_MAX_FDS, &nfds,
			       2000) == sizeof(*a) &&
		    a->hdr.type == IOREQ_MSG_ACK && a->hdr.seq == 7 &&
		    a->status == -EINVAL)
			f->mode = -1; /* refused as expected */
		close(s);
		return NULL;
	}
	if (f->mode == F_DOORBELL_NO_FD) {
		struct ioreq_add_doorbell d = {
			{ IOREQ_MSG_ADD_DOORBELL, sizeof(d), 1, 0 },
			0,
			1,
			WIN + 0x50,
			4,
			0,
			0
		};

		ioreq_send(s, &d, sizeof(d), NULL, 0);
	}
	if (f->mode == F_FDS_ON_READY) {
		struct ioreq_hdr r = { IOREQ_MSG_READY, sizeof(r), 1, 0 };
		int many[IOREQ_MAX_FDS];

		for (int i = 0; i < IOREQ_MAX_FDS; i++)
			many[i] = 0;
		ioreq_send(s, &r, sizeof(r), many, IOREQ_MAX_FDS);
		ioreq_send(s, &r, sizeof(r), many, IOREQ_MAX_FDS);
	}
	usleep(300000);
	close(s);
	return NULL;
}

static void fake_case(int mode, int want)
{
	struct ioreq_client_config cfg;
	struct ioreq_client *c = NULL;
	struct fake f = { -1, mode };
	pthread_t th;
	struct err e = { 0 };
	int irq = eventfd(0, EFD_CLOEXEC), ret;

	f.lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(f.lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, fake_thread, &f), 0);
	cfg = client_cfg(irq);
	ret = ioreq_client_create(&cfg, &c, &e);
	pthread_join(th, NULL);
	if (mode == F_RANGE_OUTSIDE) {
		/* The VMM refused the range with -EINVAL and then saw the
		 * server leave before READY. */
		assert_int_equal(f.mode, -1);
	}
	assert_int_equal(ret, want);
	assert_null(c);
	assert_true(strstr(e.msg, "unit") != NULL);
	close(f.lfd);
	close(irq);
}

static void test_bad_magic(void **s)
{
	fake_case(F_BAD_MAGIC, -EPROTO);
}

static void test_bad_version(void **s)
{
	fake_case(F_BAD_VERSION, -EPROTONOSUPPORT);
}

static void test_short_hello(void **s)
{
	fake_case(F_SHORT_HELLO, -EPROTO);
}

static void test_silent_server(void **s)
{
	fake_case(F_SILENT, -ETIMEDOUT);
}

static void test_range_outside_window(void **s)
{
	fake_case(F_RANGE_OUTSIDE, -ECONNRESET);
}

static void test_doorbell_without_fd(void **s)
{
	fake_case(F_DOORBELL_NO_FD, -EPROTO);
}

static void test_fds_on_ready(void **s)
{
	fake_case(F_FDS_ON_READY, -EPROTO);
}

static void test_close_after_welcome(void **s)
{
	fake_case(F_CLOSE_AFTER_WELCOME, -ECONNRESET);
}

static void test_no_server(void **s)
{
	struct ioreq_client_config cfg = client_cfg(0);
	struct ioreq_client *c;
	struct err e;

	unlink(sock_path);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), -ENOENT);
	assert_true(strstr(e.msg, sock_path) != NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forwarding_and_remap),
		cmocka_unit_test(test_shared_isr),
		cmocka_unit_test(test_no_shared_isr),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_short_hello),
		cmocka_unit_test(test_silent_server),
		cmocka_unit_test(test_range_outside_window),
		cmocka_unit_test(test_doorbell_without_fd),
		cmocka_unit_test(test_fds_on_ready),
		cmocka_unit_test(test_close_after_welcome),
		cmocka_unit_test(test_no_server),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
