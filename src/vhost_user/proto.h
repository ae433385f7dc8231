/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user wire format (QEMU's docs/interop/vhost-user.rst): a
 * 12-byte header (request, flags, payload size; host byte order) and a
 * payload of at most VHU_MAX_PAYLOAD bytes on a SOCK_STREAM unix socket,
 * with up to VHU_MAX_FDS descriptors in SCM_RIGHTS on the header's bytes.
 * Only the layout and the numbers live here; no KVM, no VMM.
 */
#ifndef WISP_VHOST_USER_PROTO_H
#define WISP_VHOST_USER_PROTO_H

#include <stdint.h>

#define VHU_VERSION 0x1
#define VHU_FLAG_VERSION_MASK 0x3
#define VHU_FLAG_REPLY (1u << 2)
#define VHU_FLAG_NEED_REPLY (1u << 3)

/* Descriptors on one message, and memory regions in SET_MEM_TABLE. */
#define VHU_MAX_FDS 8
#define VHU_MAX_REGIONS 8
/* A virtio device's configuration space is at most 256 bytes. */
#define VHU_MAX_CONFIG 256

/* Front-end requests. */
enum vhu_request {
	VHU_GET_FEATURES = 1,
	VHU_SET_FEATURES = 2,
	VHU_SET_OWNER = 3,
	VHU_RESET_OWNER = 4,
	VHU_SET_MEM_TABLE = 5,
	VHU_SET_LOG_BASE = 6,
	VHU_SET_LOG_FD = 7,
	VHU_SET_VRING_NUM = 8,
	VHU_SET_VRING_ADDR = 9,
	VHU_SET_VRING_BASE = 10,
	VHU_GET_VRING_BASE = 11,
	VHU_SET_VRING_KICK = 12,
	VHU_SET_VRING_CALL = 13,
	VHU_SET_VRING_ERR = 14,
	VHU_GET_PROTOCOL_FEATURES = 15,
	VHU_SET_PROTOCOL_FEATURES = 16,
	VHU_GET_QUEUE_NUM = 17,
	VHU_SET_VRING_ENABLE = 18,
	VHU_SEND_RARP = 19,
	VHU_NET_SET_MTU = 20,
	VHU_SET_BACKEND_REQ_FD = 21,
	VHU_IOTLB_MSG = 22,
	VHU_SET_VRING_ENDIAN = 23,
	VHU_GET_CONFIG = 24,
	VHU_SET_CONFIG = 25,
	VHU_GET_INFLIGHT_FD = 31,
	VHU_SET_INFLIGHT_FD = 32,
	VHU_RESET_DEVICE = 34,
	VHU_VRING_KICK = 35,
	VHU_GET_MAX_MEM_SLOTS = 36,
	VHU_ADD_MEM_REG = 37,
	VHU_REM_MEM_REG = 38,
	VHU_SET_STATUS = 39,
	VHU_GET_STATUS = 40,
	VHU_REQUEST_MAX = 41, /* table size: ids below it */
};

/* The virtio feature bit that says the back-end has protocol features. */
#define VHU_F_PROTOCOL_FEATURES 30

/* Protocol feature bits. */
#define VHU_PF_MQ 0
#define VHU_PF_LOG_SHMFD 1
#define VHU_PF_REPLY_ACK 3
#define VHU_PF_BACKEND_REQ 5
#define VHU_PF_CONFIG 9
#define VHU_PF_INFLIGHT_SHMFD 12
#define VHU_PF_RESET_DEVICE 13
#define VHU_PF_INBAND_NOTIFICATIONS 14
#define VHU_PF_CONFIGURE_MEM_SLOTS 15
#define VHU_PF_STATUS 16

/* SET_VRING_KICK/CALL/ERR u64: ring index in bits 0-7, bit 8 "no fd". */
#define VHU_VRING_IDX_MASK 0xffull
#define VHU_VRING_NOFD (1ull << 8)

struct vhu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vhu_vring_state {
	uint32_t index;
	uint32_t num;
} __attribute__((packed));

struct vhu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_ua, used_ua, avail_ua, log_ga;
} __attribute__((packed));

struct vhu_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t ua; /* the front-end's address of the region */
	uint64_t offset; /* in the region's fd */
} __attribute__((packed));

struct vhu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vhu_region regions[VHU_MAX_REGIONS];
} __attribute__((packed));

struct vhu_mem_single {
	uint64_t padding;
	struct vhu_region region;
} __attribute__((packed));

/* The fixed part of a config message; size bytes of config follow. */
struct vhu_config_hdr {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
} __attribute__((packed));

struct vhu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
} __attribute__((packed));

/* The inflight region of one split queue (vhost-user.rst, "Inflight I/O
 * tracking"): a header, then one entry per descriptor. */
struct vhu_inflight_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
} __attribute__((packed));

struct vhu_inflight_queue {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct vhu_inflight_desc desc[];
} __attribute__((packed));

#define VHU_MAX_PAYLOAD (sizeof(struct vhu_config_hdr) + VHU_MAX_CONFIG)

struct vhu_msg {
	struct vhu_hdr hdr;
	union {
		uint64_t u64;
		struct vhu_vring_state state;
		struct vhu_vring_addr addr;
		struct vhu_mem_table mem;
		struct vhu_mem_single mem1;
		struct vhu_config_hdr config;
		struct vhu_inflight inflight;
		uint8_t raw[VHU_MAX_PAYLOAD];
	};
} __attribute__((packed));

_Static_assert(sizeof(struct vhu_hdr) == 12, "vhost-user header");
_Static_assert(sizeof(struct vhu_mem_table) == 8 + 8 * 32, "mem table");
_Static_assert(sizeof(struct vhu_vring_addr) == 40, "vring addr");
_Static_assert(sizeof(struct vhu_inflight) == 20, "inflight");
_Static_assert(sizeof(struct vhu_inflight_desc) == 16, "inflight desc");
_Static_assert(sizeof(struct vhu_inflight_queue) == 16, "inflight queue");
_Static_assert(VHU_MAX_PAYLOAD >= sizeof(struct vhu_mem_table), "payload");

#endif
