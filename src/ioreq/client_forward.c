// SPDX-License-Identifier: MIT
/*
 * Forwarding the guest's accesses to the server's window (vCPU threads,
 * shared lock held): synchronous requests through the vCPU's slot (spin,
 * then sleep on the slot's response eventfd, bounded by timeout_ms),
 * posted writes through the buffered ring, and the stand-in device while
 * detached. Also the statistics.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "ioreq/client_priv.h"
#include "util/efd.h"
#include "util/log.h"
#include "util/time.h"
#include "virtio/mmio_regs.h"
#include "virtio/standin.h"

#define MIN_SPIN_NS 20000ull
#define MAX_SPIN_NS 50000ull

void ioreq_client_cut_off(struct ioreq_client *c, struct ioreq_attachment *a)
{
	atomic_store(&c->cut_off, true);
	atomic_store(&c->dead, true);
	/* The main loop sees the hang-up and detaches. */
	shutdown(a->sock, SHUT_RDWR);
}

static uint64_t spin_budget(struct ioreq_client *c)
{
	uint64_t ewma = atomic_load_explicit(&c->ewma_ns, memory_order_relaxed);

	/* Spin for about twice the usual answer time, within [MIN, MAX]:
	 * the floor keeps one slow answer (which raises the average with
	 * its wake-up latency) from switching spinning off for good, the
	 * cap bounds what a slow server costs us per request. */
	if (ewma * 2 < MIN_SPIN_NS)
		return MIN_SPIN_NS;
	return ewma * 2 > MAX_SPIN_NS ? MAX_SPIN_NS : ewma * 2;
}

/* Returns true with *data filled (reads) once the server answered; false
 * if it is gone or did not answer in time (then it is cut off). */
static bool forward_sync(struct ioreq_client *c, struct ioreq_attachment *a,
			 int cpu, uint8_t dir, uint64_t addr, uint32_t size,
			 uint64_t *data)
{
	struct ioreq_slot *s = &a->slots[cpu];
	uint64_t t0 = now_ns(), budget = spin_budget(c), dt;
	uint64_t deadline = t0 + (uint64_t)c->cfg.timeout_ms * 1000000ull;
	uint32_t st;

	s->addr = addr;
	s->size = size;
	s->dir = dir;
	s->space = IOREQ_SPACE_MMIO;
	s->data = dir == IOREQ_DIR_WRITE ? *data : 0;
	s->seq++;
	__atomic_store_n(&s->vmm_polling, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&s->state, IOREQ_STATE_READY, __ATOMIC_SEQ_CST);
	/* A full (or server-blocked) wake counter still wakes the server;
	 * the bounded signal just cannot add to it. */
	if (!__atomic_load_n(&a->ring->server_polling, __ATOMIC_SEQ_CST))
		efd_signal(a->wake_efd);
	atomic_fetch_add(&c->st_sync, 1);

	for (;;) {
		st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
		if (st == IOREQ_STATE_IORESP_READY) {
			atomic_fetch_add(&c->st_spins_hit, 1);
			goto answered;
		}
		if (atomic_load(&c->dead))
			return false;
		if (now_ns() - t0 >= budget)
			break;
		__builtin_ia32_pause();
	}
	__atomic_store_n(&s->vmm_polling, 0, __ATOMIC_SEQ_CST);
	atomic_fetch_add(&c->st_blocks, 1);
	for (;;) {
		st = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST);
		if (st == IOREQ_STATE_IORESP_READY)
			break;
		if (atomic_load(&c->dead))
			return false;
		if (now_ns() >= deadline) {
			atomic_fetch_add(&c->st_timeouts, 1);
			log_warn("%s: server did not answer within %d ms",
				 c->name, c->cfg.timeout_ms);
			ioreq_client_cut_off(c, a);
			return false;
		}
		/* Both bounded, whatever the server did to the fd. */
		efd_wait(a->resp_efd[cpu], deadline);
		efd_drain(a->resp_efd[cpu]);
	}
answered:
	if (dir == IOREQ_DIR_READ)
		*data = s->data;
	__atomic_store_n(&s->state, IOREQ_STATE_NONE, __ATOMIC_RELEASE);
	dt = now_ns() - t0;
	atomic_store_explicit(
		&c->ewma_ns,
		(atomic_load_explicit(&c->ewma_ns, memory_order_relaxed) * 7 +
		 dt) / 8,
		memory_order_relaxed);
	return true;
}

/* Returns false when the ring is full (the caller goes synchronous). */
static bool forward_posted(struct ioreq_client *c, struct ioreq_attachment *a,
			   uint64_t addr, uint32_t size, uint64_t data)
{
	struct ioreq_ring *r = a->ring;
	struct ioreq_ring_entry *en;
	uint32_t tail, used;

	pthread_mutex_lock(&c->ring_lock);
	tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	used = a->ring_head - tail;
	if (used >= RING_ENTRIES) {
		pthread_mutex_unlock(&c->ring_lock);
		if (used > RING_ENTRIES) {
			/* tail ahead of head: the server wrote garbage. */
			log_warn("%s: buffered ring tail corrupted", c->name);
			ioreq_client_cut_off(c, a);
		}
		atomic_fetch_add(&c->st_ring_full, 1);
		return false;
	}
	en = &r->entries[a->ring_head % RING_ENTRIES];
	en->addr = addr;
	en->data = data;
	en->size = size;
	en->space = IOREQ_SPACE_MMIO;
	a->ring_head++;
	__atomic_store_n(&r->head, a->ring_head, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&c->ring_lock);
	atomic_fetch_add(&c->st_posted, 1);
	if (!__atomic_load_n(&r->server_polling, __ATOMIC_SEQ_CST))
		efd_signal(a->wake_efd);
	return true;
}

static const struct fwd_range *find_range(const struct ioreq_attachment *a,
					  uint64_t off)
{
	for (int i = 0; i < a->nr_ranges; i++)
		if (off - a->ranges[i].off < a->ranges[i].len &&
		    off >= a->ranges[i].off)
			return &a->ranges[i];
	return NULL;
}

/* vCPU i uses slot i; other threads (the VMM's posted-write drain) the
 * last slot, which the VMM reserves for them. */
static int slot_of(const struct ioreq_client *c, int cpu)
{
	return cpu < 0 ? c->cfg.nr_vcpus - 1 : cpu;
}

/* IOREQ_F_SHARED_ISR: the guest's InterruptStatus read and InterruptACK
 * write go to the word the server's transport keeps in the shared page,
 * not to the server: an interrupt then costs the guest no round trip.
 * The server may write anything there; the guest gets the defined bits.
 * True when served. */
static bool shared_isr(const struct ioreq_attachment *a, uint64_t off,
		       uint32_t len, bool read, uint64_t *v)
{
	if (!(a->features & IOREQ_F_SHARED_ISR) || len != 4)
		return false;
	if (read && off == VIRTIO_MMIO_INTERRUPT_STATUS) {
		*v = __atomic_load_n(&a->ring->isr, __ATOMIC_SEQ_CST) &
		     VIRTIO_MMIO_INT_ALL;
		__atomic_fetch_add(&a->ring->isr_reads, 1, __ATOMIC_RELAXED);
		return true;
	}
	if (!read && off == VIRTIO_MMIO_INTERRUPT_ACK) {
		__atomic_fetch_and(&a->ring->isr, ~(uint32_t)*v,
				   __ATOMIC_SEQ_CST);
		return true;
	}
	return false;
}

static void window_read(void *opaque, int cpu, uint64_t off, uint8_t *data,
			uint32_t len)
{
	struct ioreq_client *c = opaque;
	struct ioreq_attachment *a;
	uint64_t v = ~0ull;

	cpu = slot_of(c, cpu);
	pthread_rwlock_rdlock(&c->lock);
	a = c->att;
	if (a && !atomic_load(&c->dead)) {
		/* A read in flight when the server is lost completes with
		 * all-ones; later ones see the stand-in device. */
		if (shared_isr(a, off, len, true, &v))
			atomic_fetch_add(&c->st_shared_isr, 1);
		else if (cpu >= 0 && cpu < c->cfg.nr_vcpus &&
			 find_range(a, off) &&
			 forward_sync(c, a, cpu, IOREQ_DIR_READ,
				      c->cfg.window_base + off, len, &v) &&
			 c->virtio)
			virtio_standin_observe_read(&c->standin, off, v);
	} else if (c->virtio) {
		v = virtio_standin_read(&c->standin, off);
	}
	pthread_rwlock_unlock(&c->lock);
	memcpy(data, &v, len);
}

static void window_write(void *opaque, int cpu, uint64_t off,
			 const uint8_t *data, uint32_t len)
{
	struct ioreq_client *c = opaque;
	struct ioreq_attachment *a;
	const struct fwd_range *r;
	uint64_t v = 0;

	cpu = slot_of(c, cpu);
	memcpy(&v, data, len);
	pthread_rwlock_rdlock(&c->lock);
	a = c->att;
	if (!a || atomic_load(&c->dead) || cpu < 0 || cpu >= c->cfg.nr_vcpus) {
		if (c->virtio)
			virtio_standin_write(&c->standin, off, v);
		pthread_rwlock_unlock(&c->lock);
		return;
	}
	if (shared_isr(a, off, len, false, &v)) {
		atomic_fetch_add(&c->st_shared_isr, 1);
		pthread_rwlock_unlock(&c->lock);
		return;
	}
	r = find_range(a, off);
	if (r) {
		if (c->virtio)
			virtio_standin_observe_write(&c->standin, off, v);
		if (r->mode != IOREQ_RANGE_POSTED ||
		    !forward_posted(c, a, c->cfg.window_base + off, len, v))
			forward_sync(c, a, cpu, IOREQ_DIR_WRITE,
				     c->cfg.window_base + off, len, &v);
	}
	pthread_rwlock_unlock(&c->lock);
}

const struct bus_ops ioreq_window_ops = {
	.read = window_read,
	.write = window_write,
};

void ioreq_client_stats(const struct ioreq_client *c, struct ioreq_stats *s)
{
	s->sync = atomic_load(&c->st_sync);
	s->posted = atomic_load(&c->st_posted);
	s->ring_full = atomic_load(&c->st_ring_full);
	s->timeouts = atomic_load(&c->st_timeouts);
	s->spins_hit = atomic_load(&c->st_spins_hit);
	s->blocks = atomic_load(&c->st_blocks);
	s->shared_isr = atomic_load(&c->st_shared_isr);
}
