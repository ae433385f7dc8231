/* SPDX-License-Identifier: MIT */
/*
 * Assembles a VM from a struct vm_config and runs it to its end.
 *
 * Threads (all named here):
 *   - the main thread runs the event loop: signals (signalfd), console
 *     input, the stop eventfd; it is the only thread that starts and joins
 *     others and tears the VM down;
 *   - one thread per vCPU runs KVM_RUN and dispatches port/MMIO exits to
 *     the buses on its own stack (forwarding to IOREQ servers included);
 *   - one I/O thread per in-process virtio device (src/virtio/iothread.c)
 *     runs its queue handlers when a doorbell eventfd fires.
 * The main loop also watches IOREQ server sockets (detach on hang-up),
 * retries detached servers every 200 ms and drains posted writes from
 * KVM's coalesced ring every millisecond while a server has posted
 * ranges.
 * A VM ends when any thread calls vm_request_stop(): the first caller's
 * exit code wins, the main loop wakes, sets immediate_exit on each vCPU
 * and kicks it with SIG_KICK (vcpu.h), then joins every thread.
 */
#ifndef WISP_VMM_VMM_H
#define WISP_VMM_VMM_H

#include "util/err.h"
#include "vmm/config.h"

/* Process exit codes, documented in the README. */
enum wisp_exit {
	WISP_EXIT_OK = 0, /* guest shut down or rebooted */
	WISP_EXIT_CONFIG = 1, /* bad arguments, kernel, initrd or sizes */
	WISP_EXIT_HOST = 2, /* /dev/kvm missing or lacking, host failure */
	WISP_EXIT_GUEST_CRASH = 3, /* triple fault, KVM internal error, ... */
	WISP_EXIT_PVM = 4, /* guest needs hardware virtualization (PVM host) */
	WISP_EXIT_SIGNAL_BASE = 128, /* + signal number: SIGINT, SIGTERM */
};

struct vm;

/* Builds the VM. Returns 0 or -errno with e saying what failed and whose
 * fault it is (vm_exit_code maps that to the exit status). *out is set
 * even on failure: the caller always calls vm_destroy, which releases
 * whatever was built. vm_create blocks SIGINT and SIGTERM in the calling
 * thread: from then on they reach the VM through its event loop. */
int vm_create(const struct vm_config *cfg, struct vm **out, struct err *e);

/* The process exit status for a failed vm_create (config 1, host 2). */
int vm_exit_code(const struct err *e);

/* Runs until the VM stops; returns the process exit code. */
int vm_run(struct vm *vm);

void vm_destroy(struct vm *vm);

#endif
