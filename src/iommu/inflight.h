/* SPDX-License-Identifier: MIT */
/*
 * In-flight DMA of one translated device: who still uses translations
 * that an UNMAP, DETACH or ATTACH is about to take away. A device request
 * translates its buffers once, when it is taken from the ring, and keeps
 * the host pointers until it completes; begin() before the first
 * translation and end() at completion bracket it. drain() makes the
 * remover wait until every request that began before the call has ended:
 * requests that begin afterwards translate through the new table and
 * cannot use the removed mappings. Two epochs (the low bit of a counter)
 * are enough: drain waits for the older epoch to empty, flips, and waits
 * for the one it closed.
 *
 * Every wait is bounded: a device that does not complete its requests in
 * timeout_ms makes drain() return -ETIMEDOUT (the caller reports the
 * removal as failed), never hang.
 *
 * Owns: its lock and condition variable. Thread-safe; begin/end are
 * called by device threads, drain by the IOMMU's (or a server's) thread.
 */
#ifndef WISP_IOMMU_INFLIGHT_H
#define WISP_IOMMU_INFLIGHT_H

#include <pthread.h>
#include <stdint.h>

struct dma_inflight {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	uint32_t epoch;
	uint64_t count[2];
	uint64_t drains, timeouts;
};

/* 0 or -errno (nothing to destroy then). */
int dma_inflight_init(struct dma_inflight *t);
void dma_inflight_destroy(struct dma_inflight *t);
/* A request is about to translate; returns its token (1 or 2). */
int dma_inflight_begin(struct dma_inflight *t);
/* The request with this token completed (or was dropped). Tokens other
 * than 1 and 2 are ignored. */
void dma_inflight_end(struct dma_inflight *t, int token);
/* Waits until every request begun before the call has ended, at most
 * timeout_ms in all: 0 or -ETIMEDOUT. */
int dma_inflight_drain(struct dma_inflight *t, int timeout_ms);
/* Requests in flight now (both epochs). */
uint64_t dma_inflight_count(struct dma_inflight *t);

#endif
