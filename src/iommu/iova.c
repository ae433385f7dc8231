// SPDX-License-Identifier: MIT
#include "iommu/iova.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void iova_space_init(struct iova_space *s, uint32_t max_maps,
		     struct iova_quota *quota)
{
	memset(s, 0, sizeof(*s));
	s->max_maps = max_maps;
	s->quota = quota;
}

void iova_space_fini(struct iova_space *s)
{
	if (s->quota)
		s->quota->total -= s->nr;
	free(s->maps);
	s->maps = NULL;
	s->nr = s->cap = 0;
}

/* Index of the first mapping whose last >= iova (nr if none). */
static uint32_t lower_bound(const struct iova_space *s, uint64_t iova)
{
	uint32_t lo = 0, hi = s->nr;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->maps[mid].last < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct iova_map *iova_space_find(const struct iova_space *s,
				       uint64_t iova)
{
	uint32_t i = lower_bound(s, iova);

	if (i < s->nr && s->maps[i].start <= iova)
		return &s->maps[i];
	return NULL;
}

int iova_space_map(struct iova_space *s, uint64_t start, uint64_t last,
		   uint64_t phys, uint32_t perm)
{
	uint32_t i;

	if (last < start || phys + (last - start) < phys)
		return -EINVAL;
	i = lower_bound(s, start);
	if (i < s->nr && s->maps[i].start <= last)
		return -EEXIST;
	if (s->nr >= s->max_maps)
		return -ENOSPC;
	if (s->quota && s->quota->total >= s->quota->max_total)
		return -EDQUOT;
	if (s->nr == s->cap) {
		/* Grows geometrically but never past max_maps, so the
		 * storage a guest can make us hold is bounded by it. */
		uint32_t cap = s->cap ? s->cap * 2 : 16;
		struct iova_map *m;

		if (cap > s->max_maps)
			cap = s->max_maps;
		m = realloc(s->maps, (size_t)cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		s->maps = m;
		s->cap = cap;
	}
	memmove(&s->maps[i + 1], &s->maps[i],
		(size_t)(s->nr - i) * sizeof(*s->maps));
	s->maps[i] = (struct iova_map){ start, last, phys, perm };
	s->nr++;
	if (s->quota)
		s->quota->total++;
	return 0;
}

int iova_space_unmap(struct iova_space *s, uint64_t start, uint64_t last,
		     uint32_t *removed)
{
	uint32_t i, j;

	if (removed)
		*removed = 0;
	if (last < start)
		return -EINVAL;
	i = lower_bound(s, start);
	/* Check both ends before removing anything. */
	if (i < s->nr && s->maps[i].start < start)
		return -ERANGE;
	for (j = i; j < s->nr && s->maps[j].start <= last; j++)
		if (s->maps[j].last > last)
			return -ERANGE;
	if (j == i)
		return 0; /* nothing in the range (maps may still be NULL) */
	memmove(&s->maps[i], &s->maps[j],
		(size_t)(s->nr - j) * sizeof(*s->maps));
	s->nr -= j - i;
	if (s->quota)
		s->quota->total -= j - i;
	if (removed)
		*removed = j - i;
	return 0;
}
