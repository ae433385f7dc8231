// SPDX-License-Identifier: MIT
/*
 * The entry points and the File backend. The Uffd backend is uffd.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/mem_restore_priv.h"

int snap_mem_open_file(const char *path, size_t len, int *fd, struct err *e)
{
	struct stat st;
	int f;

	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return err_config(e, -errno, "memory file '%s': %s", path,
				  strerror(errno));
	if (fstat(f, &st) < 0) {
		int ret = -errno;

		close(f);
		return err_set(e, ret, "memory file '%s': fstat: %s", path,
			       strerror(-ret));
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != len) {
		close(f);
		return err_config(
			e, -EINVAL,
			"memory file '%s': %lld bytes, guest RAM has %zu", path,
			(long long)st.st_size, len);
	}
	*fd = f;
	return 0;
}

/* Copies the file's data extents into the shared mapping; the holes stay
 * as the punched (zero) memfd pages. */
static int file_copy_eager(int fd, const char *path, uint8_t *hva, size_t len,
			   struct err *e)
{
	off_t pos = 0;

	while ((size_t)pos < len) {
		off_t data = lseek(fd, pos, SEEK_DATA);
		off_t hole;

		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		if (data < 0)
			return err_set(e, -errno, "memory file '%s': seek: %s",
				       path, strerror(errno));
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (size_t)hole > len)
			hole = (off_t)len;
		for (off_t at = data; at < hole;) {
			ssize_t n =
				pread(fd, hva + at, (size_t)(hole - at), at);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return err_set(e, -errno,
					       "memory file '%s': read: %s",
					       path, strerror(errno));
			if (n == 0)
				return err_config(
					e, -EIO,
					"memory file '%s': shrank while being read",
					path);
			at += n;
		}
		pos = hole;
	}
	return 0;
}

static int file_start(const char *path, int memfd, uint8_t *hva, size_t len,
		      bool need_shared, struct err *e)
{
	int fd, ret = 0;

	ret = snap_mem_open_file(path, len, &fd, e);
	if (ret)
		return ret;
	if (need_shared) {
		ret = file_copy_eager(fd, path, hva, len, e);
		if (ret)
			/* Leave zeros, not half a snapshot. */
			fallocate(memfd,
				  FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
				  (off_t)len);
		goto out;
	}
	/* MAP_FIXED replaces the memfd mapping atomically; KVM's memslot
	 * keeps the address and its MMU notifier drops the old pages. */
	if (mmap(hva, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd,
		 0) == MAP_FAILED) {
		ret = err_set(e, -errno, "memory file '%s': mmap: %s", path,
			      strerror(errno));
		goto out;
	}
	/* Guest RAM is the private mapping now: free the memfd's pages. */
	fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		  (off_t)len);
out:
	close(fd); /* the mapping holds its own reference */
	return ret;
}

int snap_mem_restore_start(struct snap_mem_restore **out,
			   enum snap_mem_backend b, const char *path, int memfd,
			   void *hva, size_t len, bool need_shared,
			   struct err *e)
{
	struct snap_mem_restore *r;
	int ret;

	*out = NULL;
	if (!path || !hva || len == 0 || len % 4096 || (uintptr_t)hva % 4096)
		return err_set(e, -EINVAL,
			       "memory restore: bad arguments (path, mapping)");
	if (b != SNAP_MEM_FILE && b != SNAP_MEM_UFFD)
		return err_set(e, -EINVAL, "memory restore: unknown backend %d",
			       (int)b);
	if (b == SNAP_MEM_UFFD && need_shared)
		return err_config(
			e, -EINVAL,
			"memory backend Uffd cannot be used with IOREQ servers: a server touching a page the handler has not served yet would see (and leave) a zero page; use the File backend");
	/* Every page must be missing (Uffd) or unused (File) from now on:
	 * whatever the caller put there before is not the snapshot's. */
	if (fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		      (off_t)len) < 0)
		return err_set(e, -errno, "guest RAM memfd: punch hole: %s",
			       strerror(errno));

	r = calloc(1, sizeof(*r));
	if (!r)
		return err_set(e, -ENOMEM, "memory restore: out of memory");
	r->backend = b;
	r->hva = hva;
	r->len = len;
	r->uffd = r->sock = r->pidfd = r->stop_efd = r->fb_fd = -1;
	pthread_mutex_init(&r->lock, NULL);

	if (b == SNAP_MEM_FILE) {
		ret = file_start(path, memfd, hva, len, need_shared, e);
		r->private_map = !ret && !need_shared;
	} else
		ret = snap_uffd_start(r, path, e);
	if (ret) {
		snap_mem_restore_stop(r);
		return ret;
	}
	*out = r;
	return 0;
}

int snap_mem_restore_set_fallback(struct snap_mem_restore *r,
				  const char *mem_path, snap_mem_fail_fn fail,
				  void *ctx, struct err *e)
{
	if (!r || r->backend != SNAP_MEM_UFFD)
		return 0;
	return snap_uffd_set_fallback(r, mem_path, fail, ctx, e);
}

bool snap_mem_restore_private(const struct snap_mem_restore *r)
{
	return r && r->private_map;
}

void snap_mem_restore_get_stats(struct snap_mem_restore *r,
				struct snap_mem_restore_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (!r)
		return;
	s->handler_failed = atomic_load(&r->st_failed);
	s->took_over = atomic_load(&r->st_took_over);
	s->pages_copied = atomic_load(&r->st_pages);
}

void snap_mem_restore_stop(struct snap_mem_restore *r)
{
	if (!r)
		return;
	if (r->backend == SNAP_MEM_UFFD)
		snap_uffd_stop(r);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
