// SPDX-License-Identifier: MIT
/*
 * A vCPU thread (src/vmm/vcpu.c): KVM_RUN and the exits it dispatches
 * in process (legacy devices, virtio-mmio registers, IOREQ forwarding to
 * a server through shared memory and eventfds). It opens nothing and
 * creates nothing; its ioctls are the few a running vCPU needs. A status
 * register write runs the device's activate or reset on the vCPU that
 * wrote it (src/virtio/mmio.c), which is why the table holds what those
 * do: blk's reset drains requests in flight (submitting and reaping them,
 * the sync engine doing their I/O), net sets the tap's offloads, vsock
 * drops its connections, vhost-user talks to its back-end, rate limiters
 * disarm their timers. With --iommu-requests vcpu the virtio-iommu's
 * requests run here too: domains from the host-wide registry (its lock),
 * waits for endpoints' requests and servers' answers (futex, poll and the
 * IOREQ socket), all of which the table already holds.
 */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vhost.h>

#include "sandbox/seccomp_rules.h"

static const struct sb_rule rules[] = {
	IOCTL(KVM_RUN, "running the guest"),
	IOCTL(KVM_KVMCLOCK_CTRL, "a parked vCPU tells the guest's clock it "
				 "was stopped (no soft-lockup splat)"),
	IOCTL(KVM_GET_REGS, "crash and hang reports print the registers"),
	IOCTL(KVM_GET_SREGS, "crash and hang reports print the registers"),
	IOCTL(KVM_REGISTER_COALESCED_MMIO, "the 8250 starts posting THR "
					   "writes (coalesced PIO)"),
	IOCTL(KVM_UNREGISTER_COALESCED_MMIO, "the 8250 stops posting THR "
					     "writes (an IER or MCR write)"),
	IOCTL(KVM_IRQ_LINE, "legacy devices (8250, ACPI SCI) raise their "
			    "IRQ from the exit that changed it"),
	ALLOW(poll, "bounded waits for a server's reply and console output"),
	ALLOW(ppoll, "bounded waits for a server's reply"),
	ALLOW(writev, "console output"),
	ALLOW(timer_create, "efd.c's bounded eventfd wait (SIGEV_THREAD_ID)"),
	ALLOW(timer_settime, "efd.c's bounded eventfd wait"),
	ALLOW(timer_delete, "efd.c's bounded eventfd wait"),
	ALLOW(sendmsg, "IOREQ messages to a server on its socket"),
	ALLOW(recvmsg, "IOREQ replies from a server on its socket"),
	ALLOW(shutdown, "hanging up on a server that broke the protocol"),
	ALLOW(readlink, "/proc/self/fd/N: a doorbell's fd must be an eventfd"),
	IOCTL(TUNSETOFFLOAD, "net: activate and reset set the tap's offloads "
			     "to what the driver accepted"),
	ALLOW(io_uring_enter, "blk: a reset or queue disable drains the "
			      "requests in flight"),
	ALLOW(preadv, "blk: the sync engine's drain does queued reads"),
	ALLOW(pwritev, "blk: the sync engine's drain does queued writes"),
	ALLOW(pread64, "blk: the sync engine's drain"),
	ALLOW(pwrite64, "blk: the sync engine's drain"),
	ALLOW(fdatasync, "blk: the sync engine's drain flushes"),
	ALLOW(fsync, "blk: the sync engine's drain flushes"),
	ALLOW(fallocate, "blk: the sync engine's drain discards"),
	ALLOW(timerfd_settime, "rate limiters disarm their timer at reset"),
	ALLOW(epoll_ctl, "vsock: a reset drops its connections' sockets"),
	ALLOW(epoll_wait, "vsock: activate pumps its connections (a "
			  "0-timeout wait on its own epoll set)"),
	/* vsock's activate and an exit-path doorbell pump its queues here,
	 * guest connection requests included (found by the rig's vsock). */
	SOCKET_UNIX("vsock: a guest connection to the host's unix socket"),
	ALLOW(connect, "vsock: a guest connection to the host's unix socket"),
	ALLOW(getsockopt, "vsock: SO_ERROR of a non-blocking connect"),
	ALLOW(accept4, "vsock: a host connection to a guest port"),
	/* vhost-net (src/devices/net/vhost_net.c): activate hands the rings
	 * to the kernel, reset takes them back. */
	IOCTL(VHOST_SET_FEATURES, "vhost-net activate: the driver's features"),
	IOCTL(VHOST_SET_MEM_TABLE, "vhost-net activate: guest RAM"),
	IOCTL(VHOST_SET_VRING_NUM, "vhost-net activate: a ring's size"),
	IOCTL(VHOST_SET_VRING_ADDR, "vhost-net activate: a ring's addresses"),
	IOCTL(VHOST_SET_VRING_BASE, "vhost-net activate: a ring's index"),
	IOCTL(VHOST_SET_VRING_KICK, "vhost-net activate: a ring's doorbell"),
	IOCTL(VHOST_SET_VRING_CALL, "vhost-net activate: a ring's interrupt"),
	IOCTL(VHOST_SET_VRING_ERR, "vhost-net activate: a ring's error fd"),
	IOCTL(VHOST_NET_SET_BACKEND, "vhost-net activate and reset: the tap "
				     "attached and detached"),
	IOCTL(VHOST_GET_VRING_BASE, "vhost-net reset: where a ring stopped"),
	ALLOW1(fcntl, SB_EQ(1, F_OFD_SETLK),
	       "virtio-iommu: a reset frees its domains' IOASIDs, unlocking "
	       "them in the host-wide registry (src/iommu/registry.c)"),
	ALLOW(sendto, "vhost-user and vsock messages (send)"),
	ALLOW(recvfrom, "vhost-user and vsock messages (recv)"),
};

SB_TABLE(sb_table_vcpu, "vcpu", rules);
