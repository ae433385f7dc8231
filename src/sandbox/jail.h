/* SPDX-License-Identifier: MIT */
/*
 * Jails (docs/jail.md): the Linux confinement shared by `wisp jail` and by
 * the device servers wisp spawns. A process enters a jail once, after it
 * has opened every file it will ever need: it gets its own mount
 * namespace whose root is a directory holding only what the job needs
 * (or an empty read-only tmpfs), then loses its supplementary groups,
 * its ids (when asked), every capability (bounding, ambient, effective,
 * permitted, inheritable) and the right to gain privileges again
 * (no_new_privs). This code owns nothing after it returns: it changes the
 * calling process and touches only the mount points it creates inside
 * its own, private mount namespace.
 */
#ifndef WISP_SANDBOX_JAIL_H
#define WISP_SANDBOX_JAIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

/* The uid and gid a jailed process runs as when wisp runs as root and
 * nothing else is asked: nobody / nogroup. */
#define JAIL_DEFAULT_ID 65534

struct jail_cfg {
	/* The directory that becomes "/" (bind-mounted onto itself first);
	 * NULL: a fresh, empty tmpfs, made read-only once set up. */
	const char *root;
	/* Mount a proc of the caller's PID namespace at /proc (sanitizer
	 * builds and dynamic executables need /proc/self). */
	bool proc;
	/* Bind the host's library directories read-only into the root, for
	 * a dynamically linked executable. */
	bool host_libs;
	bool set_ids; /* switch to uid/gid (setgroups, setresgid, setresuid) */
	uid_t uid;
	gid_t gid;
	uint64_t nofile; /* RLIMIT_NOFILE; 0: unchanged */
	uint64_t as_bytes; /* RLIMIT_AS; 0: unchanged */
	const char *hostname; /* in the UTS namespace; NULL: unchanged */
};

/*
 * Confines the calling process, which must already be in a mount
 * namespace of its own (unshare(CLONE_NEWNS), done by the caller with the
 * other namespaces it wants), as cfg says; every step or none that
 * matters: on failure the process may be half-jailed and must exit (the
 * callers do). The parent-death signal, which a credential change
 * clears, is set again. Returns 0 or -errno with e naming the step.
 */
int jail_enter(const struct jail_cfg *cfg, struct err *e);

/* Drops every capability from all five sets and sets no_new_privs (the
 * last part of jail_enter, for a process that keeps its file system). */
int jail_drop_caps(struct err *e);

/* ---- The jail of a spawned device server ---------------------------- */

/* What wisp passes to a server it spawns as "--jail SPEC"
 * (docs/jail.md): SPEC is "uid=U,gid=G" (wisp is root: switch to those
 * ids) or "userns=on" (wisp is not root: the server was cloned into a
 * user namespace and keeps its ids), with ",net=off" when the server
 * must stay in the host's network namespace (wisp-net's tap). */
struct jail_server {
	bool set_ids;
	uid_t uid;
	gid_t gid;
	bool userns;
	bool keep_net;
};

/* Parses SPEC strictly (unknown, repeated or missing keys are refused).
 * spec is not modified. */
int jail_server_parse(const char *spec, struct jail_server *out, struct err *e);

/* Formats the SPEC that jail_server_parse reads back into buf. */
int jail_server_format(const struct jail_server *js, char *buf, size_t size);

/* Enters the server's jail: new mount, IPC, UTS and (unless keep_net)
 * network namespaces, an empty read-only root, at most 256 open files,
 * no core dumps, the id switch, no capabilities, no_new_privs. The
 * server has opened its device's file and bound its socket before; the
 * guest-memory memfd comes later over that socket. */
int jail_server_enter(const struct jail_server *js, struct err *e);

/* mkdir -p: path (modified during the call, restored) and every missing
 * parent, with mode; 0 or -errno. Shared by the jails and wisp jail. */
int jail_mkdir_p(char *path, mode_t mode);

#endif
