// SPDX-License-Identifier: MIT
#include "fake_driver.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUEUE_AREA 0x10000ULL /* per queue: desc, avail, used */

static void fake_raise(void *transport, bool config)
{
	struct fake_driver *f = transport;

	if (config)
		f->config_irqs++;
	else
		f->irqs++;
}

static const struct virtio_transport_ops fake_tops = {
	.raise = fake_raise,
};

void fake_init(struct fake_driver *f)
{
	struct err e;

	memset(f, 0, sizeof(*f));
	assert_int_equal(guest_mem_init(&f->mem, FAKE_MEM_SIZE, &e), 0);
	f->heap = FAKE_HEAP_START;
}

void fake_init_shared(struct fake_driver *f, const struct fake_driver *owner,
		      uint64_t queue_base, uint64_t heap)
{
	memset(f, 0, sizeof(*f));
	f->mem = owner->mem;
	f->shared_mem = true;
	f->queue_base = queue_base;
	f->heap = heap;
}

void fake_attach(struct fake_driver *f, struct virtio_dev *d, uint64_t want,
		 uint16_t qsize)
{
	uint64_t offered;
	const char *why = NULL;

	f->d = d;
	d->tops = &fake_tops;
	d->transport = f;
	d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	offered = d->ops->features(d) | 1ULL << VIRTIO_F_VERSION_1 |
		  1ULL << VIRTIO_F_RING_INDIRECT_DESC |
		  1ULL << VIRTIO_F_RING_EVENT_IDX;
	d->features = offered & want;
	d->status |= VIRTIO_STATUS_FEATURES_OK;
	for (int q = 0; q < d->nr_queues; q++) {
		struct fake_queue *fq = &f->q[q];
		struct virtq *vq = &d->vq[q];
		uint64_t base =
			f->queue_base ?
				f->queue_base + QUEUE_AREA * (uint64_t)q :
				QUEUE_AREA * (uint64_t)(q + 1);

		assert_true(qsize <= d->queue_max[q] && qsize <= 256);
		fq->size = qsize;
		fq->desc = base;
		fq->avail = base + 16ULL * qsize;
		fq->used = base + 0x2000;
		vq->size = qsize;
		vq->desc_gpa = fq->desc;
		vq->avail_gpa = fq->avail;
		vq->used_gpa = fq->used;
		vq->event_idx = virtio_has_feature(d, VIRTIO_F_RING_EVENT_IDX);
		vq->indirect =
			virtio_has_feature(d, VIRTIO_F_RING_INDIRECT_DESC);
		vq->mem = &f->mem;
		virtq_reset(vq);
		assert_int_equal(virtq_validate_rings(vq, &why), 0);
		vq->ready = true;
	}
	assert_int_equal(d->ops->activate(d), 0);
	d->status |= VIRTIO_STATUS_DRIVER_OK;
}

void fake_destroy(struct fake_driver *f)
{
	if (f->d && f->d->ops->destroy)
		f->d->ops->destroy(f->d);
	f->d = NULL;
	if (!f->shared_mem)
		guest_mem_destroy(&f->mem);
}

uint64_t fake_alloc(struct fake_driver *f, uint64_t len)
{
	uint64_t gpa = f->heap;

	f->heap = (f->heap + len + 15) & ~15ULL;
	assert_true(f->heap <= FAKE_MEM_SIZE);
	memset(fake_ptr(f, gpa, len), 0, len);
	return gpa;
}

void *fake_ptr(struct fake_driver *f, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr(&f->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static void put16(struct fake_driver *f, uint64_t gpa, uint16_t v)
{
	memcpy(fake_ptr(f, gpa, 2), &v, 2);
}

static uint16_t get16(struct fake_driver *f, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, fake_ptr(f, gpa, 2), 2);
	return v;
}

void fake_set_desc(struct fake_driver *f, int q, uint16_t idx, uint64_t addr,
		   uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = fake_ptr(f, f->q[q].desc + 16ULL * idx, 16);

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

void fake_set_avail_idx(struct fake_driver *f, int q, uint16_t idx)
{
	f->q[q].avail_idx = idx;
	put16(f, f->q[q].avail + 2, idx);
}

void fake_publish(struct fake_driver *f, int q, uint16_t head)
{
	struct fake_queue *fq = &f->q[q];

	put16(f, fq->avail + 4 + 2ULL * (fq->avail_idx % fq->size), head);
	fake_set_avail_idx(f, q, fq->avail_idx + 1);
}

uint16_t fake_add_chain(struct fake_driver *f, int q, const struct fake_buf *b,
			int n)
{
	struct fake_queue *fq = &f->q[q];
	uint16_t head = fq->next_desc;

	assert_true(n >= 1 && n <= fq->size);
	for (int i = 0; i < n; i++) {
		uint16_t idx = (head + i) % fq->size;
		uint16_t next = (head + i + 1) % fq->size;

		fake_set_desc(f, q, idx, b[i].gpa, b[i].len,
			      (b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				      (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
			      i + 1 < n ? next : 0);
	}
	fq->next_desc = (head + n) % fq->size;
	fake_publish(f, q, head);
	return head;
}

uint16_t fake_add_indirect(struct fake_driver *f, int q,
			   const struct fake_buf *b, int n)
{
	struct fake_queue *fq = &f->q[q];
	uint64_t table = fake_alloc(f, 16ULL * n);
	uint16_t head = fq->next_desc;

	for (int i = 0; i < n; i++) {
		uint8_t *p = fake_ptr(f, table + 16ULL * i, 16);
		uint16_t flags = (b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		uint16_t next = i + 1 < n ? i + 1 : 0;

		memcpy(p, &b[i].gpa, 8);
		memcpy(p + 8, &b[i].len, 4);
		memcpy(p + 12, &flags, 2);
		memcpy(p + 14, &next, 2);
	}
	fake_set_desc(f, q, head, table, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
	fq->next_desc = (head + 1) % fq->size;
	fake_publish(f, q, head);
	return head;
}

void fake_kick(struct fake_driver *f, int q)
{
	/* As the transport takes it: in the kicking thread, or as the I/O
	 * thread does on the doorbell. */
	if ((f->d->exit_queues >> q) & 1)
		virtio_dev_kick_exit(f->d, q);
	else
		virtio_dev_kick(f->d, q);
}

uint16_t fake_used_idx(struct fake_driver *f, int q)
{
	return get16(f, f->q[q].used + 2);
}

bool fake_get_used(struct fake_driver *f, int q, uint32_t *id, uint32_t *len)
{
	struct fake_queue *fq = &f->q[q];
	uint8_t *e;

	if (fake_used_idx(f, q) == fq->used_seen)
		return false;
	e = fake_ptr(f, fq->used + 4 + 8ULL * (fq->used_seen % fq->size), 8);
	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
	fq->used_seen++;
	/* Like Linux with callbacks enabled: interrupt me for the next one. */
	fake_set_used_event(f, q, fq->used_seen);
	return true;
}

void fake_set_used_event(struct fake_driver *f, int q, uint16_t v)
{
	put16(f, f->q[q].avail + 4 + 2ULL * f->q[q].size, v);
}

uint16_t fake_avail_event(struct fake_driver *f, int q)
{
	return get16(f, f->q[q].used + 4 + 8ULL * f->q[q].size);
}

bool fake_broken(struct fake_driver *f)
{
	return f->d->broken && (f->d->status & VIRTIO_STATUS_NEEDS_RESET);
}

uint8_t fake_pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 9) * 13 + 1);
}

int fake_make_image(char *path, uint64_t size)
{
	uint8_t buf[4096];
	int fd;

	snprintf(path, 4096, "/tmp/wisp-test-blk-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		uint64_t n = size - off < sizeof(buf) ? size - off :
							sizeof(buf);

		for (uint64_t i = 0; i < n; i++)
			buf[i] = fake_pattern(off + i);
		assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	}
	return fd;
}
