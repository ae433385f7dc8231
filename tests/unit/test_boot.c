// SPDX-License-Identifier: MIT
/* boot_load(): valid bzImage / ELF64 / PVH ELF images built in memory, the
 * command line and initrd rules, and malformed images (exact -errno and a
 * message naming the cause). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "boot/boot.h"
#include "boot/bootparams.h"
#include "boot/start_info.h"
#include "images.h"
#include "mem/guest_mem.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
#define CMDLINE "console=ttyS0 quiet"

static struct guest_mem *new_mem(uint64_t size)
{
	struct guest_mem *m = calloc(1, sizeof(*m));
	struct err e = { 0 };

	assert_non_null(m);
	if (guest_mem_init(m, size, &e) < 0) {
		print_message("guest_mem_init(%llu MiB): %s\n",
			      (unsigned long long)(size >> 20), e.msg);
		free(m);
		return NULL;
	}
	return m;
}

static int setup_64m(void **state)
{
	*state = new_mem(64 * MIB);
	return *state ? 0 : -1;
}

static int teardown_mem(void **state)
{
	struct guest_mem *m = *state;

	if (m) {
		guest_mem_destroy(m);
		free(m);
	}
	return 0;
}

static int load(struct guest_mem *m, const uint8_t *k, size_t n,
		const uint8_t *initrd, size_t initrd_size, const char *cmdline,
		struct boot_entry *ent, struct err *e)
{
	struct boot_config cfg = {
		.kernel = k,
		.kernel_size = n,
		.kernel_name = "k",
		.initrd = initrd,
		.initrd_size = initrd_size,
		.initrd_name = "rd",
		.cmdline = cmdline,
	};

	memset(e, 0, sizeof(*e));
	return boot_load(m, &cfg, ent, e);
}

/* Loads k (no initrd) and expects ret with needle in the message; every
 * kernel message must also name the kernel. */
static void expect_fail(struct guest_mem *m, const uint8_t *k, size_t n,
			int ret_want, const char *needle)
{
	struct boot_entry ent;
	struct err e;
	int ret = load(m, k, n, NULL, 0, CMDLINE, &ent, &e);

	if (ret != ret_want || !strstr(e.msg, needle))
		print_message("want %d '%s', got %d '%s'\n", ret_want, needle,
			      ret, e.msg);
	assert_int_equal(ret, ret_want);
	assert_non_null(strstr(e.msg, needle));
	assert_non_null(strstr(e.msg, "kernel 'k'"));
}

static uint8_t *make_initrd(size_t n)
{
	uint8_t *b = malloc(n);

	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 13 + 1);
	return b;
}

static void read_zero_page(struct guest_mem *m, struct boot_params *bp)
{
	assert_int_equal(guest_mem_read(m, LAYOUT_ZERO_PAGE, bp, sizeof(*bp)),
			 0);
}

static void check_e820_64m(const struct boot_params *bp)
{
	assert_int_equal(bp->e820_entries, 3);
	assert_int_equal(bp->e820_table[0].addr, 0);
	assert_int_equal(bp->e820_table[0].size, LAYOUT_EBDA_START);
	assert_int_equal(bp->e820_table[0].type, E820_RAM);
	assert_int_equal(bp->e820_table[1].addr, LAYOUT_EBDA_START);
	assert_int_equal(bp->e820_table[1].size,
			 LAYOUT_HIGH_MEMORY - LAYOUT_EBDA_START);
	assert_int_equal(bp->e820_table[1].type, E820_RESERVED);
	assert_int_equal(bp->e820_table[2].addr, MIB);
	assert_int_equal(bp->e820_table[2].size, 63 * MIB);
	assert_int_equal(bp->e820_table[2].type, E820_RAM);
}

static void check_cmdline(struct guest_mem *m, const char *want)
{
	size_t n = strlen(want) + 1;
	const char *p = guest_mem_ptr(m, LAYOUT_CMDLINE, n);

	assert_non_null(p);
	assert_memory_equal(p, want, n);
}

/* ---- valid images ---- */

static void test_bzimage_valid(void **state)
{
	struct guest_mem *m = *state;
	struct bz_opts o;
	struct boot_entry ent;
	struct boot_params bp;
	struct err e;
	size_t n, rd_n = 100 * 1024 + 5;
	uint8_t *k, *rd = make_initrd(rd_n);
	const uint8_t *p;

	bz_default(&o);
	k = make_bzimage(&o, &n);
	assert_int_equal(load(m, k, n, rd, rd_n, CMDLINE, &ent, &e), 0);

	assert_int_equal(ent.format, BOOT_FORMAT_BZIMAGE);
	assert_int_equal(ent.mode, BOOT_ENTRY_LONG64);
	assert_int_equal(ent.rip, 0x100200);
	assert_int_equal(ent.rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(ent.rsp, LAYOUT_STACK_TOP);
	assert_int_equal(ent.cmdline_gpa, LAYOUT_CMDLINE);
	assert_int_equal(ent.kernel_start, MIB);
	/* pref_address 16 MiB + init_size 1 MiB */
	assert_int_equal(ent.kernel_end, 17 * MIB);

	/* Protected-mode part at 1 MiB. */
	p = guest_mem_ptr(m, LAYOUT_KERNEL_LOAD, o.pm_size);
	assert_non_null(p);
	for (size_t i = 0; i < o.pm_size; i++)
		assert_int_equal(p[i], bz_pm_byte(i));
	check_cmdline(m, CMDLINE);

	read_zero_page(m, &bp);
	assert_memory_equal(&bp.hdr.header, "HdrS", 4);
	assert_int_equal(bp.hdr.version, 0x20f);
	assert_int_equal(bp.hdr.boot_flag, 0xaa55);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.loadflags, 0x81);
	assert_int_equal(bp.hdr.heap_end_ptr, 0xfe00);
	assert_int_equal(bp.hdr.vid_mode, 0xffff);
	assert_int_equal(bp.hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp.ext_cmd_line_ptr, 0);
	assert_int_equal(bp.hdr.init_size, 1 << 20);
	assert_int_equal(bp.hdr.cmdline_size, 2047);
	assert_int_equal(bp.hdr.ramdisk_image, ent.initrd_start);
	assert_int_equal(bp.hdr.ramdisk_size, rd_n);
	assert_int_equal(bp.ext_ramdisk_image, 0);
	assert_int_equal(bp.ext_ramdisk_size, 0);
	check_e820_64m(&bp);

	/* initrd: top of RAM, 4 KiB aligned, above the kernel. */
	assert_int_equal(ent.initrd_size, rd_n);
	assert_int_equal(ent.initrd_start, (64 * MIB - rd_n) & ~0xfffULL);
	assert_true(ent.initrd_start >= ent.kernel_end);
	p = guest_mem_ptr(m, ent.initrd_start, rd_n);
	assert_non_null(p);
	assert_memory_equal(p, rd, rd_n);
	free(k);
	free(rd);
}

static void test_bzimage_setup_sects_zero(void **state)
{
	struct guest_mem *m = *state;
	struct bz_opts o;
	struct boot_entry ent;
	struct err e;
	size_t n;
	uint8_t *k;
	const uint8_t *p;

	bz_default(&o);
	o.setup_sects = 0; /* means 4 */
	k = make_bzimage(&o, &n);
	assert_int_equal(load(m, k, n, NULL, 0, "", &ent, &e), 0);
	p = guest_mem_ptr(m, MIB, 16);
	assert_int_equal(p[0], bz_pm_byte(0));
	assert_int_equal(p[15], bz_pm_byte(15));
	assert_int_equal(ent.initrd_size, 0);
	check_cmdline(m, "");
	free(k);
}

static void test_bzimage_initrd_addr_max(void **state)
{
	struct guest_mem *m = new_mem(1 * GIB);
	struct bz_opts o;
	struct boot_entry ent;
	struct boot_params bp;
	struct err e;
	size_t n, rd_n = 3 * MIB + 17;
	uint8_t *k, *rd = make_initrd(rd_n);

	(void)state;
	assert_non_null(m);
	bz_default(&o);
	o.initrd_addr_max = 0x1fffffff; /* below the 1 GiB of RAM */
	k = make_bzimage(&o, &n);
	assert_int_equal(load(m, k, n, rd, rd_n, CMDLINE, &ent, &e), 0);
	assert_true(ent.initrd_start + rd_n <= 0x20000000);
	assert_int_equal(ent.initrd_start, (0x20000000 - rd_n) & ~0xfffULL);
	assert_int_equal(ent.initrd_start & 0xfff, 0);
	read_zero_page(m, &bp);
	assert_int_equal(bp.hdr.ramdisk_image, ent.initrd_start);

	/* initrd_addr_max 0: the protocol default 0x37ffffff applies. */
	free(k);
	o.initrd_addr_max = 0;
	k = make_bzimage(&o, &n);
	assert_int_equal(load(m, k, n, rd, rd_n, CMDLINE, &ent, &e), 0);
	assert_int_equal(ent.initrd_start, (0x38000000 - rd_n) & ~0xfffULL);
	free(k);
	free(rd);
	teardown_mem((void **)&m);
}

static void test_elf64_valid(void **state)
{
	struct guest_mem *m = *state;
	struct elf_spec s;
	struct boot_entry ent;
	struct boot_params bp;
	struct err e;
	size_t n, rd_n = 4096 * 3;
	uint8_t *k, *rd = make_initrd(rd_n);
	uint8_t *p;

	elf_default(&s, false);
	s.nseg = 2;
	s.seg[1] = (struct elf_seg){ PT_LOAD, 20 * MIB, 100, 0x3000 };
	k = make_elf(&s, &n);
	/* Dirty the bss first: the loader must zero it. */
	p = guest_mem_ptr(m, 16 * MIB, 128 << 10);
	memset(p, 0xee, 128 << 10);

	assert_int_equal(load(m, k, n, rd, rd_n, CMDLINE, &ent, &e), 0);
	assert_int_equal(ent.format, BOOT_FORMAT_ELF64);
	assert_int_equal(ent.mode, BOOT_ENTRY_LONG64);
	assert_int_equal(ent.rip, 16 * MIB + 0x40);
	assert_int_equal(ent.rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(ent.rsp, LAYOUT_STACK_TOP);
	assert_int_equal(ent.kernel_start, 16 * MIB);
	assert_int_equal(ent.kernel_end, 20 * MIB + 0x3000);
	for (size_t j = 0; j < (64 << 10); j++)
		assert_int_equal(p[j], elf_seg_byte(0, j));
	for (size_t j = 64 << 10; j < (128 << 10); j++)
		assert_int_equal(p[j], 0);
	p = guest_mem_ptr(m, 20 * MIB, 0x3000);
	for (size_t j = 0; j < 100; j++)
		assert_int_equal(p[j], elf_seg_byte(1, j));
	assert_int_equal(p[100], 0);

	read_zero_page(m, &bp);
	assert_memory_equal(&bp.hdr.header, "HdrS", 4);
	assert_int_equal(bp.hdr.version, 0x20c);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.loadflags, 0x81);
	assert_int_equal(bp.hdr.kernel_alignment, 0x1000000);
	assert_int_equal(bp.hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp.hdr.cmdline_size, BOOT_CMDLINE_MAX - 1);
	assert_int_equal(bp.hdr.ramdisk_image, ent.initrd_start);
	assert_int_equal(bp.hdr.ramdisk_size, rd_n);
	check_e820_64m(&bp);
	check_cmdline(m, CMDLINE);
	assert_int_equal(ent.initrd_start, 64 * MIB - rd_n);
	free(k);
	free(rd);
}

static void check_pvh(struct guest_mem *m, const struct boot_entry *ent,
		      size_t rd_n, uint64_t rip)
{
	struct hvm_start_info si;
	struct hvm_modlist_entry mod;
	struct hvm_memmap_table_entry mm[3];

	assert_int_equal(ent->format, BOOT_FORMAT_PVH_ELF);
	assert_int_equal(ent->mode, BOOT_ENTRY_PVH32);
	assert_int_equal(ent->rip, rip);
	assert_int_equal(ent->rbx, LAYOUT_PVH_START_INFO);
	assert_int_equal(ent->rsp, LAYOUT_STACK_TOP);

	assert_int_equal(guest_mem_read(m, ent->rbx, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, 0x336ec578);
	assert_int_equal(si.version, 1);
	assert_int_equal(si.flags, 0);
	assert_int_equal(si.cmdline_paddr, LAYOUT_CMDLINE);
	assert_int_equal(si.rsdp_paddr, 0);
	assert_int_equal(si.nr_modules, rd_n ? 1 : 0);
	if (rd_n) {
		assert_true(si.modlist_paddr >= LAYOUT_PVH_START_INFO);
		assert_true(si.modlist_paddr + sizeof(mod) <=
			    LAYOUT_PVH_START_INFO_END);
		assert_int_equal(guest_mem_read(m, si.modlist_paddr, &mod,
						sizeof(mod)),
				 0);
		assert_int_equal(mod.paddr, ent->initrd_start);
		assert_int_equal(mod.size, rd_n);
		assert_int_equal(mod.cmdline_paddr, 0);
	}
	assert_int_equal(si.memmap_entries, 3);
	assert_true(si.memmap_paddr >= LAYOUT_PVH_START_INFO);
	assert_true(si.memmap_paddr + sizeof(mm) <= LAYOUT_PVH_START_INFO_END);
	assert_int_equal(guest_mem_read(m, si.memmap_paddr, mm, sizeof(mm)), 0);
	assert_int_equal(mm[0].addr, 0);
	assert_int_equal(mm[0].size, LAYOUT_EBDA_START);
	assert_int_equal(mm[0].type, E820_RAM);
	assert_int_equal(mm[1].addr, LAYOUT_EBDA_START);
	assert_int_equal(mm[1].type, E820_RESERVED);
	assert_int_equal(mm[2].addr, MIB);
	assert_int_equal(mm[2].size, 63 * MIB);
	assert_int_equal(mm[2].type, E820_RAM);
	check_cmdline(m, CMDLINE);
}

static void test_pvh_valid(void **state)
{
	struct guest_mem *m = *state;
	struct elf_spec s;
	struct boot_entry ent;
	struct err e;
	size_t n, rd_n = 5 * MIB + 1;
	uint8_t *k, *rd = make_initrd(rd_n);

	elf_default(&s, true);
	s.pvh_entry = 16 * MIB + 0x20;
	k = make_elf(&s, &n);
	assert_int_equal(load(m, k, n, rd, rd_n, CMDLINE, &ent, &e), 0);
	check_pvh(m, &ent, rd_n, 16 * MIB + 0x20);
	/* ELF rules: the initrd sits at the top of RAM (below 4 GiB). */
	assert_int_equal(ent.initrd_start, (64 * MIB - rd_n) & ~0xfffULL);
	assert_memory_equal(guest_mem_ptr(m, ent.initrd_start, rd_n), rd, rd_n);
	free(k);

	/* 8-byte descriptor, no initrd. */
	s.pvh_descsz = 8;
	s.pvh_entry = 16 * MIB + 0x30;
	k = make_elf(&s, &n);
	assert_int_equal(load(m, k, n, NULL, 0, CMDLINE, &ent, &e), 0);
	check_pvh(m, &ent, 0, 16 * MIB + 0x30);
	free(k);
	free(rd);
}

/* 3.5 GiB guest (MAP_NORESERVE: costs nothing): RAM below the 3 GiB hole
 * and 512 MiB above 4 GiB, in the zero page and in the PVH memmap. */
static void test_large_guest_e820(void **state)
{
	struct guest_mem *m = new_mem(3 * GIB + 512 * MIB);
	struct bz_opts o;
	struct elf_spec s;
	struct boot_entry ent;
	struct boot_params bp;
	struct hvm_start_info si;
	struct hvm_memmap_table_entry mm[4];
	struct err e;
	size_t n, rd_n = 8192;
	uint8_t *k, *rd = make_initrd(rd_n);

	(void)state;
	if (!m)
		skip();
	bz_default(&o);
	k = make_bzimage(&o, &n);
	assert_int_equal(load(m, k, n, rd, rd_n, CMDLINE, &ent, &e), 0);
	read_zero_page(m, &bp);
	assert_int_equal(bp.e820_entries, 4);
	assert_int_equal(bp.e820_table[2].addr, MIB);
	assert_int_equal(bp.e820_table[2].addr + bp.e820_table[2].size,
			 GUEST_MMIO_HOLE_START);
	assert_int_equal(bp.e820_table[3].addr, GUEST_MMIO_HOLE_END);
	assert_int_equal(bp.e820_table[3].size, 512 * MIB);
	assert_int_equal(bp.e820_table[3].type, E820_RAM);
	/* bzImage initrd: below initrd_addr_max (0x7fffffff here). */
	assert_int_equal(ent.initrd_start, (0x80000000ULL - rd_n) & ~0xfffULL);
	free(k);

	elf_default(&s, true);
	k = make_elf(&s, &n);
	assert_int_equal(load(m, k, n, rd, rd_n, CMDLINE, &ent, &e), 0);
	assert_int_equal(guest_mem_read(m, ent.rbx, &si, sizeof(si)), 0);
	assert_int_equal(si.memmap_entries, 4);
	assert_int_equal(guest_mem_read(m, si.memmap_paddr, mm, sizeof(mm)), 0);
	assert_int_equal(mm[3].addr, 4 * GIB);
	assert_int_equal(mm[3].size, 512 * MIB);
	/* PVH initrd: top of low RAM, just below the hole. */
	assert_int_equal(ent.initrd_start,
			 (GUEST_MMIO_HOLE_START - rd_n) & ~0xfffULL);
	free(k);

	/* Segments must be in low RAM, even where high RAM exists. */
	elf_default(&s, false);
	s.seg[0].paddr = 4 * GIB;
	s.entry = 4 * GIB;
	k = make_elf(&s, &n);
	assert_int_equal(load(m, k, n, NULL, 0, CMDLINE, &ent, &e), -ENOMEM);
	assert_non_null(strstr(e.msg, "segment 0 [0x100000000, 0x100020000) "
				      "is outside guest RAM"));
	free(k);
	free(rd);
	teardown_mem((void **)&m);
}

/* ---- command line ---- */

static char *make_cmdline(size_t len)
{
	char *s = malloc(len + 1);

	assert_non_null(s);
	memset(s, 'a', len);
	s[len] = '\0';
	return s;
}

static void test_cmdline_limit_elf(void **state)
{
	struct guest_mem *m = *state;
	struct elf_spec s;
	struct boot_entry ent;
	struct err e;
	size_t n;
	uint8_t *k;
	char *ok = make_cmdline(BOOT_CMDLINE_MAX - 1);
	char *over = make_cmdline(BOOT_CMDLINE_MAX);

	elf_default(&s, true);
	k = make_elf(&s, &n);
	assert_int_equal(load(m, k, n, NULL, 0, ok, &ent, &e), 0);
	check_cmdline(m, ok);
	assert_int_equal(load(m, k, n, NULL, 0, over, &ent, &e), -E2BIG);
	assert_non_null(strstr(e.msg, "command line is 4096 bytes"));
	assert_non_null(strstr(e.msg, "at most 4095"));
	free(k);
	free(ok);
	free(over);
}

static void test_cmdline_limit_bzimage(void **state)
{
	struct guest_mem *m = *state;
	struct bz_opts o;
	struct boot_entry ent;
	struct err e;
	size_t n;
	uint8_t *k;
	char *ok = make_cmdline(255);
	char *over = make_cmdline(256);

	bz_default(&o);
	o.cmdline_size = 255; /* the kernel's limit wins over wisp's */
	k = make_bzimage(&o, &n);
	assert_int_equal(load(m, k, n, NULL, 0, ok, &ent, &e), 0);
	check_cmdline(m, ok);
	assert_int_equal(load(m, k, n, NULL, 0, over, &ent, &e), -E2BIG);
	assert_non_null(strstr(e.msg, "command line is 256 bytes"));
	assert_non_null(strstr(e.msg, "at most 255"));
	free(k);
	free(ok);
	free(over);
}

/* ---- initrd ---- */

static void test_initrd_does_not_fit(void **state)
{
	struct guest_mem *m = new_mem(32 * MIB);
	struct bz_opts o;
	struct elf_spec s;
	struct boot_entry ent;
	struct err e;
	size_t n, rd_n = 15 * MIB + 1;
	uint8_t *k, *rd = make_initrd(rd_n);

	(void)state;
	assert_non_null(m);
	/* bzImage: the kernel needs up to 17 MiB, 15 MiB + 1 byte > 15 MiB
	 * left. */
	bz_default(&o);
	k = make_bzimage(&o, &n);
	memset(guest_mem_ptr(m, MIB, 4096), 0xee, 4096);
	assert_int_equal(load(m, k, n, rd, rd_n, CMDLINE, &ent, &e), -ENOMEM);
	assert_non_null(strstr(e.msg, "initrd 'rd' (16 MiB) does not fit"));
	/* A failed load writes nothing. */
	assert_int_equal(*(uint8_t *)guest_mem_ptr(m, MIB, 1), 0xee);
	assert_int_equal(*(uint8_t *)guest_mem_ptr(m, MIB + 4095, 1), 0xee);
	assert_non_null(strstr(e.msg, "kernel ends at 0x1100000"));
	/* Exactly 15 MiB fits, right after the kernel. */
	assert_int_equal(load(m, k, n, rd, 15 * MIB, CMDLINE, &ent, &e), 0);
	assert_int_equal(ent.initrd_start, 17 * MIB);
	free(k);

	/* Larger than RAM altogether. */
	elf_default(&s, false);
	k = make_elf(&s, &n);
	free(rd);
	rd_n = 40 * MIB;
	rd = make_initrd(rd_n);
	assert_int_equal(load(m, k, n, rd, rd_n, CMDLINE, &ent, &e), -ENOMEM);
	assert_non_null(strstr(e.msg, "initrd 'rd' (40 MiB) does not fit"));

	/* Empty initrd. */
	assert_int_equal(load(m, k, n, rd, 0, CMDLINE, &ent, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "initrd 'rd': empty"));
	free(k);
	free(rd);
	teardown_mem((void **)&m);
}

/* ---- malformed: generic ---- */

static void test_empty_and_bad_magic(void **state)
{
	struct guest_mem *m = *state;
	static const uint8_t junk[64] = "~ELF and then some";
	static const uint8_t two[2] = { 0x12, 0x34 };
	struct boot_entry ent;
	struct err e;

	expect_fail(m, junk, 0, -EINVAL, "empty file");
	expect_fail(m, NULL, 0, -EINVAL, "empty file");
	assert_int_equal(load(m, junk, sizeof(junk), NULL, 0, "", &ent, &e),
			 -EINVAL);
	assert_string_equal(
		e.msg,
		"kernel 'k': not an ELF or bzImage (bad magic 0x464c457e)");
	expect_fail(m, two, sizeof(two), -EINVAL, "bad magic 0x00003412");
}

static void test_guest_too_small(void **state)
{
	struct guest_mem *m = new_mem(MIB);
	struct elf_spec s;
	struct boot_entry ent;
	struct err e;
	size_t n;
	uint8_t *k;

	(void)state;
	assert_non_null(m);
	elf_default(&s, false);
	k = make_elf(&s, &n);
	assert_int_equal(load(m, k, n, NULL, 0, "", &ent, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "too small"));
	free(k);
	teardown_mem((void **)&m);
}

/* ---- malformed: ELF ---- */

static uint8_t *default_elf(size_t *n)
{
	struct elf_spec s;

	elf_default(&s, false);
	return make_elf(&s, n);
}

static void test_elf_truncated_header(void **state)
{
	size_t n;
	uint8_t *k = default_elf(&n);

	expect_fail(*state, k, 40, -EINVAL, "truncated ELF header");
	expect_fail(*state, k, 4, -EINVAL, "truncated ELF header");
	free(k);
}

static void test_elf_bad_ident(void **state)
{
	size_t n;
	uint8_t *k = default_elf(&n);
	Elf64_Ehdr eh;

	k[EI_CLASS] = ELFCLASS32;
	expect_fail(*state, k, n, -EINVAL, "not a 64-bit ELF");
	k[EI_CLASS] = ELFCLASS64;
	k[EI_DATA] = ELFDATA2MSB;
	expect_fail(*state, k, n, -EINVAL, "not a little-endian ELF");
	k[EI_DATA] = ELFDATA2LSB;
	memcpy(&eh, k, sizeof(eh));
	eh.e_machine = EM_386;
	memcpy(k, &eh, sizeof(eh));
	expect_fail(*state, k, n, -EINVAL, "ELF machine 3 is not x86-64");
	eh.e_machine = EM_X86_64;
	eh.e_type = ET_DYN;
	memcpy(k, &eh, sizeof(eh));
	expect_fail(*state, k, n, -EINVAL, "not an executable");
	eh.e_type = ET_EXEC;
	eh.e_phentsize = 32;
	memcpy(k, &eh, sizeof(eh));
	expect_fail(*state, k, n, -EINVAL, "program header size 32");
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 0;
	memcpy(k, &eh, sizeof(eh));
	expect_fail(*state, k, n, -EINVAL, "no program headers");
	free(k);
}

static void test_elf_truncated_phdrs(void **state)
{
	size_t n;
	uint8_t *k = default_elf(&n);

	/* The header announces one 56-byte phdr at 64; cut inside it. */
	expect_fail(*state, k, 64 + 30, -EINVAL,
		    "program headers at offset 0x40");
	expect_fail(*state, k, 64 + 30, -EINVAL, "past the end of the file");
	free(k);
}

static void test_elf_phoff_overflow(void **state)
{
	size_t n;
	uint8_t *k = default_elf(&n);
	Elf64_Ehdr eh;

	memcpy(&eh, k, sizeof(eh));
	eh.e_phoff = UINT64_MAX - 8;
	memcpy(k, &eh, sizeof(eh));
	expect_fail(*state, k, n, -EINVAL, "program headers at offset");
	eh.e_phoff = 64;
	eh.e_phnum = 0xffff; /* 3.6 MB of phdrs in a small file */
	memcpy(k, &eh, sizeof(eh));
	expect_fail(*state, k, n, -EINVAL, "program headers at offset");
	free(k);
}

/* Applies mutate to phdr 0 (or 1) of the default image and expects a
 * failure. */
static void mutate_fail(void **state, int idx, uint64_t paddr, uint64_t off,
			uint64_t filesz, uint64_t memsz, int ret,
			const char *needle)
{
	struct elf_spec s;
	size_t n;
	uint8_t *k;
	Elf64_Phdr ph;

	elf_default(&s, false);
	s.nseg = 2;
	s.seg[1] = (struct elf_seg){ PT_LOAD, 24 * MIB, 16, 16 };
	k = make_elf(&s, &n);
	ph = elf_get_phdr(k, idx);
	if (paddr != (uint64_t)-1)
		ph.p_paddr = paddr;
	if (off != (uint64_t)-1)
		ph.p_offset = off;
	if (filesz != (uint64_t)-1)
		ph.p_filesz = filesz;
	if (memsz != (uint64_t)-1)
		ph.p_memsz = memsz;
	elf_put_phdr(k, idx, &ph);
	expect_fail(*state, k, n, ret, needle);
	free(k);
}

#define KEEP ((uint64_t)-1)

static void test_elf_segment_outside_ram(void **state)
{
	mutate_fail(state, 1, 1ULL << 30, KEEP, KEEP, KEEP, -ENOMEM,
		    "segment 1 [0x40000000, 0x40000010) is outside guest RAM");
	/* Crossing the end of RAM. */
	mutate_fail(state, 1, 64 * MIB - 8, KEEP, KEEP, KEEP, -ENOMEM,
		    "outside guest RAM");
	/* In the 3-4 GiB hole. */
	mutate_fail(state, 1, 0xfec00000, KEEP, KEEP, KEEP, -ENOMEM,
		    "outside guest RAM");
	/* Below 1 MiB. */
	mutate_fail(state, 1, 0x7000, KEEP, KEEP, KEEP, -EINVAL,
		    "segment 1 at 0x7000 is below 1 MiB");
}

static void test_elf_overlapping_segments(void **state)
{
	mutate_fail(state, 1, 16 * MIB + (128 << 10) - 1, KEEP, KEEP, KEEP,
		    -EINVAL, "segments 0 and 1 overlap");
	mutate_fail(state, 1, 15 * MIB, KEEP, KEEP, 2 * MIB, -EINVAL,
		    "segments 0 and 1 overlap");
}

static void test_elf_filesz_gt_memsz(void **state)
{
	mutate_fail(
		state, 0, KEEP, KEEP, 64 << 10, (64 << 10) - 1, -EINVAL,
		"segment 0: file size 0x10000 exceeds its memory size 0xffff");
}

static void test_elf_offset_past_eof(void **state)
{
	mutate_fail(
		state, 1, KEEP, 1 << 20, KEEP, KEEP, -EINVAL,
		"segment 1: file range [0x100000, +0x10) is past the end of the file");
	/* offset + filesz overflows 64 bits. */
	mutate_fail(state, 1, KEEP, UINT64_MAX - 4, KEEP, KEEP, -EINVAL,
		    "past the end of the file");
	/* filesz larger than the file. */
	mutate_fail(state, 1, KEEP, KEEP, 1ULL << 40, 1ULL << 40, -EINVAL,
		    "past the end of the file");
}

static void test_elf_absurd_sizes(void **state)
{
	mutate_fail(state, 0, KEEP, KEEP, KEEP, 1ULL << 63, -EINVAL,
		    "segment 0: absurd size 0x8000000000000000");
	/* paddr + memsz wraps around. */
	mutate_fail(state, 1, UINT64_MAX - 8, KEEP, KEEP, KEEP, -EINVAL,
		    "absurd size");
}

static void test_elf_entry_and_loads(void **state)
{
	struct elf_spec s;
	size_t n;
	uint8_t *k;

	elf_default(&s, false);
	s.entry = 0xffffffff81000000ULL; /* a virtual address */
	k = make_elf(&s, &n);
	expect_fail(
		*state, k, n, -EINVAL,
		"entry point 0xffffffff81000000 is not inside a loaded segment");
	free(k);

	elf_default(&s, false);
	s.seg[0].type = PT_GNU_STACK;
	k = make_elf(&s, &n);
	expect_fail(*state, k, n, -EINVAL, "no loadable segments");
	free(k);

	elf_default(&s, true);
	s.pvh_entry = 0x200000; /* not loaded */
	k = make_elf(&s, &n);
	expect_fail(*state, k, n, -EINVAL,
		    "PVH entry point 0x200000 is not inside a loaded segment");
	free(k);
}

static void test_pvh_bad_notes(void **state)
{
	struct elf_spec s;
	size_t n;
	uint8_t *k;
	Elf64_Phdr ph;
	uint8_t *note;

	elf_default(&s, true);
	k = make_elf(&s, &n);
	ph = elf_get_phdr(k, 1);
	note = k + ph.p_offset;
	/* descsz 6: neither 4 nor 8. */
	note[4] = 6;
	ph.p_filesz = 12 + 4 + 8;
	elf_put_phdr(k, 1, &ph);
	expect_fail(*state, k, n, -EINVAL, "6-byte descriptor");
	/* descsz larger than the note segment. */
	note[4] = 64;
	expect_fail(*state, k, n, -EINVAL, "is truncated");
	/* note segment past the end of the file. */
	note[4] = 4;
	ph.p_offset = n - 4;
	elf_put_phdr(k, 1, &ph);
	expect_fail(*state, k, n, -EINVAL, "note segment 1");
	free(k);

	/* 8-byte entry above 4 GiB. */
	elf_default(&s, true);
	s.pvh_descsz = 8;
	s.pvh_entry = 1ULL << 32;
	k = make_elf(&s, &n);
	expect_fail(*state, k, n, -EINVAL, "above 4 GiB");
	free(k);
}

/* ---- malformed: bzImage ---- */

static void bz_fail(void **state, const struct bz_opts *o, size_t cut, int ret,
		    const char *needle)
{
	size_t n;
	uint8_t *k = make_bzimage(o, &n);

	expect_fail(*state, k, cut ? cut : n, ret, needle);
	free(k);
}

static void test_bz_bad_version(void **state)
{
	struct bz_opts o;

	bz_default(&o);
	o.version = 0x205;
	bz_fail(state, &o, 0, -EINVAL, "boot protocol 2.05 is too old");
	o.version = 0x20b; /* no xloadflags yet */
	bz_fail(state, &o, 0, -EINVAL, "no 64-bit entry");
}

static void test_bz_not_64bit(void **state)
{
	struct bz_opts o;

	bz_default(&o);
	o.xloadflags = 0x2;
	bz_fail(state, &o, 0, -EINVAL, "lack XLF_KERNEL_64");
	bz_default(&o);
	o.loadflags = 0;
	bz_fail(state, &o, 0, -EINVAL, "lack LOADED_HIGH");
}

static void test_bz_setup_sects_beyond_file(void **state)
{
	struct bz_opts o;
	size_t n;
	uint8_t *k;

	bz_default(&o);
	k = make_bzimage(&o, &n);
	k[0x1f1] = 200; /* 201 * 512 > file size */
	expect_fail(*state, k, n, -EINVAL,
		    "setup_sects 200 puts the kernel at offset 0x19200");
	k[0x1f1] = 4;
	/* Cut right after the setup: no protected-mode part at all. */
	expect_fail(*state, k, 5 * 512, -EINVAL, "beyond the end of the file");
	/* Too small for the entry at 0x200. */
	expect_fail(*state, k, 5 * 512 + 0x100, -EINVAL,
		    "too small for the 64-bit entry");
	free(k);
}

static void test_bz_truncated(void **state)
{
	struct bz_opts o;

	bz_default(&o);
	bz_fail(state, &o, 0x220, -EINVAL, "truncated bzImage (544 bytes");
	bz_fail(state, &o, 0x207, -EINVAL, "truncated bzImage (519 bytes");
	/* Header length byte says the header ends before init_size. */
	o.hdr_len_byte = 0x30;
	bz_fail(state, &o, 0, -EINVAL, "setup header ends at 0x232");
}

static void test_bz_too_big_for_ram(void **state)
{
	struct guest_mem *m = new_mem(4 * MIB);
	struct bz_opts o;
	struct boot_entry ent;
	struct err e;
	size_t n;
	uint8_t *k;

	(void)state;
	assert_non_null(m);
	bz_default(&o);
	o.pm_size = 3 * MIB + 1;
	o.init_size = 0;
	k = make_bzimage(&o, &n);
	assert_int_equal(load(m, k, n, NULL, 0, "", &ent, &e), -ENOMEM);
	assert_non_null(strstr(e.msg, "do not fit in guest RAM"));
	free(k);

	/* Fits, but its init_size at pref_address 16 MiB does not. */
	bz_default(&o);
	k = make_bzimage(&o, &n);
	assert_int_equal(load(m, k, n, NULL, 0, "", &ent, &e), -ENOMEM);
	assert_non_null(strstr(e.msg, "init_size"));
	free(k);

	/* pref_address + init_size wraps. */
	bz_default(&o);
	o.pref_address = UINT64_MAX - 100;
	k = make_bzimage(&o, &n);
	assert_int_equal(load(m, k, n, NULL, 0, "", &ent, &e), -ENOMEM);
	assert_non_null(strstr(e.msg, "init_size"));
	free(k);
	teardown_mem((void **)&m);
}

/* ---- boot_load_files ---- */

static void test_load_files(void **state)
{
	struct guest_mem *m = *state;
	char kpath[] = "/tmp/wisp-test-kernel-XXXXXX";
	struct boot_entry ent;
	struct err e = { 0 };
	struct bz_opts o;
	size_t n;
	uint8_t *k;
	int fd;
	FILE *f;

	bz_default(&o);
	k = make_bzimage(&o, &n);
	fd = mkstemp(kpath);
	assert_true(fd >= 0);
	f = fdopen(fd, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(k, 1, n, f), n);
	fclose(f);
	assert_int_equal(boot_load_files(m, kpath, NULL, "x", &ent, &e), 0);
	assert_int_equal(ent.format, BOOT_FORMAT_BZIMAGE);
	assert_int_equal(boot_load_files(m, kpath, "/nonexistent/initrd", "x",
					 &ent, &e),
			 -ENOENT);
	assert_non_null(strstr(e.msg, "initrd '/nonexistent/initrd'"));
	assert_int_equal(boot_load_files(m, "/nonexistent/k", NULL, "x", &ent,
					 &e),
			 -ENOENT);
	assert_non_null(strstr(e.msg, "kernel '/nonexistent/k'"));
	assert_int_equal(boot_load_files(m, "/tmp", NULL, "x", &ent, &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "not a regular file"));
	unlink(kpath);
	free(k);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_64m, teardown_mem)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_bzimage_valid),
		T(test_bzimage_setup_sects_zero),
		cmocka_unit_test(test_bzimage_initrd_addr_max),
		T(test_elf64_valid),
		T(test_pvh_valid),
		cmocka_unit_test(test_large_guest_e820),
		T(test_cmdline_limit_elf),
		T(test_cmdline_limit_bzimage),
		cmocka_unit_test(test_initrd_does_not_fit),
		T(test_empty_and_bad_magic),
		cmocka_unit_test(test_guest_too_small),
		T(test_elf_truncated_header),
		T(test_elf_bad_ident),
		T(test_elf_truncated_phdrs),
		T(test_elf_phoff_overflow),
		T(test_elf_segment_outside_ram),
		T(test_elf_overlapping_segments),
		T(test_elf_filesz_gt_memsz),
		T(test_elf_offset_past_eof),
		T(test_elf_absurd_sizes),
		T(test_elf_entry_and_loads),
		T(test_pvh_bad_notes),
		T(test_bz_bad_version),
		T(test_bz_not_64bit),
		T(test_bz_setup_sects_beyond_file),
		T(test_bz_truncated),
		T(test_bz_too_big_for_ram),
		T(test_load_files),
	};

	return cmocka_run_group_tests_name("boot", tests, NULL, NULL);
}
