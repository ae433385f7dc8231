// SPDX-License-Identifier: MIT
/* Posted writes (src/vmm/posted.c): drained in order, and a thread that
 * finds the ring empty while another thread is still handing entries to
 * the bus waits for it (else a vCPU's next access overtakes them); port
 * entries reach the port bus in the same order; a port zone needs the
 * ring. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/posted.h"

#define WIN 0x1000

static uint32_t seen[16];
static int nr_seen;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool hold_first, entered, released;

static void w(void *o, int cpu, uint64_t off, const uint8_t *d, uint32_t len)
{
	uint32_t v = 0;

	memcpy(&v, d, len < 4 ? len : 4);
	pthread_mutex_lock(&mu);
	/* A slow window: the write lands only after the test releases it. */
	if (hold_first && nr_seen == 0) {
		entered = true;
		pthread_cond_broadcast(&cv);
		while (!released)
			pthread_cond_wait(&cv, &mu);
	}
	seen[nr_seen++] = v;
	pthread_mutex_unlock(&mu);
}

static const struct bus_ops ops = { NULL, w };

static struct kvm_coalesced_mmio_ring *ring_with(int n)
{
	struct kvm_coalesced_mmio_ring *r = aligned_alloc(4096, 4096);

	memset(r, 0, 4096);
	for (int i = 0; i < n; i++) {
		struct kvm_coalesced_mmio *e = &r->coalesced_mmio[i];
		uint32_t v = (uint32_t)i + 1;

		e->phys_addr = WIN;
		e->len = 4;
		memcpy(e->data, &v, 4);
	}
	r->first = 0;
	r->last = (uint32_t)n;
	return r;
}

static void setup_posted(struct posted *p, struct bus *pio, struct bus *mmio,
			 int n)
{
	nr_seen = 0;
	hold_first = entered = released = false;
	bus_init(pio, "pio");
	bus_init(mmio, "mmio");
	assert_int_equal(bus_register(mmio, WIN, 0x1000, &ops, NULL, "w"), 0);
	posted_init(p, NULL, pio, mmio);
	posted_set_ring(p, ring_with(n));
}

static void teardown_posted(struct posted *p, struct bus *pio, struct bus *mmio)
{
	free(p->ring);
	bus_destroy(pio);
	bus_destroy(mmio);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->zone_lock);
}

static void test_in_order(void **state)
{
	struct posted p;
	struct bus pio, mmio;

	setup_posted(&p, &pio, &mmio, 5);
	posted_drain(&p);
	assert_int_equal(nr_seen, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(seen[i], i + 1);
	assert_int_equal(p.ring->first, 5);
	posted_drain(&p); /* empty: nothing more */
	assert_int_equal(nr_seen, 5);
	teardown_posted(&p, &pio, &mmio);
}

struct drainer {
	struct posted *p;
	atomic_int done;
};

static void *drain_thread(void *arg)
{
	struct drainer *d = arg;

	posted_drain(d->p);
	atomic_store(&d->done, 1);
	return NULL;
}

static void test_empty_ring_waits_for_drainer(void **state)
{
	struct posted p;
	struct bus pio, mmio;
	struct drainer a = { &p, 0 }, b = { &p, 0 };
	pthread_t ta, tb;
	struct timespec ts = { 0, 100000000 };

	/* One entry: once a has taken it the ring is empty, though the
	 * write has not reached the window yet. */
	setup_posted(&p, &pio, &mmio, 1);
	hold_first = true;
	assert_int_equal(pthread_create(&ta, NULL, drain_thread, &a), 0);
	pthread_mutex_lock(&mu);
	while (!entered)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	/* a holds entry 1 in the bus. */
	assert_int_equal(pthread_create(&tb, NULL, drain_thread, &b), 0);
	nanosleep(&ts, NULL);
	assert_int_equal(atomic_load(&b.done), 0);
	pthread_mutex_lock(&mu);
	released = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(tb, NULL);
	/* b returned only once the entry had reached the bus. */
	assert_int_equal(nr_seen, 1);
	pthread_join(ta, NULL);
	assert_int_equal(seen[0], 1);
	teardown_posted(&p, &pio, &mmio);
}

/* Port entries (the 8250's THR) go to the port bus, MMIO entries to the
 * MMIO bus, in the ring's order across both. */
static uint8_t port_seen[16];
static int nr_port_seen;

static void pw(void *o, int cpu, uint64_t off, const uint8_t *d, uint32_t len)
{
	(void)o;
	(void)len;
	assert_int_equal(cpu, BUS_CPU_NONE);
	pthread_mutex_lock(&mu);
	port_seen[nr_port_seen++] = d[0];
	seen[nr_seen++] = 0x100u | d[0];
	pthread_mutex_unlock(&mu);
}

static const struct bus_ops port_ops = { NULL, pw };

static void test_pio_entries(void **state)
{
	struct posted p;
	struct bus pio, mmio;

	(void)state;
	setup_posted(&p, &pio, &mmio, 6);
	nr_port_seen = 0;
	assert_int_equal(bus_register(&pio, 0x3f8, 1, &port_ops, NULL, "thr"),
			 0);
	for (int i = 1; i < 6; i += 2) {
		struct kvm_coalesced_mmio *e = &p.ring->coalesced_mmio[i];

		e->phys_addr = 0x3f8;
		e->len = 1;
		e->pio = 1;
		e->data[0] = (uint8_t)('a' + i);
	}
	posted_drain(&p);
	assert_int_equal(nr_seen, 6);
	assert_int_equal(nr_port_seen, 3);
	for (int i = 0; i < 6; i++)
		assert_int_equal(seen[i], (i & 1) ?
						  0x100u | (uint32_t)('a' + i) :
						  (uint32_t)i + 1);
	assert_int_equal(p.drained, 6);
	teardown_posted(&p, &pio, &mmio);
}

/* Without the ring nothing could drain a port zone: refused before KVM
 * is asked (kvm is NULL here). */
static void test_pio_zone_needs_ring(void **state)
{
	struct posted p;
	struct bus pio, mmio;

	(void)state;
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	posted_init(&p, NULL, &pio, &mmio);
	assert_int_equal(posted_add_pio(&p, 0x3f8, 1), -EOPNOTSUPP);
	assert_int_equal(atomic_load(&p.nr_pio), 0);
	posted_destroy(&p, NULL);
	bus_destroy(&pio);
	bus_destroy(&mmio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_pio_entries),
		cmocka_unit_test(test_pio_zone_needs_ring),
		cmocka_unit_test(test_empty_ring_waits_for_drainer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
