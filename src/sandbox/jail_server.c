// SPDX-License-Identifier: MIT
/* The jail of a device server that wisp spawned (jail.h). */
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/jail.h"

/* A server holds its socket, its device's file, guest memory, a few
 * eventfds per vCPU and an io_uring: far below this. */
#define SERVER_NOFILE 256

/* Sanitizer builds read /proc/self (maps, the leak checker's thread
 * list, the symbolizer): they get a /proc of the server's own PID
 * namespace. Release and static builds get none. */
#if defined(__SANITIZE_ADDRESS__)
#define SERVER_PROC true
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SERVER_PROC true
#endif
#endif
#ifndef SERVER_PROC
#define SERVER_PROC false
#endif

static int parse_id(const char *key, const char *v, unsigned *out,
		    struct err *e)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (!*v || *end || errno || n >= 0xffffffffUL || v[0] == '-' ||
	    v[0] == '+' || v[0] == ' ')
		return err_config(e, -EINVAL, "--jail: %s='%s': not an id", key,
				  v);
	*out = (unsigned)n;
	return 0;
}

int jail_server_parse(const char *spec, struct jail_server *out, struct err *e)
{
	struct jail_server js = { 0 };
	bool have_uid = false, have_gid = false, have_userns = false,
	     have_net = false;
	char buf[128], *save = NULL;
	int ret;

	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf))
		return err_config(e, -EINVAL, "--jail '%s': too long", spec);
	for (char *kv = strtok_r(buf, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		unsigned id = 0;

		if (!v)
			return err_config(e, -EINVAL,
					  "--jail: '%s' is not KEY=VALUE", kv);
		*v++ = 0;
		if (!strcmp(kv, "uid") && !have_uid) {
			ret = parse_id(kv, v, &id, e);
			if (ret)
				return ret;
			js.uid = id;
			have_uid = true;
		} else if (!strcmp(kv, "gid") && !have_gid) {
			ret = parse_id(kv, v, &id, e);
			if (ret)
				return ret;
			js.gid = id;
			have_gid = true;
		} else if (!strcmp(kv, "userns") && !have_userns &&
			   !strcmp(v, "on")) {
			js.userns = true;
			have_userns = true;
		} else if (!strcmp(kv, "net") && !have_net &&
			   (!strcmp(v, "on") || !strcmp(v, "off"))) {
			js.keep_net = !strcmp(v, "off");
			have_net = true;
		} else {
			return err_config(e, -EINVAL,
					  "--jail: unknown, repeated or bad "
					  "'%s=%s'",
					  kv, v);
		}
	}
	if (have_uid != have_gid || have_uid == have_userns)
		return err_config(e, -EINVAL,
				  "--jail '%s': give uid= and gid=, or "
				  "userns=on",
				  spec);
	js.set_ids = have_uid;
	*out = js;
	return 0;
}

int jail_server_format(const struct jail_server *js, char *buf, size_t size)
{
	int n;

	if (js->set_ids)
		n = snprintf(buf, size, "uid=%u,gid=%u%s", (unsigned)js->uid,
			     (unsigned)js->gid, js->keep_net ? ",net=off" : "");
	else
		n = snprintf(buf, size, "userns=on%s",
			     js->keep_net ? ",net=off" : "");
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static bool has_sys_admin(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { 0 };

	return syscall(SYS_capget, &h, d) == 0 &&
	       (d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &
		CAP_TO_MASK(CAP_SYS_ADMIN));
}

int jail_server_enter(const struct jail_server *js, struct err *e)
{
	const struct jail_cfg cfg = {
		.proc = SERVER_PROC,
		.set_ids = js->set_ids,
		.uid = js->uid,
		.gid = js->gid,
		.nofile = SERVER_NOFILE,
		.hostname = "wisp-server",
	};
	int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;

	if (!js->keep_net)
		flags |= CLONE_NEWNET;
	/* userns=on: wisp cloned us into a user namespace whose
	 * capabilities we hold (as its root when wisp could map our ids,
	 * as ambient ones when it could not). Without them nothing below
	 * works: say why. */
	if (js->userns && !has_sys_admin())
		return err_set(e, -EPERM,
			       "jail: no capabilities in the user namespace "
			       "wisp made (not started by wisp?)");
	if (unshare(flags) < 0)
		return err_set(e, -errno, "jail: unshare namespaces: %s",
			       strerror(errno));
	return jail_enter(&cfg, e);
}
