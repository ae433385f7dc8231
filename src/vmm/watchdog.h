/* SPDX-License-Identifier: MIT */
/*
 * Hang reports: vm_dump_state logs every vCPU's exit counters and last
 * exit, every virtio device's queues, interrupt status and I/O thread
 * (virtio/dump.h) and every IOREQ server's counters. The main loop runs
 * it on SIGUSR1, and with --watchdog S when nothing moved for S seconds
 * (no vCPU exit to wisp, no I/O thread woke up, the VM not paused).
 * Owns its timerfds; reads the rest of the VM without taking the vCPUs'
 * locks (a device lock is taken with a bound).
 *
 * Also, always on: every WATCHDOG_IRQ_MS the main loop looks for a
 * virtio interrupt the guest was sent and never read
 * (virtio_mmio_irq_check), and for the UART's line held high with no IIR
 * read (serial_irq_check), and raises it again, with a warning the first
 * time per device: an edge lost on its way must not leave a guest
 * waiting for ever.
 */
#ifndef WISP_VMM_WATCHDOG_H
#define WISP_VMM_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/serial.h"
#include "util/err.h"
#include "virtio/mmio.h"
#include "vmm/layout.h"
#include "vmm/loop.h"

#define WATCHDOG_IRQ_MS 500
#define WATCHDOG_IRQ_LIMIT_MS 1000

/* The stall detector, apart so it can be tested without a VM. */
struct stall {
	uint64_t last, since_ns;
	bool started, reported;
};

/* One sample of the progress counter at now_ns: true once per stall,
 * when the counter has not changed for at least limit_ns. A change
 * re-arms it. */
bool stall_check(struct stall *s, uint64_t progress, uint64_t now_ns,
		 uint64_t limit_ns);
/* A paused VM moves nothing on purpose: the stall starts afresh. */
void stall_reset(struct stall *s);

struct watchdog {
	int tfd; /* -1: off */
	struct loop_watch watch;
	struct stall st;
	uint64_t limit_ns;
	/* The lost-interrupt check: one entry per virtio transport, in
	 * vm->dev.virtio order. Main thread only. */
	int irq_tfd; /* -1: not started */
	struct loop_watch irq_watch;
	struct virtio_irq_watch irq[LAYOUT_MAX_WINDOWS];
	struct serial_irq_watch serial_irq; /* the UART's line */
};

struct vm;

/* Logs the VM's state, at LOG_WARN, headed by why. Main thread. */
void vm_dump_state(struct vm *vm, const char *why);

void watchdog_preinit(struct watchdog *w);
/* Starts the lost-interrupt check, and the stall timer when
 * vm->cfg.watchdog_s is set. */
int watchdog_start(struct vm *vm, struct err *e);
void watchdog_destroy(struct watchdog *w);

#endif
