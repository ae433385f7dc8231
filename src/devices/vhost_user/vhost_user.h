/* SPDX-License-Identifier: MIT */
/*
 * A virtio device whose queues a vhost-user back-end runs (virtio-blk
 * from qemu-storage-daemon, virtio-fs from virtiofsd, or any device ID):
 * wisp keeps the virtio-mmio register file, the config space (from the
 * back-end's GET_CONFIG where it offers it, else built here: the fs tag)
 * and the interrupt; the back-end gets guest RAM (the memfd), the rings
 * and the doorbell eventfds.
 *
 * Owns the connection (src/vhost_user/front.c), the relay of calls and
 * errors (src/virtio/remote.c) and the back-end's inflight buffer. Every
 * request to the back-end is bounded; a back-end that dies, hangs or
 * answers wrongly is dropped: the device sets NEEDS_RESET, raises a
 * config interrupt, fails the block requests it had in flight
 * (exactly with the inflight buffer, in ring order without one) and
 * those the guest posts meanwhile, and reconnects to the same socket
 * every 200 ms; once back, the rings restart where the guest is and
 * NEEDS_RESET is cleared (Linux never resets a virtio device by itself).
 * The VM goes on throughout.
 *
 * Threads: register accesses on vCPU threads, the relay and the
 * reconnect on the device's I/O thread, all under the device's lock;
 * requests to the back-end are made with it held (bounded, see above).
 */
#ifndef WISP_DEVICES_VHOST_USER_H
#define WISP_DEVICES_VHOST_USER_H

#include <stdint.h>

#include "mem/guest_mem.h"
#include "util/err.h"
#include "virtio/virtio.h"

/* virtio-fs tag (virtio 1.2, 5.11.4): up to 36 bytes, not NUL-terminated
 * when it fills them. */
#define VHU_FS_TAG_MAX 36

struct vhu_dev_config {
	uint32_t device_id; /* VIRTIO_ID_BLOCK, VIRTIO_ID_FS, any other */
	const char *socket;
	const char *id; /* the device's name in messages; NULL: derived */
	const char *tag; /* virtio-fs only */
	int queues; /* other types: 1..VIRTIO_MAX_QUEUES */
	uint32_t config_size; /* other types: bytes of GET_CONFIG */
};

/* Connects to the back-end (it must be listening: a socket nobody serves
 * is a config error), negotiates, reads its config and hands it guest
 * memory. On success *out is the device (its destroy op frees it). On
 * failure *out is NULL and nothing is left. */
int vhu_dev_create(const struct vhu_dev_config *c, struct guest_mem *mem,
		   struct virtio_dev **out, struct err *e);

#endif
