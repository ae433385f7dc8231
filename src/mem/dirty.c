// SPDX-License-Identifier: MIT
#include "mem/dirty.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int guest_mem_dirty_enable(struct guest_mem *m, struct err *e)
{
	uint64_t n = dirty_words(m->size);

	if (m->dirty)
		return 0;
	m->dirty = malloc(n * sizeof(uint64_t));
	if (!m->dirty)
		return err_set(e, -ENOMEM,
			       "dirty page tracking: no memory for the "
			       "bitmap of %llu MiB",
			       (unsigned long long)(m->size >> 20));
	memset(m->dirty, 0xff, n * sizeof(uint64_t));
	return 0;
}

void guest_mem_dirty_disable(struct guest_mem *m)
{
	free(m->dirty);
	m->dirty = NULL;
}

void guest_mem_dirty_all_clean(struct guest_mem *m)
{
	if (m->dirty)
		memset(m->dirty, 0, dirty_words(m->size) * sizeof(uint64_t));
}

void guest_mem_mark_dirty_slow(const struct guest_mem *m, const void *host,
			       uint64_t len)
{
	uint64_t off = (uint64_t)((const uint8_t *)host - m->host);
	uint64_t first = off >> GUEST_PAGE_SHIFT;
	uint64_t last = (off + len - 1) >> GUEST_PAGE_SHIFT;

	/* A pointer outside the mapping is a caller's bug; never let it
	 * write outside the bitmap. */
	if ((const uint8_t *)host < m->host || off + len > m->size)
		return;
	for (uint64_t p = first; p <= last; p++)
		__atomic_fetch_or(&m->dirty[p / 64], 1ULL << (p % 64),
				  __ATOMIC_RELAXED);
}

void guest_mem_dirty_collect(struct guest_mem *m, uint64_t *out)
{
	uint64_t n = dirty_words(m->size);

	if (!m->dirty)
		return;
	for (uint64_t i = 0; i < n; i++)
		out[i] |=
			__atomic_exchange_n(&m->dirty[i], 0, __ATOMIC_ACQ_REL);
}

void guest_mem_dirty_restore(struct guest_mem *m, const uint64_t *bm)
{
	uint64_t n = dirty_words(m->size);

	if (!m->dirty)
		return;
	for (uint64_t i = 0; i < n; i++)
		__atomic_fetch_or(&m->dirty[i], bm[i], __ATOMIC_RELAXED);
}
