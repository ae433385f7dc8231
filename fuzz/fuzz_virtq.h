/* SPDX-License-Identifier: MIT */
/*
 * Shared by the virtqueue device targets (fuzz_virtq_rng,
 * fuzz_virtq_console): a small guest whose memory image is the fuzzer's
 * input, queues at fixed addresses in the first page (queue q: descriptor
 * table at q * 0x400, avail ring at + 0x100, used ring at + 0x200, QSIZE
 * entries), guard pages around RAM, and a dry run of the walker that
 * predicts the chains the device will see.
 *
 * The prediction only holds when the device cannot change what the walker
 * reads: fq_safe() says no writable buffer overlaps the ring page or any
 * indirect table the descriptor tables name. Then the device must post
 * exactly the predicted heads, in order, each with a length within its
 * chain's writable bytes, and every byte of guest RAM outside the
 * writable buffers and the used rings must be unchanged.
 */
#ifndef WISP_FUZZ_VIRTQ_H
#define WISP_FUZZ_VIRTQ_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "mem/guest_mem.h"
#include "util/le.h"
#include "util/log.h"
#include "virtio/virtio.h"
#include "virtio/virtqueue.h"

#define FQ_MEM (64ULL << 10)
#define FQ_QSIZE 16
#define FQ_ZONE 0x1000 /* the ring page */
#define FQ_MAX_CHAINS FQ_QSIZE /* avail_idx - last_avail <= size */

struct fq_seg {
	uint64_t off, len; /* in guest RAM */
	bool write;
};

/* One predicted chain: its head and its segments. */
struct fq_chain {
	uint16_t head;
	uint32_t read_len, write_len;
	int nr;
	struct fq_seg seg[VIRTQ_MAX_SEGS];
};

struct fq_pred {
	int n; /* chains popped before the queue ran dry or broke */
	bool bad; /* the walker refused the next chain */
	struct fq_chain c[FQ_MAX_CHAINS];
};

static struct guest_mem fq_mem;
static uint8_t fq_image[FQ_MEM];
static struct virtq_chain fq_chain;

static void fq_init_mem(void)
{
	fuzz_guest_mem(&fq_mem, FQ_MEM);
}

/* Loads the image (zero-padded) into guest RAM. */
static void fq_load(const uint8_t *p, size_t n)
{
	if (n > FQ_MEM)
		n = FQ_MEM;
	memset(fq_image, 0, sizeof(fq_image));
	memcpy(fq_image, p, n);
	memcpy(fq_mem.host, fq_image, FQ_MEM);
}

static void fq_setup_vq(struct virtq *vq, int q, bool event_idx, bool indirect)
{
	fuzz_setup_vq(vq, &fq_mem, FQ_QSIZE, (uint64_t)q * 0x400,
		      (uint64_t)q * 0x400 + 0x100, (uint64_t)q * 0x400 + 0x200,
		      event_idx, indirect);
}

/* The dry run on queue q: what the walker returns, checked for sanity.
 * Leaves guest RAM as the image was except the used ring and avail_event
 * (the caller reloads it). */
static void fq_predict(struct fq_pred *pr, int q, bool event_idx, bool indirect)
{
	struct virtq vq;
	const char *why = NULL;

	memset(pr, 0, sizeof(*pr));
	fq_setup_vq(&vq, q, event_idx, indirect);
	while (pr->n < FQ_MAX_CHAINS) {
		struct fq_chain *fc = &pr->c[pr->n];
		uint64_t rd = 0, wr = 0;
		int ret = virtq_pop(&vq, &fq_chain, &why);

		if (ret == 0)
			return;
		if (ret < 0) {
			CHECK(ret == -EINVAL && why && why[0]);
			pr->bad = true;
			return;
		}
		CHECK(ret == 1 && fq_chain.head < FQ_QSIZE);
		fc->head = fq_chain.head;
		fc->nr = fq_chain.nr_read + fq_chain.nr_write;
		CHECK(fc->nr <= VIRTQ_MAX_SEGS);
		for (int i = 0; i < fc->nr; i++) {
			const struct virtq_seg *s = &fq_chain.seg[i];

			CHECK(s->write == (i >= fq_chain.nr_read));
			CHECK(fuzz_inside(&fq_mem, s->host, s->len));
			fc->seg[i] = (struct fq_seg){ (uint64_t)(s->host -
								 fq_mem.host),
						      s->len, s->write };
			if (s->write)
				wr += s->len;
			else
				rd += s->len;
		}
		CHECK(rd == fq_chain.read_len && wr == fq_chain.write_len);
		fc->read_len = (uint32_t)rd;
		fc->write_len = (uint32_t)wr;
		virtq_push(&vq, fq_chain.head, 0);
		pr->n++;
	}
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* No write of the device can change what the walker reads: no writable
 * buffer of pr overlaps the ring page or an indirect table named in any
 * descriptor table of the first nq queues, and no such table overlaps a
 * used ring. */
static bool fq_safe(const struct fq_pred *pr, int nq)
{
	/* Nor can the used rings the device writes hold a table. */
	for (int q = 0; q < nq; q++)
		for (int d = 0; d < FQ_QSIZE; d++) {
			const uint8_t *p = fq_image + q * 0x400 + d * 16;

			if (!(le16(p + 12) & VIRTQ_DESC_F_INDIRECT))
				continue;
			for (int u = 0; u < nq; u++)
				if (overlaps(le64(p), le32(p + 8),
					     u * 0x400 + 0x200,
					     4 + 8 * FQ_QSIZE + 2))
					return false;
		}
	for (int i = 0; i < pr->n; i++) {
		const struct fq_chain *fc = &pr->c[i];

		for (int s = 0; s < fc->nr; s++) {
			const struct fq_seg *g = &fc->seg[s];

			if (!g->write)
				continue;
			if (overlaps(g->off, g->len, 0, FQ_ZONE))
				return false;
			for (int q = 0; q < nq; q++)
				for (int d = 0; d < FQ_QSIZE; d++) {
					const uint8_t *p =
						fq_image + q * 0x400 + d * 16;

					if (le16(p + 12) &
					    VIRTQ_DESC_F_INDIRECT)
						if (overlaps(g->off, g->len,
							     le64(p),
							     le32(p + 8)))
							return false;
				}
		}
	}
	return true;
}

/* The used entries queue q posted after the device ran, against the
 * prediction: the same heads in order, each length within its chain's
 * writable bytes. Returns the number posted. */
static int fq_check_used(const struct virtq *vq, const struct fq_pred *pr,
			 bool safe, uint32_t *lens)
{
	const uint8_t *used = fq_mem.host + vq->used_gpa;
	int n = (uint16_t)vq->used_idx;

	CHECK(n <= FQ_MAX_CHAINS);
	/* The device writes used->idx only when it posts (the driver
	 * zeroes it); a buffer may overlap the used ring only when !safe. */
	if (safe && n)
		CHECK(le16(used + 2) == vq->used_idx);
	for (int i = 0; i < n; i++) {
		const uint8_t *e = used + 4 + (size_t)(i % FQ_QSIZE) * 8;
		uint32_t id = le32(e), len = le32(e + 4);

		/* Unsafe: a writable buffer over the used ring may
		 * overwrite an entry posted before it (seen: rng filling
		 * a buffer at 0x200 with random bytes), so the entries
		 * hold whatever the guest let the device write there. */
		if (!safe)
			continue;
		CHECK(id < FQ_QSIZE);
		/* Entries are overwritten after QSIZE: check the last
		 * QSIZE only. */
		if (n - i > FQ_QSIZE)
			continue;
		CHECK(i < pr->n);
		CHECK(id == pr->c[i].head);
		CHECK(len <= pr->c[i].write_len);
		if (lens)
			lens[i] = len;
	}
	return n;
}

/* Every byte outside the writable buffers of pr and the used rings (with
 * avail_event) of the first nq queues is as the image had it. */
static void fq_check_untouched(const struct fq_pred *pr, int nq)
{
	static uint8_t may[FQ_MEM];

	memset(may, 0, sizeof(may));
	for (int q = 0; q < nq; q++) /* used ring with avail_event */
		memset(may + q * 0x400 + 0x200, 1, 4 + 8 * FQ_QSIZE + 2);
	for (int i = 0; i < pr->n; i++)
		for (int s = 0; s < pr->c[i].nr; s++)
			if (pr->c[i].seg[s].write)
				memset(may + pr->c[i].seg[s].off, 1,
				       pr->c[i].seg[s].len);
	for (size_t b = 0; b < FQ_MEM; b++)
		if (!may[b] && fq_mem.host[b] != fq_image[b]) {
			fprintf(stderr, "fuzz: guest byte 0x%zx changed\n", b);
			abort();
		}
}

#endif
