// SPDX-License-Identifier: MIT
/*
 * The IOREQ protocol's IOMMU feature (version 2, IOREQ_F_IOMMU): the VMM
 * side and libwisp-ioreq end to end in one process (the snapshot a
 * server starts from, map/unmap/reset confirmed by IOMMU_DONE, the
 * server translating, its faults reported back), version negotiation
 * (an old server is refused behind the IOMMU), and each side against a
 * hostile peer speaking raw messages: malformed, unexpected or missing
 * answers end in an error with a message within the bounds, never a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ioreq/client.h"
#include "ioreq/msg.h"
#include "ioreq/server.h"
#include "util/time.h"

#define WIN 0xd0000000ull
#define PAGE 0x1000ull

static char sock_path[108];
static struct guest_mem gmem;

/* ---- The VMM's IOMMU state, as the snapshot callback reports it ------- */

static struct {
	uint32_t mode;
	struct ioreq_iommu_map maps[4];
	uint32_t nr;
	uint64_t seq;
	int fail;
	/* Faults the server reported. */
	int faults;
	uint64_t fault_iova;
	uint32_t fault_flags;
} vmm;

static int snap(void *opaque, uint32_t *mode, struct ioreq_iommu_map **maps,
		uint32_t *nr, uint64_t *seq)
{
	if (vmm.fail)
		return vmm.fail;
	*mode = vmm.mode;
	*nr = vmm.nr;
	*seq = vmm.seq;
	*maps = NULL;
	if (vmm.nr) {
		*maps = calloc(vmm.nr, sizeof(**maps));
		assert_non_null(*maps);
		memcpy(*maps, vmm.maps, sizeof(**maps) * vmm.nr);
	}
	return 0;
}

static void on_fault(void *opaque, uint64_t iova, uint32_t flags)
{
	vmm.faults++;
	vmm.fault_iova = iova;
	vmm.fault_flags = flags;
}

static struct ioreq_client_config client_cfg(int irq, bool iommu)
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
	c.timeout_ms = 400;
	c.connect_timeout_ms = 2000;
	if (iommu)
		c.iommu = (struct ioreq_iommu_host){ snap, on_fault, NULL };
	return c;
}

static int setup(void **state)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/wisp-unit-iommu-%d.sock",
		 (int)getpid());
	assert_int_equal(guest_mem_init(&gmem, 4 << 20, NULL), 0);
	memset(&vmm, 0, sizeof(vmm));
	return 0;
}

static int teardown(void **state)
{
	guest_mem_destroy(&gmem);
	unlink(sock_path);
	return 0;
}

/* ---- End to end: the real server library in a thread ------------------ */

struct srv {
	int lfd;
	uint32_t features;
	struct wisp_ioreq_server *s;
	atomic_bool ready;
	int serve_ret;
	char msg[640];
};

static void w_read(void *o, int cpu, uint64_t off, uint8_t *d, uint32_t len)
{
	memset(d, 0, len);
}

static void w_write(void *o, int cpu, uint64_t off, const uint8_t *d,
		    uint32_t len)
{
}

static const struct bus_ops win_ops = { w_read, w_write };

static void *server_thread(void *arg)
{
	struct srv *v = arg;
	struct err e = { 0 };

	v->serve_ret =
		wisp_ioreq_accept(v->lfd, "unit", v->features, &v->s, &e);
	if (!v->serve_ret)
		v->serve_ret = wisp_ioreq_map_range(
			v->s, WIN, 0x100, IOREQ_RANGE_SYNC, &win_ops, NULL, &e);
	if (!v->serve_ret)
		v->serve_ret = wisp_ioreq_ready(v->s, &e);
	atomic_store(&v->ready, true);
	if (!v->serve_ret)
		v->serve_ret = wisp_ioreq_serve(v->s, &e);
	snprintf(v->msg, sizeof(v->msg), "%s", e.msg);
	return NULL;
}

static int srv_xlate(struct srv *v, uint64_t iova, uint64_t len, bool w,
		     uint64_t *gpa, uint64_t *plen)
{
	uint64_t g = 0, n = 0;
	int r = wisp_ioreq_translate(v->s, 0, iova, len, w, &g, &n);

	if (gpa)
		*gpa = g;
	if (plen)
		*plen = n;
	return r;
}

struct inflight_unmap {
	struct ioreq_client *c;
	int ret;
	atomic_bool done;
};

static void *unmap_thread(void *arg)
{
	struct inflight_unmap *u = arg;

	u->ret = ioreq_client_iommu_unmap(u->c, 10, 0x20000, 0x20fff);
	atomic_store(&u->done, true);
	return NULL;
}

static void test_end_to_end(void **state)
{
	struct srv v = { .features = IOREQ_F_ALL };
	struct ioreq_client_config cfg;
	struct ioreq_client *c;
	struct wisp_ioreq_iommu_stats st;
	struct inflight_unmap u = { 0 };
	pthread_t th, ut;
	uint64_t gpa, n;
	struct err e;
	int irq = eventfd(0, EFD_CLOEXEC), tok;

	/* The VMM's endpoint: translated, two mappings, change 5. */
	vmm.mode = IOREQ_IOMMU_TRANSLATE;
	vmm.nr = 2;
	vmm.maps[0] = (struct ioreq_iommu_map){ .iova = 0x10000,
						.last = 0x11fff,
						.gpa = 0x200000,
						.perm = IOREQ_IOMMU_READ |
							IOREQ_IOMMU_WRITE };
	vmm.maps[1] = (struct ioreq_iommu_map){ .iova = 0x20000,
						.last = 0x20fff,
						.gpa = 0x300000,
						.perm = IOREQ_IOMMU_READ };
	vmm.seq = 5;
	v.lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(v.lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, server_thread, &v), 0);
	cfg = client_cfg(irq, true);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	while (!atomic_load(&v.ready))
		usleep(1000);
	assert_true(wisp_ioreq_iommu(v.s));

	/* The server started from the snapshot. */
	assert_int_equal(srv_xlate(&v, 0x10010, 16, true, &gpa, &n), 0);
	assert_int_equal(gpa, 0x200010);
	assert_int_equal(n, 16);
	/* A range running past its mapping: the first piece. */
	assert_int_equal(srv_xlate(&v, 0x11ff0, 0x40, false, &gpa, &n), 0);
	assert_int_equal(n, 0x10);
	/* Read-only: a write is refused and reported to the VMM. */
	assert_int_equal(srv_xlate(&v, 0x20000, 4, true, NULL, NULL), -EFAULT);
	for (int i = 0; i < 200 && !vmm.faults; i++) {
		struct pollfd p = { ioreq_client_fd(c), POLLIN, 0 };

		if (poll(&p, 1, 10) > 0)
			ioreq_client_handle_event(c);
	}
	assert_int_equal(vmm.faults, 1);
	assert_int_equal(vmm.fault_iova, 0x20000);
	assert_int_equal(vmm.fault_flags, IOREQ_IOMMU_WRITE);
	assert_true(ioreq_client_attached(c));

	/* A change the snapshot already holds is not sent again. */
	assert_int_equal(ioreq_client_iommu_unmap(c, 5, 0x10000, 0x11fff), 0);
	assert_int_equal(srv_xlate(&v, 0x10010, 16, true, NULL, NULL), 0);
	/* New changes are applied before the call returns. */
	assert_int_equal(ioreq_client_iommu_map(c, 6, 0x40000, 0x40fff,
						0x100000, IOREQ_IOMMU_WRITE),
			 0);
	assert_int_equal(srv_xlate(&v, 0x40008, 8, true, &gpa, NULL), 0);
	assert_int_equal(gpa, 0x100008);
	/* The server's own checks: an overlap and an unaligned range are
	 * refused with its errno. */
	assert_int_equal(ioreq_client_iommu_map(c, 7, 0x40000, 0x40fff,
						0x100000, IOREQ_IOMMU_READ),
			 -EEXIST);
	assert_int_equal(ioreq_client_iommu_map(c, 8, 0x50010, 0x50fff,
						0x100000, IOREQ_IOMMU_READ),
			 -EINVAL);
	/* Splitting a mapping: refused, nothing removed. */
	assert_int_equal(ioreq_client_iommu_unmap(c, 9, 0x10000, 0x10fff),
			 -ERANGE);
	assert_int_equal(srv_xlate(&v, 0x10010, 16, true, NULL, NULL), 0);

	/* A request of the server's device in flight holds the UNMAP's
	 * answer, so the VMM's call (and the guest's UNMAP) waits. */
	tok = wisp_ioreq_dma_begin(v.s);
	assert_int_equal(wisp_ioreq_translate(v.s, tok, 0x20010, 16, false,
					      &gpa, &n),
			 0);
	u.c = c;
	assert_int_equal(pthread_create(&ut, NULL, unmap_thread, &u), 0);
	usleep(150000);
	assert_false(atomic_load(&u.done));
	assert_int_equal(srv_xlate(&v, 0x20000, 4, false, NULL, NULL), -EFAULT);
	wisp_ioreq_dma_end(v.s, tok);
	pthread_join(ut, NULL);
	assert_int_equal(u.ret, 0);

	/* Reset to bypass: identity; to block: nothing. */
	assert_int_equal(ioreq_client_iommu_reset(c, 11, IOREQ_IOMMU_BYPASS),
			 0);
	assert_int_equal(srv_xlate(&v, 0x123000, 8, true, &gpa, NULL), 0);
	assert_int_equal(gpa, 0x123000);
	assert_int_equal(ioreq_client_iommu_reset(c, 12, IOREQ_IOMMU_BLOCK), 0);
	assert_int_equal(srv_xlate(&v, 0x123000, 8, true, NULL, NULL), -EFAULT);
	wisp_ioreq_iommu_stats(v.s, &st);
	assert_int_equal(st.mappings, 0);
	assert_true(st.maps >= 3);
	/* The write to the read-only page, the unmapped read, the read
	 * while blocked. */
	assert_int_equal(st.faults, 3);

	ioreq_client_destroy(c);
	pthread_join(th, NULL);
	assert_int_equal(v.serve_ret, 0);
	wisp_ioreq_close(v.s);
	close(v.lfd);
	close(irq);
}

/* A server whose device has a request stuck: its DONE says -ETIMEDOUT
 * after its 1 s bound (below the VMM's), the VMM's call returns it and
 * the server stays attached (it answered). */
static void test_server_drain_timeout(void **state)
{
	struct srv v = { .features = IOREQ_F_ALL };
	struct ioreq_client_config cfg;
	struct ioreq_client *c;
	pthread_t th;
	struct err e;
	uint64_t t0;
	int irq = eventfd(0, EFD_CLOEXEC);

	vmm.mode = IOREQ_IOMMU_TRANSLATE;
	vmm.nr = 1;
	vmm.maps[0] = (struct ioreq_iommu_map){
		.iova = 0x10000, .last = 0x10fff, .gpa = 0x200000, .perm = 1
	};
	v.lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(v.lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, server_thread, &v), 0);
	cfg = client_cfg(irq, true);
	cfg.timeout_ms = 3000;
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	while (!atomic_load(&v.ready))
		usleep(1000);
	{
		uint64_t gpa, n;
		int tok = wisp_ioreq_dma_begin(v.s); /* never ended */

		assert_int_equal(wisp_ioreq_translate(v.s, tok, 0x10000, 8,
						      false, &gpa, &n),
				 0);
	}
	t0 = now_ns();
	assert_int_equal(ioreq_client_iommu_unmap(c, 1, 0x10000, 0x10fff),
			 -ETIMEDOUT);
	assert_true(now_ns() - t0 >= 900000000ull);
	assert_true(ioreq_client_attached(c));
	ioreq_client_destroy(c);
	pthread_join(th, NULL);
	wisp_ioreq_close(v.s);
	close(v.lfd);
	close(irq);
}

/* A snapshot that fails (the VMM cannot say what the server must map)
 * fails the attach: a server that knows nothing must not serve. */
static void test_snapshot_failure(void **state)
{
	struct srv v = { .features = IOREQ_F_ALL };
	struct ioreq_client_config cfg;
	struct ioreq_client *c;
	pthread_t th;
	struct err e;
	int irq = eventfd(0, EFD_CLOEXEC);

	vmm.fail = -ENOMEM;
	v.lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(v.lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, server_thread, &v), 0);
	cfg = client_cfg(irq, true);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), -ENOMEM);
	assert_null(c);
	assert_non_null(strstr(e.msg, "IOMMU state"));
	pthread_join(th, NULL);
	wisp_ioreq_close(v.s);
	close(v.lfd);
	close(irq);
}

/* Without the IOMMU the feature is never granted, even to a server that
 * asks: translate() is then the identity. */
static void test_not_behind_iommu(void **state)
{
	struct srv v = { .features = IOREQ_F_ALL };
	struct ioreq_client_config cfg;
	struct ioreq_client *c;
	pthread_t th;
	uint64_t gpa, n;
	struct err e;
	int irq = eventfd(0, EFD_CLOEXEC);

	v.lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(v.lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, server_thread, &v), 0);
	cfg = client_cfg(irq, false);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	while (!atomic_load(&v.ready))
		usleep(1000);
	assert_false(wisp_ioreq_iommu(v.s));
	assert_int_equal(
		wisp_ioreq_translate(v.s, 0, 0x5000, 8, true, &gpa, &n), 0);
	assert_int_equal(gpa, 0x5000);
	assert_int_equal(n, 8);
	/* Nobody to tell. */
	assert_int_equal(ioreq_client_iommu_unmap(c, 1, 0, 0xfff), 0);
	ioreq_client_destroy(c);
	pthread_join(th, NULL);
	wisp_ioreq_close(v.s);
	close(v.lfd);
	close(irq);
}

/* ---- The VMM side against raw fake servers ---------------------------- */

enum fake_mode {
	FK_V1, /* a version-1 server (no IOMMU) */
	FK_NO_FEATURE, /* version 2 but does not ask for the IOMMU */
	FK_WRONG_SEQ, /* answers an IOMMU_* with another seq */
	FK_SILENT, /* never answers an IOMMU_* after the snapshot */
	FK_BAD_STATUS, /* a positive status */
	FK_FD_ON_DONE, /* an fd with its DONE */
	FK_BAD_FAULT, /* an IOMMU_FAULT with unknown flags */
	FK_SILENT_REPLAY, /* does not answer the snapshot's RESET */
};

struct fake {
	int lfd;
	enum fake_mode mode;
	int iommu_fds; /* fds seen in WELCOME beyond 3 + nr_vcpus */
	uint32_t welcome_version, welcome_features;
	int replay_msgs;
	int ctl, chan; /* kept open until the test ends */
};

static void fk_done(int chan, uint32_t seq, int32_t status, const int *fd)
{
	struct ioreq_iommu_done d = {
		{ IOREQ_MSG_IOMMU_DONE, sizeof(d), seq, 0 }, status, 0
	};

	ioreq_send(chan, &d, sizeof(d), fd, fd ? 1 : 0);
}

static void *fake_thread(void *arg)
{
	struct fake *f = arg;
	struct ioreq_hello h = { { IOREQ_MSG_HELLO, sizeof(h), 0, 0 },
				 IOREQ_MAGIC,
				 IOREQ_VERSION,
				 /* Only the IOMMU channel: this fake
				  * counts one fd past the slots. */
				 IOREQ_F_ALL & ~IOREQ_F_STATE,
				 0,
				 "fake" };
	union {
		struct ioreq_hdr hdr;
		struct ioreq_welcome w;
		uint8_t raw[IOREQ_MAX_MSG];
	} m;
	int fds[IOREQ_MAX_FDS], nfds, s = accept(f->lfd, NULL, NULL), n;

	f->ctl = s;
	f->chan = -1;
	if (s < 0)
		return NULL;
	if (f->mode == FK_V1)
		h.version = 1;
	if (f->mode == FK_NO_FEATURE)
		h.features &= ~IOREQ_F_IOMMU;
	ioreq_send(s, &h, sizeof(h), NULL, 0);
	n = ioreq_recv(s, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds, 2000);
	if (n != sizeof(m.w))
		return NULL;
	f->welcome_version = m.w.version;
	f->welcome_features = m.w.features;
	f->iommu_fds = nfds - 3 - (int)m.w.nr_vcpus;
	if (f->iommu_fds == 1) {
		f->chan = fds[nfds - 1];
		nfds--;
	}
	ioreq_close_fds(fds, nfds);
	n = ioreq_recv(s, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds, 2000);
	ioreq_close_fds(fds, nfds);
	m.hdr = (struct ioreq_hdr){ IOREQ_MSG_READY, sizeof(m.hdr), 1, 0 };
	ioreq_send(s, &m, sizeof(m.hdr), NULL, 0);
	if (f->chan < 0)
		return NULL;
	/* The snapshot: RESET, then the VMM's mappings. */
	for (;;) {
		n = ioreq_recv(f->chan, &m, sizeof(m), fds, IOREQ_MAX_FDS,
			       &nfds, 1000);
		if (n <= 0)
			return NULL;
		ioreq_close_fds(fds, nfds);
		f->replay_msgs++;
		if (f->mode == FK_SILENT_REPLAY)
			continue;
		fk_done(f->chan, m.hdr.seq, 0, NULL);
		if (f->replay_msgs == 1 + (int)vmm.nr)
			break;
	}
	if (f->mode == FK_BAD_FAULT) {
		struct ioreq_iommu_fault fl = { { IOREQ_MSG_IOMMU_FAULT,
						  sizeof(fl), 0, 0 },
						0x1000,
						0,
						0 };

		ioreq_send(s, &fl, sizeof(fl), NULL, 0);
	}
	/* One IOMMU_* from the test, answered as the mode says. */
	n = ioreq_recv(f->chan, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds, 3000);
	if (n <= 0)
		return NULL;
	ioreq_close_fds(fds, nfds);
	switch (f->mode) {
	case FK_WRONG_SEQ:
		fk_done(f->chan, m.hdr.seq + 1, 0, NULL);
		break;
	case FK_BAD_STATUS:
		fk_done(f->chan, m.hdr.seq, 5, NULL);
		break;
	case FK_FD_ON_DONE: {
		int efd = eventfd(0, EFD_CLOEXEC);

		fk_done(f->chan, m.hdr.seq, 0, &efd);
		close(efd);
		break;
	}
	case FK_SILENT:
	default:
		break;
	}
	return NULL;
}

static int fake_run(struct fake *f, struct ioreq_client **c, struct err *e,
		    pthread_t *th, int irq)
{
	struct ioreq_client_config cfg = client_cfg(irq, true);

	f->lfd = wisp_ioreq_listen(sock_path, e);
	assert_true(f->lfd >= 0);
	assert_int_equal(pthread_create(th, NULL, fake_thread, f), 0);
	return ioreq_client_create(&cfg, c, e);
}

static void fake_end(struct fake *f, struct ioreq_client *c, pthread_t th)
{
	ioreq_client_destroy(c);
	pthread_join(th, NULL);
	if (f->chan >= 0)
		close(f->chan);
	if (f->ctl >= 0)
		close(f->ctl);
	close(f->lfd);
}

/* Behind the IOMMU, a server that cannot translate is refused with a
 * config error naming the feature: a version-1 server and a version-2
 * one that does not ask for it. */
static void refused_case(enum fake_mode mode)
{
	struct fake f = { .mode = mode };
	struct ioreq_client *c = NULL;
	pthread_t th;
	struct err e = { 0 };
	int irq = eventfd(0, EFD_CLOEXEC);

	assert_int_equal(fake_run(&f, &c, &e, &th, irq), -EPROTONOSUPPORT);
	assert_null(c);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_non_null(strstr(e.msg, "IOREQ_F_IOMMU"));
	assert_non_null(strstr(e.msg, "refused"));
	fake_end(&f, NULL, th);
	close(irq);
}

static void test_refuse_v1_server(void **state)
{
	refused_case(FK_V1);
}

static void test_refuse_server_without_feature(void **state)
{
	refused_case(FK_NO_FEATURE);
}

/* Without the IOMMU a version-1 server is served at version 1, with no
 * IOMMU channel. */
static void test_v1_server_without_iommu(void **state)
{
	struct fake f = { .mode = FK_V1 };
	struct ioreq_client_config cfg;
	struct ioreq_client *c = NULL;
	pthread_t th;
	struct err e;
	int irq = eventfd(0, EFD_CLOEXEC);

	f.lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(f.lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, fake_thread, &f), 0);
	cfg = client_cfg(irq, false);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	pthread_join(th, NULL);
	assert_int_equal(f.welcome_version, 1);
	assert_int_equal(f.welcome_features & IOREQ_F_IOMMU, 0);
	assert_int_equal(f.iommu_fds, 0);
	ioreq_client_destroy(c);
	close(f.ctl);
	close(f.lfd);
	close(irq);
}

/* An answer that is not the DONE of the message sent, or none in time:
 * the call fails and the server is cut off (the window goes to the
 * stand-in: the VM keeps running). */
static void cut_off_case(enum fake_mode mode, int want)
{
	struct fake f = { .mode = mode };
	struct ioreq_client *c = NULL;
	pthread_t th;
	struct err e;
	uint64_t t0;
	int irq = eventfd(0, EFD_CLOEXEC);

	vmm.mode = IOREQ_IOMMU_TRANSLATE;
	vmm.nr = 1;
	vmm.maps[0] = (struct ioreq_iommu_map){
		.iova = 0x10000, .last = 0x10fff, .gpa = 0x200000, .perm = 3
	};
	vmm.seq = 1;
	assert_int_equal(fake_run(&f, &c, &e, &th, irq), 0);
	assert_int_equal(f.welcome_version, IOREQ_VERSION);
	assert_true(f.welcome_features & IOREQ_F_IOMMU);
	assert_int_equal(f.iommu_fds, 1);
	t0 = now_ns();
	assert_int_equal(ioreq_client_iommu_unmap(c, 2, 0x10000, 0x10fff),
			 want);
	/* Bounded by timeout_ms (400). */
	assert_true(now_ns() - t0 < 1500000000ull);
	assert_false(ioreq_client_attached(c));
	pthread_join(th, NULL);
	assert_int_equal(f.replay_msgs, 2);
	/* Later changes find no server to tell. */
	assert_int_equal(ioreq_client_iommu_map(c, 3, 0, 0xfff, 0, 1), 0);
	fake_end(&f, c, th);
	close(irq);
}

static void test_wrong_seq_cuts_off(void **state)
{
	cut_off_case(FK_WRONG_SEQ, -EPROTO);
}

static void test_silent_server_cut_off(void **state)
{
	cut_off_case(FK_SILENT, -ETIMEDOUT);
}

static void test_bad_status_cuts_off(void **state)
{
	cut_off_case(FK_BAD_STATUS, -EPROTO);
}

static void test_fd_on_done_cuts_off(void **state)
{
	cut_off_case(FK_FD_ON_DONE, -EPROTO);
}

/* The snapshot is never confirmed: the attach fails within its bound. */
static void test_silent_replay(void **state)
{
	struct fake f = { .mode = FK_SILENT_REPLAY };
	struct ioreq_client *c = NULL;
	pthread_t th;
	struct err e;
	uint64_t t0 = now_ns();
	int irq = eventfd(0, EFD_CLOEXEC);

	vmm.mode = IOREQ_IOMMU_BLOCK;
	assert_int_equal(fake_run(&f, &c, &e, &th, irq), -ETIMEDOUT);
	assert_null(c);
	assert_non_null(strstr(e.msg, "IOMMU state"));
	assert_true(now_ns() - t0 < 4000000000ull);
	fake_end(&f, NULL, th);
	close(irq);
}

/* A malformed IOMMU_FAULT on the control socket detaches the server. */
static void test_bad_fault_detaches(void **state)
{
	struct fake f = { .mode = FK_BAD_FAULT };
	struct ioreq_client *c = NULL;
	pthread_t th;
	struct err e;
	int irq = eventfd(0, EFD_CLOEXEC);

	vmm.mode = IOREQ_IOMMU_BLOCK;
	assert_int_equal(fake_run(&f, &c, &e, &th, irq), 0);
	for (int i = 0; i < 200 && ioreq_client_attached(c); i++) {
		struct pollfd p = { ioreq_client_fd(c), POLLIN, 0 };

		if (poll(&p, 1, 10) > 0)
			ioreq_client_handle_event(c);
	}
	assert_false(ioreq_client_attached(c));
	assert_int_equal(vmm.faults, 0);
	fake_end(&f, c, th);
	close(irq);
}

/* ---- The server library against a raw fake VMM ----------------------- */

enum vmm_mode {
	VM_OK, /* a correct WELCOME with the IOMMU channel */
	VM_V1_WITH_IOMMU, /* version 1 granting the IOMMU */
	VM_NO_CHANNEL, /* the IOMMU granted, no extra fd */
	VM_CHANNEL_EVENTFD, /* an eventfd as the channel */
	VM_CHANNEL_STREAM, /* a SOCK_STREAM socket as the channel */
	VM_V1_PLAIN, /* version 1 without the IOMMU: fine */
	VM_STATE_EVENTFD, /* a good IOMMU channel, an eventfd as the state
			   * channel */
};

struct fvmm {
	int ctl, chan; /* the VMM's ends */
	struct wisp_ioreq_server *s;
	int ret;
	char msg[640];
	atomic_bool served;
	int serve_ret;
	char serve_msg[640];
};

static int sealed_memfd(uint64_t size)
{
	int fd = memfd_create("fake", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW),
			 0);
	return fd;
}

/* Runs the handshake of wisp_ioreq_handshake() against mode; on success
 * v->s serves in a thread. */
static void *serve_thread(void *arg)
{
	struct fvmm *v = arg;
	struct err e = { 0 };

	v->serve_ret = wisp_ioreq_serve(v->s, &e);
	snprintf(v->serve_msg, sizeof(v->serve_msg), "%s", e.msg);
	atomic_store(&v->served, true);
	return NULL;
}

struct hs_arg {
	int sock;
	struct fvmm *v;
};

static void *handshake_thread(void *arg)
{
	struct hs_arg *a = arg;
	struct err e = { 0 };

	a->v->ret = wisp_ioreq_handshake(a->sock, "unit", IOREQ_F_ALL, &a->v->s,
					 &e);
	snprintf(a->v->msg, sizeof(a->v->msg), "%s", e.msg);
	return NULL;
}

static void fake_vmm_handshake(struct fvmm *v, enum vmm_mode mode)
{
	struct ioreq_welcome w = { .hdr = { IOREQ_MSG_WELCOME, sizeof(w), 0,
					    0 } };
	struct ioreq_mem_map m = { .hdr = { IOREQ_MSG_MEM_MAP, sizeof(m), 0,
					    0 } };
	struct ioreq_hello h;
	struct hs_arg a;
	pthread_t th;
	int sv[2], ch[2], fds[IOREQ_MAX_FDS], nfds, shm, ram;

	assert_int_equal(
		socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	v->ctl = sv[0];
	v->chan = -1;
	a = (struct hs_arg){ sv[1], v };
	assert_int_equal(pthread_create(&th, NULL, handshake_thread, &a), 0);
	assert_int_equal(ioreq_recv(v->ctl, &h, sizeof(h), fds, IOREQ_MAX_FDS,
				    &nfds, 2000),
			 (int)sizeof(h));
	assert_int_equal(h.version, IOREQ_VERSION);
	assert_true(h.features & IOREQ_F_IOMMU);
	shm = sealed_memfd(4096);
	ram = sealed_memfd(1 << 20);
	w.magic = IOREQ_MAGIC;
	w.version = mode == VM_V1_WITH_IOMMU || mode == VM_V1_PLAIN ? 1 : 2;
	w.features = mode == VM_V1_PLAIN      ? 0 :
		     mode == VM_STATE_EVENTFD ? IOREQ_F_IOMMU | IOREQ_F_STATE :
						IOREQ_F_IOMMU;
	w.nr_vcpus = 1;
	w.shared_size = 4096;
	w.window_base = WIN;
	w.window_size = 0x1000;
	fds[0] = shm;
	fds[1] = eventfd(0, EFD_CLOEXEC);
	fds[2] = eventfd(0, EFD_CLOEXEC);
	fds[3] = eventfd(0, EFD_CLOEXEC);
	nfds = 4;
	switch (mode) {
	case VM_OK:
	case VM_V1_WITH_IOMMU:
	case VM_STATE_EVENTFD:
		assert_int_equal(socketpair(AF_UNIX,
					    SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
					    ch),
				 0);
		v->chan = ch[0];
		fds[nfds++] = ch[1];
		if (mode == VM_STATE_EVENTFD)
			fds[nfds++] = eventfd(0, EFD_CLOEXEC);
		break;
	case VM_CHANNEL_EVENTFD:
		ch[1] = eventfd(0, EFD_CLOEXEC);
		fds[nfds++] = ch[1];
		break;
	case VM_CHANNEL_STREAM:
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, ch),
				 0);
		v->chan = ch[0];
		fds[nfds++] = ch[1];
		break;
	default:
		break;
	}
	ioreq_send(v->ctl, &w, sizeof(w), fds, nfds);
	for (int i = 1; i < nfds; i++)
		close(fds[i]);
	m.generation = 1;
	m.nr_regions = 1;
	m.regions[0] = (struct ioreq_mem_region){ 0, 1 << 20, 0 };
	ioreq_send(v->ctl, &m, sizeof(m), &ram, 1);
	close(ram);
	close(shm);
	pthread_join(th, NULL);
}

static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* A refused WELCOME: the server names the cause and keeps none of the
 * fds it was sent. */
static void handshake_refused(enum vmm_mode mode, const char *why)
{
	struct fvmm v = { 0 };
	int before = open_fds();

	fake_vmm_handshake(&v, mode);
	assert_int_equal(v.ret, -EPROTO);
	assert_null(v.s);
	if (!strstr(v.msg, why))
		fail_msg("message '%s' does not name '%s'", v.msg, why);
	close(v.ctl);
	if (v.chan >= 0)
		close(v.chan);
	assert_int_equal(open_fds(), before);
}

static void test_server_refuses_v1_iommu(void **state)
{
	handshake_refused(VM_V1_WITH_IOMMU, "version 1 grants the IOMMU");
}

static void test_server_refuses_missing_channel(void **state)
{
	handshake_refused(VM_NO_CHANNEL, "WELCOME for 1 vCPUs with 4 fds");
}

static void test_server_refuses_bad_channel(void **state)
{
	handshake_refused(VM_CHANNEL_EVENTFD, "SOCK_SEQPACKET");
	handshake_refused(VM_CHANNEL_STREAM, "SOCK_SEQPACKET");
	/* fuzz_ioreq_server, regress-state-channel-leak: the IOMMU
	 * channel leaked when the state channel was refused. */
	handshake_refused(VM_STATE_EVENTFD, "state channel is not");
}

static void test_server_v1_plain(void **state)
{
	struct fvmm v = { 0 };

	fake_vmm_handshake(&v, VM_V1_PLAIN);
	assert_int_equal(v.ret, 0);
	assert_false(wisp_ioreq_iommu(v.s));
	wisp_ioreq_close(v.s);
	close(v.ctl);
}

/* Starts serving after a good handshake. */
static void serving(struct fvmm *v, pthread_t *th)
{
	fake_vmm_handshake(v, VM_OK);
	assert_int_equal(v->ret, 0);
	assert_true(wisp_ioreq_iommu(v->s));
	assert_int_equal(pthread_create(th, NULL, serve_thread, v), 0);
}

static int32_t ask(struct fvmm *v, void *msg, size_t len, uint32_t seq)
{
	union {
		struct ioreq_hdr hdr;
		struct ioreq_iommu_done d;
		uint8_t raw[IOREQ_MAX_MSG];
	} r;
	struct ioreq_hdr *h = msg;
	int fds[IOREQ_MAX_FDS], nfds;

	h->len = (uint32_t)len;
	h->seq = seq;
	assert_int_equal(ioreq_send(v->chan, msg, len, NULL, 0), 0);
	assert_int_equal(ioreq_recv(v->chan, &r, sizeof(r), fds, IOREQ_MAX_FDS,
				    &nfds, 3000),
			 (int)sizeof(r.d));
	assert_int_equal(nfds, 0);
	assert_int_equal(r.hdr.type, IOREQ_MSG_IOMMU_DONE);
	assert_int_equal(r.hdr.seq, seq);
	return r.d.status;
}

/* Every field of an IOMMU_* checked by the server itself: the VMM is not
 * trusted either. */
static void test_server_hostile_fields(void **state)
{
	struct fvmm v = { 0 };
	struct ioreq_iommu_map m = { .hdr.type = IOREQ_MSG_IOMMU_MAP };
	struct ioreq_iommu_unmap u = { .hdr.type = IOREQ_MSG_IOMMU_UNMAP };
	struct ioreq_iommu_reset r = { .hdr.type = IOREQ_MSG_IOMMU_RESET };
	pthread_t th;

	serving(&v, &th);
	/* Blocked at first: MAP needs a translated table. */
	m.iova = 0x10000, m.last = 0x10fff, m.gpa = 0x2000, m.perm = 3;
	assert_int_equal(ask(&v, &m, sizeof(m), 1), -EINVAL);
	r.mode = IOREQ_IOMMU_TRANSLATE;
	assert_int_equal(ask(&v, &r, sizeof(r), 2), 0);
	assert_int_equal(ask(&v, &m, sizeof(m), 3), 0);
	/* Overlap, bad perm, reserved, reversed, unaligned, wrapping. */
	assert_int_equal(ask(&v, &m, sizeof(m), 4), -EEXIST);
	m.iova = 0x20000, m.last = 0x20fff, m.perm = 4;
	assert_int_equal(ask(&v, &m, sizeof(m), 5), -EINVAL);
	m.perm = 1, m.reserved = 1;
	assert_int_equal(ask(&v, &m, sizeof(m), 6), -EINVAL);
	m.reserved = 0, m.last = 0x1ffff;
	assert_int_equal(ask(&v, &m, sizeof(m), 7), -EINVAL);
	m.last = 0x20ffe;
	assert_int_equal(ask(&v, &m, sizeof(m), 8), -EINVAL);
	m.last = 0x20fff, m.gpa = 0x2001;
	assert_int_equal(ask(&v, &m, sizeof(m), 9), -EINVAL);
	/* The top page of the IOVA space is a valid mapping, translated
	 * without overflow at 2^64 ... */
	m.iova = 0xfffffffffffff000ull, m.last = UINT64_MAX, m.gpa = 0x3000;
	assert_int_equal(ask(&v, &m, sizeof(m), 10), 0);
	{
		uint64_t gpa, n;

		assert_int_equal(wisp_ioreq_translate(v.s, 0,
						      0xffffffffffffff00ull,
						      0x100, false, &gpa, &n),
				 0);
		assert_int_equal(gpa, 0x3f00);
		assert_int_equal(n, 0x100);
	}
	/* ... a GPA range that wraps is not. */
	m.iova = 0x20000, m.last = 0x21fff, m.gpa = 0xfffffffffffff000ull;
	assert_int_equal(ask(&v, &m, sizeof(m), 11), -EINVAL);
	/* UNMAP reversed, splitting; RESET with an unknown mode. */
	u.iova = 0x10fff, u.last = 0x10000;
	assert_int_equal(ask(&v, &u, sizeof(u), 12), -EINVAL);
	u.iova = 0x10000, u.last = 0x107ff;
	assert_int_equal(ask(&v, &u, sizeof(u), 13), -ERANGE);
	r.mode = 3;
	assert_int_equal(ask(&v, &r, sizeof(r), 14), -EINVAL);
	r.mode = IOREQ_IOMMU_BLOCK, r.reserved = 9;
	assert_int_equal(ask(&v, &r, sizeof(r), 15), -EINVAL);
	/* The table survived all of it. */
	{
		uint64_t gpa, n;

		assert_int_equal(wisp_ioreq_translate(v.s, 0, 0x10008, 8, false,
						      &gpa, &n),
				 0);
		assert_int_equal(gpa, 0x2008);
	}
	/* The VMM hangs up the channel: serving ends without an error. */
	close(v.chan);
	pthread_join(th, NULL);
	assert_int_equal(v.serve_ret, 0);
	wisp_ioreq_close(v.s);
	close(v.ctl);
}

/* Framing errors on the channel end serving with a protocol error. */
static void framing_case(const void *msg, size_t len, bool with_fd,
			 const char *why)
{
	struct fvmm v = { 0 };
	pthread_t th;
	int efd = eventfd(0, EFD_CLOEXEC);

	serving(&v, &th);
	assert_int_equal(ioreq_send(v.chan, msg, len, with_fd ? &efd : NULL,
				    with_fd ? 1 : 0),
			 0);
	pthread_join(th, NULL);
	assert_int_equal(v.serve_ret, -EPROTO);
	if (!strstr(v.serve_msg, why))
		fail_msg("message '%s' does not name '%s'", v.serve_msg, why);
	wisp_ioreq_close(v.s);
	close(v.ctl);
	close(v.chan);
	close(efd);
}

static void test_server_framing(void **state)
{
	struct ioreq_iommu_map m = { .hdr = { IOREQ_MSG_IOMMU_MAP, sizeof(m), 1,
					      0 } };
	struct ioreq_iommu_unmap u = { .hdr = { IOREQ_MSG_IOMMU_UNMAP, 24, 1,
						0 } };
	struct ioreq_hdr h = { 99, sizeof(h), 1, 0 };
	struct ioreq_hdr done = { IOREQ_MSG_IOMMU_DONE, sizeof(done), 1, 0 };

	framing_case(&m, sizeof(m), true, "with 1 fds");
	/* A header whose len is not the packet's: malformed. */
	framing_case(&u, sizeof(u), false, "IOMMU channel");
	u.hdr.len = 24;
	framing_case(&u, 24, false, "of 24 bytes");
	framing_case(&h, sizeof(h), false, "unexpected IOMMU message 99");
	framing_case(&done, sizeof(done), false, "unexpected IOMMU message 7");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_end_to_end, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_server_drain_timeout,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_failure, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_not_behind_iommu, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refuse_v1_server, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_refuse_server_without_feature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1_server_without_iommu,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_seq_cuts_off, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_silent_server_cut_off,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_status_cuts_off, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fd_on_done_cuts_off, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_silent_replay, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_fault_detaches, setup,
						teardown),
		cmocka_unit_test(test_server_refuses_v1_iommu),
		cmocka_unit_test(test_server_refuses_missing_channel),
		cmocka_unit_test(test_server_refuses_bad_channel),
		cmocka_unit_test(test_server_v1_plain),
		cmocka_unit_test(test_server_hostile_fields),
		cmocka_unit_test(test_server_framing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
