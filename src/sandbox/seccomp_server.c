// SPDX-License-Identifier: MIT
/*
 * Processes other than wisp: a device server (src/servers/wisp-dev.c:
 * wisp-blk, wisp-rng, wisp-console, wisp-net, over IOREQ or as a
 * vhost-user back-end, src/servers/vhu_back.c) and the userfaultfd
 * handler (src/servers/wisp-uffd.c). A server installs its table in
 * main once it listens and before it accepts a VMM; everything after
 * that (each attach, its device's I/O thread, the console's stdin pump)
 * inherits it, which is why the server table holds what the device
 * creation of each attach needs (opening the disk or the tap, creating
 * threads) and why a server's I/O thread needs no table of its own.
 */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <linux/fs.h>

#include "sandbox/seccomp_rules.h"

static const struct sb_rule server_rules[] = {
	ALLOW(accept4, "the next VMM on the listening socket"),
	ALLOW(accept, "the next VMM on the listening socket"),
	ALLOW(getsockopt, "SO_PEERCRED: the VMM must be our user or root"),
	ALLOW(setsockopt, "socket timeouts of the handshake"),
	ALLOW(sendmsg, "IOREQ / vhost-user messages with fds"),
	ALLOW(recvmsg, "IOREQ / vhost-user messages with fds"),
	ALLOW(sendto, "IOREQ / vhost-user messages (send)"),
	ALLOW(recvfrom, "IOREQ / vhost-user messages (recv)"),
	ALLOW(shutdown, "hanging up on a VMM that misbehaved"),
	ALLOW(poll, "bounded waits for the VMM"),
	ALLOW(ppoll, "bounded waits for the VMM"),
	ALLOW(epoll_create1, "each attach's device I/O thread"),
	ALLOW(epoll_ctl, "each attach's device I/O thread"),
	ALLOW(epoll_wait, "the I/O thread's loop"),
	ALLOW(epoll_pwait, "the I/O thread's loop"),
	ALLOW(eventfd2, "each attach's doorbells and interrupt"),
	ALLOW(fcntl, "sockets and fds made non-blocking"),
	MMAP_NOEXEC("the VMM's guest memory and request page (MAP_SHARED)"),
	CLONE_THREADS("each attach's I/O thread, the console's stdin pump"),
	ALLOW(set_robust_list, "a new thread (glibc)"),
	ALLOW(rseq, "a new thread (glibc)"),
	ALLOW(sigaltstack, "a new thread's signal setup"),
	ALLOW1(prctl, SB_EQ(0, PR_SET_NAME), "naming a new thread"),
	ALLOW(openat, "blk: the disk image at each attach; net: the tap"),
	ALLOW(open, "blk: the disk image at each attach; net: the tap"),
	ALLOW(dup3,
	      "an attach's interrupt eventfd put in place (srv_add_irqfd)"),
	IOCTL(BLKGETSIZE64, "blk: the size of a block-device image"),
	IOCTL(TUNSETIFF, "net: the tap at each attach"),
	IOCTL(TUNGETFEATURES, "net: the tap's features"),
	IOCTL(TUNSETOFFLOAD, "net: the tap's offloads follow the guest's"),
	IOCTL(TUNSETVNETHDRSZ, "net: the tap's virtio-net header"),
	ALLOW(flock, "blk: the image locked against a second writer"),
	ALLOW1(statx, SB_EQ(2, AT_EMPTY_PATH),
	       "blk direct=on: the image's O_DIRECT alignment on its fd"),
	ALLOW(lseek, "blk: the image's size"),
	ALLOW(readv, "blk reads, net frames"),
	ALLOW(writev, "blk writes, net frames"),
	ALLOW(preadv, "blk's sync engine"),
	ALLOW(pwritev, "blk's sync engine"),
	ALLOW(pread64, "blk's sync engine"),
	ALLOW(pwrite64, "blk's sync engine"),
	ALLOW(fdatasync, "blk flush"),
	ALLOW(fsync, "blk flush"),
	ALLOW(fallocate, "blk discard and write-zeroes"),
	ALLOW(io_uring_setup, "blk's io_uring engine at each attach"),
	ALLOW(io_uring_enter, "blk's io_uring engine"),
	ALLOW(io_uring_register, "blk's io_uring completion eventfd"),
	ALLOW(getrandom, "rng's entropy"),
	ALLOW(timerfd_create, "rate limiters at each attach"),
	ALLOW(timerfd_settime, "rate limiters"),
	ALLOW(timer_create, "efd.c's bounded eventfd wait"),
	ALLOW(timer_settime, "efd.c's bounded eventfd wait"),
	ALLOW(timer_delete, "efd.c's bounded eventfd wait"),
	ALLOW(unlink, "the listening socket removed at exit"),
	ALLOW(readlink, "/proc/self/fd/N: the type of each fd the VMM sends"),

	ALLOW(rt_sigaction, "SIGTERM's handler; a new thread's signals"),
};

SB_TABLE(sb_table_server, "server", server_rules);

static const struct sb_rule uffd_rules[] = {
	ALLOW(accept4, "wisp's connection on the handler's socket"),
	ALLOW(getsockopt, "SO_PEERCRED: the VMM must be our user or root"),
	ALLOW(recvmsg, "the handshake: the userfaultfd and its JSON"),
	ALLOW(sendmsg, "the handshake's reply"),
	ALLOW(sendto, "the handshake's reply"),
	ALLOW(recvfrom, "the handshake"),
	ALLOW(poll, "the userfaultfd and the socket, bounded"),
	ALLOW(ppoll, "the userfaultfd and the socket, bounded"),
	ALLOW(fcntl, "the userfaultfd made non-blocking"),
	MMAP_NOEXEC("the memory file, read-only"),
	IOCTL(UFFDIO_API, "the userfaultfd's handshake"),
	IOCTL(UFFDIO_COPY, "a page from the memory file"),
	IOCTL(UFFDIO_ZEROPAGE, "a hole of the memory file"),
	IOCTL(UFFDIO_WAKE, "waking faulting vCPUs"),
	ALLOW(pread64, "the memory file"),
	ALLOW(lseek, "the memory file's holes (SEEK_DATA/SEEK_HOLE)"),
	ALLOW(unlink, "the socket removed at exit"),
	ALLOW(readlink,
	      "/proc/self/fd/N: the fd received must be a userfaultfd"),

	ALLOW(getrandom, "glibc's malloc randomizes its tcache"),
};

SB_TABLE(sb_table_uffd, "uffd", uffd_rules);
