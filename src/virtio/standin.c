// SPDX-License-Identifier: MIT
#include "virtio/standin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "virtio/mmio_regs.h"
#include "virtio/virtio.h"

/* Device types that know how to fail a request; others' in-flight
 * requests are left to the driver's reset. */
static const struct {
	uint32_t device_id;
	virtio_fail_chain_fn fail_chain;
} fail_table[] = {
	{ VIRTIO_ID_BLOCK, virtio_blk_fail_chain },
};

static virtio_fail_chain_fn fail_fn(uint32_t device_id)
{
	for (size_t i = 0; i < sizeof(fail_table) / sizeof(fail_table[0]); i++)
		if (fail_table[i].device_id == device_id)
			return fail_table[i].fail_chain;
	return NULL;
}

int virtio_standin_init(struct virtio_standin *s)
{
	int ret;

	memset(s, 0, sizeof(*s));
	ret = pthread_mutex_init(&s->lock, NULL);
	return ret ? -ret : 0;
}

void virtio_standin_destroy(struct virtio_standin *s)
{
	pthread_mutex_destroy(&s->lock);
}

static struct standin_queue *selected(struct virtio_standin *s)
{
	return s->queue_sel < STANDIN_QUEUES ? &s->q[s->queue_sel] : NULL;
}

void virtio_standin_observe_read(struct virtio_standin *s, uint64_t off,
				 uint64_t v)
{
	struct standin_queue *q;

	pthread_mutex_lock(&s->lock);
	q = selected(s);
	if (off <= VIRTIO_MMIO_VENDOR_ID && !(off & 3))
		s->id[off / 4] = (uint32_t)v;
	else if (off == VIRTIO_MMIO_STATUS)
		s->status = (uint32_t)v;
	else if (off == VIRTIO_MMIO_CONFIG_GENERATION)
		s->gen = (uint32_t)v;
	else if (off == VIRTIO_MMIO_QUEUE_NUM_MAX && q)
		q->num_max = (uint32_t)v;
	pthread_mutex_unlock(&s->lock);
}

static void set_half(uint64_t *a, bool high, uint64_t v)
{
	if (high)
		*a = (*a & 0xffffffffull) | (v << 32);
	else
		*a = (*a & ~0xffffffffull) | (uint32_t)v;
}

void virtio_standin_observe_write(struct virtio_standin *s, uint64_t off,
				  uint64_t v)
{
	struct standin_queue *q;

	pthread_mutex_lock(&s->lock);
	q = selected(s);
	switch (off) {
	case VIRTIO_MMIO_STATUS:
		s->status = (uint32_t)v;
		if (v == 0)
			memset(s->q, 0, sizeof(s->q));
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		s->queue_sel = (uint32_t)v;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (q)
			q->num = (uint32_t)v;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (q)
			q->ready = v != 0;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		if (q)
			set_half(&q->desc, off & 4, v);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		if (q)
			set_half(&q->avail, off & 4, v);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		if (q)
			set_half(&q->used, off & 4, v);
		break;
	}
	pthread_mutex_unlock(&s->lock);
}

uint64_t virtio_standin_read(struct virtio_standin *s, uint64_t off)
{
	uint64_t v = 0;

	pthread_mutex_lock(&s->lock);
	if (off <= VIRTIO_MMIO_VENDOR_ID && !(off & 3))
		v = s->id[off / 4];
	else if (off == VIRTIO_MMIO_STATUS)
		v = s->status | VIRTIO_STATUS_NEEDS_RESET;
	else if (off == VIRTIO_MMIO_INTERRUPT_STATUS)
		v = s->isr;
	else if (off == VIRTIO_MMIO_CONFIG_GENERATION)
		v = s->gen;
	pthread_mutex_unlock(&s->lock);
	return v;
}

void virtio_standin_write(struct virtio_standin *s, uint64_t off, uint64_t v)
{
	pthread_mutex_lock(&s->lock);
	if (off == VIRTIO_MMIO_STATUS)
		s->status = (uint32_t)v;
	else if (off == VIRTIO_MMIO_INTERRUPT_ACK)
		s->isr &= ~(uint32_t)v;
	pthread_mutex_unlock(&s->lock);
}

void virtio_standin_attached(struct virtio_standin *s)
{
	pthread_mutex_lock(&s->lock);
	s->isr = 0;
	pthread_mutex_unlock(&s->lock);
}

/* Fails what is between the used and the avail index of one queue, in
 * order (the device completes in order), within *budget segments. */
static int fail_queue(const struct standin_queue *s, struct guest_mem *mem,
		      virtio_fail_chain_fn fail, struct virtq_chain *chain,
		      int *budget)
{
	struct virtq vq = { 0 };
	const char *why;
	uint16_t *used_idx;
	int n = 0;

	/* The guest chose num; the device said how large it may be. */
	if (!s->ready || !s->num || s->num > s->num_max ||
	    s->num > VIRTQ_MAX_SIZE)
		return 0;
	vq.size = (uint16_t)s->num;
	vq.desc_gpa = s->desc;
	vq.avail_gpa = s->avail;
	vq.used_gpa = s->used;
	vq.mem = mem;
	vq.indirect = true;
	vq.ready = true;
	if (virtq_validate_rings(&vq, &why) < 0)
		return 0;
	used_idx = guest_mem_ptr(mem, s->used + 2, 2);
	vq.last_avail = vq.used_idx =
		__atomic_load_n(used_idx, __ATOMIC_ACQUIRE);
	while (n<vq.size && * budget> 0 && virtq_pop(&vq, chain, &why) == 1) {
		*budget -= 1 + chain->nr_read + chain->nr_write;
		if (!fail(chain))
			break;
		virtq_push(&vq, chain->head, 1);
		n++;
	}
	return n;
}

/* Fails every queue's requests between its used and avail index, each
 * within one budget; what is failed and why is logged as what. */
static int fail_all(struct virtio_standin *s, struct guest_mem *mem,
		    const char *name, const char *what)
{
	struct standin_queue q[STANDIN_QUEUES];
	virtio_fail_chain_fn fail;
	struct virtq_chain *chain = NULL;
	int total = 0, budget = STANDIN_FAIL_BUDGET;

	pthread_mutex_lock(&s->lock);
	memcpy(q, s->q, sizeof(q));
	fail = fail_fn(s->id[2]);
	pthread_mutex_unlock(&s->lock);

	if (fail)
		chain = malloc(sizeof(*chain));
	for (int i = 0; chain && i < STANDIN_QUEUES; i++) {
		int n = fail_queue(&q[i], mem, fail, chain, &budget);

		if (n)
			log_warn("%s: failed %d %s request(s) on queue %d",
				 name, n, what, i);
		total += n;
	}
	if (budget <= 0)
		log_warn("%s: stopped failing %s requests after %d "
			 "buffers; the driver must reset the device",
			 name, what, STANDIN_FAIL_BUDGET);
	free(chain);
	return total;
}

int virtio_standin_fail_new(struct virtio_standin *s, struct guest_mem *mem,
			    const char *name)
{
	int n = fail_all(s, mem, name, "newly posted");

	if (n > 0) {
		pthread_mutex_lock(&s->lock);
		s->isr |= VIRTIO_MMIO_INT_VRING;
		pthread_mutex_unlock(&s->lock);
	}
	return n;
}

int virtio_standin_detached(struct virtio_standin *s, struct guest_mem *mem,
			    bool fail_inflight, const char *name)
{
	int total = fail_inflight ? fail_all(s, mem, name, "in-flight") : 0;

	pthread_mutex_lock(&s->lock);
	s->gen++;
	s->isr = VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG;
	pthread_mutex_unlock(&s->lock);
	return total;
}
