// SPDX-License-Identifier: MIT
#include "vmm/power.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/acpi/acpi.h"
#include "util/log.h"
#include "vmm/vm_priv.h"

static void guest_poweroff(void *opaque)
{
	struct power *p = opaque;

	log_info("guest powered off (ACPI S5)");
	vm_request_stop(p->vm, WISP_EXIT_OK);
}

static void guest_reset(void *opaque)
{
	struct power *p = opaque;

	log_info("guest reset through the ACPI reset register: stopping the "
		 "VM");
	vm_request_stop(p->vm, WISP_EXIT_OK);
}

static void ged_set(void *opaque, unsigned int gsi, int level)
{
	struct power *p = opaque;
	int ret = kvm_irq_line(&p->vm->kvm, gsi, level);

	if (ret)
		log_warn("GED irq %u: KVM_IRQ_LINE: %s", gsi, strerror(-ret));
}

static void on_timeout(void *opaque)
{
	struct power *p = opaque;

	if (!loop_timer_ack(p->timer_fd))
		return;
	log_warn("the guest did not power off within %u s of the power "
		 "button: stopping it",
		 p->vm->cfg.shutdown_timeout_s);
	vm_request_stop(p->vm, WISP_EXIT_SIGNAL_BASE + SIGTERM);
}

void power_preinit(struct power *p, struct vm *vm)
{
	memset(p, 0, sizeof(*p));
	p->vm = vm;
	p->timer_fd = -1;
}

int power_create(struct power *p, struct err *e)
{
	struct vm *vm = p->vm;
	const struct irq_line ged = { ged_set, p, LAYOUT_GED_GSI };
	int ret;

	if (!vm->cfg.acpi)
		return 0;
	acpi_pm_init(&p->pm, guest_poweroff, guest_reset, p, ged);
	ret = bus_register(&vm->pio, ACPI_PM_PORT, ACPI_PM_LEN, &acpi_pm_ops,
			   &p->pm, "acpi-pm");
	if (ret)
		return err_set(e, ret, "ACPI PM ports at 0x%x: %s",
			       ACPI_PM_PORT, strerror(-ret));
	p->attached = true;
	ret = loop_timer_add(&vm->loop, &p->timer_watch, on_timeout, p);
	if (ret < 0)
		return err_set(e, ret, "shutdown timer: %s", strerror(-ret));
	p->timer_fd = ret;
	return 0;
}

bool power_signal(struct power *p, int signo)
{
	unsigned int t = p->vm->cfg.shutdown_timeout_s;

	if (signo != SIGTERM || !p->attached || !t || p->pressed)
		return false;
	p->pressed = true;
	log_info("SIGTERM: pressing the power button; waiting up to %u s", t);
	acpi_pm_press_power(&p->pm);
	/* Periodic, but the first expiry stops the VM. */
	loop_timer_arm(p->timer_fd, (uint64_t)t * 1000000000ULL);
	return true;
}

void power_destroy(struct power *p)
{
	if (p->timer_fd >= 0) {
		loop_del(&p->vm->loop, &p->timer_watch);
		close(p->timer_fd);
	}
	p->timer_fd = -1;
}
