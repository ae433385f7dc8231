/* SPDX-License-Identifier: MIT */
/* Builders for minimal kernel images (bzImage, ELF64, PVH ELF) assembled in
 * memory, shared by the unit tests and the fuzz seed generator. */
#ifndef WISP_TESTS_UNIT_IMAGES_H
#define WISP_TESTS_UNIT_IMAGES_H

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bz_opts {
	uint16_t version; /* protocol, e.g. 0x20f */
	uint8_t setup_sects; /* 0 means 4 */
	uint8_t loadflags;
	uint16_t xloadflags;
	uint8_t hdr_len_byte; /* byte at 0x201: header ends at 0x202 + it */
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	uint32_t init_size;
	uint64_t pref_address;
	size_t pm_size; /* bytes of protected-mode code after the setup */
};

/* A protocol 2.15, 64-bit capable image with a 8 KiB protected-mode part,
 * cmdline_size 2047, init_size 1 MiB, pref_address 16 MiB. */
void bz_default(struct bz_opts *o);
/* Returns a malloc'd image; the protected-mode part is filled with
 * bz_pm_byte(i). */
uint8_t *make_bzimage(const struct bz_opts *o, size_t *size);
static inline uint8_t bz_pm_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

#define ELF_MAX_TEST_SEGS 4

struct elf_seg {
	uint32_t type; /* PT_LOAD unless set */
	uint64_t paddr;
	uint64_t filesz;
	uint64_t memsz;
};

struct elf_spec {
	uint64_t entry;
	int nseg;
	struct elf_seg seg[ELF_MAX_TEST_SEGS];
	bool pvh; /* add a PT_NOTE with XEN_ELFNOTE_PHYS32_ENTRY */
	uint32_t pvh_descsz; /* 4 (default when 0) or 8 */
	uint64_t pvh_entry;
};

/* Layout: ehdr | phdrs (loads, then the note) | note | segment data.
 * Segment i's file bytes are elf_seg_byte(i, j). */
uint8_t *make_elf(const struct elf_spec *s, size_t *size);
static inline uint8_t elf_seg_byte(int seg, size_t j)
{
	return (uint8_t)(0x40 + seg * 0x11 + j * 3);
}

/* A valid one-segment vmlinux-like spec: 64 KiB file + 64 KiB bss at
 * 16 MiB, entry at 16 MiB + 0x40. pvh adds the note (entry 16 MiB). */
void elf_default(struct elf_spec *s, bool pvh);

/* Program header i of an image built by make_elf (for mutation). */
Elf64_Phdr elf_get_phdr(const uint8_t *img, int i);
void elf_put_phdr(uint8_t *img, int i, const Elf64_Phdr *ph);

#endif
