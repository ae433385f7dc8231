/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.2, 2.7), device side, with
 * VIRTIO_RING_F_EVENT_IDX and VIRTIO_RING_F_INDIRECT_DESC.
 *
 * Everything in the rings is written by the guest and is hostile: each
 * chain is validated before a device sees it — descriptor indices in
 * range, every buffer inside guest RAM (through guest_mem_ptr), lengths
 * that do not overflow, no loops, at most VIRTQ_MAX_SEGS buffers and
 * VIRTQ_MAX_CHAIN_BYTES in total, indirect tables well formed (a multiple
 * of 16 bytes, not nested, not combined with NEXT), and device-readable
 * buffers before device-writable ones. A bad chain makes virtq_pop()
 * return -EINVAL with a reason; the caller marks the device NEEDS_RESET.
 *
 * Threads: a virtq is used by one thread at a time, under its device's
 * lock (struct virtio_dev).
 */
#ifndef WISP_VIRTIO_VIRTQUEUE_H
#define WISP_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"

#define VIRTQ_MAX_SIZE 32768 /* the spec's upper bound for a split ring */
#define VIRTQ_MAX_SEGS 1024 /* buffers in one chain, indirect included */
#define VIRTQ_MAX_CHAIN_BYTES (256u << 20)

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* DMA translation for a device behind an IOMMU (src/devices/iommu). With
 * it, every address the driver gives the device (ring addresses included)
 * is an IOVA: translate() maps [iova, iova + len) for a read or a write
 * access to the GPA of its first contiguous piece, *gpa and *plen (1 to
 * len bytes), or returns -EFAULT when some byte is unmapped or lacks the
 * permission (the translator records the fault). Queues without it use
 * GPAs and pay one NULL test per access.
 *
 * Optional begin/end: a chain taken from the ring keeps the host pointers
 * its translations gave until it is pushed back. virtq_pop calls begin()
 * before the chain's first translation and passes the token it returned
 * to each of the chain's translations (token 0: a translation outside a
 * chain, whose result is not kept, e.g. the ring check at QueueReady);
 * virtq_push (or a queue reset, for chains never pushed) calls end(). So
 * the translator knows which IOVAs each request in flight still uses,
 * and an UNMAP can wait for exactly those requests. */
struct virtq_dma {
	int (*translate)(void *opaque, int token, uint64_t iova, uint64_t len,
			 bool write, uint64_t *gpa, uint64_t *plen);
	int (*begin)(void *opaque);
	void (*end)(void *opaque, int token);
	void *opaque;
};

struct virtq {
	/* Set by the transport from the driver's writes. */
	uint16_t size; /* 0: not configured */
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect; /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	const struct guest_mem *mem;
	const struct virtq_dma *dma; /* NULL: addresses are GPAs */

	/* Device-side state. */
	uint16_t last_avail; /* next avail ring entry to consume */
	uint16_t used_idx; /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx at the last interrupt */
	bool signalled_valid;
	/* With dma: the rings' host pointers, translated again by every
	 * virtq_pop (NULL until the first one and after a reset), so an
	 * UNMAP of a ring stops the queue at the next chain. */
	const uint8_t *desc_host;
	uint8_t *avail_host, *used_host;
	/* With dma->begin: the token of each head taken and not pushed yet
	 * (0: none), dma_tok_n (the queue's maximum size) entries, owned
	 * by the device (virtio_dev_set_dma); the token of the chain being
	 * taken (0 outside virtq_pop). */
	int16_t *dma_tok;
	uint32_t dma_tok_n;
	int cur_tok;
};

struct virtq_seg {
	uint8_t *host; /* checked host pointer for the whole buffer */
	uint32_t len;
	bool write; /* device-writable */
};

struct virtq_chain {
	uint16_t head;
	/* A buffer did not translate (dma only): its segment has host NULL
	 * and the copy helpers skip it. The device fails the request (blk:
	 * IOERR), or virtio_dev_pop completes it with 0 bytes for a device
	 * that does not say it handles this (virtio_dev.dma_fault_aware). */
	bool dma_fault;
	uint16_t nr_read, nr_write; /* readable segs first, then writable */
	uint32_t read_len, write_len; /* byte totals */
	struct virtq_seg seg[VIRTQ_MAX_SEGS];
};

/* Resets the device-side state (queue reset or device reset). Chains
 * taken and not pushed are ended (struct virtq_dma.end). */
void virtq_reset(struct virtq *vq);

/* Checks the ring addresses against guest RAM (through vq->dma, if set)
 * when the driver sets QueueReady. Returns 0 or -EINVAL with *why set. */
int virtq_validate_rings(const struct virtq *vq, const char **why);

/* Takes the next available chain. Returns 1 with *c filled, 0 when the
 * ring is empty, -EINVAL for a malformed chain or ring (with *why). */
int virtq_pop(struct virtq *vq, struct virtq_chain *c, const char **why);

/* The chain that starts at descriptor head, validated as virtq_pop does,
 * without consuming an avail entry (a front-end failing the requests a
 * vhost-user back-end had in flight). Returns 0 or -EINVAL with *why. */
int virtq_chain_at(struct virtq *vq, uint16_t head, struct virtq_chain *c,
		   const char **why);

/* The driver's avail->idx and the used->idx in guest memory (0 when the
 * ring is not mapped), for a queue another process runs. */
uint16_t virtq_avail_idx(const struct virtq *vq);
uint16_t virtq_used_idx_in_ring(const struct virtq *vq);

/* Returns a chain to the driver with the number of bytes written. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t written);

/* After pushes: should the driver be interrupted? (EVENT_IDX: used_event;
 * otherwise the NO_INTERRUPT flag). Updates the signalled state. */
bool virtq_should_notify(struct virtq *vq);

/* With EVENT_IDX, publishes avail_event = last_avail so the driver kicks
 * again only for new buffers. No-op otherwise. */
void virtq_update_avail_event(struct virtq *vq);
/* With EVENT_IDX, publishes avail_event = last_avail - 1: the driver's
 * next buffer comes without a kick, for a device that looks for it
 * itself (and then publishes last_avail again before it stops looking).
 * No-op otherwise. */
void virtq_hold_kicks(struct virtq *vq);

/* The driver's side of the rings as guest memory holds it now, for the
 * state dump: false when they are not reachable (queue not ready, or
 * not mapped behind an IOMMU). Caller holds the device lock. */
struct virtq_rings {
	uint16_t avail_flags, avail_idx, used_event;
	uint16_t used_flags, used_idx, avail_event;
};
bool virtq_peek(const struct virtq *vq, struct virtq_rings *r);

/* Copy helpers over a chain's readable / writable segments. Return the
 * number of bytes copied. */
uint32_t virtq_chain_read(const struct virtq_chain *c, uint32_t off, void *dst,
			  uint32_t len);
uint32_t virtq_chain_write(const struct virtq_chain *c, uint32_t off,
			   const void *src, uint32_t len);

#endif
