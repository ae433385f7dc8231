/* SPDX-License-Identifier: MIT */
/*
 * seccomp filters, one per thread kind (docs/sandbox.md).
 *
 * Owns: the compiled BPF program of every kind the process prepared, the
 * process-wide mode and the test hook. May touch: libseccomp, prctl and
 * seccomp(2) on the calling thread, nothing of the VMM.
 *
 * Use: main parses --seccomp, calls sb_seccomp_prepare() before it creates
 * any thread (it compiles every table and sets no_new_privs), and each
 * thread calls sb_seccomp_enter(KIND) as the first thing it does. A filter
 * is per thread and inherited by threads and children created later, and
 * stacked filters intersect, so the install points follow thread creation
 * (see docs/sandbox.md "Install points"). Until prepare is called the mode
 * is off and enter does nothing (unit tests, fuzzers).
 */
#ifndef WISP_SANDBOX_SECCOMP_H
#define WISP_SANDBOX_SECCOMP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <seccomp.h>

#include "util/err.h"

enum sb_mode {
	SB_KILL, /* SECCOMP_RET_KILL_PROCESS: the default */
	SB_LOG, /* allowed but logged by the kernel (type=1326) */
	SB_OFF, /* no filter */
};

enum sb_kind {
	SB_VCPU, /* a vCPU thread (src/vmm/vcpu.c) */
	SB_IOTHREAD, /* an in-process device's I/O thread */
	SB_LOOP, /* the main thread from vm_run on (event loop, teardown) */
	SB_API, /* wisp-api's HTTP thread (libmicrohttpd) */
	SB_METRICS, /* wisp-api's metrics thread */
	SB_SERVER, /* a device server process (wisp-blk/rng/console/net) */
	SB_UFFD, /* the wisp-uffd page-fault handler process */
	SB_UFFD_MONITOR, /* the snapshot restore's uffd monitor thread */
	SB_NKINDS
};

/* One allowed call. Up to two argument comparisons narrow it; several
 * entries for one call are alternatives (any one allows it). */
struct sb_rule {
	int nr; /* SCMP_SYS(name) */
	unsigned int argc;
	struct scmp_arg_cmp arg[2];
	bool self_pid; /* arg 0 must equal our own pid (tgkill, kill) */
	bool efd_signal; /* arg 0 must be efd.c's timer signal */
	const char *why;
};

struct sb_table {
	const char *name;
	const struct sb_rule *rules;
	size_t n;
};

/* The tables, one file each (seccomp_*.c). */
extern const struct sb_table sb_table_vcpu, sb_table_iothread, sb_table_loop,
	sb_table_api, sb_table_metrics, sb_table_server, sb_table_uffd,
	sb_table_uffd_monitor;
/* Calls every kind needs (thread exit, memory allocation, logging). */
extern const struct sb_table sb_table_common;
/* Compiled in only in sanitizer builds: what the ASan/LSan runtime calls
 * (its exit-time leak check forks a tracer, reports read /proc). */
extern const struct sb_table sb_table_sanitizer;

const struct sb_table *sb_kind_table(enum sb_kind k);
const char *sb_kind_name(enum sb_kind k);
/* -1 if no such kind. */
int sb_kind_parse(const char *s);
/* 0, or -EINVAL (config class) for something other than kill|log|off. */
int sb_mode_parse(const char *opt, const char *s, enum sb_mode *out,
		  struct err *e);
const char *sb_mode_name(enum sb_mode m);

/*
 * Builds kind k's filter in mode m (not SB_OFF) into *out, which the
 * caller releases with seccomp_release. On failure *out is NULL.
 */
int sb_seccomp_build(enum sb_kind k, enum sb_mode m, scmp_filter_ctx *out,
		     struct err *e);
/* Distinct calls and rules (argument alternatives counted) of kind k,
 * the common and (in sanitizer builds) the sanitizer table included. */
void sb_seccomp_count(enum sb_kind k, unsigned int *calls, unsigned int *rules);
/* The table of docs/sandbox.md: kind, calls, rules, one line each. */
void sb_seccomp_dump(FILE *out);

/*
 * Compiles the filters of the kinds in mask (1u << kind) in mode m and
 * keeps them for sb_seccomp_enter; sets no_new_privs unless m is off.
 * test_kind (or NULL): the kind that calls a forbidden syscall right
 * after its filter is in (the test hook, docs/sandbox.md). Call once,
 * from the main thread, before any thread exists.
 */
int sb_seccomp_prepare(enum sb_mode m, unsigned int mask, const char *test_kind,
		       struct err *e);
/*
 * Installs kind k's prepared filter on the calling thread. Nothing if the
 * mode is off or k was not prepared. A thread that cannot be confined
 * must not go on running peer-controlled code: failing to install aborts
 * the process (the kernel refuses a valid program only when out of
 * memory).
 */
void sb_seccomp_enter(enum sb_kind k);
enum sb_mode sb_seccomp_mode(void);

/* Environment by which wisp hands its mode and test hook to the servers
 * it spawns (and the servers' default when they get no --seccomp). */
#define SB_MODE_ENV "WISP_SECCOMP"
#define SB_TEST_ENV "WISP_SECCOMP_TEST"

/* A server's main: its mode from --seccomp (or NULL) else the
 * environment, else kill. 0 or -EINVAL with a message. */
int sb_seccomp_server_mode(const char *opt, enum sb_mode *out, struct err *e);

/*
 * wisp and wisp-api: --seccomp MODE (NULL: kill) and --seccomp-test KIND
 * (NULL: none) prepared for the kinds in mask, and handed to spawned
 * servers through SB_MODE_ENV and SB_TEST_ENV.
 */
int sb_seccomp_setup(const char *mode_opt, const char *test_opt,
		     unsigned int mask, struct err *e);
/* A server (kind k): --seccomp MODE, else SB_MODE_ENV, else kill; the
 * test hook from SB_TEST_ENV. */
int sb_seccomp_server_setup(const char *mode_opt, enum sb_kind k,
			    struct err *e);
/* The kinds of the wisp and wisp-api processes. */
#define SB_WISP_KINDS                                              \
	((1u << SB_VCPU) | (1u << SB_IOTHREAD) | (1u << SB_LOOP) | \
	 (1u << SB_API) | (1u << SB_METRICS) | (1u << SB_UFFD_MONITOR))

#endif
