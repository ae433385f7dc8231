/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART as the PC's COM1 (ports 0x3f8-0x3ff, ISA IRQ 4). Output
 * bytes go straight to an fd; input arrives from the event loop through
 * serial_push_input() into a receive buffer the guest drains through RBR.
 * The FIFO is larger than a real 16550's so that a pasted line is not
 * lost while the guest is slow; when it is full the VMM stops reading its
 * input until serial_rx_space() reports room again.
 *
 * Threads: register accesses come from vCPU threads, input from the event
 * loop; all state below the lock is guarded by it.
 */
#ifndef WISP_DEVICES_SERIAL_H
#define WISP_DEVICES_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "devices/irq.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_RX_SIZE 4096

struct serial {
	pthread_mutex_t lock;
	struct irq_line irq;
	int out_fd; /* -1: output discarded */
	/* Called (with the lock dropped) when the guest drained the receive
	 * buffer to half after it had been full. */
	void (*rx_space)(void *opaque);
	void *rx_space_opaque;

	/* Guarded by lock. */
	uint8_t rx[SERIAL_RX_SIZE];
	size_t rx_head, rx_count;
	bool rx_was_full;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thr_ipending; /* THR-empty interrupt latched until IIR read */
	int irq_level;
	uint64_t out_errors;
};

extern const struct bus_ops serial_bus_ops;

void serial_init(struct serial *s, int out_fd, struct irq_line irq);
void serial_destroy(struct serial *s);

/* Queues guest input; returns how many bytes were taken (0 when full). */
size_t serial_push_input(struct serial *s, const uint8_t *buf, size_t len);
bool serial_rx_full(struct serial *s);

#endif
