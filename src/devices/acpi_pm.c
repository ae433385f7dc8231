// SPDX-License-Identifier: MIT
#include "devices/acpi_pm.h"

#include <string.h>

#include "devices/acpi_pm_regs.h"

void acpi_pm_init(struct acpi_pm *pm, void (*poweroff)(void *),
		  void (*reset)(void *), void *opaque, struct irq_line ged)
{
	memset(pm, 0, sizeof(*pm));
	pm->poweroff = poweroff;
	pm->reset = reset;
	pm->opaque = opaque;
	pm->ged = ged;
	atomic_init(&pm->ged_sts, 0);
}

void acpi_pm_press_power(struct acpi_pm *pm)
{
	atomic_fetch_or(&pm->ged_sts, ACPI_GED_PWRBTN);
	irq_line_set(&pm->ged, 1);
	irq_line_set(&pm->ged, 0);
}

/* Each byte of a wider access is its own register: a guest may read or
 * write the block in one go, and no byte has side effects on another. */
static void pm_read(void *opaque, int cpu, uint64_t off, uint8_t *data,
		    uint32_t len)
{
	struct acpi_pm *pm = opaque;

	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i == ACPI_PM_GED_STS ?
				  (uint8_t)atomic_load(&pm->ged_sts) :
				  0;
}

static void pm_write(void *opaque, int cpu, uint64_t off, const uint8_t *data,
		     uint32_t len)
{
	struct acpi_pm *pm = opaque;

	for (uint32_t i = 0; i < len; i++) {
		uint8_t v = data[i];

		switch (off + i) {
		case ACPI_PM_SLEEP_CTL:
			if ((v & ACPI_SLP_EN) &&
			    ((v & ACPI_SLP_TYP_MASK) >> ACPI_SLP_TYP_SHIFT) ==
				    ACPI_SLP_TYP_S5 &&
			    pm->poweroff)
				pm->poweroff(pm->opaque);
			break;
		case ACPI_PM_RESET:
			if (v == ACPI_RESET_VALUE && pm->reset)
				pm->reset(pm->opaque);
			break;
		case ACPI_PM_GED_STS:
			atomic_fetch_and(&pm->ged_sts, (unsigned int)~v);
			break;
		default:
			/* sleep status: WAK_STS is write-1-to-clear and
			 * never set. */
			break;
		}
	}
}

const struct bus_ops acpi_pm_ops = { .read = pm_read, .write = pm_write };
