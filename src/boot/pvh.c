// SPDX-License-Identifier: MIT
/*
 * PVH start info: one page at LAYOUT_PVH_START_INFO holding, in order,
 * struct hvm_start_info, the module list (the initrd, if any) and the
 * memory map. Built in a local buffer and written with one bounds-checked
 * copy.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "boot/boot_priv.h"
#include "boot/start_info.h"

#define PVH_AREA (LAYOUT_PVH_START_INFO_END - LAYOUT_PVH_START_INFO)
#define PVH_MODLIST_OFF 0x40
#define PVH_MEMMAP_OFF 0x80

_Static_assert(sizeof(struct hvm_start_info) <= PVH_MODLIST_OFF,
	       "start info overlaps the module list");
_Static_assert(PVH_MODLIST_OFF + sizeof(struct hvm_modlist_entry) <=
		       PVH_MEMMAP_OFF,
	       "module list overlaps the memory map");

int pvh_write(const struct boot_ctx *c, const struct boot_entry *entry,
	      const struct e820_entry *map, int nr_map)
{
	uint8_t page[PVH_AREA];
	struct hvm_start_info si = { 0 };
	uint64_t base = LAYOUT_PVH_START_INFO;

	if (nr_map < 0 ||
	    PVH_MEMMAP_OFF + (uint64_t)nr_map *
				     sizeof(struct hvm_memmap_table_entry) >
		    PVH_AREA)
		return err_config(
			c->e, -ENOSPC,
			"kernel '%s': %d memory map entries do not fit the PVH start info page",
			c->kname, nr_map);

	memset(page, 0, sizeof(page));
	si.magic = HVM_START_MAGIC;
	si.version = HVM_START_VERSION;
	si.flags = 0;
	si.cmdline_paddr = entry->cmdline_gpa;
	si.rsdp_paddr = 0;
	if (entry->initrd_size) {
		struct hvm_modlist_entry mod = {
			.paddr = entry->initrd_start,
			.size = entry->initrd_size,
		};

		memcpy(page + PVH_MODLIST_OFF, &mod, sizeof(mod));
		si.nr_modules = 1;
		si.modlist_paddr = base + PVH_MODLIST_OFF;
	}
	for (int i = 0; i < nr_map; i++) {
		struct hvm_memmap_table_entry me = {
			.addr = map[i].addr,
			.size = map[i].size,
			.type = map[i].type,
		};

		memcpy(page + PVH_MEMMAP_OFF + (size_t)i * sizeof(me), &me,
		       sizeof(me));
	}
	si.memmap_paddr = base + PVH_MEMMAP_OFF;
	si.memmap_entries = (uint32_t)nr_map;
	memcpy(page, &si, sizeof(si));

	if (guest_mem_write(c->m, base, page, sizeof(page)) < 0)
		return err_config(
			c->e, -EFAULT,
			"kernel '%s': PVH start info at 0x%llx is outside guest RAM",
			c->kname, (unsigned long long)base);
	return 0;
}

int pvh_set_rsdp(struct guest_mem *m, uint64_t rsdp)
{
	return guest_mem_write(m,
			       LAYOUT_PVH_START_INFO +
				       offsetof(struct hvm_start_info,
						rsdp_paddr),
			       &rsdp, sizeof(rsdp)) < 0 ?
		       -EFAULT :
		       0;
}
