// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a hostile vhost-user back-end against the front-end
 * (src/vhost_user/front.c): the input is the byte stream the back-end
 * "replies" with, queued on a socketpair before the front-end runs its
 * whole set-up (features, protocol features, owner, memory, config,
 * inflight buffer, one ring, stop). Every reply may be late (a short
 * timeout), short, oversized, for another request or carry descriptors.
 * The front-end must fail with a message or go on; never crash, hang or
 * leak a descriptor.
 *
 * Input: {u8 flags} then the stream; flags bit 0: pass one memfd on the
 * first byte (for GET_INFLIGHT_FD), bit 1: offer REPLY_ACK, bit 2: keep
 * the back-end's write side open, so that a missing reply times out
 * instead of reading end-of-stream. The whole stream is queued before the
 * front-end runs, so a deadline of zero (timeout_ms 0: only what is
 * already queued) takes the same paths as a real timeout without the
 * wait; with a 1 ms timeout the target slept through its wall time (26
 * CPU-s in 16 minutes).
 */
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vhost_user/front.h"
#include "vhost_user/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(struct vhu_front *f)
{
	struct vhu_region r = { .gpa = 0, .size = 1 << 20, .ua = 0x10000000 };
	struct vhu_vring_setup s = { .index = 0,
				     .num = 64,
				     .desc_ua = 0x10000000,
				     .avail_ua = 0x10001000,
				     .used_ua = 0x10002000,
				     .kick = -1,
				     .call = -1,
				     .err = -1 };
	uint8_t cfg[60];
	struct vhu_msg m;
	uint64_t v;
	uint16_t base;
	struct err e;
	void *map = NULL;
	uint64_t msize = 0;
	int ifd = -1, mfd = memfd_create("fuzz-front", MFD_CLOEXEC);

	m.hdr.request = VHU_GET_FEATURES;
	m.hdr.flags = VHU_VERSION;
	m.hdr.size = 0;
	if (!vhu_front_call(f, &m, NULL, 0, &m, NULL, 0, &e))
		f->features = m.u64;
	m.hdr.request = VHU_GET_PROTOCOL_FEATURES;
	m.hdr.flags = VHU_VERSION;
	m.hdr.size = 0;
	if (!vhu_front_call(f, &m, NULL, 0, &m, NULL, 0, &e)) {
		v = m.u64;
		f->protocol |= v & VHU_FRONT_PROTOCOL;
	}
	vhu_front_set_features(f, 1ull << 32, &e);
	if (mfd >= 0) {
		vhu_front_set_mem(f, &r, 1, mfd, &e);
		close(mfd);
	}
	vhu_front_get_config(f, 0, cfg, sizeof(cfg), &e);
	if (!vhu_front_get_inflight(f, 1, 64, &ifd, &map, &msize, &e)) {
		munmap(map, msize);
		close(ifd);
	}
	vhu_front_start_vring(f, &s, &e);
	vhu_front_stop_vring(f, 0, &base, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhu_front f;
	int sv[2];
	size_t done = 0;

	if (size < 1 || size > 60000)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sv) < 0)
		return 0;
	vhu_front_init(&f, "fuzz", "/nonexistent");
	f.sock = sv[0];
	f.timeout_ms = 0;
	if (data[0] & 2)
		f.protocol = 1ull << VHU_PF_REPLY_ACK;
	if (data[0] & 1) {
		int fd = memfd_create("fuzz-inflight", MFD_CLOEXEC);
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { (void *)(data + 1), size > 1 ? 1 : 0 };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

		if (fd >= 0 && size > 1 && ftruncate(fd, 1 << 16) == 0) {
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
			if (sendmsg(sv[1], &mh, MSG_DONTWAIT) == 1)
				done = 1;
		}
		if (fd >= 0)
			close(fd);
	}
	while (1 + done < size) {
		ssize_t n = write(sv[1], data + 1 + done, size - 1 - done);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (!(data[0] & 4))
		shutdown(sv[1], SHUT_WR);
	run(&f);
	vhu_front_close(&f);
	close(sv[1]);
	return 0;
}
