/* SPDX-License-Identifier: MIT */
/*
 * Posted writes: guest writes to an IOREQ server's posted ranges queue in
 * KVM's coalesced-MMIO ring instead of exiting one by one. They are
 * handed to their windows on the bus, in the guest's order, before a vCPU
 * handles any other exit (so a later access cannot overtake them) and at
 * least every millisecond by the event loop's timer.
 *
 * Owns: the zone count and the flush timer; the ring itself is KVM's
 * page of vCPU 0's mapping (not unmapped here).
 * Threads: posted_drain from vCPU threads and the main loop, serialized
 * by lock; zones change on the main thread (server attach/detach).
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
/* Cheap when the ring is empty: two loads, no lock. */
void posted_drain(struct posted *p);
void posted_destroy(struct posted *p, struct event_loop *loop);

#endif
