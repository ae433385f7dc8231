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

#include <stdio.h>

#include "boot/boot.h"
#include "kvm/kvm.h"
#include "mem/guest_mem.h"

/* Writes the GDT and (for long mode) the page tables the entry mode
 * needs. Call once after boot_load(). */
int cpu_write_boot_tables(struct guest_mem *m, const struct boot_entry *be,
			  struct err *e);

/* CPUID, MSRs, FPU, LAPIC for any vCPU. */
int cpu_setup_vcpu(struct kvm *k, struct kvm_vcpu *v, int ncpus, struct err *e);

/* Entry registers and segments, for the boot vCPU only. */
int cpu_setup_boot_regs(struct kvm_vcpu *v, const struct boot_entry *be,
			struct err *e);

/* Prints the vCPU's registers (for crash reports). */
void cpu_dump_regs(struct kvm_vcpu *v, FILE *out);

#endif
