/* SPDX-License-Identifier: MIT */
/*
 * Token buckets with Firecracker's semantics: a bucket of `size` tokens
 * refills linearly from empty to full in `refill_ms`, plus an optional
 * `one_time_burst` spent first and never refilled. A request larger than
 * the bucket goes through when the bucket is full and leaves it in debt
 * (the next requests wait until the debt is paid back), so a frame larger
 * than the bucket is slowed down, not refused forever.
 *
 * Pure arithmetic on a caller-supplied monotonic time in nanoseconds, so
 * the tests control time; no locking (the owner's lock covers it).
 */
#ifndef WISP_DEVICES_NET_RATELIMIT_H
#define WISP_DEVICES_NET_RATELIMIT_H

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

#endif
