// SPDX-License-Identifier: MIT
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int vset(struct err *e, enum err_class cls, int ret, const char *fmt,
		va_list ap)
{
	if (!e)
		return ret;
	e->cls = cls;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	return ret;
}

int err_set(struct err *e, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ret = vset(e, ERR_HOST, ret, fmt, ap);
	va_end(ap);
	return ret;
}

int err_config(struct err *e, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ret = vset(e, ERR_CONFIG, ret, fmt, ap);
	va_end(ap);
	return ret;
}

int err_setc(struct err *e, enum err_class cls, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ret = vset(e, cls, ret, fmt, ap);
	va_end(ap);
	return ret;
}

int err_prefix(struct err *e, int ret, const char *fmt, ...)
{
	char head[256], old[sizeof(e->msg)];
	va_list ap;

	if (!e)
		return ret;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	/* Truncation is acceptable: the head names the object, the tail
	 * only loses detail. */
	size_t hl = strnlen(head, sizeof(head));

	if (hl >= sizeof(e->msg))
		hl = sizeof(e->msg) - 1;
	memcpy(e->msg, head, hl);
	snprintf(e->msg + hl, sizeof(e->msg) - hl, "%.*s",
		 (int)(sizeof(e->msg) - hl - 1), old);
	return ret;
}
