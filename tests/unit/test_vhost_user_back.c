// SPDX-License-Identifier: MIT
/* wisp's vhost-user back-end loop (src/servers/vhu_back.c) against a
 * hostile front-end on a socketpair, with the rng device: a memory
 * region outside its memfd, rings outside the regions, a kick for a
 * ring never set up, features never offered and unknown requests each
 * end the connection with a message naming the request; descriptors on
 * requests that take none are refused; a good sequence is answered; a
 * guest's broken ring is reported on the ring's error eventfd, and once
 * the front-end stopped the rings the next ones are served. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/rng/rng.h"
#include "servers/vhu_back.h"
#include "util/time.h"
#include "vhost_user/msg.h"

struct run {
	int sock;
	struct guest_mem gm;
	struct virtio_dev *d;
	struct err e;
	int ret;
	pthread_t t;
};

static volatile sig_atomic_t never;

static void *serve(void *arg)
{
	struct run *r = arg;

	r->ret = vhu_back_serve(r->sock, r->d, &r->gm, &never, &r->e);
	return NULL;
}

static int start(struct run *r)
{
	struct rng_config rc = { 0 };
	int sv[2];

	memset(r, 0, sizeof(*r));
	r->gm.memfd = -1;
	assert_int_equal(socketpair(AF_UNIX,
				    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				    0, sv),
			 0);
	assert_int_equal(rng_create(&rc, &r->gm, &r->d, &r->e), 0);
	r->sock = sv[1];
	assert_int_equal(pthread_create(&r->t, NULL, serve, r), 0);
	return sv[0];
}

/* Hangs up and returns what the loop said. */
static int finish(struct run *r, int fe)
{
	close(fe);
	pthread_join(r->t, NULL);
	close(r->sock);
	r->d->ops->destroy(r->d);
	if (r->gm.host)
		munmap(r->gm.host, r->gm.size);
	return r->ret;
}

static void msg(int fe, uint32_t req, const void *payload, uint32_t size,
		const int *fds, int nfds)
{
	struct vhu_msg m = { 0 };

	m.hdr.request = req;
	m.hdr.flags = VHU_VERSION;
	m.hdr.size = size;
	if (size)
		memcpy(m.raw, payload, size);
	assert_int_equal(vhu_send(fe, &m, fds, nfds, now_ns() + 1000000000ull),
			 0);
}

/* Sends one bad request, expects the loop to end on it. */
static void bad(uint32_t req, const void *payload, uint32_t size,
		const int *fds, int nfds, const char *want)
{
	struct run r;
	int fe = start(&r);

	msg(fe, req, payload, size, fds, nfds);
	pthread_join(r.t, NULL);
	if (!strstr(r.e.msg, want))
		fail_msg("request %u: '%s' lacks '%s'", req, r.e.msg, want);
	assert_true(r.ret < 0);
	close(fe);
	close(r.sock);
	r.d->ops->destroy(r.d);
	if (r.gm.host)
		munmap(r.gm.host, r.gm.size);
}

static void test_good_sequence(void **state)
{
	struct run r;
	struct vhu_msg m;
	int fe = start(&r), fds[VHU_MAX_FDS], nfds;
	int mfd = memfd_create("t", MFD_CLOEXEC);
	struct vhu_region reg = { .gpa = 0, .size = 1 << 20, .ua = 0x10000 };
	uint8_t table[8 + 32] = { 1 };
	struct vhu_vring_state st = { 0, 16 };
	struct vhu_vring_addr a = { .index = 0,
				    .desc_ua = 0x10000 + 0x1000,
				    .avail_ua = 0x10000 + 0x2000,
				    .used_ua = 0x10000 + 0x3000 };
	uint64_t idx = 0;
	int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);

	assert_int_equal(ftruncate(mfd, 1 << 20), 0);
	msg(fe, VHU_GET_FEATURES, NULL, 0, NULL, 0);
	assert_int_equal(vhu_recv(fe, &m, fds, &nfds, now_ns() + 1000000000ull),
			 0);
	assert_true(m.hdr.flags & VHU_FLAG_REPLY);
	assert_true(m.u64 & (1ull << 32));
	assert_true(m.u64 & (1ull << VHU_F_PROTOCOL_FEATURES));
	memcpy(table + 8, &reg, sizeof(reg));
	msg(fe, VHU_SET_MEM_TABLE, table, sizeof(table), &mfd, 1);
	msg(fe, VHU_SET_VRING_NUM, &st, sizeof(st), NULL, 0);
	msg(fe, VHU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	msg(fe, VHU_SET_VRING_CALL, &idx, 8, &call, 1);
	msg(fe, VHU_SET_VRING_KICK, &idx, 8, &kick, 1);
	st.num = 0;
	msg(fe, VHU_GET_VRING_BASE, &st, sizeof(st), NULL, 0);
	assert_int_equal(vhu_recv(fe, &m, fds, &nfds, now_ns() + 1000000000ull),
			 0);
	assert_int_equal(m.hdr.request, VHU_GET_VRING_BASE);
	assert_int_equal(m.state.num, 0);
	assert_int_equal(finish(&r, fe), 0);
	close(mfd);
	close(kick);
	close(call);
}

static void test_hostile(void **state)
{
	int mfd = memfd_create("t", MFD_CLOEXEC), efd = eventfd(0, 0);
	struct vhu_region reg = { .gpa = 0, .size = 1 << 20, .ua = 0x10000 };
	uint8_t table[8 + 32] = { 1 };
	uint64_t v = 1ull << 60, idx = 0;

	assert_int_equal(ftruncate(mfd, 4096), 0);
	memcpy(table + 8, &reg, sizeof(reg));
	bad(VHU_SET_MEM_TABLE, table, sizeof(table), &mfd, 1,
	    "outside its file");
	bad(VHU_SET_MEM_TABLE, table, sizeof(table), NULL, 0,
	    "bad number of descriptors");
	bad(VHU_SET_VRING_KICK, &idx, 8, &efd, 1, "SET_VRING_KICK");
	bad(VHU_SET_FEATURES, &v, 8, NULL, 0, "not offered");
	bad(999, NULL, 0, NULL, 0, "unknown request");
	bad(VHU_GET_FEATURES, NULL, 0, &efd, 1, "bad number of descriptors");
	bad(VHU_GET_INFLIGHT_FD, table, 20, NULL, 0, "not supported");
	close(mfd);
	close(efd);
}

static void reply_of(int fe, uint32_t req)
{
	struct vhu_msg m;
	int fds[VHU_MAX_FDS], nfds = 0;

	assert_int_equal(vhu_recv(fe, &m, fds, &nfds, now_ns() + 2000000000ull),
			 0);
	assert_int_equal(m.hdr.request, req);
	assert_int_equal(nfds, 0);
}

/* Sets ring 0 up on 16 entries (desc at GPA 0x1000, avail 0x2000, used
 * 0x3000) with CALL and ERR, base 0, and starts it with KICK. */
static void ring_up(int fe, int kick, int call, int err)
{
	struct vhu_vring_state st = { 0, 16 };
	struct vhu_vring_addr a = { .index = 0,
				    .desc_ua = 0x10000 + 0x1000,
				    .avail_ua = 0x10000 + 0x2000,
				    .used_ua = 0x10000 + 0x3000 };
	uint64_t idx = 0;

	msg(fe, VHU_SET_VRING_NUM, &st, sizeof(st), NULL, 0);
	msg(fe, VHU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	st.num = 0;
	msg(fe, VHU_SET_VRING_BASE, &st, sizeof(st), NULL, 0);
	msg(fe, VHU_SET_VRING_CALL, &idx, 8, &call, 1);
	msg(fe, VHU_SET_VRING_ERR, &idx, 8, &err, 1);
	msg(fe, VHU_SET_VRING_KICK, &idx, 8, &kick, 1);
}

static bool signalled(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	return poll(&p, 1, ms) == 1 && read(fd, &v, 8) == 8 && v > 0;
}

static void test_broken_ring(void **state)
{
	struct run r;
	int fe = start(&r), mfd = memfd_create("t", MFD_CLOEXEC);
	struct vhu_region reg = { .gpa = 0, .size = 1 << 20, .ua = 0x10000 };
	uint8_t table[8 + 32] = { 1 }, *g;
	struct vhu_vring_state st = { 0, 0 };
	int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);
	int err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	volatile uint16_t *avail, *used;
	struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
	} * desc;

	assert_int_equal(ftruncate(mfd, 1 << 20), 0);
	g = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	assert_true(g != MAP_FAILED);
	desc = (void *)(g + 0x1000);
	avail = (volatile uint16_t *)(void *)(g + 0x2000);
	used = (volatile uint16_t *)(void *)(g + 0x3000);
	memcpy(table + 8, &reg, sizeof(reg));
	msg(fe, VHU_SET_MEM_TABLE, table, sizeof(table), &mfd, 1);

	/* a device-writable buffer whose next is itself */
	desc[0].addr = 0x8000;
	desc[0].len = 16;
	desc[0].flags = 1 | 2; /* NEXT | WRITE */
	desc[0].next = 0;
	avail[2] = 0;
	avail[1] = 1;
	ring_up(fe, kick, call, err);
	assert_true(signalled(err, 2000));
	assert_int_equal(used[1], 0);

	/* the front-end's reset: the ring stopped, fresh rings, a good
	 * request; the device serves it */
	msg(fe, VHU_GET_VRING_BASE, &st, sizeof(st), NULL, 0);
	reply_of(fe, VHU_GET_VRING_BASE);
	memset(g + 0x2000, 0, 0x2000);
	desc[0].flags = 2; /* WRITE */
	avail[2] = 0;
	avail[1] = 1;
	ring_up(fe, kick, call, err);
	for (int i = 0; i < 200 && used[1] != 1; i++)
		usleep(10000);
	assert_int_equal(used[1], 1);
	assert_false(signalled(err, 0));
	assert_int_equal(finish(&r, fe), 0);
	munmap(g, 1 << 20);
	close(mfd);
	close(kick);
	close(call);
	close(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_sequence),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_broken_ring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
