// SPDX-License-Identifier: MIT
#include "iommu/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* root: /run/wisp; anyone else: their runtime directory; either way, when
 * that is missing or read-only (a minimal root file system without /run),
 * a directory of their own in /tmp. Every process of a user finds the
 * same file, as each looks in the same order. */
static int default_path(char *buf, size_t size, struct err *e)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char dir[200];

	if (geteuid() == 0 && access("/run", W_OK) == 0)
		snprintf(dir, sizeof(dir), "/run/wisp");
	else if (geteuid() != 0 && xdg && xdg[0] == '/' && strlen(xdg) < 150 &&
		 access(xdg, W_OK) == 0)
		snprintf(dir, sizeof(dir), "%s/wisp", xdg);
	else
		snprintf(dir, sizeof(dir), "/tmp/wisp-%u", (unsigned)geteuid());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set(e, -errno, "IOASID registry: %s: %s", dir,
			       strerror(errno));
	snprintf(buf, size, "%s/ioasid", dir);
	return 0;
}

int ioasid_registry_open(struct ioasid_registry *r, const char *path,
			 struct err *e)
{
	char def[256];
	struct stat st;
	int ret;

	r->fd = -1;
	if (!path) {
		ret = default_path(def, sizeof(def), e);
		if (ret)
			return ret;
		path = def;
	}
	r->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (r->fd < 0)
		return err_set(e, -errno, "IOASID registry '%s': %s", path,
			       strerror(errno));
	/* Only a regular file owned by us: a FIFO or someone else's file
	 * would let another user hold or block our IDs. */
	if (fstat(r->fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid()) {
		close(r->fd);
		r->fd = -1;
		return err_set(e, -EPERM,
			       "IOASID registry '%s': not a regular file of "
			       "uid %u",
			       path, (unsigned)geteuid());
	}
	return 0;
}

void ioasid_registry_close(struct ioasid_registry *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static int lock(struct ioasid_registry *r, uint32_t id, short type)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = (off_t)id,
		.l_len = 1,
	};

	/* OFD locks: owned by this open file description, never blocking
	 * (F_OFD_SETLK), released by the kernel when the holder dies. */
	if (fcntl(r->fd, F_OFD_SETLK, &fl) < 0)
		return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
	return 0;
}

int ioasid_registry_claim(struct ioasid_registry *r, uint32_t id)
{
	return lock(r, id, F_WRLCK);
}

void ioasid_registry_release(struct ioasid_registry *r, uint32_t id)
{
	lock(r, id, F_UNLCK);
}
