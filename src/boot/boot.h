/* SPDX-License-Identifier: MIT */
/*
 * Kernel loading: turns a kernel image (+ initrd + command line) into
 * bytes in guest memory and an entry state for the boot vCPU. Three
 * formats, probed in this order:
 *   1. ELF64 with a XEN_ELFNOTE_PHYS32_ENTRY note (PVH): segments at their
 *      p_paddr, hvm_start_info at LAYOUT_PVH_START_INFO, 32-bit entry.
 *   2. bzImage ("HdrS" at 0x202, protocol >= 2.06, 64-bit capable): the
 *      protected-mode part at 1 MiB, zero page at LAYOUT_ZERO_PAGE, 64-bit
 *      entry at load address + 0x200.
 *   3. ELF64 without PVH note: segments at p_paddr, 64-bit entry at
 *      e_entry with a zero page (rsi) as for a bzImage.
 * Owns: the formats' parsing and the zero page / start info contents. Uses
 * guest memory through guest_mem_ptr() only, and arch/x86 for e820 and
 * layout constants. No KVM calls.
 */
#ifndef WISP_BOOT_BOOT_H
#define WISP_BOOT_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "util/err.h"

/* Command line limit wisp accepts (including the NUL); a bzImage's own
 * cmdline_size may be smaller and then wins. */
#define BOOT_CMDLINE_MAX 4096

enum boot_format {
	BOOT_FORMAT_PVH_ELF,
	BOOT_FORMAT_BZIMAGE,
	BOOT_FORMAT_ELF64,
};

enum boot_entry_mode {
	/* 32-bit protected mode, paging off, flat segments; ebx = start
	 * info. */
	BOOT_ENTRY_PVH32,
	/* Long mode with identity page tables, flat 64-bit segments; rsi =
	 * zero page. */
	BOOT_ENTRY_LONG64,
};

struct boot_entry {
	enum boot_format format;
	enum boot_entry_mode mode;
	uint64_t rip;
	uint64_t rsi; /* zero page GPA (LONG64) */
	uint64_t rbx; /* hvm_start_info GPA (PVH32) */
	uint64_t rsp;
	/* Where things landed, for logs and tests. */
	uint64_t kernel_start, kernel_end; /* [start, end) GPA */
	uint64_t initrd_start, initrd_size; /* size 0: none */
	uint64_t cmdline_gpa;
	/* A Linux kernel (any bzImage; an ELF that carries Linux's version
	 * banner): it needs to handle its own exceptions, which a PVM host
	 * cannot give an unmodified kernel. */
	bool linux_kernel;
};

/* Inputs are in-memory buffers so parsers can be unit-tested and fuzzed
 * without files; boot_load_files() below reads the files. */
struct boot_config {
	const uint8_t *kernel;
	size_t kernel_size;
	const char *kernel_name; /* for messages, e.g. the path */
	const uint8_t *initrd; /* NULL: none */
	size_t initrd_size;
	const char *initrd_name;
	const char *cmdline; /* final command line, NUL-terminated */
};

/*
 * Loads per cfg into m and fills *entry. Also writes the e820 map (zero
 * page or PVH memmap). Does not write page tables, GDT or the MP table
 * (arch/x86 does, from the vCPU count). Returns 0 or -errno with a
 * message in e that names the kernel/initrd and the cause, e.g.
 *   "kernel 'x': not an ELF or bzImage (bad magic 0x12345678)".
 */
int boot_load(struct guest_mem *m, const struct boot_config *cfg,
	      struct boot_entry *entry, struct err *e);

/* Reads kernel (and initrd if path non-NULL) from files and calls
 * boot_load(). */
int boot_load_files(struct guest_mem *m, const char *kernel_path,
		    const char *initrd_path, const char *cmdline,
		    struct boot_entry *entry, struct err *e);

/* Tells the loaded kernel where the ACPI RSDP is: boot_params'
 * acpi_rsdp_addr for the 64-bit entry, hvm_start_info.rsdp_paddr for
 * PVH. Call after boot_load(). */
int boot_set_rsdp(struct guest_mem *m, const struct boot_entry *entry,
		  uint64_t rsdp, struct err *e);

#endif
