/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.2, 5.2) over a raw image file or block device: one
 * request queue; IN, OUT and FLUSH go through an I/O engine
 * (blk_engine.h: io_uring with many requests in flight, or synchronous
 * I/O), completions are batched into the used ring with one
 * EVENT_IDX-aware interrupt per batch; FLUSH is fdatasync ordered after
 * every earlier write; DISCARD, WRITE_ZEROES, GET_ID and O_DIRECT
 * requests whose buffers need a bounce run synchronously on the I/O
 * thread. The image is locked with an OFD lock (write lock, or read lock
 * when read-only) so that two VMs cannot open the same writable disk.
 *
 * Durability: with FLUSH negotiated, writes are write-back until a FLUSH
 * request. Without it, every request that changes the image (OUT,
 * DISCARD, WRITE_ZEROES) is synced before it completes (an OUT through
 * io_uring is an RWF_DSYNC write), and a failed sync completes it with
 * IOERR.
 *
 * In flight: a reset or teardown waits (at most 10 s) until the kernel is
 * done with every request handed to it and drops them, so no read lands
 * in guest memory and no status or used entry is written afterwards. A
 * queue reset or disable found later (the ring indices moved under the
 * device) drops the requests of the old ring the same way when they
 * complete.
 *
 * Rate limits (Firecracker's bandwidth and ops buckets): a request over
 * budget stays in the ring and a timerfd, one of the watch fds, resumes
 * the queue when the buckets allow it.
 *
 * Threads: everything runs under the device's lock (struct virtio_dev);
 * completions are reaped on the I/O thread (the engine's eventfd is a
 * watch fd) or right after submission.
 */
#ifndef WISP_DEVICES_BLK_BLK_H
#define WISP_DEVICES_BLK_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "util/err.h"
#include "util/ratelimit.h"
#include "virtio/virtio.h"

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WZ_F_UNMAP 1 /* discard/write-zeroes segment flag */
#define VIRTIO_BLK_ID_BYTES 20

#define BLK_SECTOR_SIZE 512
#define BLK_QUEUE_SIZE 256
#define BLK_CONFIG_SIZE 60
/* Advertised limits. */
#define BLK_SIZE_MAX (1u << 20) /* bytes per segment */
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2)
#define BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB */
#define BLK_MAX_DISCARD_SEG 32
#define BLK_DISCARD_ALIGNMENT 8 /* sectors: 4 KiB */
#define BLK_MAX_WRITE_ZEROES_SECTORS (1u << 22)
#define BLK_MAX_WRITE_ZEROES_SEG 32

enum blk_engine_kind {
	BLK_ENGINE_AUTO, /* io_uring, synchronous I/O where unavailable */
	BLK_ENGINE_SYNC,
	BLK_ENGINE_URING, /* io_uring or fail */
};

struct blk_config {
	const char *path;
	bool readonly;
	const char *id; /* GET_ID string (<= 20 bytes); NULL: derived */
	bool direct; /* O_DIRECT */
	enum blk_engine_kind engine;
	/* Firecracker's rate limiter: data bytes of IN and OUT, and every
	 * request as one operation; zero sizes: none. */
	struct rl_config rl;
};

/* Opens cfg->path the way blk_create would (read-only or not, O_DIRECT),
 * close-on-exec, without the lock or any check. Returns the fd, or
 * -errno with e saying why. */
int blk_open_file(const struct blk_config *cfg, struct err *e);

/* Opens and locks the image and creates the device. cfg is not kept: path
 * and id are copied. On success *out belongs to the caller, who releases
 * it with (*out)->ops->destroy (which closes the image) or hands it to a
 * transport. On failure *out is NULL and nothing is left open.
 *
 * Errors name the file ("disk 'a.img': in use by another process
 * (locked)") and are ERR_CONFIG when the user can fix them (no path, a
 * missing or unreadable file, a directory, a locked image, a bad id,
 * O_DIRECT unsupported) and ERR_HOST otherwise (memory, fstat, ioctl). */
int blk_create(const struct blk_config *cfg, struct guest_mem *mem,
	       struct virtio_dev **out, struct err *e);

/* The same on an image already open as fd (blk_open_file), for a server
 * that can no longer open it by path (docs/jail.md): the device takes a
 * duplicate (fd stays the caller's), cfg->path names it in messages. */
int blk_create_fd(const struct blk_config *cfg, int fd, struct guest_mem *mem,
		  struct virtio_dev **out, struct err *e);

/* Completes every request in flight (waiting at most 10 s for the kernel)
 * before guest memory is unmapped or remapped: requests hold host
 * pointers into it. Call with d->lock held; the lock then keeps new
 * requests out until the caller releases it. */
void blk_quiesce(struct virtio_dev *d);

/* Latency buckets (pop from the ring to the status byte written), by
 * upper bound in microseconds; the last bucket has none. */
#define BLK_LAT_BOUNDS_US                             \
	{                                             \
		10, 100, 1000, 10000, 100000, 1000000 \
	}
#define BLK_LAT_BUCKETS 7

/* Per completed request, Firecracker's "block" names where it has them;
 * counted under d->lock where the status byte is written (relaxed, one
 * writer: util/counter.h). Stale completions dropped after a reset are
 * not counted (the guest never saw them). */
struct blk_stats {
	uint64_t read_count, read_bytes; /* IN completed OK */
	uint64_t write_count, write_bytes; /* OUT completed OK */
	uint64_t flush_count; /* FLUSH completed OK */
	uint64_t execute_fails; /* any request completed with IOERR */
	uint64_t invalid_reqs_count; /* completed UNSUPP (unknown type) */
	uint64_t latency_us[BLK_LAT_BUCKETS]; /* every completed request */
};

/* Any thread, without d->lock: each counter is read whole. */
void blk_get_stats(struct virtio_dev *d, struct blk_stats *s);

/* New limits while the device runs (the buckets start full); requests
 * that waited go now or wait on the new limits. Takes d->lock. */
void blk_set_limits(struct virtio_dev *d, const struct rl_config *rl);

/* How many times a request waited on the limiter (d->lock or the
 * device's thread). */
uint64_t blk_throttled(struct virtio_dev *d);

/* "uring" or "sync": the engine blk_create chose. */
const char *blk_engine_name(struct virtio_dev *d);

#endif
