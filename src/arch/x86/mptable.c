// SPDX-License-Identifier: MIT
/*
 * Intel MultiProcessor Specification 1.4 tables, built in a local buffer
 * and written to guest memory with one bounds-checked copy. Chapter 4:
 * floating pointer structure (16 bytes) followed by the configuration
 * table header (44 bytes) and its entries.
 */
#include "arch/x86/mptable.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arch/x86/layout.h"

#define MP_AREA 1024 /* the last KiB of base memory */
#define MP_SPEC_REV 4 /* 1.4 */

#define MP_ENTRY_PROCESSOR 0
#define MP_ENTRY_BUS 1
#define MP_ENTRY_IOAPIC 2
#define MP_ENTRY_IOINT 3
#define MP_ENTRY_LINT 4

#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP 0x02
#define MP_IOAPIC_ENABLED 0x01

#define MP_INT_INT 0
#define MP_INT_NMI 1
#define MP_INT_EXTINT 3

#define MP_APIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_CPU_SIGNATURE 0x600 /* family 6 */
#define MP_CPU_FEATURES 0x201 /* FPU, on-chip APIC */
#define MP_ISA_IRQS 16
#define MP_ALL_APICS 0xff

struct mpf_intel {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;
	uint8_t length; /* in 16-byte units */
	uint8_t spec_rev;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;
	uint8_t spec_rev;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oem_ptr;
	uint16_t oem_size;
	uint16_t count;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type;
	uint8_t apic_id;
	uint8_t apic_ver;
	uint8_t flags;
	uint32_t signature;
	uint32_t features;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;
	uint8_t id;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;
	uint8_t id;
	uint8_t version;
	uint8_t flags;
	uint32_t addr;
} __attribute__((packed));

/* I/O interrupt (type 3) and local interrupt (type 4) entries. */
struct mpc_intsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t src_bus;
	uint8_t src_irq;
	uint8_t dst_apic;
	uint8_t dst_pin;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf_intel) == 16, "floating pointer size");
_Static_assert(sizeof(struct mpc_table) == 44, "config table header size");
_Static_assert(sizeof(struct mpc_cpu) == 20, "processor entry size");
_Static_assert(sizeof(struct mpc_bus) == 8, "bus entry size");
_Static_assert(sizeof(struct mpc_ioapic) == 8, "ioapic entry size");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "interrupt entry size");
/* 16 I/O interrupt entries, 2 local ones. */
_Static_assert(sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
			       MPTABLE_MAX_CPUS * sizeof(struct mpc_cpu) +
			       sizeof(struct mpc_bus) +
			       sizeof(struct mpc_ioapic) +
			       (MP_ISA_IRQS + 2) * sizeof(struct mpc_intsrc) <=
		       MP_AREA,
	       "MP table does not fit its area");

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return (uint8_t)-sum;
}

int mptable_write(struct guest_mem *m, int ncpus)
{
	uint8_t buf[MP_AREA];
	struct mpf_intel mpf = { 0 };
	struct mpc_table mpc = { 0 };
	size_t pos;
	uint16_t count = 0;

	if (ncpus < 1 || ncpus > MPTABLE_MAX_CPUS)
		return -EINVAL;
	memset(buf, 0, sizeof(buf));
	pos = sizeof(mpf) + sizeof(mpc);

#define MP_PUT(entry)                                       \
	do {                                                \
		if (pos + sizeof(entry) > sizeof(buf))      \
			return -ENOSPC;                     \
		memcpy(buf + pos, &(entry), sizeof(entry)); \
		pos += sizeof(entry);                       \
		count++;                                    \
	} while (0)

	for (int i = 0; i < ncpus; i++) {
		struct mpc_cpu cpu = {
			.type = MP_ENTRY_PROCESSOR,
			.apic_id = (uint8_t)i,
			.apic_ver = MP_APIC_VERSION,
			.flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.signature = MP_CPU_SIGNATURE,
			.features = MP_CPU_FEATURES,
		};
		MP_PUT(cpu);
	}
	{
		struct mpc_bus bus = { .type = MP_ENTRY_BUS, .id = 0 };

		memcpy(bus.bustype, "ISA   ", sizeof(bus.bustype));
		MP_PUT(bus);
	}
	{
		struct mpc_ioapic io = {
			.type = MP_ENTRY_IOAPIC,
			.id = (uint8_t)ncpus,
			.version = MP_IOAPIC_VERSION,
			.flags = MP_IOAPIC_ENABLED,
			.addr = (uint32_t)LAYOUT_IOAPIC_ADDR,
		};
		MP_PUT(io);
	}
	/* ISA IRQs, conforming polarity/trigger (edge, active high), each on
	 * the IOAPIC pin of the same number: that is KVM's default GSI
	 * routing (GSI n -> PIC line n and IOAPIC pin n), and the in-kernel
	 * PIT raises GSI 0. Announcing the PC's "IRQ 0 on pin 2" here would
	 * leave Linux waiting for timer ticks on a pin nothing drives. */
	for (int irq = 0; irq < MP_ISA_IRQS; irq++) {
		struct mpc_intsrc is = {
			.type = MP_ENTRY_IOINT,
			.irqtype = MP_INT_INT,
			.irqflag = 0,
			.src_bus = 0,
			.src_irq = (uint8_t)irq,
			.dst_apic = (uint8_t)ncpus,
			.dst_pin = (uint8_t)irq,
		};
		MP_PUT(is);
	}
	{
		struct mpc_intsrc lint0 = {
			.type = MP_ENTRY_LINT,
			.irqtype = MP_INT_EXTINT,
			.dst_apic = MP_ALL_APICS,
			.dst_pin = 0,
		};
		struct mpc_intsrc lint1 = {
			.type = MP_ENTRY_LINT,
			.irqtype = MP_INT_NMI,
			.dst_apic = MP_ALL_APICS,
			.dst_pin = 1,
		};
		MP_PUT(lint0);
		MP_PUT(lint1);
	}
#undef MP_PUT

	memcpy(mpc.signature, "PCMP", 4);
	mpc.length = (uint16_t)(pos - sizeof(mpf));
	mpc.spec_rev = MP_SPEC_REV;
	memcpy(mpc.oem, "WISP    ", sizeof(mpc.oem));
	memcpy(mpc.product, "WISPVM      ", sizeof(mpc.product));
	mpc.count = count;
	mpc.lapic = (uint32_t)LAYOUT_LAPIC_ADDR;
	memcpy(buf + sizeof(mpf), &mpc, sizeof(mpc));
	buf[sizeof(mpf) + offsetof(struct mpc_table, checksum)] =
		checksum(buf + sizeof(mpf), mpc.length);

	memcpy(mpf.signature, "_MP_", 4);
	mpf.physptr = (uint32_t)(LAYOUT_MPTABLE + sizeof(mpf));
	mpf.length = 1;
	mpf.spec_rev = MP_SPEC_REV;
	memcpy(buf, &mpf, sizeof(mpf));
	buf[offsetof(struct mpf_intel, checksum)] = checksum(buf, sizeof(mpf));

	if (guest_mem_write(m, LAYOUT_MPTABLE, buf, pos) < 0)
		return -EFAULT;
	return 0;
}
