// SPDX-License-Identifier: MIT
#include "snapshot/mem_dump.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static bool zero_page(const uint8_t *p)
{
	static const uint8_t zero[4096];

	return !memcmp(p, zero, sizeof(zero));
}

/* No memfd to ask for its data ranges: the non-zero pages, in runs. */
static int write_nonzero(int fd, const uint8_t *host, off_t end,
			 const char *path, uint64_t *written, struct err *e)
{
	for (off_t off = 0; off < end;) {
		off_t run = off;
		int ret;

		while (run < end && !zero_page(host + run))
			run += 4096;
		if (run > off) {
			ret = snap_write_at(fd, host + off,
					    (uint64_t)(run - off), off, path,
					    e);
			if (ret)
				return ret;
			*written += (uint64_t)(run - off);
		}
		off = run + 4096;
	}
	return 0;
}

int snap_write_at(int fd, const uint8_t *buf, uint64_t len, off_t off,
		  const char *path, struct err *e)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_set(e, n < 0 ? -errno : -EIO,
				       "memory file '%s': write: %s", path,
				       n < 0 ? strerror(errno) : "no progress");
		buf += n;
		len -= (uint64_t)n;
		off += n;
	}
	return 0;
}

int snap_mem_dump(int memfd, const uint8_t *host, uint64_t size,
		  const char *path, uint64_t *written, struct err *e)
{
	off_t pos = 0, end = (off_t)size;
	int fd, ret = 0;

	*written = 0;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_config(e, -errno, "memory file '%s': %s", path,
				  strerror(errno));
	if (ftruncate(fd, end) < 0) {
		ret = err_set(e, -errno, "memory file '%s': ftruncate: %s",
			      path, strerror(errno));
		goto out;
	}
	if (memfd < 0) {
		ret = write_nonzero(fd, host, end, path, written, e);
		goto out;
	}
	while (pos < end) {
		off_t data = lseek(memfd, pos, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0) {
			/* No SEEK_DATA: the whole rest, holes and all. */
			data = pos;
			hole = end;
		} else {
			hole = lseek(memfd, data, SEEK_HOLE);
			if (hole < 0 || hole > end)
				hole = end;
		}
		ret = snap_write_at(fd, host + data, (uint64_t)(hole - data),
				    data, path, e);
		if (ret)
			goto out;
		*written += (uint64_t)(hole - data);
		pos = hole;
	}
out:
	if (close(fd) < 0 && !ret)
		ret = err_set(e, -errno, "memory file '%s': close: %s", path,
			      strerror(errno));
	return ret;
}
