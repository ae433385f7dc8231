// SPDX-License-Identifier: MIT
#include "iommu/ioasid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iommu/registry.h"

#define MAX_NOTIFY 4

struct ioasid_entry {
	struct ioasid_entry *next;
	uint32_t id; /* global */
	uint32_t local; /* IOASID_INVALID: not bound to a local ID */
	uint32_t refs;
	void *priv;
};

struct ioasid_set {
	struct ioasid_sys *sys;
	struct ioasid_set *next;
	uint32_t token;
	uint32_t quota, used;
	uint32_t local_min, local_max;
	struct ioasid_entry *entries; /* at most quota of them */
	struct ioasid_notifier {
		ioasid_free_fn fn;
		void *opaque;
	} notify[MAX_NOTIFY];
	int nr_notify;
};

int ioasid_sys_init(struct ioasid_sys *sys, const struct ioasid_sys_config *c,
		    struct err *e)
{
	uint64_t n;

	memset(sys, 0, sizeof(*sys));
	if (c->id_min > c->split || c->split > c->id_max)
		return err_config(e, -EINVAL,
				  "IOASID space: need min %u <= split %u <= "
				  "max %u",
				  c->id_min, c->split, c->id_max);
	if (c->id_max == IOASID_INVALID)
		return err_config(e, -EINVAL,
				  "IOASID space: max %u is reserved",
				  c->id_max);
	if (!c->capacity)
		return err_config(e, -EINVAL, "IOASID space: capacity 0");
	n = (uint64_t)c->id_max - c->split + 1;
	sys->bitmap = calloc((size_t)((n + 63) / 64), sizeof(uint64_t));
	if (!sys->bitmap)
		return err_set(e, -ENOMEM, "IOASID space: out of memory");
	sys->cfg = *c;
	pthread_mutex_init(&sys->lock, NULL);
	return 0;
}

static bool bit_test(const struct ioasid_sys *s, uint32_t id)
{
	uint32_t i = id - s->cfg.split;

	return s->bitmap[i / 64] & (1ULL << (i % 64));
}

static void bit_flip(struct ioasid_sys *s, uint32_t id, bool on)
{
	uint32_t i = id - s->cfg.split;

	if (on)
		s->bitmap[i / 64] |= 1ULL << (i % 64);
	else
		s->bitmap[i / 64] &= ~(1ULL << (i % 64));
}

/* A free global ID in [lo, hi] (inside the global range), held for this
 * process and registered host-wide. Locked. */
static int claim_global(struct ioasid_sys *s, uint32_t lo, uint32_t hi,
			uint32_t *out)
{
	uint64_t span = (uint64_t)hi - lo + 1;
	uint64_t start;

	if (s->used >= s->cfg.capacity)
		return -ENOSPC;
	/* Next fit: IDs freed a moment ago are reused last, which keeps a
	 * stale user from hitting a recycled address space. */
	start = s->cursor >= lo - s->cfg.split &&
				s->cursor <= hi - s->cfg.split ?
			s->cursor - (lo - s->cfg.split) :
			0;
	for (uint64_t k = 0; k < span; k++) {
		uint32_t id = lo + (uint32_t)((start + k) % span);

		if (bit_test(s, id))
			continue;
		if (s->cfg.registry &&
		    ioasid_registry_claim(s->cfg.registry, id))
			continue; /* another process holds it */
		bit_flip(s, id, true);
		s->used++;
		s->cursor = id - s->cfg.split + 1;
		*out = id;
		return 0;
	}
	return -ENOSPC;
}

static void release_global(struct ioasid_sys *s, uint32_t id)
{
	bit_flip(s, id, false);
	s->used--;
	if (s->cfg.registry)
		ioasid_registry_release(s->cfg.registry, id);
}

int ioasid_set_create(struct ioasid_sys *sys, uint32_t quota,
		      uint32_t local_min, uint32_t local_max,
		      struct ioasid_set **out, struct err *e)
{
	struct ioasid_set *set;

	*out = NULL;
	if (!quota)
		return err_config(e, -EINVAL, "IOASID set: quota 0");
	if (local_min <= local_max &&
	    (local_min < sys->cfg.id_min || local_max >= sys->cfg.split))
		return err_config(e, -ERANGE,
				  "IOASID set: local range [%u, %u] outside "
				  "[%u, %u)",
				  local_min, local_max, sys->cfg.id_min,
				  sys->cfg.split);
	set = calloc(1, sizeof(*set));
	if (!set)
		return err_set(e, -ENOMEM, "IOASID set: out of memory");
	set->sys = sys;
	set->quota = quota;
	set->local_min = local_min;
	set->local_max = local_max;
	pthread_mutex_lock(&sys->lock);
	set->token = ++sys->next_set_token;
	set->next = sys->sets;
	sys->sets = set;
	pthread_mutex_unlock(&sys->lock);
	*out = set;
	return 0;
}

static struct ioasid_entry **find_slot(struct ioasid_set *set, uint32_t id)
{
	for (struct ioasid_entry **p = &set->entries; *p; p = &(*p)->next)
		if ((*p)->id == id)
			return p;
	return NULL;
}

static struct ioasid_entry *find_local(struct ioasid_set *set, uint32_t local)
{
	for (struct ioasid_entry *en = set->entries; en; en = en->next)
		if (en->local == local)
			return en;
	return NULL;
}

static int alloc_locked(struct ioasid_set *set, uint32_t lo, uint32_t hi,
			uint32_t local, void *priv, uint32_t *out)
{
	struct ioasid_sys *s = set->sys;
	struct ioasid_entry *en;
	uint32_t id;
	int ret;

	if (set->used >= set->quota)
		return -EDQUOT;
	en = calloc(1, sizeof(*en));
	if (!en)
		return -ENOMEM;
	ret = claim_global(s, lo, hi, &id);
	if (ret) {
		free(en);
		return ret;
	}
	en->id = id;
	en->local = local;
	en->refs = 1;
	en->priv = priv;
	en->next = set->entries;
	set->entries = en;
	set->used++;
	*out = id;
	return 0;
}

int ioasid_alloc(struct ioasid_set *set, uint32_t min, uint32_t max, void *priv,
		 uint32_t *out)
{
	struct ioasid_sys *s = set->sys;
	uint32_t lo = min > s->cfg.split ? min : s->cfg.split;
	uint32_t hi = max < s->cfg.id_max ? max : s->cfg.id_max;
	int ret;

	*out = IOASID_INVALID;
	if (min > max || lo > hi)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	ret = alloc_locked(set, lo, hi, IOASID_INVALID, priv, out);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ioasid_bind_local(struct ioasid_set *set, uint32_t local, void *priv,
		      uint32_t *global_out)
{
	struct ioasid_sys *s = set->sys;
	int ret;

	*global_out = IOASID_INVALID;
	if (set->local_min > set->local_max || local < set->local_min ||
	    local > set->local_max)
		return -ERANGE;
	pthread_mutex_lock(&s->lock);
	if (find_local(set, local))
		ret = -EEXIST;
	else
		ret = alloc_locked(set, s->cfg.split, s->cfg.id_max, local,
				   priv, global_out);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ioasid_local_to_global(struct ioasid_set *set, uint32_t local,
			   uint32_t *global)
{
	struct ioasid_entry *en;
	int ret = -ENOENT;

	pthread_mutex_lock(&set->sys->lock);
	en = local == IOASID_INVALID ? NULL : find_local(set, local);
	if (en) {
		*global = en->id;
		ret = 0;
	}
	pthread_mutex_unlock(&set->sys->lock);
	return ret;
}

int ioasid_global_to_local(struct ioasid_set *set, uint32_t global,
			   uint32_t *local)
{
	struct ioasid_entry **p;
	int ret = -ENOENT;

	pthread_mutex_lock(&set->sys->lock);
	p = find_slot(set, global);
	if (p && (*p)->local != IOASID_INVALID) {
		*local = (*p)->local;
		ret = 0;
	}
	pthread_mutex_unlock(&set->sys->lock);
	return ret;
}

int ioasid_get(struct ioasid_set *set, uint32_t id)
{
	struct ioasid_entry **p;
	int ret = -ENOENT;

	pthread_mutex_lock(&set->sys->lock);
	p = find_slot(set, id);
	if (p) {
		ret = (*p)->refs == UINT32_MAX ? -EOVERFLOW : 0;
		if (!ret)
			(*p)->refs++;
	}
	pthread_mutex_unlock(&set->sys->lock);
	return ret;
}

static void notify(const struct ioasid_notifier *nf, int n,
		   const struct ioasid_entry *en)
{
	for (int i = 0; i < n; i++)
		nf[i].fn(nf[i].opaque, en->id, en->priv);
}

int ioasid_put(struct ioasid_set *set, uint32_t id)
{
	struct ioasid_sys *s = set->sys;
	struct ioasid_entry **p, *en = NULL;
	int n = 0;

	pthread_mutex_lock(&s->lock);
	p = find_slot(set, id);
	if (!p) {
		pthread_mutex_unlock(&s->lock);
		return -ENOENT;
	}
	if (--(*p)->refs == 0) {
		en = *p;
		*p = en->next;
		set->used--;
		release_global(s, en->id);
		n = set->nr_notify;
	}
	pthread_mutex_unlock(&s->lock);
	if (en) {
		/* Notifiers are registered before IDs are handed out and
		 * never removed, so the array is stable here. */
		notify(set->notify, n, en);
		free(en);
	}
	return 0;
}

int ioasid_find(struct ioasid_set *set, uint32_t id, void **priv)
{
	struct ioasid_entry **p;
	int ret = -ENOENT;

	pthread_mutex_lock(&set->sys->lock);
	p = find_slot(set, id);
	if (p) {
		*priv = (*p)->priv;
		ret = 0;
	}
	pthread_mutex_unlock(&set->sys->lock);
	return ret;
}

int ioasid_set_notify(struct ioasid_set *set, ioasid_free_fn fn, void *opaque)
{
	int ret = 0;

	pthread_mutex_lock(&set->sys->lock);
	if (set->nr_notify == MAX_NOTIFY) {
		ret = -ENOSPC;
	} else {
		set->notify[set->nr_notify].fn = fn;
		set->notify[set->nr_notify].opaque = opaque;
		set->nr_notify++;
	}
	pthread_mutex_unlock(&set->sys->lock);
	return ret;
}

uint32_t ioasid_set_used(const struct ioasid_set *set)
{
	uint32_t n;

	pthread_mutex_lock(&set->sys->lock);
	n = set->used;
	pthread_mutex_unlock(&set->sys->lock);
	return n;
}

void ioasid_set_destroy(struct ioasid_set *set)
{
	struct ioasid_sys *s;
	struct ioasid_entry *list;

	if (!set)
		return;
	s = set->sys;
	pthread_mutex_lock(&s->lock);
	for (struct ioasid_set **p = &s->sets; *p; p = &(*p)->next)
		if (*p == set) {
			*p = set->next;
			break;
		}
	list = set->entries;
	set->entries = NULL;
	for (struct ioasid_entry *en = list; en; en = en->next)
		release_global(s, en->id);
	set->used = 0;
	pthread_mutex_unlock(&s->lock);
	while (list) {
		struct ioasid_entry *en = list;

		list = en->next;
		notify(set->notify, set->nr_notify, en);
		free(en);
	}
	free(set);
}

void ioasid_sys_destroy(struct ioasid_sys *sys)
{
	if (!sys->bitmap)
		return;
	while (sys->sets)
		ioasid_set_destroy(sys->sets);
	pthread_mutex_destroy(&sys->lock);
	free(sys->bitmap);
	sys->bitmap = NULL;
}
