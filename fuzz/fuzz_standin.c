// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the stand-in of a device whose IOREQ server went
 * away (src/virtio/standin.c): it shadows the register accesses the
 * guest made while the server ran, then, once the server is dead, walks
 * the guest's queues (guest memory, hostile) to fail the requests in
 * flight (virtio-blk: status IOERR). The input is
 *   u8 flags | u16 n | n bytes of guest memory image (64 KiB from GPA 0)
 *   | operations:
 *     op 0: {u16 off, u32 v}  a read the live device answered (v)
 *     op 1: {u16 off, u32 v}  a write the live device saw
 *     op 2: {u8 q, u8 size}   the accesses of a driver setting up queue
 *           q (QueueNumMax read as 256, QueueNum 2^(size % 10), rings
 *           at q * 0x400, + 0x100, + 0x200, QueueReady 1)
 * (offsets modulo 0x100). flags: bit 0 the server is known dead (fail
 * in flight), bit 1 then fail what was posted since too, bit 2 the
 * device ID is read as virtio-blk first.
 *
 * Checks: the identity registers read as observed, Status always with
 * NEEDS_RESET, InterruptStatus both bits after the detach and ACK clears
 * them; the number failed is within the ready queues' sizes and zero
 * unless the server is dead; every used entry posted has a head within
 * its queue and length 1; no guest byte changes except in the used rings
 * of the queues set up and in buffers some descriptor marks
 * device-writable.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "mem/guest_mem.h"
#include "util/le.h"
#include "util/log.h"
#include "virtio/mmio_regs.h"
#include "virtio/standin.h"
#include "virtio/virtio.h"

#define FUZZ_MEM (64ULL << 10)
#define MAX_OPS 256

static struct guest_mem mem;
static uint8_t image[FUZZ_MEM], may[FUZZ_MEM];

static void mark(uint64_t gpa, uint64_t len)
{
	if (gpa >= FUZZ_MEM || !len)
		return;
	if (len > FUZZ_MEM - gpa)
		len = FUZZ_MEM - gpa;
	memset(may + gpa, 1, len);
}

/* What the stand-in may write, seen in one memory image: the used ring
 * of each queue the guest set up, and every buffer a descriptor (in a
 * table, or in an indirect table one names) marks device-writable. */
static void mark_writable(const struct virtio_standin *s, const uint8_t *m,
			  bool rings)
{
	for (int q = 0; q < STANDIN_QUEUES; q++) {
		const struct standin_queue *sq = &s->q[q];
		uint64_t num = sq->num > VIRTQ_MAX_SIZE ? VIRTQ_MAX_SIZE :
							  sq->num;

		if (!sq->ready)
			continue;
		if (rings)
			mark(sq->used, 4 + 8 * num + 2);
		for (uint64_t d = 0; d < num; d++) {
			uint64_t a = sq->desc + 16 * d;
			const uint8_t *p;

			if (a >= FUZZ_MEM || FUZZ_MEM - a < 16)
				break;
			p = m + a;
			if (le16(p + 12) & VIRTQ_DESC_F_WRITE)
				mark(le64(p), le32(p + 8));
			if (le16(p + 12) & VIRTQ_DESC_F_INDIRECT) {
				uint64_t t = le64(p), n = le32(p + 8) / 16;

				for (uint64_t i = 0;
				     i < n && t < FUZZ_MEM &&
				     FUZZ_MEM - t >= 16 * (i + 1);
				     i++) {
					const uint8_t *e = m + t + 16 * i;

					if (le16(e + 12) & VIRTQ_DESC_F_WRITE)
						mark(le64(e), le32(e + 8));
				}
			}
		}
	}
}

/* The used entries posted, on queues whose used ring no buffer overlaps
 * (ring_hit[q]). */
static void check_used(const struct virtio_standin *s, const bool *ring_hit)
{
	for (int q = 0; q < STANDIN_QUEUES; q++) {
		const struct standin_queue *sq = &s->q[q];
		uint16_t before, after;

		if (!sq->ready || ring_hit[q] || sq->used >= FUZZ_MEM ||
		    FUZZ_MEM - sq->used < 4 + 8 * (uint64_t)sq->num + 2 ||
		    sq->num == 0 || sq->num > VIRTQ_MAX_SIZE)
			continue;
		before = le16(image + sq->used + 2);
		after = le16(mem.host + sq->used + 2);
		if (before == after)
			continue;
		/* Only a walkable queue is written: its ring fits in RAM. */
		CHECK((uint16_t)(after - before) <= sq->num);
		for (uint16_t i = before; i != after; i++) {
			const uint8_t *e = mem.host + sq->used + 4 +
					   8 * (uint64_t)(i % sq->num);

			CHECK(le32(e) < sq->num);
			CHECK(le32(e + 4) == 1);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtio_standin s;
	uint32_t id[4] = { 0 }, gen;
	bool ring_hit[STANDIN_QUEUES];
	uint8_t flags;
	size_t pos, n;
	int failed = 0, max = 0, ops = 0;

	if (!mem.host) {
		fuzz_guest_mem(&mem, FUZZ_MEM);
	}
	if (size < 3)
		return 0;
	flags = data[0];
	n = le16(data + 1);
	if (n > size - 3)
		n = size - 3;
	if (n > FUZZ_MEM)
		n = FUZZ_MEM;
	memset(image, 0, sizeof(image));
	memcpy(image, data + 3, n);
	memcpy(mem.host, image, FUZZ_MEM);
	pos = 3 + n;

	CHECK(virtio_standin_init(&s) == 0);
	if (flags & 4) {
		virtio_standin_observe_read(&s, VIRTIO_MMIO_DEVICE_ID,
					    VIRTIO_ID_BLOCK);
		id[2] = VIRTIO_ID_BLOCK;
	}
	while (pos < size && ops++ < MAX_OPS) {
		uint8_t op = data[pos++] % 3;
		uint32_t off, v;

		if (op == 2) {
			uint32_t q, num;

			if (pos + 2 > size)
				break;
			q = data[pos] % (STANDIN_QUEUES + 1);
			num = 1u << (data[pos + 1] % 10);
			pos += 2;
			virtio_standin_observe_write(&s, VIRTIO_MMIO_QUEUE_SEL,
						     q);
			virtio_standin_observe_read(
				&s, VIRTIO_MMIO_QUEUE_NUM_MAX, 256);
			virtio_standin_observe_write(&s, VIRTIO_MMIO_QUEUE_NUM,
						     num);
			virtio_standin_observe_write(
				&s, VIRTIO_MMIO_QUEUE_DESC_LOW, q * 0x400);
			virtio_standin_observe_write(
				&s, VIRTIO_MMIO_QUEUE_DRIVER_LOW,
				q * 0x400 + 0x100);
			virtio_standin_observe_write(
				&s, VIRTIO_MMIO_QUEUE_DEVICE_LOW,
				q * 0x400 + 0x200);
			virtio_standin_observe_write(
				&s, VIRTIO_MMIO_QUEUE_READY, 1);
			continue;
		}
		if (pos + 6 > size)
			break;
		off = le16(data + pos) % 0x100;
		v = le32(data + pos + 2);
		pos += 6;
		if (op == 0) {
			virtio_standin_observe_read(&s, off, v);
			if (off <= VIRTIO_MMIO_VENDOR_ID && !(off & 3))
				id[off / 4] = v;
		} else {
			virtio_standin_observe_write(&s, off, v);
		}
	}

	for (int q = 0; q < STANDIN_QUEUES; q++)
		if (s.q[q].ready && s.q[q].num <= s.q[q].num_max &&
		    s.q[q].num <= VIRTQ_MAX_SIZE)
			max += (int)s.q[q].num;
	memset(may, 0, sizeof(may));
	mark_writable(&s, image, false);
	for (int q = 0; q < STANDIN_QUEUES; q++) {
		uint64_t u = s.q[q].used,
			 len = 4 + 8 * (uint64_t)s.q[q].num + 2;

		ring_hit[q] = false;
		for (uint64_t b = u; b < u + len && b < FUZZ_MEM; b++)
			ring_hit[q] |= may[b];
	}
	mark_writable(&s, image, true);
	gen = s.gen;
	failed = virtio_standin_detached(&s, &mem, flags & 1, "fuzz");
	CHECK(failed >= 0 && failed <= max);
	if (!(flags & 1) || id[2] != VIRTIO_ID_BLOCK)
		CHECK(failed == 0);
	CHECK(s.gen == gen + 1);
	if (flags & 2) {
		int more = virtio_standin_fail_new(&s, &mem, "fuzz");

		CHECK(more >= 0 && more <= max);
	}
	mark_writable(&s, mem.host, true);
	for (size_t b = 0; b < FUZZ_MEM; b++)
		if (!may[b] && mem.host[b] != image[b]) {
			fprintf(stderr, "fuzz_standin: byte 0x%zx changed\n",
				b);
			abort();
		}
	check_used(&s, ring_hit);

	for (uint32_t r = 0; r < 4; r++)
		CHECK(virtio_standin_read(&s, r * 4) == id[r]);
	CHECK(virtio_standin_read(&s, VIRTIO_MMIO_STATUS) &
	      VIRTIO_STATUS_NEEDS_RESET);
	CHECK(virtio_standin_read(&s, VIRTIO_MMIO_INTERRUPT_STATUS) ==
	      (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG));
	virtio_standin_write(&s, VIRTIO_MMIO_INTERRUPT_ACK, 3);
	CHECK(virtio_standin_read(&s, VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
	virtio_standin_write(&s, VIRTIO_MMIO_STATUS, 0);
	CHECK(virtio_standin_read(&s, VIRTIO_MMIO_STATUS) ==
	      VIRTIO_STATUS_NEEDS_RESET);
	virtio_standin_destroy(&s);
	return 0;
}
