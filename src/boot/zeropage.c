// SPDX-License-Identifier: MIT
/* The zero page (struct boot_params) for the 64-bit boot protocol. */
#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "boot/boot_priv.h"

#define BZ_LOADER_UNDEFINED 0xff /* type_of_loader: no assigned ID */
#define BZ_HEAP_END 0xfe00
#define BZ_VID_NORMAL 0xffff
#define BZ_BOOT_FLAG 0xaa55
#define ELF64_HDR_VERSION 0x20c
#define ELF64_KERNEL_ALIGN 0x1000000
#define BP_ACPI_RSDP_ADDR 0x070 /* u64, boot protocol 2.14+ */

/* For an ELF kernel there is no header to copy: build the fields a loader
 * would find in a protocol 2.12 bzImage. */
static void synth_header(struct setup_header *h)
{
	h->boot_flag = BZ_BOOT_FLAG;
	h->header = BZ_MAGIC;
	h->version = ELF64_HDR_VERSION;
	h->loadflags = BZ_LOADED_HIGH;
	h->kernel_alignment = ELF64_KERNEL_ALIGN;
	h->xloadflags = BZ_XLF_KERNEL_64;
	h->cmdline_size = BOOT_CMDLINE_MAX - 1;
	h->initrd_addr_max = UINT32_MAX;
}

int zeropage_write(const struct boot_ctx *c, const struct boot_image *img,
		   const struct boot_entry *entry, const struct e820_entry *map,
		   int nr_map)
{
	struct boot_params bp;
	struct setup_header *h = &bp.hdr;

	memset(&bp, 0, sizeof(bp));
	if (img->format == BOOT_FORMAT_BZIMAGE)
		memcpy((uint8_t *)&bp + BZ_HDR_OFFSET, img->hdr_raw,
		       img->hdr_len);
	else
		synth_header(h);

	h->type_of_loader = BZ_LOADER_UNDEFINED;
	h->loadflags |= BZ_CAN_USE_HEAP;
	h->heap_end_ptr = BZ_HEAP_END;
	h->vid_mode = BZ_VID_NORMAL;
	h->cmd_line_ptr = (uint32_t)entry->cmdline_gpa;
	bp.ext_cmd_line_ptr = (uint32_t)(entry->cmdline_gpa >> 32);
	h->ramdisk_image = (uint32_t)entry->initrd_start;
	bp.ext_ramdisk_image = (uint32_t)(entry->initrd_start >> 32);
	h->ramdisk_size = (uint32_t)entry->initrd_size;
	bp.ext_ramdisk_size = (uint32_t)(entry->initrd_size >> 32);

	if (nr_map < 0 || nr_map > BOOT_PARAMS_E820_MAX)
		return err_config(
			c->e, -ENOSPC,
			"kernel '%s': %d e820 entries do not fit the zero page",
			c->kname, nr_map);
	bp.e820_entries = (uint8_t)nr_map;
	memcpy(bp.e820_table, map, (size_t)nr_map * sizeof(*map));

	if (guest_mem_write(c->m, LAYOUT_ZERO_PAGE, &bp, sizeof(bp)) < 0)
		return err_config(
			c->e, -EFAULT,
			"kernel '%s': zero page at 0x%llx is outside guest RAM",
			c->kname, (unsigned long long)LAYOUT_ZERO_PAGE);
	return 0;
}

int boot_set_rsdp(struct guest_mem *m, const struct boot_entry *entry,
		  uint64_t rsdp, struct err *e)
{
	int ret = entry->mode == BOOT_ENTRY_PVH32 ?
			  pvh_set_rsdp(m, rsdp) :
			  (guest_mem_write(m,
					   LAYOUT_ZERO_PAGE + BP_ACPI_RSDP_ADDR,
					   &rsdp, sizeof(rsdp)) < 0 ?
				   -EFAULT :
				   0);

	if (ret)
		return err_set(e, ret, "RSDP address: boot data outside RAM");
	return 0;
}
