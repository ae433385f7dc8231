/* SPDX-License-Identifier: MIT */
/*
 * Power and the graceful stop: the ACPI PM registers (guest power-off and
 * reset end the VM with exit 0) and the power button SIGTERM presses.
 *
 * A first SIGTERM with ACPI on and a non-zero --shutdown-timeout presses
 * the button and arms a one-shot timer; a guest power-off before it
 * fires ends wisp with 0, the timer ends it with 128+SIGTERM as an
 * immediate stop would. A second signal, SIGINT, --acpi off or a zero
 * timeout stop at once (power_signal returns false). SIGINT stays
 * immediate: it is what a user types at a hung VM (and Ctrl-A x).
 *
 * Owns: the timerfd. Main thread only, except the PM registers (vCPU
 * threads, see devices/acpi_pm.h).
 */
#ifndef WISP_VMM_POWER_H
#define WISP_VMM_POWER_H

#include <stdbool.h>

#include "devices/acpi_pm.h"
#include "util/err.h"
#include "vmm/loop.h"

struct vm;

struct power {
	struct vm *vm;
	struct acpi_pm pm;
	bool attached; /* PM ports registered (ACPI on) */
	bool pressed; /* the button was pressed, the timer runs */
	int timer_fd;
	struct loop_watch timer_watch;
};

void power_preinit(struct power *p, struct vm *vm);
/* With ACPI on: registers the PM ports on the VM's PIO bus and creates
 * the timer. On failure the caller still calls power_destroy. */
int power_create(struct power *p, struct err *e);
/* For SIGINT/SIGTERM on the main thread: true when the signal pressed
 * the power button (the VM keeps running), false when the caller should
 * stop the VM now. */
bool power_signal(struct power *p, int signo);
void power_destroy(struct power *p);

#endif
