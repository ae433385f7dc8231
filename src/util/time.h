/* SPDX-License-Identifier: MIT */
/* Monotonic time for deadlines and statistics (never wall-clock time). */
#ifndef WISP_UTIL_TIME_H
#define WISP_UTIL_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_ms(void)
{
	return now_ns() / 1000000ULL;
}

#endif
