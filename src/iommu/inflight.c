// SPDX-License-Identifier: MIT
#include "iommu/inflight.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "util/time.h"

int dma_inflight_init(struct dma_inflight *t, uint32_t nslots)
{
	pthread_condattr_t ca;
	int ret;

	*t = (struct dma_inflight){ 0 };
	t->nslots = nslots ? nslots : DMA_INFLIGHT_SLOTS;
	t->slot = calloc(t->nslots, sizeof(*t->slot));
	if (!t->slot)
		return -ENOMEM;
	ret = pthread_condattr_init(&ca);
	/* Deadlines on the monotonic clock: a wall-clock step must not
	 * stretch or cut the bound. */
	if (!ret)
		ret = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!ret)
		ret = pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!ret) {
		ret = pthread_mutex_init(&t->lock, NULL);
		if (ret)
			pthread_cond_destroy(&t->cond);
	}
	if (ret) {
		free(t->slot);
		t->slot = NULL;
		return -ret;
	}
	return 0;
}

void dma_inflight_destroy(struct dma_inflight *t)
{
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t->slot);
	t->slot = NULL;
}

int dma_inflight_begin(struct dma_inflight *t)
{
	int tok = -1;

	pthread_mutex_lock(&t->lock);
	if (t->used < t->nslots) {
		for (uint32_t k = 0; k < t->nslots; k++) {
			uint32_t i = (t->next + k) % t->nslots;
			struct dma_inflight_slot *s = &t->slot[i];

			if (s->used)
				continue;
			s->used = true;
			s->all = false;
			s->nr = 0;
			t->used++;
			t->next = (i + 1) % t->nslots;
			tok = (int)i + 1;
			break;
		}
	}
	if (tok < 0)
		t->untracked++;
	pthread_mutex_unlock(&t->lock);
	return tok;
}

static struct dma_inflight_slot *slot_of(struct dma_inflight *t, int token)
{
	if (token < 1 || (uint32_t)token > t->nslots ||
	    !t->slot[token - 1].used)
		return NULL;
	return &t->slot[token - 1];
}

void dma_inflight_record(struct dma_inflight *t, int token, uint64_t lo,
			 uint64_t hi)
{
	struct dma_inflight_slot *s;

	if (token == 0 || token == -1 || hi < lo)
		return;
	pthread_mutex_lock(&t->lock);
	s = slot_of(t, token);
	if (s && !s->all) {
		uint8_t i;

		/* Merge with a range it touches or overlaps (a buffer's
		 * pieces, the rings). */
		for (i = 0; i < s->nr; i++)
			if (lo <= (s->hi[i] == UINT64_MAX ? s->hi[i] :
							    s->hi[i] + 1) &&
			    s->lo[i] <= (hi == UINT64_MAX ? hi : hi + 1))
				break;
		if (i < s->nr) {
			if (lo < s->lo[i])
				s->lo[i] = lo;
			if (hi > s->hi[i])
				s->hi[i] = hi;
		} else if (s->nr < DMA_INFLIGHT_RANGES) {
			s->lo[s->nr] = lo;
			s->hi[s->nr] = hi;
			s->nr++;
		} else {
			s->all = true;
		}
	}
	pthread_mutex_unlock(&t->lock);
}

void dma_inflight_end(struct dma_inflight *t, int token)
{
	struct dma_inflight_slot *s;

	pthread_mutex_lock(&t->lock);
	if (token == -1) {
		if (t->untracked)
			t->untracked--;
		pthread_cond_broadcast(&t->cond);
	} else if ((s = slot_of(t, token))) {
		bool held = s->nr || s->all;

		s->used = false;
		t->used--;
		if (held)
			pthread_cond_broadcast(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
}

/* Lock held. */
static bool busy(const struct dma_inflight *t, uint64_t lo, uint64_t hi)
{
	if (t->untracked)
		return true;
	for (uint32_t i = 0; i < t->nslots; i++) {
		const struct dma_inflight_slot *s = &t->slot[i];

		if (!s->used)
			continue;
		if (s->all)
			return true;
		for (uint8_t k = 0; k < s->nr; k++)
			if (s->lo[k] <= hi && lo <= s->hi[k])
				return true;
	}
	return false;
}

int dma_inflight_drain(struct dma_inflight *t, uint64_t lo, uint64_t hi,
		       int timeout_ms)
{
	struct timespec dl;
	int ret = 0;

	mono_deadline_ms(&dl, (uint64_t)timeout_ms);
	pthread_mutex_lock(&t->lock);
	t->drains++;
	if (t->used || t->untracked) {
		bool waited = false;

		while (busy(t, lo, hi)) {
			waited = true;
			if (pthread_cond_timedwait(&t->cond, &t->lock, &dl) ==
				    ETIMEDOUT &&
			    busy(t, lo, hi)) {
				ret = -ETIMEDOUT;
				t->timeouts++;
				break;
			}
		}
		t->waits += waited;
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

uint64_t dma_inflight_count(struct dma_inflight *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->used + t->untracked;
	pthread_mutex_unlock(&t->lock);
	return n;
}
