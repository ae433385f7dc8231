/* SPDX-License-Identifier: MIT */
/*
 * Snapshots of a whole VM (docs/snapshot.md): the state file (the VM's
 * configuration, every vCPU, the in-kernel irqchip, PIT and clock, every
 * device) and the memory file (a sparse image of guest RAM), and a new VM
 * restored from the two in a fresh process.
 *
 * Create runs on the API thread while the VM is paused (vm_pause: every
 * vCPU parked outside KVM_RUN, every device quiesced), so nothing it
 * reads changes under it. Restore is a vm_create that takes its
 * configuration from the state file and, instead of loading a kernel,
 * fills guest RAM from the memory file and writes the saved state into
 * the new vCPUs and devices before any vCPU runs. The whole state file
 * is checked before the VM is built.
 */
#ifndef WISP_VMM_SNAPSHOT_H
#define WISP_VMM_SNAPSHOT_H

#include <stdbool.h>

#include "util/err.h"

struct vm;

enum vm_snapshot_type { VM_SNAPSHOT_FULL, VM_SNAPSHOT_DIFF };

struct vm_snapshot_req {
	enum vm_snapshot_type type;
	const char *snapshot_path; /* the state file */
	const char *mem_path; /* the memory file */
};

/* Writes the snapshot of a paused VM: -EBUSY (config class) when it is
 * not paused, -ENOTSUP for what cannot be saved yet (vhost=on,
 * vhost-user, --spawn-server). The VM stays paused and unchanged either way. */
int vm_snapshot_create(struct vm *vm, const struct vm_snapshot_req *r,
		       struct err *e);

enum vm_mem_backend { VM_MEM_FILE, VM_MEM_UFFD };

struct vm_restore_req {
	const char *snapshot_path;
	const char *mem_path; /* File: the memory file; Uffd: the socket */
	enum vm_mem_backend backend;
	bool paused; /* start with every vCPU parked (resume_vm false) */
	/* Uffd: the memory file wisp copies the missing pages in from when
	 * the handler dies or stops reading faults; NULL: the VM stops
	 * then (exit status 2). */
	const char *uffd_fallback;
	/* Track dirty pages from the restore on, for Diff snapshots of the
	 * restored VM (enable_diff_snapshots). */
	bool enable_diff;
};

/* Builds a VM from a snapshot, as vm_create builds one from a config:
 * *out is set even on failure and the caller always calls vm_destroy.
 * A state file that is truncated, corrupt, of another format version or
 * does not fit this host is refused (config class) before any vCPU has
 * run; vm_run then runs the restored VM. */
int vm_restore(const struct vm_restore_req *r, struct vm **out, struct err *e);

#endif
