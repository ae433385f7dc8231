// SPDX-License-Identifier: MIT
/* src/vhost_user: the request table and framing against hostile peers on
 * both sides (bad sizes, bad descriptor counts, unknown requests, memory
 * regions outside their file, rings outside the regions, late, wrong and
 * oversized replies), and the front-end's requests as the wire sees
 * them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/time.h"
#include "vhost_user/front.h"
#include "vhost_user/memtab.h"
#include "vhost_user/msg.h"

static void mk(struct vhu_msg *m, uint32_t req, uint32_t size)
{
	memset(m, 0, sizeof(*m));
	m->hdr.request = req;
	m->hdr.flags = VHU_VERSION;
	m->hdr.size = size;
}

static int memfd(uint64_t size)
{
	int fd = memfd_create("vhu-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static void test_unknown_and_flags(void **state)
{
	struct vhu_msg m;
	const char *why = NULL;

	mk(&m, 999, 0);
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), -EINVAL);
	assert_string_equal(why, "unknown request");
	mk(&m, 0, 0);
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), -EINVAL);
	mk(&m, 28 /* POSTCOPY_ADVISE: not handled */, 0);
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), -EINVAL);
	mk(&m, VHU_SET_OWNER, 0);
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), 0);
	m.hdr.flags = 2;
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), -EINVAL);
	assert_string_equal(why, "bad version");
	m.hdr.flags = VHU_VERSION | VHU_FLAG_REPLY;
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), -EINVAL);
}

static void test_bad_sizes_and_fds(void **state)
{
	struct vhu_msg m;
	const char *why = NULL;

	mk(&m, VHU_SET_FEATURES, 4);
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), -EINVAL);
	assert_string_equal(why, "bad payload size");
	mk(&m, VHU_SET_FEATURES, 8);
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), 0);
	assert_int_equal(vhu_check_request(&m, 1, 2, &why), -EINVAL);
	assert_string_equal(why, "bad number of descriptors");

	/* Three regions announced, two sent; two descriptors for three. */
	mk(&m, VHU_SET_MEM_TABLE, 8 + 2 * 32);
	m.mem.nregions = 3;
	assert_int_equal(vhu_check_request(&m, 3, 2, &why), -EINVAL);
	m.mem.nregions = 2;
	assert_int_equal(vhu_check_request(&m, 2, 2, &why), 0);
	assert_int_equal(vhu_check_request(&m, 1, 2, &why), -EINVAL);
	m.mem.nregions = 0;
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), -EINVAL);
	m.mem.nregions = 9;
	assert_int_equal(vhu_check_request(&m, 8, 2, &why), -EINVAL);

	/* Kick: the no-fd bit and the descriptor must agree. */
	mk(&m, VHU_SET_VRING_KICK, 8);
	m.u64 = 1;
	assert_int_equal(vhu_check_request(&m, 1, 2, &why), 0);
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), -EINVAL);
	m.u64 = 1 | VHU_VRING_NOFD;
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), 0);
	assert_int_equal(vhu_check_request(&m, 1, 2, &why), -EINVAL);
	m.u64 = 2;
	assert_int_equal(vhu_check_request(&m, 1, 2, &why), -EINVAL);
	assert_string_equal(why, "ring index out of range");
	m.u64 = 1ull << 40;
	assert_int_equal(vhu_check_request(&m, 1, 2, &why), -EINVAL);

	mk(&m, VHU_SET_VRING_NUM, 8);
	m.state.index = 7;
	assert_int_equal(vhu_check_request(&m, 0, 2, &why), -EINVAL);

	/* Config: the size field must match the payload and the space. */
	mk(&m, VHU_GET_CONFIG, 12 + 8);
	m.config.size = 8;
	m.config.offset = 248;
	assert_int_equal(vhu_check_request(&m, 0, 1, &why), 0);
	m.config.offset = 249;
	assert_int_equal(vhu_check_request(&m, 0, 1, &why), -EINVAL);
	m.config.offset = 0;
	m.config.size = 9;
	assert_int_equal(vhu_check_request(&m, 0, 1, &why), -EINVAL);
	mk(&m, VHU_SET_CONFIG, 12 + 300);
	assert_int_equal(vhu_check_request(&m, 0, 1, &why), -EINVAL);
}

static void test_regions(void **state)
{
	struct vhu_memtab t;
	struct vhu_region r[2] = {
		{ .gpa = 0, .size = 1 << 20, .ua = 0x7f0000000000ull },
		{ .gpa = 4ull << 30,
		  .size = 1 << 20,
		  .ua = 0x7f0000100000ull,
		  .offset = 1 << 20 },
	};
	struct vhu_vring_addr a = { 0 };
	const char *why = NULL;
	struct err e;
	int fd = memfd(2 << 20), fds[2] = { fd, fd };
	uint8_t *p;

	vhu_memtab_init(&t);
	assert_int_equal(vhu_memtab_set(&t, r, 2, fds, &e), 0);
	p = vhu_memtab_gpa(&t, (4ull << 30) + 16, 16);
	assert_non_null(p);
	assert_ptr_equal(vhu_memtab_ua(&t, 0x7f0000100010ull, 16), p);
	assert_null(vhu_memtab_gpa(&t, (1 << 20) - 8, 16)); /* crosses end */
	assert_null(vhu_memtab_ua(&t, UINT64_MAX - 4, 16)); /* overflows */
	assert_non_null(vhu_memtab_gpa(&t, 1 << 20, 0));

	/* Rings: inside, outside, misaligned, bad sizes. */
	a.desc_ua = 0x7f0000000000ull;
	a.avail_ua = 0x7f0000001000ull;
	a.used_ua = 0x7f0000002000ull;
	assert_int_equal(vhu_check_vring(&t, &a, 256, &why), 0);
	assert_int_equal(vhu_check_vring(&t, &a, 255, &why), -EINVAL);
	assert_int_equal(vhu_check_vring(&t, &a, 65536, &why), -EINVAL);
	a.used_ua = 0x7f00000ffff0ull; /* runs past region 0 */
	assert_int_equal(vhu_check_vring(&t, &a, 256, &why), -EINVAL);
	assert_string_equal(why, "ring outside the memory regions");
	a.used_ua = 0x7f0000002002ull;
	assert_int_equal(vhu_check_vring(&t, &a, 256, &why), -EINVAL);
	assert_string_equal(why, "misaligned ring");
	a.used_ua = 0x6000;
	assert_int_equal(vhu_check_vring(&t, &a, 256, &why), -EINVAL);

	/* Outside the memfd, overlapping, empty, overflowing. */
	r[1].offset = (2 << 20) - 4096;
	assert_int_equal(vhu_memtab_set(&t, r, 2, fds, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "outside its file"));
	assert_int_equal(t.n, 0);
	r[1].offset = 1 << 20;
	r[1].gpa = 4096;
	assert_int_equal(vhu_memtab_set(&t, r, 2, fds, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "overlaps"));
	r[1].gpa = 4ull << 30;
	r[1].ua = r[0].ua + 8192;
	assert_int_equal(vhu_memtab_set(&t, r, 2, fds, &e), -EINVAL);
	r[1].ua = 0x7f0000100000ull;
	r[1].size = 0;
	assert_int_equal(vhu_memtab_set(&t, r, 2, fds, &e), -EINVAL);
	r[1].size = UINT64_MAX;
	assert_int_equal(vhu_memtab_set(&t, r, 2, fds, &e), -EINVAL);
	fds[1] = -1;
	r[1].size = 1 << 20;
	assert_int_equal(vhu_memtab_set(&t, r, 2, fds, &e), -EINVAL);
	assert_int_equal(vhu_memtab_set(&t, r, 0, fds, &e), -EINVAL);
	vhu_memtab_clear(&t);
	close(fd);
}

/* A front-end with one end of a socketpair; the test is the back-end. */
static void pair(struct vhu_front *f, int *peer)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX,
				    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				    0, sv),
			 0);
	vhu_front_init(f, "test", "/nonexistent");
	f->sock = sv[0];
	f->timeout_ms = 200;
	*peer = sv[1];
}

static void put(int peer, const struct vhu_msg *m, const int *fds, int nfds)
{
	assert_int_equal(vhu_send(peer, m, fds, nfds, now_ns() + 1000000000ull),
			 0);
}

static void reply_u64(int peer, uint32_t req, uint64_t v)
{
	struct vhu_msg r;

	mk(&r, req, 8);
	r.hdr.flags |= VHU_FLAG_REPLY;
	r.u64 = v;
	put(peer, &r, NULL, 0);
}

static void test_front_replies(void **state)
{
	struct vhu_front f;
	struct vhu_msg m, got;
	struct err e;
	uint64_t t0;
	int peer, nfds, fds[VHU_MAX_FDS], efd = eventfd(0, EFD_CLOEXEC);
	uint8_t cfg[8];

	pair(&f, &peer);
	/* A good u64 reply; the request on the wire is well formed. */
	reply_u64(peer, VHU_GET_FEATURES, 0x1234);
	mk(&m, VHU_GET_FEATURES, 0);
	assert_int_equal(vhu_front_call(&f, &m, NULL, 0, &m, NULL, 0, &e), 0);
	assert_int_equal(m.u64, 0x1234);
	assert_int_equal(vhu_recv(peer, &got, fds, &nfds, now_ns() + 1000000),
			 0);
	assert_int_equal(vhu_check_request(&got, nfds, 1, &(const char *){ 0 }),
			 0);

	/* Reply to another request; without the reply flag; too short. */
	reply_u64(peer, VHU_GET_PROTOCOL_FEATURES, 1);
	mk(&m, VHU_GET_FEATURES, 0);
	assert_int_equal(vhu_front_call(&f, &m, NULL, 0, &m, NULL, 0, &e),
			 -EPROTO);
	mk(&m, VHU_GET_FEATURES, 8);
	put(peer, &m, NULL, 0);
	mk(&m, VHU_GET_FEATURES, 0);
	assert_int_equal(vhu_front_call(&f, &m, NULL, 0, &m, NULL, 0, &e),
			 -EPROTO);
	mk(&m, VHU_GET_FEATURES, 4);
	m.hdr.flags |= VHU_FLAG_REPLY;
	put(peer, &m, NULL, 0);
	mk(&m, VHU_GET_FEATURES, 0);
	assert_int_equal(vhu_front_call(&f, &m, NULL, 0, &m, NULL, 0, &e),
			 -EPROTO);
	/* A descriptor on a reply that carries none is closed, an error. */
	mk(&m, VHU_GET_FEATURES, 8);
	m.hdr.flags |= VHU_FLAG_REPLY;
	put(peer, &m, &efd, 1);
	mk(&m, VHU_GET_FEATURES, 0);
	assert_int_equal(vhu_front_call(&f, &m, NULL, 0, &m, NULL, 0, &e),
			 -EPROTO);
	/* No reply at all: bounded by timeout_ms. */
	t0 = now_ns();
	mk(&m, VHU_GET_FEATURES, 0);
	assert_int_equal(vhu_front_call(&f, &m, NULL, 0, &m, NULL, 0, &e),
			 -ETIMEDOUT);
	assert_true(now_ns() - t0 < 1000000000ull);
	assert_non_null(strstr(e.msg, "no reply in time"));
	close(peer);
	vhu_front_close(&f);

	/* An oversized header is a protocol error, not a big read. */
	pair(&f, &peer);
	mk(&m, VHU_GET_FEATURES, 0);
	m.hdr.flags |= VHU_FLAG_REPLY;
	m.hdr.size = 1u << 30;
	assert_int_equal(write(peer, &m.hdr, sizeof(m.hdr)), sizeof(m.hdr));
	mk(&m, VHU_GET_FEATURES, 0);
	assert_int_equal(vhu_front_call(&f, &m, NULL, 0, &m, NULL, 0, &e),
			 -EPROTO);
	close(peer);
	vhu_front_close(&f);

	/* REPLY_ACK: a non-zero status is a refusal; a config reply of the
	 * wrong size or an empty one (the back-end's error) is refused. */
	pair(&f, &peer);
	f.protocol = 1ull << VHU_PF_REPLY_ACK;
	reply_u64(peer, VHU_SET_OWNER, 1);
	mk(&m, VHU_SET_OWNER, 0);
	assert_int_equal(vhu_front_call(&f, &m, NULL, 0, &m, NULL, 0, &e),
			 -EIO);
	mk(&m, VHU_GET_CONFIG, 12);
	m.hdr.flags |= VHU_FLAG_REPLY;
	put(peer, &m, NULL, 0);
	assert_int_equal(vhu_front_get_config(&f, 0, cfg, 8, &e), -EPROTO);
	mk(&m, VHU_GET_CONFIG, 12 + 8);
	m.hdr.flags |= VHU_FLAG_REPLY;
	m.config.size = 4;
	put(peer, &m, NULL, 0);
	assert_int_equal(vhu_front_get_config(&f, 0, cfg, 8, &e), -EPROTO);
	mk(&m, VHU_GET_CONFIG, 12 + 8);
	m.hdr.flags |= VHU_FLAG_REPLY;
	m.config.size = 8;
	memcpy(m.raw + 12, "abcdefgh", 8);
	put(peer, &m, NULL, 0);
	assert_int_equal(vhu_front_get_config(&f, 0, cfg, 8, &e), 0);
	assert_memory_equal(cfg, "abcdefgh", 8);
	close(peer);
	vhu_front_close(&f);
	close(efd);
}

/* The ring setup as the back-end receives it: every message valid for
 * the back-end's own checks, descriptors where they belong. */
static void test_front_vring_setup(void **state)
{
	struct vhu_front f;
	struct vhu_vring_setup s = { .index = 1,
				     .num = 256,
				     .desc_ua = 0x1000,
				     .avail_ua = 0x2000,
				     .used_ua = 0x3000,
				     .base = 7,
				     .err = -1 };
	static const uint32_t want[] = {
		VHU_SET_VRING_NUM,  VHU_SET_VRING_ADDR, VHU_SET_VRING_BASE,
		VHU_SET_VRING_KICK, VHU_SET_VRING_CALL, VHU_SET_VRING_ENABLE
	};
	struct vhu_msg m;
	struct err e;
	int peer, fds[VHU_MAX_FDS], nfds;

	pair(&f, &peer);
	f.features = 1ull << VHU_F_PROTOCOL_FEATURES;
	s.kick = eventfd(0, EFD_CLOEXEC);
	s.call = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(vhu_front_start_vring(&f, &s, &e), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *why = NULL;

		assert_int_equal(vhu_recv(peer, &m, fds, &nfds,
					  now_ns() + 100000000ull),
				 0);
		assert_int_equal(m.hdr.request, want[i]);
		assert_int_equal(vhu_check_request(&m, nfds, 2, &why), 0);
		if (want[i] == VHU_SET_VRING_BASE)
			assert_int_equal(m.state.num, 7);
		if (want[i] == VHU_SET_VRING_ADDR)
			assert_int_equal(m.addr.used_ua, 0x3000);
		vhu_close_fds(fds, nfds);
	}
	close(s.kick);
	close(s.call);
	close(peer);
	vhu_front_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_and_flags),
		cmocka_unit_test(test_bad_sizes_and_fds),
		cmocka_unit_test(test_regions),
		cmocka_unit_test(test_front_replies),
		cmocka_unit_test(test_front_vring_setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
