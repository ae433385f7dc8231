/* SPDX-License-Identifier: MIT */
/*
 * virtio-mmio transport, version 2 (virtio 1.2, 4.2): one 4 KiB register
 * window and one interrupt line per device. QueueNotify is meant to be
 * caught by a doorbell lane (KVM ioeventfd, datamatch = queue index) so a
 * kick never exits to userspace; a kick that does reach the register file
 * is forwarded to the same eventfd. Interrupts go out through one eventfd
 * (bound to the GSI with KVM irqfd by the host glue).
 *
 * The transport knows nothing about KVM: doorbells are lanes in the
 * ioeventfd registry it is given (bus/ioeventfd.h), whose host backend is
 * KVM inside wisp and an IOREQ ADD_DOORBELL message in a server process;
 * the interrupt eventfd is bound to its line through struct
 * virtio_irq_host.
 *
 * Threads: register accesses on vCPU threads, raise() on the I/O thread;
 * both under dev->lock, except isr, which is atomic.
 */
#ifndef WISP_VIRTIO_MMIO_H
#define WISP_VIRTIO_MMIO_H

#include <stdatomic.h>
#include <stdint.h>

#include "bus/bus.h"
#include "bus/ioeventfd.h"
#include "util/err.h"
#include "util/ser.h"
#include "virtio/iothread.h"
#include "virtio/mmio_regs.h"
#include "virtio/virtio.h"

struct virtio_irq_host {
	/* Deliver a write to efd as an edge on gsi. Required. */
	int (*add_irqfd)(void *opaque, int efd, unsigned int gsi);
	int (*del_irqfd)(void *opaque, int efd, unsigned int gsi);
	void *opaque;
	/* The interrupt eventfd's open file description is shared with
	 * another process (a server's, with its VMM): that peer can clear
	 * O_NONBLOCK or fill the counter, so every signal is bounded. */
	bool shared;
};

struct virtio_mmio {
	struct virtio_dev *dev;
	uint64_t base;
	unsigned int gsi;
	struct ioeventfd_registry *doorbells; /* may be NULL */
	struct virtio_irq_host irq;

	/* Guarded by dev->lock. */
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
	uint64_t driver_features;

	/* InterruptStatus, bit 0: used buffer, bit 1: config change. isr
	 * points at isr_own, or in an IOREQ server with IOREQ_F_SHARED_ISR
	 * at the word the VMM serves the guest from, which the VMM may
	 * write anything into; isr_reads then counts the guest's reads
	 * there (NULL: they reach mmio_read). */
	atomic_uint *isr;
	atomic_uint isr_own;
	atomic_uint *isr_reads;
	/* Bumped by every raise that signals and every read of
	 * InterruptStatus: while
	 * isr is set and this stands still, the guest never looked at the
	 * interrupt it was sent (virtio_mmio_irq_check). */
	atomic_uint irq_gen;
	/* CLOCK_MONOTONIC of the last edge transport_raise sent. */
	_Atomic uint64_t last_edge_ns;
	/* A driver of this device has read InterruptStatus: it takes
	 * interrupts (a polling driver is never re-raised to). Kept over a
	 * reset, so the next driver's first edge is watched too. */
	atomic_bool irq_used;
	int irq_efd;
	int notify_efd[VIRTIO_MAX_QUEUES];
	bool doorbell[VIRTIO_MAX_QUEUES]; /* lane in the registry */
	struct virtio_iothread io;
};

extern const struct bus_ops virtio_mmio_bus_ops;

/* Binds dev to a window at base and line gsi, creates its eventfds,
 * adds a doorbell lane per queue to doorbells (NULL: kicks reach the
 * register file), binds the irqfd, starts its I/O thread.
 * Ownership: once *out is set, the transport owns dev and
 * virtio_mmio_destroy(*out) destroys it, also after a failure (the caller
 * must call it then). If allocation fails, *out stays NULL and dev is
 * still the caller's. */
int virtio_mmio_create(struct virtio_dev *dev, uint64_t base, unsigned int gsi,
		       struct ioeventfd_registry *doorbells,
		       const struct virtio_irq_host *irq,
		       struct virtio_mmio **out, struct err *e);
/* Stops the I/O thread, unregisters, closes fds, destroys the device. */
void virtio_mmio_destroy(struct virtio_mmio *t);

/* Snapshot (mmio_state.c): the transport's registers, the device's
 * queues and (ops->save/load) its own state. save takes dev->lock; the
 * device must be quiesced. load
 * checks the whole payload (device ID, queue count and sizes, rings
 * inside RAM) before it changes anything, then activates a device the
 * driver had set DRIVER_OK on; config-class error if the payload does
 * not fit this device. resignal kicks every ready queue once (kicks lost
 * around the snapshot). */
void virtio_mmio_save(struct virtio_mmio *t, struct ser_w *w);
int virtio_mmio_load(struct virtio_mmio *t, const uint8_t *p, uint64_t len,
		     struct err *e);
void virtio_mmio_resignal(struct virtio_mmio *t);

/* In an IOREQ server granted IOREQ_F_SHARED_ISR: InterruptStatus moves to
 * the shared page's isr word (its current value with it), and the guest's
 * reads are counted in reads. Before the device runs. */
void virtio_mmio_share_isr(struct virtio_mmio *t, atomic_uint *isr,
			   atomic_uint *reads);

/* Lost-interrupt recovery, sampled by the VMM's main loop (its own
 * memory in w): when the driver takes interrupts (irq_used) and isr has
 * been set for limit_ns with no raise and no read of InterruptStatus
 * since, the edge never reached the guest's
 * handler (a nested L1 was seen to lose one, leaving the guest waiting
 * for ever); the line is raised again and true returned. At most once
 * per limit_ns; w->reraised counts them. */
struct virtio_irq_watch {
	unsigned int gen;
	uint64_t since_ns;
	uint64_t reraised;
};
bool virtio_mmio_irq_check(struct virtio_mmio *t, struct virtio_irq_watch *w,
			   uint64_t now_ns, uint64_t limit_ns);

/* The feature bits the transport offers for dev: the device's own and the
 * transport's (VERSION_1, EVENT_IDX, INDIRECT_DESC, ACCESS_PLATFORM behind
 * an IOMMU); exactly the device's when its queues run elsewhere. */
uint64_t virtio_mmio_offered_features(struct virtio_dev *d);

/* "virtio_mmio.device=4K@0x...:gsi" for the kernel command line. */
int virtio_mmio_cmdline(const struct virtio_mmio *t, char *buf, size_t len);

#endif
