/* SPDX-License-Identifier: MIT */
/* The register file of the ACPI PM port block (src/devices/acpi_pm.c):
 * the device implements it, the ACPI tables (src/arch/x86/acpi) describe
 * it to the guest. One byte per register. */
#ifndef WISP_DEVICES_ACPI_PM_REGS_H
#define WISP_DEVICES_ACPI_PM_REGS_H

#define ACPI_PM_PORT 0x600
#define ACPI_PM_SLEEP_CTL 0 /* write SLP_TYP << 2 | SLP_EN */
#define ACPI_PM_SLEEP_STS 1 /* WAK_STS reads as set after sleep: never */
#define ACPI_PM_RESET 2 /* write ACPI_RESET_VALUE: reset */
#define ACPI_PM_GED_STS 3 /* pending GED events; write 1s to clear */
#define ACPI_PM_LEN 4

#define ACPI_SLP_TYP_S5 5 /* what \_S5 tells the guest to write */
#define ACPI_SLP_TYP_SHIFT 2
#define ACPI_SLP_TYP_MASK 0x1c
#define ACPI_SLP_EN 0x20
#define ACPI_RESET_VALUE 0x0f
#define ACPI_GED_PWRBTN 0x01 /* bit in ACPI_PM_GED_STS */

#endif
