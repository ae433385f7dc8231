/* SPDX-License-Identifier: MIT */
/*
 * Token buckets with Firecracker's semantics: a bucket of `size` tokens
 * refills linearly from empty to full in `refill_ms`, plus an optional
 * `one_time_burst` spent first and never refilled. A request larger than
 * the bucket goes through when the bucket is full and leaves it in debt
 * (the next requests wait until the debt is paid back), so a frame larger
 * than the bucket is slowed down, not refused forever.
 *
 * A rate limiter is Firecracker's pair of buckets, one for bytes
 * ("bandwidth") and one for operations ("ops"); a request takes from
 * both or from neither. One implementation for every device (virtio-net,
 * virtio-blk, ...).
 *
 * Pure arithmetic on a caller-supplied monotonic time in nanoseconds, so
 * the tests control time; no locking (the owner's lock covers it).
 */
#ifndef WISP_UTIL_RATELIMIT_H
#define WISP_UTIL_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct token_bucket {
	uint64_t size; /* 0: unlimited */
	uint64_t one_time_burst;
	uint64_t refill_ms;
	/* Tokens scaled by refill_ms * 1e6 (nanoseconds per refill), so
	 * refills are exact integers; negative while in debt. */
	__int128 budget;
	uint64_t burst_left;
	uint64_t last_ns;
};

/* size 0 means no limit; refill_ms must be > 0 otherwise. Starts full. */
void tb_init(struct token_bucket *tb, uint64_t size, uint64_t one_time_burst,
	     uint64_t refill_ms, uint64_t now);

/* Takes n tokens if the bucket allows it now. Returns 0 on success, else
 * the nanoseconds to wait before it will (always >= 1). */
uint64_t tb_consume(struct token_bucket *tb, uint64_t n, uint64_t now);

/* Tokens available now (burst included, 0 while in debt). */
uint64_t tb_available(struct token_bucket *tb, uint64_t now);

/* Gives back n tokens tb_consume took from the bucket (not its burst) at
 * the same time now: a request that did not go after all. */
void tb_refund(struct token_bucket *tb, uint64_t n);

/* One bucket's parameters, Firecracker's TokenBucket JSON: size 0 is no
 * limit; refill_ms is the time to refill from empty to full (0 with a
 * size: 1 ms). */
struct tb_config {
	uint64_t size, one_time_burst, refill_ms;
};

struct rl_config {
	struct tb_config bw, ops;
};

struct rate_limiter {
	struct token_bucket bw, ops;
};

/* Both buckets from c (NULL: no limits), full. */
void rl_init(struct rate_limiter *rl, const struct rl_config *c, uint64_t now);

/* Whether either bucket limits anything. */
bool rl_active(const struct rate_limiter *rl);

/* Takes bytes from the bandwidth bucket and ops from the ops bucket, both
 * or neither. Returns 0 on success, else the nanoseconds to wait before
 * trying again (>= 1). */
uint64_t rl_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops,
		    uint64_t now);

#endif
