/* SPDX-License-Identifier: MIT */
/*
 * I/O address-space IDs (IOASIDs, PASIDs): who may hold which ID, and how
 * many. The model is the Linux IOASID series of the seed documents:
 *
 *  - one ID space per host, [id_min, id_max], split at `split`: IDs below
 *    it are LOCAL (a set chooses them itself, the guest manages them, and
 *    two sets may use the same local value), IDs from it up are GLOBAL
 *    (allocated by the host, unique among every holder on the host);
 *  - a system capacity bounds the global IDs held by this process;
 *  - sets (one per VM, one per endpoint group) each have a quota; a set
 *    sees only its own IDs (get/put/find on another set's ID: -ENOENT);
 *  - a set-private (local) ID is bound to a global ID (the guest's domain
 *    ID → the host's address space);
 *  - IDs are refcounted; when the last reference goes, the set's free
 *    notifiers run so the users of the address space (devices, servers)
 *    drop it;
 *  - optionally a host-wide registry (registry.h) makes global IDs unique
 *    across wisp processes and reclaims a crashed holder's IDs.
 *
 * Quotas are what bound what a guest can make the VMM allocate: running
 * out gives -EDQUOT (set quota) or -ENOSPC (capacity or range), which the
 * device reports to the guest (NOMEM/RANGE), never unbounded memory.
 *
 * Threads: every call takes the system lock; notifiers run with it
 * dropped, on the thread whose put freed the ID.
 */
#ifndef WISP_IOMMU_IOASID_H
#define WISP_IOMMU_IOASID_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

#define IOASID_INVALID UINT32_MAX

struct ioasid_registry;
struct ioasid_set;

struct ioasid_sys_config {
	uint32_t id_min, split, id_max; /* local [id_min, split), global
					 * [split, id_max] */
	uint32_t capacity; /* global IDs this process may hold */
	struct ioasid_registry *registry; /* NULL: process-local only */
};

struct ioasid_sys {
	struct ioasid_sys_config cfg;
	pthread_mutex_t lock;
	uint64_t *bitmap; /* global IDs held by this process */
	uint32_t used; /* global IDs held */
	uint32_t cursor; /* next-fit start, relative to split */
	struct ioasid_set *sets;
	uint32_t next_set_token;
};

/* Validates the ranges (id_min <= split <= id_max, capacity > 0) and
 * allocates the bitmap. On failure nothing is left to destroy. */
int ioasid_sys_init(struct ioasid_sys *sys, const struct ioasid_sys_config *c,
		    struct err *e);
/* Destroys every remaining set (notifiers run). */
void ioasid_sys_destroy(struct ioasid_sys *sys);

/* A set with a quota of IDs (global plus bound local ones) and its own
 * local range [local_min, local_max] inside [id_min, split) (empty when
 * local_min > local_max). On failure *out is NULL. */
int ioasid_set_create(struct ioasid_sys *sys, uint32_t quota,
		      uint32_t local_min, uint32_t local_max,
		      struct ioasid_set **out, struct err *e);
/* Frees every ID of the set whatever its refcount (a VM going away),
 * running the notifiers, then the set. */
void ioasid_set_destroy(struct ioasid_set *set);
uint32_t ioasid_set_used(const struct ioasid_set *set);

/* Called when an ID of the set is freed; priv is what alloc stored. */
typedef void (*ioasid_free_fn)(void *opaque, uint32_t id, void *priv);
/* At most 4 per set; -ENOSPC beyond. */
int ioasid_set_notify(struct ioasid_set *set, ioasid_free_fn fn, void *opaque);

/* A global ID in [min, max] ∩ the global range, refcount 1, with priv.
 * -EDQUOT: the set's quota is used up; -ENOSPC: no free ID in range or
 * the system capacity is reached; -EINVAL: empty range. */
int ioasid_alloc(struct ioasid_set *set, uint32_t min, uint32_t max, void *priv,
		 uint32_t *out);
/* Binds the set-private ID `local` (inside the set's local range, not
 * bound yet: -EEXIST) to a newly allocated global ID. */
int ioasid_bind_local(struct ioasid_set *set, uint32_t local, void *priv,
		      uint32_t *global_out);
/* Translations; -ENOENT when the set has no such ID. */
int ioasid_local_to_global(struct ioasid_set *set, uint32_t local,
			   uint32_t *global);
int ioasid_global_to_local(struct ioasid_set *set, uint32_t global,
			   uint32_t *local);

/* Refcounting, only on the set's own IDs (-ENOENT otherwise). */
int ioasid_get(struct ioasid_set *set, uint32_t id);
/* The last put frees the ID and runs the notifiers. */
int ioasid_put(struct ioasid_set *set, uint32_t id);
/* priv of the set's ID id, or -ENOENT. */
int ioasid_find(struct ioasid_set *set, uint32_t id, void **priv);

#endif
