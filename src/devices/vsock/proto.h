/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock's wire format (virtio 1.2, 5.10): the 44-byte packet
 * header every packet on the rx and tx queues starts with, its
 * operations and flags, and the event queue's one event. Pure
 * definitions and byte-order helpers; nothing here trusts a field.
 */
#ifndef WISP_DEVICES_VSOCK_PROTO_H
#define WISP_DEVICES_VSOCK_PROTO_H

#include <stdint.h>

#include "util/le.h"

#define VSOCK_HDR_SIZE 44
#define VSOCK_HOST_CID 2 /* the host's address, as seen by the guest */

#define VSOCK_TYPE_STREAM 1

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

/* SHUTDOWN flags: the sender will receive / send no more. */
#define VSOCK_SHUTDOWN_RCV 1
#define VSOCK_SHUTDOWN_SEND 2

/* struct virtio_vsock_event (5.10.6.7). */
#define VSOCK_EVENT_TRANSPORT_RESET 0
#define VSOCK_EVENT_SIZE 4

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
};

static inline void vsock_hdr_decode(const uint8_t *p, struct vsock_hdr *h)
{
	h->src_cid = le64(p);
	h->dst_cid = le64(p + 8);
	h->src_port = le32(p + 16);
	h->dst_port = le32(p + 20);
	h->len = le32(p + 24);
	h->type = le16(p + 28);
	h->op = le16(p + 30);
	h->flags = le32(p + 32);
	h->buf_alloc = le32(p + 36);
	h->fwd_cnt = le32(p + 40);
}

static inline void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t *p)
{
	put64(p, h->src_cid);
	put64(p + 8, h->dst_cid);
	put32(p + 16, h->src_port);
	put32(p + 20, h->dst_port);
	put32(p + 24, h->len);
	put16(p + 28, h->type);
	put16(p + 30, h->op);
	put32(p + 32, h->flags);
	put32(p + 36, h->buf_alloc);
	put32(p + 40, h->fwd_cnt);
}

#endif
