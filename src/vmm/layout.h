/* SPDX-License-Identifier: MIT */
/*
 * The guest's device layout: which MMIO window and interrupt line each
 * virtio device (in process or behind an IOREQ server) gets, and how the
 * devices are described to the guest: ACPI tables (the default: one
 * LNRO0005 device per announced window in the DSDT, vCPUs in the MADT),
 * or with --acpi off the kernel command line (virtio_mmio.device=) and
 * the MP table. A device is described one way only, or the guest would
 * probe it twice. The MP table is written with ACPI too while it can
 * hold the vCPUs (up to 32): Linux prefers the MADT and ignores it, and
 * a guest booted with acpi=off still finds its CPUs.
 *
 * Windows are 4 KiB each from VIRTIO_MMIO_BASE in the 32-bit MMIO hole;
 * lines are the ISA lines wisp's machine leaves free, edge-triggered per
 * the MP table and the DSDT, one per device. The ACPI power button's
 * GED has IOAPIC pin 16, above the ISA lines. With --iommu the ACPI
 * tables add a VIOT: the IOMMU's window and the windows it translates,
 * endpoint ID = window index.
 *
 * Owns: the window table (no resources to free). Main thread only.
 */
#ifndef WISP_VMM_LAYOUT_H
#define WISP_VMM_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "boot/boot.h"
#include "mem/guest_mem.h"
#include "util/err.h"
#include "vmm/config.h"

#define VIRTIO_MMIO_BASE 0xd0000000ULL
#define LAYOUT_MAX_WINDOWS 10
#define LAYOUT_GED_GSI 16

struct window {
	uint64_t base;
	unsigned int gsi;
	bool announce; /* described to the guest as a virtio-mmio device */
	/* --iommu: the window of the virtio-iommu, or one it translates
	 * (its endpoint ID is the window's index); both go in the VIOT. */
	bool iommu, translated;
};

struct layout {
	struct window windows[LAYOUT_MAX_WINDOWS];
	int nr_windows;
};

/* The next free window, announced by default; -ENOSPC (config class)
 * when the machine has no more lines. */
int layout_alloc_window(struct layout *l, struct window **out, struct err *e);

/* The kernel command line: console=, one virtio_mmio.device= per
 * announced window (only with --acpi off), the defaults, then
 * cfg->cmdline_extra. *out is malloc'd (the caller frees it); -E2BIG
 * (config) when too long. */
int layout_cmdline(const struct layout *l, const struct vm_config *cfg,
		   char **out, struct err *e);

/* Tables in guest memory that describe the machine: with cfg->acpi the
 * ACPI tables at ACPI_TABLES_GPA (and their address in the zero page or
 * PVH start info the loader wrote to entry), plus the MP table while it
 * holds cfg->cpus; without, the MP table. */
int layout_write_tables(const struct layout *l, struct guest_mem *mem,
			const struct vm_config *cfg,
			const struct boot_entry *entry, struct err *e);

/* The most vCPUs the tables describe: 64 with ACPI, 32 without. */
int layout_max_cpus(const struct vm_config *cfg);

#endif
