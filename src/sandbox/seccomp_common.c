// SPDX-License-Identifier: MIT
/*
 * Calls every thread kind makes: logging, locks, memory allocation, time,
 * signal return, thread exit. Nothing here reaches outside the process
 * except write on an fd it already holds.
 */
#include <sys/prctl.h>

#include "sandbox/seccomp_rules.h"

static const struct sb_rule rules[] = {
	ALLOW(read, "eventfds, pipes and sockets the thread already holds"),
	ALLOW(write, "log lines to stderr or the logger FIFO; eventfd signals"),
	ALLOW(close, "releasing its own fds (a request's, a dead peer's)"),
	ALLOW(futex, "pthread mutexes and condition variables"),
	ALLOW(restart_syscall, "the kernel restarts an interrupted sleep"),
	ALLOW(rt_sigreturn, "returning from a signal handler (SIG_KICK, "
			    "SIGTERM in servers)"),
	ALLOW(rt_sigprocmask, "pthread_sigmask around critical sections"),
	ALLOW(clock_gettime, "monotonic time when the vDSO falls back"),
	ALLOW(clock_nanosleep, "bounded sleeps (usleep, nanosleep)"),
	ALLOW(nanosleep, "bounded sleeps"),
	ALLOW(sched_yield, "spin-waits that yield (the stop's publication)"),
	ALLOW(gettid, "eventfd timers aim at the calling thread"),
	ALLOW(getpid, "glibc's raise() and abort()"),
	ALLOW(exit, "a thread returning from its start routine"),
	ALLOW(exit_group, "the process exiting (main, or a fatal error)"),
	ALLOW(brk, "malloc"),
	MMAP_NOEXEC("malloc's arenas and large blocks; never executable"),
	MPROTECT_NOEXEC("malloc's arenas grow by mprotect; never executable"),
	ALLOW(munmap, "free of large blocks, thread stacks at exit"),
	ALLOW(mremap, "realloc of large blocks"),
	ALLOW(madvise, "free and thread exit hand pages back (MADV_DONTNEED)"),
	{ SCMP_SYS(tgkill),
	  0,
	  { { 0 } },
	  true,
	  false,
	  "signals to our own threads only: SIG_KICK, abort()" },
	{ SCMP_SYS(rt_sigaction),
	  0,
	  { { 0 } },
	  false,
	  true,
	  "efd.c installs its timer signal's handler on first use, on "
	  "whichever thread that is; that signal only" },
	ALLOW1(prctl, SB_EQ(0, PR_GET_NAME),
	       "log lines name their thread (src/util/log.c)"),
	ALLOW(preadv2, "efd.c drains eventfds with RWF_NOWAIT"),
	ALLOW(geteuid, "peer checks compare SO_PEERCRED with our euid"),
	ALLOW(getuid, "peer checks"),
	ALLOW(newfstatat, "stdio's first write on a stream stats it"),
	ALLOW(fstat, "stdio's first write on a stream stats it"),
};

SB_TABLE(sb_table_common, "common", rules);
