/* SPDX-License-Identifier: MIT */
/*
 * x86 vCPU state at power-on: CPUID (per-vCPU APIC IDs and topology, the
 * KVM paravirtual leaves), the MSRs Linux expects, FPU and LAPIC LVTs,
 * and for the boot vCPU the registers and segments of the kernel's entry
 * mode, with the GDT and identity page tables those need in guest memory.
 * Application processors are left in KVM's wait-for-SIPI state; the guest
 * starts them with INIT/SIPI through the in-kernel LAPIC.
 */
#ifndef WISP_ARCH_X86_CPU_H
#define WISP_ARCH_X86_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include "boot/boot.h"
#include "kvm/kvm.h"
#include "mem/guest_mem.h"
#include "util/log.h"

/* Writes the GDT and (for long mode) the page tables the entry mode
 * needs. Call once after boot_load(). */
int cpu_write_boot_tables(struct guest_mem *m, const struct boot_entry *be,
			  struct err *e);

/* What the CPUID table takes from outside KVM's supported set. */
struct cpuid_host {
	bool tsc_deadline; /* KVM_CAP_TSC_DEADLINE_TIMER (in-kernel LAPIC) */
	uint32_t tsc_khz; /* KVM_GET_TSC_KHZ; 0: unknown */
	uint32_t brand[12]; /* host leaves 0x80000002-4; all 0: none */
	bool no_async_pf; /* the user turned async page faults off */
};

/* Fills h from the host CPU (the brand string); the rest stays 0. */
void cpuid_host_read(struct cpuid_host *h);

/*
 * vCPU id's CPUID from KVM_GET_SUPPORTED_CPUID's table: its APIC ID, a
 * topology of ncpus single-threaded cores in one package (leaves 0x1,
 * 0x4, 0xb, 0x80000008, 0x8000001d/e), TSC-deadline, the host's brand
 * string, only the KVM PV features served in-kernel, and the TSC
 * frequency leaf 0x40000010. Pure: returns a new table the caller frees,
 * or NULL (out of memory, or id not in [0, ncpus)).
 */
struct kvm_cpuid2 *cpuid_build(const struct kvm_cpuid2 *supported,
			       const struct cpuid_host *host, int id,
			       int ncpus);

/* CPUID, MSRs, FPU, LAPIC for any vCPU. async_pf false leaves the
 * asynchronous page fault features out of leaf 0x40000001. */
int cpu_setup_vcpu(struct kvm *k, struct kvm_vcpu *v, int ncpus, bool async_pf,
		   struct err *e);

/* Entry registers and segments, for the boot vCPU only. */
int cpu_setup_boot_regs(struct kvm_vcpu *v, const struct boot_entry *be,
			struct err *e);

/* Logs the vCPU's registers at lvl (for crash reports). */
void cpu_dump_regs(struct kvm_vcpu *v, enum log_level lvl);

#endif
