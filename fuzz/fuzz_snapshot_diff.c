// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for Diff snapshots: the SNAP_SEC_DIFF decoder and
 * snap_diff_merge(), which is what `wisp snapshot-merge` runs on a state
 * file and two memory files the user hands it.
 *
 * The first input byte chooses how the rest becomes a state file: as it
 * is (bit 0: the parser's checks, CRCs included, see arbitrary bytes), or
 * as records (u8 type, u16 little-endian length, payload) written with
 * snap_writer, so the CRCs are right and the fuzzer reaches the payloads:
 * the memory section's size and the Diff bitmap. Bit 1 sizes both memory
 * files from the memory section (when it asks for at most MAX_RAM)
 * instead of RAM bytes, so size mismatches and sizes that are not whole
 * pages reach the merge as well as matching ones.
 *
 * Checks: every failure carries a message; a merge that succeeds wrote a
 * state that parses, holds every section but the Diff's, and a base file
 * whose pages are the Diff's where the bitmap says so and untouched
 * (zero) everywhere else.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snapshot/diff.h"
#include "snapshot/format.h"
#include "util/le.h"

#define CHECK(cond)                                                       \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr,                                   \
				"fuzz_snapshot_diff: check failed: %s\n", \
				#cond);                                   \
			abort();                                          \
		}                                                         \
	} while (0)

#define PAGE 4096u
#define RAM (16u * PAGE)
#define MAX_RAM (64u * PAGE)

static int state_fd = -1, diff_fd = -1, base_fd = -1;
static char dir[64], state_path[64], diff_path[64], base_path[64], out_path[96];
static uint8_t page_buf[PAGE];

/* libFuzzer ends with exit(): leave no directory behind. */
static void cleanup(void)
{
	unlink(out_path);
	rmdir(dir);
}

static void setup(void)
{
	if (state_fd >= 0)
		return;
	state_fd = memfd_create("state", MFD_CLOEXEC);
	diff_fd = memfd_create("diff", MFD_CLOEXEC);
	base_fd = memfd_create("base", MFD_CLOEXEC);
	strcpy(dir, "/tmp/fuzz-snapshot-diff.XXXXXX");
	CHECK(state_fd >= 0 && diff_fd >= 0 && base_fd >= 0 && mkdtemp(dir));
	snprintf(state_path, sizeof(state_path), "/proc/self/fd/%d", state_fd);
	snprintf(diff_path, sizeof(diff_path), "/proc/self/fd/%d", diff_fd);
	snprintf(base_path, sizeof(base_path), "/proc/self/fd/%d", base_fd);
	snprintf(out_path, sizeof(out_path), "%s/merged.state", dir);
	atexit(cleanup);
}

static void put_file(int fd, const void *p, size_t n)
{
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, p, n, 0) == (ssize_t)n);
}

/* The Diff's memory file: page p filled with p + 1; the base: zeros. */
static void put_mem(uint64_t size)
{
	CHECK(ftruncate(diff_fd, 0) == 0 && ftruncate(base_fd, 0) == 0);
	CHECK(ftruncate(diff_fd, (off_t)size) == 0 &&
	      ftruncate(base_fd, (off_t)size) == 0);
	for (uint64_t p = 0; p < size / PAGE; p++) {
		memset(page_buf, (int)(p + 1), PAGE);
		CHECK(pwrite(diff_fd, page_buf, PAGE, (off_t)(p * PAGE)) ==
		      PAGE);
	}
}

/* The state as records written with correct CRCs. */
static int build(struct snap_writer *sw, const uint8_t *p, size_t n,
		 struct err *e)
{
	while (n >= 3) {
		uint32_t type = p[0];
		size_t len = le16(p + 1);

		p += 3;
		n -= 3;
		if (len > n)
			len = n;
		snap_section_begin(sw, type);
		ser_bytes(&sw->w, p, len);
		snap_section_end(sw);
		p += len;
		n -= len;
	}
	return snap_writer_finish(sw, e);
}

/* After a merge that succeeded: the output and the base are right. */
static void check_merged(const struct snap_file *in, const uint8_t *bm,
			 uint64_t size)
{
	static struct snap_file out;
	struct err e = { 0 };
	uint8_t *buf = NULL;
	size_t len;
	int want = 0;

	CHECK(snap_read_file(out_path, &buf, &len, &e) == 0);
	CHECK(snap_parse(&out, buf, len, &e) == 0);
	for (int i = 0; i < in->nr; i++)
		want += in->sec[i].type != SNAP_SEC_DIFF;
	CHECK(out.nr == want);
	for (int i = 0, j = 0; i < in->nr; i++) {
		if (in->sec[i].type == SNAP_SEC_DIFF)
			continue;
		CHECK(out.sec[j].type == in->sec[i].type &&
		      out.sec[j].len == in->sec[i].len &&
		      !memcmp(out.sec[j].data, in->sec[i].data,
			      in->sec[i].len));
		j++;
	}
	free(buf);
	for (uint64_t p = 0; p < size / PAGE; p++) {
		int v = (le64(bm + p / 64 * 8) >> (p % 64) & 1) ? (int)(p + 1) :
								  0;

		CHECK(pread(base_fd, page_buf, PAGE, (off_t)(p * PAGE)) ==
		      PAGE);
		for (unsigned i = 0; i < PAGE; i++)
			CHECK(page_buf[i] == (uint8_t)v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct snap_file f;
	struct snap_writer sw;
	struct err e = { 0 };
	const struct snap_section *mem, *diff;
	const uint8_t *file, *bm = NULL;
	uint64_t ram = RAM, claimed = 0;
	size_t len;
	int pos = 0, ret;

	if (!size)
		return 0;
	setup();
	snap_writer_init(&sw);
	if (data[0] & 1) {
		file = data + 1;
		len = size - 1;
	} else {
		if (build(&sw, data + 1, size - 1, &e)) {
			/* More sections than a state file may have. */
			CHECK(sw.nr > SNAP_MAX_SECTIONS && e.msg[0]);
			goto out;
		}
		file = sw.w.p;
		len = sw.w.len;
	}
	ret = snap_parse(&f, file, len, &e);
	if (ret) {
		CHECK(e.cls == ERR_CONFIG && e.msg[0]);
		goto out;
	}
	mem = snap_next(&f, &pos, SNAP_SEC_MEMORY);
	pos = 0;
	diff = snap_next(&f, &pos, SNAP_SEC_DIFF);
	if (mem && mem->len == 8)
		claimed = le64(mem->data);
	if ((data[0] & 2) && claimed <= MAX_RAM)
		ram = claimed;
	/* The decoder alone, against the size the state claims. */
	if (diff && claimed) {
		struct err de = { 0 };

		if (snap_diff_decode(diff->data, diff->len, claimed, &bm, &de))
			CHECK(de.cls == ERR_CONFIG && de.msg[0]);
		else
			CHECK(bm == diff->data + 16 &&
			      diff->len == 16 + (claimed / PAGE + 63) / 64 * 8);
	}
	put_file(state_fd, file, len);
	put_mem(ram);
	unlink(out_path);
	memset(&e, 0, sizeof(e));
	ret = snap_diff_merge(state_path, diff_path, base_path, out_path, &e);
	if (ret) {
		CHECK(ret < 0 && e.msg[0]);
		CHECK(access(out_path, F_OK) != 0);
		goto out;
	}
	/* Merged: so both sections were there and right for this RAM. */
	CHECK(mem && diff && claimed == ram);
	CHECK(snap_diff_decode(diff->data, diff->len, ram, &bm, &e) == 0);
	check_merged(&f, bm, ram);
out:
	snap_writer_free(&sw);
	return 0;
}
