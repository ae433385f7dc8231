// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a hostile IOREQ server talking to wisp's VMM side.
 * The input is the server's half of the conversation: records of
 * {u8 flags, u16 len, len bytes}, each sent as one packet (flags bit 0:
 * attach an eventfd; bit 1: attach 40 fds; bit 2: send it on the IOMMU
 * channel instead of the control socket). If the input starts with 'H', a
 * valid HELLO goes first so the fuzzer reaches the handshake's later
 * states quickly; with 'I' the device is behind the IOMMU (the VMM's
 * snapshot has two mappings), a valid HELLO goes first and the feeder
 * takes the IOMMU channel from WELCOME, so the records can answer the
 * snapshot and later changes (IOMMU_DONE) or report faults. The VMM side
 * must fail cleanly or attach; it must never crash, leak fds or block
 * longer than its bounds.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ioreq/msg.h"
#include "ioreq/server.h"
#include "ioreq/client.h"

static char path[108];
static int lfd = -1;
static struct guest_mem mem;
static struct ioeventfd_registry lanes;

struct feed {
	const uint8_t *d;
	size_t n;
	bool iommu;
};

static int snap(void *o, uint32_t *mode, struct ioreq_iommu_map **maps,
		uint32_t *nr, uint64_t *seq)
{
	*maps = calloc(2, sizeof(**maps));
	if (!*maps)
		return -ENOMEM;
	(*maps)[0] = (struct ioreq_iommu_map){ .iova = 0x1000,
					       .last = 0x1fff,
					       .gpa = 0x2000,
					       .perm = IOREQ_IOMMU_READ };
	(*maps)[1] = (struct ioreq_iommu_map){ .iova = 0x8000,
					       .last = 0xffff,
					       .gpa = 0x10000,
					       .perm = IOREQ_IOMMU_WRITE };
	*nr = 2;
	*mode = IOREQ_IOMMU_TRANSLATE;
	*seq = 7;
	return 0;
}

static void on_fault(void *o, uint64_t iova, uint32_t flags)
{
	if (flags != IOREQ_IOMMU_READ && flags != IOREQ_IOMMU_WRITE)
		__builtin_trap(); /* the client checks before it reports */
}

static void send_raw(int s, const void *p, size_t n, int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 40)];
	struct iovec iov = { (void *)p, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[40];

	if (nfds) {
		struct cmsghdr *c;

		for (int i = 0; i < nfds; i++)
			fds[i] = eventfd(0, EFD_CLOEXEC);
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	sendmsg(s, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

static void *feeder(void *arg)
{
	struct feed *f = arg;
	const uint8_t *p = f->d, *end = f->d + f->n;
	int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), chan = -1;

	if (s < 0)
		return NULL;
	if (p < end && *p == 'I') {
		struct ioreq_hello h = { { IOREQ_MSG_HELLO, sizeof(h), 0, 0 },
					 IOREQ_MAGIC,
					 IOREQ_VERSION,
					 IOREQ_F_ALL,
					 0,
					 "fuzz" };
		uint8_t buf[IOREQ_MAX_MSG];
		int fds[IOREQ_MAX_FDS], nfds = 0;

		send_raw(s, &h, sizeof(h), 0);
		if (ioreq_recv(s, buf, sizeof(buf), fds, IOREQ_MAX_FDS, &nfds,
			       200) > 0 &&
		    nfds > 3) {
			chan = fds[nfds - 1];
			nfds--;
		}
		ioreq_close_fds(fds, nfds);
		p++;
	} else if (p < end && *p == 'H') {
		struct ioreq_hello h = { { IOREQ_MSG_HELLO, sizeof(h), 0, 0 },
					 IOREQ_MAGIC,
					 IOREQ_VERSION,
					 IOREQ_F_ALL,
					 0,
					 "fuzz" };

		send_raw(s, &h, sizeof(h), 0);
		p++;
	}
	while (end - p >= 3) {
		uint8_t flags = p[0];
		size_t len =
			(size_t)(p[1] | (p[2] << 8)) % (IOREQ_MAX_MSG + 64);

		p += 3;
		if (len > (size_t)(end - p))
			len = (size_t)(end - p);
		send_raw((flags & 4) && chan >= 0 ? chan : s, p, len,
			 (flags & 2) ? 40 : (flags & 1));
		p += len;
	}
	usleep(1000); /* let the VMM read before it sees EOF */
	close(s);
	if (chan >= 0)
		close(chan);
	return NULL;
}

/* The doorbell registry's host refuses some lanes, as KVM may. */
static int dummy_lane(void *o, uint64_t a, uint32_t l, uint32_t flags,
		      uint64_t v, int fd)
{
	return (a & 8) ? -EEXIST : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ioreq_client_config cfg = { 0 };
	struct ioreq_client *c = NULL;
	struct feed f = { data, size, size && data[0] == 'I' };
	struct err e;
	pthread_t th;
	int irq;

	if (lfd < 0) {
		snprintf(path, sizeof(path), "/tmp/wisp-fuzz-ioreq-%d.sock",
			 (int)getpid());
		lfd = wisp_ioreq_listen(path, &e);
		if (lfd < 0 || guest_mem_init(&mem, 1 << 20, &e))
			__builtin_trap();
		{
			const struct ioevr_host h = { dummy_lane, NULL, NULL };

			if (ioevr_init(&lanes, &h))
				__builtin_trap();
		}
	}
	irq = eventfd(0, EFD_CLOEXEC);
	cfg.name = "fuzz";
	cfg.socket_path = path;
	cfg.nr_vcpus = 2;
	cfg.mem = &mem;
	cfg.window_base = 0xd0000000;
	cfg.window_size = 0x1000;
	cfg.gsi = 5;
	cfg.irq_efd = irq;
	cfg.timeout_ms = 100;
	cfg.connect_timeout_ms = 100;
	cfg.doorbells = &lanes;
	if (f.iommu)
		cfg.iommu = (struct ioreq_iommu_host){ snap, on_fault, NULL };
	pthread_create(&th, NULL, feeder, &f);
	if (ioreq_client_create(&cfg, &c, &e) == 0) {
		/* Attached: changes the feeder's records answer (or not, or
		 * wrongly); an old one the snapshot holds is not sent. */
		if (f.iommu) {
			ioreq_client_iommu_map(c, 8, 0x20000, 0x20fff, 0x3000,
					       IOREQ_IOMMU_READ);
			ioreq_client_iommu_unmap(c, 9, 0x1000, 0x1fff);
			ioreq_client_iommu_reset(c, 10, IOREQ_IOMMU_BYPASS);
			if (ioreq_client_iommu_unmap(c, 3, 0, ~0ull))
				__builtin_trap();
		}
		/* A hang-up must detach it cleanly. */
		ioreq_client_handle_event(c);
		ioreq_client_handle_event(c);
		ioreq_client_destroy(c);
	} else if (!e.msg[0]) {
		__builtin_trap(); /* every failure names its cause */
	}
	pthread_join(th, NULL);
	close(irq);
	return 0;
}
