// SPDX-License-Identifier: MIT
#include "arch/x86/acpi/viot.h"
#include "util/le.h"

size_t viot_len(const struct acpi_viot *v)
{
	return VIOT_HDR_LEN + VIOT_IOMMU_MMIO_LEN +
	       (size_t)v->nr_endpoints * VIOT_MMIO_LEN;
}

void viot_body(uint8_t *t, const struct acpi_viot *v)
{
	/* The IOMMU node first, so every endpoint's output_node is the
	 * same fixed offset. */
	const uint16_t iommu = VIOT_HDR_LEN;
	uint8_t *n = t + VIOT_HDR_LEN;

	put16(t + 36, (uint16_t)(1 + v->nr_endpoints));
	put16(t + 38, VIOT_HDR_LEN);
	n[0] = VIOT_NODE_VIRTIO_IOMMU_MMIO;
	put16(n + 2, VIOT_IOMMU_MMIO_LEN);
	put64(n + 8, v->iommu_base);
	n += VIOT_IOMMU_MMIO_LEN;
	for (int i = 0; i < v->nr_endpoints; i++, n += VIOT_MMIO_LEN) {
		n[0] = VIOT_NODE_MMIO;
		put16(n + 2, VIOT_MMIO_LEN);
		put32(n + 4, v->endpoints[i].id);
		put64(n + 8, v->endpoints[i].base);
		put16(n + 16, iommu);
	}
}
