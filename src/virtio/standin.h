/* SPDX-License-Identifier: MIT */
/*
 * The stand-in for a virtio-mmio device whose device model went away (an
 * IOREQ server that crashed, hung or was cut off). While the server runs,
 * the VMM shows it every register access and the stand-in keeps a shadow
 * of what it needs later: the identity registers (as the server answered
 * them), Status, the config generation and each queue's layout. Once the
 * server is gone, the stand-in answers for the device: same identity,
 * Status with NEEDS_RESET set, a configuration-change interrupt pending,
 * and, when the server is known to be dead, the requests it had in flight
 * completed with the device type's error status (so the guest's driver
 * sees I/O errors instead of waiting forever).
 *
 * Failing in-flight requests is device knowledge: a table in standin.c
 * maps the device ID to a callback (virtio_blk_fail_chain for block).
 * The walk is bounded: a queue whose size exceeds the QueueNumMax the
 * device announced is skipped, every chain is parsed and validated by
 * virtq_pop(), and the total work over all queues has a fixed budget.
 *
 * Threads: observe/read/write on vCPU threads, attached/detached on the
 * main thread; `lock` guards all state. detached() walks guest memory
 * without holding it (a snapshot of the queues is taken first).
 */
#ifndef WISP_VIRTIO_STANDIN_H
#define WISP_VIRTIO_STANDIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "virtio/virtqueue.h"

#define STANDIN_QUEUES 8
/* Chain segments the in-flight walk may visit, over all queues. */
#define STANDIN_FAIL_BUDGET 65536

struct standin_queue {
	uint32_t num, num_max; /* num_max: as the device answered */
	uint64_t desc, avail, used;
	bool ready;
};

struct virtio_standin {
	pthread_mutex_t lock;
	uint32_t id[4]; /* magic, version, device ID, vendor */
	uint32_t status, queue_sel, gen, isr;
	struct standin_queue q[STANDIN_QUEUES];
};

/* Returns 0 or -errno (mutex init). */
int virtio_standin_init(struct virtio_standin *s);
void virtio_standin_destroy(struct virtio_standin *s);

/* A register access the live device answered (read: v is its answer). */
void virtio_standin_observe_read(struct virtio_standin *s, uint64_t off,
				 uint64_t v);
void virtio_standin_observe_write(struct virtio_standin *s, uint64_t off,
				  uint64_t v);

/* Accesses while the device is gone. */
uint64_t virtio_standin_read(struct virtio_standin *s, uint64_t off);
void virtio_standin_write(struct virtio_standin *s, uint64_t off, uint64_t v);

/* A (new) device model took over: no interrupt pending from us. */
void virtio_standin_attached(struct virtio_standin *s);

/* The device model is gone. With fail_inflight (it is known dead, so it
 * cannot complete them itself), completes the requests it had in flight
 * with the device type's error status. Then bumps the config generation
 * and sets the interrupt status (used buffers + config change); the
 * caller raises the interrupt. Returns the number of requests failed. */
int virtio_standin_detached(struct virtio_standin *s, struct guest_mem *mem,
			    bool fail_inflight, const char *name);

/* Still detached from a model known dead: fails what the driver posted
 * since (nobody else ever will: its doorbells go to the dead model's
 * eventfds) and sets the used-buffer interrupt status; the caller raises
 * the interrupt when this returns more than 0. */
int virtio_standin_fail_new(struct virtio_standin *s, struct guest_mem *mem,
			    const char *name);

/* Per device type: complete one in-flight chain with an error status.
 * Returns false if the chain is not a request of that type (the walk of
 * that queue stops). */
typedef bool (*virtio_fail_chain_fn)(const struct virtq_chain *c);

/* virtio-blk (virtio/inflight_blk.c): status byte VIRTIO_BLK_S_IOERR. */
bool virtio_blk_fail_chain(const struct virtq_chain *c);

#endif
