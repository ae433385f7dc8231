// SPDX-License-Identifier: MIT
#include "arch/x86/e820.h"

#include <errno.h>

#include "arch/x86/layout.h"

/* Below this much low RAM there is no room for the boot data, a kernel
 * and its initial page tables. */
#define E820_MIN_LOW_RAM (2ULL << 20)

int e820_build(const struct guest_mem *m, struct e820_entry *out, int max)
{
	uint64_t low_end = guest_mem_low_end(m);
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = 0;

	if (!out || max < 0 || low_end < E820_MIN_LOW_RAM)
		return -EINVAL;
	map[n++] = (struct e820_entry){ 0, LAYOUT_EBDA_START, E820_RAM };
	map[n++] = (struct e820_entry){ LAYOUT_EBDA_START,
					LAYOUT_HIGH_MEMORY - LAYOUT_EBDA_START,
					E820_RESERVED };
	map[n++] = (struct e820_entry){ LAYOUT_HIGH_MEMORY,
					low_end - LAYOUT_HIGH_MEMORY,
					E820_RAM };
	/* Regions after the first one are above the MMIO hole. */
	for (int i = 1; i < m->nr_regions && i < GUEST_MEM_MAX_REGIONS; i++) {
		if (n == E820_MAX_ENTRIES)
			return -ENOSPC;
		map[n++] = (struct e820_entry){ m->regions[i].gpa,
						m->regions[i].size, E820_RAM };
	}
	if (n > max)
		return -ENOSPC;
	for (int i = 0; i < n; i++)
		out[i] = map[i];
	return n;
}
