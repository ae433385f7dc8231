/* SPDX-License-Identifier: MIT */
/*
 * A listening unix socket that appears at its path only once it listens.
 * Clients (orchestrators, scripts, the tests) wait for the socket file to
 * exist and then connect; a file that exists between bind(2) and
 * listen(2) answers them ECONNREFUSED. So the socket is bound under a
 * temporary name next to PATH, made to listen, and renamed to PATH.
 */
#ifndef WISP_UTIL_UNIXSOCK_H
#define WISP_UTIL_UNIXSOCK_H

/* Binds (umask 0177: owner only, from the start), listens with backlog
 * and renames to path. flags: SOCK_CLOEXEC, SOCK_NONBLOCK. Returns the fd
 * or -errno; on failure nothing is left at path or at the temporary
 * name. A path too long for the temporary name is bound directly. An
 * existing file at path is replaced (callers decide before whether a
 * stale socket may go). */
int unix_listen(const char *path, int backlog, int flags);

#endif
