// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a hostile vhost-user front-end against wisp's whole
 * back-end loop (src/servers/vhu_back.c, vhu_back_serve) with the rng
 * device behind it, over a socketpair, as wisp-rng --vhost-user serves
 * it. fuzz_vhost_user_backend fuzzes the request checks alone; this one
 * runs what the loop does with what passes them: memory tables mapped,
 * rings started and kicked, the device's queues run on the front-end's
 * guest memory, replies sent.
 *
 * Input: u16 n | n bytes: the start of the 1 MiB memfd handed over as
 * guest memory (rings, descriptors) | records {u8 fds, u16 len, len bytes
 * sent verbatim (header and payload, so sizes can lie)}; fds bits 0-1:
 * how many descriptors go with the record, bit 2: they are the memfd
 * (else eventfds), bit 3: the eventfds are already signalled (a kick).
 * A feeder thread sends the records and reads the replies, then hangs
 * up. The loop must end (0 on the hang-up or -errno with a message),
 * never crash or hang, and leave no descriptor open.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/rng/rng.h"
#include "fuzz_common.h"
#include "mem/guest_mem.h"
#include "servers/vhu_back.h"
#include "util/le.h"
#include "util/log.h"

#define MEMFD_SIZE (1u << 20)

struct feed {
	int sock, memfd;
	const uint8_t *d;
	size_t n;
};

static volatile sig_atomic_t never;

/* Reads whatever replies are waiting; false once the back-end is gone. */
static bool drain(int s, int timeout_ms)
{
	char buf[4096];
	struct pollfd p = { .fd = s, .events = POLLIN };

	while (poll(&p, 1, timeout_ms) > 0) {
		ssize_t r = recv(s, buf, sizeof(buf), MSG_DONTWAIT);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return false;
		if (r < 0)
			break;
		timeout_ms = 0;
	}
	return true;
}

/* One record, waiting (bounded) while the socket is full. */
static bool send_rec(struct feed *f, const uint8_t *p, size_t len, uint8_t fl)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 3)];
	int fds[3], nfds = fl & 3;
	bool ok = false;

	for (int i = 0; i < nfds; i++) {
		if (fl & 4) {
			fds[i] = dup(f->memfd);
		} else {
			fds[i] = eventfd((fl & 8) ? 1 : 0, EFD_CLOEXEC);
		}
		CHECK(fds[i] >= 0);
	}
	while (len) {
		struct iovec iov = { (void *)p, len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		struct pollfd pf = { .fd = f->sock, .events = POLLOUT };
		ssize_t r;

		if (nfds) {
			struct cmsghdr *c;

			memset(cbuf, 0, sizeof(cbuf));
			mh.msg_control = cbuf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		r = sendmsg(f->sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r > 0) {
			p += r;
			len -= (size_t)r;
			/* The descriptors went with the first byte. */
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			nfds = 0;
			continue;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			goto out;
		if (!drain(f->sock, 0) || poll(&pf, 1, 1000) <= 0)
			goto out;
	}
	ok = true;
out:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return ok;
}

static void *feeder(void *arg)
{
	struct feed *f = arg;
	size_t pos = 0;

	while (pos + 3 <= f->n) {
		uint8_t fl = f->d[pos];
		size_t len = le16(f->d + pos + 1);

		pos += 3;
		if (len > f->n - pos)
			len = f->n - pos;
		if (!send_rec(f, f->d + pos, len, fl) || !drain(f->sock, 0))
			break;
		pos += len;
	}
	shutdown(f->sock, SHUT_WR);
	/* Until the back-end closes its end (bounded: it must end). */
	while (drain(f->sock, 10000))
		;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int memfd = -1;
	struct guest_mem gm;
	struct virtio_dev *d;
	struct feed f;
	pthread_t t;
	struct err e;
	size_t n;
	int sv[2], fds, ret;
	uint8_t *m;

	if (memfd < 0) {
		log_set_level(LOG_ERROR);
		memfd = memfd_create("fuzz-vhu-back", MFD_CLOEXEC);
		CHECK(memfd >= 0 && ftruncate(memfd, MEMFD_SIZE) == 0);
	}
	if (size < 2)
		return 0;
	n = le16(data);
	if (n > size - 2)
		n = size - 2;
	m = mmap(NULL, MEMFD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
		 0);
	CHECK(m != MAP_FAILED);
	memset(m, 0, MEMFD_SIZE);
	memcpy(m, data + 2, n);
	munmap(m, MEMFD_SIZE);

	fds = fuzz_count_fds();
	memset(&gm, 0, sizeof(gm));
	gm.memfd = -1;
	CHECK(rng_create(NULL, &gm, &d, &e) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
			 sv) == 0);
	f = (struct feed){ sv[0], memfd, data + 2 + n, size - 2 - n };
	CHECK(pthread_create(&t, NULL, feeder, &f) == 0);
	memset(&e, 0, sizeof(e));
	ret = vhu_back_serve(sv[1], d, &gm, &never, &e);
	CHECK(ret <= 0);
	if (ret < 0)
		CHECK(e.msg[0]);
	close(sv[1]);
	pthread_join(t, NULL);
	close(sv[0]);
	d->ops->destroy(d);
	if (gm.host)
		munmap(gm.host, gm.size);
	CHECK(fuzz_count_fds() == fds);
	return 0;
}
