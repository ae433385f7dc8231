/* SPDX-License-Identifier: MIT */
/*
 * wisp jail (docs/jail.md), in the manner of Firecracker's jailer:
 *
 *   wisp jail --id ID --chroot-base DIR --uid U --gid G [--exec-file PATH]
 *             [--netns PATH | --no-netns] [--cgroup-parent PATH]
 *             [--cgroup KEY=VALUE]... [--rlimit files=N,memory=BYTES]
 *             -- ARGS...
 *
 * builds DIR/NAME/ID/root (NAME: the executable's file name, "wisp" by
 * default), links the executable and the device nodes a VM needs into
 * it, optionally places itself in a cgroup v2 group with limits, enters
 * new mount, PID, IPC, UTS and network namespaces and starts the
 * executable jailed (jail.h) as PID 1 of the new PID namespace with
 * ARGS. It waits for it, passes SIGTERM, SIGINT and SIGHUP on and exits
 * with its status. It owns the directory it builds (left in place, as
 * the user's files are in it) and its cgroup (left, like Firecracker's).
 */
#ifndef WISP_SANDBOX_JAIL_CMD_H
#define WISP_SANDBOX_JAIL_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

#define JAIL_MAX_CGROUP 16

struct jail_cmd {
	const char *id;
	const char *chroot_base;
	const char *exec_file; /* NULL: this wisp binary */
	uid_t uid;
	gid_t gid;
	const char *netns; /* join this network namespace */
	bool no_netns; /* stay in ours */
	const char *cgroup_parent; /* NULL: "wisp" (when --cgroup given) */
	int nr_cgroup;
	const char *cgroup_key[JAIL_MAX_CGROUP];
	const char *cgroup_value[JAIL_MAX_CGROUP];
	uint64_t nofile, memory; /* 0: unchanged */
	char **args; /* NULL-terminated, after "--" */
};

/* Creates ROOT/.../ID if needed and moves pid into it after writing each
 * KEY=VALUE into the group's KEY file; nothing when no --cgroup option
 * was given. */
int jail_cgroup_place(const struct jail_cmd *c, pid_t pid, struct err *e);

/* The whole command; argv[0] is "jail". Returns the exit code. */
int jail_cmd_main(int argc, char **argv);

#endif
