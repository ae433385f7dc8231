// SPDX-License-Identifier: MIT
/*
 * An in-process device's I/O thread (src/virtio/iothread.c): its device's
 * queues. blk reads and writes its image (io_uring or plain calls); net
 * reads and writes its tap; vsock connects to the host's unix sockets;
 * rng reads getrandom. The files themselves were opened at start-up.
 */
#include <linux/vhost.h>

#include "sandbox/seccomp_rules.h"

static const struct sb_rule rules[] = {
	IOCTL(VHOST_NET_SET_BACKEND,
	      "vhost-net: a ring error stops the kernel's rings"),
	IOCTL(VHOST_GET_VRING_BASE,
	      "vhost-net: a ring error stops the kernel's rings"),
	ALLOW(epoll_wait, "the thread's loop over doorbells and its fds"),
	ALLOW(epoll_pwait, "the thread's loop (glibc's epoll_wait)"),
	ALLOW(epoll_ctl, "vsock adds and removes its connections' sockets"),
	ALLOW(poll, "bounded waits (efd.c)"),
	ALLOW(ppoll, "bounded waits"),
	ALLOW(readv, "blk reads, net reads a frame from the tap"),
	ALLOW(writev, "blk writes, net writes a frame to the tap"),
	ALLOW(preadv, "blk's sync engine reads a request's segments"),
	ALLOW(pwritev, "blk's sync engine writes a request's segments"),
	ALLOW(pread64, "blk's sync engine"),
	ALLOW(pwrite64, "blk's sync engine"),
	ALLOW(fdatasync, "blk flush"),
	ALLOW(fsync, "blk flush"),
	ALLOW(fallocate, "blk discard and write-zeroes punch holes"),
	ALLOW(io_uring_enter, "blk's io_uring engine submits and reaps"),
	ALLOW(getrandom, "virtio-rng's entropy"),
	SOCKET_UNIX("vsock: a guest connection to a host unix socket"),
	ALLOW(connect, "vsock: a guest connection to a host unix socket"),
	ALLOW(accept4, "vsock: a host connection to a port the guest "
		       "listens on"),
	ALLOW(sendmsg, "vsock payload to a host socket"),
	ALLOW(recvmsg, "vsock payload from a host socket"),
	ALLOW(sendto, "vsock payload to a host socket (send)"),
	ALLOW(recvfrom, "vsock payload from a host socket (recv)"),
	ALLOW(shutdown, "vsock: a guest half-closes a connection"),
	ALLOW(getsockopt, "vsock: SO_ERROR of a non-blocking connect"),
	ALLOW(fcntl, "vsock: a new socket made non-blocking"),
	ALLOW(timer_create, "efd.c's bounded eventfd wait"),
	ALLOW(timer_settime, "efd.c's bounded eventfd wait"),
	ALLOW(timer_delete, "efd.c's bounded eventfd wait"),
	ALLOW(readlink, "/proc/self/fd/N: a doorbell's fd must be an eventfd"),
	ALLOW(timerfd_settime, "rate limiters re-arm their timer"),
};

SB_TABLE(sb_table_iothread, "iothread", rules);
