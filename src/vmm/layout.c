// SPDX-License-Identifier: MIT
#include "vmm/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/mptable.h"
#include "boot/boot.h"
#include "virtio/mmio.h"

/* ISA lines free on wisp's machine (no RTC, FPU error, IDE or mouse). */
static const unsigned int virtio_gsis[LAYOUT_MAX_WINDOWS] = { 5,  6,  7,  9,
							      10, 11, 12, 13,
							      14, 15 };

int layout_alloc_window(struct layout *l, struct window **out, struct err *e)
{
	struct window *w;

	*out = NULL;
	if (l->nr_windows == LAYOUT_MAX_WINDOWS)
		return err_config(e, -ENOSPC,
				  "too many virtio devices and servers (at "
				  "most %d)",
				  LAYOUT_MAX_WINDOWS);
	w = &l->windows[l->nr_windows];
	w->base = VIRTIO_MMIO_BASE + (uint64_t)l->nr_windows * VIRTIO_MMIO_SIZE;
	w->gsi = virtio_gsis[l->nr_windows];
	w->announce = true;
	l->nr_windows++;
	*out = w;
	return 0;
}

int layout_cmdline(const struct layout *l, const struct vm_config *cfg,
		   char **out, struct err *e)
{
	size_t cap = BOOT_CMDLINE_MAX * 2, n = 0;
	char *s = malloc(cap);

	*out = NULL;
	if (!s)
		return err_set(e, -ENOMEM, "command line: out of memory");
	s[0] = 0;
	if (!cfg->no_default_cmdline) {
		n += (size_t)snprintf(s + n, cap - n, "console=%s ",
				      cfg->console == CONSOLE_VIRTIO ? "hvc0" :
								       "ttyS0");
		for (int i = 0; i < l->nr_windows && n < cap; i++)
			if (l->windows[i].announce)
				n += (size_t)snprintf(
					s + n, cap - n,
					"virtio_mmio.device=4K@0x%llx:%u ",
					(unsigned long long)l->windows[i].base,
					l->windows[i].gsi);
		if (n < cap)
			n += (size_t)snprintf(s + n, cap - n, "%s",
					      VM_DEFAULT_CMDLINE);
	}
	if (cfg->cmdline_extra && n < cap)
		n += (size_t)snprintf(s + n, cap - n, "%s%s", n ? " " : "",
				      cfg->cmdline_extra);
	if (n >= cap) {
		free(s);
		return err_config(e, -E2BIG,
				  "command line: longer than %d bytes",
				  BOOT_CMDLINE_MAX);
	}
	*out = s;
	return 0;
}

int layout_write_tables(const struct layout *l, struct guest_mem *mem,
			int ncpus, struct err *e)
{
	int ret = mptable_write(mem, ncpus);

	(void)l;
	if (ret)
		return err_set(e, ret, "MP table for %d vCPUs: %s", ncpus,
			       strerror(-ret));
	return 0;
}
