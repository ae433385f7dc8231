/* SPDX-License-Identifier: MIT */
/*
 * Private to src/sandbox: the notation of the tables. ALLOW(call, why)
 * allows a call with any arguments; ALLOW1/ALLOW2 narrow it by one or two
 * argument comparisons; IOCTL(request, why) allows one ioctl request.
 */
#ifndef WISP_SANDBOX_SECCOMP_RULES_H
#define WISP_SANDBOX_SECCOMP_RULES_H

#include <linux/sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "sandbox/seccomp.h"

#define SB_CMP(a, o, x, y)                                           \
	{                                                            \
		.arg = (a), .op = (o), .datum_a = (scmp_datum_t)(x), \
		.datum_b = (scmp_datum_t)(y)                         \
	}
#define SB_EQ(a, v) SB_CMP(a, SCMP_CMP_EQ, v, 0)
/* (arg & mask) == v */
#define SB_MASK(a, mask, v) SB_CMP(a, SCMP_CMP_MASKED_EQ, mask, v)

#define ALLOW(call, why)                                        \
	{                                                       \
		SCMP_SYS(call), 0, { { 0 } }, false, false, why \
	}
#define ALLOW1(call, c0, why)                                \
	{                                                    \
		SCMP_SYS(call), 1, { c0 }, false, false, why \
	}
/* The kernel reads an ioctl request as 32 bits. */
#define IOCTL(req, why) ALLOW1(ioctl, SB_MASK(1, 0xffffffffu, req), why)
/* Memory that is never executable. */
#define MMAP_NOEXEC(why) ALLOW1(mmap, SB_MASK(2, PROT_EXEC, 0), why)
#define MPROTECT_NOEXEC(why) ALLOW1(mprotect, SB_MASK(2, PROT_EXEC, 0), why)
/* Threads only: clone with CLONE_THREAD (and so a shared address space). */
#define CLONE_THREADS(why) \
	ALLOW1(clone, SB_MASK(0, CLONE_THREAD, CLONE_THREAD), why)
#define SOCKET_UNIX(why) ALLOW1(socket, SB_EQ(0, AF_UNIX), why)

#define SB_TABLE(var, kind_name, rules)                 \
	const struct sb_table var = { kind_name, rules, \
				      sizeof(rules) / sizeof(rules[0]) }

#endif
