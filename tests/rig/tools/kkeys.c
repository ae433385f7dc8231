// SPDX-License-Identifier: MIT
/* kkeys - prints the first 32-bit word of kernel variables by name, read
 * through /proc/kcore: for a static key (struct static_key,
 * static_key_false, static_key_deferred) that is its enable count.
 *
 *   kkeys SYMBOL...     prints "SYMBOL=N" for each ("SYMBOL=?" if absent)
 *
 * A diagnostic of the rig (docs/rig.md "When L1 itself dies"): which of
 * L1's static keys an L2 VM's start and exit flip (each flip a live patch
 * of kernel text), without patching anything itself, as ftrace or
 * kprobes would. Root, with /proc/kallsyms showing addresses. Built
 * statically by tests/rig/setup.sh.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One pass over /proc/kallsyms: addr[i] for names[i] (0: not found). */
static void lookup(char **names, int n, uint64_t *addr)
{
	char line[512], sym[256];
	unsigned long long a;
	FILE *f = fopen("/proc/kallsyms", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %*s %255s", &a, sym) != 2)
			continue;
		for (int i = 0; i < n; i++)
			if (!addr[i] && !strcmp(sym, names[i]))
				addr[i] = a;
	}
	fclose(f);
}

static int read_word(int kcore, const Elf64_Ehdr *eh, uint64_t addr,
		     int32_t *out)
{
	for (int i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		if (pread(kcore, &ph, sizeof(ph),
			  (off_t)(eh->e_phoff +
				  (uint64_t)i * eh->e_phentsize)) !=
		    (ssize_t)sizeof(ph))
			return -1;
		if (ph.p_type != PT_LOAD || addr < ph.p_vaddr ||
		    addr + 4 > ph.p_vaddr + ph.p_filesz)
			continue;
		return pread(kcore, out, 4,
			     (off_t)(ph.p_offset + (addr - ph.p_vaddr))) == 4 ?
			       0 :
			       -1;
	}
	return -1;
}

int main(int argc, char **argv)
{
	Elf64_Ehdr eh;
	int kcore = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
	uint64_t *addr;

	if (kcore < 0 || pread(kcore, &eh, sizeof(eh), 0) != sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
		perror("kkeys: /proc/kcore");
		return 1;
	}
	addr = calloc((size_t)argc, sizeof(*addr));
	if (!addr)
		return 1;
	lookup(argv + 1, argc - 1, addr + 1);
	for (int i = 1; i < argc; i++) {
		int32_t v;

		if (addr[i] && !read_word(kcore, &eh, addr[i], &v))
			printf("%s%s=%d", i > 1 ? " " : "", argv[i], v);
		else
			printf("%s%s=?", i > 1 ? " " : "", argv[i]);
	}
	printf("\n");
	return 0;
}
