/* SPDX-License-Identifier: MIT */
/*
 * PVH boot ABI (Xen's arch/x86/include/public/hvm/start_info.h, version 1):
 * the structure whose address is in ebx at the 32-bit entry, its module
 * list and its memory map. All fields little-endian. Internal to src/boot.
 */
#ifndef WISP_BOOT_START_INFO_H
#define WISP_BOOT_START_INFO_H

#include <stddef.h>
#include <stdint.h>

#define HVM_START_MAGIC 0x336ec578U
#define HVM_START_VERSION 1

/* ELF note name and type that carry the 32-bit PVH entry point. */
#define XEN_ELFNOTE_NAME "Xen"
#define XEN_ELFNOTE_PHYS32_ENTRY 18

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version >= 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* E820_RAM, E820_RESERVED, ... */
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info size");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == 40,
	       "memmap_paddr offset");
_Static_assert(offsetof(struct hvm_start_info, memmap_entries) == 48,
	       "memmap_entries offset");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "modlist entry size");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24,
	       "memmap entry size");

#endif
