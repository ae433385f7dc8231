/* SPDX-License-Identifier: MIT */
/*
 * The virtio device interface: a device is a set of callbacks plus its
 * queues, independent of the transport (virtio-mmio today) and of where it
 * runs (in wisp, later in an IOREQ server process). Device code sees guest
 * memory only through src/mem's checked accessors and the queue API, and
 * signals the driver only through virtio_dev_notify_*(); it never touches
 * KVM, the bus or the transport's registers.
 *
 * Threads: register accesses arrive on vCPU threads (through the
 * transport), queue work runs on the device's I/O thread. Both hold
 * dev->lock while they touch the device, its queues or its config.
 */
#ifndef WISP_VIRTIO_VIRTIO_H
#define WISP_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "virtio/virtqueue.h"

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Transport-wide feature bits. */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* Device IDs (5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_FS 26
#define VIRTIO_ID_IOMMU 23

#define VIRTIO_MAX_QUEUES 8

struct virtio_dev;
struct ser_w;

struct virtio_dev_ops {
	/* Device-specific feature bits offered (the transport adds
	 * VERSION_1, EVENT_IDX and INDIRECT_DESC). */
	uint64_t (*features)(struct virtio_dev *d);
	/* Device configuration space, bounds already checked against
	 * config_size; len is 1, 2, 4 or 8. */
	void (*config_read)(struct virtio_dev *d, uint32_t off, uint8_t *data,
			    uint32_t len);
	void (*config_write)(struct virtio_dev *d, uint32_t off,
			     const uint8_t *data, uint32_t len);
	/* DRIVER_OK was set: d->features holds the negotiated set. Return
	 * -errno to refuse (the device is then marked NEEDS_RESET). */
	int (*activate)(struct virtio_dev *d);
	/* The driver kicked queue q (or a timer the device armed fired);
	 * runs on the I/O thread with d->lock held. */
	void (*queue_notify)(struct virtio_dev *d, int q);
	/* Optional: a kick of a queue in d->exit_queues, in the kicking
	 * vCPU's thread, d->lock held. Bounded: a guest can refill the
	 * queue from another vCPU, so what it leaves it hands to the I/O
	 * thread (a signal of d->kick_fds[q], which then calls
	 * queue_notify). */
	void (*queue_notify_exit)(struct virtio_dev *d, int q);
	/* Driver wrote 0 to Status: drop in-flight state. */
	void (*reset)(struct virtio_dev *d);
	/* Optional: complete or drop every request in flight, so that until
	 * the next queue_notify the device touches neither guest memory nor
	 * its backend (a VM pause, a snapshot). Called with d->lock held. */
	void (*quiesce)(struct virtio_dev *d);
	/* Optional: the driver wrote 0 to QueueReady of ready queue q. The
	 * driver may reuse that queue's buffers once the write returns, so
	 * a device with requests in flight waits for them here (and
	 * completes none into the old ring). Called with d->lock held. */
	void (*queue_disable)(struct virtio_dev *d, int q);
	/* Optional: an fd the I/O thread should watch for the device (e.g.
	 * a rate-limit timer, console input); called with d->lock held. */
	void (*fd_ready)(struct virtio_dev *d, int fd);
	void (*destroy)(struct virtio_dev *d);
	/* Optional, for snapshots (with d->lock held, the device quiesced):
	 * the device's own state beyond its queues and features, and back.
	 * load runs after the transport restored the features and queues
	 * and before activate; it checks the whole payload and returns
	 * -EINVAL with *why set for a bad one. */
	void (*save)(struct virtio_dev *d, struct ser_w *w);
	int (*load)(struct virtio_dev *d, const uint8_t *p, uint32_t len,
		    const char **why);
};

/* What a transport provides to its device. */
struct virtio_transport_ops {
	/* Interrupt the driver: used buffers (queue q) or config change. */
	void (*raise)(void *transport, bool config);
};

struct virtio_dev {
	const char *name; /* "blk0", "rng", ... for messages */
	uint32_t device_id;
	const struct virtio_dev_ops *ops;
	void *priv;
	struct guest_mem *mem;

	pthread_mutex_t lock; /* guards everything below */
	uint32_t config_size;
	uint64_t features; /* negotiated (driver-acked & offered) */
	uint32_t status;
	uint32_t config_generation;
	int nr_queues;
	uint16_t queue_max[VIRTIO_MAX_QUEUES];
	struct virtq vq[VIRTIO_MAX_QUEUES];
	bool broken; /* NEEDS_RESET set: no more queue processing */

	/* Extra fds the I/O thread watches for the device (a rate-limit
	 * timer, ...): on readiness it calls ops->fd_ready with the lock held.
	 * Set by the device's constructor, fixed afterwards. */
	int watch_fds[2];
	int nr_watch_fds;

	/* Queues (bit q) whose kicks the transport takes on the exit path
	 * and serves in the kicking vCPU's thread (ops->queue_notify_exit)
	 * instead of through an ioeventfd and the I/O thread: for a queue
	 * whose driver spins on each answer, so the answer is there when
	 * the vCPU re-enters. Set by the constructor, fixed afterwards. */
	uint32_t exit_queues;

	/* Behind an IOMMU (virtio_dev_set_dma): the transport offers and
	 * requires VIRTIO_F_ACCESS_PLATFORM and every queue translates. */
	const struct virtq_dma *dma;
	/* The device fails a request whose buffers did not translate itself
	 * (virtq_chain.dma_fault); otherwise virtio_dev_pop completes such a
	 * chain with 0 bytes and goes on. Set by the constructor. */
	bool dma_fault_aware;

	/* The queues run elsewhere (a vhost-user back-end): the transport
	 * offers exactly ops->features (the back-end's transport bits
	 * included), its I/O thread does not watch the doorbells, and a kick
	 * that reaches the register file is signalled bounded (the eventfd
	 * is shared with the back-end). Set by the constructor. */
	bool remote_queues;
	/* The doorbell eventfd of each queue, set by the transport, for a
	 * device whose queues run elsewhere to hand on. */
	int kick_fds[VIRTIO_MAX_QUEUES];
	/* The transport's interrupt eventfd, set by the transport. With
	 * remote_queues the back-end signals it itself, with no relay
	 * through a wisp thread: it cannot set InterruptStatus, so the
	 * transport keeps the used-buffer bit set for the driver (a driver
	 * then looks at its rings on every interrupt, which virtio allows),
	 * and signals that eventfd bounded, since another process holds it. */
	int irq_fd;

	const struct virtio_transport_ops *tops;
	void *transport;
	/* Rate limit for the "bad chain" log line (one per 5 s). */
	uint64_t last_warn_ns;
};

static inline bool virtio_has_feature(const struct virtio_dev *d, int bit)
{
	return (d->features >> bit) & 1;
}

/* Initializes the common part; nr_queues <= VIRTIO_MAX_QUEUES. */
void virtio_dev_init(struct virtio_dev *d, const char *name, uint32_t device_id,
		     const struct virtio_dev_ops *ops, void *priv,
		     struct guest_mem *mem, int nr_queues, uint16_t queue_max,
		     uint32_t config_size);

/* Puts the device behind an IOMMU: dma (NULL: none) is used by every
 * queue from now on and must outlive the device. Call before the
 * transport is created. With dma->begin/end each queue gets a table of
 * the chains in flight (freed by virtio_dev_fini); -ENOMEM: none could
 * be allocated and the device is left without dma. */
int virtio_dev_set_dma(struct virtio_dev *d, const struct virtq_dma *dma);

/* Undoes virtio_dev_init (destroys d->lock). The device's ops->destroy
 * calls it before freeing the memory that holds d, so the layer that
 * initialises the common part also tears it down. */
void virtio_dev_fini(struct virtio_dev *d);

/* After pushing used buffers to queue q: interrupts the driver if the
 * queue's suppression rules say so. Call with d->lock held. */
void virtio_dev_notify_queue(struct virtio_dev *d, int q);

/* Used buffers on some queue, already filtered by whoever ran the queue
 * (a vhost-user back-end signals only what the driver asked for): sets
 * the interrupt status and interrupts. No lock needed. */
void virtio_dev_raise_vring(struct virtio_dev *d);

/* Config space changed: bump the generation and interrupt. Lock held. */
void virtio_dev_notify_config(struct virtio_dev *d);

/* The device cannot go on (bad chain, backend failure): sets
 * NEEDS_RESET, stops queue processing, sends a config interrupt and logs
 * one rate-limited line with why. Lock held. */
void virtio_dev_set_broken(struct virtio_dev *d, const char *why);

/* Takes the next chain of queue q for a device's handler. Returns 1 with
 * *c filled, 0 when the queue is empty (with EVENT_IDX it first publishes
 * avail_event and looks once more, so a buffer added meanwhile is not
 * missed), or -EINVAL after marking the device broken for a bad chain.
 * A chain whose buffers did not translate (dma) is returned with
 * c->dma_fault only to a dma_fault_aware device. Lock held. */
int virtio_dev_pop(struct virtio_dev *d, int q, struct virtq_chain *c);

/* Runs one queue's handler if the device is live; used by the I/O
 * thread. Takes and releases d->lock. */
void virtio_dev_kick(struct virtio_dev *d, int q);
/* The same for a kick taken in a vCPU's thread (d->exit_queues). */
void virtio_dev_kick_exit(struct virtio_dev *d, int q);

#endif
