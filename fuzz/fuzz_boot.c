// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for boot_load(): arbitrary kernel bytes against a 32 MiB
 * guest. An input starting with "WSPF" is split as
 *   "WSPF" | u32 kernel_len | u16 cmdline_len | kernel | cmdline | initrd
 * (little-endian, lengths clamped to what is there) so initrd placement and
 * command line limits are fuzzed too; any other input is the kernel alone.
 * Besides the sanitizers, checks that failures carry a message and that a
 * successful load describes a consistent guest state.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "boot/boot.h"
#include "mem/guest_mem.h"
#include "util/le.h"

#define FUZZ_MEM (32ULL << 20)

static struct guest_mem mem;

#define CHECK(cond)                                                      \
	do {                                                             \
		if (!(cond)) {                                           \
			fprintf(stderr, "fuzz_boot: check failed: %s\n", \
				#cond);                                  \
			abort();                                         \
		}                                                        \
	} while (0)

static void check_entry(const struct boot_config *cfg,
			const struct boot_entry *ent)
{
	CHECK(ent->rsp == LAYOUT_STACK_TOP);
	CHECK(ent->cmdline_gpa == LAYOUT_CMDLINE);
	CHECK(ent->kernel_start >= LAYOUT_HIGH_MEMORY);
	CHECK(ent->kernel_start < ent->kernel_end);
	CHECK(ent->rip >= ent->kernel_start && ent->rip < ent->kernel_end);
	CHECK(guest_mem_ptr(&mem, ent->kernel_start,
			    ent->kernel_end - ent->kernel_start));
	if (ent->format == BOOT_FORMAT_PVH_ELF) {
		CHECK(ent->mode == BOOT_ENTRY_PVH32);
		CHECK(ent->rbx == LAYOUT_PVH_START_INFO);
		CHECK(ent->rip <= UINT32_MAX);
	} else {
		CHECK(ent->mode == BOOT_ENTRY_LONG64);
		CHECK(ent->rsi == LAYOUT_ZERO_PAGE);
	}
	if (cfg->initrd) {
		CHECK(ent->initrd_size == cfg->initrd_size);
		CHECK((ent->initrd_start & 0xfff) == 0);
		CHECK(ent->initrd_start >= ent->kernel_end);
		CHECK(ent->initrd_start + ent->initrd_size <=
		      guest_mem_low_end(&mem));
		CHECK(memcmp(guest_mem_ptr(&mem, ent->initrd_start,
					   ent->initrd_size),
			     cfg->initrd, cfg->initrd_size) == 0);
	} else {
		CHECK(ent->initrd_size == 0);
	}
	CHECK(strcmp(guest_mem_ptr(&mem, LAYOUT_CMDLINE, 1), cfg->cmdline) ==
	      0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct boot_config cfg = {
		.kernel = data,
		.kernel_size = size,
		.kernel_name = "fuzz",
		.initrd_name = "fuzz-initrd",
		.cmdline = "console=ttyS0",
	};
	struct boot_entry ent;
	struct err e;
	char *cmdline = NULL;
	int ret;

	if (!mem.host) {
		struct err ie;

		if (guest_mem_init(&mem, FUZZ_MEM, &ie) < 0) {
			fprintf(stderr, "fuzz_boot: %s\n", ie.msg);
			abort();
		}
	}

	if (size >= 10 && memcmp(data, "WSPF", 4) == 0) {
		size_t rest = size - 10;
		size_t klen = le32(data + 4);
		size_t clen = (size_t)data[8] | (size_t)data[9] << 8;

		if (klen > rest)
			klen = rest;
		if (clen > rest - klen)
			clen = rest - klen;
		cmdline = malloc(clen + 1);
		if (!cmdline)
			abort();
		memcpy(cmdline, data + 10 + klen, clen);
		cmdline[clen] = '\0';
		cfg.kernel = data + 10;
		cfg.kernel_size = klen;
		cfg.cmdline = cmdline;
		if (rest - klen - clen) {
			cfg.initrd = data + 10 + klen + clen;
			cfg.initrd_size = rest - klen - clen;
		}
	}

	memset(&e, 0, sizeof(e));
	ret = boot_load(&mem, &cfg, &ent, &e);
	if (ret == 0)
		check_entry(&cfg, &ent);
	else
		CHECK(ret < 0 && e.msg[0] != '\0');

	if (size) {
		int ncpus = data[size - 1] % (MPTABLE_MAX_CPUS + 2);

		ret = mptable_write(&mem, ncpus);
		CHECK(ret ==
		      (ncpus >= 1 && ncpus <= MPTABLE_MAX_CPUS ? 0 : -22));
	}
	free(cmdline);
	return 0;
}
