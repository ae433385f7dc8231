// SPDX-License-Identifier: MIT
/*
 * The IOREQ protocol's state channel (IOREQ_F_STATE): the VMM side and
 * libwisp-ioreq end to end in one process (a device's state saved with
 * the device held until resumed, loaded, a refusal carrying the
 * server's message, a server without the feature or its hooks), and
 * each side against a hostile peer speaking raw messages: a wrong seq,
 * a bad status, a length that does not match, an unterminated message
 * or no answer cut the server off within the bound; a malformed request
 * ends the server's serve() with -EPROTO and a message.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ioreq/client.h"
#include "ioreq/client_priv.h"
#include "ioreq/msg.h"
#include "ioreq/server.h"
#include "util/time.h"

#define WIN 0xd0000000ull
#define TIMEOUT_MS 200 /* the state channel waits 5 times this */

static char sock_path[108];
static struct guest_mem gmem;

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
	c.timeout_ms = TIMEOUT_MS;
	c.connect_timeout_ms = 2000;
	return c;
}

static int setup(void **state)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/wisp-unit-state-%d.sock",
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

/* ---- End to end: the real server library with a fake device ---------- */

struct dev {
	atomic_int held, saves, resumes, loads;
	uint8_t loaded[64];
	size_t loaded_len;
};

static int d_save(void *o, uint8_t *buf, size_t cap, struct err *e)
{
	struct dev *d = o;
	int n = snprintf((char *)buf, cap, "state-%d", ++d->saves);

	d->held = 1;
	return n;
}

static void d_resume(void *o)
{
	struct dev *d = o;

	d->held = 0;
	d->resumes++;
}

static int d_load(void *o, const uint8_t *buf, size_t len, struct err *e)
{
	struct dev *d = o;

	if (len == 3 && !memcmp(buf, "bad", 3))
		return err_config(e, -EINVAL, "unit: queue 0 outside RAM");
	/* Longer than the protocol's bound: sent cut, not refused. */
	if (len == 4 && !memcmp(buf, "long", 4))
		return err_config(e, -EINVAL, "unit: %0400d", 7);
	if (len > sizeof(d->loaded))
		return -E2BIG;
	memcpy(d->loaded, buf, len);
	d->loaded_len = len;
	d->loads++;
	return 0;
}

struct srv {
	int lfd;
	uint32_t features;
	bool hooks;
	struct dev dev;
	struct wisp_ioreq_server *s;
	int serve_ret;
	char msg[640];
};

static void w_read(void *o, int cpu, uint64_t off, uint8_t *d, uint32_t len)
{
	memset(d, 0, len);
}

static const struct bus_ops win_ops = { w_read, NULL };

static void *server_thread(void *arg)
{
	struct srv *v = arg;
	struct err e = { 0 };

	v->serve_ret =
		wisp_ioreq_accept(v->lfd, "unit", v->features, &v->s, &e);
	if (!v->serve_ret)
		v->serve_ret = wisp_ioreq_map_range(
			v->s, WIN, 0x100, IOREQ_RANGE_SYNC, &win_ops, NULL, &e);
	if (!v->serve_ret && v->hooks) {
		v->s->state_save = d_save;
		v->s->state_resume = d_resume;
		v->s->state_load = d_load;
		v->s->hook_opaque = &v->dev;
	}
	if (!v->serve_ret)
		v->serve_ret = wisp_ioreq_ready(v->s, &e);
	if (!v->serve_ret)
		v->serve_ret = wisp_ioreq_serve(v->s, &e);
	snprintf(v->msg, sizeof(v->msg), "%s", e.msg);
	return NULL;
}

static struct ioreq_client *start(struct srv *v, pthread_t *th, int irq)
{
	struct ioreq_client_config cfg = client_cfg(irq);
	struct ioreq_client *c = NULL;
	struct err e = { 0 };

	v->lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(v->lfd >= 0);
	assert_int_equal(pthread_create(th, NULL, server_thread, v), 0);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	return c;
}

static void stop(struct srv *v, struct ioreq_client *c, pthread_t th)
{
	ioreq_client_destroy(c);
	pthread_join(th, NULL);
	wisp_ioreq_close(v->s);
	close(v->lfd);
}

static void test_end_to_end(void **state)
{
	struct srv v = { .features = IOREQ_F_ALL, .hooks = true };
	struct ioreq_client *c;
	struct err e = { 0 };
	uint8_t *st = NULL;
	size_t len = 0;
	pthread_t th;
	int irq = eventfd(0, EFD_CLOEXEC);

	c = start(&v, &th, irq);
	assert_true(ioreq_client_has_state(c));
	/* Saved: the device is held until the resume. */
	assert_int_equal(ioreq_client_state_save(c, &st, &len, &e), 0);
	assert_int_equal(len, 7);
	assert_memory_equal(st, "state-1", 7);
	free(st);
	assert_int_equal(v.dev.held, 1);
	/* A second save or a load while held is refused, the server kept. */
	assert_int_equal(ioreq_client_state_save(c, &st, &len, &e), -EBUSY);
	assert_null(st);
	assert_non_null(strstr(e.msg, "held"));
	assert_int_equal(ioreq_client_state_load(c, (const uint8_t *)"x", 1,
						 &e),
			 -EBUSY);
	assert_int_equal(ioreq_client_state_resume(c, &e), 0);
	assert_int_equal(v.dev.held, 0);
	assert_int_equal(v.dev.resumes, 1);
	/* Loaded, then one the device refuses: its message comes back. */
	assert_int_equal(ioreq_client_state_load(c, (const uint8_t *)"state-1",
						 7, &e),
			 0);
	assert_int_equal(v.dev.loads, 1);
	assert_memory_equal(v.dev.loaded, "state-1", 7);
	e = (struct err){ 0 };
	assert_int_equal(ioreq_client_state_load(c, (const uint8_t *)"bad", 3,
						 &e),
			 -EINVAL);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_non_null(strstr(e.msg, "queue 0 outside RAM"));
	assert_true(ioreq_client_attached(c));
	e = (struct err){ 0 };
	assert_int_equal(ioreq_client_state_load(c, (const uint8_t *)"long", 4,
						 &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "unit: 0000"));
	assert_null(strstr(e.msg, "7"));
	assert_true(ioreq_client_has_state(c));
	/* Too large to send: refused here, nothing sent. */
	st = calloc(1, IOREQ_MAX_STATE + 1);
	assert_int_equal(ioreq_client_state_load(c, st, IOREQ_MAX_STATE + 1,
						 &e),
			 -E2BIG);
	free(st);
	/* Held at the VMM's goodbye: serve() lets the device run again. */
	assert_int_equal(ioreq_client_state_save(c, &st, &len, &e), 0);
	free(st);
	stop(&v, c, th);
	assert_int_equal(v.serve_ret, 0);
	assert_int_equal(v.dev.held, 0);
	close(irq);
}

/* The feature without hooks: the requests are refused, not faked. */
static void test_no_hooks(void **state)
{
	struct srv v = { .features = IOREQ_F_ALL };
	struct ioreq_client *c;
	struct err e = { 0 };
	uint8_t *st = NULL;
	size_t len;
	pthread_t th;
	int irq = eventfd(0, EFD_CLOEXEC);

	c = start(&v, &th, irq);
	assert_true(ioreq_client_has_state(c));
	assert_int_equal(ioreq_client_state_save(c, &st, &len, &e), -ENOTSUP);
	assert_int_equal(ioreq_client_state_load(c, (const uint8_t *)"x", 1,
						 &e),
			 -ENOTSUP);
	assert_true(ioreq_client_attached(c));
	stop(&v, c, th);
	close(irq);
}

/* A server that does not ask for IOREQ_F_STATE gets no channel. */
static void test_without_feature(void **state)
{
	struct srv v = { .features = IOREQ_F_ALL & ~IOREQ_F_STATE,
			 .hooks = true };
	struct ioreq_client *c;
	struct err e = { 0 };
	uint8_t *st = NULL;
	size_t len;
	pthread_t th;
	int irq = eventfd(0, EFD_CLOEXEC);

	c = start(&v, &th, irq);
	assert_false(ioreq_client_has_state(c));
	assert_int_equal(ioreq_client_state_save(c, &st, &len, &e), -ENOTSUP);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_non_null(strstr(e.msg, "IOREQ_F_STATE"));
	assert_int_equal(v.s->state_sock, -1);
	stop(&v, c, th);
	close(irq);
}

/* A hostile VMM: malformed requests on the state channel end serve()
 * with -EPROTO and a message. */
static void hostile_vmm(const void *msg, size_t len, const char *says)
{
	struct srv v = { .features = IOREQ_F_ALL, .hooks = true };
	struct ioreq_client *c;
	pthread_t th;
	int irq = eventfd(0, EFD_CLOEXEC);

	c = start(&v, &th, irq);
	assert_int_equal(ioreq_send(c->att->state_sock, msg, len, NULL, 0), 0);
	pthread_join(th, NULL);
	if (v.serve_ret != -EPROTO || !strstr(v.msg, says))
		fail_msg("serve() %d: '%s', want -EPROTO and '%s'", v.serve_ret,
			 v.msg, says);
	ioreq_client_destroy(c);
	wisp_ioreq_close(v.s);
	close(v.lfd);
	close(irq);
}

static void test_hostile_vmm(void **state)
{
	struct {
		struct ioreq_state_msg m;
		uint8_t p[8];
	} b = { 0 };

	/* A SAVE with a payload. */
	b.m.hdr = (struct ioreq_hdr){ IOREQ_MSG_STATE_SAVE, sizeof(b), 1, 0 };
	b.m.len = 8;
	hostile_vmm(&b, sizeof(b), "state message");
	/* A LOAD whose len is not the packet's. */
	b.m.hdr.type = IOREQ_MSG_STATE_LOAD;
	b.m.len = 100;
	hostile_vmm(&b, sizeof(b), "state message");
	/* A status from the VMM. */
	b.m.len = 8;
	b.m.status = -1;
	hostile_vmm(&b, sizeof(b), "state message");
	/* An answer's type, and a short packet. */
	b.m.status = 0;
	b.m.hdr.type = IOREQ_MSG_STATE;
	b.m.hdr.len = sizeof(b.m);
	b.m.len = 0;
	hostile_vmm(&b, sizeof(b.m), "unexpected state message");
	b.m.hdr = (struct ioreq_hdr){ IOREQ_MSG_STATE_SAVE, 16, 1, 0 };
	hostile_vmm(&b, 16, "state message");
}

/* ---- A hostile server: raw messages on the state channel ------------- */

enum mode {
	HS_WRONG_SEQ,
	HS_POSITIVE_STATUS,
	HS_LEN_MISMATCH,
	HS_UNTERMINATED,
	HS_FD,
	HS_SILENT,
};

struct fake {
	int lfd, ctl, chan;
	enum mode mode;
};

static void *fake_thread(void *arg)
{
	struct fake *f = arg;
	struct ioreq_hello h = { { IOREQ_MSG_HELLO, sizeof(h), 0, 0 },
				 IOREQ_MAGIC,
				 IOREQ_VERSION,
				 IOREQ_F_STATE,
				 0,
				 "fake" };
	union {
		struct ioreq_hdr hdr;
		struct ioreq_welcome w;
		uint8_t raw[IOREQ_MAX_MSG];
	} m;
	struct {
		struct ioreq_state_msg m;
		char p[16];
	} a = { 0 };
	int fds[IOREQ_MAX_FDS], nfds, n, s = accept(f->lfd, NULL, NULL);
	size_t alen = sizeof(a.m);

	f->ctl = s;
	f->chan = -1;
	if (s < 0)
		return NULL;
	ioreq_send(s, &h, sizeof(h), NULL, 0);
	n = ioreq_recv(s, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds, 2000);
	if (n != sizeof(m.w) || !(m.w.features & IOREQ_F_STATE))
		return NULL;
	f->chan = fds[--nfds];
	ioreq_close_fds(fds, nfds);
	n = ioreq_recv(s, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds, 2000);
	ioreq_close_fds(fds, nfds);
	m.hdr = (struct ioreq_hdr){ IOREQ_MSG_READY, sizeof(m.hdr), 1, 0 };
	ioreq_send(s, &m, sizeof(m.hdr), NULL, 0);
	n = ioreq_recv(f->chan, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds, 5000);
	if (n <= 0)
		return NULL;
	ioreq_close_fds(fds, nfds);
	a.m.hdr = (struct ioreq_hdr){ IOREQ_MSG_STATE, 0, m.hdr.seq, 0 };
	switch (f->mode) {
	case HS_WRONG_SEQ:
		a.m.hdr.seq++;
		break;
	case HS_POSITIVE_STATUS:
		a.m.status = 5;
		break;
	case HS_LEN_MISMATCH:
		a.m.len = 4000;
		alen += 4;
		break;
	case HS_UNTERMINATED:
		a.m.status = -EIO;
		a.m.len = 4;
		memcpy(a.p, "oops", 4);
		alen += 4;
		break;
	case HS_FD: {
		int efd = eventfd(0, EFD_CLOEXEC);

		a.m.hdr.len = (uint32_t)alen;
		ioreq_send(f->chan, &a, alen, &efd, 1);
		close(efd);
		return NULL;
	}
	case HS_SILENT:
		return NULL;
	}
	a.m.hdr.len = (uint32_t)alen;
	ioreq_send(f->chan, &a, alen, NULL, 0);
	return NULL;
}

static void hostile_server(enum mode mode, int want)
{
	struct fake f = { .mode = mode };
	struct ioreq_client_config cfg;
	struct ioreq_client *c = NULL;
	struct err e = { 0 };
	uint8_t *st = NULL;
	size_t len;
	pthread_t th;
	uint64_t t0;
	int irq = eventfd(0, EFD_CLOEXEC);

	f.lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(f.lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, fake_thread, &f), 0);
	cfg = client_cfg(irq);
	cfg.features = IOREQ_F_STATE;
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	t0 = now_ns();
	assert_int_equal(ioreq_client_state_save(c, &st, &len, &e), want);
	assert_null(st);
	assert_int_equal(e.cls, ERR_HOST);
	assert_non_null(strstr(e.msg, "fake"));
	/* Within the bound (5 x 200 ms), and cut off. */
	assert_true(now_ns() - t0 < 3000000000ull);
	assert_false(ioreq_client_has_state(c));
	pthread_join(th, NULL);
	ioreq_client_destroy(c);
	if (f.chan >= 0)
		close(f.chan);
	if (f.ctl >= 0)
		close(f.ctl);
	close(f.lfd);
	close(irq);
}

static void test_hostile_server(void **state)
{
	hostile_server(HS_WRONG_SEQ, -EPROTO);
	hostile_server(HS_POSITIVE_STATUS, -EPROTO);
	hostile_server(HS_LEN_MISMATCH, -EPROTO);
	hostile_server(HS_UNTERMINATED, -EPROTO);
	hostile_server(HS_FD, -EPROTO);
	hostile_server(HS_SILENT, -ETIMEDOUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_end_to_end, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_hooks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_feature, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_vmm, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_server, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
