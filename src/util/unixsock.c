// SPDX-License-Identifier: MIT
#include "util/unixsock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int unix_listen(const char *path, int backlog, int flags)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	bool direct;
	mode_t old;
	int fd, ret;

	if (!*path || strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	direct = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d.tmp", path,
			  (int)getpid()) >= (int)sizeof(sa.sun_path);
	if (direct)
		memcpy(sa.sun_path, path, strlen(path) + 1);
	else
		unlink(sa.sun_path); /* a leftover of a dead process */
	fd = socket(AF_UNIX, SOCK_STREAM | flags, 0);
	if (fd < 0)
		return -errno;
	old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (listen(fd, backlog) || (!direct && rename(sa.sun_path, path))) {
		ret = -errno;
		unlink(sa.sun_path);
		close(fd);
		return ret;
	}
	return fd;
}
