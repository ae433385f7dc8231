/* SPDX-License-Identifier: MIT */
/*
 * The VMM side of the IOREQ protocol (docs/ioreq.md): connects to a
 * device-model process (an IOREQ server), gives it guest RAM, a request
 * slot per vCPU, a buffered ring for posted writes and its interrupt
 * eventfd, and forwards the guest's accesses to the server's window.
 *
 * Nothing here trusts the server: the VMM reads only a slot's state and
 * data from shared memory, validates every control message, waits a
 * bounded time for any answer, and when the server misbehaves, hangs or
 * goes away it stops forwarding: in-flight reads complete with all-ones,
 * a virtio-mmio window then reads as a device with NEEDS_RESET set and
 * gets a configuration interrupt, and the VM keeps running. A restarted
 * server can attach again on the same socket.
 *
 * No KVM here: doorbell lanes are registered through the host callbacks.
 *
 * Threads: forwarding runs on vCPU threads (shared lock on the client),
 * attach/detach on the main thread (exclusive lock). The dead flag is
 * atomic so a detaching thread can wake vCPUs blocked on a response.
 */
#ifndef WISP_IOREQ_VMM_H
#define WISP_IOREQ_VMM_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "mem/guest_mem.h"
#include "util/err.h"

struct ioreq_vmm_host {
	int (*add_doorbell)(void *opaque, uint64_t addr, uint32_t len,
			    bool datamatch, uint64_t value, int efd);
	int (*del_doorbell)(void *opaque, uint64_t addr, uint32_t len,
			    bool datamatch, uint64_t value, int efd);
	/* Optional: let guest writes to a posted range queue up in the
	 * host kernel (KVM coalesced MMIO) instead of exiting one by one;
	 * the VMM then drains them into the buffered ring, in order, before
	 * it handles any other exit and at least every millisecond. */
	int (*add_posted)(void *opaque, uint64_t addr, uint64_t len);
	int (*del_posted)(void *opaque, uint64_t addr, uint64_t len);
	void *opaque;
};

struct ioreq_client_config {
	const char *name; /* for messages */
	const char *socket_path; /* connect (and reconnect) here */
	int nr_vcpus; /* slots; the last one is used by non-vCPU threads */
	struct guest_mem *mem;
	uint64_t window_base, window_size;
	unsigned int gsi;
	int irq_efd; /* irqfd-bound; the client dups it */
	struct ioreq_vmm_host host;
	int timeout_ms; /* bounded wait for an answer (0: 2000) */
	int connect_timeout_ms; /* first attach (0: 5000) */
	uint32_t features; /* offered (0: IOREQ_F_ALL) */
};

struct ioreq_client;

/* Connects and completes the handshake (the server's READY). */
int ioreq_client_create(const struct ioreq_client_config *cfg,
			struct ioreq_client **out, struct err *e);
void ioreq_client_destroy(struct ioreq_client *c);

/* The window's bus ops (opaque = the client). */
extern const struct bus_ops ioreq_window_ops;

/* Event-loop integration: the control socket (-1 while detached), to be
 * polled for input/hang-up; call handle_event when it fires. */
int ioreq_client_fd(const struct ioreq_client *c);
void ioreq_client_handle_event(struct ioreq_client *c);
/* While detached: try to attach again (returns 0 when attached). */
int ioreq_client_try_attach(struct ioreq_client *c);
bool ioreq_client_attached(const struct ioreq_client *c);
/* The server announced a virtio-mmio device in its window. */
bool ioreq_client_is_virtio(const struct ioreq_client *c);

/* Asks the server to drop its guest RAM mapping and waits for its answer
 * (or its disconnect), then maps the (new) layout again. Main thread. */
int ioreq_client_remap(struct ioreq_client *c, struct err *e);

struct ioreq_stats {
	uint64_t sync, posted, ring_full, timeouts, spins_hit, blocks;
};
void ioreq_client_stats(const struct ioreq_client *c, struct ioreq_stats *s);

#endif
