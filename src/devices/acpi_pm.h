/* SPDX-License-Identifier: MIT */
/*
 * The hardware-reduced ACPI power registers the FADT points at (one port
 * each, from ACPI_PM_PORT, see devices/acpi_pm_regs.h):
 *   sleep control  SLP_EN with SLP_TYP 5 (\_S5) powers off;
 *                  other sleep types are not offered and are ignored;
 *   sleep status   reads 0 (the machine never wakes from sleep);
 *   reset          ACPI_RESET_VALUE resets (wisp ends the VM);
 *   GED status     bit 0: the power button was pressed; written 1s
 *                  clear. Guests without interrupts poll it; Linux
 *                  gets the GED's interrupt and does not need it.
 * The VMM presses the button with acpi_pm_press_power(): the status bit
 * is set and the GED line pulsed (edge, as the DSDT says).
 *
 * Threads: registers are accessed from vCPU threads, the button from the
 * main thread; the status is atomic and the callbacks must be safe on any
 * vCPU thread.
 */
#ifndef WISP_DEVICES_ACPI_PM_H
#define WISP_DEVICES_ACPI_PM_H

#include <stdatomic.h>

#include "bus/bus.h"
#include "devices/irq.h"
#include "util/err.h"
#include "util/ser.h"

struct acpi_pm {
	void (*poweroff)(void *opaque);
	void (*reset)(void *opaque);
	void *opaque;
	struct irq_line ged; /* the GED's interrupt */
	atomic_uint ged_sts;
};

void acpi_pm_init(struct acpi_pm *pm, void (*poweroff)(void *),
		  void (*reset)(void *), void *opaque, struct irq_line ged);
void acpi_pm_press_power(struct acpi_pm *pm);

/* Registered at ACPI_PM_PORT for ACPI_PM_LEN ports. */
extern const struct bus_ops acpi_pm_ops;

/* Snapshot (acpi_pm_state.c): the GED status. */
void acpi_pm_save(struct acpi_pm *pm, struct ser_w *w);
int acpi_pm_load(struct acpi_pm *pm, const uint8_t *p, uint64_t len,
		 struct err *e);

#endif
