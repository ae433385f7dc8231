// SPDX-License-Identifier: MIT
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>

/* Written once by main() before any thread starts; read-only afterwards. */
static enum log_level cur_level = LOG_WARN;

void log_set_level(enum log_level lvl)
{
	cur_level = lvl;
}

bool log_enabled(enum log_level lvl)
{
	return lvl <= cur_level;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (lvl > cur_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "wisp: %s\n", buf);
}
