/* SPDX-License-Identifier: MIT */
/*
 * Diff snapshots (docs/snapshot.md, "Diff snapshots"): a memory file of
 * the guest's full size that holds only the pages written since the
 * previous snapshot (the rest are holes), and a SNAP_SEC_DIFF section in
 * the state file saying which pages those are. A Diff is restored after
 * snap_diff_merge() wrote its pages onto the memory file of the snapshot
 * it follows (its base) and wrote the state without the section.
 *
 * The section: u64 page size (4096), u64 page count, then the bitmap as
 * little-endian u64 words (bit p of word p / 64: page p, by offset in the
 * memory file). Pure: files and buffers, no KVM, no VM.
 */
#ifndef WISP_SNAPSHOT_DIFF_H
#define WISP_SNAPSHOT_DIFF_H

#include <stdint.h>

#include "snapshot/format.h"
#include "util/err.h"
#include "util/ser.h"

/* Writes a Diff memory file at path (replaced): size bytes, the pages
 * set in bitmap copied from host, holes elsewhere. *written: data bytes. */
int snap_diff_dump(const uint8_t *host, uint64_t size, const uint64_t *bitmap,
		   const char *path, uint64_t *written, struct err *e);

/* Appends the SNAP_SEC_DIFF payload for size bytes of RAM. */
void snap_diff_save(struct ser_w *w, uint64_t size, const uint64_t *bitmap);

/* Checks a SNAP_SEC_DIFF payload against size bytes of RAM: on success
 * *bitmap points into data (little-endian words, read with le64). */
int snap_diff_decode(const uint8_t *data, uint64_t len, uint64_t size,
		     const uint8_t **bitmap, struct err *e);

/* Merges the Diff snapshot (state at diff_state, memory at diff_mem)
 * onto base_mem, the memory file of the snapshot it follows, in place,
 * and writes the Diff's state without its SNAP_SEC_DIFF section to
 * out_state, which then restores with base_mem. Both memory files must
 * be the guest's size. Config class errors name the file at fault; on
 * failure out_state is not written (base_mem may hold some of the
 * Diff's pages, which is why it is written first: merge again). */
int snap_diff_merge(const char *diff_state, const char *diff_mem,
		    const char *base_mem, const char *out_state, struct err *e);

#endif
