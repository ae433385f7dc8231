// SPDX-License-Identifier: MIT
#include "snapshot/format.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "util/le.h"

static uint32_t crc(const uint8_t *p, uint64_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);

	/* zlib's length is a uInt: feed large payloads in pieces. */
	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

int snap_parse(struct snap_file *f, const uint8_t *buf, size_t len,
	       struct err *e)
{
	uint32_t count;
	size_t off = SNAP_HEADER_LEN;
	bool ended = false;

	memset(f, 0, sizeof(*f));
	if (len < SNAP_HEADER_LEN)
		return err_config(e, -EINVAL,
				  "snapshot: %zu bytes, shorter than its "
				  "%d-byte header (truncated?)",
				  len, SNAP_HEADER_LEN);
	if (memcmp(buf, SNAP_MAGIC, SNAP_MAGIC_LEN))
		return err_config(e, -EINVAL,
				  "snapshot: bad magic (not a wisp snapshot "
				  "state file)");
	f->version = le32(buf + 8);
	if (f->version != SNAP_VERSION)
		return err_config(e, -EINVAL,
				  "snapshot: format version %u, this wisp "
				  "reads version %d only",
				  f->version, SNAP_VERSION);
	count = le32(buf + 12);
	if (count > SNAP_MAX_SECTIONS)
		return err_config(e, -EINVAL,
				  "snapshot: %u sections, at most %d", count,
				  SNAP_MAX_SECTIONS);
	while (!ended) {
		uint32_t type, want;
		uint64_t slen;
		const uint8_t *h = buf + off;

		if (len - off < SNAP_SECTION_HEADER_LEN)
			return err_config(e, -EINVAL,
					  "snapshot: truncated at byte %zu "
					  "(section %d header)",
					  off, f->nr);
		type = le32(h);
		want = le32(h + 4);
		slen = le64(h + 8);
		off += SNAP_SECTION_HEADER_LEN;
		if (type >= SNAP_SEC_NR)
			return err_config(e, -EINVAL,
					  "snapshot: section %d has unknown "
					  "type %u",
					  f->nr, type);
		if (slen > len - off)
			return err_config(e, -EINVAL,
					  "snapshot: section %d (type %u) is "
					  "%llu bytes but only %zu remain "
					  "(truncated?)",
					  f->nr, type, (unsigned long long)slen,
					  len - off);
		if (crc(buf + off, slen) != want)
			return err_config(e, -EINVAL,
					  "snapshot: section %d (type %u): "
					  "CRC mismatch (corrupt file)",
					  f->nr, type);
		if (type == SNAP_SEC_END) {
			if (slen)
				return err_config(e, -EINVAL,
						  "snapshot: END section with "
						  "a payload");
			ended = true;
		} else {
			if ((uint32_t)f->nr >= count)
				return err_config(e, -EINVAL,
						  "snapshot: more sections "
						  "than the %u the header says",
						  count);
			f->sec[f->nr++] =
				(struct snap_section){ type, buf + off, slen };
		}
		off += (size_t)slen;
	}
	if ((uint32_t)f->nr != count)
		return err_config(e, -EINVAL,
				  "snapshot: %d sections, the header says %u",
				  f->nr, count);
	if (off != len)
		return err_config(e, -EINVAL,
				  "snapshot: %zu bytes after the END section",
				  len - off);
	return 0;
}

int snap_read_file(const char *path, uint8_t **buf, size_t *len, struct err *e)
{
	struct stat st;
	uint8_t *b = NULL;
	size_t got = 0;
	int fd, ret = 0;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_config(e, -errno, "snapshot '%s': %s", path,
				  strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = err_set(e, -errno, "snapshot '%s': fstat: %s", path,
			      strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)SNAP_MAX_FILE) {
		ret = err_config(e, -EINVAL,
				 "snapshot '%s': not a regular file of at most "
				 "%u MiB",
				 path, SNAP_MAX_FILE >> 20);
		goto out;
	}
	b = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!b) {
		ret = err_set(e, -ENOMEM, "snapshot '%s': out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = err_config(e, -errno, "snapshot '%s': read: %s",
					 path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*buf = b;
	*len = got;
	b = NULL;
out:
	free(b);
	close(fd);
	return ret;
}

void snap_writer_init(struct snap_writer *sw)
{
	memset(sw, 0, sizeof(*sw));
	ser_bytes(&sw->w, SNAP_MAGIC, SNAP_MAGIC_LEN);
	ser_u32(&sw->w, SNAP_VERSION);
	ser_u32(&sw->w, 0); /* fixed by finish */
}

void snap_section_begin(struct snap_writer *sw, uint32_t type)
{
	sw->sec_start = sw->w.len;
	sw->open = true;
	ser_u32(&sw->w, type);
	ser_u32(&sw->w, 0);
	ser_u64(&sw->w, 0);
}

void snap_section_end(struct snap_writer *sw)
{
	size_t start = sw->sec_start + SNAP_SECTION_HEADER_LEN;
	uint8_t *h;

	sw->open = false;
	if (sw->w.fail)
		return;
	h = sw->w.p + sw->sec_start;
	put32(h + 4, crc(sw->w.p + start, sw->w.len - start));
	put64(h + 8, sw->w.len - start);
	if (le32(h) != SNAP_SEC_END)
		sw->nr++;
}

int snap_writer_finish(struct snap_writer *sw, struct err *e)
{
	snap_section_begin(sw, SNAP_SEC_END);
	snap_section_end(sw);
	if (sw->w.fail || sw->nr > SNAP_MAX_SECTIONS ||
	    sw->w.len > SNAP_MAX_FILE)
		return err_set(e, -ENOMEM,
			       "snapshot: out of memory or too large");
	put32(sw->w.p + 12, sw->nr);
	return 0;
}

void snap_writer_free(struct snap_writer *sw)
{
	free(sw->w.p);
	memset(sw, 0, sizeof(*sw));
}

int snap_write_file(const char *path, const void *buf, size_t len,
		    struct err *e)
{
	char tmp[PATH_MAX];
	const uint8_t *p = buf;
	int fd, ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return err_config(e, -ENAMETOOLONG,
				  "snapshot '%s': path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_config(e, -errno, "snapshot '%s': %s", tmp,
				  strerror(errno));
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = err_set(e, -errno, "snapshot '%s': write: %s",
				      tmp, strerror(errno));
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0 && !ret)
		ret = err_set(e, -errno, "snapshot '%s': close: %s", tmp,
			      strerror(errno));
	if (!ret && rename(tmp, path) < 0)
		ret = err_set(e, -errno, "snapshot '%s': rename: %s", path,
			      strerror(errno));
	if (ret)
		unlink(tmp);
	return ret;
}

const struct snap_section *snap_next(const struct snap_file *f, int *pos,
				     uint32_t type)
{
	for (; *pos < f->nr; (*pos)++)
		if (f->sec[*pos].type == type)
			return &f->sec[(*pos)++];
	return NULL;
}
