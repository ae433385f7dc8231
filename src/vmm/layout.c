// SPDX-License-Identifier: MIT
#include "vmm/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi/acpi.h"
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
		for (int i = 0; i < l->nr_windows && n < cap && !cfg->acpi; i++)
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

int layout_max_cpus(const struct vm_config *cfg)
{
	return cfg->acpi ? ACPI_MAX_CPUS : MPTABLE_MAX_CPUS;
}

static int write_acpi(const struct layout *l, struct guest_mem *mem,
		      const struct vm_config *cfg,
		      const struct boot_entry *entry, struct err *e)
{
	struct acpi_mmio_dev devs[LAYOUT_MAX_WINDOWS];
	struct acpi_viot_endpoint eps[LAYOUT_MAX_WINDOWS];
	struct acpi_viot viot = { .endpoints = eps };
	struct acpi_config ac = { .ncpus = cfg->cpus,
				  .devices = devs,
				  .ged_gsi = LAYOUT_GED_GSI };
	struct acpi_blob blob;
	int ret;

	for (int i = 0; i < l->nr_windows; i++)
		if (l->windows[i].announce)
			devs[ac.nr_devices++] =
				(struct acpi_mmio_dev){ l->windows[i].base,
							VIRTIO_MMIO_SIZE,
							l->windows[i].gsi };
	for (int i = 0; i < l->nr_windows; i++) {
		if (l->windows[i].iommu) {
			viot.iommu_base = l->windows[i].base;
			ac.viot = &viot;
		} else if (l->windows[i].translated) {
			eps[viot.nr_endpoints++] =
				(struct acpi_viot_endpoint){ l->windows[i].base,
							     (uint32_t)i };
		}
	}
	ret = acpi_build(&ac, ACPI_TABLES_GPA, &blob, e);
	if (ret)
		return ret;
	if (guest_mem_write(mem, ACPI_TABLES_GPA, blob.buf, blob.len) < 0)
		ret = err_set(e, -EFAULT,
			      "ACPI tables at 0x%llx: outside guest RAM",
			      (unsigned long long)ACPI_TABLES_GPA);
	free(blob.buf);
	if (!ret)
		ret = boot_set_rsdp(mem, entry, ACPI_TABLES_GPA + blob.rsdp, e);
	return ret;
}

int layout_write_tables(const struct layout *l, struct guest_mem *mem,
			const struct vm_config *cfg,
			const struct boot_entry *entry, struct err *e)
{
	int ret;

	if (cfg->acpi) {
		ret = write_acpi(l, mem, cfg, entry, e);
		if (ret || cfg->cpus > MPTABLE_MAX_CPUS)
			return ret;
	}
	ret = mptable_write(mem, cfg->cpus);
	if (ret)
		return err_set(e, ret, "MP table for %d vCPUs: %s", cfg->cpus,
			       strerror(-ret));
	return 0;
}
