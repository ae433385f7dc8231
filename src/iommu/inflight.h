/* SPDX-License-Identifier: MIT */
/*
 * In-flight DMA of one translated device: which of its requests still
 * hold translations that an UNMAP, DETACH or ATTACH is about to take
 * away. A device request translates its buffers once, when it is taken
 * from the ring, and keeps the host pointers until it completes. begin()
 * opens a slot for it before its first translation, the translator
 * records every IOVA range it translates for the request into that slot
 * (under the lock that also guards its table), and end() frees the slot
 * at completion. drain(lo, hi) waits until no slot holds a range that
 * meets [lo, hi]: requests that translate after the table changed cannot
 * record a removed range, so only those that really use it are waited
 * for (a strict-mode guest unmapping one finished request's buffer while
 * others are in flight waits for none of them).
 *
 * A slot keeps DMA_INFLIGHT_RANGES merged ranges; a request that uses
 * more counts as using everything. With every slot taken, a request is
 * tracked as "untracked" and every drain waits for it.
 *
 * Every wait is bounded: a device that does not complete its requests in
 * timeout_ms makes drain() return -ETIMEDOUT (the caller reports the
 * removal as failed), never hang.
 *
 * Owns: its slots, lock and condition variable. Thread-safe; begin, end
 * and record are called by device threads (record under the caller's
 * table lock), drain by the IOMMU's (or a server's) thread.
 */
#ifndef WISP_IOMMU_INFLIGHT_H
#define WISP_IOMMU_INFLIGHT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define DMA_INFLIGHT_RANGES 4
#define DMA_INFLIGHT_SLOTS 1024

struct dma_inflight_slot {
	uint64_t lo[DMA_INFLIGHT_RANGES], hi[DMA_INFLIGHT_RANGES];
	uint8_t nr;
	bool used, all;
};

struct dma_inflight {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	struct dma_inflight_slot *slot;
	uint32_t nslots, next, used;
	uint64_t untracked;
	uint64_t drains, waits, timeouts;
};

/* nslots: 0 for DMA_INFLIGHT_SLOTS. 0 or -errno (nothing to destroy). */
int dma_inflight_init(struct dma_inflight *t, uint32_t nslots);
void dma_inflight_destroy(struct dma_inflight *t);
/* A request is about to translate: its token (>= 1, or -1 when untracked
 * because every slot is taken). Never 0, the token of no request. */
int dma_inflight_begin(struct dma_inflight *t);
/* The request with this token translated [lo, hi]. Token 0 (a
 * translation outside a request, whose result is not kept) and bad
 * tokens are ignored. */
void dma_inflight_record(struct dma_inflight *t, int token, uint64_t lo,
			 uint64_t hi);
/* The request completed (or was dropped). Bad tokens are ignored. */
void dma_inflight_end(struct dma_inflight *t, int token);
/* Waits until no request in flight uses anything in [lo, hi], at most
 * timeout_ms: 0 or -ETIMEDOUT. */
int dma_inflight_drain(struct dma_inflight *t, uint64_t lo, uint64_t hi,
		       int timeout_ms);
/* Requests in flight now. */
uint64_t dma_inflight_count(struct dma_inflight *t);

#endif
