/* SPDX-License-Identifier: MIT */
/*
 * Fixed guest-physical layout of what wisp writes before the first
 * instruction runs. One table so loaders, table builders and the vCPU
 * setup agree; nothing here may overlap the kernel (loaded at 1 MiB or at
 * its ELF physical addresses) or the initrd (placed at the top of low RAM).
 *
 *   0x00500  boot GDT (4 entries)
 *   0x06000  PVH hvm_start_info, then its module list and memory map
 *   0x07000  Linux zero page (struct boot_params)
 *   0x08ff0  initial stack pointer (grows down)
 *   0x09000  PML4, 0x0a000 PDPT, 0x0b000-0x0efff four PDs: identity map of
 *            the first 4 GiB with 2 MiB pages
 *   0x20000  kernel command line (up to BOOT_CMDLINE_MAX bytes)
 *   0x9fc00  MP floating pointer + configuration table (last KiB of base
 *            memory, where Linux scans for it)
 *   0xa0000-0xfffff  reserved (legacy VGA/ROM hole), not RAM in e820
 *   0xe0000  ACPI tables, RSDP first (where the legacy scan starts;
 *            see acpi/acpi.h)
 *   0x100000 kernel (bzImage protected-mode part; ELF segments where their
 *            p_paddr says)
 */
#ifndef WISP_ARCH_X86_LAYOUT_H
#define WISP_ARCH_X86_LAYOUT_H

#define LAYOUT_GDT 0x500ULL
#define LAYOUT_PVH_START_INFO 0x6000ULL
#define LAYOUT_PVH_START_INFO_END 0x7000ULL
#define LAYOUT_ZERO_PAGE 0x7000ULL
#define LAYOUT_STACK_TOP 0x8ff0ULL
#define LAYOUT_PML4 0x9000ULL
#define LAYOUT_PDPT 0xa000ULL
#define LAYOUT_PD 0xb000ULL /* 4 pages */
#define LAYOUT_CMDLINE 0x20000ULL
#define LAYOUT_MPTABLE 0x9fc00ULL
#define LAYOUT_EBDA_START 0x9fc00ULL /* start of the reserved area */
#define LAYOUT_HIGH_MEMORY 0x100000ULL /* 1 MiB */
#define LAYOUT_KERNEL_LOAD 0x100000ULL

/* Local and I/O APIC addresses the MP table announces (KVM's defaults). */
#define LAYOUT_IOAPIC_ADDR 0xfec00000ULL
#define LAYOUT_LAPIC_ADDR 0xfee00000ULL

/* KVM needs three pages for the TSS and one for the identity map of
 * real-mode-on-EPT; both inside the MMIO hole, below the BIOS area. */
#define LAYOUT_KVM_IDENTITY_MAP 0xfeffc000ULL
#define LAYOUT_KVM_TSS 0xfeffd000ULL

#endif
