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

/* *ts = CLOCK_MONOTONIC now + ms: the deadline of a timed wait on a
 * condition variable set to that clock (pthread_condattr_setclock). */
static inline void mono_deadline_ms(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

#endif
