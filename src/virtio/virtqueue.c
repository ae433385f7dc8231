// SPDX-License-Identifier: MIT
#include "virtio/virtqueue.h"

#include "mem/dirty.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

/* Ring layouts (virtio 1.2, 2.7.5-2.7.8), little-endian on x86. */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

#define AVAIL_FLAGS 0
#define AVAIL_IDX 2
#define AVAIL_RING 4
#define USED_FLAGS 0
#define USED_IDX 2
#define USED_RING 4

static uint64_t avail_size(uint16_t n)
{
	return 4 + 2ull * n + 2; /* flags, idx, ring[n], used_event */
}

static uint64_t used_size(uint16_t n)
{
	return 4 + 8ull * n +
	       2; /* flags, idx, ring[n] {id, len}, avail_event */
}

/* Host pointer for the device's access to [addr, addr + len). addr is a
 * GPA, or with vq->dma an IOVA that must translate, with the access's
 * permission, to one contiguous GPA range (a ring or an indirect table is
 * one object; it may still span adjacent mappings). */
static void *dma_ptr(const struct virtq *vq, uint64_t addr, uint64_t len,
		     bool write)
{
	uint64_t first = 0, done = 0;

	if (!vq->dma)
		return guest_mem_ptr(vq->mem, addr, len);
	if (len == 0 || addr + len - 1 < addr)
		return NULL;
	while (done < len) {
		uint64_t gpa, n;

		if (vq->dma->translate(vq->dma->opaque, vq->cur_tok,
				       addr + done, len - done, write, &gpa,
				       &n) < 0 ||
		    n == 0 || n > len - done)
			return NULL;
		if (done == 0)
			first = gpa;
		else if (gpa != first + done)
			return NULL;
		done += n;
	}
	return guest_mem_ptr(vq->mem, first, len);
}

void virtq_reset(struct virtq *vq)
{
	/* Chains the device never pushed: their host pointers die with the
	 * reset (the device dropped or completed them before). */
	if (vq->dma_tok)
		for (uint32_t i = 0; i < vq->dma_tok_n; i++)
			if (vq->dma_tok[i]) {
				vq->dma->end(vq->dma->opaque, vq->dma_tok[i]);
				vq->dma_tok[i] = 0;
			}
	vq->desc_host = NULL;
	vq->avail_host = vq->used_host = NULL;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_valid = false;
}

int virtq_validate_rings(const struct virtq *vq, const char **why)
{
	uint16_t n = vq->size;

	if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1))) {
		*why = "queue size is not a power of two within the maximum";
		return -EINVAL;
	}
	/* Alignment per 2.7: descriptors 16, avail 2, used 4. */
	if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3)) {
		*why = "misaligned ring address";
		return -EINVAL;
	}
	if (!dma_ptr(vq, vq->desc_gpa, 16ull * n, false) ||
	    !dma_ptr(vq, vq->avail_gpa, avail_size(n), false) ||
	    !dma_ptr(vq, vq->used_gpa, used_size(n), true)) {
		*why = "ring outside guest memory";
		return -EINVAL;
	}
	return 0;
}

/* The rings were validated at QueueReady; the layout is fixed from then
 * on, so these pointers are safe. Index reads use acquire/release
 * ordering against the guest's own barriers. */
static uint8_t *avail(const struct virtq *vq)
{
	if (vq->dma)
		return vq->avail_host;
	return guest_mem_ptr(vq->mem, vq->avail_gpa, avail_size(vq->size));
}

static uint8_t *used(const struct virtq *vq)
{
	if (vq->dma)
		return vq->used_host;
	return guest_mem_ptr(vq->mem, vq->used_gpa, used_size(vq->size));
}

static uint16_t load16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)(const void *)p,
			       __ATOMIC_ACQUIRE);
}

static void store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, v, __ATOMIC_RELEASE);
}

bool virtq_peek(const struct virtq *vq, struct virtq_rings *r)
{
	const uint8_t *a, *u;
	uint16_t n = vq->size;

	if (!vq->ready || !n)
		return false;
	a = avail(vq);
	u = used(vq);
	if (!a || !u)
		return false;
	r->avail_flags = load16(a);
	r->avail_idx = load16(a + 2);
	r->used_event = load16(a + 4 + 2u * n);
	r->used_flags = load16(u);
	r->used_idx = load16(u + 2);
	r->avail_event = load16(u + 4 + 8u * n);
	return true;
}

static void push_seg(const struct virtq *vq, struct virtq_chain *c,
		     uint8_t *host, uint32_t len, bool write)
{
	struct virtq_seg *s = &c->seg[c->nr_read + c->nr_write];

	s->host = host;
	s->len = len;
	s->write = write;
	if (write) {
		/* The device may fill it any time until the push. */
		if (host)
			guest_mem_mark_dirty(vq->mem, host, len);
		c->nr_write++;
		c->write_len += len;
	} else {
		c->nr_read++;
		c->read_len += len;
	}
}

/* A buffer behind the IOMMU: one segment per contiguous GPA piece (a
 * buffer may span several mappings). A piece that does not translate
 * becomes one host-NULL segment for the rest of the buffer and marks the
 * chain; a piece that translates to something outside RAM is a bad
 * chain, as without the IOMMU. */
static int add_dma_segs(struct virtq *vq, struct virtq_chain *c,
			const struct vring_desc *d, const char **why)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;
	uint32_t done = 0;

	if (d->addr + d->len - 1 < d->addr) {
		*why = "buffer address wraps";
		return -EINVAL;
	}
	while (done < d->len) {
		uint64_t gpa, n;
		uint8_t *host = NULL;

		if (c->nr_read + c->nr_write >= VIRTQ_MAX_SEGS) {
			*why = "chain has too many buffers";
			return -EINVAL;
		}
		if (vq->dma->translate(vq->dma->opaque, vq->cur_tok,
				       d->addr + done, d->len - done, write,
				       &gpa, &n) < 0 ||
		    n == 0 || n > d->len - done) {
			c->dma_fault = true;
			push_seg(vq, c, NULL, d->len - done, write);
			return 0;
		}
		host = guest_mem_ptr(vq->mem, gpa, n);
		if (!host) {
			*why = "buffer translates outside guest memory";
			return -EINVAL;
		}
		push_seg(vq, c, host, (uint32_t)n, write);
		done += (uint32_t)n;
	}
	return 0;
}

static int add_seg(struct virtq *vq, struct virtq_chain *c,
		   const struct vring_desc *d, uint64_t *total,
		   const char **why)
{
	struct virtq_seg *s;
	bool write = d->flags & VIRTQ_DESC_F_WRITE;
	int n = c->nr_read + c->nr_write;

	if (n >= VIRTQ_MAX_SEGS) {
		*why = "chain has too many buffers";
		return -EINVAL;
	}
	if (!write && c->nr_write) {
		*why = "device-readable buffer after a device-writable one";
		return -EINVAL;
	}
	*total += d->len;
	if (*total > VIRTQ_MAX_CHAIN_BYTES) {
		*why = "chain is too long in bytes";
		return -EINVAL;
	}
	/* A zero-length buffer carries nothing; keep it out of the chain
	 * but still count it against the length bound above. */
	if (d->len == 0)
		return 0;
	if (vq->dma)
		return add_dma_segs(vq, c, d, why);
	s = &c->seg[n];
	s->host = guest_mem_ptr(vq->mem, d->addr, d->len);
	if (!s->host) {
		*why = "buffer outside guest memory";
		return -EINVAL;
	}
	push_seg(vq, c, s->host, d->len, write);
	return 0;
}

static int walk_indirect(struct virtq *vq, struct virtq_chain *c,
			 const struct vring_desc *ind, uint64_t *total,
			 const char **why)
{
	const struct vring_desc *table;
	uint32_t n, i, steps = 0;

	if (!vq->indirect) {
		*why = "indirect descriptor without INDIRECT_DESC";
		return -EINVAL;
	}
	if (ind->flags & VIRTQ_DESC_F_NEXT) {
		*why = "indirect descriptor with NEXT set";
		return -EINVAL;
	}
	if (ind->len == 0 || (ind->len % sizeof(struct vring_desc))) {
		*why = "indirect table length not a multiple of 16";
		return -EINVAL;
	}
	n = ind->len / sizeof(struct vring_desc);
	if (n > VIRTQ_MAX_SEGS) {
		*why = "indirect table too large";
		return -EINVAL;
	}
	/* No alignment rule for indirect tables (only the ring's own table
	 * is 16-byte aligned): Linux with SLOB hands out 8-byte aligned
	 * ones. Each descriptor is copied out before use anyway. */
	table = dma_ptr(vq, ind->addr, ind->len, false);
	if (!table) {
		*why = "indirect table outside guest memory";
		return -EINVAL;
	}
	for (i = 0;;) {
		struct vring_desc d;
		int ret;

		/* Copy once: the guest may change the table under us. */
		memcpy(&d, &table[i], sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			*why = "indirect descriptor inside an indirect table";
			return -EINVAL;
		}
		ret = add_seg(vq, c, &d, total, why);
		if (ret)
			return ret;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= n) {
			*why = "indirect next index out of range";
			return -EINVAL;
		}
		if (++steps >= n) {
			*why = "loop in indirect table";
			return -EINVAL;
		}
		i = d.next;
	}
}

/* With dma: translates the rings again (the driver may have unmapped
 * them since QueueReady). */
static int refresh_rings(struct virtq *vq, const char **why)
{
	uint16_t n = vq->size;

	vq->desc_host = dma_ptr(vq, vq->desc_gpa, 16ull * n, false);
	vq->avail_host = dma_ptr(vq, vq->avail_gpa, avail_size(n), false);
	vq->used_host = dma_ptr(vq, vq->used_gpa, used_size(n), true);
	if (vq->desc_host && vq->avail_host && vq->used_host)
		return 0;
	vq->desc_host = NULL;
	vq->avail_host = vq->used_host = NULL;
	*why = "ring address not mapped for the device";
	return -EINVAL;
}

static int pop(struct virtq *vq, struct virtq_chain *c, const char **why);

/* With in-flight tracking the token is taken before the first
 * translation: an UNMAP that completes after it waits for this chain,
 * one that completed before it is already in the table we translate
 * through. */
int virtq_pop(struct virtq *vq, struct virtq_chain *c, const char **why)
{
	int tok, ret;

	if (!vq->dma_tok)
		return pop(vq, c, why);
	tok = vq->dma->begin(vq->dma->opaque);
	vq->cur_tok = tok;
	ret = pop(vq, c, why);
	vq->cur_tok = 0;
	if (ret <= 0) {
		vq->dma->end(vq->dma->opaque, tok);
		return ret;
	}
	/* A driver that offers a head still in flight breaks the ring
	 * rules; keep the counts balanced (it only defeats the wait for
	 * its own older request). */
	if (c->head >= vq->dma_tok_n) {
		vq->dma->end(vq->dma->opaque, tok);
		return ret;
	}
	if (vq->dma_tok[c->head])
		vq->dma->end(vq->dma->opaque, vq->dma_tok[c->head]);
	vq->dma_tok[c->head] = (int16_t)tok;
	return ret;
}

static int walk_chain(struct virtq *vq, uint16_t head, struct virtq_chain *c,
		      const char **why)
{
	const struct vring_desc *table;
	uint64_t total = 0;
	uint32_t steps = 0;
	uint16_t i;

	if (head >= vq->size) {
		*why = "head descriptor index out of range";
		return -EINVAL;
	}
	table = vq->dma ?
			(const void *)vq->desc_host :
			guest_mem_ptr(vq->mem, vq->desc_gpa, 16ull * vq->size);
	if (!table) {
		*why = "descriptor table outside guest RAM";
		return -EINVAL;
	}
	c->head = head;
	c->dma_fault = false;
	c->nr_read = c->nr_write = 0;
	c->read_len = c->write_len = 0;
	for (i = head;;) {
		struct vring_desc d;
		int ret;

		memcpy(&d, &table[i], sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* Zero or more direct descriptors may precede one
			 * indirect descriptor, which ends the chain (virtio
			 * 1.2, 2.7.5.3: no NEXT with INDIRECT). Its WRITE flag
			 * is ignored. */
			if (d.flags & VIRTQ_DESC_F_NEXT) {
				*why = "indirect descriptor with NEXT set";
				return -EINVAL;
			}
			return walk_indirect(vq, c, &d, &total, why);
		}
		ret = add_seg(vq, c, &d, &total, why);
		if (ret)
			return ret;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= vq->size) {
			*why = "next descriptor index out of range";
			return -EINVAL;
		}
		if (++steps >= vq->size) {
			*why = "descriptor loop (chain longer than the queue)";
			return -EINVAL;
		}
		i = d.next;
	}
}

static int pop(struct virtq *vq, struct virtq_chain *c, const char **why)
{
	uint8_t *av;
	uint16_t avail_idx, head;
	int ret;

	if (vq->dma && vq->ready && refresh_rings(vq, why) < 0)
		return -EINVAL;
	av = avail(vq);
	if (!av || !vq->ready) {
		*why = "queue not ready";
		return -EINVAL;
	}
	avail_idx = load16(av + AVAIL_IDX);
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
		*why = "avail index moved more than the queue size";
		return -EINVAL;
	}
	head = load16(av + AVAIL_RING + 2 * (vq->last_avail % vq->size));
	ret = walk_chain(vq, head, c, why);
	if (ret)
		return ret;
	vq->last_avail++;
	return 1;
}

int virtq_chain_at(struct virtq *vq, uint16_t head, struct virtq_chain *c,
		   const char **why)
{
	if (vq->dma && vq->ready && refresh_rings(vq, why) < 0)
		return -EINVAL;
	if (!vq->ready) {
		*why = "queue not ready";
		return -EINVAL;
	}
	return walk_chain(vq, head, c, why);
}

uint16_t virtq_avail_idx(const struct virtq *vq)
{
	const uint8_t *av = avail(vq);

	return av ? load16(av + AVAIL_IDX) : 0;
}

uint16_t virtq_used_idx_in_ring(const struct virtq *vq)
{
	const uint8_t *u = used(vq);

	return u ? load16(u + USED_IDX) : 0;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	uint8_t *u = used(vq);
	uint8_t *e;

	if (!u)
		return;
	e = u + USED_RING + 8 * (vq->used_idx % vq->size);
	memcpy(e, &(uint32_t){ head }, 4);
	memcpy(e + 4, &written, 4);
	vq->used_idx++;
	/* The element must be visible before the index that publishes it. */
	store16(u + USED_IDX, vq->used_idx);
	guest_mem_mark_dirty(vq->mem, u, USED_RING);
	guest_mem_mark_dirty(vq->mem, e, 8);
	/* Only after the last write through the chain's translations. */
	if (vq->dma_tok && head < vq->dma_tok_n && vq->dma_tok[head]) {
		vq->dma->end(vq->dma->opaque, vq->dma_tok[head]);
		vq->dma_tok[head] = 0;
	}
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, new = vq->used_idx, event;
	uint8_t *av = avail(vq);
	bool valid = vq->signalled_valid;

	if (!av)
		return false;
	/* Our used-idx store must be visible before we read the driver's
	 * suppression state, or both sides could skip the notification. */
	atomic_thread_fence(memory_order_seq_cst);
	vq->signalled_used = new;
	vq->signalled_valid = true;
	if (!vq->event_idx)
		return !(load16(av + AVAIL_FLAGS) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	event = load16(av + AVAIL_RING + 2 * vq->size);
	/* vring_need_event(): did used_idx cross used_event since the last
	 * notification? */
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

static void set_avail_event(struct virtq *vq, uint16_t v)
{
	if (!vq->event_idx || !used(vq))
		return;
	store16(used(vq) + USED_RING + 8 * vq->size, v);
	guest_mem_mark_dirty(vq->mem, used(vq) + USED_RING + 8 * vq->size, 2);
	atomic_thread_fence(memory_order_seq_cst);
}

void virtq_update_avail_event(struct virtq *vq)
{
	set_avail_event(vq, vq->last_avail);
}

void virtq_hold_kicks(struct virtq *vq)
{
	/* vring_need_event(event, new, old) is (new - event - 1) < (new -
	 * old): with event = old - 1 it is false for the next buffer. */
	set_avail_event(vq, (uint16_t)(vq->last_avail - 1));
}

static uint32_t chain_copy(const struct virtq_chain *c, bool write,
			   uint32_t off, uint8_t *buf, uint32_t len)
{
	int first = write ? c->nr_read : 0;
	int last = write ? c->nr_read + c->nr_write : c->nr_read;
	uint32_t done = 0;

	for (int i = first; i < last && done < len; i++) {
		const struct virtq_seg *s = &c->seg[i];
		uint32_t n;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = s->len - off;
		if (n > len - done)
			n = len - done;
		if (!s->host) /* a faulted DMA segment: nothing moves */
			break;
		if (write)
			memcpy(s->host + off, buf + done, n);
		else
			memcpy(buf + done, s->host + off, n);
		done += n;
		off = 0;
	}
	return done;
}

uint32_t virtq_chain_read(const struct virtq_chain *c, uint32_t off, void *dst,
			  uint32_t len)
{
	return chain_copy(c, false, off, dst, len);
}

uint32_t virtq_chain_write(const struct virtq_chain *c, uint32_t off,
			   const void *src, uint32_t len)
{
	return chain_copy(c, true, off, (uint8_t *)src, len);
}
