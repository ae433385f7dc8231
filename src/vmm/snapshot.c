// SPDX-License-Identifier: MIT
/* Snapshot create and restore: puts the state file's sections in order
 * and hands each to the code that owns that state (src/snapshot for the
 * format, KVM and memory; devices.c for the devices). */
#include "vmm/snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "ioreq/client.h"
#include "mem/dirty.h"
#include "snapshot/config_state.h"
#include "snapshot/diff.h"
#include "snapshot/format.h"
#include "snapshot/kvm_state.h"
#include "snapshot/mem_dump.h"
#include "util/log.h"
#include "util/time.h"
#include "vmm/control.h"
#include "vmm/vm_priv.h"

#include "snapshot/mem_restore.h"

/* Everything a restore needs, decoded from the state file before the VM
 * is built. cfg's strings point into buf. */
struct vm_restore_state {
	uint8_t *buf;
	size_t len;
	struct snap_file f;
	struct vm_config cfg;
	struct snap_vm_state vmst;
	struct snap_vcpu_state *vcpu; /* cfg.cpus of them */
	int nr_vcpu;
	uint64_t mem_size;
	struct vm_restore_req req;
	struct {
		const uint8_t *p; /* in buf */
		uint32_t len;
	} server[VM_MAX_SERVERS];
	int nr_server;
};

static bool all_parked(struct vm *vm)
{
	struct vcpu_pause *p = &vm->vcpus.pause;
	bool ok;

	pthread_mutex_lock(&p->lock);
	ok = p->want && p->parked == vm->vcpus.n;
	pthread_mutex_unlock(&p->lock);
	return ok;
}

static int check_saveable(struct vm *vm, const struct vm_snapshot_req *r,
			  struct err *e)
{
	if (r->type == VM_SNAPSHOT_DIFF && !vm->cfg.track_dirty_pages)
		return err_config(e, -EINVAL,
				  "snapshot: a Diff snapshot needs dirty page "
				  "tracking (machine-config track_dirty_pages, "
				  "or enable_diff_snapshots on load)");
	/* A server writes guest RAM through its own mapping, where
	 * neither KVM's log nor ours sees it. */
	if (r->type == VM_SNAPSHOT_DIFF && vm->cfg.nr_servers)
		return err_config(e, -ENOTSUP,
				  "snapshot: a VM with IOREQ servers cannot "
				  "take Diff snapshots (their writes to guest "
				  "memory are not tracked); use Full");
	/* vhost-net moves frames in the kernel while the VM is paused, so
	 * its rings and guest RAM would not match in the files. */
	for (int i = 0; i < vm->cfg.nr_nets; i++)
		if (vm->cfg.nets[i].vhost)
			return err_config(
				e, -ENOTSUP,
				"snapshot: virtio-net %s runs on vhost-net "
				"(vhost=on), whose rings a snapshot cannot "
				"stop yet; use wisp's own device",
				vm->cfg.nets[i].id ? vm->cfg.nets[i].id :
						     vm->cfg.nets[i].tap);
	/* A back-end's rings live outside wisp, where the state file cannot
	 * reach them. */
	if (vm->cfg.nr_vhost_user)
		return err_config(e, -ENOTSUP,
				  "snapshot: a VM with vhost-user devices "
				  "cannot be saved yet");
	/* A state file is data: a spawned server is kept only as the
	 * description of one of wisp's own (snap_spawn_check). */
	for (int i = 0; i < vm->cfg.nr_servers; i++)
		if (vm->cfg.servers[i].spawn &&
		    snap_spawn_check(vm->cfg.servers[i].spawn, e))
			return -ENOTSUP;
	/* The device inside a server is in neither file unless the server
	 * gives its state: refused rather than restored half. */
	for (int i = 0; i < vm->servers.nr; i++)
		if (!ioreq_client_has_state(vm->servers.s[i].client))
			return err_config(
				e, -ENOTSUP,
				"snapshot: server '%s' is not attached or "
				"cannot save its device's state (no "
				"IOREQ_F_STATE): its device would not come "
				"back",
				vm->servers.s[i].socket_path);
	if (!all_parked(vm))
		return err_config(e, -EBUSY,
				  "snapshot: the VM must be paused first");
	return 0;
}

/* The servers' device states, taken before anything else. */
struct server_states {
	uint8_t *p[VM_MAX_SERVERS];
	size_t len[VM_MAX_SERVERS];
	int held; /* servers holding their device */
};

/* Each server's device state (docs/snapshot.md, "IOREQ servers"): the
 * server finishes its requests in flight and holds its device, so the
 * memory file has what they wrote and nothing moves until
 * servers_resume. First of all: the interrupts those completions raise
 * must be in the irqchip and LAPIC state saved after them. */
static int servers_hold(struct vm *vm, struct server_states *ss, struct err *e)
{
	for (int i = 0; i < vm->servers.nr; i++) {
		int ret = ioreq_client_state_save(vm->servers.s[i].client,
						  &ss->p[i], &ss->len[i], e);

		if (ret)
			return ret;
		ss->held = i + 1;
	}
	return 0;
}

static void servers_save(struct vm *vm, const struct server_states *ss,
			 struct snap_writer *sw)
{
	for (int i = 0; i < vm->servers.nr; i++) {
		snap_section_begin(sw, SNAP_SEC_SERVER);
		ser_u32(&sw->w, (uint32_t)i);
		ser_blob(&sw->w, ss->p[i], (uint32_t)ss->len[i]);
		snap_section_end(sw);
	}
}

/* Whatever the outcome: the servers' devices run on (the VM stays
 * paused, as for in-process devices, whose threads the pause parked). */
static void servers_resume(struct vm *vm, struct server_states *ss)
{
	for (int i = 0; i < ss->held; i++) {
		struct err e = { 0 };

		if (ioreq_client_state_resume(vm->servers.s[i].client, &e))
			log_warn("snapshot: %s", e.msg);
	}
	ss->held = 0;
	for (int i = 0; i < VM_MAX_SERVERS; i++) {
		free(ss->p[i]);
		ss->p[i] = NULL;
	}
}

static int save_state(struct vm *vm, struct snap_writer *sw,
		      const uint64_t *dirty, const struct server_states *ss,
		      struct err *e)
{
	uint32_t *msrs = NULL, nr_msrs = 0;
	int ret;

	snap_section_begin(sw, SNAP_SEC_CONFIG);
	snap_config_save(&vm->cfg, &sw->w);
	snap_section_end(sw);
	snap_section_begin(sw, SNAP_SEC_VM);
	ret = snap_vm_save(vm->kvm.vm_fd, &sw->w, e);
	snap_section_end(sw);
	if (ret)
		return ret;
	ret = snap_msr_list(vm->kvm.sys_fd, &msrs, &nr_msrs, e);
	if (ret)
		return ret;
	for (int i = 0; i < vm->vcpus.n && !ret; i++) {
		snap_section_begin(sw, SNAP_SEC_VCPU);
		ret = snap_vcpu_save(vm->vcpus.v[i].kv.fd, vm->kvm.vm_fd,
				     (uint32_t)i, msrs, nr_msrs, &sw->w, e);
		snap_section_end(sw);
	}
	free(msrs);
	if (ret)
		return ret;
	devices_save(vm, sw);
	servers_save(vm, ss, sw);
	snap_section_begin(sw, SNAP_SEC_MEMORY);
	ser_u64(&sw->w, vm->mem.size);
	snap_section_end(sw);
	if (dirty) {
		snap_section_begin(sw, SNAP_SEC_DIFF);
		snap_diff_save(&sw->w, vm->mem.size, dirty);
		snap_section_end(sw);
	}
	return snap_writer_finish(sw, e);
}

/* The pages written since the last snapshot: KVM's log of each RAM slot
 * (slot i is region i, by guest_mem's layout) and the VMM's own marks,
 * by offset in the memfd. Clears both. */
static int collect_dirty(struct vm *vm, uint64_t **out, struct err *e)
{
	uint64_t *bm = calloc(dirty_words(vm->mem.size), sizeof(uint64_t));
	int ret = 0;

	if (!bm)
		return err_set(e, -ENOMEM, "snapshot: out of memory");
	for (int i = 0; i < vm->mem.nr_regions && !ret; i++) {
		const struct guest_mem_region *g = &vm->mem.regions[i];

		ret = kvm_get_dirty_log(
			&vm->kvm, i, bm + (g->offset >> GUEST_PAGE_SHIFT) / 64,
			dirty_words(g->size), e);
	}
	guest_mem_dirty_collect(&vm->mem, bm);
	if (ret) {
		/* What was collected goes back: a later snapshot must
		 * still see it. */
		guest_mem_dirty_restore(&vm->mem, bm);
		free(bm);
		return ret;
	}
	*out = bm;
	return 0;
}

int vm_snapshot_create(struct vm *vm, const struct vm_snapshot_req *r,
		       struct err *e)
{
	struct snap_writer sw;
	uint64_t t0 = now_ns(), t1, data = 0, *dirty = NULL;
	bool diff = r->type == VM_SNAPSHOT_DIFF;
	struct server_states ss = { 0 };
	int ret = check_saveable(vm, r, e);

	if (ret)
		return ret;
	if (!r->snapshot_path || !r->mem_path)
		return err_config(e, -EINVAL,
				  "snapshot: snapshot_path and mem_file_path "
				  "are required");
	/* A Full snapshot with tracking on is the base of the next Diff:
	 * the logs restart here too. */
	if (vm->cfg.track_dirty_pages) {
		ret = collect_dirty(vm, &dirty, e);
		if (ret)
			return ret;
	}
	snap_writer_init(&sw);
	ret = servers_hold(vm, &ss, e);
	if (!ret)
		ret = save_state(vm, &sw, diff ? dirty : NULL, &ss, e);
	if (!ret && diff)
		ret = snap_diff_dump(vm->mem.host, vm->mem.size, dirty,
				     r->mem_path, &data, e);
	else if (!ret)
		ret = snap_mem_dump(snap_mem_restore_private(vm->mem_restore) ?
					    -1 :
					    vm->mem.memfd,
				    vm->mem.host, vm->mem.size, r->mem_path,
				    &data, e);
	t1 = now_ns();
	servers_resume(vm, &ss);
	if (!ret)
		ret = snap_write_file(r->snapshot_path, sw.w.p, sw.w.len, e);
	/* Not written: the pages stay dirty for the next try. */
	if (ret && dirty)
		guest_mem_dirty_restore(&vm->mem, dirty);
	free(dirty);
	if (!ret)
		log_info("snapshot: %s, %zu bytes of state, %llu MiB of %llu "
			 "MiB RAM written in %.3f ms (memory %.3f ms)",
			 diff ? "Diff" : "Full", sw.w.len,
			 (unsigned long long)(data >> 20),
			 (unsigned long long)(vm->mem.size >> 20),
			 (double)(now_ns() - t0) / 1e6,
			 (double)(t1 - t0) / 1e6);
	snap_writer_free(&sw);
	return ret;
}

void snapshot_restore_free(struct vm_restore_state *rs)
{
	if (!rs)
		return;
	for (int i = 0; i < rs->nr_vcpu; i++)
		snap_vcpu_state_free(&rs->vcpu[i]);
	free(rs->vcpu);
	free(rs->buf);
	free(rs);
}

/* Everything but the devices' payloads (checked by each device before it
 * changes anything) is decoded and checked here, before the VM exists. */
static int decode(struct vm_restore_state *rs, struct err *e)
{
	const struct snap_section *s;
	int pos = 0, ret;

	ret = snap_read_file(rs->req.snapshot_path, &rs->buf, &rs->len, e);
	if (ret)
		return ret;
	ret = snap_parse(&rs->f, rs->buf, rs->len, e);
	if (ret)
		return ret;
	s = snap_next(&rs->f, &pos, SNAP_SEC_CONFIG);
	if (!s)
		return err_config(e, -EINVAL, "snapshot: no configuration");
	ret = snap_config_decode(&rs->cfg, s->data, s->len, e);
	if (ret)
		return ret;
	for (int i = 0; i < rs->cfg.nr_servers; i++)
		if (rs->cfg.servers[i].spawn) {
			ret = snap_spawn_check(rs->cfg.servers[i].spawn, e);
			if (ret)
				return ret;
		}
	/* One device state per server, in order (the servers check what
	 * is inside). */
	pos = 0;
	while ((s = snap_next(&rs->f, &pos, SNAP_SEC_SERVER))) {
		struct ser_r r = { s->data, (size_t)s->len, 0, false };
		uint32_t idx = deser_u32(&r);
		const uint8_t *p;
		uint32_t len;

		p = deser_blob_ref(&r, IOREQ_MAX_STATE, &len);
		if (!deser_done(&r) || idx != (uint32_t)rs->nr_server ||
		    idx >= (uint32_t)rs->cfg.nr_servers)
			return err_config(e, -EINVAL,
					  "snapshot: server state section %d "
					  "malformed (for %d servers)",
					  rs->nr_server, rs->cfg.nr_servers);
		rs->server[idx].p = p;
		rs->server[idx].len = len;
		rs->nr_server++;
	}
	if (rs->nr_server != rs->cfg.nr_servers)
		return err_config(e, -EINVAL,
				  "snapshot: %d server state sections for %d "
				  "servers",
				  rs->nr_server, rs->cfg.nr_servers);
	pos = 0;
	s = snap_next(&rs->f, &pos, SNAP_SEC_VM);
	if (!s)
		return err_config(e, -EINVAL, "snapshot: no VM section");
	ret = snap_vm_decode(&rs->vmst, s->data, s->len, e);
	if (ret)
		return ret;
	rs->vcpu = calloc((size_t)rs->cfg.cpus, sizeof(*rs->vcpu));
	if (!rs->vcpu)
		return err_set(e, -ENOMEM, "restore: out of memory");
	pos = 0;
	while ((s = snap_next(&rs->f, &pos, SNAP_SEC_VCPU))) {
		struct snap_vcpu_state *v;

		if (rs->nr_vcpu >= rs->cfg.cpus)
			return err_config(e, -EINVAL,
					  "snapshot: more vCPU sections than "
					  "its %d vCPUs",
					  rs->cfg.cpus);
		v = &rs->vcpu[rs->nr_vcpu];
		ret = snap_vcpu_decode(v, s->data, s->len, e);
		if (ret)
			return ret;
		rs->nr_vcpu++;
		if (v->id != (uint32_t)rs->nr_vcpu - 1)
			return err_config(e, -EINVAL,
					  "snapshot: vCPU section %d has id %u",
					  rs->nr_vcpu - 1, v->id);
	}
	if (rs->nr_vcpu != rs->cfg.cpus)
		return err_config(e, -EINVAL,
				  "snapshot: %d vCPU sections for %d vCPUs",
				  rs->nr_vcpu, rs->cfg.cpus);
	pos = 0;
	s = snap_next(&rs->f, &pos, SNAP_SEC_MEMORY);
	if (!s || s->len != 8)
		return err_config(e, -EINVAL,
				  "snapshot: memory section missing or "
				  "malformed");
	rs->mem_size = le64(s->data);
	pos = 0;
	if (snap_next(&rs->f, &pos, SNAP_SEC_DIFF))
		return err_config(e, -EINVAL,
				  "snapshot '%s' is a Diff snapshot: its "
				  "memory file holds only the pages written "
				  "since the snapshot before it; merge it onto "
				  "that one's memory file first (wisp "
				  "snapshot-merge)",
				  rs->req.snapshot_path);
	rs->cfg.track_dirty_pages = rs->req.enable_diff;
	if (rs->mem_size != rs->cfg.memory_mib << 20)
		return err_config(e, -EINVAL,
				  "snapshot: %llu bytes of RAM for a %llu MiB "
				  "VM",
				  (unsigned long long)rs->mem_size,
				  (unsigned long long)rs->cfg.memory_mib);
	return 0;
}

int vm_restore(const struct vm_restore_req *r, struct vm **out, struct err *e)
{
	struct vm_restore_state *rs = calloc(1, sizeof(*rs));
	int ret;

	*out = NULL;
	if (!rs)
		return err_set(e, -ENOMEM, "restore: out of memory");
	rs->req = *r;
	if (!r->snapshot_path || !r->mem_path) {
		snapshot_restore_free(rs);
		return err_config(e, -EINVAL,
				  "restore: a snapshot and a memory path are "
				  "required");
	}
	ret = decode(rs, e);
	if (ret) {
		snapshot_restore_free(rs);
		return ret;
	}
	/* From here on the VM owns rs (and cfg's strings in its buffer). */
	return vm_create_restored(&rs->cfg, rs, out, e);
}

/* The uffd handler failed and nothing can serve the missing pages: the
 * vCPUs waiting on them would wait for ever (the monitor logged why). */
static void mem_failed(void *ctx, const char *msg)
{
	vm_request_stop(ctx, WISP_EXIT_HOST);
}

int snapshot_restore_memory(struct vm *vm, struct err *e)
{
	struct vm_restore_state *rs = vm->rs;
	enum snap_mem_backend b =
		rs->req.backend == VM_MEM_UFFD ? SNAP_MEM_UFFD : SNAP_MEM_FILE;
	int ret;

	ret = snap_mem_restore_start(&vm->mem_restore, b, rs->req.mem_path,
				     vm->mem.memfd, vm->mem.host,
				     (size_t)vm->mem.size,
				     vm->cfg.nr_servers > 0, e);
	if (ret)
		return ret;
	return snap_mem_restore_set_fallback(
		vm->mem_restore, rs->req.uffd_fallback, mem_failed, vm, e);
}

int snapshot_restore_state(struct vm *vm, struct err *e)
{
	struct vm_restore_state *rs = vm->rs;
	int ret;

	ret = snap_vm_apply(vm->kvm.sys_fd, vm->kvm.vm_fd, &rs->vmst, e);
	for (int i = 0; !ret && i < vm->vcpus.n; i++)
		ret = snap_vcpu_apply(vm->vcpus.v[i].kv.fd, vm->kvm.vm_fd,
				      &rs->vcpu[i], e);
	if (!ret)
		ret = devices_load(vm, &rs->f, e);
	/* After the devices: the virtio-iommu's mappings, restored above,
	 * reach a server behind it before its rings are checked through
	 * them. */
	for (int i = 0; !ret && i < vm->servers.nr; i++)
		ret = ioreq_client_state_load(vm->servers.s[i].client,
					      rs->server[i].p,
					      rs->server[i].len, e);
	return ret;
}

void snapshot_restore_start(struct vm *vm)
{
	/* The guest was stopped on purpose: a kvmclock guest's watchdogs
	 * must not count the time it was away (EINVAL without kvmclock). */
	for (int i = 0; i < vm->vcpus.n; i++)
		ioctl(vm->vcpus.v[i].kv.fd, KVM_KVMCLOCK_CTRL, 0);
	/* Paused as vm_pause leaves a VM: the devices' threads parked too
	 * (a snapshot of it must not see them work); the kicks below then
	 * wait for the resume. */
	if (vm->rs->req.paused) {
		vcpus_start_parked(&vm->vcpus);
		for (int i = 0; i < vm->dev.nr_virtio; i++) {
			struct virtio_mmio *t = vm->dev.virtio[i];

			if (virtio_iothread_pause(&t->io, VM_PAUSE_BOUND_MS))
				log_warn("%s: I/O thread did not park within "
					 "%d ms",
					 t->dev->name, VM_PAUSE_BOUND_MS);
		}
	}
	for (int i = 0; i < vm->dev.nr_virtio; i++)
		virtio_mmio_resignal(vm->dev.virtio[i]);
}
