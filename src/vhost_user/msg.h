/* SPDX-License-Identifier: MIT */
/*
 * vhost-user messages on the socket and the request table, for both
 * sides. The receiver trusts nothing: a header with another version or a
 * payload larger than any request's is a protocol error (the stream
 * cannot be resynchronised, so the caller drops the connection), a
 * truncated descriptor array is an error, and descriptors that arrive
 * with a message that must not carry them are closed. Every wait ends at
 * a deadline (now_ns() time). No KVM, no VMM.
 */
#ifndef WISP_VHOST_USER_MSG_H
#define WISP_VHOST_USER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost_user/proto.h"

/* What a reply to a request carries. */
enum vhu_reply_kind {
	VHU_REPLY_NONE, /* only a REPLY_ACK u64, when asked for */
	VHU_REPLY_U64,
	VHU_REPLY_STATE,
	VHU_REPLY_CONFIG,
	VHU_REPLY_INFLIGHT, /* the description and one fd */
};

struct vhu_req_info {
	const char *name;
	uint16_t min_size, max_size; /* request payload bounds */
	uint8_t min_fds, max_fds;
	enum vhu_reply_kind reply;
};

/* The table entry for a request id, or NULL for one wisp does not know
 * (or does not handle: logging, postcopy, crypto, IOTLB). */
const struct vhu_req_info *vhu_req_info(uint32_t request);
const char *vhu_req_name(uint32_t request);

/* Sends hdr + hdr.size payload bytes with fds on the first byte. The
 * socket must be non-blocking. Returns 0, -ETIMEDOUT, -EINVAL (bad size
 * or fd count) or another -errno (-EPIPE: the peer is gone). */
int vhu_send(int sock, const struct vhu_msg *m, const int *fds, int nfds,
	     uint64_t deadline_ns);

/* Receives one message into m, at most VHU_MAX_FDS descriptors into fds
 * (O_CLOEXEC; *nfds says how many, the caller closes them). Returns 0,
 * -ETIMEDOUT, -ECONNRESET (the peer closed or reset the connection),
 * -EPROTO (bad version, oversized payload, truncated fd array: fds
 * already closed) or another -errno. */
int vhu_recv(int sock, struct vhu_msg *m, int *fds, int *nfds,
	     uint64_t deadline_ns);

/* Back-end side: is m (with nfds descriptors) a well-formed request?
 * Checks the version and flags, the payload size for the request, the
 * number of descriptors (SET_MEM_TABLE: one per region; KICK/CALL/ERR:
 * one unless the no-fd bit says none), ring indices below nr_queues,
 * config offset + size within VHU_MAX_CONFIG. Returns 0 or -EINVAL with
 * *why. */
int vhu_check_request(const struct vhu_msg *m, int nfds, int nr_queues,
		      const char **why);

/* Front-end side: is m a well-formed reply to req (a config request of
 * config_size bytes for GET_CONFIG)? ack: the request had NEED_REPLY and
 * no reply body of its own, so the reply is a u64 status. Returns 0 or
 * -EPROTO with *why. */
int vhu_check_reply(const struct vhu_msg *m, int nfds, uint32_t req, bool ack,
		    uint32_t config_size, const char **why);

/* Closes fds[0..n) and sets them to -1. */
void vhu_close_fds(int *fds, int n);

#endif
