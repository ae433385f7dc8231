/* SPDX-License-Identifier: MIT */
/*
 * Internal interfaces of src/boot: the format parsers (elf.c, bzimage.c)
 * validate the whole image and describe it as a struct boot_image without
 * touching guest memory; boot.c then copies the segments, places the
 * command line and initrd, and zeropage.c / pvh.c write the boot tables.
 */
#ifndef WISP_BOOT_BOOT_PRIV_H
#define WISP_BOOT_BOOT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/e820.h"
#include "boot/boot.h"
#include "boot/bootparams.h"

/* More PT_LOAD segments than this is not a kernel (vmlinux has ~5). */
#define BOOT_MAX_SEGMENTS 64

/* A byte range of the file copied to guest memory, zero-filled up to
 * memsz. filesz <= memsz, offset + filesz <= file size, and
 * [paddr, paddr + memsz) is inside guest RAM (all checked by the parser). */
struct boot_segment {
	uint64_t paddr, memsz;
	uint64_t offset, filesz;
	int index; /* program header index, for messages */
};

struct boot_image {
	enum boot_format format;
	uint64_t entry; /* rip */
	/* [kernel_start, kernel_end): everything the kernel occupies or
	 * will use early on (for a bzImage, including its init_size). */
	uint64_t kernel_start, kernel_end;
	/* The initrd must end at or below this address (exclusive). */
	uint64_t initrd_limit;
	/* Longest command line accepted, including the NUL. */
	uint64_t cmdline_max;
	int nr_segments;
	struct boot_segment seg[BOOT_MAX_SEGMENTS];
	/* bzImage: the setup header bytes as found in the file, hdr_len
	 * bytes from file offset 0x1f1 (the rest zero), and the same bytes
	 * as a struct. */
	uint8_t hdr_raw[BZ_HDR_MAX];
	size_t hdr_len;
	struct setup_header hdr;
};

struct boot_ctx {
	struct guest_mem *m;
	const struct boot_config *cfg;
	const char *kname; /* kernel name for messages, never NULL */
	struct err *e;
};

/* Little-endian reads from a byte buffer the caller bounds-checked. */
static inline uint16_t boot_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t boot_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* True if the image starts with the ELF magic (then elf_parse() decides,
 * with a message, whether it is an ELF we can boot). */
bool elf_probe(const uint8_t *buf, size_t size);
/* Validates an ELF64 x86-64 executable against guest memory; sets format
 * to BOOT_FORMAT_PVH_ELF (entry from the Xen PHYS32_ENTRY note) or
 * BOOT_FORMAT_ELF64 (entry = e_entry). */
int elf_parse(const struct boot_ctx *c, struct boot_image *img);

/* True if "HdrS" is at 0x202. */
bool bzimage_probe(const uint8_t *buf, size_t size);
int bzimage_parse(const struct boot_ctx *c, struct boot_image *img);

/* Writes the zero page at LAYOUT_ZERO_PAGE: the image's setup header
 * (bzImage) or a synthesized one (ELF64), command line, initrd, e820. */
int zeropage_write(const struct boot_ctx *c, const struct boot_image *img,
		   const struct boot_entry *entry, const struct e820_entry *map,
		   int nr_map);

/* Writes hvm_start_info, module list and memory map at
 * LAYOUT_PVH_START_INFO. */
/* hvm_start_info.rsdp_paddr of the start info pvh_write() wrote. */
int pvh_set_rsdp(struct guest_mem *m, uint64_t rsdp);
int pvh_write(const struct boot_ctx *c, const struct boot_entry *entry,
	      const struct e820_entry *map, int nr_map);

#endif
