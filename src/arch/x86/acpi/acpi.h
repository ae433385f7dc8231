/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for wisp's hardware-reduced machine, built into one blob
 * that is copied to guest memory at its final address:
 *
 *   RSDP (revision 2) at the blob's start: Linux finds it through
 *   boot_params.acpi_rsdp_addr, PVH start_info.rsdp_paddr, or by
 *   scanning 0xE0000-0xFFFFF, so the blob goes at ACPI_TABLES_GPA;
 *   XSDT -> FADT (revision 6, HW_REDUCED_ACPI, sleep control/status and
 *   reset registers in wisp's PM ports) and MADT (a local APIC per vCPU,
 *   the IOAPIC, IRQ0 -> GSI0 as the in-kernel PIT raises it, LINT1 NMI);
 *   FADT -> DSDT: COM1 (PNP0501, its ports and IRQ 4: a HW-reduced
 *   guest maps no ISA IRQ it is not told about), one LNRO0005
 *   (virtio-mmio) device per window with its
 *   Memory32Fixed and edge-triggered Interrupt, a GED (ACPI0013) whose
 *   interrupt notifies a PNP0C0C power button, and \_S5; with an IOMMU,
 *   XSDT -> VIOT (viot.h).
 *
 * No KVM and no guest memory here: unit tests build the blob and feed
 * each table to iasl.
 */
#ifndef WISP_ARCH_X86_ACPI_ACPI_H
#define WISP_ARCH_X86_ACPI_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "devices/acpi_pm_regs.h"

#include "util/err.h"

/* Where the blob goes: the start of the legacy BIOS area, reserved in
 * e820, first place of the RSDP scan. */
#define ACPI_TABLES_GPA 0xe0000ULL
#define ACPI_TABLES_MAX 0x10000 /* up to 0xeffff */

/* APIC IDs are 8 bits in xAPIC mode; 64 is the limit wisp promises and
 * tests (Firecracker stops at 32). */
#define ACPI_MAX_CPUS 64
#define ACPI_MAX_DEVICES 16
/* The in-kernel IOAPIC has 24 pins. */
#define ACPI_IOAPIC_PINS 24
/* The 8250 at COM1 (devices/serial.h), described in the DSDT. */
#define ACPI_COM1_PORT 0x3f8
#define ACPI_COM1_IRQ 4

/* The PM port block the FADT and the GED point at: its register file
 * belongs to the device (src/devices/acpi_pm_regs.h). */

struct acpi_mmio_dev {
	uint64_t base;
	uint32_t size;
	unsigned int gsi; /* edge-triggered, active high */
};

/* A virtio-iommu on virtio-mmio and the windows it translates (VIOT):
 * every base must be one of the devices' windows. */
struct acpi_viot_endpoint {
	uint64_t base; /* the endpoint's virtio-mmio window */
	uint32_t id; /* its endpoint ID in the IOMMU's requests */
};

struct acpi_viot {
	uint64_t iommu_base; /* the virtio-iommu's window */
	int nr_endpoints;
	const struct acpi_viot_endpoint *endpoints;
};

struct acpi_config {
	int ncpus; /* APIC IDs 0..ncpus-1 */
	int nr_devices;
	const struct acpi_mmio_dev *devices;
	unsigned int ged_gsi; /* the power button's GED line */
	const struct acpi_viot *viot; /* NULL: no IOMMU, no VIOT */
};

/* Offsets of each table in the blob, for tests and the guest. */
struct acpi_blob {
	uint8_t *buf; /* malloc'd, len bytes; the caller frees it */
	size_t len;
	size_t rsdp, xsdt, fadt, madt, dsdt;
	size_t viot; /* 0: none */
};

/*
 * Builds the tables for a blob placed at gpa. Refuses, with a config
 * error naming the limit: ncpus outside 1..ACPI_MAX_CPUS, more than
 * ACPI_MAX_DEVICES devices, a device outside the 32-bit space or with a
 * zero size, overlapping windows, a GSI outside the IOAPIC or used
 * twice, a VIOT whose IOMMU or endpoint is not one of the windows (or is
 * named twice). On failure out->buf is NULL.
 */
int acpi_build(const struct acpi_config *c, uint64_t gpa, struct acpi_blob *out,
	       struct err *e);

#endif
