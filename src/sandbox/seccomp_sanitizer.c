// SPDX-License-Identifier: MIT
/*
 * Sanitizer builds only (meson -Db_sanitize=address,...: WISP_SANITIZER):
 * what the ASan/UBSan/LSan runtime calls at run time and at exit. LSan's
 * leak check at exit clones a tracer thread that ptraces the process and
 * reads /proc/self/maps; an error report reads /proc and may exec the
 * symbolizer. Release tables never include this; the counts in
 * docs/sandbox.md are those of a release build.
 */
#include "sandbox/seccomp_rules.h"

#if defined(WISP_SANITIZER)
static const struct sb_rule rules[] = {
	ALLOW1(clone,
	       SB_EQ(0, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED),
	       "LSan's tracer: exactly the flags of its internal_clone"),
	ALLOW(ptrace, "LSan's tracer suspends and reads every thread"),
	ALLOW(wait4, "LSan waits for its tracer"),
	ALLOW(waitid, "LSan waits for its tracer"),
	ALLOW(prctl, "the tracer's PR_SET_PTRACER and PR_SET_PDEATHSIG"),
	ALLOW(open, "/proc/self/maps and friends for leak and error reports"),
	ALLOW(openat, "/proc/self/maps and friends for leak and error reports"),
	ALLOW(getdents, "/proc/self/task for the thread list"),
	ALLOW(getdents64, "/proc/self/task for the thread list"),
	ALLOW(sched_getaffinity, "the runtime's CPU count"),
	ALLOW(sigaltstack, "the runtime's signal stack per thread"),
	ALLOW(rt_sigaction, "the runtime's handlers for the tracer"),
	ALLOW(readlink, "/proc/self/exe for reports"),
	ALLOW(readlinkat, "/proc/self/exe for reports"),
	ALLOW(getrlimit, "the runtime reads its stack limits"),
	ALLOW(prlimit64, "the runtime reads its stack limits"),
	ALLOW(lseek, "reading /proc files"),
	ALLOW(pipe2, "the symbolizer's pipes"),
	ALLOW(dup2, "the symbolizer's stdio"),
	ALLOW(dup3, "the symbolizer's stdio"),
	ALLOW(execve, "the external symbolizer of an error report"),
	ALLOW(kill, "LSan's tracer stops threads"),
	ALLOW(getppid, "LSan's tracer checks its parent"),
	ALLOW(process_vm_readv, "LSan reads other threads' registers"),
	ALLOW(getuid, "the runtime's report header"),
	ALLOW(uname, "the runtime's report header"),
};

SB_TABLE(sb_table_sanitizer, "sanitizer", rules);
#endif
