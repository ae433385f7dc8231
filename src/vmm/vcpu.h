/* SPDX-License-Identifier: MIT */
/*
 * The vCPU threads: each runs KVM_RUN and dispatches its own port and
 * MMIO exits (ioeventfd lanes served on the exit path, then the buses),
 * drains posted writes before it handles any exit (and before it parks,
 * so a paused VM's ring is empty: its devices' state is whole), and
 * reports a guest crash (registers on stderr) by stopping the VM with the
 * crash's code.
 *
 * Stopping: vcpus_stop sets immediate_exit on each vCPU and kicks it with
 * SIG_KICK until its thread has returned. A thread that does not return
 * within the bound (it is stuck in something outside KVM) is reported and
 * the vCPU state is deliberately leaked (vcpus_destroy does not free what
 * a live thread may still touch).
 *
 * Owns: the vCPU fds, their kvm_run mappings, the threads.
 */
#ifndef WISP_VMM_VCPU_H
#define WISP_VMM_VCPU_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "boot/boot.h"
#include "kvm/kvm.h"
#include "util/err.h"

/* A real-time signal: SIGUSR1 is the user's (a state dump, watchdog.h),
 * and util/efd.c has SIGRTMIN + 3. */
#define SIG_KICK (SIGRTMIN + 2)

struct vm;

enum vcpu_exit_kind {
	VCPU_EXIT_IO_IN,
	VCPU_EXIT_IO_OUT,
	VCPU_EXIT_MMIO_READ,
	VCPU_EXIT_MMIO_WRITE,
	VCPU_EXIT_INTR, /* KVM_RUN interrupted: a kick, a pause, a stop */
	VCPU_EXIT_OTHER,
	VCPU_EXIT_NR
};

/* One cache line (or more) each: exits[] is written on every exit, and a
 * neighbour's fields in the same line would bounce between the vCPUs'
 * cores (vcpus_create allocates the array aligned). */
struct vcpu {
	_Alignas(64) struct vm *vm;
	struct kvm_vcpu kv;
	pthread_t thread;
	bool started;
	bool leaked; /* its thread did not stop: never free */
	/* CLOCK_MONOTONIC ns of this vCPU's first exit (vCPU 0 only), for
	 * the start-up benchmark; written by the vCPU before its loop. */
	uint64_t first_exit_ns;
	/* Exits by kind, for the metrics: written by this vCPU only
	 * (relaxed load and store, no locked instruction), read by any. */
	uint64_t exits[VCPU_EXIT_NR];
};

/* PATCH /vm Paused: every vCPU parks (outside KVM_RUN, its last exit
 * completed) until resumed. */
struct vcpu_pause {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* parked changed, or want cleared */
	bool threads_up; /* vcpus_start has started them all */
	bool want;
	int parked;
	uint64_t since_ns, total_ns; /* time spent paused */
};

struct vcpus {
	struct vcpu *v;
	int n;
	struct vcpu_pause pause;
};

/* Creates n vCPUs and sets up their registers; vCPU 0 gets the boot
 * entry (NULL: no entry registers, a restore sets them). On failure the
 * created ones stay for vcpus_destroy. */
int vcpus_create(struct vcpus *vs, struct vm *vm, int n,
		 const struct boot_entry *entry, struct err *e);
/* Starts a thread per vCPU; on failure the VM is asked to stop. */
int vcpus_start(struct vcpus *vs, struct err *e);
/* Returns when every started thread has returned or was abandoned. */
void vcpus_stop(struct vcpus *vs);
void vcpus_destroy(struct vcpus *vs, struct kvm *kvm);
/* Parks every vCPU at an instruction boundary (out of KVM_RUN, any
 * pending I/O completed) and returns when all are parked, or -ETIMEDOUT
 * after bound_ms (then they are resumed again) with e set; -ESHUTDOWN if
 * the VM stops meanwhile. Any thread but a vCPU's. */
int vcpus_pause(struct vcpus *vs, int bound_ms, struct err *e);
void vcpus_resume(struct vcpus *vs);
/* Before vcpus_start: the vCPUs start parked, as after vcpus_pause (a
 * VM restored with resume_vm false); vcpus_resume lets them run. */
void vcpus_start_parked(struct vcpus *vs);
/* Called by a vCPU thread after KVM_RUN returned without an exit: parks
 * it while a pause is wanted. */
void vcpu_park(struct vcpu *vc);
void vcpu_pause_init(struct vcpu_pause *p);
/* Counts one exit (or, with run NULL, an interrupted KVM_RUN). */
void vcpu_count_exit(struct vcpu *vc, const struct kvm_run *run);
void vcpu_pause_destroy(struct vcpu_pause *p);

/* Installs the (empty) SIG_KICK handler; once per process. */
void vcpus_install_kick(void);

#endif
