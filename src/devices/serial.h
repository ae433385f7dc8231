/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART as the PC's COM1 (ports 0x3f8-0x3ff, ISA IRQ 4). Output
 * bytes go straight to an fd; input arrives from the event loop through
 * serial_push_input() into a receive buffer the guest drains through RBR.
 * The FIFO is larger than a real 16550's so that a pasted line is not
 * lost while the guest is slow; when it is full the VMM stops reading its
 * input until the rx_space callback reports room again.
 *
 * Input flow control, without a lost wake-up: after serial_push_input()
 * filled the buffer, serial_rx_paused() is true until the guest makes
 * room (reading RBR down to half, or an FCR receive-FIFO reset); that
 * transition clears it and calls rx_space exactly once. The caller pauses
 * its input and then re-checks serial_rx_paused(): if the guest made room
 * in between (the callback ran while input was still being read), the
 * re-check sees false and the caller resumes itself.
 *
 * Output: the vCPU writes THR with the device lock held, so the write
 * path never blocks. The owner should make out_fd O_NONBLOCK; for an fd
 * that is not, writes are limited to what poll() says fits (outfd.h).
 * Bytes the fd cannot take wait in a SERIAL_TX_SIZE backlog that
 * is retried on every register access; beyond it they are dropped and
 * counted (serial_out_dropped()). LSR.THRE is clear while the backlog is
 * full, so a polling driver waits for room as on a slow line; the THR
 * interrupt is still raised after each write so an interrupt-driven
 * driver never stalls waiting for an event only the host could produce.
 * After a hard error (EPIPE, EIO, ...) the fd is not written again.
 *
 * Posted THR writes (optional, struct serial_post): while no side effect
 * of a THR write is due before the guest's next exit, the owner may let
 * those writes queue in KVM's coalesced ring (vmm/posted.h), which is
 * drained in order before any exit is handled, so each console byte of a
 * polling driver costs its LSR read's exit only. Safe means THRI off in
 * IER (no THR-empty interrupt owed after the write) and MCR.LOOP clear
 * (no receive interrupt either); DLAB may be set, since a divisor byte
 * written to port 0 lands before the LCR write that clears DLAB is
 * handled. The zone is asked for after SERIAL_POST_AFTER THR writes
 * exited while safe (a register and unregister each cost KVM a grace
 * period, not worth it for a short burst), and dropped from the register
 * write that makes it unsafe, or by serial_post_idle. The ring is drained
 * before every exit is handled and before a vCPU parks, so a paused VM
 * (a snapshot's) has none of its bytes left in it. A guest that toggles
 * IER to force a register and an unregister costs its own vCPU thread
 * two grace periods per SERIAL_POST_AFTER + 1 exits, no more.
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
#include "util/err.h"
#include "util/ser.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_RX_SIZE 4096
#define SERIAL_TX_SIZE 4096
#define SERIAL_POST_AFTER 16
#define SERIAL_HIST 12

/* set(opaque, true) starts posting THR writes, set(false) stops it;
 * 0 or -errno. Called with the serial's lock held: it must not access
 * the serial. drain(opaque) hands the queued writes to the bus; it runs
 * without the lock after posting stopped, for a byte another vCPU queued
 * between the last drain and the stop (no timer would drain it now);
 * never for a write that came from the drain (BUS_CPU_NONE). */
struct serial_post {
	int (*set)(void *opaque, bool on);
	void (*drain)(void *opaque);
	void *opaque;
};

struct serial {
	pthread_mutex_t lock;
	struct irq_line irq;
	int out_fd; /* -1: output discarded; not owned */
	/* Called (with the lock dropped) when the guest drained the receive
	 * buffer to half after it had been full. */
	void (*rx_space)(void *opaque);
	void *rx_space_opaque;
	struct serial_post post; /* set before the guest runs; NULL: off */

	/* Guarded by lock. */
	uint8_t rx[SERIAL_RX_SIZE];
	size_t rx_head, rx_count;
	bool rx_was_full; /* rx_space owed once there is room */
	uint8_t tx[SERIAL_TX_SIZE]; /* output the fd could not take yet */
	size_t tx_head, tx_count;
	size_t out_chunk; /* outfd_chunk(out_fd) */
	bool out_broken; /* out_fd was dropped after a hard error */
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thr_ipending; /* THR-empty interrupt latched until IIR read */
	/* LSR said THRE 0 (the backlog was full): a real UART interrupts
	 * when its transmitter empties again, and an interrupt-driven
	 * driver waits for just that; serial_tx_retry owes it. */
	bool thre_owed;
	int irq_level;
	/* Bumped by every IIR read and every change of irq_level: while
	 * the line is high and this stands still, the guest never took the
	 * edge (serial_irq_check). */
	unsigned int irq_gen;
	uint64_t out_dropped;
	bool posted; /* THR writes are queued in the ring */
	bool post_failed; /* the owner could not post: not asked again */
	unsigned post_run; /* THR writes that exited while safe */
	/* For the state dump: a stalled console is explained by what the
	 * guest last did to the UART and how far its bytes went. */
	uint64_t thr_exited, thr_drained, out_written;
	uint16_t hist[SERIAL_HIST]; /* (reg << 8 | value) of recent writes */
	unsigned hist_pos;
};

extern const struct bus_ops serial_bus_ops;

/* Cannot fail. out_fd (or -1) stays the caller's: serial_destroy() does
 * not close it, and the caller keeps it open until then. The caller sets
 * rx_space/rx_space_opaque before the guest runs. */
void serial_init(struct serial *s, int out_fd, struct irq_line irq);
/* Releases the lock; backlogged output that was never written is lost. */
void serial_destroy(struct serial *s);

/* Queues guest input; returns how many bytes were taken (fewer than len
 * when the buffer filled up; then serial_rx_paused() is true). */
size_t serial_push_input(struct serial *s, const uint8_t *buf, size_t len);
/* True while the buffer is full and the rx_space callback is still owed:
 * the caller's input should stay paused. See the flow-control rule
 * above. */
bool serial_rx_paused(struct serial *s);
/* The posted ring went idle: stop posting (it starts again after
 * SERIAL_POST_AFTER more THR writes). */
void serial_post_idle(struct serial *s);
/* True while THR writes are posted (for tests). */
bool serial_posting(struct serial *s);
/* Output bytes dropped (fd full beyond the backlog, or broken). */
uint64_t serial_out_dropped(struct serial *s);

/* Called periodically from the event loop (the watchdog's interrupt
 * tick): writes what the backlog holds if the fd takes it now, and once
 * there is room again after LSR reported the transmitter busy, latches
 * the THR-empty interrupt the guest's interrupt-driven driver waits for.
 * Without it a console reader that fell behind for a moment stopped the
 * guest's output for good: nothing else touches the device then. */
void serial_tx_retry(struct serial *s);

/* Lost-interrupt recovery, the UART's side of virtio_mmio_irq_check:
 * sampled by the VMM's main loop (its own memory in w). When the line
 * has been high for limit_ns with no IIR read and no change since, the
 * edge never reached the guest's handler (an interrupt-driven driver
 * then waits for ever for THR-empty; the rig's nested L1 was seen to
 * leave one so), and the line is pulsed low and high again: true is
 * returned. At most once per limit_ns; w->reraised counts them. */
struct serial_irq_watch {
	unsigned int gen;
	uint64_t since_ns;
	uint64_t reraised;
};
bool serial_irq_check(struct serial *s, struct serial_irq_watch *w,
		      uint64_t now_ns, uint64_t limit_ns);
/* One line for a state dump: IER, IIR, LSR-relevant state, the line. */
void serial_describe(struct serial *s, char *buf, size_t len);

/* Snapshot (serial_state.c): registers, line level, buffered input and
 * output (a paused VM has no posted bytes left). load checks the payload
 * before it changes anything, drives the line to the saved level and
 * stops posting if the loaded registers make it unsafe. */
void serial_save(struct serial *s, struct ser_w *w);
int serial_load(struct serial *s, const uint8_t *p, uint64_t len,
		struct err *e);
/* serial_state.c's: the posting rule again after a load (lock held);
 * true when posting stopped (the caller then drains, unlocked). */
bool serial_post_recheck_locked(struct serial *s);

#endif
