// SPDX-License-Identifier: MIT
/* Diff snapshots without a VM: the VMM's dirty marks (every byte range
 * lands on the right pages, collect clears, restore puts them back), a
 * virtqueue's pop and push mark what the device may write (the writable
 * buffers, the used ring) and nothing it only reads; the Diff memory
 * file holds exactly the marked pages; merge writes them onto the base
 * and drops the Diff section, and refuses a file that is not a Diff, a
 * malformed section and memory files of the wrong size. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem/dirty.h"
#include "snapshot/diff.h"
#include "snapshot/format.h"
#include "util/le.h"
#include "virtio/virtqueue.h"

#define MEM (1u << 20) /* 256 pages */
#define PAGES (MEM / 4096)

static bool marked(const uint64_t *bm, unsigned int p)
{
	return bm[p / 64] >> (p % 64) & 1;
}

static void test_marks(void **state)
{
	struct guest_mem m = { 0 };
	struct err e = { 0 };
	uint64_t bm[PAGES / 64] = { 0 };

	(void)state;
	assert_int_equal(guest_mem_init(&m, MEM, &e), 0);
	/* Off: a mark is a no-op. */
	guest_mem_mark_dirty(&m, m.host, 4096);
	assert_null(m.dirty);
	assert_int_equal(guest_mem_dirty_enable(&m, &e), 0);
	/* Tracking starts with every page dirty (boot writes). */
	guest_mem_dirty_collect(&m, bm);
	for (unsigned int p = 0; p < PAGES; p++)
		assert_true(marked(bm, p));
	memset(bm, 0, sizeof(bm));
	guest_mem_dirty_collect(&m, bm);
	for (unsigned int p = 0; p < PAGES; p++)
		assert_false(marked(bm, p));
	/* One byte at the end of page 3 and the start of page 4; a range
	 * over pages 10..12; guest_mem_write marks too. */
	guest_mem_mark_dirty(&m, m.host + 4 * 4096 - 1, 2);
	guest_mem_mark_dirty(&m, m.host + 10 * 4096 + 5, 2 * 4096);
	assert_int_equal(guest_mem_write(&m, 200 * 4096, "x", 1), 0);
	/* Outside the mapping: ignored, never outside the bitmap. */
	guest_mem_mark_dirty(&m, m.host + MEM, 4096);
	guest_mem_dirty_collect(&m, bm);
	for (unsigned int p = 0; p < PAGES; p++)
		assert_int_equal(marked(bm, p), p == 3 || p == 4 ||
							(p >= 10 && p <= 12) ||
							p == 200);
	/* A failed snapshot puts them back. */
	guest_mem_dirty_restore(&m, bm);
	memset(bm, 0, sizeof(bm));
	guest_mem_dirty_collect(&m, bm);
	assert_true(marked(bm, 3) && marked(bm, 200) && !marked(bm, 5));
	guest_mem_destroy(&m);
}

static void w16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void test_virtqueue_marks(void **state)
{
	struct guest_mem m = { 0 };
	struct err e = { 0 };
	struct virtq vq = { 0 };
	struct virtq_chain *c = calloc(1, sizeof(*c));
	uint64_t bm[PAGES / 64] = { 0 };
	const char *why = NULL;
	uint8_t *d;

	(void)state;
	assert_non_null(c);
	assert_int_equal(guest_mem_init(&m, MEM, &e), 0);
	assert_int_equal(guest_mem_dirty_enable(&m, &e), 0);
	/* Rings on pages 1 (desc), 2 (avail), 3 (used); a readable buffer
	 * on page 20, a writable one across pages 30 and 31. */
	vq.size = 4;
	vq.ready = true;
	vq.mem = &m;
	vq.desc_gpa = 1 * 4096;
	vq.avail_gpa = 2 * 4096;
	vq.used_gpa = 3 * 4096;
	d = m.host + vq.desc_gpa;
	memcpy(d, &(uint64_t){ 20 * 4096 }, 8);
	memcpy(d + 8, &(uint32_t){ 16 }, 4);
	w16(d + 12, VIRTQ_DESC_F_NEXT);
	w16(d + 14, 1);
	memcpy(d + 16, &(uint64_t){ 31 * 4096 - 8 }, 8);
	memcpy(d + 24, &(uint32_t){ 16 }, 4);
	w16(d + 28, VIRTQ_DESC_F_WRITE);
	w16(m.host + vq.avail_gpa + 4, 0); /* ring[0] = head 0 */
	w16(m.host + vq.avail_gpa + 2, 1); /* avail idx */
	guest_mem_dirty_collect(&m, bm);
	memset(bm, 0, sizeof(bm));

	assert_int_equal(virtq_pop(&vq, c, &why), 1);
	guest_mem_dirty_collect(&m, bm);
	for (unsigned int p = 0; p < PAGES; p++)
		assert_int_equal(marked(bm, p), p == 30 || p == 31);
	memset(bm, 0, sizeof(bm));
	virtq_push(&vq, c->head, 16);
	guest_mem_dirty_collect(&m, bm);
	for (unsigned int p = 0; p < PAGES; p++)
		assert_int_equal(marked(bm, p), p == 3);
	free(c);
	guest_mem_destroy(&m);
}

static char dir[64];

static char *path(const char *name)
{
	static char buf[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

/* A state file with a config section, the memory section and (with bm)
 * a Diff section. */
static void write_state(const char *file, uint64_t size, const uint64_t *bm,
			const void *diff_raw, size_t diff_len)
{
	struct snap_writer sw;
	struct err e = { 0 };

	snap_writer_init(&sw);
	snap_section_begin(&sw, SNAP_SEC_CONFIG);
	ser_bytes(&sw.w, "cfg", 3);
	snap_section_end(&sw);
	snap_section_begin(&sw, SNAP_SEC_MEMORY);
	ser_u64(&sw.w, size);
	snap_section_end(&sw);
	if (bm || diff_raw) {
		snap_section_begin(&sw, SNAP_SEC_DIFF);
		if (bm)
			snap_diff_save(&sw.w, size, bm);
		else
			ser_bytes(&sw.w, diff_raw, diff_len);
		snap_section_end(&sw);
	}
	assert_int_equal(snap_writer_finish(&sw, &e), 0);
	assert_int_equal(snap_write_file(file, sw.w.p, sw.w.len, &e), 0);
	snap_writer_free(&sw);
}

static uint8_t *read_all(const char *file, size_t *len)
{
	FILE *f = fopen(file, "rb");
	uint8_t *b;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	b = malloc(*len ? *len : 1);
	assert_int_equal(fread(b, 1, *len, f), *len);
	fclose(f);
	return b;
}

static void test_dump_and_merge(void **state)
{
	uint8_t *ram = malloc(MEM), *base = malloc(MEM), *got, *st;
	uint64_t bm[PAGES / 64] = { 0 }, written;
	struct snap_file *f = calloc(1, sizeof(*f));
	struct err e = { 0 };
	size_t len;
	int pos = 0;
	FILE *b;

	(void)state;
	for (unsigned int i = 0; i < MEM; i++) {
		ram[i] = (uint8_t)(i * 13 + 1);
		base[i] = (uint8_t)(i * 7 + 3);
	}
	bm[0] = 1ULL << 0 | 1ULL << 1 | 1ULL << 63;
	bm[3] = 1ULL << 63; /* the last page */
	assert_int_equal(
		snap_diff_dump(ram, MEM, bm, path("d.mem"), &written, &e), 0);
	assert_int_equal(written, 4 * 4096);
	b = fopen(path("base.mem"), "wb");
	assert_int_equal(fwrite(base, 1, MEM, b), MEM);
	fclose(b);
	write_state(path("d.state"), MEM, bm, NULL, 0);
	assert_int_equal(snap_diff_merge(path("d.state"), path("d.mem"),
					 path("base.mem"), path("m.state"), &e),
			 0);
	got = read_all(path("base.mem"), &len);
	assert_int_equal(len, MEM);
	for (unsigned int p = 0; p < PAGES; p++)
		assert_memory_equal(got + p * 4096,
				    (marked(bm, p) ? ram : base) + p * 4096,
				    4096);
	free(got);
	/* The merged state: the same sections but the Diff's. */
	st = read_all(path("m.state"), &len);
	assert_int_equal(snap_parse(f, st, len, &e), 0);
	assert_int_equal(f->nr, 2);
	assert_null(snap_next(f, &pos, SNAP_SEC_DIFF));
	/* ... which is not a Diff any more. */
	assert_int_equal(snap_diff_merge(path("m.state"), path("d.mem"),
					 path("base.mem"), path("x.state"), &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "not a Diff"));
	free(st);
	free(f);
	free(ram);
	free(base);
}

static void test_merge_refuses(void **state)
{
	uint64_t bm[PAGES / 64] = { 1 }, raw[4] = { 4096, PAGES + 1, 0, 0 };
	struct err e = { 0 };
	int fd;

	(void)state;
	fd = open(path("b.mem"), O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_int_equal(ftruncate(fd, MEM), 0);
	close(fd);
	fd = open(path("short.mem"), O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_int_equal(ftruncate(fd, MEM - 4096), 0);
	close(fd);
	/* A section that lies about the page count. */
	write_state(path("bad.state"), MEM, NULL, raw, sizeof(raw));
	assert_int_equal(snap_diff_merge(path("bad.state"), path("b.mem"),
					 path("b.mem"), path("o.state"), &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "malformed"));
	/* A page size that is not 4 KiB. */
	raw[0] = 8192;
	raw[1] = PAGES;
	write_state(path("bad2.state"), MEM, NULL, raw, sizeof(raw));
	assert_int_equal(snap_diff_merge(path("bad2.state"), path("b.mem"),
					 path("b.mem"), path("o.state"), &e),
			 -EINVAL);
	/* Memory files of another size, or missing. */
	write_state(path("ok.state"), MEM, bm, NULL, 0);
	assert_int_equal(snap_diff_merge(path("ok.state"), path("short.mem"),
					 path("b.mem"), path("o.state"), &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "short.mem"));
	assert_int_equal(snap_diff_merge(path("ok.state"), path("b.mem"),
					 path("none.mem"), path("o.state"), &e),
			 -ENOENT);
	assert_int_equal(access(path("o.state"), F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_virtqueue_marks),
		cmocka_unit_test(test_dump_and_merge),
		cmocka_unit_test(test_merge_refuses),
	};
	char rm[96];
	int ret;

	snprintf(dir, sizeof(dir), "/tmp/wisp-diff-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	if (system(rm) != 0)
		ret = ret ? ret : 1;
	return ret;
}
