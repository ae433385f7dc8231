/* SPDX-License-Identifier: MIT */
/* Intel MultiProcessor Specification 1.4 tables: floating pointer and
 * configuration table at LAYOUT_MPTABLE, describing ncpus processors (APIC
 * IDs 0..ncpus-1), one ISA bus, one IOAPIC (ID ncpus) at
 * LAYOUT_IOAPIC_ADDR, ISA IRQs 0-15 routed to IOAPIC pins 0-15 (with IRQ0
 * on pin 2 as the PIT override), and LINT0 ExtINT / LINT1 NMI. */
#ifndef WISP_ARCH_X86_MPTABLE_H
#define WISP_ARCH_X86_MPTABLE_H

#include "mem/guest_mem.h"

/* Upper bound that still fits the table in the last KiB of base memory
 * minus the floating pointer. */
#define MPTABLE_MAX_CPUS 32

/* Returns 0, -EINVAL (ncpus out of range) or -ENOSPC/-EFAULT. */
int mptable_write(struct guest_mem *m, int ncpus);

#endif
