/* SPDX-License-Identifier: MIT */
/*
 * One I/O address space: the IOVA → GPA mappings of a virtio-iommu domain,
 * each with its permissions, kept sorted and non-overlapping. Everything in
 * a request is guest-controlled, so every operation checks its range
 * (last >= start, no wrap of the GPA side) and every allocation is bounded
 * twice: by the space's own limit of mappings and by a quota shared by all
 * the spaces of one VM (struct iova_quota). Running out is an error code,
 * never an unbounded allocation.
 *
 * Threads: none of its own; the owner (the virtio-iommu) serialises every
 * call with the lock that also guards translation.
 */
#ifndef WISP_IOMMU_IOVA_H
#define WISP_IOMMU_IOVA_H

#include <stdbool.h>
#include <stdint.h>

#define IOVA_PERM_READ 1u
#define IOVA_PERM_WRITE 2u
#define IOVA_PERM_MMIO 4u

struct iova_map {
	uint64_t start, last; /* IOVA range, inclusive */
	uint64_t phys; /* GPA of start */
	uint32_t perm;
};

/* Mapped entries held by every space of one VM. */
struct iova_quota {
	uint64_t max_total;
	uint64_t total;
};

struct iova_space {
	struct iova_map *maps; /* sorted by start, disjoint */
	uint32_t nr, cap;
	uint32_t max_maps;
	struct iova_quota *quota; /* NULL: only max_maps bounds it */
};

void iova_space_init(struct iova_space *s, uint32_t max_maps,
		     struct iova_quota *quota);
/* Drops every mapping (returning them to the quota) and the storage. */
void iova_space_fini(struct iova_space *s);

/* Adds [start, last] → phys. -EINVAL: last < start or phys + (last -
 * start) wraps; -EEXIST: overlaps a mapping (nothing changes); -ENOSPC:
 * the space's limit; -EDQUOT: the shared quota; -ENOMEM: the host. */
int iova_space_map(struct iova_space *s, uint64_t start, uint64_t last,
		   uint64_t phys, uint32_t perm);

/* Removes every mapping inside [start, last]. A mapping that straddles
 * either end would have to be split: -ERANGE and nothing is removed
 * (virtio 1.2, 5.13.6.6). Ranges with no mapping are not an error.
 * *removed (may be NULL) counts the mappings removed. */
int iova_space_unmap(struct iova_space *s, uint64_t start, uint64_t last,
		     uint32_t *removed);

/* The mapping holding iova, or NULL. */
const struct iova_map *iova_space_find(const struct iova_space *s,
				       uint64_t iova);

#endif
