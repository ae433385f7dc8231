// SPDX-License-Identifier: MIT
#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* Relaxed atomics: the API thread changes the level while others log; a
 * line racing with the change may use either level. */
static int cur_level = LOG_WARN;
static uint64_t dropped;

/* The sink, under sink_lock: a writer holds it across its write(), so
 * log_set_sink never closes an fd a writer is about to use. */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static bool have_sink;
static struct log_sink sink = { .fd = -1 };

void log_set_level(enum log_level lvl)
{
	__atomic_store_n(&cur_level, (int)lvl, __ATOMIC_RELAXED);
}

bool log_enabled(enum log_level lvl)
{
	return (int)lvl <= __atomic_load_n(&cur_level, __ATOMIC_RELAXED);
}

void log_set_sink(const struct log_sink *s)
{
	int old;

	pthread_mutex_lock(&sink_lock);
	old = have_sink ? sink.fd : -1;
	sink = *s;
	sink.module[sizeof(sink.module) - 1] = '\0';
	have_sink = true;
	pthread_mutex_unlock(&sink_lock);
	if (old >= 0 && old != s->fd)
		close(old);
}

uint64_t log_dropped(void)
{
	return __atomic_load_n(&dropped, __ATOMIC_RELAXED);
}

/* __FILE__ is relative to the build directory ("../src/vmm/vcpu.c"):
 * from "src/" on is the origin a reader can find in the tree. */
static const char *origin(const char *file)
{
	const char *p = strstr(file, "src/");

	return p ? p : file;
}

static bool in_module(const char *file, const char *module)
{
	size_t n = strlen(module);

	if (!n)
		return true;
	return !strncmp(file, "src/", 4) && !strncmp(file + 4, module, n) &&
	       file[4 + n] == '/';
}

static size_t sink_prefix(char *buf, size_t size, const struct log_sink *s,
			  enum log_level lvl, const char *file, int line)
{
	static const char *const names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
	char thread[17] = "?";
	struct timespec ts;
	struct tm tm;
	size_t n;
	int k;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	prctl(PR_GET_NAME, thread);
	k = snprintf(buf + n, size - n, ".%09ld [wisp:%s", ts.tv_nsec, thread);
	if (k > 0 && (size_t)k < size - n)
		n += (size_t)k;
	if (s->show_level) {
		k = snprintf(buf + n, size - n, ":%s", names[lvl]);
		if (k > 0 && (size_t)k < size - n)
			n += (size_t)k;
	}
	if (s->show_origin) {
		k = snprintf(buf + n, size - n, ":%s:%d", file, line);
		if (k > 0 && (size_t)k < size - n)
			n += (size_t)k;
	}
	k = snprintf(buf + n, size - n, "] ");
	if (k > 0 && (size_t)k < size - n)
		n += (size_t)k;
	return n;
}

void log_msg_at(enum log_level lvl, const char *file, int line, const char *fmt,
		...)
{
	/* One line stays under PIPE_BUF, so a FIFO gets it whole. */
	char msg[1024], out[1024 + 192];
	va_list ap;
	size_t n;
	int fd;

	if (lvl < LOG_ERROR || !log_enabled(lvl))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	file = origin(file);
	pthread_mutex_lock(&sink_lock);
	if (!have_sink) {
		pthread_mutex_unlock(&sink_lock);
		fprintf(stderr, "wisp: %s\n", msg);
		return;
	}
	if (!in_module(file, sink.module)) {
		pthread_mutex_unlock(&sink_lock);
		return;
	}
	n = sink_prefix(out, sizeof(out), &sink, lvl, file, line);
	n += (size_t)snprintf(out + n, sizeof(out) - n, "%s\n", msg);
	if (n >= sizeof(out)) {
		n = sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	fd = sink.fd >= 0 ? sink.fd : STDERR_FILENO;
	/* The fd is non-blocking (the API opens it so): a FIFO nobody
	 * drains costs a line, never a stalled vCPU. */
	if (write(fd, out, n) != (ssize_t)n)
		__atomic_fetch_add(&dropped, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&sink_lock);
}
