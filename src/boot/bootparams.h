/* SPDX-License-Identifier: MIT */
/*
 * The Linux x86 boot protocol's zero page (struct boot_params) and its
 * setup header, laid out at the offsets of Documentation/arch/x86/boot.rst
 * and zero-page.rst. Only the fields wisp reads or writes are named; the
 * rest is padding of the right size so the offsets stay fixed (checked by
 * the _Static_asserts below). Internal to src/boot.
 */
#ifndef WISP_BOOT_BOOTPARAMS_H
#define WISP_BOOT_BOOTPARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/e820.h"

/* File offsets in a bzImage. */
#define BZ_HDR_OFFSET 0x1f1 /* struct setup_header starts here */
#define BZ_JUMP_OFFSET 0x200 /* 2-byte jump; byte 0x201 = header length */
#define BZ_MAGIC_OFFSET 0x202 /* "HdrS" */
#define BZ_MAGIC 0x53726448U /* "HdrS" little-endian */
#define BZ_SECTOR 512
#define BZ_DEFAULT_SETUP_SECTS 4
#define BZ_ENTRY64_OFFSET 0x200 /* 64-bit entry, from the load address */
#define BZ_DEFAULT_INITRD_ADDR_MAX 0x37ffffffU

/* loadflags */
#define BZ_LOADED_HIGH 0x01
#define BZ_CAN_USE_HEAP 0x80
/* xloadflags */
#define BZ_XLF_KERNEL_64 0x0001

#define BOOT_PARAMS_E820_MAX 128

struct setup_header {
	uint8_t setup_sects; /* 0x1f1 */
	uint16_t root_flags;
	uint32_t syssize;
	uint16_t ram_size;
	uint16_t vid_mode; /* 0x1fa */
	uint16_t root_dev;
	uint16_t boot_flag; /* 0x1fe: 0xaa55 */
	uint16_t jump; /* 0x200 */
	uint32_t header; /* 0x202: "HdrS" */
	uint16_t version; /* 0x206 */
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader; /* 0x210 */
	uint8_t loadflags; /* 0x211 */
	uint16_t setup_move_size;
	uint32_t code32_start; /* 0x214 */
	uint32_t ramdisk_image; /* 0x218 */
	uint32_t ramdisk_size; /* 0x21c */
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr; /* 0x224 */
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr; /* 0x228 */
	uint32_t initrd_addr_max; /* 0x22c */
	uint32_t kernel_alignment; /* 0x230 */
	uint8_t relocatable_kernel;
	uint8_t min_alignment;
	uint16_t xloadflags; /* 0x236 */
	uint32_t cmdline_size; /* 0x238 */
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data; /* 0x250 */
	uint64_t pref_address; /* 0x258 */
	uint32_t init_size; /* 0x260 */
	uint32_t handover_offset;
	uint32_t kernel_info_offset; /* 0x268 */
} __attribute__((packed));

struct boot_params {
	uint8_t _pad0[0x0c0]; /* screen_info, apm, ist, acpi_rsdp, ... */
	uint32_t ext_ramdisk_image; /* 0x0c0 */
	uint32_t ext_ramdisk_size; /* 0x0c4 */
	uint32_t ext_cmd_line_ptr; /* 0x0c8 */
	uint8_t _pad1[0x1e8 - 0x0cc];
	uint8_t e820_entries; /* 0x1e8 */
	uint8_t _pad2[BZ_HDR_OFFSET - 0x1e9];
	struct setup_header hdr; /* 0x1f1 */
	uint8_t _pad3[0x2d0 - BZ_HDR_OFFSET - sizeof(struct setup_header)];
	struct e820_entry e820_table[BOOT_PARAMS_E820_MAX]; /* 0x2d0 */
	uint8_t _pad4[0x1000 - 0x2d0 - BOOT_PARAMS_E820_MAX * 20];
} __attribute__((packed));

/* Room the zero page has for the setup header (up to edd_mbr_sig_buffer
 * at 0x290): the most a loader may copy from the image. */
#define BZ_HDR_MAX (0x290 - BZ_HDR_OFFSET)

#define BP_ASSERT_AT(field, off)                                     \
	_Static_assert(offsetof(struct boot_params, field) == (off), \
		       #field " offset")
BP_ASSERT_AT(ext_ramdisk_image, 0x0c0);
BP_ASSERT_AT(ext_ramdisk_size, 0x0c4);
BP_ASSERT_AT(ext_cmd_line_ptr, 0x0c8);
BP_ASSERT_AT(e820_entries, 0x1e8);
BP_ASSERT_AT(hdr, 0x1f1);
BP_ASSERT_AT(hdr.vid_mode, 0x1fa);
BP_ASSERT_AT(hdr.boot_flag, 0x1fe);
BP_ASSERT_AT(hdr.header, 0x202);
BP_ASSERT_AT(hdr.version, 0x206);
BP_ASSERT_AT(hdr.type_of_loader, 0x210);
BP_ASSERT_AT(hdr.loadflags, 0x211);
BP_ASSERT_AT(hdr.ramdisk_image, 0x218);
BP_ASSERT_AT(hdr.ramdisk_size, 0x21c);
BP_ASSERT_AT(hdr.heap_end_ptr, 0x224);
BP_ASSERT_AT(hdr.cmd_line_ptr, 0x228);
BP_ASSERT_AT(hdr.initrd_addr_max, 0x22c);
BP_ASSERT_AT(hdr.kernel_alignment, 0x230);
BP_ASSERT_AT(hdr.xloadflags, 0x236);
BP_ASSERT_AT(hdr.cmdline_size, 0x238);
BP_ASSERT_AT(hdr.pref_address, 0x258);
BP_ASSERT_AT(hdr.init_size, 0x260);
BP_ASSERT_AT(e820_table, 0x2d0);
_Static_assert(sizeof(struct setup_header) == 0x26c - BZ_HDR_OFFSET,
	       "setup_header size");
_Static_assert(sizeof(struct e820_entry) == 20, "e820 entry size");
_Static_assert(sizeof(struct boot_params) == 4096, "boot_params size");

#endif
