// SPDX-License-Identifier: MIT
/* The ACPI PM registers: only S5 with SLP_EN powers off, only the reset
 * value resets, the power button latches its status bit and pulses the
 * GED line, and the guest clears the bit by writing 1. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "arch/x86/acpi/acpi.h"
#include "devices/acpi_pm.h"

static int poweroffs, resets, levels[8], nlevels;

static void on_poweroff(void *opaque)
{
	(void)opaque;
	poweroffs++;
}

static void on_reset(void *opaque)
{
	(void)opaque;
	resets++;
}

static void set_level(void *opaque, unsigned int gsi, int level)
{
	(void)opaque;
	assert_int_equal(gsi, 16);
	if (nlevels < 8)
		levels[nlevels++] = level;
}

static void setup(struct acpi_pm *pm)
{
	struct irq_line ged = { set_level, NULL, 16 };

	poweroffs = resets = nlevels = 0;
	acpi_pm_init(pm, on_poweroff, on_reset, NULL, ged);
}

static void wr(struct acpi_pm *pm, uint64_t off, uint8_t v)
{
	acpi_pm_ops.write(pm, 0, off, &v, 1);
}

static uint8_t rd(struct acpi_pm *pm, uint64_t off)
{
	uint8_t v = 0xaa;

	acpi_pm_ops.read(pm, 0, off, &v, 1);
	return v;
}

static void test_sleep_control(void **state)
{
	struct acpi_pm pm;

	(void)state;
	setup(&pm);
	/* S5 type without SLP_EN, other sleep types with it: nothing. */
	wr(&pm, ACPI_PM_SLEEP_CTL, ACPI_SLP_TYP_S5 << ACPI_SLP_TYP_SHIFT);
	for (int t = 0; t < 8; t++)
		if (t != ACPI_SLP_TYP_S5)
			wr(&pm, ACPI_PM_SLEEP_CTL,
			   (uint8_t)(t << ACPI_SLP_TYP_SHIFT | ACPI_SLP_EN));
	assert_int_equal(poweroffs, 0);
	/* What Linux writes (wake status bit 7 may be set too). */
	wr(&pm, ACPI_PM_SLEEP_CTL,
	   ACPI_SLP_TYP_S5 << ACPI_SLP_TYP_SHIFT | ACPI_SLP_EN | 0x80);
	assert_int_equal(poweroffs, 1);
	assert_int_equal(resets, 0);
	assert_int_equal(rd(&pm, ACPI_PM_SLEEP_STS), 0);
}

static void test_reset(void **state)
{
	struct acpi_pm pm;

	(void)state;
	setup(&pm);
	for (int v = 0; v < 256; v++)
		if (v != ACPI_RESET_VALUE)
			wr(&pm, ACPI_PM_RESET, (uint8_t)v);
	assert_int_equal(resets, 0);
	wr(&pm, ACPI_PM_RESET, ACPI_RESET_VALUE);
	assert_int_equal(resets, 1);
	assert_int_equal(poweroffs, 0);
}

static void test_power_button(void **state)
{
	struct acpi_pm pm;
	uint8_t block[4] = { 0 }, ones[4] = { 0xff, 0xff, 0xff, 0xff };

	(void)state;
	setup(&pm);
	assert_int_equal(rd(&pm, ACPI_PM_GED_STS), 0);
	acpi_pm_press_power(&pm);
	assert_int_equal(nlevels, 2);
	assert_int_equal(levels[0], 1); /* an edge: up, then down */
	assert_int_equal(levels[1], 0);
	assert_int_equal(rd(&pm, ACPI_PM_GED_STS), ACPI_GED_PWRBTN);
	/* Writing 0 clears nothing; a wide read sees the bit in byte 3. */
	wr(&pm, ACPI_PM_GED_STS, 0);
	acpi_pm_ops.read(&pm, 0, 0, block, 4);
	assert_int_equal(block[3], ACPI_GED_PWRBTN);
	assert_int_equal(block[0] | block[1] | block[2], 0);
	wr(&pm, ACPI_PM_GED_STS, ACPI_GED_PWRBTN);
	assert_int_equal(rd(&pm, ACPI_PM_GED_STS), 0);
	/* A wide write of all-ones at offset 0: SLP_TYP 7 with SLP_EN, a
	 * wrong reset value, the clear; no power-off, no reset. */
	acpi_pm_press_power(&pm);
	acpi_pm_ops.write(&pm, 0, 0, ones, 4);
	assert_int_equal(poweroffs + resets, 0);
	assert_int_equal(rd(&pm, ACPI_PM_GED_STS), 0);
	/* Out of the block (a wide access at the last port): ignored. */
	acpi_pm_ops.write(&pm, 0, ACPI_PM_GED_STS, ones, 4);
	assert_int_equal(rd(&pm, ACPI_PM_LEN + 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sleep_control),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_power_button),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
