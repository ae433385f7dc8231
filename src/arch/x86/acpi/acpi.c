// SPDX-License-Identifier: MIT
/* ACPI 6.x tables (chapter 5) for wisp's machine; see acpi.h. */
#include "arch/x86/acpi/acpi.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi/aml.h"
#include "arch/x86/acpi/viot.h"
#include "arch/x86/layout.h"
#include "util/le.h"

#define HDR_LEN 36
#define RSDP_LEN 36
#define RSDP_V1_LEN 20
#define XSDT_ENTRIES 2 /* FADT, MADT (and the VIOT with an IOMMU) */
#define XSDT_LEN(c) (HDR_LEN + 8 * (XSDT_ENTRIES + ((c)->viot ? 1 : 0)))
#define FADT_LEN 276
#define FADT_REV 6
#define MADT_REV 5 /* ACPI 6.3 */
#define DSDT_REV 2 /* 64-bit integers */
#define XSDT_REV 1

#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_LAPIC_NMI 4
#define MADT_LAPIC_LEN 8
#define MADT_IOAPIC_LEN 12
#define MADT_ISO_LEN 10
#define MADT_NMI_LEN 6
#define MADT_PCAT_COMPAT 1 /* KVM emulates the dual 8259 */
#define MADT_ENABLED 1
#define MADT_NMI_LINT1 1
#define MADT_ALL_CPUS 0xff

/* FADT fields (5.2.9, table 5.9). */
#define FADT_DSDT 40
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_MINOR 131
#define FADT_X_DSDT 140
#define FADT_SLEEP_CTL 244
#define FADT_SLEEP_STS 256
#define FADT_HYPERVISOR_ID 268

#define FADT_F_WBINVD (1u << 0)
#define FADT_F_PWR_BUTTON (1u << 4) /* no fixed power button */
#define FADT_F_SLP_BUTTON (1u << 5) /* no fixed sleep button */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED (1u << 20)
/* No VGA, no CMOS RTC; no 8042 bit: the i8042 is there only for its
 * reset line, so Linux's driver should not probe it for a keyboard. */
#define FADT_BOOT_VGA_NOT_PRESENT (1u << 2)
#define FADT_BOOT_NO_CMOS_RTC (1u << 5)

#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1
#define GAS_LEN 12

#define OEM_ID "WISP  "
#define OEM_TABLE_ID "WISPVM  "
#define CREATOR_ID "WISP"
#define OEM_REV 1
#define CREATOR_REV 1

#define GED_NOTIFY_POWER 0x80 /* button pressed (4.8.3.1.1) */

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return (uint8_t)-s;
}

/* The common header; the checksum is filled last by seal(). */
static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, OEM_TABLE_ID, 8);
	put32(t + 24, OEM_REV);
	memcpy(t + 28, CREATOR_ID, 4);
	put32(t + 32, CREATOR_REV);
}

static void seal(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = checksum(t, len);
}

static void gas_io8(uint8_t *p, uint16_t port)
{
	p[0] = GAS_SYSTEM_IO;
	p[1] = 8; /* bit width */
	p[2] = 0; /* bit offset */
	p[3] = GAS_ACCESS_BYTE;
	put64(p + 4, port);
}

static bool is_window(const struct acpi_config *c, uint64_t base)
{
	for (int i = 0; i < c->nr_devices; i++)
		if (c->devices[i].base == base)
			return true;
	return false;
}

static int check_viot(const struct acpi_config *c, struct err *e)
{
	const struct acpi_viot *v = c->viot;

	if (!v)
		return 0;
	if (!is_window(c, v->iommu_base))
		return err_config(e, -EINVAL,
				  "ACPI: VIOT: IOMMU at 0x%llx is not a "
				  "virtio-mmio window",
				  (unsigned long long)v->iommu_base);
	if (v->nr_endpoints < 0 || v->nr_endpoints >= ACPI_MAX_DEVICES)
		return err_config(e, -ENOSPC,
				  "ACPI: VIOT: %d endpoints, at most %d",
				  v->nr_endpoints, ACPI_MAX_DEVICES - 1);
	for (int i = 0; i < v->nr_endpoints; i++) {
		const struct acpi_viot_endpoint *p = &v->endpoints[i];

		if (!is_window(c, p->base) || p->base == v->iommu_base)
			return err_config(e, -EINVAL,
					  "ACPI: VIOT: endpoint %u at 0x%llx "
					  "is not a translated window",
					  p->id, (unsigned long long)p->base);
		for (int j = 0; j < i; j++)
			if (v->endpoints[j].base == p->base ||
			    v->endpoints[j].id == p->id)
				return err_config(
					e, -EBUSY,
					"ACPI: VIOT: endpoint %u at 0x%llx "
					"named twice",
					p->id, (unsigned long long)p->base);
	}
	return 0;
}

static int check_config(const struct acpi_config *c, struct err *e)
{
	bool gsi_used[ACPI_IOAPIC_PINS] = { false };

	if (c->ncpus < 1 || c->ncpus > ACPI_MAX_CPUS)
		return err_config(e, -EINVAL,
				  "ACPI: %d vCPUs: the MADT describes 1..%d",
				  c->ncpus, ACPI_MAX_CPUS);
	if (c->nr_devices < 0 || c->nr_devices > ACPI_MAX_DEVICES)
		return err_config(e, -ENOSPC,
				  "ACPI: %d virtio-mmio devices: the DSDT "
				  "describes at most %d",
				  c->nr_devices, ACPI_MAX_DEVICES);
	if (c->ged_gsi >= ACPI_IOAPIC_PINS)
		return err_config(e, -EINVAL,
				  "ACPI: GED interrupt %u: the IOAPIC has "
				  "pins 0..%d",
				  c->ged_gsi, ACPI_IOAPIC_PINS - 1);
	/* Lines the machine itself uses: the PIT, the cascade, COM1. */
	gsi_used[0] = gsi_used[2] = gsi_used[ACPI_COM1_IRQ] = true;
	if (gsi_used[c->ged_gsi])
		return err_config(e, -EBUSY,
				  "ACPI: GED interrupt %u is already in use",
				  c->ged_gsi);
	gsi_used[c->ged_gsi] = true;
	for (int i = 0; i < c->nr_devices; i++) {
		const struct acpi_mmio_dev *d = &c->devices[i];

		if (!d->size || d->base + d->size > (1ULL << 32) ||
		    d->base + d->size < d->base)
			return err_config(e, -EINVAL,
					  "ACPI: device %d: window 0x%llx+0x%x "
					  "is not in the 32-bit space",
					  i, (unsigned long long)d->base,
					  d->size);
		if (d->gsi >= ACPI_IOAPIC_PINS || gsi_used[d->gsi])
			return err_config(e, -EBUSY,
					  "ACPI: device %d: interrupt %u is "
					  "outside the IOAPIC or already used",
					  i, d->gsi);
		gsi_used[d->gsi] = true;
		for (int j = 0; j < i; j++) {
			const struct acpi_mmio_dev *o = &c->devices[j];

			if (d->base < o->base + o->size &&
			    o->base < d->base + d->size)
				return err_config(
					e, -EBUSY,
					"ACPI: device %d: window 0x%llx "
					"overlaps device %d",
					i, (unsigned long long)d->base, j);
		}
	}
	return check_viot(c, e);
}

static void dsdt_body(struct aml *a, const struct acpi_config *c)
{
	struct aml_res r;
	char name[16];

	aml_scope(a, "\\_SB");
	/* COM1. With HW_REDUCED_ACPI Linux has no legacy PIC and maps no
	 * ISA IRQ by itself: without this device the 8250 driver never gets
	 * IRQ 4 and user space cannot write to ttyS0. */
	aml_device(a, "COM1");
	aml_name_string(a, "_HID", "PNP0501");
	aml_name_int(a, "_UID", 1);
	aml_res_init(&r);
	aml_res_io(&r, ACPI_COM1_PORT, ACPI_COM1_PORT, 1, 8);
	aml_res_irq_noflags(&r, ACPI_COM1_IRQ);
	aml_name(a, "_CRS");
	aml_res_emit(a, &r);
	aml_close(a);

	for (int i = 0; i < c->nr_devices; i++) {
		const struct acpi_mmio_dev *d = &c->devices[i];

		snprintf(name, sizeof(name), "V%03X", (unsigned int)i & 0xfff);
		aml_device(a, name);
		aml_name_string(a, "_HID", "LNRO0005");
		aml_name_int(a, "_UID", (uint64_t)i);
		aml_res_init(&r);
		aml_res_memory32_fixed(&r, (uint32_t)d->base, d->size, true);
		/* An irqfd pulses the line: edge, active high, as the MP
		 * table describes ISA lines. */
		aml_res_interrupt(&r, d->gsi, true, false, false);
		aml_name(a, "_CRS");
		aml_res_emit(a, &r);
		aml_close(a);
	}

	aml_device(a, "PWRB");
	aml_name_string(a, "_HID", "PNP0C0C");
	aml_name_int(a, "_UID", 0);
	aml_close(a);

	/* The VMM pulses the GED's line to press the button; Linux's GED
	 * driver then runs _EVT with the GSI. */
	aml_device(a, "GED0");
	aml_name_string(a, "_HID", "ACPI0013");
	aml_name_int(a, "_UID", 0);
	aml_res_init(&r);
	aml_res_interrupt(&r, c->ged_gsi, true, false, false);
	aml_name(a, "_CRS");
	aml_res_emit(a, &r);
	aml_method(a, "_EVT", 1, false);
	aml_if(a);
	aml_lequal(a);
	aml_arg(a, 0);
	aml_int(a, c->ged_gsi);
	aml_notify(a, "\\_SB.PWRB", GED_NOTIFY_POWER);
	aml_close(a); /* If */
	aml_close(a); /* _EVT */
	aml_close(a); /* GED0 */
	aml_close(a); /* \_SB */

	/* SLP_TYPa, SLP_TYPb: written to the sleep control register. */
	aml_name(a, "\\_S5");
	aml_package(a, 2);
	aml_int(a, ACPI_SLP_TYP_S5);
	aml_int(a, 0);
	aml_close(a);
}

static void write_madt(uint8_t *t, uint32_t len, const struct acpi_config *c)
{
	uint8_t *p = t + 44;
	uint8_t ioapic_id = (uint8_t)c->ncpus;

	header(t, "APIC", len, MADT_REV);
	put32(t + 36, (uint32_t)LAYOUT_LAPIC_ADDR);
	put32(t + 40, MADT_PCAT_COMPAT);
	for (int i = 0; i < c->ncpus; i++, p += MADT_LAPIC_LEN) {
		p[0] = MADT_LAPIC;
		p[1] = MADT_LAPIC_LEN;
		p[2] = (uint8_t)i; /* ACPI processor UID */
		p[3] = (uint8_t)i; /* APIC ID */
		put32(p + 4, MADT_ENABLED);
	}
	/* The same IOAPIC ID as the MP table's (above every APIC ID). */
	p[0] = MADT_IOAPIC;
	p[1] = MADT_IOAPIC_LEN;
	p[2] = ioapic_id;
	p[3] = 0;
	put32(p + 4, (uint32_t)LAYOUT_IOAPIC_ADDR);
	put32(p + 8, 0); /* GSI base */
	p += MADT_IOAPIC_LEN;
	/* KVM's PIT raises GSI 0 and the default routing sends it to IOAPIC
	 * pin 0; without this entry a guest would assume the PC's IRQ0 on
	 * pin 2 and wait for timer ticks nothing sends. Conforming flags:
	 * edge, active high. Every other ISA line is identity-mapped. */
	p[0] = MADT_ISO;
	p[1] = MADT_ISO_LEN;
	p[2] = 0; /* ISA bus */
	p[3] = 0; /* IRQ 0 */
	put32(p + 4, 0); /* GSI 0 */
	put16(p + 8, 0);
	p += MADT_ISO_LEN;
	p[0] = MADT_LAPIC_NMI;
	p[1] = MADT_NMI_LEN;
	p[2] = MADT_ALL_CPUS;
	put16(p + 3, 0);
	p[5] = MADT_NMI_LINT1;
	seal(t, len);
}

static void write_fadt(uint8_t *t, uint64_t dsdt_gpa)
{
	header(t, "FACP", FADT_LEN, FADT_REV);
	put16(t + FADT_IAPC_BOOT_ARCH,
	      FADT_BOOT_VGA_NOT_PRESENT | FADT_BOOT_NO_CMOS_RTC);
	put32(t + FADT_FLAGS, FADT_F_WBINVD | FADT_F_PWR_BUTTON |
				      FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP |
				      FADT_F_HW_REDUCED);
	gas_io8(t + FADT_RESET_REG, ACPI_PM_PORT + ACPI_PM_RESET);
	t[FADT_RESET_VALUE] = ACPI_RESET_VALUE;
	t[FADT_MINOR] = 0;
	/* ACPI 6: with X_DSDT set, DSDT stays 0. */
	put32(t + FADT_DSDT, 0);
	put64(t + FADT_X_DSDT, dsdt_gpa);
	gas_io8(t + FADT_SLEEP_CTL, ACPI_PM_PORT + ACPI_PM_SLEEP_CTL);
	gas_io8(t + FADT_SLEEP_STS, ACPI_PM_PORT + ACPI_PM_SLEEP_STS);
	memcpy(t + FADT_HYPERVISOR_ID, "WISPWISP", 8);
	seal(t, FADT_LEN);
}

static size_t align16(size_t v)
{
	return (v + 15) & ~(size_t)15;
}

int acpi_build(const struct acpi_config *c, uint64_t gpa, struct acpi_blob *out,
	       struct err *e)
{
	struct aml a;
	size_t madt_len, off;
	uint8_t *b, *t;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = check_config(c, e);
	if (ret)
		return ret;

	aml_init(&a);
	aml_raw(&a, (uint8_t[HDR_LEN]){ 0 }, HDR_LEN);
	dsdt_body(&a, c);
	ret = aml_finish(&a);
	if (ret) {
		aml_release(&a);
		return err_set(e, ret, "ACPI: building the DSDT: %s",
			       strerror(-ret));
	}
	madt_len = 44 + (size_t)c->ncpus * MADT_LAPIC_LEN + MADT_IOAPIC_LEN +
		   MADT_ISO_LEN + MADT_NMI_LEN;

	out->rsdp = 0;
	out->xsdt = align16(RSDP_LEN);
	out->fadt = align16(out->xsdt + XSDT_LEN(c));
	out->madt = align16(out->fadt + FADT_LEN);
	out->dsdt = align16(out->madt + madt_len);
	off = out->dsdt + a.len;
	if (c->viot) {
		out->viot = align16(off);
		off = out->viot + viot_len(c->viot);
	}
	if (off > ACPI_TABLES_MAX) {
		aml_release(&a);
		memset(out, 0, sizeof(*out));
		return err_config(e, -E2BIG,
				  "ACPI: tables need %zu bytes, the area has "
				  "%d",
				  off, ACPI_TABLES_MAX);
	}
	b = calloc(1, off);
	if (!b) {
		aml_release(&a);
		memset(out, 0, sizeof(*out));
		return err_set(e, -ENOMEM, "ACPI: out of memory");
	}

	t = b + out->dsdt;
	memcpy(t, a.buf, a.len);
	header(t, "DSDT", (uint32_t)a.len, DSDT_REV);
	seal(t, (uint32_t)a.len);
	aml_release(&a);

	write_madt(b + out->madt, (uint32_t)madt_len, c);
	write_fadt(b + out->fadt, gpa + out->dsdt);

	if (c->viot) {
		t = b + out->viot;
		header(t, "VIOT", (uint32_t)viot_len(c->viot), VIOT_REV);
		viot_body(t, c->viot);
		seal(t, (uint32_t)viot_len(c->viot));
	}

	t = b + out->xsdt;
	header(t, "XSDT", XSDT_LEN(c), XSDT_REV);
	put64(t + HDR_LEN, gpa + out->fadt);
	put64(t + HDR_LEN + 8, gpa + out->madt);
	if (c->viot)
		put64(t + HDR_LEN + 16, gpa + out->viot);
	seal(t, XSDT_LEN(c));

	t = b + out->rsdp;
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, OEM_ID, 6);
	t[15] = 2; /* revision: ACPI 2.0+, XSDT */
	put32(t + 16, 0); /* no RSDT */
	put32(t + 20, RSDP_LEN);
	put64(t + 24, gpa + out->xsdt);
	t[8] = checksum(t, RSDP_V1_LEN);
	t[32] = checksum(t, RSDP_LEN);

	out->buf = b;
	out->len = off;
	return 0;
}
