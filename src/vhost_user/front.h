/* SPDX-License-Identifier: MIT */
/*
 * The front-end side of one vhost-user connection: connect to the
 * back-end's socket (peer checked with SO_PEERCRED: wisp's user or root),
 * negotiate features and protocol features, and the requests that set up
 * memory, rings and config. Every reply is awaited at most timeout_ms; a
 * late, malformed or refused reply is an error and the caller drops the
 * connection (vhu_front_close): after a timeout a reply may still be in
 * the stream, so the connection cannot be used any more.
 *
 * Owns the socket. No KVM, no VMM: the caller gives guest memory as
 * regions and rings as user addresses. Threads: one caller at a time
 * (the device's lock).
 */
#ifndef WISP_VHOST_USER_FRONT_H
#define WISP_VHOST_USER_FRONT_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "vhost_user/proto.h"

/* Protocol features wisp uses when the back-end offers them. */
#define VHU_FRONT_PROTOCOL                                           \
	((1ull << VHU_PF_MQ) | (1ull << VHU_PF_REPLY_ACK) |          \
	 (1ull << VHU_PF_CONFIG) | (1ull << VHU_PF_INFLIGHT_SHMFD) | \
	 (1ull << VHU_PF_CONFIGURE_MEM_SLOTS))

#define VHU_FRONT_TIMEOUT_MS 2000

struct vhu_front {
	const char *name; /* the device, for messages */
	const char *path; /* the back-end's socket */
	int sock; /* -1: not connected */
	unsigned int timeout_ms; /* per reply */
	uint64_t features; /* the back-end's virtio features */
	uint64_t protocol; /* negotiated protocol features */
};

static inline bool vhu_front_has(const struct vhu_front *f, int pf)
{
	return (f->protocol >> pf) & 1;
}

/* Sets up f (not connected). path must fit a socket address (checked by
 * vhu_front_connect). */
void vhu_front_init(struct vhu_front *f, const char *name, const char *path);

/* Connects, checks the peer, GET_FEATURES, protocol feature negotiation
 * (VHU_FRONT_PROTOCOL & offered), SET_OWNER. On failure the socket is
 * closed; -ENOENT/-ECONNREFUSED: nobody listens. */
int vhu_front_connect(struct vhu_front *f, struct err *e);
void vhu_front_close(struct vhu_front *f);

/* One request: sends m (payload m->hdr.size bytes) with fds; with
 * REPLY_ACK negotiated, requests without a reply body ask for an ack.
 * If the request has a reply, it is stored in *reply (may be m) with its
 * descriptor in *rfd (else -1). config_size: the GET_CONFIG size. */
int vhu_front_call(struct vhu_front *f, struct vhu_msg *m, const int *fds,
		   int nfds, struct vhu_msg *reply, int *rfd,
		   uint32_t config_size, struct err *e);

int vhu_front_set_features(struct vhu_front *f, uint64_t features,
			   struct err *e);
/* Memory: with CONFIGURE_MEM_SLOTS one ADD_MEM_REG per region (after
 * GET_MAX_MEM_SLOTS), else one SET_MEM_TABLE; every region is mapped
 * from fd. */
int vhu_front_set_mem(struct vhu_front *f, const struct vhu_region *regs, int n,
		      int fd, struct err *e);
/* GET_CONFIG of [off, off + len) into buf (needs PF_CONFIG). */
int vhu_front_get_config(struct vhu_front *f, uint32_t off, uint8_t *buf,
			 uint32_t len, struct err *e);
int vhu_front_set_config(struct vhu_front *f, uint32_t off, const uint8_t *buf,
			 uint32_t len, struct err *e);

struct vhu_vring_setup {
	uint32_t index;
	uint32_t num;
	uint64_t desc_ua, avail_ua, used_ua;
	uint16_t base; /* next avail entry the back-end consumes */
	int kick, call, err; /* eventfds (err may be -1) */
};

/* NUM, ADDR, BASE, KICK, CALL, ERR and, with protocol features,
 * ENABLE 1. */
int vhu_front_start_vring(struct vhu_front *f, const struct vhu_vring_setup *s,
			  struct err *e);
/* GET_VRING_BASE: stops the ring and says where it stopped. */
int vhu_front_stop_vring(struct vhu_front *f, uint32_t index, uint16_t *base,
			 struct err *e);

/* GET_INFLIGHT_FD for nq queues of qsize entries: the back-end's shared
 * buffer, checked (mmap size and offset inside the returned file, big
 * enough for nq split-queue regions) and mapped. On success the caller
 * owns *fd and the mapping (*map, *size). */
int vhu_front_get_inflight(struct vhu_front *f, uint16_t nq, uint16_t qsize,
			   int *fd, void **map, uint64_t *size, struct err *e);
int vhu_front_set_inflight(struct vhu_front *f, int fd, uint64_t size,
			   uint16_t nq, uint16_t qsize, struct err *e);

/* Size of one queue's inflight region in the shared buffer. */
static inline uint64_t vhu_inflight_queue_size(uint16_t qsize)
{
	/* Each queue's region is rounded up to 64 bytes, as QEMU and
	 * libvhost-user lay it out. */
	uint64_t s = sizeof(struct vhu_inflight_queue) +
		     (uint64_t)qsize * sizeof(struct vhu_inflight_desc);

	return (s + 63) & ~63ull;
}

#endif
