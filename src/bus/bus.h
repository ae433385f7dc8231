/* SPDX-License-Identifier: MIT */
/*
 * Address-range dispatch for guest port I/O and MMIO exits: devices
 * register [base, base+len) with read/write callbacks; a lookup is a
 * binary search over sorted, non-overlapping ranges. Overlapping
 * registrations are refused (-EEXIST).
 *
 * Threads: ranges are registered before vCPU threads start and never
 * change while they run, so lookups take no lock. Callbacks run on the
 * vCPU thread that exited and must do their own locking.
 */
#ifndef WISP_BUS_BUS_H
#define WISP_BUS_BUS_H

#include <stdbool.h>
#include <stdint.h>

/* The cpu argument of an access made by a thread that is not a vCPU
 * (the posted-write drain, a server's buffered ring). */
#define BUS_CPU_NONE (-1)

struct bus_ops {
	/* cpu is the vCPU index whose exit is dispatched (a forwarding
	 * range picks that vCPU's request slot), or BUS_CPU_NONE; offset is
	 * relative to the registered base; len is 1..8. */
	void (*read)(void *opaque, int cpu, uint64_t offset, uint8_t *data,
		     uint32_t len);
	void (*write)(void *opaque, int cpu, uint64_t offset,
		      const uint8_t *data, uint32_t len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	struct bus_range *ranges; /* sorted by base */
	int nr, cap;
};

void bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);
int bus_register(struct bus *b, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name);
const struct bus_range *bus_find(const struct bus *b, uint64_t addr);

/* Dispatches an access. Returns false when nothing is registered there:
 * reads then see all-ones, writes are dropped (what a PC bus does). */
bool bus_read(const struct bus *b, int cpu, uint64_t addr, uint8_t *data,
	      uint32_t len);
bool bus_write(const struct bus *b, int cpu, uint64_t addr, const uint8_t *data,
	       uint32_t len);

#endif
