// SPDX-License-Identifier: MIT
#include "snapshot/diff.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/mem_dump.h"
#include "util/le.h"

#define PAGE 4096ULL

static bool bit(const uint64_t *bm, uint64_t p)
{
	return bm[p / 64] >> (p % 64) & 1;
}

int snap_diff_dump(const uint8_t *host, uint64_t size, const uint64_t *bitmap,
		   const char *path, uint64_t *written, struct err *e)
{
	uint64_t pages = size / PAGE;
	int fd, ret = 0;

	*written = 0;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_config(e, -errno, "memory file '%s': %s", path,
				  strerror(errno));
	if (ftruncate(fd, (off_t)size) < 0) {
		ret = err_set(e, -errno, "memory file '%s': ftruncate: %s",
			      path, strerror(errno));
		goto out;
	}
	for (uint64_t p = 0; p < pages;) {
		uint64_t q = p;

		while (q < pages && bit(bitmap, q))
			q++;
		if (q > p) {
			ret = snap_write_at(fd, host + p * PAGE, (q - p) * PAGE,
					    (off_t)(p * PAGE), path, e);
			if (ret)
				goto out;
			*written += (q - p) * PAGE;
		}
		p = q + 1;
	}
out:
	if (close(fd) < 0 && !ret)
		ret = err_set(e, -errno, "memory file '%s': close: %s", path,
			      strerror(errno));
	return ret;
}

void snap_diff_save(struct ser_w *w, uint64_t size, const uint64_t *bitmap)
{
	uint64_t pages = size / PAGE;

	ser_u64(w, PAGE);
	ser_u64(w, pages);
	for (uint64_t i = 0; i < (pages + 63) / 64; i++)
		ser_u64(w, bitmap[i]);
}

int snap_diff_decode(const uint8_t *data, uint64_t len, uint64_t size,
		     const uint8_t **bitmap, struct err *e)
{
	uint64_t pages = size / PAGE;

	if (len < 16 || le64(data) != PAGE || le64(data + 8) != pages ||
	    len != 16 + (pages + 63) / 64 * 8)
		return err_config(e, -EINVAL,
				  "snapshot: Diff section malformed (not "
				  "%llu pages of 4 KiB)",
				  (unsigned long long)pages);
	*bitmap = data + 16;
	return 0;
}

static int open_mem(const char *path, int flags, uint64_t size, int *fd,
		    struct err *e)
{
	struct stat st;

	*fd = open(path, flags | O_CLOEXEC);
	if (*fd < 0)
		return err_config(e, -errno, "memory file '%s': %s", path,
				  strerror(errno));
	if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != size) {
		close(*fd);
		*fd = -1;
		return err_config(e, -EINVAL,
				  "memory file '%s': not a file of the "
				  "guest's %llu bytes",
				  path, (unsigned long long)size);
	}
	return 0;
}

/* Copies the Diff's pages, run by run, through one bounded buffer. */
static int copy_pages(int from, int to, const uint8_t *bm, uint64_t pages,
		      const char *diff_mem, const char *base_mem, struct err *e)
{
	enum { RUN = 256 }; /* pages per copy: 1 MiB */
	uint8_t *buf = malloc(RUN * PAGE);
	int ret = 0;

	if (!buf)
		return err_set(e, -ENOMEM, "snapshot-merge: out of memory");
	for (uint64_t p = 0; p < pages && !ret;) {
		uint64_t q = p, n;
		ssize_t got;

		while (q < pages && q - p < RUN &&
		       (le64(bm + q / 64 * 8) >> (q % 64) & 1))
			q++;
		if (q == p) {
			p++;
			continue;
		}
		n = (q - p) * PAGE;
		do
			got = pread(from, buf, n, (off_t)(p * PAGE));
		while (got < 0 && errno == EINTR);
		if (got != (ssize_t)n) {
			ret = err_config(e, got < 0 ? -errno : -EIO,
					 "memory file '%s': read at %llu: %s",
					 diff_mem,
					 (unsigned long long)(p * PAGE),
					 got < 0 ? strerror(errno) : "short");
			break;
		}
		ret = snap_write_at(to, buf, n, (off_t)(p * PAGE), base_mem, e);
		p = q;
	}
	free(buf);
	return ret;
}

/* The state without its Diff section: every other section as it was. */
static int write_merged_state(const struct snap_file *f, const char *path,
			      struct err *e)
{
	struct snap_writer sw;
	int ret;

	snap_writer_init(&sw);
	for (int i = 0; i < f->nr; i++) {
		if (f->sec[i].type == SNAP_SEC_DIFF)
			continue;
		snap_section_begin(&sw, f->sec[i].type);
		ser_bytes(&sw.w, f->sec[i].data, f->sec[i].len);
		snap_section_end(&sw);
	}
	ret = snap_writer_finish(&sw, e);
	if (!ret)
		ret = snap_write_file(path, sw.w.p, sw.w.len, e);
	snap_writer_free(&sw);
	return ret;
}

int snap_diff_merge(const char *diff_state, const char *diff_mem,
		    const char *base_mem, const char *out_state, struct err *e)
{
	const struct snap_section *mem, *diff;
	struct snap_file *f = calloc(1, sizeof(*f));
	const uint8_t *bm = NULL;
	uint8_t *buf = NULL;
	uint64_t size;
	int from = -1, to = -1, pos = 0, ret;
	size_t len;

	if (!f)
		return err_set(e, -ENOMEM, "snapshot-merge: out of memory");
	ret = snap_read_file(diff_state, &buf, &len, e);
	if (!ret)
		ret = snap_parse(f, buf, len, e);
	if (ret)
		goto out;
	mem = snap_next(f, &pos, SNAP_SEC_MEMORY);
	pos = 0;
	diff = snap_next(f, &pos, SNAP_SEC_DIFF);
	if (!mem || mem->len != 8) {
		ret = err_config(e, -EINVAL,
				 "snapshot '%s': memory section missing or "
				 "malformed",
				 diff_state);
		goto out;
	}
	if (!diff) {
		ret = err_config(e, -EINVAL,
				 "snapshot '%s': not a Diff snapshot (nothing "
				 "to merge)",
				 diff_state);
		goto out;
	}
	size = le64(mem->data);
	ret = snap_diff_decode(diff->data, diff->len, size, &bm, e);
	if (!ret)
		ret = open_mem(diff_mem, O_RDONLY, size, &from, e);
	if (!ret)
		ret = open_mem(base_mem, O_WRONLY, size, &to, e);
	if (!ret)
		ret = copy_pages(from, to, bm, size / PAGE, diff_mem, base_mem,
				 e);
	if (!ret && fsync(to) < 0)
		ret = err_set(e, -errno, "memory file '%s': fsync: %s",
			      base_mem, strerror(errno));
	if (!ret)
		ret = write_merged_state(f, out_state, e);
out:
	if (from >= 0)
		close(from);
	if (to >= 0)
		close(to);
	free(buf);
	free(f);
	return ret;
}
