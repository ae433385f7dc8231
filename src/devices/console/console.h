/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (virtio 1.2, 5.3) without MULTIPORT: queue 0 (receiveq)
 * carries input to the guest, queue 1 (transmitq) its output, which goes
 * to out_fd. Offers F_SIZE (80x25) and F_EMERG_WRITE (a write to the
 * emerg_wr config field outputs one character).
 *
 * Input is pushed by the VMM's event loop. Bytes that arrive while the
 * guest has no receive buffers posted wait in a 4 KiB buffer and are
 * delivered when the driver kicks queue 0; when that buffer is full,
 * vconsole_push_input() takes fewer bytes than offered and the VMM should
 * stop reading its input until the rx-space callback runs.
 *
 * Output errors (closed fd, EPIPE, EAGAIN) never stop the guest: the bytes
 * are dropped and counted; after a hard error the fd is not written again.
 * out_fd is not owned: destroy does not close it.
 *
 * Threads: queue work on the I/O thread, input from the event loop, config
 * writes from vCPU threads; all under d->lock, so output never blocks
 * (devices/outfd.h) and what a slow reader cannot take is dropped.
 */
#ifndef WISP_DEVICES_CONSOLE_CONSOLE_H
#define WISP_DEVICES_CONSOLE_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "util/err.h"
#include "virtio/virtio.h"

#define VIRTIO_CONSOLE_F_SIZE 0
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2

#define VCONSOLE_RX_SIZE 4096
#define VCONSOLE_QUEUE_SIZE 256
#define VCONSOLE_CONFIG_SIZE 12
#define VCONSOLE_COLS 80
#define VCONSOLE_ROWS 25
#define VCONSOLE_RXQ 0
#define VCONSOLE_TXQ 1

/* out_fd stays the caller's, on success and on failure: the device writes
 * to it until destroyed and never closes it. It should be O_NONBLOCK; a
 * blocking one is written only as far as poll() says fits. On success *out belongs to the caller, released with
 * (*out)->ops->destroy or handed to a transport; on failure *out is NULL.
 * Fails only for lack of memory (a host error). */
int vconsole_create(int out_fd, struct guest_mem *mem, struct virtio_dev **out,
		    struct err *e);

/* Offers input to the guest; returns how many bytes were taken (fewer
 * than len when the buffer is full). Takes d->lock itself. */
size_t vconsole_push_input(struct virtio_dev *d, const uint8_t *buf,
			   size_t len);

/* cb(opaque) runs (with d->lock dropped) when the guest has drained the
 * input buffer to at most half after a push_input that could not take
 * everything. */
void vconsole_set_rx_space_cb(struct virtio_dev *d, void (*cb)(void *),
			      void *opaque);

/* True while a push_input could not take everything and the rx-space
 * callback has not run yet: the caller pauses its input, then re-checks
 * this (the callback may have run before the pause took effect). */
bool vconsole_rx_paused(struct virtio_dev *d);

/* Output bytes dropped because out_fd failed (for tests, diagnostics). */
uint64_t vconsole_out_dropped(struct virtio_dev *d);

/* Counted where the bytes move, under d->lock (util/counter.h). */
struct vconsole_stats {
	uint64_t in_bytes; /* input delivered into the guest's buffers */
	uint64_t out_bytes; /* guest output written to out_fd */
	uint64_t out_dropped_bytes; /* guest output dropped (see above) */
};

/* Any thread, without d->lock: each counter is read whole. */
void vconsole_get_stats(struct virtio_dev *d, struct vconsole_stats *s);

#endif
