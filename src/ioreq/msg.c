// SPDX-License-Identifier: MIT
#include "ioreq/msg.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/time.h"

static int send_flags(int sock, const void *msg, size_t len, const int *fds,
		      int nfds, int flags)
{
	char cbuf[CMSG_SPACE(sizeof(int) * IOREQ_MAX_FDS)];
	struct iovec iov = { (void *)msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds < 0 || nfds > IOREQ_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | flags);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int ioreq_send(int sock, const void *msg, size_t len, const int *fds, int nfds)
{
	return send_flags(sock, msg, len, fds, nfds, 0);
}

int ioreq_send_by(int sock, const void *msg, size_t len, const int *fds,
		  int nfds, uint64_t deadline_ns)
{
	for (;;) {
		struct pollfd p = { .fd = sock, .events = POLLOUT };
		uint64_t now;
		int ret = send_flags(sock, msg, len, fds, nfds, MSG_DONTWAIT);

		if (ret != -EAGAIN)
			return ret;
		now = now_ns();
		if (now >= deadline_ns)
			return -ETIMEDOUT;
		ret = poll(&p, 1,
			   (int)((deadline_ns - now + 999999) / 1000000));
		if (ret < 0 && errno != EINTR)
			return -errno;
	}
}

void ioreq_close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

int ioreq_recv(int sock, void *buf, size_t cap, int *fds, int max_fds,
	       int *nfds, int timeout_ms)
{
	char cbuf[CMSG_SPACE(sizeof(int) * IOREQ_MAX_FDS)];
	struct iovec iov = { buf, cap };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	const struct ioreq_hdr *h = buf;
	bool bad = false;
	ssize_t n;
	int r;

	*nfds = 0;
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
	     c = CMSG_NXTHDR(&mh, c)) {
		int k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			bad = true;
			continue;
		}
		k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
			       sizeof(int));
			if (*nfds < max_fds)
				fds[(*nfds)++] = fd;
			else {
				close(fd);
				bad = true;
			}
		}
	}
	if (n == 0 && !*nfds)
		return 0;
	if (bad || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    (size_t)n < sizeof(*h) || h->len != (uint32_t)n) {
		ioreq_close_fds(fds, *nfds);
		*nfds = 0;
		return -EPROTO;
	}
	return (int)n;
}
