// SPDX-License-Identifier: MIT
#include "util/ratelimit.h"

/* One token in budget units: the refill period in nanoseconds, so that
 * elapsed_ns * size budget units are added per elapsed nanosecond. */
static __int128 unit(const struct token_bucket *tb)
{
	return (__int128)tb->refill_ms * 1000000;
}

static __int128 full(const struct token_bucket *tb)
{
	return (__int128)tb->size * unit(tb);
}

void tb_init(struct token_bucket *tb, uint64_t size, uint64_t one_time_burst,
	     uint64_t refill_ms, uint64_t now)
{
	tb->size = size;
	tb->one_time_burst = one_time_burst;
	tb->refill_ms = size ? (refill_ms ? refill_ms : 1) : 0;
	tb->burst_left = one_time_burst;
	tb->last_ns = now;
	tb->budget = full(tb);
}

static void refill(struct token_bucket *tb, uint64_t now)
{
	if (now > tb->last_ns) {
		tb->budget += (__int128)(now - tb->last_ns) * tb->size;
		if (tb->budget > full(tb))
			tb->budget = full(tb);
	}
	tb->last_ns = now;
}

uint64_t tb_consume(struct token_bucket *tb, uint64_t n, uint64_t now)
{
	__int128 need, missing;

	if (!tb->size)
		return 0;
	refill(tb, now);
	if (tb->burst_left >= n) {
		tb->burst_left -= n;
		return 0;
	}
	/* The part beyond the bucket's size cannot ever be available at
	 * once: a full bucket lets it through, in debt. */
	need = (__int128)((n - tb->burst_left) < tb->size ?
				  (n - tb->burst_left) :
				  tb->size) *
	       unit(tb);
	if (tb->budget >= need) {
		tb->budget -= (__int128)(n - tb->burst_left) * unit(tb);
		tb->burst_left = 0;
		return 0;
	}
	missing = need - tb->budget;
	/* budget grows by size units per nanosecond. */
	return (uint64_t)((missing + tb->size - 1) / tb->size);
}

uint64_t tb_available(struct token_bucket *tb, uint64_t now)
{
	if (!tb->size)
		return UINT64_MAX;
	refill(tb, now);
	return tb->burst_left +
	       (tb->budget > 0 ? (uint64_t)(tb->budget / unit(tb)) : 0);
}

void tb_refund(struct token_bucket *tb, uint64_t n)
{
	if (!tb->size)
		return;
	tb->budget += (__int128)n * unit(tb);
	if (tb->budget > full(tb))
		tb->budget = full(tb);
}

void rl_init(struct rate_limiter *rl, const struct rl_config *c, uint64_t now)
{
	static const struct rl_config none;

	if (!c)
		c = &none;
	tb_init(&rl->bw, c->bw.size, c->bw.one_time_burst, c->bw.refill_ms,
		now);
	tb_init(&rl->ops, c->ops.size, c->ops.one_time_burst, c->ops.refill_ms,
		now);
}

bool rl_active(const struct rate_limiter *rl)
{
	return rl->bw.size || rl->ops.size;
}

uint64_t rl_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops,
		    uint64_t now)
{
	uint64_t burst = rl->ops.burst_left;
	uint64_t wait = tb_consume(&rl->ops, ops, now);

	if (wait)
		return wait;
	wait = tb_consume(&rl->bw, bytes, now);
	if (wait && ops) {
		/* Undo exactly what the ops bucket gave: first its burst. */
		uint64_t from_burst = burst - rl->ops.burst_left;

		rl->ops.burst_left += from_burst;
		tb_refund(&rl->ops, ops - from_burst);
	}
	return wait;
}
