/* SPDX-License-Identifier: MIT */
/*
 * The PC keyboard controller, only as far as a guest needs it to probe
 * the controller and to reset the machine (reboot=k writes 0xfe to port
 * 0x64, or 0xd1 then an output-port value with bit 0 clear), plus the
 * one keystroke the VMM can type: Ctrl+Alt+Del (i8042_ctrl_alt_del, for
 * the API's SendCtrlAltDel), delivered on IRQ 1 when the guest enabled
 * keyboard interrupts and readable by polling either way. No mouse. A
 * reset calls the VMM's reset callback; wisp treats a guest reset as the
 * end of the VM.
 *
 * Threads: accessed from vCPU threads; guarded by lock.
 */
#ifndef WISP_DEVICES_I8042_H
#define WISP_DEVICES_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "devices/irq.h"
#include "util/err.h"
#include "util/ser.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_KBD_IRQ 1

struct i8042 {
	pthread_mutex_t lock;
	void (*reset)(void *opaque);
	void *reset_opaque;

	/* Guarded by lock. */
	uint8_t ctr; /* controller configuration byte */
	uint8_t pending_cmd; /* command waiting for its data byte, or 0 */
	uint8_t out[16];
	int out_count;
	struct irq_line irq; /* keyboard interrupt; set before the guest runs */
};

extern const struct bus_ops i8042_data_ops, i8042_cmd_ops;

/* Cannot fail and owns nothing but its lock; reset(opaque) is called on a
 * vCPU thread with the lock dropped. i8042_destroy() releases the lock. */
void i8042_init(struct i8042 *k, void (*reset)(void *), void *opaque);
void i8042_destroy(struct i8042 *k);
/* Queues the make codes of Ctrl, Alt and Delete (scan code set 1 when
 * the guest left translation on, else set 2) as keyboard data. Any
 * thread. -EBUSY when the guest has not read the previous bytes. */
int i8042_ctrl_alt_del(struct i8042 *k);

/* Snapshot (i8042_state.c). */
void i8042_save(struct i8042 *k, struct ser_w *w);
int i8042_load(struct i8042 *k, const uint8_t *p, uint64_t len, struct err *e);

#endif
