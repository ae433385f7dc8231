// SPDX-License-Identifier: MIT
/*
 * A vCPU thread (src/vmm/vcpu.c): KVM_RUN and the exits it dispatches
 * in process (legacy devices, virtio-mmio registers, IOREQ forwarding to
 * a server through shared memory and eventfds). It opens nothing and
 * creates nothing; its ioctls are the few a running vCPU needs.
 */
#include <linux/kvm.h>

#include "sandbox/seccomp_rules.h"

static const struct sb_rule rules[] = {
	IOCTL(KVM_RUN, "running the guest"),
	IOCTL(KVM_KVMCLOCK_CTRL, "a parked vCPU tells the guest's clock it "
				 "was stopped (no soft-lockup splat)"),
	IOCTL(KVM_GET_REGS, "crash and hang reports print the registers"),
	IOCTL(KVM_GET_SREGS, "crash and hang reports print the registers"),
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
};

SB_TABLE(sb_table_vcpu, "vcpu", rules);
