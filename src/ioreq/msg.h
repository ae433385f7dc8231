/* SPDX-License-Identifier: MIT */
/* Sending and receiving IOREQ control messages (SOCK_SEQPACKET, fds in
 * SCM_RIGHTS). Used by both sides; the receiver trusts nothing: a packet
 * must be at least a header, its header's len must equal the packet size,
 * and truncated payloads or fd arrays are errors (received fds are then
 * closed). No KVM, no VMM state. */
#ifndef WISP_IOREQ_MSG_H
#define WISP_IOREQ_MSG_H

#include <stddef.h>

#include "ioreq/proto.h"

/* A receive buffer for any control message outside the handshake. */
union ioreq_msg {
	struct ioreq_hdr hdr;
	struct ioreq_mem_gen gen;
	uint8_t raw[IOREQ_MAX_MSG];
};

/* Returns 0 or -errno. Blocks while the peer's queue is full: only for a
 * peer that is trusted to read (the server library's side). */
int ioreq_send(int sock, const void *msg, size_t len, const int *fds, int nfds);

/* The same, but never waits past deadline_ns (now_ns() time; a deadline
 * already passed means "only if there is room now"): -ETIMEDOUT then. */
int ioreq_send_by(int sock, const void *msg, size_t len, const int *fds,
		  int nfds, uint64_t deadline_ns);

/* Waits up to timeout_ms (-1: forever) for one message. Returns its size
 * (>= sizeof(struct ioreq_hdr)), 0 on orderly shutdown by the peer,
 * -ETIMEDOUT, -EPROTO for a malformed packet, or another -errno. fds
 * (capacity max_fds) receives the passed descriptors (O_CLOEXEC). */
int ioreq_recv(int sock, void *buf, size_t cap, int *fds, int max_fds,
	       int *nfds, int timeout_ms);

/* Closes fds[0..n). */
void ioreq_close_fds(int *fds, int n);

#endif
