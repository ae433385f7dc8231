// SPDX-License-Identifier: MIT
/*
 * Guest RAM from a snapshot's memory file. Deliberately minimal: the
 * File backend copies the file's data ranges into the memfd before any
 * vCPU runs (eager; holes stay zero pages), and the Uffd backend is not
 * here. The lazy backends replace this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

#include "snapshot/mem_restore.h"

struct snap_mem_restore {
	enum snap_mem_backend backend;
};

static int copy_range(int fd, uint8_t *dst, off_t off, off_t end,
		      const char *path, struct err *e)
{
	while (off < end) {
		ssize_t n = pread(fd, dst + off, (size_t)(end - off), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(e, -errno, "memory file '%s': read: %s",
				       path, strerror(errno));
		if (n == 0)
			return err_config(e, -EINVAL,
					  "memory file '%s': shrank while "
					  "being read",
					  path);
		off += n;
	}
	return 0;
}

/* Only the data ranges: a sparse file costs what the guest touched. */
static int copy_file(int fd, uint8_t *dst, off_t size, const char *path,
		     struct err *e)
{
	off_t pos = 0;

	while (pos < size) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;
		int ret;

		if (data < 0 && errno == ENXIO)
			return 0;
		if (data < 0)
			/* No SEEK_DATA here: copy it all. */
			return copy_range(fd, dst, pos, size, path, e);
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		ret = copy_range(fd, dst, data, hole, path, e);
		if (ret)
			return ret;
		pos = hole;
	}
	return 0;
}

int snap_mem_restore_start(struct snap_mem_restore **out,
			   enum snap_mem_backend b, const char *path, int memfd,
			   void *hva, size_t len, bool need_shared,
			   struct err *e)
{
	struct snap_mem_restore *r;
	struct stat st;
	int fd, ret;

	(void)memfd;
	(void)need_shared; /* the copy lands in the memfd itself */
	*out = NULL;
	if (b == SNAP_MEM_UFFD)
		return err_config(e, -ENOTSUP,
				  "memory backend Uffd: not built yet");
	if (b != SNAP_MEM_FILE)
		return err_config(e, -EINVAL, "memory backend %d: unknown",
				  (int)b);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_config(e, -errno, "memory file '%s': %s", path,
				  strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = err_set(e, -errno, "memory file '%s': fstat: %s", path,
			      strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != len) {
		ret = err_config(e, -EINVAL,
				 "memory file '%s': %lld bytes, the snapshot's "
				 "guest RAM is %zu",
				 path, (long long)st.st_size, len);
		goto out;
	}
	ret = copy_file(fd, hva, st.st_size, path, e);
	if (ret)
		goto out;
	r = calloc(1, sizeof(*r));
	if (!r) {
		ret = err_set(e, -ENOMEM, "memory restore: out of memory");
		goto out;
	}
	r->backend = b;
	*out = r;
out:
	close(fd);
	return ret;
}

void snap_mem_restore_stop(struct snap_mem_restore *r)
{
	free(r);
}
