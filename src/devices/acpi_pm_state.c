// SPDX-License-Identifier: MIT
/* The ACPI PM block's snapshot state: the GED's event status (a power
 * button press the guest has not acknowledged yet). */
#include <errno.h>

#include "devices/acpi_pm.h"

#define STATE_VERSION 1

void acpi_pm_save(struct acpi_pm *pm, struct ser_w *w)
{
	ser_u32(w, STATE_VERSION);
	ser_u32(w, atomic_load(&pm->ged_sts));
}

int acpi_pm_load(struct acpi_pm *pm, const uint8_t *p, uint64_t len,
		 struct err *e)
{
	struct ser_r r = { p, (size_t)len, 0, false };
	uint32_t sts;

	if (deser_u32(&r) != STATE_VERSION)
		r.fail = true;
	sts = deser_u32(&r);
	if (!deser_done(&r) || sts > 0xff)
		return err_config(e, -EINVAL,
				  "snapshot: ACPI PM state malformed");
	atomic_store(&pm->ged_sts, sts);
	return 0;
}
