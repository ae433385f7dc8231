/* SPDX-License-Identifier: MIT */
/* Diagnostics. Until a sink is set, each line goes to stderr prefixed
 * "wisp: " (wisp run, and the API before PUT /logger). A sink (the API's
 * logger) takes the same messages in Firecracker's shape:
 *   2026-12-01T12:00:00.123456789 [wisp:THREAD:LEVEL:src/dir/file.c:42] msg
 * (UTC; LEVEL with show_level, file:line with show_origin), to its fd
 * instead of stderr, optionally only those from one subsystem (module).
 * Thread-safe: one write() per line, under a lock only the writers of
 * lines take. The level and the sink may change while threads log. */
#ifndef WISP_UTIL_LOG_H
#define WISP_UTIL_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_OFF = -1, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

#define LOG_MODULE_MAX 32

struct log_sink {
	int fd; /* -1: stderr (in the sink's format) */
	bool show_level;
	bool show_origin;
	/* "": every message; else only those whose file is under
	 * src/<module>/ (e.g. "virtio", "devices/blk"). */
	char module[LOG_MODULE_MAX];
};

void log_set_level(enum log_level lvl);
bool log_enabled(enum log_level lvl);
/* Replaces the sink; the log owns s->fd from then on (also when a later
 * call replaces it: it is closed then). */
void log_set_sink(const struct log_sink *s);
/* Lines a sink could not take (a full FIFO, a write error): dropped,
 * never waited for. */
uint64_t log_dropped(void);
void log_msg_at(enum log_level lvl, const char *file, int line, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

#define log_msg(lvl, ...) log_msg_at(lvl, __FILE__, __LINE__, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
