// SPDX-License-Identifier: MIT
#include "vmm/posted.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* linux/kvm.h sizes the coalesced ring with PAGE_SIZE. */
#define COALESCED_MAX                                      \
	((4096 - sizeof(struct kvm_coalesced_mmio_ring)) / \
	 sizeof(struct kvm_coalesced_mmio))
#define FLUSH_PERIOD_NS 1000000ULL
#define PIO_PERIOD_NS 10000000ULL
#define PIO_IDLE_TICKS 10

void posted_init(struct posted *p, struct kvm *kvm, const struct bus *pio,
		 const struct bus *mmio)
{
	memset(p, 0, sizeof(*p));
	p->kvm = kvm;
	p->pio = pio;
	p->mmio = mmio;
	p->tfd = -1;
	p->watch.fd = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->zone_lock, NULL);
}

void posted_set_ring(struct posted *p, struct kvm_coalesced_mmio_ring *ring)
{
	p->ring = ring;
}

/* zone_lock held: a vCPU adding a port zone and the main thread adding
 * an MMIO zone must not arm the timer in the wrong order. */
static void rearm_locked(struct posted *p)
{
	uint64_t period = 0;

	if (atomic_load(&p->nr_zones) > 0)
		period = FLUSH_PERIOD_NS;
	else if (atomic_load(&p->nr_pio) > 0)
		period = PIO_PERIOD_NS;
	if (p->tfd >= 0)
		loop_timer_arm(p->tfd, period);
}

static void rearm(struct posted *p)
{
	pthread_mutex_lock(&p->zone_lock);
	rearm_locked(p);
	pthread_mutex_unlock(&p->zone_lock);
}

static void on_timer(void *opaque)
{
	struct posted *p = opaque;
	uint64_t drained;
	bool idle = false;

	loop_timer_ack(p->tfd);
	posted_drain(p);
	pthread_mutex_lock(&p->lock);
	drained = p->drained;
	pthread_mutex_unlock(&p->lock);
	if (drained != p->seen_drained) {
		p->seen_drained = drained;
		p->idle_ticks = 0;
	} else if (atomic_load(&p->nr_zones) == 0 &&
		   atomic_load(&p->nr_pio) > 0 &&
		   ++p->idle_ticks >= PIO_IDLE_TICKS) {
		p->idle_ticks = 0;
		idle = true;
	}
	if (idle && p->pio_idle)
		p->pio_idle(p->pio_idle_opaque);
}

int posted_start(struct posted *p, struct event_loop *loop, struct err *e)
{
	int tfd = loop_timer_add(loop, &p->watch, on_timer, p);

	if (tfd < 0)
		return err_set(e, tfd, "posted writes: flush timer: %s",
			       strerror(-tfd));
	p->tfd = tfd;
	rearm(p);
	return 0;
}

int posted_add_zone(struct posted *p, uint64_t addr, uint64_t len)
{
	int ret;

	if (len > UINT32_MAX)
		return -EINVAL;
	ret = kvm_coalesced_mmio(p->kvm, addr, (uint32_t)len, false);
	if (!ret && atomic_fetch_add(&p->nr_zones, 1) == 0)
		rearm(p);
	return ret;
}

int posted_del_zone(struct posted *p, uint64_t addr, uint64_t len)
{
	int ret;

	if (len > UINT32_MAX)
		return -EINVAL;
	ret = kvm_coalesced_mmio(p->kvm, addr, (uint32_t)len, true);
	if (!ret && atomic_fetch_sub(&p->nr_zones, 1) == 1)
		rearm(p);
	return ret;
}

int posted_add_pio(struct posted *p, uint16_t port, uint32_t len)
{
	int ret;

	if (!p->ring)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&p->zone_lock);
	ret = kvm_coalesced_pio(p->kvm, port, len, false);
	if (!ret && atomic_fetch_add(&p->nr_pio, 1) == 0)
		rearm_locked(p);
	pthread_mutex_unlock(&p->zone_lock);
	return ret;
}

int posted_del_pio(struct posted *p, uint16_t port, uint32_t len)
{
	int ret;

	pthread_mutex_lock(&p->zone_lock);
	ret = kvm_coalesced_pio(p->kvm, port, len, true);
	if (!ret && atomic_fetch_sub(&p->nr_pio, 1) == 1)
		rearm_locked(p);
	pthread_mutex_unlock(&p->zone_lock);
	return ret;
}

void posted_set_pio_idle(struct posted *p, void (*idle)(void *opaque),
			 void *opaque)
{
	p->pio_idle = idle;
	p->pio_idle_opaque = opaque;
}

void posted_drain(struct posted *p)
{
	struct kvm_coalesced_mmio_ring *r = p->ring;

	if (!r)
		return;
	/* The ring can look empty while another thread is still handing
	 * the entries it took to their windows; a vCPU that went on would
	 * let its next access overtake them, so it waits for that drain. */
	if (__atomic_load_n(&r->first, __ATOMIC_SEQ_CST) ==
		    __atomic_load_n(&r->last, __ATOMIC_SEQ_CST) &&
	    !atomic_load(&p->draining))
		return;
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->draining, 1);
	for (;;) {
		uint32_t first = r->first;
		struct kvm_coalesced_mmio e;

		if (first == __atomic_load_n(&r->last, __ATOMIC_ACQUIRE))
			break;
		if (first >= COALESCED_MAX)
			break; /* KVM never does this; do not index past it */
		e = r->coalesced_mmio[first];
		__atomic_store_n(&r->first, (first + 1) % COALESCED_MAX,
				 __ATOMIC_SEQ_CST);
		if (e.len == 0 || e.len > sizeof(e.data))
			continue;
		p->drained++;
		bus_write(e.pio ? p->pio : p->mmio, BUS_CPU_NONE, e.phys_addr,
			  e.data, e.len);
	}
	atomic_store(&p->draining, 0);
	pthread_mutex_unlock(&p->lock);
}

void posted_destroy(struct posted *p, struct event_loop *loop)
{
	if (p->tfd >= 0) {
		loop_del(loop, &p->watch);
		close(p->tfd);
		p->tfd = -1;
	}
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->zone_lock);
}
