// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the virtio-mmio register file (src/virtio/mmio.c)
 * with a real device behind it: a guest driver writing any register in
 * any order, with any width. The input is
 *   u8 device (0 rng, 1 console, 2 blk on a temp file, sync engine)
 *   | u16 n | n bytes of guest memory image (64 KiB guest, from GPA 0)
 *   | register operations:
 *     op 0: {u16 off, u32 v}      4-byte write
 *     op 1: {u16 off, u8 len}     read of 1..8 bytes (len % 8 + 1)
 *     op 2: {u16 off, u8 len, 8 bytes} write of 1..8 bytes
 *     op 3: {u8 q}                QueueNotify q, then the kick is run
 *     op 4: {u8 accept}           a whole driver start: reset,
 *           ACKNOWLEDGE, DRIVER, features (offered & the accept mask
 *           over bits 28, 29, 32 and the device's), FEATURES_OK, every
 *           queue at size 16 (queue q: descriptors at q * 0x400, avail
 *           + 0x100, used + 0x200), DRIVER_OK
 *     op 5: {u16 n, n bytes}      a snapshot payload for the transport
 *           (virtio_mmio_load, as a restore gives it)
 *     op 6: save, load the save back, save again (a snapshot round trip)
 *   (offsets taken modulo 0x200: the registers and the config space).
 * The transport's I/O thread is parked (virtio_iothread_pause) so that
 * kicks run here, in order, and an input replays the same way.
 *
 * Checks after every operation: the identification registers read their
 * constants, InterruptStatus has only its two bits, a live queue has a
 * size within QueueNumMax and rings inside guest RAM, a device that runs
 * its queues (DRIVER_OK) accepted features that were offered and include
 * VERSION_1, a broken device says NEEDS_RESET, a
 * reset (Status 0) leaves nothing live; a config read past the config
 * space is zeros; a payload that does not load leaves a message, one that
 * loads must leave the same state checks true, and a save loads back and
 * saves the same bytes. At the end the transport is destroyed and no fd is
 * left open. Guard pages around RAM catch any stray access.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/blk/blk.h"
#include "devices/blk/blk_engine.h"
#include "devices/console/console.h"
#include "devices/rng/rng.h"
#include "fuzz_common.h"
#include "mem/guest_mem.h"
#include "util/le.h"
#include "util/log.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"

#define FUZZ_MEM (64ULL << 10)
#define BASE 0xd0000000ull
#define DISK_SECTORS 64
#define MAX_OPS 256

static struct guest_mem mem;
static const char *disk_path;
static int null_fd = -1;

static int fake_irqfd(void *o, int efd, unsigned int gsi)
{
	return 0;
}

static void init_once(void)
{
	fuzz_guest_mem(&mem, FUZZ_MEM);
	disk_path = fuzz_disk("mmio", DISK_SECTORS);
	null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC | O_NONBLOCK);
	CHECK(null_fd >= 0);
}

static void wr32(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	put32(b, v);
	virtio_mmio_bus_ops.write(t, 0, off, b, 4);
}

static uint32_t rd32(struct virtio_mmio *t, uint64_t off)
{
	uint8_t b[4];

	virtio_mmio_bus_ops.read(t, 0, off, b, 4);
	return le32(b);
}

static uint64_t offered(struct virtio_mmio *t)
{
	uint64_t f;

	wr32(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	f = rd32(t, VIRTIO_MMIO_DEVICE_FEATURES);
	wr32(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	f |= (uint64_t)rd32(t, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	return f;
}

/* What the parked I/O thread would do for queue q's doorbell. */
static void run_kick(struct virtio_mmio *t, uint32_t q)
{
	uint64_t v;

	if (q >= (uint32_t)t->dev->nr_queues)
		return;
	if (read(t->notify_efd[q], &v, sizeof(v)) == sizeof(v))
		virtio_dev_kick(t->dev, (int)q);
}

static void driver_start(struct virtio_mmio *t, uint64_t offer, uint8_t acc)
{
	struct virtio_dev *d = t->dev;
	uint64_t f = offer & ~(1ull << VIRTIO_F_RING_INDIRECT_DESC |
			       1ull << VIRTIO_F_RING_EVENT_IDX |
			       1ull << VIRTIO_F_VERSION_1);

	if (acc & 1)
		f |= offer & 1ull << VIRTIO_F_RING_INDIRECT_DESC;
	if (acc & 2)
		f |= offer & 1ull << VIRTIO_F_RING_EVENT_IDX;
	if (!(acc & 4))
		f |= offer & 1ull << VIRTIO_F_VERSION_1;
	if (acc & 8)
		f &= 0xffffffff00000000ull |
		     (1u << VIRTIO_F_RING_INDIRECT_DESC |
		      1u << VIRTIO_F_RING_EVENT_IDX);
	wr32(t, VIRTIO_MMIO_STATUS, 0);
	wr32(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr32(t, VIRTIO_MMIO_STATUS,
	     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr32(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr32(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	wr32(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr32(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	wr32(t, VIRTIO_MMIO_STATUS,
	     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		     VIRTIO_STATUS_FEATURES_OK);
	for (int q = 0; q < d->nr_queues; q++) {
		wr32(t, VIRTIO_MMIO_QUEUE_SEL, (uint32_t)q);
		wr32(t, VIRTIO_MMIO_QUEUE_NUM, 16);
		wr32(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q * 0x400);
		wr32(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
		wr32(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW,
		     (uint32_t)q * 0x400 + 0x100);
		wr32(t, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
		wr32(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW,
		     (uint32_t)q * 0x400 + 0x200);
		wr32(t, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
		wr32(t, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr32(t, VIRTIO_MMIO_STATUS,
	     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		     VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* The transport's and the device's state, under the device lock. */
static void check_state(struct virtio_mmio *t, uint64_t offer)
{
	struct virtio_dev *d = t->dev;
	const char *why;

	CHECK((atomic_load(t->isr) & ~3u) == 0);
	pthread_mutex_lock(&d->lock);
	for (int q = 0; q < d->nr_queues; q++) {
		struct virtq *vq = &d->vq[q];

		if (!vq->ready)
			continue;
		CHECK(vq->size >= 1 && vq->size <= d->queue_max[q]);
		CHECK(virtq_validate_rings(vq, &why) == 0);
	}
	if (d->status & VIRTIO_STATUS_DRIVER_OK) {
		CHECK(d->status & VIRTIO_STATUS_FEATURES_OK);
		CHECK(!(d->features & ~offer));
		CHECK(d->features & 1ull << VIRTIO_F_VERSION_1);
	}
	if (d->broken)
		CHECK(d->status & VIRTIO_STATUS_NEEDS_RESET);
	pthread_mutex_unlock(&d->lock);
}

static void check_reset(struct virtio_mmio *t)
{
	struct virtio_dev *d = t->dev;

	pthread_mutex_lock(&d->lock);
	CHECK(d->status == 0 && !d->broken && d->features == 0);
	for (int q = 0; q < d->nr_queues; q++)
		CHECK(!d->vq[q].ready);
	pthread_mutex_unlock(&d->lock);
	CHECK(atomic_load(t->isr) == 0);
}

/* save, load, save: loads, and gives the same bytes. */
static void roundtrip(struct virtio_mmio *t)
{
	struct ser_w a = { 0 }, b = { 0 };
	struct err e;

	virtio_mmio_save(t, &a);
	CHECK(!a.fail);
	if (virtio_mmio_load(t, a.p, a.len, &e) < 0) {
		fprintf(stderr, "fuzz_mmio: own save refused: %s\n", e.msg);
		abort();
	}
	virtio_mmio_save(t, &b);
	CHECK(!b.fail && b.len == a.len && !memcmp(a.p, b.p, a.len));
	free(a.p);
	free(b.p);
}

static int make_dev(uint8_t kind, struct virtio_dev **d)
{
	const struct blk_config bc = { .path = disk_path,
				       .engine = BLK_ENGINE_SYNC };
	struct err e;

	switch (kind % 3) {
	case 0:
		return rng_create(NULL, &mem, d, &e);
	case 1:
		return vconsole_create(null_fd, &mem, d, &e);
	default:
		return blk_create(&bc, &mem, d, &e);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct virtio_irq_host irq = { fake_irqfd, NULL, NULL, false };
	struct virtio_mmio *t = NULL;
	struct virtio_dev *d;
	struct err e;
	uint64_t offer;
	uint32_t id;
	size_t pos, n;
	int fds, ops = 0;

	if (!mem.host)
		init_once();
	if (size < 3)
		return 0;
	n = le16(data + 1);
	if (n > size - 3)
		n = size - 3;
	if (n > FUZZ_MEM)
		n = FUZZ_MEM;
	memset(mem.host, 0, FUZZ_MEM);
	memcpy(mem.host, data + 3, n);
	pos = 3 + n;

	fds = fuzz_count_fds();
	CHECK(make_dev(data[0], &d) == 0);
	id = d->device_id;
	if (virtio_mmio_create(d, BASE, 5, NULL, &irq, &t, &e) < 0) {
		fprintf(stderr, "fuzz_mmio: %s\n", e.msg);
		abort();
	}
	CHECK(virtio_iothread_pause(&t->io, 5000) == 0);
	offer = offered(t);
	CHECK(offer & 1ull << VIRTIO_F_VERSION_1);
	wr32(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);

	while (pos < size && ops++ < MAX_OPS) {
		uint8_t op = data[pos++] % 7, b[8] = { 0 };
		uint32_t off, len, v;

		if (op <= 2) {
			if (pos + 2 > size)
				break;
			off = le16(data + pos) % 0x200;
			pos += 2;
		}
		switch (op) {
		case 0:
			if (pos + 4 > size)
				goto out;
			v = le32(data + pos);
			pos += 4;
			wr32(t, off, v);
			if (off == VIRTIO_MMIO_STATUS && v == 0)
				check_reset(t);
			break;
		case 1:
			if (pos + 1 > size)
				goto out;
			len = data[pos++] % 8 + 1;
			memset(b, 0xa5, sizeof(b));
			virtio_mmio_bus_ops.read(t, 0, off, b, len);
			for (uint32_t i = len; i < 8; i++)
				CHECK(b[i] == 0xa5); /* only len bytes */
			if (len != 4 || off >= VIRTIO_MMIO_CONFIG) {
				/* Past the config space, or a register read
				 * of the wrong width: zeros. */
				if (off < VIRTIO_MMIO_CONFIG ||
				    off - VIRTIO_MMIO_CONFIG + len >
					    d->config_size)
					for (uint32_t i = 0; i < len; i++)
						CHECK(b[i] == 0);
				break;
			}
			v = le32(b);
			if (off == VIRTIO_MMIO_MAGIC_VALUE)
				CHECK(v == VIRTIO_MMIO_MAGIC);
			else if (off == VIRTIO_MMIO_VERSION)
				CHECK(v == 2);
			else if (off == VIRTIO_MMIO_DEVICE_ID)
				CHECK(v == id);
			else if (off == VIRTIO_MMIO_VENDOR_ID)
				CHECK(v == VIRTIO_MMIO_VENDOR);
			else if (off == VIRTIO_MMIO_INTERRUPT_STATUS)
				CHECK(!(v & ~3u));
			else if (off == VIRTIO_MMIO_QUEUE_NUM_MAX)
				CHECK(t->queue_sel < (uint32_t)d->nr_queues ?
					      v == d->queue_max[t->queue_sel] :
					      v == 0);
			break;
		case 2:
			if (pos + 9 > size)
				goto out;
			len = data[pos++] % 8 + 1;
			memcpy(b, data + pos, 8);
			pos += 8;
			virtio_mmio_bus_ops.write(t, 0, off, b, len);
			break;
		case 3:
			if (pos + 1 > size)
				goto out;
			wr32(t, VIRTIO_MMIO_QUEUE_NOTIFY, data[pos]);
			run_kick(t, data[pos++]);
			break;
		case 4:
			if (pos + 1 > size)
				goto out;
			driver_start(t, offer, data[pos++]);
			break;
		case 5: {
			size_t n;

			if (pos + 2 > size)
				goto out;
			n = le16(data + pos);
			pos += 2;
			if (n > size - pos)
				n = size - pos;
			memset(&e, 0, sizeof(e));
			if (virtio_mmio_load(t, data + pos, n, &e) < 0)
				CHECK(e.msg[0]);
			pos += n;
			break;
		}
		default:
			roundtrip(t);
			break;
		}
		check_state(t, offer);
	}
out:
	if (id == VIRTIO_ID_BLOCK)
		CHECK(blk_test_settle(d, 5000000000ull) == 0);
	virtio_iothread_resume(&t->io);
	virtio_mmio_destroy(t);
	CHECK(fuzz_count_fds() == fds);
	return 0;
}
