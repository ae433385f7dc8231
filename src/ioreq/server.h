/* SPDX-License-Identifier: MIT */
/*
 * libwisp-ioreq: the server side of the IOREQ protocol (docs/ioreq.md),
 * for device models that run in their own process. No KVM and no VMM
 * code: a server gets guest RAM, request slots, the buffered ring and its
 * interrupt eventfd from the VMM, registers the ranges it serves (with
 * the same struct bus_ops a device uses inside wisp) and doorbell lanes,
 * and runs wisp_ioreq_serve() until the VMM goes away.
 *
 * Threads: one thread calls wisp_ioreq_serve(); range callbacks run on it.
 * A device's own threads (e.g. a virtio I/O thread) may run concurrently
 * and must lock what they share with the callbacks; the pause/resume
 * hooks bracket a guest-memory remap so those threads stay out of it.
 */
#ifndef WISP_IOREQ_SERVER_H
#define WISP_IOREQ_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "ioreq/proto.h"
#include "mem/guest_mem.h"
#include "util/err.h"

struct wisp_ioreq_range {
	uint64_t addr, len;
	uint32_t mode;
	const struct bus_ops *ops;
	void *opaque;
};

struct wisp_ioreq_server {
	int sock;
	char name[32];
	struct ioreq_welcome welcome; /* window, gsi, features, ... */
	struct guest_mem mem; /* guest RAM (remapped in place) */
	int irq_efd; /* write 1: an edge on the device's line */

	int shm_fd;
	uint8_t *shm;
	struct ioreq_slot *slots;
	struct ioreq_ring *ring;
	int wake_efd;
	int resp_efd[IOREQ_MAX_VCPUS];
	int nr_vcpus;
	uint32_t seq;
	struct wisp_ioreq_range ranges[IOREQ_MAX_RANGES];
	int nr_ranges;
	uint64_t spin_ns; /* poll this long for more work before sleeping */
	void (*pause)(void *opaque); /* guest RAM about to be unmapped */
	void (*resume)(void *opaque); /* guest RAM mapped again */
	void *hook_opaque;
	uint64_t handled_sync, handled_posted;
};

/* Creates a listening SOCK_SEQPACKET socket at path (a stale socket file
 * is replaced). Returns the fd or -errno. */
int wisp_ioreq_listen(const char *path, struct err *e);

/* Accepts one VMM connection and runs the handshake up to guest RAM being
 * mapped: HELLO (name, features) -> WELCOME -> MEM_MAP. */
int wisp_ioreq_accept(int listen_fd, const char *name, uint32_t features,
		      struct wisp_ioreq_server **out, struct err *e);

/* Before wisp_ioreq_ready(): forward [addr, addr+len) of the assigned
 * window to ops (offsets relative to addr); mode IOREQ_RANGE_SYNC or
 * IOREQ_RANGE_POSTED. */
int wisp_ioreq_map_range(struct wisp_ioreq_server *s, uint64_t addr,
			 uint64_t len, uint32_t mode, const struct bus_ops *ops,
			 void *opaque, struct err *e);

/* Before wisp_ioreq_ready(): a write of len bytes at addr (matching value
 * if datamatch) signals efd without involving either process's code. */
int wisp_ioreq_add_doorbell(struct wisp_ioreq_server *s, uint64_t addr,
			    uint32_t len, bool datamatch, uint64_t value,
			    int efd, struct err *e);

int wisp_ioreq_ready(struct wisp_ioreq_server *s, struct err *e);

/* Serves requests until the VMM says BYE or disconnects (returns 0) or
 * breaks the protocol (-EPROTO). */
int wisp_ioreq_serve(struct wisp_ioreq_server *s);

void wisp_ioreq_close(struct wisp_ioreq_server *s);

#endif
