// SPDX-License-Identifier: MIT
/*
 * wisp-api's HTTP thread (libmicrohttpd's polling thread, src/api): one
 * unix socket, accepted connections checked by SO_PEERCRED, JSON in and
 * out. Its handlers run here too, which widens the table: pause/resume
 * (kicks every vCPU), snapshot create (the vCPUs' and VM's state read
 * through KVM's get ioctls, the state and memory files written), the
 * logger and metrics sinks opened, rate limits changed.
 */
#include <linux/kvm.h>

#include "sandbox/seccomp_rules.h"

static const struct sb_rule rules[] = {
	ALLOW(epoll_wait, "libmicrohttpd's loop"),
	ALLOW(epoll_pwait, "libmicrohttpd's loop"),
	ALLOW(epoll_ctl, "libmicrohttpd adds and removes connections"),
	ALLOW(poll, "libmicrohttpd (poll mode); bounded waits"),
	ALLOW(ppoll, "bounded waits"),
	ALLOW(select, "libmicrohttpd (select mode)"),
	ALLOW(accept4, "a client connection on the API socket"),
	ALLOW(accept, "a client connection on the API socket"),
	ALLOW(getsockopt, "SO_PEERCRED: the client must be our user or root"),
	ALLOW(setsockopt, "libmicrohttpd's per-connection options"),
	ALLOW(fcntl, "libmicrohttpd: non-blocking, close-on-exec"),
	/* Snapshot create reads state only: no KVM_RUN, no set. */
	IOCTL(KVM_GET_REGS, "snapshot: a vCPU's registers"),
	IOCTL(KVM_GET_SREGS, "snapshot: a vCPU's system registers"),
	IOCTL(KVM_GET_MSRS, "snapshot: a vCPU's MSRs"),
	IOCTL(KVM_GET_MSR_INDEX_LIST, "snapshot: which MSRs to save"),
	IOCTL(KVM_GET_LAPIC, "snapshot: a vCPU's local APIC"),
	IOCTL(KVM_GET_XSAVE, "snapshot: a vCPU's FPU and vector state"),
	IOCTL(KVM_GET_XSAVE2, "snapshot: a vCPU's FPU and vector state"),
	IOCTL(KVM_GET_XCRS, "snapshot: a vCPU's XCR0"),
	IOCTL(KVM_GET_DEBUGREGS, "snapshot: a vCPU's debug registers"),
	IOCTL(KVM_GET_VCPU_EVENTS, "snapshot: a vCPU's pending events"),
	IOCTL(KVM_GET_MP_STATE, "snapshot: a vCPU's run state"),
	IOCTL(KVM_GET_IRQCHIP, "snapshot: the PIC and IOAPIC"),
	IOCTL(KVM_GET_PIT2, "snapshot: the PIT"),
	IOCTL(KVM_GET_CLOCK, "snapshot: the kvmclock"),
	IOCTL(KVM_CHECK_EXTENSION, "snapshot: XSAVE2's size"),
	IOCTL(KVM_GET_DIRTY_LOG, "Diff snapshot: the pages the guest wrote "
				 "since the last snapshot"),
	IOCTL(KVM_IRQ_LINE, "SendCtrlAltDel: the i8042's interrupt"),
	ALLOW(recvfrom, "a request"),
	ALLOW(sendto, "a response"),
	ALLOW(sendmsg, "a response"),
	ALLOW(recvmsg, "a request"),
	ALLOW(shutdown, "closing a connection"),
	ALLOW(writev, "a response"),
	ALLOW(eventfd2, "libmicrohttpd's inter-thread signal"),
	ALLOW(openat, "snapshot files, the logger FIFO and metrics file"),
	ALLOW(open, "snapshot files, the logger FIFO and metrics file"),
	ALLOW(pwrite64, "snapshot memory file"),
	ALLOW(pwritev, "snapshot memory file"),
	ALLOW(pread64, "snapshot: reading back what it checks"),
	ALLOW(lseek, "snapshot files"),
	ALLOW(ftruncate, "snapshot memory file's size"),
	ALLOW(fallocate, "snapshot memory file's holes"),
	ALLOW(fsync, "snapshot files reach the disk before they are named"),
	ALLOW(fdatasync, "snapshot files reach the disk"),
	ALLOW(rename, "snapshot files named once complete"),
	ALLOW(renameat, "snapshot files named once complete"),
	ALLOW(renameat2, "snapshot files named once complete"),
	ALLOW(unlink, "an incomplete snapshot file removed"),
	ALLOW(unlinkat, "an incomplete snapshot file removed"),
	ALLOW(mincore, "snapshot: which guest pages are present"),
	ALLOW(getrandom, "glibc's malloc randomizes its tcache"),
	ALLOW(timerfd_settime, "rate limits changed on a running drive"),
	ALLOW(timer_create, "efd.c's bounded eventfd wait"),
	ALLOW(timer_settime, "efd.c's bounded eventfd wait"),
	ALLOW(timer_delete, "efd.c's bounded eventfd wait"),
};

SB_TABLE(sb_table_api, "api", rules);
