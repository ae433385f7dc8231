/* SPDX-License-Identifier: MIT */
/*
 * A back-end's view of the front-end's memory: the regions of
 * SET_MEM_TABLE / ADD_MEM_REG, each mapped from its descriptor, and the
 * translation of ring (user) addresses and guest addresses into host
 * pointers. Everything here came from the front-end and is checked:
 * every region non-empty, without overflow, inside its file (fstat),
 * not overlapping another in guest or user addresses; a ring inside one
 * region, aligned, of a valid size.
 *
 * Threads: one owner; no locking.
 */
#ifndef WISP_VHOST_USER_MEMTAB_H
#define WISP_VHOST_USER_MEMTAB_H

#include <stdint.h>

#include "util/err.h"
#include "vhost_user/proto.h"

struct vhu_memtab {
	int n;
	struct vhu_mapped {
		struct vhu_region r;
		uint8_t *map; /* mapping of the file from map_off */
		uint64_t map_len, map_off;
	} reg[VHU_MAX_REGIONS];
};

void vhu_memtab_init(struct vhu_memtab *t);

/* Replaces the table with regs[0..n) mapped from fds[0..n). The fds stay
 * the caller's (a mapping keeps what it needs). On failure the old table
 * is gone too (the front-end sent a new one) and t is empty; -EINVAL
 * with a message naming the region and the cause, or -errno for mmap. */
int vhu_memtab_set(struct vhu_memtab *t, const struct vhu_region *regs, int n,
		   const int *fds, struct err *e);

/* ADD_MEM_REG: one more region, same checks. */
int vhu_memtab_add(struct vhu_memtab *t, const struct vhu_region *r, int fd,
		   struct err *e);

void vhu_memtab_clear(struct vhu_memtab *t);

/* Host pointer for [addr, addr + len) by user / guest address, or NULL if
 * the range is not inside one region. */
void *vhu_memtab_ua(const struct vhu_memtab *t, uint64_t ua, uint64_t len);
void *vhu_memtab_gpa(const struct vhu_memtab *t, uint64_t gpa, uint64_t len);

/* A split ring of num entries at a: num a power of two up to 32768,
 * desc 16-, avail 2-, used 4-byte aligned, each part inside one region.
 * Returns 0 or -EINVAL with *why. */
int vhu_check_vring(const struct vhu_memtab *t, const struct vhu_vring_addr *a,
		    uint32_t num, const char **why);

#endif
