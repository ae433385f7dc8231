/* SPDX-License-Identifier: MIT */
/*
 * The VM's in-process devices and their glue to KVM: the legacy PC
 * devices on the PIO bus (8250 COM1, i8042 reset, the test guest's
 * debug-exit port) and the virtio devices (blk, rng, console) each on a
 * virtio-mmio transport in a window of the layout, doorbells through the
 * ioeventfd registry, interrupts through irqfd. This is the only place
 * device models meet KVM; devices themselves never include a KVM header.
 *
 * With --iommu the virtio-iommu gets the first window and every later
 * in-process virtio device (but a disk with iommu=off) is its endpoint;
 * transports are destroyed in reverse order, so the IOMMU outlives the
 * devices that translate through it. IOREQ servers are not behind it.
 *
 * Owns: the transports (and through them the virtio devices), the
 * serial output file when --serial file: is used, the console's private
 * stdout description.
 * Main thread (create/destroy); devices run on vCPU and I/O threads.
 */
#ifndef WISP_VMM_DEVICES_H
#define WISP_VMM_DEVICES_H

#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "virtio/mmio.h"
#include "vmm/layout.h"

struct vm;

struct vm_devices {
	struct serial serial;
	struct i8042 i8042;
	struct debug_exit dbg;
	struct virtio_mmio *virtio[LAYOUT_MAX_WINDOWS];
	int nr_virtio;
	struct virtio_dev *vconsole; /* when the console is virtio */
	struct virtio_dev *iommu; /* --iommu; its transport owns it */
	int serial_out_fd; /* owned when serial is a file */
	/* wisp's stdout for the guest console: a private non-blocking open
	 * of fd 1 when it is a pipe or terminal (owned), else fd 1 itself.
	 * O_NONBLOCK then never reaches the description the shell and
	 * stderr share. */
	int console_out_fd;
	bool console_out_owned;
	bool stdin_console; /* wisp's stdin feeds the guest's console */
	bool serial_ready;
};

void devices_preinit(struct vm_devices *d, struct vm *vm);
/* The virtio devices of the configuration, each in a new window. On
 * failure the transports created so far stay for devices_destroy. */
int devices_create_virtio(struct vm *vm, struct err *e);
/* The serial port and the PIO devices. rx_space(opaque) is the console
 * input's callback for both consoles. */
int devices_create_legacy(struct vm *vm, void (*rx_space)(void *), void *opaque,
			  struct err *e);
void devices_destroy(struct vm_devices *d);

/* Snapshot: one SNAP_SEC_DEVICE section per device (its name, then the
 * device's own payload), in a fixed order. load takes them in the same
 * order, checks each name, and has each device check its payload before
 * it changes anything. */
struct snap_writer;
struct snap_file;
void devices_save(struct vm *vm, struct snap_writer *sw);
int devices_load(struct vm *vm, const struct snap_file *f, struct err *e);

#endif
