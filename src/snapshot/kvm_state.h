/* SPDX-License-Identifier: MIT */
/*
 * The KVM side of a snapshot: one vCPU's architectural state and the
 * VM's in-kernel devices and clock, read out of KVM into a section
 * payload and, in two steps, decoded from one (every length and count
 * checked, nothing touched) and applied to a freshly created vCPU or VM.
 *
 * vCPU: regs, sregs, XSAVE (KVM_GET_XSAVE2 where KVM has it), XCRs,
 * debug registers, LAPIC, the MSRs of KVM_GET_MSR_INDEX_LIST (the KVM
 * paravirtual ones 0x4b564d00-07 included), vcpu events, mp_state.
 * VM: PIC master and slave, IOAPIC, PIT2, kvmclock.
 *
 * Owns the decoded states' buffers (snap_vcpu_state_free). No locks: the
 * caller has every vCPU out of KVM_RUN (paused, or not started yet).
 */
#ifndef WISP_SNAPSHOT_KVM_STATE_H
#define WISP_SNAPSHOT_KVM_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "util/err.h"
#include "util/ser.h"

#define MSR_IA32_TSC_ 0x10
#define MSR_IA32_TSC_DEADLINE_ 0x6e0
#define MSR_KVM_ASYNC_PF_EN_ 0x4b564d02
#define MSR_KVM_ASYNC_PF_INT_ 0x4b564d06
#define SNAP_MAX_MSRS 1024
#define SNAP_MAX_XSAVE (1u << 20)

/* The MSRs to save, from KVM_GET_MSR_INDEX_LIST plus the KVM PV ones
 * KVM did not list, in restore order (snap_msr_order). *idx is the
 * caller's to free. */
int snap_msr_list(int sys_fd, uint32_t **idx, uint32_t *n, struct err *e);

/* Puts MSRs into the order KVM needs them written in: the TSC first
 * (the deadline is relative to it), TSC_DEADLINE last (after the LAPIC
 * timer mode, set before the MSRs, and after the TSC),
 * MSR_KVM_ASYNC_PF_INT before MSR_KVM_ASYNC_PF_EN (enabling async page
 * faults with interrupt delivery needs the vector first). The rest keep
 * their relative order. */
void snap_msr_order(struct kvm_msr_entry *m, uint32_t n);

/* Reads vCPU fd's state into w (one SNAP_SEC_VCPU payload). */
int snap_vcpu_save(int fd, int vm_fd, uint32_t id, const uint32_t *msrs,
		   uint32_t nr_msrs, struct ser_w *w, struct err *e);

struct snap_vcpu_state {
	uint32_t id;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t *xsave; /* owned */
	uint32_t xsave_len;
	bool has_xcrs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_msr_entry *msrs; /* owned, in restore order */
	uint32_t nr_msrs;
};

/* Decodes a SNAP_SEC_VCPU payload; config-class error if malformed.
 * On failure s holds nothing to free. */
int snap_vcpu_decode(struct snap_vcpu_state *s, const uint8_t *p, uint64_t len,
		     struct err *e);
/* Writes s into vCPU fd (created, CPUID set, never run). */
int snap_vcpu_apply(int fd, int vm_fd, const struct snap_vcpu_state *s,
		    struct err *e);
void snap_vcpu_state_free(struct snap_vcpu_state *s);

struct snap_vm_state {
	struct kvm_irqchip chip[3]; /* PIC master, PIC slave, IOAPIC */
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};

int snap_vm_save(int vm_fd, struct ser_w *w, struct err *e);
int snap_vm_decode(struct snap_vm_state *s, const uint8_t *p, uint64_t len,
		   struct err *e);
/* The clock goes back with KVM_CLOCK_REALTIME when sys_fd's KVM offers
 * it (the guest's clock then includes the time the VM was away). */
int snap_vm_apply(int sys_fd, int vm_fd, const struct snap_vm_state *s,
		  struct err *e);

#endif
