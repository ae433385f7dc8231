// SPDX-License-Identifier: MIT
/*
 * The main thread from vm_run on (src/vmm/loop.c and vm_destroy): the
 * event loop (signals, console input, timers, server sockets), server
 * death and re-attach, the watchdog's dump, the stop and the teardown.
 * It installs its filter after it has started the vCPU threads, so no
 * thread inherits this table; the one child it creates afterwards is the
 * VM fd's releaser (src/kvm/kvm.c), a fork that only closes and reads.
 */
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <linux/vhost.h>
#include <sys/ioctl.h>

#include "sandbox/seccomp_rules.h"

static const struct sb_rule rules[] = {
	IOCTL(VHOST_NET_SET_BACKEND,
	      "vhost-net: teardown stops the kernel's rings"),
	IOCTL(VHOST_GET_VRING_BASE,
	      "vhost-net: teardown stops the kernel's rings"),
	ALLOW(epoll_wait, "the event loop"),
	ALLOW(epoll_pwait, "the event loop (glibc's epoll_wait)"),
	ALLOW(epoll_ctl, "watches added and removed (servers re-attached)"),
	ALLOW(poll, "bounded waits: a server's handshake, efd.c"),
	ALLOW(ppoll, "bounded waits"),
	ALLOW(readv, "console input"),
	ALLOW(writev, "console output"),
	ALLOW(eventfd2, "a re-attached server's doorbells and irqfds"),
	ALLOW(timerfd_settime, "the loop's timers (re-attach, posted writes, "
			       "power button, watchdog)"),
	ALLOW(timerfd_gettime, "the loop's timers"),
	ALLOW(timer_create, "efd.c's bounded eventfd wait"),
	ALLOW(timer_settime, "efd.c's bounded eventfd wait"),
	ALLOW(timer_delete, "efd.c's bounded eventfd wait"),
	SOCKET_UNIX("re-attach: connecting to a server's socket again"),
	ALLOW(connect, "re-attach: connecting to a server's socket again"),
	ALLOW1(socketpair, SB_EQ(0, AF_UNIX),
	       "re-attach: a server's IOMMU and state channels"),
	ALLOW(getsockopt, "SO_PEERCRED of a re-attached server"),
	ALLOW(sendmsg, "IOREQ messages (with fds) to a server"),
	ALLOW(recvmsg, "IOREQ messages (with fds) from a server"),
	ALLOW(sendto, "IOREQ messages to a server (send)"),
	ALLOW(recvfrom, "IOREQ messages from a server (recv)"),
	ALLOW(shutdown, "hanging up on a server that misbehaved"),
	ALLOW(fcntl, "a re-attached socket made non-blocking"),
	ALLOW(memfd_create, "a re-attached server's shared request page"),
	ALLOW(ftruncate, "sizing that page"),
	IOCTL(KVM_IOEVENTFD, "a re-attached server's doorbells; teardown"),
	IOCTL(KVM_IRQFD, "a re-attached server's interrupt; teardown"),
	IOCTL(KVM_IRQ_LINE, "the power button's SCI"),
	IOCTL(KVM_REGISTER_COALESCED_MMIO, "a re-attached server's posted "
					   "writes"),
	IOCTL(KVM_UNREGISTER_COALESCED_MMIO, "a lost server's posted writes"),
	IOCTL(KVM_GET_REGS, "the registers of a VM stopped from outside "
			    "(debug log)"),
	IOCTL(KVM_GET_SREGS, "the registers of a VM stopped from outside"),
	IOCTL(KVM_GET_LAPIC, "the state dump: where an interrupt is stuck"),
	IOCTL(KVM_GET_VCPU_EVENTS, "the state dump: a pending injection"),
	IOCTL(KVM_GET_MP_STATE, "the state dump: a halted vCPU"),
	IOCTL(KVM_GET_IRQCHIP, "the state dump: the devices' IOAPIC pins"),
	IOCTL(TCGETS, "the console's terminal mode"),
	IOCTL(TCSETS, "the console's raw mode restored at exit"),
	IOCTL(TCSETSW, "the console's raw mode restored at exit"),
	IOCTL(TCSETSF, "the console's raw mode restored at exit"),
	ALLOW(wait4, "a spawned server's exit status"),
	ALLOW(waitid, "a spawned server's exit status"),
	ALLOW(kill, "stopping spawned servers at exit"),
	ALLOW(unlink, "removing spawned servers' sockets"),
	ALLOW(unlinkat, "removing spawned servers' sockets"),
	ALLOW(rmdir, "removing the servers' private directory"),
	ALLOW(pipe2, "the VM fd releaser's pipe (src/kvm/kvm.c)"),
	ALLOW1(clone,
	       SB_MASK(0,
		       CLONE_VM | CLONE_THREAD | CLONE_NEWNS | CLONE_NEWUSER |
			       CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
			       CLONE_NEWUTS | CLONE_NEWCGROUP,
		       0),
	       "fork only (no shared memory, no namespace): the VM fd "
	       "releaser"),
	ALLOW(set_robust_list, "glibc's fork sets the child's robust list"),
	ALLOW(close_range, "the releaser closes every fd but two"),
	ALLOW(readlink,
	      "/proc/self/fd/N: a doorbell's fd must be an eventfd (ioeventfd.c)"),
	ALLOW(rt_sigaction, "restoring default handlers at exit"),
	IOCTL(UFFDIO_UNREGISTER, "a uffd restore's guest RAM released at "
				 "teardown"),
	ALLOW(getrandom, "glibc's malloc randomizes its tcache"),
};

SB_TABLE(sb_table_loop, "loop", rules);
