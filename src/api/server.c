// SPDX-License-Identifier: MIT
#include "api/server.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sandbox/seccomp.h"
#include "util/log.h"
#include "util/unixsock.h"

struct api_server {
	struct MHD_Daemon *d;
	int fd;
	char *path;
	struct api *api;
};

/* Per request: the body so far. */
struct request {
	char *body;
	size_t len;
	bool too_big;
};

/* The socket context of a connection whose peer was refused. */
static char refused_peer;

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* libmicrohttpd's lines end in a newline of their own. */
	buf[strcspn(buf, "\n")] = 0;
	log_debug("api: %s", buf);
}

static bool peer_allowed(int fd)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) ||
	    len != sizeof(uc))
		return false;
	return uc.uid == geteuid() || uc.uid == 0;
}

/* One polling thread calls every callback (MHD_USE_INTERNAL_POLLING_THREAD
 * without a thread per connection). */
static _Thread_local bool api_thread_confined;

static void on_connection(void *cls, struct MHD_Connection *c,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;

	(void)cls;
	/* libmicrohttpd starts its thread itself: the filter goes in at
	 * the thread's first callback, before it reads a byte of a
	 * request. Until then it has only polled and accepted. */
	if (!api_thread_confined) {
		sb_seccomp_enter(SB_API);
		api_thread_confined = true;
	}
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci && peer_allowed(ci->connect_fd))
		return;
	log_warn("api: refused a connection from another user");
	*socket_context = &refused_peer;
	/* Nothing is read from it: the daemon sees end-of-file at once. */
	if (ci)
		shutdown(ci->connect_fd, SHUT_RDWR);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (r) {
		free(r->body);
		free(r);
		*con_cls = NULL;
	}
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, char *body)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(body ? strlen(body) : 0, body,
					       body ? MHD_RESPMEM_MUST_FREE :
						      MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (body)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"application/json");
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static char *too_big_body(void)
{
	char buf[128];

	snprintf(buf, sizeof(buf),
		 "{\"fault_message\":\"request body larger than %d bytes\"}",
		 API_BODY_LIMIT);
	return strdup(buf);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct api_server *s = cls;
	const union MHD_ConnectionInfo *ci;
	struct request *r = *con_cls;
	char *resp;
	int status;

	(void)version;
	if (!r) {
		const char *cl;

		ci = MHD_get_connection_info(
			c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		if (ci && ci->socket_context == &refused_peer)
			return MHD_NO;
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*con_cls = r;
		/* A declared oversize body is answered before it is read;
		 * the daemon then closes the connection. */
		cl = MHD_lookup_connection_value(
			c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > API_BODY_LIMIT) {
			r->too_big = true;
			return reply(c, 413, too_big_body());
		}
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (r->too_big)
			return MHD_YES;
		/* A chunked body that grew too large: an answer would only
		 * go out after the whole body, so drop the connection. */
		if (r->len + n > API_BODY_LIMIT) {
			log_info("api: a chunked body over %d bytes: closing",
				 API_BODY_LIMIT);
			return MHD_NO;
		}
		{
			char *nb = realloc(r->body, r->len + n + 1);

			if (!nb)
				return MHD_NO;
			r->body = nb;
		}
		memcpy(r->body + r->len, upload, n);
		r->len += n;
		r->body[r->len] = 0;
		return MHD_YES;
	}
	if (r->too_big)
		return MHD_YES; /* answered already */
	status = api_handle(s->api, method, url, r->body, r->len, &resp);
	return reply(c, status, resp);
}

/* A socket file at path: refuse anything else, and a socket someone
 * still listens on; remove a stale one. */
static int clear_stale(const char *path, struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		return err_config(e, -errno, "--api-sock '%s': %s", path,
				  strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return err_config(e, -EEXIST,
				  "--api-sock '%s': exists and is not a socket",
				  path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(e, -errno, "socket: %s", strerror(errno));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	ret = ret ? errno : 0;
	close(fd);
	if (ret != ECONNREFUSED)
		return err_config(e, -EADDRINUSE, "--api-sock '%s': %s", path,
				  ret ? strerror(ret) :
					"another process is listening on it");
	if (unlink(path) && errno != ENOENT)
		return err_set(e, -errno, "--api-sock '%s': unlink: %s", path,
			       strerror(errno));
	log_info("api: removed the stale socket '%s'", path);
	return 0;
}

static int listen_at(const char *path, struct err *e)
{
	struct sockaddr_un sa;
	int fd, ret;

	if (!*path || strlen(path) >= sizeof(sa.sun_path))
		return err_config(e, -ENAMETOOLONG,
				  "--api-sock '%s': empty or longer than %zu "
				  "bytes",
				  path, sizeof(sa.sun_path) - 1);
	ret = clear_stale(path, e);
	if (ret)
		return ret;
	/* Owner-only from the start, and at its path only once it listens:
	 * a client that waits for the file never meets ECONNREFUSED. */
	fd = unix_listen(path, API_MAX_CONNECTIONS,
			 SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return err_config(e, fd, "--api-sock '%s': %s", path,
				  strerror(-fd));
	return fd;
}

int api_server_start(struct api_server **out, const char *path, struct api *a,
		     struct err *e)
{
	struct api_server *s = calloc(1, sizeof(*s));
	int ret;

	*out = NULL;
	if (!s)
		return err_set(e, -ENOMEM, "api: out of memory");
	s->api = a;
	s->fd = -1;
	s->path = strdup(path);
	if (!s->path) {
		ret = err_set(e, -ENOMEM, "api: out of memory");
		goto fail;
	}
	s->fd = listen_at(path, e);
	if (s->fd < 0) {
		ret = s->fd;
		free(s->path);
		s->path = NULL; /* not ours to unlink */
		goto fail;
	}
	s->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
		mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, s->fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_IDLE_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_HEADER_LIMIT,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_END);
	if (!s->d) {
		ret = err_set(e, -EIO,
			      "--api-sock '%s': could not start the "
			      "HTTP server (libmicrohttpd)",
			      path);
		goto fail;
	}
	s->fd = -1; /* the daemon closes it when it stops */
	*out = s;
	return 0;
fail:
	if (s->fd >= 0) {
		close(s->fd);
		unlink(s->path);
	}
	free(s->path);
	free(s);
	return ret;
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	if (s->d)
		MHD_stop_daemon(s->d);
	if (s->path)
		unlink(s->path);
	free(s->path);
	free(s);
}
