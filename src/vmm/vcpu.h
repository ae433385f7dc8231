/* SPDX-License-Identifier: MIT */
/*
 * The vCPU threads: each runs KVM_RUN and dispatches its own port and
 * MMIO exits (ioeventfd lanes served on the exit path, then the buses),
 * drains posted writes before it handles any exit, and reports a guest
 * crash (registers on stderr) by stopping the VM with the crash's code.
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
#include <stdatomic.h>
#include <stdbool.h>

#include "boot/boot.h"
#include "kvm/kvm.h"
#include "util/err.h"

#define SIG_KICK SIGUSR1

struct vm;

struct vcpu {
	struct vm *vm;
	struct kvm_vcpu kv;
	pthread_t thread;
	bool started;
	bool leaked; /* its thread did not stop: never free */
	/* CLOCK_MONOTONIC ns of this vCPU's first exit (vCPU 0 only), for
	 * the start-up benchmark; written by the vCPU before its loop. */
	uint64_t first_exit_ns;
};

struct vcpus {
	struct vcpu *v;
	int n;
};

/* Creates n vCPUs and sets up their registers; vCPU 0 gets the boot
 * entry. On failure the created ones stay for vcpus_destroy. */
int vcpus_create(struct vcpus *vs, struct vm *vm, int n,
		 const struct boot_entry *entry, struct err *e);
/* Starts a thread per vCPU; on failure the VM is asked to stop. */
int vcpus_start(struct vcpus *vs, struct err *e);
/* Returns when every started thread has returned or was abandoned. */
void vcpus_stop(struct vcpus *vs);
void vcpus_destroy(struct vcpus *vs, struct kvm *kvm);
/* Installs the (empty) SIG_KICK handler; once per process. */
void vcpus_install_kick(void);

#endif
