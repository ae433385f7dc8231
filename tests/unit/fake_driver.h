/* SPDX-License-Identifier: MIT */
/*
 * A virtio driver inside the test process: guest RAM from guest_mem_init,
 * split rings laid out by hand, feature negotiation and DRIVER_OK done the
 * way a driver does them, and a fake transport that counts interrupts.
 * Tests add chains (also malformed ones), kick, and read the used ring.
 */
#ifndef WISP_TESTS_FAKE_DRIVER_H
#define WISP_TESTS_FAKE_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "virtio/virtio.h"

#define FAKE_MEM_SIZE (16ULL << 20)
#define FAKE_HEAP_START (1ULL << 20)

struct fake_queue {
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx; /* the driver's avail->idx */
	uint16_t used_seen; /* used entries consumed by fake_get_used */
	uint16_t next_desc; /* next descriptor slot for fake_add_chain */
};

struct fake_driver {
	struct guest_mem mem;
	struct virtio_dev *d;
	int irqs, config_irqs;
	uint64_t heap;
	struct fake_queue q[VIRTIO_MAX_QUEUES];
	uint64_t queue_base; /* GPA of queue 0's area; 0: the default */
	bool shared_mem; /* mem belongs to another fake_driver */
};

struct fake_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

void fake_init(struct fake_driver *f);
/* A second driver in the same guest (two devices that share RAM, e.g. an
 * IOMMU and its endpoint): its queues from queue_base, its heap from heap.
 * owner must be destroyed after f. */
void fake_init_shared(struct fake_driver *f, const struct fake_driver *owner,
		      uint64_t queue_base, uint64_t heap);
/* Negotiates want & offered, sets up every queue with qsize entries,
 * activates and sets DRIVER_OK. */
void fake_attach(struct fake_driver *f, struct virtio_dev *d, uint64_t want,
		 uint16_t qsize);
void fake_destroy(struct fake_driver *f);

/* Guest buffer of len bytes (16-byte aligned), zeroed. */
uint64_t fake_alloc(struct fake_driver *f, uint64_t len);
void *fake_ptr(struct fake_driver *f, uint64_t gpa, uint64_t len);

void fake_set_desc(struct fake_driver *f, int q, uint16_t idx, uint64_t addr,
		   uint32_t len, uint16_t flags, uint16_t next);
/* Makes head available (ring entry + idx). */
void fake_publish(struct fake_driver *f, int q, uint16_t head);
void fake_set_avail_idx(struct fake_driver *f, int q, uint16_t idx);
/* A chain in consecutive descriptor slots, published; returns its head. */
uint16_t fake_add_chain(struct fake_driver *f, int q, const struct fake_buf *b,
			int n);
/* One descriptor pointing to an indirect table of n entries, published. */
uint16_t fake_add_indirect(struct fake_driver *f, int q,
			   const struct fake_buf *b, int n);

void fake_kick(struct fake_driver *f, int q);
/* Next used element, false if none; then sets used_event to the next
 * entry, as a driver with callbacks enabled does. */
bool fake_get_used(struct fake_driver *f, int q, uint32_t *id, uint32_t *len);
uint16_t fake_used_idx(struct fake_driver *f, int q);
void fake_set_used_event(struct fake_driver *f, int q, uint16_t v);
uint16_t fake_avail_event(struct fake_driver *f, int q);
/* NEEDS_RESET set and the device stopped. */
bool fake_broken(struct fake_driver *f);

/* A temp file of size bytes filled with a known pattern; returns the fd
 * (path in path, PATH_MAX). */
int fake_make_image(char *path, uint64_t size);
uint8_t fake_pattern(uint64_t off);

#endif
