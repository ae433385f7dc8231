/* SPDX-License-Identifier: MIT */
/*
 * Console output without blocking: the consoles write with their device
 * lock held (the 8250 on a vCPU thread, virtio-console on the I/O
 * thread), so a slow reader must never make write() sleep. The owner
 * should hand over an O_NONBLOCK fd; for one it did not, a write is
 * preceded by poll() and limited to what poll's POLLOUT guarantees fits:
 * a page for a pipe, one byte for a terminal or socket.
 */
#ifndef WISP_DEVICES_OUTFD_H
#define WISP_DEVICES_OUTFD_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define OUTFD_ANY SIZE_MAX /* write() never sleeps on this fd */

/* The per-write limit for fd, decided once when a device takes it. */
static inline size_t outfd_chunk(int fd)
{
	struct stat st;
	int fl;

	if (fd < 0)
		return OUTFD_ANY;
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		return OUTFD_ANY;
	if (fstat(fd, &st) < 0)
		return 1;
	/* Regular files and block devices do not wait for a reader. */
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
		return OUTFD_ANY;
	return S_ISFIFO(st.st_mode) ? PIPE_BUF : 1;
}

/* How many bytes (at most want) may be written to fd now without
 * blocking, given its chunk: 0 when it would block. An fd in error is
 * reported writable so that write() reports the error. */
static inline size_t outfd_room(int fd, size_t chunk, size_t want)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	if (chunk == OUTFD_ANY)
		return want;
	while (poll(&p, 1, 0) < 0) {
		if (errno != EINTR)
			return 0;
	}
	if (!(p.revents & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)))
		return 0;
	return want < chunk ? want : chunk;
}

#endif
