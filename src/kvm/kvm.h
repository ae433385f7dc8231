/* SPDX-License-Identifier: MIT */
/*
 * The KVM boundary: /dev/kvm, the VM fd, vCPU fds and their kvm_run
 * mappings, the capability table, memory slots and interrupt lines.
 * Everything above this folder talks to KVM through these functions (the
 * arch/x86 vCPU setup passes its register blocks through kvm_vcpu_ioctl).
 *
 * Threads: struct kvm is written during setup (before vCPU threads start)
 * and read-only afterwards; KVM's own ioctls are thread-safe. Each struct
 * kvm_vcpu and its kvm_run page belong to that vCPU's thread, except
 * run->immediate_exit, which the stopping thread sets (a plain byte store
 * that KVM reads at entry) before kicking the thread with a signal.
 */
#ifndef WISP_KVM_KVM_H
#define WISP_KVM_KVM_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "util/err.h"

struct kvm {
	int sys_fd;
	int vm_fd;
	int run_size; /* KVM_GET_VCPU_MMAP_SIZE */
	int max_vcpus;
	bool pvm; /* host KVM is PVM (no hardware virtualization) */
	struct kvm_cpuid2 *supported_cpuid;
	int nr_slots;
	/* Slots added from now on log the guest's writes (KVM's dirty log,
	 * for Diff snapshots); set before kvm_add_memory. */
	bool log_dirty;
	int coalesced_page; /* KVM_CAP_COALESCED_MMIO: page offset, 0: none */
	bool coalesced_pio; /* KVM_CAP_COALESCED_PIO (and a ring page) */
	bool irqchip; /* in-kernel irqchip and PIT created */
	bool tsc_deadline; /* KVM_CAP_TSC_DEADLINE_TIMER */
	bool get_tsc_khz; /* KVM_CAP_GET_TSC_KHZ */
};

struct kvm_vcpu {
	int id;
	int fd;
	struct kvm_run *run;
};

/* Opens /dev/kvm, checks the API version and every capability in one
 * table (naming the first missing one), reads the supported CPUID. */
int kvm_open(struct kvm *k, struct err *e);

/* Creates the VM with its TSS and identity-map addresses set. The
 * in-kernel irqchip and PIT follow on the first call that needs them
 * (kvm_create_vcpu, kvm_irqfd, kvm_irq_line), so memory slots added
 * before that are cheap: add guest RAM first. */
int kvm_create_vm(struct kvm *k, struct err *e);

int kvm_add_memory(struct kvm *k, uint64_t gpa, uint64_t size, void *hva,
		   struct err *e);

/* The pages the guest wrote in slot since the last call (or since the
 * slot was added), one bit per 4 KiB page ORed into bitmap (which must
 * hold the slot's pages rounded up to 64 bits), and clears KVM's log.
 * The slot must have been added with log_dirty. */
int kvm_get_dirty_log(struct kvm *k, int slot, uint64_t *bitmap, uint64_t words,
		      struct err *e);

int kvm_create_vcpu(struct kvm *k, int id, struct kvm_vcpu *v, struct err *e);
void kvm_destroy_vcpu(struct kvm *k, struct kvm_vcpu *v);

/* Sets an irqchip input line (GSI) to level. Thread-safe. */
int kvm_irq_line(struct kvm *k, uint32_t gsi, int level);

/* KVM_IOEVENTFD: a guest write of len bytes at addr (MMIO, or port I/O
 * with pio) signals efd without leaving the kernel; with datamatch only
 * when the value equals it. Returns 0 or -errno. */
int kvm_ioeventfd(struct kvm *k, uint64_t addr, uint32_t len, bool pio,
		  bool datamatch, uint64_t value, int efd, bool deassign);

/* KVM_(UN)REGISTER_COALESCED_MMIO: guest writes into [addr, addr+size)
 * are appended to the VM's coalesced ring instead of exiting. */
int kvm_coalesced_mmio(struct kvm *k, uint64_t addr, uint32_t size,
		       bool unregister);

/* The same for guest OUTs to ports [port, port+size) (the ring entry
 * then has pio set); -EOPNOTSUPP without KVM_CAP_COALESCED_PIO. */
int kvm_coalesced_pio(struct kvm *k, uint16_t port, uint32_t size,
		      bool unregister);

/* The coalesced ring, inside vCPU 0's kvm_run mapping (NULL if KVM has
 * none). Shared by all vCPUs; the caller serializes consumers. */
struct kvm_coalesced_mmio_ring *kvm_coalesced_ring(struct kvm *k,
						   struct kvm_vcpu *v0);

/* KVM_IRQFD: a write to efd injects an edge on gsi. */
int kvm_irqfd(struct kvm *k, int efd, uint32_t gsi, bool deassign);

void kvm_close(struct kvm *k);

/* True when the host's KVM is PVM: the kvm_pvm module is loaded, or the
 * CPU has neither vmx nor svm. */
bool kvm_host_is_pvm(void);

#endif
