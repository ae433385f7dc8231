/* SPDX-License-Identifier: MIT */
/*
 * A wisp virtio device (the same device code as in wisp and in the IOREQ
 * servers) served as a vhost-user back-end: the front-end (QEMU, or
 * wisp's own --vhost-user-blk) hands over guest RAM, the rings and the
 * kick/call eventfds; this loop answers its requests and runs the
 * device's queues when kicked. Every request is checked
 * (src/vhost_user/msg.c, memtab.c) before it touches the device; a bad
 * one ends the connection with a message.
 *
 * Owns nothing past one connection: the kick/call/err descriptors and
 * the memory mapping are released when vhu_back_serve returns.
 * Threads: the caller's only (the device's handlers run on it, under the
 * device's lock).
 */
#ifndef WISP_SERVERS_VHU_BACK_H
#define WISP_SERVERS_VHU_BACK_H

#include <signal.h>

#include "mem/guest_mem.h"
#include "util/err.h"
#include "virtio/virtio.h"

/* Serves the connected front-end on sock with device d, whose guest
 * memory is *gm (empty until SET_MEM_TABLE; the device was created on
 * it). Returns 0 when the front-end hung up (or *stop was set), -errno
 * with a message when it broke the protocol. sock is the caller's. */
int vhu_back_serve(int sock, struct virtio_dev *d, struct guest_mem *gm,
		   volatile sig_atomic_t *stop, struct err *e);

/* A listening socket at path (mode 0600, an existing socket replaced),
 * and accepting one front-end with its peer checked (wisp's user or
 * root). Return the fd or -errno. */
int vhu_back_listen(const char *path, struct err *e);
int vhu_back_accept(int lfd, struct err *e);

#endif
