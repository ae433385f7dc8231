/* SPDX-License-Identifier: MIT */
/*
 * The snapshot's memory file: a plain image of the guest-RAM memfd
 * (file offset = memfd offset), written sparse: only the memfd's data
 * ranges (SEEK_DATA/SEEK_HOLE) are written, so RAM the guest never
 * touched costs no disk and no time.
 */
#ifndef WISP_SNAPSHOT_MEM_DUMP_H
#define WISP_SNAPSHOT_MEM_DUMP_H

#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

/* Writes [0, size) of memfd, mapped at host, to a new file at path
 * (replaced if it exists). *written is the number of data bytes.
 * memfd -1: guest RAM is not the memfd's pages (mem_restore.h,
 * snap_mem_restore_private); every page of host is read and the all-zero
 * ones are left as holes. */
int snap_mem_dump(int memfd, const uint8_t *host, uint64_t size,
		  const char *path, uint64_t *written, struct err *e);

/* Writes len bytes of buf at offset off of fd (path names it in
 * errors), through short writes and EINTR. */
int snap_write_at(int fd, const uint8_t *buf, uint64_t len, off_t off,
		  const char *path, struct err *e);

#endif
