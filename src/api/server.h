/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 server of the API: libmicrohttpd on a unix socket wisp
 * creates (mode 0600), one internal thread serving every connection.
 *
 * A client cannot stall the VM or the server for long: at most
 * API_MAX_CONNECTIONS connections, each dropped after API_IDLE_TIMEOUT_S
 * without progress; the request line and headers must fit in
 * API_HEADER_LIMIT bytes, a body in API_BODY_LIMIT (413 beyond). Only a
 * peer with wisp's effective uid (or root) is served (SO_PEERCRED).
 * Nothing here runs on a vCPU thread.
 *
 * Owns: the listening socket, its path (unlinked on stop), the daemon.
 */
#ifndef WISP_API_SERVER_H
#define WISP_API_SERVER_H

#include "api/api.h"
#include "util/err.h"

#define API_MAX_CONNECTIONS 16
#define API_IDLE_TIMEOUT_S 10
#define API_HEADER_LIMIT (32 * 1024)
#define API_BODY_LIMIT (64 * 1024)

struct api_server;

/* Creates the socket at path (refusing a path that exists and is not a
 * stale socket) and starts serving a. On failure nothing is left behind
 * (*out NULL, no socket file created by this call). */
int api_server_start(struct api_server **out, const char *path, struct api *a,
		     struct err *e);
/* Stops serving (waits for a request in progress) and unlinks the
 * socket. NULL is a no-op. */
void api_server_stop(struct api_server *s);

#endif
