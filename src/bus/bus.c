// SPDX-License-Identifier: MIT
#include "bus/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
}

void bus_destroy(struct bus *b)
{
	free(b->ranges);
	b->ranges = NULL;
	b->nr = b->cap = 0;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name)
{
	int pos = 0;

	if (len == 0 || base + len - 1 < base)
		return -EINVAL;
	while (pos < b->nr && b->ranges[pos].base < base)
		pos++;
	/* Neighbours on both sides must not reach into the new range. */
	if (pos > 0) {
		const struct bus_range *p = &b->ranges[pos - 1];

		if (p->base + p->len - 1 >= base)
			return -EEXIST;
	}
	if (pos < b->nr && b->ranges[pos].base <= base + len - 1)
		return -EEXIST;
	if (b->nr == b->cap) {
		int cap = b->cap ? b->cap * 2 : 8;
		struct bus_range *r = realloc(b->ranges, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		b->ranges = r;
		b->cap = cap;
	}
	memmove(&b->ranges[pos + 1], &b->ranges[pos],
		(size_t)(b->nr - pos) * sizeof(b->ranges[0]));
	b->ranges[pos] = (struct bus_range){ base, len, ops, opaque, name };
	b->nr++;
	return 0;
}

const struct bus_range *bus_find(const struct bus *b, uint64_t addr)
{
	int lo = 0, hi = b->nr - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &b->ranges[mid];

		if (addr < r->base)
			hi = mid - 1;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool bus_read(const struct bus *b, int cpu, uint64_t addr, uint8_t *data,
	      uint32_t len)
{
	const struct bus_range *r = bus_find(b, addr);

	if (!r || !r->ops->read) {
		memset(data, 0xff, len);
		return r != NULL;
	}
	r->ops->read(r->opaque, cpu, addr - r->base, data, len);
	return true;
}

bool bus_write(const struct bus *b, int cpu, uint64_t addr, const uint8_t *data,
	       uint32_t len)
{
	const struct bus_range *r = bus_find(b, addr);

	if (!r)
		return false;
	if (r->ops->write)
		r->ops->write(r->opaque, cpu, addr - r->base, data, len);
	return true;
}
