/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM: one memfd, mapped MAP_SHARED once in the VMM so that device
 * processes can map the same pages later. Owns the GPA layout of RAM (a
 * low region below the 32-bit MMIO hole and, when the size needs it, a
 * high region from 4 GiB). Every conversion of a guest address into a
 * host pointer goes through guest_mem_ptr(), which checks that the whole
 * [gpa, gpa+len) range lies inside one RAM region.
 *
 * Threads: the layout is written by guest_mem_init() before any vCPU runs
 * and is read-only afterwards; the bytes themselves are shared with the
 * guest and must be treated as hostile and changing.
 */
#ifndef WISP_MEM_GUEST_MEM_H
#define WISP_MEM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* The 32-bit MMIO hole: [3 GiB, 4 GiB). Devices (IOAPIC, LAPIC, virtio-mmio
 * windows) live here; RAM that would overlap moves above 4 GiB. */
#define GUEST_MMIO_HOLE_START 0xC0000000ULL
#define GUEST_MMIO_HOLE_END 0x100000000ULL

#define GUEST_MEM_MAX_REGIONS 2

struct guest_mem_region {
	uint64_t gpa; /* guest physical start */
	uint64_t size; /* bytes */
	uint64_t offset; /* offset in the memfd and in the host mapping */
};

struct guest_mem {
	int memfd;
	uint8_t *host; /* base of the mapping of the whole memfd */
	uint64_t size; /* total RAM bytes */
	int nr_regions;
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	/* Pages the VMM wrote, for Diff snapshots (mem/dirty.h); NULL when
	 * dirty pages are not tracked. */
	uint64_t *dirty;
};

/* Creates the memfd, sizes it, seals its size (F_SEAL_SHRINK, F_SEAL_GROW,
 * F_SEAL_SEAL: a device process that gets the fd cannot resize it), maps
 * it. size must be a non-zero multiple
 * of 4 KiB. On failure returns -errno with a message in e (e.g. the host
 * cannot back the size). */
int guest_mem_init(struct guest_mem *m, uint64_t size, struct err *e);
void guest_mem_destroy(struct guest_mem *m);

/* For a device process: maps another process's guest RAM memfd with the
 * given layout (regions must not overlap, must lie inside the memfd, and
 * at most GUEST_MEM_MAX_REGIONS). Takes ownership of memfd on success. */
int guest_mem_attach(struct guest_mem *m, int memfd,
		     const struct guest_mem_region *regions, int nr,
		     struct err *e);

/* Host pointer for [gpa, gpa+len) or NULL if any byte is outside RAM or
 * the range crosses a region boundary or overflows. len 0 is allowed
 * (returns the pointer for gpa if gpa is inside or at the end of RAM). */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Copy helpers; return 0 or -EFAULT. */
int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src,
		    uint64_t len);
int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst,
		   uint64_t len);

/* End of the RAM region that starts at GPA 0 (the "low" RAM). */
uint64_t guest_mem_low_end(const struct guest_mem *m);

#endif
