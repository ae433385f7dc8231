/* SPDX-License-Identifier: MIT */
/*
 * Firecracker's userfaultfd handshake message: a JSON array of
 * GuestRegionUffdMapping objects, one per guest-RAM region, sent with the
 * userfaultfd (SCM_RIGHTS) in one message. Each object has
 * base_host_virt_addr (where the VMM maps the region), size, offset (where
 * the region's bytes start in the memory file), page_size and the older
 * page_size_kib, which despite its name is in bytes too. Pure code: no
 * I/O, so the handler's parser can be fuzzed.
 */
#ifndef WISP_SNAPSHOT_UFFD_MAP_H
#define WISP_SNAPSHOT_UFFD_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Firecracker's example handlers read the message into 1024 bytes. */
#define UFFD_MAP_MSG_MAX 1024
#define UFFD_MAP_MAX_REGIONS 8

struct uffd_region {
	uint64_t base; /* base_host_virt_addr */
	uint64_t size;
	uint64_t offset;
	uint64_t page_size;
};

/* Writes the message (no NUL counted) into buf. Returns its length, or
 * -ENOSPC (does not fit in cap, or more than UFFD_MAP_MAX_REGIONS) /
 * -ENOMEM. */
int uffd_map_encode(char *buf, size_t cap, const struct uffd_region *r, int n);

/*
 * Parses a message from a peer (hostile): a non-empty array of at most
 * max objects with unsigned integer fields; page_size (or, when absent,
 * page_size_kib) must be a power of two of at least 4096, base, size and
 * offset multiples of it, size non-zero, no sum overflowing, regions not
 * overlapping in the address space. Unknown keys are ignored (newer
 * VMMs may add some). Returns the number of regions or -EINVAL with e
 * naming the field.
 */
int uffd_map_parse(const char *buf, size_t len, struct uffd_region *out,
		   int max, struct err *e);

#endif
