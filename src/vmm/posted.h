/* SPDX-License-Identifier: MIT */
/*
 * Posted writes: guest writes to an IOREQ server's posted ranges queue in
 * KVM's coalesced-MMIO ring instead of exiting one by one. They are
 * handed to their windows on the bus, in the guest's order, before a vCPU
 * handles any other exit (so a later access cannot overtake them) and at
 * least every millisecond by the event loop's timer.
 *
 * Port zones (posted_add_pio, the 8250's THR) have one owner, whose guest
 * driver follows its writes with a read that exits (and drains): for
 * them alone the timer is a 10 ms backstop, and once no entry at all
 * went through the ring for 100 ms the owner's idle callback runs (on
 * the loop thread) so that it can drop its zone and the timer with it:
 * an idle guest costs no wake-ups.
 *
 * Owns: the zone counts and the flush timer; the ring itself is KVM's
 * page of vCPU 0's mapping (not unmapped here).
 * Threads: posted_drain from vCPU threads and the main loop, serialized
 * by lock; MMIO zones change on the main thread (server attach/detach),
 * port zones on vCPU threads (the owner's register writes) or in its idle
 * callback; zone_lock keeps the counts and the timer's period in step.
 */
#ifndef WISP_VMM_POSTED_H
#define WISP_VMM_POSTED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bus/bus.h"
#include "kvm/kvm.h"
#include "vmm/loop.h"

struct posted {
	struct kvm *kvm;
	const struct bus *pio, *mmio;
	struct kvm_coalesced_mmio_ring *ring; /* NULL: not supported */
	pthread_mutex_t lock; /* serializes drains */
	/* Set (under lock) while a drainer has taken entries off the ring
	 * and not yet handed them all to the bus: another thread that sees
	 * an empty ring then waits for it instead of overtaking it. */
	atomic_int draining;
	atomic_int nr_zones;
	atomic_int nr_pio;
	pthread_mutex_t zone_lock;
	/* Entries handed to the bus so far (under lock), and the count the
	 * timer saw last and how many ticks ago it changed (loop thread). */
	uint64_t drained, seen_drained;
	unsigned idle_ticks;
	void (*pio_idle)(void *opaque);
	void *pio_idle_opaque;
	int tfd;
	struct loop_watch watch;
};

void posted_init(struct posted *p, struct kvm *kvm, const struct bus *pio,
		 const struct bus *mmio);
/* After the vCPUs exist (the ring is mapped with vCPU 0's kvm_run). */
void posted_set_ring(struct posted *p, struct kvm_coalesced_mmio_ring *ring);
/* Adds the flush timer to the loop (armed while zones exist). */
int posted_start(struct posted *p, struct event_loop *loop, struct err *e);
int posted_add_zone(struct posted *p, uint64_t addr, uint64_t len);
int posted_del_zone(struct posted *p, uint64_t addr, uint64_t len);
/* A port zone of len bytes at port: -EOPNOTSUPP without
 * KVM_CAP_COALESCED_PIO or before the ring is set (nothing could drain
 * it). The caller keeps the guest-visible order: it registers only while
 * no side effect of a write is due before the guest's next exit. */
int posted_add_pio(struct posted *p, uint16_t port, uint32_t len);
int posted_del_pio(struct posted *p, uint16_t port, uint32_t len);
/* The port zones' owner: idle(opaque) runs on the loop thread after the
 * ring stayed empty 100 ms with only port zones registered. Set before
 * the guest runs. */
void posted_set_pio_idle(struct posted *p, void (*idle)(void *opaque),
			 void *opaque);
/* Cheap when the ring is empty: two loads, no lock. */
void posted_drain(struct posted *p);
void posted_destroy(struct posted *p, struct event_loop *loop);

#endif
