/* SPDX-License-Identifier: MIT */
/*
 * Error reporting for code below main(): functions return -errno and, when
 * the caller passes a struct err, describe the failure in one line that
 * names the object and the cause ("kernel 'bzImage': bad magic 0x1234")
 * and say whose fault it is (the class). Only main() prints it (prefixed
 * with "wisp: ") and turns the class into an exit status.
 */
#ifndef WISP_UTIL_ERR_H
#define WISP_UTIL_ERR_H

#include <stddef.h>

/* Whose fault a failure is; main() maps it to the README's exit codes. */
enum err_class {
	ERR_HOST = 0, /* a host resource or syscall failed (the default) */
	ERR_CONFIG, /* the user's arguments, files or sizes are unusable */
	ERR_GUEST, /* the guest did something that ends the VM */
};

struct err {
	enum err_class cls;
	char msg[512];
};

/* Formats into e (if non-NULL), sets the class to ERR_HOST and returns
 * ret, so callers can write "return err_set(e, -EINVAL, "...", ...);". */
int err_set(struct err *e, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same with class ERR_CONFIG: the user can fix it. */
int err_config(struct err *e, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same with an explicit class. */
int err_setc(struct err *e, enum err_class cls, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Prefixes the existing message: "kernel 'x': " + old message. The class
 * is kept. */
int err_prefix(struct err *e, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
