/* SPDX-License-Identifier: MIT */
/*
 * Set-up shared by the targets that give a device guest memory or count
 * their descriptors (fuzz_mmio, fuzz_standin, fuzz_vhu_back,
 * fuzz_virtq_blk and, through fuzz_virtq.h, fuzz_virtq_rng and
 * fuzz_virtq_console): the CHECK that turns a broken invariant into a
 * crash libFuzzer reports, guest RAM with guard pages on both sides, a
 * temp-file disk with a known pattern, a split virtqueue at fixed
 * addresses, and the count of open descriptors a target compares before
 * and after an input.
 *
 * Everything here is static inline so a target includes only what it
 * uses; nothing keeps state of its own except the disk's path for the
 * atexit unlink.
 */
#ifndef WISP_FUZZ_COMMON_H
#define WISP_FUZZ_COMMON_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem/guest_mem.h"
#include "util/log.h"
#include "virtio/virtqueue.h"

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "%s: check failed: %s (line %d)\n", \
				__FILE__, #cond, __LINE__);                 \
			abort();                                            \
		}                                                           \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_guard(void *addr)
{
	/* Best effort: only where nothing is mapped yet. */
	mmap(addr, 4096, PROT_NONE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
}

/* Guest RAM of size bytes with a PROT_NONE page on each side, so any
 * access a device makes outside RAM is a crash, not a silent read. */
static inline void fuzz_guest_mem(struct guest_mem *m, uint64_t size)
{
	struct err e;

	log_set_level(LOG_ERROR);
	if (guest_mem_init(m, size, &e) < 0) {
		fprintf(stderr, "fuzz: %s\n", e.msg);
		abort();
	}
	fuzz_guard(m->host - 4096);
	fuzz_guard(m->host + size);
}

static inline bool fuzz_inside(const struct guest_mem *m, const uint8_t *p,
			       uint64_t len)
{
	return p >= m->host && len <= m->size &&
	       (uint64_t)(p - m->host) <= m->size - len;
}

static char fuzz_disk_path[256];

static inline void fuzz_disk_unlink(void)
{
	if (fuzz_disk_path[0])
		unlink(fuzz_disk_path);
}

/* A temp-file disk of sectors 512-byte sectors, sector s filled with
 * byte s, in /dev/shm when it can (no disk I/O per input), removed at
 * exit. Returns its path. */
static inline const char *fuzz_disk(const char *tag, int sectors)
{
	const char *dirs[] = { "/dev/shm", getenv("TMPDIR"), "/tmp" };
	uint8_t sector[512];
	int fd = -1;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && fd < 0; i++) {
		if (!dirs[i])
			continue;
		snprintf(fuzz_disk_path, sizeof(fuzz_disk_path),
			 "%s/wisp-fuzz-%s-XXXXXX", dirs[i], tag);
		fd = mkstemp(fuzz_disk_path);
	}
	CHECK(fd >= 0);
	atexit(fuzz_disk_unlink);
	for (int s = 0; s < sectors; s++) {
		memset(sector, s, sizeof(sector));
		CHECK(pwrite(fd, sector, sizeof(sector), s * 512) == 512);
	}
	close(fd);
	return fuzz_disk_path;
}

/* A ready split queue of size entries on m with its rings at desc,
 * avail and used. */
static inline void fuzz_setup_vq(struct virtq *vq, struct guest_mem *m,
				 uint16_t size, uint64_t desc, uint64_t avail,
				 uint64_t used, bool event_idx, bool indirect)
{
	memset(vq, 0, sizeof(*vq));
	vq->size = size;
	vq->desc_gpa = desc;
	vq->avail_gpa = avail;
	vq->used_gpa = used;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->mem = m;
	vq->ready = true;
}

/* Open descriptors of this process: an input must leave as many. */
static inline int fuzz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	CHECK(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

#endif
