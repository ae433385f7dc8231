// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for split-virtqueue chain parsing and virtio-blk
 * request handling. The input is
 *   u8 flags | guest memory image (from GPA 0, at most FUZZ_MEM bytes)
 * for a 64 KiB guest with one queue of QSIZE entries at fixed addresses:
 * descriptor table at DESC_GPA, avail ring at AVAIL_GPA, used ring at
 * USED_GPA; buffers anywhere. flags: bit 0 EVENT_IDX, bit 1 INDIRECT_DESC,
 * bit 2 read-only disk, bit 3 FLUSH negotiated, bit 4 DISCARD and
 * WRITE_ZEROES negotiated, bit 5 O_DIRECT, bit 6 the sync engine (else
 * io_uring; its completions are reaped with blk_test_settle before the
 * checks).
 *
 * Each input runs twice: virtq_pop() alone, checking that every segment
 * it returns lies inside guest RAM and that the totals add up; then a
 * fresh virtio-blk device on a temp-file disk, kicked twice. The device
 * must end healthy or broken (with NEEDS_RESET), never change the disk's
 * size, and only post used entries with valid heads. Guard pages around
 * guest RAM turn any stray access into a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/blk/blk.h"
#include "devices/blk/blk_engine.h"
#include "fuzz_common.h"
#include "mem/guest_mem.h"
#include "util/log.h"
#include "virtio/virtio.h"
#include "virtio/virtqueue.h"

#define FUZZ_MEM (64ULL << 10)
#define QSIZE 16
#define DESC_GPA 0x0
#define AVAIL_GPA 0x100
#define USED_GPA 0x200
#define DISK_SECTORS 64
#define MAX_POPS 64

#define F_EVENT_IDX 1
#define F_INDIRECT 2
#define F_READONLY 4
#define F_FLUSH 8
#define F_DWZ 16
#define F_DIRECT 32
#define F_SYNC 64

static struct guest_mem mem;
static const char *disk_path;
static struct virtq_chain chain;
static uint8_t image[FUZZ_MEM];
static int raises;

static void fake_raise(void *transport, bool config)
{
	raises++;
}

static const struct virtio_transport_ops tops = { .raise = fake_raise };

static void init_once(void)
{
	fuzz_guest_mem(&mem, FUZZ_MEM);
	disk_path = fuzz_disk("blk", DISK_SECTORS);
}

static void setup_vq(struct virtq *vq, uint8_t flags)
{
	fuzz_setup_vq(vq, &mem, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA,
		      flags & F_EVENT_IDX, flags & F_INDIRECT);
}

/* virtq_pop alone: every returned chain must be well formed. */
static void run_pop(uint8_t flags)
{
	struct virtq vq;
	const char *why = NULL;
	uint8_t buf[64];

	setup_vq(&vq, flags);
	for (int n = 0; n < MAX_POPS; n++) {
		uint64_t rd = 0, wr = 0;
		int ret = virtq_pop(&vq, &chain, &why);

		if (ret == 0)
			return;
		if (ret < 0) {
			CHECK(ret == -EINVAL && why && why[0]);
			return;
		}
		CHECK(ret == 1);
		CHECK(chain.head < QSIZE);
		CHECK(chain.nr_read + chain.nr_write <= VIRTQ_MAX_SEGS);
		for (int i = 0; i < chain.nr_read + chain.nr_write; i++) {
			const struct virtq_seg *s = &chain.seg[i];

			CHECK(s->write == (i >= chain.nr_read));
			CHECK(fuzz_inside(&mem, s->host, s->len));
			if (s->write)
				wr += s->len;
			else
				rd += s->len;
		}
		CHECK(rd == chain.read_len && wr == chain.write_len);
		CHECK(rd + wr <= VIRTQ_MAX_CHAIN_BYTES);
		/* The copy helpers stop at the chain's end. */
		CHECK(virtq_chain_read(&chain,
				       chain.read_len > 8 ? chain.read_len - 8 :
							    0,
				       buf, sizeof(buf)) <=
		      (chain.read_len < 8 ? chain.read_len : 8));
		CHECK(virtq_chain_write(&chain, chain.write_len, buf,
					sizeof(buf)) == 0);
		virtq_push(&vq, chain.head, (uint32_t)wr);
	}
}

static void run_blk(uint8_t flags)
{
	struct blk_config cfg = {
		.path = disk_path,
		.readonly = flags & F_READONLY,
		.direct = flags & F_DIRECT,
		.engine = (flags & F_SYNC) ? BLK_ENGINE_SYNC : BLK_ENGINE_URING,
	};
	struct virtio_dev *d;
	struct err e;
	struct stat st;
	struct virtq *vq;
	uint64_t feat;
	int ret;

	ret = blk_create(&cfg, &mem, &d, &e);
	if (ret == -EINVAL && cfg.direct)
		return; /* no O_DIRECT on this file system */
	if (ret < 0) {
		fprintf(stderr, "fuzz_virtq_blk: %s\n", e.msg);
		abort();
	}
	raises = 0;
	d->tops = &tops;
	d->transport = NULL;
	feat = d->ops->features(d) | 1ULL << VIRTIO_F_VERSION_1;
	if (flags & F_EVENT_IDX)
		feat |= 1ULL << VIRTIO_F_RING_EVENT_IDX;
	if (flags & F_INDIRECT)
		feat |= 1ULL << VIRTIO_F_RING_INDIRECT_DESC;
	if (!(flags & F_FLUSH))
		feat &= ~(1ULL << VIRTIO_BLK_F_FLUSH);
	if (!(flags & F_DWZ))
		feat &= ~(1ULL << VIRTIO_BLK_F_DISCARD |
			  1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	d->features = feat;
	setup_vq(&d->vq[0], flags);
	CHECK(d->ops->activate(d) == 0);
	d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;

	virtio_dev_kick(d, 0);
	virtio_dev_kick(d, 0);
	/* What the I/O thread would reap from the engine's eventfd. */
	CHECK(blk_test_settle(d, 5000000000ull) == 0);

	/* Healthy or broken with NEEDS_RESET, nothing in between. Guest
	 * memory may have been overwritten by the requests themselves (a
	 * read into the rings is legal), so check the device's own state:
	 * every popped chain was answered, except the one that broke it. */
	CHECK(d->broken == !!(d->status & VIRTIO_STATUS_NEEDS_RESET));
	vq = &d->vq[0];
	CHECK(vq->used_idx == vq->last_avail ||
	      (d->broken && (uint16_t)(vq->used_idx + 1) == vq->last_avail));
	CHECK(raises <= 2 + 1 + 1); /* kicks, settle, config (broken) */
	CHECK(stat(disk_path, &st) == 0);
	CHECK(st.st_size == DISK_SECTORS * 512);
	d->ops->destroy(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t flags;
	size_t n;

	if (!mem.host)
		init_once();
	if (size < 1)
		return 0;
	flags = data[0];
	n = size - 1 < FUZZ_MEM ? size - 1 : FUZZ_MEM;
	memset(image, 0, sizeof(image));
	memcpy(image, data + 1, n);

	memcpy(mem.host, image, FUZZ_MEM);
	run_pop(flags);
	memcpy(mem.host, image, FUZZ_MEM);
	run_blk(flags);
	return 0;
}
