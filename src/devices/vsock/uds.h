/* SPDX-License-Identifier: MIT */
/*
 * The host side of virtio-vsock, Firecracker's hybrid model: the guest's
 * host (CID 2) is a set of unix sockets. A guest connecting to host port
 * P reaches whoever listens on "<uds_path>_P"; a host process reaches
 * guest port P by connecting to "<uds_path>" (wisp listens there) and
 * writing "CONNECT P\n", and reads "OK <host port>\n" once the guest
 * accepted. This file is the unix-socket half: the listener, accepting
 * and connecting with a peer check (same euid or root: another user's
 * process is refused either way), and the CONNECT line's parser. No
 * state; the connection state machine is conn.c.
 */
#ifndef WISP_DEVICES_VSOCK_UDS_H
#define WISP_DEVICES_VSOCK_UDS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Longest CONNECT line taken, "\n" included ("CONNECT 4294967295\n" is
 * 19 bytes); a host client that sends more without a newline is cut. */
#define VSOCK_UDS_LINE_MAX 32

/* Checks that path fits a sockaddr_un with the longest "_PORT" suffix.
 * Returns 0 or -ENAMETOOLONG / -EINVAL (config class, naming path). */
int vsock_uds_check_path(const char *path, struct err *e);

/* Binds and listens on path (non-blocking, close-on-exec). An existing
 * file at path is refused (it is never removed: it may be another VM's
 * socket). Returns the fd or -errno with e set (config class when the
 * user can fix it). */
int vsock_uds_listen(const char *path, struct err *e);

/* Accepts one host connection on lfd (non-blocking, close-on-exec) from
 * a process of the same euid or root. Returns the fd, -EAGAIN when none
 * is waiting, -EPERM after refusing (and closing) another user's
 * connection, other -errno on failure. */
int vsock_uds_accept(int lfd);

/* Connects to "<path>_<port>" without blocking (a unix stream connect
 * completes at once or fails) and checks the listener's credentials.
 * Returns the fd or -errno (-ENOENT, -ECONNREFUSED, -EAGAIN when its
 * backlog is full, -EPERM for another user's listener, ...). */
int vsock_uds_connect(const char *path, uint32_t port);

/* Parses "CONNECT <port>\n" exactly (one space, decimal digits, no sign
 * or leading zero unless the port is 0, no overflow, nothing after the
 * newline): len bytes at line, the newline included. Returns 0 with
 * *port set, or -EINVAL. */
int vsock_uds_parse_connect(const char *line, size_t len, uint32_t *port);

/* Formats "OK <port>\n" into buf (at least VSOCK_UDS_LINE_MAX bytes);
 * returns its length. */
size_t vsock_uds_format_ok(char *buf, uint32_t port);

#endif
