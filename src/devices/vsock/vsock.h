/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock (virtio 1.2, 5.10; device ID 19) with Firecracker's
 * hybrid host side (uds.h): the guest has CID cfg->guest_cid, the host
 * is CID 2 and its ports are unix sockets next to cfg->uds_path. Three
 * queues: rx (packets for the guest), tx (packets from it) and the
 * event queue, which carries VIRTIO_VSOCK_EVENT_TRANSPORT_RESET after
 * vsock_transport_reset and after a snapshot's load (the connections
 * were host sockets of another process: all gone). Until the driver
 * kicks the event queue after that event (it refills the buffer once it
 * handled it), host clients' CONNECT lines wait, so the reset cannot
 * take a connection made after the restore with it.
 *
 * The device owns the connection state machine (conn.h), whose epoll
 * set is d->watch_fds[0], and two bounce buffers of one packet each.
 * Packets go to the guest only while it has rx buffers; with none the
 * host sockets stay unread (no busy loop) until the next rx kick.
 *
 * Hostile chains that break the ring's rules (device-writable parts in
 * a tx chain, readable parts or room for less than a header in an rx
 * chain, an event buffer shorter than an event) set NEEDS_RESET; a tx
 * chain shorter than a header is dropped and counted; everything about
 * the packets themselves is conn.h's business.
 *
 * Threads: everything runs under the device's lock, on its I/O thread.
 */
#ifndef WISP_DEVICES_VSOCK_VSOCK_H
#define WISP_DEVICES_VSOCK_VSOCK_H

#include <stdint.h>

#include "devices/vsock/conn.h"
#include "mem/guest_mem.h"
#include "util/err.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_VSOCK 19
#define VSOCK_QUEUE_SIZE 256
#define VSOCK_RXQ 0
#define VSOCK_TXQ 1
#define VSOCK_EVQ 2
#define VSOCK_CONFIG_SIZE 8 /* le64 guest_cid */
/* CIDs 0-2 are the hypervisor, local and host; -1U is VMADDR_CID_ANY. */
#define VSOCK_CID_MIN 3
#define VSOCK_CID_MAX (UINT32_MAX - 1)

struct vsock_config {
	uint64_t guest_cid;
	const char *uds_path; /* copied */
};

struct vsock_stats {
	struct vsock_mux_stats mux;
	uint64_t tx_malformed; /* tx chains shorter than a header */
	uint64_t resets_sent; /* TRANSPORT_RESET events delivered */
};

/* Checks cfg (a CID out of range or an unusable path is a config
 * error), listens on cfg->uds_path and creates the device. On success
 * *out belongs to the caller, released with (*out)->ops->destroy (which
 * closes every socket and removes the listener's path) or handed to a
 * transport; on failure *out is NULL and nothing is left open or
 * created. */
int vsock_create(const struct vsock_config *cfg, struct guest_mem *mem,
		 struct virtio_dev **out, struct err *e);

/* Drops every connection and tells the driver with a TRANSPORT_RESET
 * event (delivered when the event queue has a buffer). Takes d->lock. */
void vsock_transport_reset(struct virtio_dev *d);

/* With d->lock held or from the device's own thread. */
void vsock_get_stats(struct virtio_dev *d, struct vsock_stats *s);

#endif
