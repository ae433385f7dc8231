// SPDX-License-Identifier: MIT
#include "vmm/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "devices/blk/blk.h"
#include "devices/console/console.h"
#include "devices/iommu/viommu.h"
#include "devices/net/net.h"
#include "devices/vsock/vsock.h"
#include "devices/rng/rng.h"
#include "devices/vhost_user/vhost_user.h"
#include "snapshot/format.h"
#include "util/log.h"
#include "vmm/vm_priv.h"

static void irq_kvm_set(void *opaque, unsigned int gsi, int level)
{
	struct vm *vm = opaque;
	int ret = kvm_irq_line(&vm->kvm, gsi, level);

	if (ret)
		log_warn("irq %u: KVM_IRQ_LINE: %s", gsi, strerror(-ret));
}

static void guest_reset(void *opaque)
{
	struct vm *vm = opaque;

	log_info("guest requested a reset: stopping the VM");
	vm_request_stop(vm, WISP_EXIT_OK);
}

static void guest_debug_exit(void *opaque, uint8_t code)
{
	struct vm *vm = opaque;

	log_info("guest wrote %u to the debug-exit port", code);
	vm_request_stop(vm, code);
}

void devices_preinit(struct vm_devices *d, struct vm *vm)
{
	d->serial_out_fd = -1;
	d->console_out_fd = STDOUT_FILENO;
	i8042_init(&d->i8042, guest_reset, vm);
	d->dbg = (struct debug_exit){ guest_debug_exit, vm };
}

static int host_add_irqfd(void *opaque, int efd, unsigned int gsi)
{
	struct vm *vm = opaque;

	return kvm_irqfd(&vm->kvm, efd, gsi, false);
}

static int host_del_irqfd(void *opaque, int efd, unsigned int gsi)
{
	struct vm *vm = opaque;

	return kvm_irqfd(&vm->kvm, efd, gsi, true);
}

enum iommu_role { IOMMU_NONE, IOMMU_SELF, IOMMU_BEHIND };

/* Consumes d: on failure it is destroyed here. IOMMU_BEHIND puts d
 * behind the VM's virtio-iommu, if there is one, as the endpoint whose ID
 * is its window's index. */
static int attach_virtio(struct vm *vm, struct virtio_dev *d,
			 enum iommu_role role, struct err *e)
{
	const struct virtio_irq_host irq = { host_add_irqfd, host_del_irqfd, vm,
					     false };
	struct virtio_mmio *t = NULL;
	struct window *w = NULL;
	int ret;

	ret = layout_alloc_window(&vm->layout, &w, e);
	if (!ret && role == IOMMU_BEHIND && vm->dev.iommu) {
		const struct virtq_dma *dma;

		ret = viommu_add_endpoint(vm->dev.iommu,
					  (uint32_t)(w - vm->layout.windows),
					  &dma, e);
		if (!ret) {
			ret = virtio_dev_set_dma(d, dma);
			if (ret)
				err_set(e, ret, "%s: in-flight table: %s",
					d->name, strerror(-ret));
		}
		if (!ret)
			w->translated = true;
	}
	if (ret) {
		if (d->ops->destroy)
			d->ops->destroy(d);
		return ret;
	}
	w->iommu = role == IOMMU_SELF;
	ret = virtio_mmio_create(d, w->base, w->gsi, &vm->ioev, &irq, &t, e);
	if (ret) {
		/* With a transport it owns d; without one d is still ours. */
		if (t)
			virtio_mmio_destroy(t);
		else if (d->ops->destroy)
			d->ops->destroy(d);
		return ret;
	}
	vm->dev.virtio[vm->dev.nr_virtio++] = t;
	ret = bus_register(&vm->mmio, w->base, VIRTIO_MMIO_SIZE,
			   &virtio_mmio_bus_ops, t, d->name);
	if (ret)
		return err_set(e, ret, "%s: MMIO window at 0x%llx: %s", d->name,
			       (unsigned long long)w->base, strerror(-ret));
	return 0;
}

/* A console must never block a vCPU on a slow reader: give the devices
 * a non-blocking description of their own where fd 1 can be reopened
 * (pipes, FIFOs, terminals). Sockets and files keep fd 1 (the devices
 * poll before writing to anything that is not O_NONBLOCK). */
static int console_out(struct vm_devices *d)
{
	struct stat st;
	int fd;

	if (d->console_out_owned)
		return d->console_out_fd;
	/* Reopening /dev/ptmx would make a new terminal, not this one. */
	if (fstat(STDOUT_FILENO, &st) < 0 ||
	    !(S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) ||
	    (S_ISCHR(st.st_mode) && st.st_rdev == makedev(5, 2)))
		return STDOUT_FILENO;
	fd = open("/proc/self/fd/1",
		  O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return STDOUT_FILENO;
	d->console_out_fd = fd;
	d->console_out_owned = true;
	return fd;
}

int devices_create_virtio(struct vm *vm, struct err *e)
{
	const struct vm_config *cfg = &vm->cfg;
	struct virtio_dev *d;
	int ret;

	/* The same checks for the command line and the API. */
	if (!cfg->iommu && (cfg->iommu_vcpu || cfg->iommu_poll_ns))
		return err_config(e, -EINVAL,
				  "virtio-iommu: %s is set, but the VM has no "
				  "virtio-iommu (--iommu)",
				  cfg->iommu_poll_ns ? "polling" :
						       "the request mode");
	if (cfg->iommu_poll_ns > 0 && cfg->iommu_vcpu)
		return err_config(e, -EINVAL,
				  "virtio-iommu: polling is for requests on "
				  "its I/O thread, not in the vCPU "
				  "(--iommu-requests vcpu)");
	if (cfg->iommu) {
		if (!cfg->acpi)
			return err_config(e, -EINVAL,
					  "--iommu: the guest finds the IOMMU "
					  "through the ACPI VIOT, which --acpi "
					  "off leaves out");
		/* Global IDs from the host-wide registry: two VMs never
		 * share one, a crashed VM's come back. */
		const struct viommu_config vc = {
			.host_registry = true,
			.vcpu_requests = cfg->iommu_vcpu,
			.poll_ns = cfg->iommu_poll_ns,
		};

		ret = viommu_create(&vc, &vm->mem, &d, e);
		if (!ret)
			ret = attach_virtio(vm, d, IOMMU_SELF, e);
		if (ret)
			return ret;
		vm->dev.iommu = d;
	}
	for (int i = 0; i < cfg->nr_disks; i++) {
		const struct disk_config *dc = &cfg->disks[i];
		struct blk_config bc = { dc->path,
					 dc->readonly,
					 dc->id,
					 dc->direct,
					 (enum blk_engine_kind)dc->engine,
					 dc->rl };

		ret = blk_create(&bc, &vm->mem, &d, e);
		if (!ret)
			ret = attach_virtio(
				vm, d, dc->no_iommu ? IOMMU_NONE : IOMMU_BEHIND,
				e);
		if (ret)
			return ret;
	}
	for (int i = 0; i < cfg->nr_nets; i++) {
		const struct vm_net_config *nc = &cfg->nets[i];
		struct net_config c = { .tap = nc->tap,
					.id = nc->id,
					.has_mac = nc->has_mac,
					.rx_rate = nc->rx_rate,
					.tx_rate = nc->tx_rate,
					.rx_rl = nc->rx_rl,
					.tx_rl = nc->tx_rl,
					.vhost = nc->vhost };

		memcpy(c.mac, nc->mac, 6);
		/* vhost-net would need the IOMMU's IOTLB protocol. */
		if (c.vhost && vm->dev.iommu) {
			log_warn("--net tap=%s: vhost=on is not supported "
				 "behind --iommu; wisp's own device serves it",
				 nc->tap);
			c.vhost = false;
		}
		ret = net_create(&c, &vm->mem, &d, e);
		if (!ret)
			ret = attach_virtio(vm, d, IOMMU_BEHIND, e);
		if (ret)
			return ret;
	}
	if (cfg->vsock_uds) {
		struct vsock_config vc = { cfg->vsock_cid, cfg->vsock_uds };

		ret = vsock_create(&vc, &vm->mem, &d, e);
		if (!ret)
			ret = attach_virtio(vm, d, IOMMU_BEHIND, e);
		if (ret)
			return ret;
	}
	for (int i = 0; i < cfg->nr_vhost_user; i++) {
		const struct vm_vhu_config *vc = &cfg->vhost_user[i];
		struct vhu_dev_config c = { vc->device_id, vc->socket,
					    vc->id,	   vc->tag,
					    vc->queues,	   vc->config_size };

		/* The back-end maps guest RAM by GPA: not behind --iommu. */
		ret = vhu_dev_create(&c, &vm->mem, &d, e);
		if (!ret)
			ret = attach_virtio(vm, d, IOMMU_NONE, e);
		if (ret)
			return ret;
	}
	if (cfg->rng) {
		struct rng_config rc = { cfg->rng_rate };

		ret = rng_create(&rc, &vm->mem, &d, e);
		if (!ret)
			ret = attach_virtio(vm, d, IOMMU_BEHIND, e);
		if (ret)
			return ret;
	}
	if (cfg->console == CONSOLE_VIRTIO) {
		ret = vconsole_create(console_out(&vm->dev), &vm->mem, &d, e);
		if (!ret)
			ret = attach_virtio(vm, d, IOMMU_BEHIND, e);
		if (ret)
			return ret;
		vm->dev.vconsole = d;
	}
	return 0;
}

/* The 8250's posted THR (devices/serial.h) through the VM's coalesced
 * ring (vmm/posted.h). */
static int serial_post_set(void *opaque, bool on)
{
	struct vm *vm = opaque;

	return on ? posted_add_pio(&vm->posted, SERIAL_COM1_BASE, 1) :
		    posted_del_pio(&vm->posted, SERIAL_COM1_BASE, 1);
}

static void serial_post_drain(void *opaque)
{
	struct vm *vm = opaque;

	posted_drain(&vm->posted);
}

static void serial_post_idle_cb(void *opaque)
{
	serial_post_idle(opaque);
}

int devices_create_legacy(struct vm *vm, void (*rx_space)(void *), void *opaque,
			  struct err *e)
{
	struct vm_devices *d = &vm->dev;
	struct irq_line irq = { irq_kvm_set, vm, SERIAL_COM1_IRQ };
	int fd = -1, ret;

	switch (vm->cfg.serial) {
	case SERIAL_STDIO:
		/* With a virtio console, stdio belongs to it; the 8250 stays
		 * for the guest to find but writes nowhere. */
		if (vm->cfg.console != CONSOLE_VIRTIO)
			fd = console_out(d);
		d->stdin_console = true;
		break;
	case SERIAL_FILE:
		/* A restored VM appends: the path came from a state file,
		 * which must not be able to empty a file. */
		fd = open(vm->cfg.serial_path,
			  O_WRONLY | O_CREAT | O_CLOEXEC |
				  (vm->rs ? O_APPEND : O_TRUNC),
			  0644);
		if (fd < 0)
			return err_config(e, -errno, "serial file '%s': %s",
					  vm->cfg.serial_path, strerror(errno));
		d->serial_out_fd = fd;
		break;
	case SERIAL_NONE:
		break;
	}
	serial_init(&d->serial, fd, irq);
	d->serial_ready = true;
	d->serial.rx_space = rx_space;
	d->serial.rx_space_opaque = opaque;
	if (vm->cfg.serial_post_on && vm->kvm.coalesced_pio) {
		d->serial.post = (struct serial_post){ serial_post_set,
						       serial_post_drain, vm };
		posted_set_pio_idle(&vm->posted, serial_post_idle_cb,
				    &d->serial);
	}
	if (d->vconsole)
		vconsole_set_rx_space_cb(d->vconsole, rx_space, opaque);

	ret = bus_register(&vm->pio, SERIAL_COM1_BASE, 8, &serial_bus_ops,
			   &d->serial, "serial0");
	d->i8042.irq = (struct irq_line){ irq_kvm_set, vm, I8042_KBD_IRQ };
	if (!ret)
		ret = bus_register(&vm->pio, I8042_DATA_PORT, 1,
				   &i8042_data_ops, &d->i8042, "i8042");
	if (!ret)
		ret = bus_register(&vm->pio, I8042_CMD_PORT, 1, &i8042_cmd_ops,
				   &d->i8042, "i8042");
	if (!ret && vm->cfg.debug_exit)
		ret = bus_register(&vm->pio, DEBUG_EXIT_PORT, 1,
				   &debug_exit_ops, &d->dbg, "debug-exit");
	if (ret)
		return err_set(e, ret, "device registration: %s",
			       strerror(-ret));
	return 0;
}

void devices_destroy(struct vm_devices *d)
{
	/* Newest first: the IOMMU (first) outlives its endpoints. */
	for (int i = d->nr_virtio - 1; i >= 0; i--)
		virtio_mmio_destroy(d->virtio[i]);
	d->nr_virtio = 0;
	d->iommu = NULL;
	if (d->serial_out_fd >= 0)
		close(d->serial_out_fd);
	d->serial_out_fd = -1;
	if (d->serial_ready)
		serial_destroy(&d->serial);
	d->serial_ready = false;
	if (d->console_out_owned)
		close(d->console_out_fd);
	d->console_out_owned = false;
	d->console_out_fd = STDOUT_FILENO;
	i8042_destroy(&d->i8042);
}

/* Every device with state, one line each; the order is the file's. */
enum dev_kind { DK_SERIAL, DK_I8042, DK_ACPI_PM, DK_VIRTIO };

struct dev_state {
	const char *name;
	enum dev_kind kind;
	void *dev;
};

static int dev_states(struct vm *vm, struct dev_state *s)
{
	int n = 0;

	s[n++] = (struct dev_state){ "serial0", DK_SERIAL, &vm->dev.serial };
	s[n++] = (struct dev_state){ "i8042", DK_I8042, &vm->dev.i8042 };
	if (vm->power.attached)
		s[n++] = (struct dev_state){ "acpi_pm", DK_ACPI_PM,
					     &vm->power.pm };
	for (int i = 0; i < vm->dev.nr_virtio; i++)
		s[n++] = (struct dev_state){ vm->dev.virtio[i]->dev->name,
					     DK_VIRTIO, vm->dev.virtio[i] };
	return n;
}

#define MAX_DEV_STATES (3 + LAYOUT_MAX_WINDOWS)

void devices_save(struct vm *vm, struct snap_writer *sw)
{
	struct dev_state s[MAX_DEV_STATES];
	int n = dev_states(vm, s);

	for (int i = 0; i < n; i++) {
		snap_section_begin(sw, SNAP_SEC_DEVICE);
		ser_str(&sw->w, s[i].name);
		switch (s[i].kind) {
		case DK_SERIAL:
			serial_save(s[i].dev, &sw->w);
			break;
		case DK_I8042:
			i8042_save(s[i].dev, &sw->w);
			break;
		case DK_ACPI_PM:
			acpi_pm_save(s[i].dev, &sw->w);
			break;
		case DK_VIRTIO:
			virtio_mmio_save(s[i].dev, &sw->w);
			break;
		}
		snap_section_end(sw);
	}
}

int devices_load(struct vm *vm, const struct snap_file *f, struct err *e)
{
	struct dev_state s[MAX_DEV_STATES];
	int n = dev_states(vm, s), pos = 0, ret = 0;

	for (int i = 0; i < n && !ret; i++) {
		const struct snap_section *sec =
			snap_next(f, &pos, SNAP_SEC_DEVICE);
		struct ser_r r;
		const char *name;
		const uint8_t *p;
		uint64_t len;

		if (!sec)
			return err_config(e, -EINVAL,
					  "snapshot: no state for device %s",
					  s[i].name);
		r = (struct ser_r){ sec->data, (size_t)sec->len, 0, false };
		name = deser_str(&r, 64);
		if (r.fail || !name || strcmp(name, s[i].name))
			return err_config(e, -EINVAL,
					  "snapshot: device %d is '%s', this "
					  "VM has %s there",
					  i, name ? name : "?", s[i].name);
		p = sec->data + r.off;
		len = sec->len - r.off;
		switch (s[i].kind) {
		case DK_SERIAL:
			ret = serial_load(s[i].dev, p, len, e);
			break;
		case DK_I8042:
			ret = i8042_load(s[i].dev, p, len, e);
			break;
		case DK_ACPI_PM:
			ret = acpi_pm_load(s[i].dev, p, len, e);
			break;
		case DK_VIRTIO:
			ret = virtio_mmio_load(s[i].dev, p, len, e);
			break;
		}
	}
	if (!ret && snap_next(f, &pos, SNAP_SEC_DEVICE))
		return err_config(e, -EINVAL,
				  "snapshot: state for more devices than this "
				  "VM has");
	return ret;
}
