/* SPDX-License-Identifier: MIT */
/*
 * Console input: wisp's stdin feeds the guest's console (the 8250 or
 * virtio-console), with flow control and the escape sequence.
 *
 * Flow control: when the console device cannot take more input, stdin
 * leaves the event loop; the device's rx-space callback (on a vCPU or
 * I/O thread) puts it back. A callback that runs between a short push and
 * the pause is not lost: it leaves space_seen set and the pause is
 * skipped.
 *
 * Escape (only when stdin is a terminal in raw mode): Ctrl-A x calls
 * on_escape, Ctrl-A Ctrl-A sends one Ctrl-A. Piped input passes through
 * untouched; at EOF the guest gets no more input.
 *
 * Owns: nothing it must free except its lock; stdin is not closed.
 * Threads: console_in_* on the main thread, console_in_space from any.
 */
#ifndef WISP_VMM_CONSOLE_IN_H
#define WISP_VMM_CONSOLE_IN_H

#include <pthread.h>
#include <stdbool.h>

#include "devices/serial.h"
#include "virtio/virtio.h"
#include "vmm/loop.h"

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A, then 'x' quits */

struct console_in {
	struct event_loop *loop;
	struct loop_watch watch;
	struct serial *serial; /* the console, unless vconsole is set */
	struct virtio_dev *vconsole;
	void (*on_escape)(void *opaque);
	void *opaque;
	bool attached; /* stdin feeds the console (main thread) */
	bool escape_pending; /* saw Ctrl-A (main thread) */
	/* Guarded by lock: the rx-space callback runs on other threads. */
	pthread_mutex_t lock;
	bool polled; /* stdin is in the epoll set */
	bool space_seen; /* rx-space fired since the last push */
};

void console_in_init(struct console_in *c, struct event_loop *loop,
		     struct serial *serial, struct virtio_dev *vconsole,
		     void (*on_escape)(void *), void *opaque);
/* Puts stdin into the loop; when it cannot be polled (a regular file,
 * /dev/null) the guest simply gets no input. */
void console_in_start(struct console_in *c);
/* The consoles' rx-space callback (opaque = the console_in). */
void console_in_space(void *opaque);
void console_in_destroy(struct console_in *c);

#endif
