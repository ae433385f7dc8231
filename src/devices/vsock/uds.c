// SPDX-License-Identifier: MIT
#include "devices/vsock/uds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* "_4294967295": the longest suffix a guest's port adds. */
#define SUFFIX_MAX 11

int vsock_uds_check_path(const char *path, struct err *e)
{
	struct sockaddr_un a;

	if (!path || !*path)
		return err_config(e, -EINVAL, "vsock: empty uds path");
	if (strlen(path) + SUFFIX_MAX >= sizeof(a.sun_path))
		return err_config(e, -ENAMETOOLONG,
				  "vsock: uds path '%s' too long (at most %zu "
				  "bytes, so that '_PORT' still fits)",
				  path, sizeof(a.sun_path) - SUFFIX_MAX - 1);
	return 0;
}

static int peer_ok(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -errno;
	if (cr.uid != 0 && cr.uid != geteuid())
		return -EPERM;
	return 0;
}

int vsock_uds_listen(const char *path, struct err *e)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	ret = vsock_uds_check_path(path, e);
	if (ret)
		return ret;
	if (lstat(path, &st) == 0)
		return err_config(e, -EEXIST,
				  "vsock: uds path '%s' exists (remove it, or "
				  "is another VM using it?)",
				  path);
	memcpy(a.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, -errno, "vsock: socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		ret = -errno;
		err_config(e, ret, "vsock: bind '%s': %s", path,
			   strerror(errno));
		goto fail;
	}
	if (listen(fd, 128) < 0) {
		ret = err_set(e, -errno, "vsock: listen '%s': %s", path,
			      strerror(errno));
		unlink(path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}

int vsock_uds_accept(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int ret;

	if (fd < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	ret = peer_ok(fd);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

int vsock_uds_connect(const char *path, uint32_t port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, n, ret;

	n = snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", path, port);
	if (n < 0 || (size_t)n >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A unix stream connect does not go on in the background: it
	 * succeeds, or fails with EAGAIN when the listener's backlog is
	 * full, which the guest sees as a refused connection. */
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = peer_ok(fd);
	if (ret)
		goto fail;
	return fd;
fail:
	close(fd);
	return ret;
}

int vsock_uds_parse_connect(const char *line, size_t len, uint32_t *port)
{
	static const char kw[] = "CONNECT ";
	uint64_t v = 0;
	size_t i = sizeof(kw) - 1, start;

	if (len < sizeof(kw) + 1 || len > VSOCK_UDS_LINE_MAX ||
	    memcmp(line, kw, sizeof(kw) - 1) || line[len - 1] != '\n')
		return -EINVAL;
	start = i;
	for (; i < len - 1; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(line[i] - '0');
		if (v > UINT32_MAX)
			return -EINVAL;
	}
	if (i == start || (line[start] == '0' && i - start > 1))
		return -EINVAL;
	*port = (uint32_t)v;
	return 0;
}

size_t vsock_uds_format_ok(char *buf, uint32_t port)
{
	return (size_t)snprintf(buf, VSOCK_UDS_LINE_MAX, "OK %u\n", port);
}
