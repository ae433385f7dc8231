/* SPDX-License-Identifier: MIT */
/*
 * The VIOT (Virtual I/O Translation table, from the virtio-iommu
 * specification's ACPI binding): one virtio-mmio IOMMU node for the
 * virtio-iommu's window and one MMIO endpoint node per translated
 * virtio-mmio window, each pointing at the IOMMU node. Linux (CONFIG_ACPI_VIOT)
 * matches the nodes to the DSDT's LNRO0005 devices by base address.
 * Private to the ACPI builder (acpi.c writes the common header).
 */
#ifndef WISP_ARCH_X86_ACPI_VIOT_H
#define WISP_ARCH_X86_ACPI_VIOT_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/acpi/acpi.h"

#define VIOT_REV 0
#define VIOT_HDR_LEN 48 /* ACPI header, node count and offset, reserved */
#define VIOT_NODE_MMIO 2
#define VIOT_NODE_VIRTIO_IOMMU_MMIO 4
#define VIOT_MMIO_LEN 24
#define VIOT_IOMMU_MMIO_LEN 16

size_t viot_len(const struct acpi_viot *v);
/* Everything after the 36-byte ACPI header; t has viot_len(v) bytes. */
void viot_body(uint8_t *t, const struct acpi_viot *v);

#endif
