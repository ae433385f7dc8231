// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the uffd handshake parser wisp-uffd runs on what a
 * VMM sends (src/snapshot/uffd_map.c). Besides the sanitizers, checks
 * what a success promises: 1..max regions, page sizes powers of two of
 * at least 4096, everything aligned, no wrap, no overlap; and that an
 * encoded success parses back to the same regions.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/uffd_map.h"

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct uffd_region r[UFFD_MAP_MAX_REGIONS], back[UFFD_MAP_MAX_REGIONS];
	char buf[UFFD_MAP_MSG_MAX * 8];
	struct err e = { 0 };
	int n, m;

	n = uffd_map_parse((const char *)data, size, r, UFFD_MAP_MAX_REGIONS,
			   &e);
	if (n < 0) {
		CHECK(e.msg[0]);
		return 0;
	}
	CHECK(n >= 1 && n <= UFFD_MAP_MAX_REGIONS);
	for (int i = 0; i < n; i++) {
		uint64_t ps = r[i].page_size;

		CHECK(ps >= 4096 && !(ps & (ps - 1)));
		CHECK(r[i].size &&
		      !((r[i].base | r[i].size | r[i].offset) & (ps - 1)));
		CHECK(r[i].base + r[i].size > r[i].base);
		for (int j = 0; j < i; j++)
			CHECK(r[i].base >= r[j].base + r[j].size ||
			      r[j].base >= r[i].base + r[i].size);
	}
	m = uffd_map_encode(buf, sizeof(buf), r, n);
	if (m > 0) {
		CHECK(uffd_map_parse(buf, (size_t)m, back, UFFD_MAP_MAX_REGIONS,
				     &e) == n);
		CHECK(!memcmp(r, back, sizeof(r[0]) * (size_t)n));
	}
	return 0;
}
