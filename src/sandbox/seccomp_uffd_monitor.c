// SPDX-License-Identifier: MIT
/*
 * The snapshot restore's uffd monitor thread (src/snapshot/uffd.c): it
 * polls the userfaultfd, the handler's pidfd and its socket, and takes
 * over (UFFDIO_COPY/ZEROPAGE from the memory file) when the handler
 * stops answering.
 */
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>

#include "sandbox/seccomp_rules.h"

static const struct sb_rule rules[] = {
	ALLOW(poll, "the userfaultfd, the handler's pidfd and socket"),
	ALLOW(ppoll, "the userfaultfd, the handler's pidfd and socket"),
	ALLOW(mincore, "which pages are present (a slow handler or a "
		       "stopped one)"),
	IOCTL(UFFDIO_COPY, "taking over: a page from the memory file"),
	IOCTL(UFFDIO_ZEROPAGE, "taking over: a hole of the memory file"),
	IOCTL(UFFDIO_WAKE, "waking faulting vCPUs"),
	IOCTL(UFFDIO_UNREGISTER, "taking over: the range is ours again"),
	ALLOW(pread64, "taking over: reading the memory file"),
	ALLOW(lseek, "taking over: the memory file's holes (SEEK_DATA)"),
	ALLOW(recvmsg, "the handler's socket"),
	ALLOW(recvfrom, "the handler's socket"),
	ALLOW(getrandom, "glibc's malloc randomizes its tcache"),
};

SB_TABLE(sb_table_uffd_monitor, "uffd-monitor", rules);
