/* SPDX-License-Identifier: MIT */
/*
 * The state of a virtio-mmio device for a hang report (SIGUSR1, the
 * watchdog): status, each ready queue's indices on both sides, the
 * interrupt status and what its I/O thread is doing. Reads the device
 * under its lock, taken with a bound: a device whose lock is held (a
 * handler stuck in its backend) is reported as such, never waited for.
 */
#ifndef WISP_VIRTIO_DUMP_H
#define WISP_VIRTIO_DUMP_H

#include <stdint.h>

#include "util/log.h"
#include "virtio/mmio.h"

/* How long the dump waits for a device's lock. */
#define VIRTIO_DUMP_LOCK_MS 100

/* Logs the device's state at lvl, one line per item, each starting with
 * the device's name. */
void virtio_mmio_dump(struct virtio_mmio *t, enum log_level lvl);

/* A number that grows whenever the device's I/O thread woke up (the
 * watchdog's sign of life); lock-free. */
uint64_t virtio_mmio_progress(const struct virtio_mmio *t);

#endif
