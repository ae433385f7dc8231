// SPDX-License-Identifier: MIT
/* kvmkeep - holds one idle KVM VM in L1 for as long as L1 runs.
 *
 * Each L2 VM that starts in an L1 with no other VM makes L1's KVM change
 * global state: the first VM enables SVM on every CPU (an IPI to each),
 * the last one disables it again, and static keys go from 0 to 1 and
 * back: the scheduler's preempt_notifier_key (KVM's vCPU threads use
 * preempt notifiers) and the LAPIC's apic_sw_disabled and
 * apic_hw_disabled (arch/x86/kvm/lapic.c), each change a live patch of
 * L1's kernel text on every CPU (int3, IPIs, sync). Under QEMU's multi-threaded TCG those are the
 * moments L1 was seen to die (docs/rig.md "When L1 itself dies"). This
 * VM's one vCPU is never run; its LAPIC is software-disabled (as after
 * reset) and hardware-disabled (APIC_BASE without its enable bit), so
 * the VM count, the notifier key and both LAPIC keys stay above zero and
 * an L2 start or exit patches nothing and toggles nothing.
 *
 *   kvmkeep        prints "kvmkeep: holding" and sleeps until killed
 *
 * Exit status 1 (with the failed step) when it cannot set that up.
 * Built statically by tests/rig/setup.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MSR_IA32_APICBASE 0x1b
#define APIC_DEFAULT_BASE 0xfee00000u

static int fail(const char *what)
{
	fprintf(stderr, "kvmkeep: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(void)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} msrs;
	int kvm, vm, vcpu;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("open /dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	/* In-kernel LAPICs, as wisp's and QEMU's VMs have: without them the
	 * vCPU would flip another key (kvm_has_noapic_vcpu) instead. */
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		return fail("KVM_CREATE_IRQCHIP");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return fail("KVM_CREATE_VCPU");
	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = 1;
	msrs.e.index = MSR_IA32_APICBASE;
	msrs.e.data = APIC_DEFAULT_BASE; /* no MSR_IA32_APICBASE_ENABLE */
	if (ioctl(vcpu, KVM_SET_MSRS, &msrs) != 1)
		return fail("KVM_SET_MSRS APIC_BASE (disabled)");
	printf("kvmkeep: holding\n");
	fflush(stdout);
	for (;;)
		pause();
}
