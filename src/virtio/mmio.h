/* SPDX-License-Identifier: MIT */
/*
 * virtio-mmio transport, version 2 (virtio 1.2, 4.2): one 4 KiB register
 * window and one interrupt line per device. QueueNotify is meant to be
 * caught by a doorbell lane (KVM ioeventfd, datamatch = queue index) so a
 * kick never exits to userspace; a kick that does reach the register file
 * is forwarded to the same eventfd. Interrupts go out through one eventfd
 * (bound to the GSI with KVM irqfd by the host glue).
 *
 * The transport knows nothing about KVM: the VMM passes host callbacks to
 * register doorbells and interrupt fds.
 *
 * Threads: register accesses on vCPU threads, raise() on the I/O thread;
 * both under dev->lock, except isr, which is atomic.
 */
#ifndef WISP_VIRTIO_MMIO_H
#define WISP_VIRTIO_MMIO_H

#include <stdatomic.h>
#include <stdint.h>

#include "bus/bus.h"
#include "util/err.h"
#include "virtio/iothread.h"
#include "virtio/virtio.h"

#define VIRTIO_MMIO_SIZE 0x1000
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050

struct virtio_mmio_host {
	/* Route 4-byte writes of datamatch at addr to efd in the host
	 * kernel. May fail (-errno): the exit path then handles it. */
	int (*add_doorbell)(void *opaque, uint64_t addr, uint32_t len,
			    uint64_t datamatch, int efd);
	int (*del_doorbell)(void *opaque, uint64_t addr, uint32_t len,
			    uint64_t datamatch, int efd);
	/* Deliver a write to efd as an edge on gsi. Required. */
	int (*add_irqfd)(void *opaque, int efd, unsigned int gsi);
	int (*del_irqfd)(void *opaque, int efd, unsigned int gsi);
	void *opaque;
};

struct virtio_mmio {
	struct virtio_dev *dev;
	uint64_t base;
	unsigned int gsi;
	struct virtio_mmio_host host;

	/* Guarded by dev->lock. */
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
	uint64_t driver_features;

	atomic_uint isr; /* bit 0: used buffer, bit 1: config change */
	int irq_efd;
	int notify_efd[VIRTIO_MAX_QUEUES];
	bool doorbell[VIRTIO_MAX_QUEUES]; /* lane registered in the host */
	struct virtio_iothread io;
};

extern const struct bus_ops virtio_mmio_bus_ops;

/* Binds dev to a window at base and line gsi, creates its eventfds,
 * registers doorbells and the irqfd, starts its I/O thread. */
int virtio_mmio_create(struct virtio_dev *dev, uint64_t base, unsigned int gsi,
		       const struct virtio_mmio_host *host,
		       struct virtio_mmio **out, struct err *e);
/* Stops the I/O thread, unregisters, closes fds, destroys the device. */
void virtio_mmio_destroy(struct virtio_mmio *t);

/* "virtio_mmio.device=4K@0x...:gsi" for the kernel command line. */
int virtio_mmio_cmdline(const struct virtio_mmio *t, char *buf, size_t len);

#endif
