/* SPDX-License-Identifier: MIT */
/*
 * The VMM's own writes to guest RAM, page by page, for Diff snapshots.
 * KVM's dirty log sees only what the guest writes through its memory
 * slots; what wisp's devices write (used rings, buffers the device
 * fills, the boot loader) goes through wisp's mapping and must be
 * counted here, or a Diff snapshot would miss it.
 *
 * Owns the bitmap behind guest_mem.dirty (one bit per 4 KiB page, by
 * offset in the memfd). Off (NULL) unless dirty tracking was asked for;
 * then every mark is one atomic OR.
 *
 * Threads: any device thread marks while the VM runs; collect() runs
 * while the VM is paused and its device threads are parked, so nothing
 * marks concurrently with the swap that clears the bitmap (the atomic
 * exchange keeps a late mark anyway).
 */
#ifndef WISP_MEM_DIRTY_H
#define WISP_MEM_DIRTY_H

#include <stdint.h>

#include "mem/guest_mem.h"
#include "util/err.h"

#define GUEST_PAGE_SHIFT 12

/* Words of a bitmap for size bytes of RAM. */
static inline uint64_t dirty_words(uint64_t size)
{
	return ((size >> GUEST_PAGE_SHIFT) + 63) / 64;
}

/* Starts tracking with every page dirty: what the VMM wrote before (the
 * boot loader, a restored image) is in no KVM log, so the first Diff
 * holds all of RAM unless a Full snapshot (or all_clean) came first. */
int guest_mem_dirty_enable(struct guest_mem *m, struct err *e);
void guest_mem_dirty_disable(struct guest_mem *m);
/* Forgets every mark: RAM as it is now is the base (a restored image). */
void guest_mem_dirty_all_clean(struct guest_mem *m);

void guest_mem_mark_dirty_slow(const struct guest_mem *m, const void *host,
			       uint64_t len);
/* host..host+len must lie in m's mapping (a checked pointer). */
static inline void guest_mem_mark_dirty(const struct guest_mem *m,
					const void *host, uint64_t len)
{
	if (m->dirty && len)
		guest_mem_mark_dirty_slow(m, host, len);
}

/* ORs bm back into the marks (a snapshot that failed after collect). */
void guest_mem_dirty_restore(struct guest_mem *m, const uint64_t *bm);

/* ORs the marks into out (dirty_words(m->size) words) and clears them. */
void guest_mem_dirty_collect(struct guest_mem *m, uint64_t *out);

#endif
