/* SPDX-License-Identifier: MIT */
/*
 * Control of a running VM from another thread (the API's): pause, resume
 * and counters. Valid between vm_create's success and vm_destroy; the
 * caller makes sure no call is in flight when it destroys the VM.
 */
#ifndef WISP_VMM_CONTROL_H
#define WISP_VMM_CONTROL_H

#include <stdint.h>

#include "devices/blk/blk.h"
#include "devices/console/console.h"
#include "devices/net/net.h"
#include "devices/rng/rng.h"
#include "ioreq/client.h"
#include "util/err.h"
#include "vmm/config.h"
#include "vmm/vmm.h"

/* How long vm_pause waits for every vCPU to leave KVM_RUN. */
#define VM_PAUSE_BOUND_MS 2000

/* Every vCPU out of KVM_RUN at an instruction boundary, parked, then
 * every virtio device's I/O thread parked after its requests in flight
 * completed (ops->quiesce); 0, or -ETIMEDOUT / -ESHUTDOWN with e set and
 * the VM running as before. Each step waits at most VM_PAUSE_BOUND_MS. */
int vm_pause(struct vm *vm, struct err *e);
void vm_resume(struct vm *vm);

/* Types Ctrl+Alt+Del on the i8042 keyboard (Firecracker's
 * SendCtrlAltDel). -EBUSY with e set when the guest has not read the
 * last one or disabled its keyboard. */
int vm_send_ctrl_alt_del(struct vm *vm, struct err *e);

/* New rate limits for the index-th in-process disk or network device of
 * the configuration (rx / tx NULL: unchanged); -ENODEV with e set when
 * there is no such device (e.g. served by an IOREQ server). */
int vm_set_disk_limits(struct vm *vm, int index, const struct rl_config *rl,
		       struct err *e);
int vm_set_net_limits(struct vm *vm, int index, const struct rl_config *rx,
		      const struct rl_config *tx, struct err *e);

/* The kinds of enum vcpu_exit_kind, in order, for the metrics. */
#define VM_EXIT_KIND_NAMES                                                  \
	{                                                                   \
		"exit_io_in", "exit_io_out", "exit_mmio_read",              \
			"exit_mmio_write", "exit_interrupted", "exit_other" \
	}
#define VM_EXIT_KINDS 6
#define VM_STATS_MAX_VCPUS 32

struct vm_stats {
	int vcpus;
	/* Per vCPU (the first VM_STATS_MAX_VCPUS), by kind. */
	uint64_t exits[VM_STATS_MAX_VCPUS][VM_EXIT_KINDS];
	uint64_t paused_ns; /* total time spent paused */
	uint64_t first_exit_ns; /* CLOCK_MONOTONIC of vCPU 0's first exit */
	/* The virtio devices, in the configuration's order. */
	int nr_disks;
	struct {
		char id[32]; /* the disk's id (drive_id, cut to 20), or blkN */
		struct blk_stats st;
	} disks[VM_MAX_DISKS];
	/* Network interfaces, in the configuration's order; vhost is a
	 * vhost=on device, whose frames the kernel counts, not wisp. */
	int nr_nets;
	struct {
		char id[32]; /* the interface's id (iface_id), or its tap */
		bool vhost;
		struct net_stats st;
	} nets[VM_MAX_NETS];
	bool has_rng, has_vconsole;
	struct rng_stats rng;
	struct vconsole_stats vconsole;
	/* IOREQ servers: sync = round trips a vCPU waited for. */
	int nr_servers;
	struct {
		char socket[108];
		struct ioreq_stats st;
	} servers[VM_MAX_SERVERS];
};

/* Reads the counters without any lock a vCPU or an I/O thread takes on
 * its hot path (each counter is a relaxed atomic); s is filled whole. */
void vm_get_stats(struct vm *vm, struct vm_stats *s);

#endif
