/* SPDX-License-Identifier: MIT */
/*
 * Counters for the metrics: one writer (a thread holding the device's
 * lock, or the only thread that touches the counter), any number of
 * readers on other threads without that lock. A relaxed load and store
 * instead of an atomic add: the writer is alone, so no increment can be
 * lost, and there is no locked instruction on the hot path. Readers see
 * each 64-bit value whole, possibly a moment late.
 */
#ifndef WISP_UTIL_COUNTER_H
#define WISP_UTIL_COUNTER_H

#include <stdint.h>

static inline void counter_add(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v,
			 __ATOMIC_RELAXED);
}

static inline uint64_t counter_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

#endif
