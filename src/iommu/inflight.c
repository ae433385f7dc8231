// SPDX-License-Identifier: MIT
#include "iommu/inflight.h"

#include <errno.h>
#include <time.h>

int dma_inflight_init(struct dma_inflight *t)
{
	pthread_condattr_t ca;
	int ret;

	*t = (struct dma_inflight){ 0 };
	ret = pthread_condattr_init(&ca);
	if (ret)
		return -ret;
	/* Deadlines on the monotonic clock: a wall-clock step must not
	 * stretch or cut the bound. */
	ret = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!ret)
		ret = pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (ret)
		return -ret;
	ret = pthread_mutex_init(&t->lock, NULL);
	if (ret) {
		pthread_cond_destroy(&t->cond);
		return -ret;
	}
	return 0;
}

void dma_inflight_destroy(struct dma_inflight *t)
{
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
}

int dma_inflight_begin(struct dma_inflight *t)
{
	int tok;

	pthread_mutex_lock(&t->lock);
	tok = (int)(t->epoch & 1);
	t->count[tok]++;
	pthread_mutex_unlock(&t->lock);
	return tok + 1;
}

void dma_inflight_end(struct dma_inflight *t, int token)
{
	if (token != 1 && token != 2)
		return;
	pthread_mutex_lock(&t->lock);
	if (t->count[token - 1] && --t->count[token - 1] == 0)
		pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* Waits for count[idx] == 0 until the deadline. Lock held. */
static int wait_empty(struct dma_inflight *t, int idx,
		      const struct timespec *deadline)
{
	while (t->count[idx]) {
		int r = pthread_cond_timedwait(&t->cond, &t->lock, deadline);

		if (r == ETIMEDOUT && t->count[idx])
			return -ETIMEDOUT;
	}
	return 0;
}

int dma_inflight_drain(struct dma_inflight *t, int timeout_ms)
{
	struct timespec dl;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&t->lock);
	t->drains++;
	/* The other epoch holds requests older than the current one's (a
	 * drain that timed out left them): they began before us too. */
	ret = wait_empty(t, (int)((t->epoch + 1) & 1), &dl);
	if (!ret) {
		/* From here new requests count in the other epoch; the one
		 * closed holds exactly those that began before the flip. */
		t->epoch++;
		ret = wait_empty(t, (int)((t->epoch + 1) & 1), &dl);
	}
	if (ret)
		t->timeouts++;
	pthread_mutex_unlock(&t->lock);
	return ret;
}

uint64_t dma_inflight_count(struct dma_inflight *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count[0] + t->count[1];
	pthread_mutex_unlock(&t->lock);
	return n;
}
