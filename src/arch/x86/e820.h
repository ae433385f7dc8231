/* SPDX-License-Identifier: MIT */
/* The guest's physical memory map, as e820 entries, derived from the RAM
 * layout of guest_mem. Shared by the zero page and the PVH memmap. */
#ifndef WISP_ARCH_X86_E820_H
#define WISP_ARCH_X86_E820_H

#include <stdint.h>

#include "mem/guest_mem.h"

#define E820_RAM 1
#define E820_RESERVED 2

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

#define E820_MAX_ENTRIES 8

/* Fills out[] (capacity max) in ascending address order: low RAM up to
 * the EBDA, the reserved legacy area up to 1 MiB, RAM from 1 MiB to the end
 * of low RAM, and RAM above 4 GiB if any. Returns the entry count or
 * -EINVAL / -ENOSPC. */
int e820_build(const struct guest_mem *m, struct e820_entry *out, int max);

#endif
