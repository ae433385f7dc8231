/* SPDX-License-Identifier: MIT */
/*
 * struct vm: what one VM is made of, one member per job, each job in its
 * own file (vm.c create/run/destroy and the stop state, vcpu.c, loop.c,
 * console_in.c, layout.c, devices.c, servers.c, posted.c, watchdog.c). Private to
 * src/vmm.
 */
#ifndef WISP_VMM_VM_PRIV_H
#define WISP_VMM_VM_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>

#include "boot/boot.h"
#include "bus/bus.h"
#include "bus/ioeventfd.h"
#include "kvm/kvm.h"
#include "mem/guest_mem.h"
#include "vmm/console_in.h"
#include "vmm/devices.h"
#include "vmm/layout.h"
#include "vmm/loop.h"
#include "vmm/posted.h"
#include "vmm/power.h"
#include "vmm/servers.h"
#include "vmm/vcpu.h"
#include "vmm/vmm.h"
#include "vmm/watchdog.h"

struct vm {
	struct vm_config cfg;
	struct kvm kvm;
	struct guest_mem mem;
	struct bus pio, mmio; /* fixed before vCPUs start: no lock */
	/* Doorbell lanes: mirrored into KVM, else served on the exit path.
	 * Has its own lock (lanes change when a server re-attaches). */
	struct ioeventfd_registry ioev;
	bool ioev_ready;
	struct layout layout;
	struct vm_devices dev;
	struct console_in con;
	bool con_ready;
	struct servers servers;
	struct posted posted;
	struct power power; /* ACPI PM ports, power button, stop timer */
	struct vcpus vcpus;
	struct event_loop loop;
	struct boot_entry entry;
	struct watchdog wd; /* SIGUSR1 dumps, --watchdog */

	/* The first stop request wins: stopping goes 0 -> -1 -> 1 once,
	 * and the thread that flipped it wrote exit_code in between. */
	atomic_int stopping;
	int exit_code;

	/* Restored from a snapshot (snapshot.c): the decoded state file
	 * (cfg's strings live in it) and guest RAM's backend. NULL for a
	 * VM that boots. */
	struct vm_restore_state *rs;
	struct snap_mem_restore *mem_restore;
};

/* Any thread: ask the VM to stop with this exit code (first one wins). */
void vm_request_stop(struct vm *vm, int code);
bool vm_is_stopping(struct vm *vm);

/* snapshot.c's steps inside vm_create_restored (vm.c), in this order:
 * guest RAM from the memory file once it is mapped; the saved state into
 * the VM, vCPUs and devices once they exist; kvmclock, queue re-signals
 * and the paused start just before the vCPUs start. */
struct vm_restore_state;
int vm_create_restored(const struct vm_config *cfg, struct vm_restore_state *rs,
		       struct vm **out, struct err *e);
int snapshot_restore_memory(struct vm *vm, struct err *e);
int snapshot_restore_state(struct vm *vm, struct err *e);
void snapshot_restore_start(struct vm *vm);
void snapshot_restore_free(struct vm_restore_state *rs);

#endif
