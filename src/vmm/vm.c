// SPDX-License-Identifier: MIT
/* Creating, running and destroying a VM; the stop state. The jobs are in
 * their own files (see vm_priv.h); this one only puts them in order. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/cpu.h"
#include "ioreq/proto.h"
#include "mem/dirty.h"
#include "snapshot/mem_restore.h"
#include "sandbox/seccomp.h"
#include "util/log.h"
#include "vmm/term.h"

int vm_exit_code(const struct err *e)
{
	switch (e->cls) {
	case ERR_CONFIG:
		return WISP_EXIT_CONFIG;
	case ERR_GUEST:
		return WISP_EXIT_GUEST_CRASH;
	case ERR_HOST:
	default:
		return WISP_EXIT_HOST;
	}
}

void vm_request_stop(struct vm *vm, int code)
{
	int expected = 0;

	/* exit_code is published by the successful CAS (seq_cst), and read
	 * by the main thread only after it saw stopping set. */
	if (!atomic_compare_exchange_strong(&vm->stopping, &expected, -1))
		return;
	vm->exit_code = code;
	atomic_store(&vm->stopping, 1);
	loop_wake(&vm->loop);
}

bool vm_is_stopping(struct vm *vm)
{
	return atomic_load(&vm->stopping) != 0;
}

static void on_signal(void *opaque, int signo)
{
	struct vm *vm = opaque;

	if (signo == SIGUSR1) {
		vm_dump_state(vm, "SIGUSR1");
		return;
	}
	/* A first SIGTERM may ask the guest to power off (power.h). */
	if (power_signal(&vm->power, signo))
		return;
	log_info("signal %d: stopping the VM", signo);
	vm_request_stop(vm, WISP_EXIT_SIGNAL_BASE + signo);
}

static void on_escape(void *opaque)
{
	vm_request_stop(opaque, WISP_EXIT_SIGNAL_BASE + SIGINT);
}

/* The registry mirrors each lane into KVM when KVM takes it. */
static int kvm_lane_assign(void *opaque, uint64_t addr, uint32_t len,
			   uint32_t flags, uint64_t datamatch, int fd)
{
	struct vm *vm = opaque;

	return kvm_ioeventfd(&vm->kvm, addr, len, flags & IOEVR_F_PIO,
			     flags & IOEVR_F_DATAMATCH, datamatch, fd, false);
}

static int kvm_lane_deassign(void *opaque, uint64_t addr, uint32_t len,
			     uint32_t flags, uint64_t datamatch, int fd)
{
	struct vm *vm = opaque;

	return kvm_ioeventfd(&vm->kvm, addr, len, flags & IOEVR_F_PIO,
			     flags & IOEVR_F_DATAMATCH, datamatch, fd, true);
}

static int setup_memory(struct vm *vm, struct err *e)
{
	int ret = guest_mem_init(&vm->mem, vm->cfg.memory_mib << 20, e);

	if (!ret && vm->cfg.track_dirty_pages)
		ret = guest_mem_dirty_enable(&vm->mem, e);
	if (ret)
		return ret;
	vm->kvm.log_dirty = vm->cfg.track_dirty_pages;
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_mem_region *r = &vm->mem.regions[i];

		ret = kvm_add_memory(&vm->kvm, r->gpa, r->size,
				     vm->mem.host + r->offset, e);
		if (ret)
			return ret;
	}
	return 0;
}

static int load_guest(struct vm *vm, struct err *e)
{
	char *cmdline = NULL;
	int ret;

	ret = layout_cmdline(&vm->layout, &vm->cfg, &cmdline, e);
	if (ret)
		return ret;
	ret = boot_load_files(&vm->mem, vm->cfg.kernel, vm->cfg.initrd, cmdline,
			      &vm->entry, e);
	free(cmdline);
	if (ret)
		return ret;
	ret = layout_write_tables(&vm->layout, &vm->mem, &vm->cfg, &vm->entry,
				  e);
	if (ret)
		return ret;
	return cpu_write_boot_tables(&vm->mem, &vm->entry, e);
}

/* On PVM an unmodified Linux stops at its first exception: as an
 * internal error (reported with exit 4), or, when the exception is the
 * bzImage decompressor's own page fault, as a silent hang. Say so before
 * it happens. Freestanding guests that take no exceptions run fine. */
static void warn_pvm(struct vm *vm)
{
	if (!vm->kvm.pvm || !vm->entry.linux_kernel)
		return;
	log_warn("/dev/kvm on this host is PVM (no VT-x/AMD-V): a Linux kernel "
		 "that is not PVM-aware stops at its first exception here "
		 "(an internal error, or a hang in the bzImage decompressor). "
		 "Boot Linux on a host with hardware virtualization, or in the "
		 "nested rig: tests/rig/run.sh (see README).");
}

static void preinit(struct vm *vm, const struct vm_config *cfg)
{
	sigset_t block;

	vm->cfg = *cfg;
	vm->kvm.sys_fd = vm->kvm.vm_fd = -1;
	vm->mem.memfd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	loop_preinit(&vm->loop);
	watchdog_preinit(&vm->wd);
	devices_preinit(&vm->dev, vm);
	power_preinit(&vm->power, vm);
	posted_init(&vm->posted, &vm->kvm, &vm->pio, &vm->mmio);
	servers_init(&vm->servers, &vm->kvm, &vm->mem, &vm->ioev, &vm->posted,
		     &vm->loop, cfg->cpus);
	/* From here on SIGINT/SIGTERM arrive through the loop's signalfd;
	 * threads created later inherit the mask. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIG_KICK);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
}

/* A VM from cfg; with vm->rs set, restored from a snapshot instead of
 * booting a kernel. */
static int build(struct vm *vm, const struct vm_config *cfg, struct err *e)
{
	int ret;

	if (cfg->cpus < 1 || cfg->cpus > layout_max_cpus(cfg))
		return err_config(e, -EINVAL, "--cpus %d: must be 1..%d%s",
				  cfg->cpus, layout_max_cpus(cfg),
				  cfg->acpi ? "" : " with --acpi off");
	/* A server has a request slot per vCPU plus one (servers.c). */
	if (cfg->nr_servers && cfg->cpus + 1 > IOREQ_MAX_VCPUS)
		return err_config(e, -EINVAL,
				  "--cpus %d: with IOREQ servers at most %d",
				  cfg->cpus, IOREQ_MAX_VCPUS - 1);
	ret = loop_init(&vm->loop, on_signal, vm, e);
	if (ret)
		return ret;
	ret = kvm_open(&vm->kvm, e);
	if (ret)
		return ret;
	if (cfg->cpus > vm->kvm.max_vcpus)
		return err_config(e, -EINVAL,
				  "--cpus %d: this host's KVM allows %d",
				  cfg->cpus, vm->kvm.max_vcpus);
	ret = kvm_create_vm(&vm->kvm, e);
	if (ret)
		return ret;
	{
		const struct ioevr_host lanes = { kvm_lane_assign,
						  kvm_lane_deassign, vm };

		ret = ioevr_init(&vm->ioev, &lanes);
		if (ret)
			return err_set(e, ret, "ioeventfd registry: %s",
				       strerror(-ret));
		vm->ioev_ready = true;
	}
	ret = setup_memory(vm, e);
	if (!ret && vm->rs) {
		ret = snapshot_restore_memory(vm, e);
		/* The image just restored is the base of the next Diff. */
		guest_mem_dirty_all_clean(&vm->mem);
	}
	if (!ret)
		ret = devices_create_virtio(vm, e);
	/* With --iommu the servers' devices go behind it too (but those
	 * with --server-iommu off). */
	vm->servers.iommu = vm->dev.iommu;
	if (!ret)
		ret = servers_create(&vm->servers, cfg, &vm->layout, &vm->mmio,
				     e);
	/* A restored guest's kernel, tables and command line are in RAM. */
	if (!ret && !vm->rs)
		ret = load_guest(vm, e);
	if (ret)
		return ret;
	warn_pvm(vm);
	console_in_init(&vm->con, &vm->loop, &vm->dev.serial, vm->dev.vconsole,
			on_escape, vm);
	vm->con_ready = true;
	ret = devices_create_legacy(vm, console_in_space, &vm->con, e);
	if (!ret)
		ret = power_create(&vm->power, e);
	if (ret)
		return ret;
	vm->con.attached = vm->dev.stdin_console;
	ret = vcpus_create(&vm->vcpus, vm, cfg->cpus,
			   vm->rs ? NULL : &vm->entry, e);
	if (!ret && vm->rs)
		ret = snapshot_restore_state(vm, e);
	if (ret)
		return ret;
	posted_set_ring(&vm->posted,
			kvm_coalesced_ring(&vm->kvm, &vm->vcpus.v[0].kv));
	ret = posted_start(&vm->posted, &vm->loop, e);
	if (!ret)
		ret = servers_start(&vm->servers, e);
	if (ret)
		return ret;
	console_in_start(&vm->con);
	return watchdog_start(vm, e);
}

int vm_create(const struct vm_config *cfg, struct vm **out, struct err *e)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	*out = vm;
	if (!vm)
		return err_set(e, -ENOMEM, "out of memory");
	preinit(vm, cfg);
	return build(vm, cfg, e);
}

int vm_create_restored(const struct vm_config *cfg, struct vm_restore_state *rs,
		       struct vm **out, struct err *e)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	*out = vm;
	if (!vm) {
		snapshot_restore_free(rs);
		return err_set(e, -ENOMEM, "out of memory");
	}
	preinit(vm, cfg);
	vm->rs = rs;
	return build(vm, cfg, e);
}

int vm_run(struct vm *vm)
{
	struct err e = { 0 };

	vcpus_install_kick();
	signal(SIGPIPE, SIG_IGN);
	if (vm->con.attached && term_raw_enter(STDIN_FILENO) == 0)
		log_info("console: raw mode; Ctrl-A x quits");
	if (vm->rs)
		snapshot_restore_start(vm);
	if (vcpus_start(&vm->vcpus, &e)) {
		log_error("%s", e.msg);
		vm_request_stop(vm, WISP_EXIT_HOST);
	}
	/* After the last thread this thread creates, so no thread inherits
	 * the loop's table (docs/sandbox.md). */
	sb_seccomp_enter(SB_LOOP);
	while (!vm_is_stopping(vm)) {
		int ret = loop_run_once(&vm->loop, -1);

		if (ret) {
			log_error("event loop: %s", strerror(-ret));
			vm_request_stop(vm, WISP_EXIT_HOST);
		}
	}
	/* Wait until the stopper has published exit_code. */
	while (atomic_load(&vm->stopping) < 0)
		sched_yield();
	vcpus_stop(&vm->vcpus);
	/* Console bytes the guest posted after its last exit (vcpu.c drains
	 * only before handling one) still reach the console. */
	posted_drain(&vm->posted);
	term_restore();
	/* Where was the guest when it was stopped from outside? Cheap to
	 * print, and the first question when a guest seems hung. */
	if (vm->exit_code >= WISP_EXIT_SIGNAL_BASE && log_enabled(LOG_DEBUG))
		for (int i = 0; i < vm->vcpus.n; i++)
			cpu_dump_regs(&vm->vcpus.v[i].kv, LOG_DEBUG);
	if (vm->vcpus.n && vm->vcpus.v[0].first_exit_ns)
		log_debug("first guest I/O exit at CLOCK_MONOTONIC %llu ns",
			  (unsigned long long)vm->vcpus.v[0].first_exit_ns);
	return vm->exit_code;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	vcpus_destroy(&vm->vcpus, &vm->kvm);
	if (vm->vcpus.v) {
		/* A vCPU thread never returned and may still touch the VM:
		 * leave everything mapped; the process is about to exit. */
		term_restore();
		return;
	}
	servers_destroy(&vm->servers);
	posted_destroy(&vm->posted, &vm->loop);
	if (vm->con_ready)
		console_in_destroy(&vm->con);
	devices_destroy(&vm->dev);
	power_destroy(&vm->power);
	watchdog_destroy(&vm->wd);
	if (vm->ioev_ready)
		ioevr_destroy(&vm->ioev);
	loop_destroy(&vm->loop);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	snap_mem_restore_stop(vm->mem_restore);
	guest_mem_destroy(&vm->mem);
	kvm_close(&vm->kvm);
	term_restore();
	snapshot_restore_free(vm->rs);
	free(vm);
}
