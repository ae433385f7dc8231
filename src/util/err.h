/* SPDX-License-Identifier: MIT */
/*
 * Error reporting for code below main(): functions return -errno and, when
 * the caller passes a struct err, describe the failure in one line that
 * names the object and the cause ("kernel 'bzImage': bad magic 0x1234").
 * Only main() prints it (prefixed with "wisp: ") and decides to exit.
 */
#ifndef WISP_UTIL_ERR_H
#define WISP_UTIL_ERR_H

#include <stddef.h>

struct err {
	char msg[512];
};

/* Formats into e (if non-NULL) and returns ret, so callers can write
 * "return err_set(e, -EINVAL, "...", ...);". */
int err_set(struct err *e, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes the existing message: "kernel 'x': " + old message. */
int err_prefix(struct err *e, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
