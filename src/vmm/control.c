// SPDX-License-Identifier: MIT
#include "vmm/control.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "devices/net/net.h"
#include "util/time.h"
#include "vmm/vm_priv.h"

/* vCPUs first (no new kicks), then each device's I/O thread, which
 * completes or drops what is in flight before it parks. */
int vm_pause(struct vm *vm, struct err *e)
{
	int ret = vcpus_pause(&vm->vcpus, VM_PAUSE_BOUND_MS, e);

	if (ret)
		return ret;
	for (int i = 0; i < vm->dev.nr_virtio; i++) {
		struct virtio_mmio *t = vm->dev.virtio[i];

		ret = virtio_iothread_pause(&t->io, VM_PAUSE_BOUND_MS);
		if (ret) {
			while (i-- > 0)
				virtio_iothread_resume(&vm->dev.virtio[i]->io);
			vcpus_resume(&vm->vcpus);
			return err_set(e, ret,
				       "pause: %s: I/O thread did not stop "
				       "within %d ms",
				       t->dev->name, VM_PAUSE_BOUND_MS);
		}
	}
	return 0;
}

void vm_resume(struct vm *vm)
{
	for (int i = 0; i < vm->dev.nr_virtio; i++)
		virtio_iothread_resume(&vm->dev.virtio[i]->io);
	vcpus_resume(&vm->vcpus);
}

/* With ACPI the FADT says there is no 8042, so a Linux guest never reads
 * the keyboard: the power button is what reaches it. The keys are typed
 * as well, for guests that poll the i8042 (and for --acpi off). */
int vm_send_ctrl_alt_del(struct vm *vm, struct err *e)
{
	int ret = i8042_ctrl_alt_del(&vm->dev.i8042);

	if (vm->power.attached) {
		acpi_pm_press_power(&vm->power.pm);
		return 0;
	}
	if (ret)
		return err_config(e, ret,
				  "SendCtrlAltDel: the guest's keyboard is "
				  "disabled or has not read the last keys");
	return 0;
}

/* The index-th in-process virtio device of type id, in creation order
 * (the configuration's). The transports are fixed while the VM lives. */
static struct virtio_dev *nth_dev(struct vm *vm, uint32_t id, int index)
{
	for (int i = 0; i < vm->dev.nr_virtio; i++) {
		struct virtio_dev *d = vm->dev.virtio[i]->dev;

		if (d->device_id == id && index-- == 0)
			return d;
	}
	return NULL;
}

int vm_set_disk_limits(struct vm *vm, int index, const struct rl_config *rl,
		       struct err *e)
{
	struct virtio_dev *d = nth_dev(vm, VIRTIO_ID_BLOCK, index);

	if (!d)
		return err_config(e, -ENODEV,
				  "disk %d: not an in-process device", index);
	blk_set_limits(d, rl);
	return 0;
}

int vm_set_net_limits(struct vm *vm, int index, const struct rl_config *rx,
		      const struct rl_config *tx, struct err *e)
{
	struct virtio_dev *d = nth_dev(vm, VIRTIO_ID_NET, index);

	if (!d)
		return err_config(e, -ENODEV,
				  "network device %d: not an in-process device",
				  index);
	net_set_limits(d, rx, tx);
	return 0;
}

/* The transports and the servers are fixed between vm_create and
 * vm_destroy, so walking them needs no lock. */
static void get_device_stats(struct vm *vm, struct vm_stats *s)
{
	s->nr_disks = s->nr_nets = 0;
	s->has_rng = s->has_vconsole = false;
	for (int i = 0; i < vm->dev.nr_virtio; i++) {
		struct virtio_dev *d = vm->dev.virtio[i]->dev;

		switch (d->device_id) {
		case VIRTIO_ID_BLOCK: {
			int k = s->nr_disks;
			const char *id;

			if (k >= VM_MAX_DISKS)
				break;
			/* Disks are created in the configuration's order. */
			id = k < vm->cfg.nr_disks ? vm->cfg.disks[k].id : NULL;
			if (id)
				snprintf(s->disks[k].id, sizeof(s->disks[k].id),
					 "%s", id);
			else
				snprintf(s->disks[k].id, sizeof(s->disks[k].id),
					 "blk%d", k);
			blk_get_stats(d, &s->disks[k].st);
			s->nr_disks++;
			break;
		}
		case VIRTIO_ID_NET: {
			int k = s->nr_nets;
			const struct vm_net_config *nc;

			if (k >= VM_MAX_NETS || k >= vm->cfg.nr_nets)
				break;
			/* Interfaces are created in the configuration's order
			 * too. */
			nc = &vm->cfg.nets[k];
			snprintf(s->nets[k].id, sizeof(s->nets[k].id), "%s",
				 nc->id ? nc->id : nc->tap);
			s->nets[k].vhost = !net_is_own(d);
			memset(&s->nets[k].st, 0, sizeof(s->nets[k].st));
			if (!s->nets[k].vhost)
				net_get_stats(d, &s->nets[k].st);
			s->nr_nets++;
			break;
		}
		case VIRTIO_ID_RNG:
			rng_get_stats(d, &s->rng);
			s->has_rng = true;
			break;
		case VIRTIO_ID_CONSOLE:
			vconsole_get_stats(d, &s->vconsole);
			s->has_vconsole = true;
			break;
		default:
			break;
		}
	}
	s->nr_servers = 0;
	for (int i = 0; i < vm->servers.nr && i < VM_MAX_SERVERS; i++) {
		const struct vm_server *sv = &vm->servers.s[i];
		int k = s->nr_servers;

		if (!sv->client)
			continue;
		snprintf(s->servers[k].socket, sizeof(s->servers[k].socket),
			 "%s", sv->socket_path);
		ioreq_client_stats(sv->client, &s->servers[k].st);
		s->nr_servers++;
	}
}

void vm_get_stats(struct vm *vm, struct vm_stats *s)
{
	struct vcpu_pause *p = &vm->vcpus.pause;

	s->vcpus = vm->vcpus.n;
	pthread_mutex_lock(&p->lock);
	s->paused_ns = p->total_ns + (p->want ? now_ns() - p->since_ns : 0);
	pthread_mutex_unlock(&p->lock);
	/* Written by vCPU 0 before its first exit is handled; 0 until
	 * then. A torn read is impossible for an aligned 64-bit store. */
	_Static_assert(VM_EXIT_KINDS == VCPU_EXIT_NR, "exit kinds");
	for (int i = 0; i < vm->vcpus.n && i < VM_STATS_MAX_VCPUS; i++)
		for (int k = 0; k < VM_EXIT_KINDS; k++)
			s->exits[i][k] = __atomic_load_n(
				&vm->vcpus.v[i].exits[k], __ATOMIC_RELAXED);
	s->first_exit_ns = __atomic_load_n(&vm->vcpus.v[0].first_exit_ns,
					   __ATOMIC_RELAXED);
	get_device_stats(vm, s);
}
