// SPDX-License-Identifier: MIT
#include "vhost_user/msg.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/time.h"

#define U64 sizeof(uint64_t)
#define STATE sizeof(struct vhu_vring_state)
#define CFG_HDR sizeof(struct vhu_config_hdr)

static const struct vhu_req_info table[VHU_REQUEST_MAX] = {
	[VHU_GET_FEATURES] = { "GET_FEATURES", 0, 0, 0, 0, VHU_REPLY_U64 },
	[VHU_SET_FEATURES] = { "SET_FEATURES", U64, U64, 0, 0, VHU_REPLY_NONE },
	[VHU_SET_OWNER] = { "SET_OWNER", 0, 0, 0, 0, VHU_REPLY_NONE },
	[VHU_RESET_OWNER] = { "RESET_OWNER", 0, 0, 0, 0, VHU_REPLY_NONE },
	[VHU_SET_MEM_TABLE] = { "SET_MEM_TABLE", 8 + sizeof(struct vhu_region),
				sizeof(struct vhu_mem_table), 1, VHU_MAX_FDS,
				VHU_REPLY_NONE },
	[VHU_SET_VRING_NUM] = { "SET_VRING_NUM", STATE, STATE, 0, 0,
				VHU_REPLY_NONE },
	[VHU_SET_VRING_ADDR] = { "SET_VRING_ADDR",
				 sizeof(struct vhu_vring_addr),
				 sizeof(struct vhu_vring_addr), 0, 0,
				 VHU_REPLY_NONE },
	[VHU_SET_VRING_BASE] = { "SET_VRING_BASE", STATE, STATE, 0, 0,
				 VHU_REPLY_NONE },
	[VHU_GET_VRING_BASE] = { "GET_VRING_BASE", STATE, STATE, 0, 0,
				 VHU_REPLY_STATE },
	[VHU_SET_VRING_KICK] = { "SET_VRING_KICK", U64, U64, 0, 1,
				 VHU_REPLY_NONE },
	[VHU_SET_VRING_CALL] = { "SET_VRING_CALL", U64, U64, 0, 1,
				 VHU_REPLY_NONE },
	[VHU_SET_VRING_ERR] = { "SET_VRING_ERR", U64, U64, 0, 1,
				VHU_REPLY_NONE },
	[VHU_GET_PROTOCOL_FEATURES] = { "GET_PROTOCOL_FEATURES", 0, 0, 0, 0,
					VHU_REPLY_U64 },
	[VHU_SET_PROTOCOL_FEATURES] = { "SET_PROTOCOL_FEATURES", U64, U64, 0, 0,
					VHU_REPLY_NONE },
	[VHU_GET_QUEUE_NUM] = { "GET_QUEUE_NUM", 0, 0, 0, 0, VHU_REPLY_U64 },
	[VHU_SET_VRING_ENABLE] = { "SET_VRING_ENABLE", STATE, STATE, 0, 0,
				   VHU_REPLY_NONE },
	[VHU_GET_CONFIG] = { "GET_CONFIG", CFG_HDR, CFG_HDR + VHU_MAX_CONFIG, 0,
			     0, VHU_REPLY_CONFIG },
	[VHU_SET_CONFIG] = { "SET_CONFIG", CFG_HDR, CFG_HDR + VHU_MAX_CONFIG, 0,
			     0, VHU_REPLY_NONE },
	[VHU_GET_INFLIGHT_FD] = { "GET_INFLIGHT_FD",
				  sizeof(struct vhu_inflight),
				  sizeof(struct vhu_inflight), 0, 0,
				  VHU_REPLY_INFLIGHT },
	[VHU_SET_INFLIGHT_FD] = { "SET_INFLIGHT_FD",
				  sizeof(struct vhu_inflight),
				  sizeof(struct vhu_inflight), 1, 1,
				  VHU_REPLY_NONE },
	[VHU_RESET_DEVICE] = { "RESET_DEVICE", 0, 0, 0, 0, VHU_REPLY_NONE },
	[VHU_GET_MAX_MEM_SLOTS] = { "GET_MAX_MEM_SLOTS", 0, 0, 0, 0,
				    VHU_REPLY_U64 },
	[VHU_ADD_MEM_REG] = { "ADD_MEM_REG", sizeof(struct vhu_mem_single),
			      sizeof(struct vhu_mem_single), 1, 1,
			      VHU_REPLY_NONE },
	/* The spec lets a back-end accept (and close) one stray fd here. */
	[VHU_REM_MEM_REG] = { "REM_MEM_REG", sizeof(struct vhu_mem_single),
			      sizeof(struct vhu_mem_single), 0, 1,
			      VHU_REPLY_NONE },
	[VHU_SET_STATUS] = { "SET_STATUS", U64, U64, 0, 0, VHU_REPLY_NONE },
	[VHU_GET_STATUS] = { "GET_STATUS", 0, 0, 0, 0, VHU_REPLY_U64 },
};

const struct vhu_req_info *vhu_req_info(uint32_t request)
{
	if (request >= VHU_REQUEST_MAX || !table[request].name)
		return NULL;
	return &table[request];
}

const char *vhu_req_name(uint32_t request)
{
	const struct vhu_req_info *i = vhu_req_info(request);

	return i ? i->name : "unknown request";
}

void vhu_close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Waits for events on sock until the deadline: 1 ready, -ETIMEDOUT. */
static int wait_sock(int sock, short events, uint64_t deadline_ns)
{
	for (;;) {
		struct pollfd p = { .fd = sock, .events = events };
		uint64_t now = now_ns();
		int ms, r;

		if (now >= deadline_ns)
			return -ETIMEDOUT;
		ms = (int)((deadline_ns - now + 999999) / 1000000);
		r = poll(&p, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0)
			return 1;
	}
}

int vhu_send(int sock, const struct vhu_msg *m, const int *fds, int nfds,
	     uint64_t deadline_ns)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
	size_t len = sizeof(m->hdr) + m->hdr.size, done = 0;

	if (m->hdr.size > VHU_MAX_PAYLOAD || nfds < 0 || nfds > VHU_MAX_FDS)
		return -EINVAL;
	while (done < len) {
		struct iovec iov = { (uint8_t *)m + done, len - done };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		/* The descriptors travel with the first byte only. */
		if (nfds && done == 0) {
			struct cmsghdr *c;

			memset(cbuf, 0, sizeof(cbuf));
			mh.msg_control = cbuf;
			mh.msg_controllen =
				CMSG_SPACE(sizeof(int) * (size_t)nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
		}
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_sock(sock, POLLOUT, deadline_ns);

			if (r < 0)
				return r;
			continue;
		}
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* Takes the descriptors out of a received control buffer. */
static int take_fds(struct msghdr *mh, int *fds, int *nfds)
{
	int bad = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (*nfds < VHU_MAX_FDS) {
				fds[(*nfds)++] = fd;
			} else {
				close(fd);
				bad = 1;
			}
		}
	}
	return bad || (mh->msg_flags & MSG_CTRUNC) ? -EPROTO : 0;
}

/* Reads exactly len bytes (descriptors accepted only when fds is set). */
static int read_full(int sock, void *buf, size_t len, int *fds, int *nfds,
		     uint64_t deadline_ns)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
	size_t done = 0;

	while (done < len) {
		struct iovec iov = { (uint8_t *)buf + done, len - done };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			r = wait_sock(sock, POLLIN, deadline_ns);
			if (r < 0)
				return r;
			continue;
		}
		if (n < 0)
			return errno == ECONNRESET ? -ECONNRESET : -errno;
		if (mh.msg_controllen) {
			int tmp[VHU_MAX_FDS], nt = 0;

			r = take_fds(&mh, fds ? fds : tmp, fds ? nfds : &nt);
			if (!fds) {
				/* Descriptors on the payload's bytes: the
				 * sender is not speaking the protocol. */
				vhu_close_fds(tmp, nt);
				r = -EPROTO;
			}
			if (r)
				return r;
		}
		if (n == 0)
			return -ECONNRESET;
		done += (size_t)n;
	}
	return 0;
}

int vhu_recv(int sock, struct vhu_msg *m, int *fds, int *nfds,
	     uint64_t deadline_ns)
{
	int r;

	*nfds = 0;
	r = read_full(sock, &m->hdr, sizeof(m->hdr), fds, nfds, deadline_ns);
	if (!r && ((m->hdr.flags & VHU_FLAG_VERSION_MASK) != VHU_VERSION ||
		   m->hdr.size > VHU_MAX_PAYLOAD))
		r = -EPROTO;
	if (!r && m->hdr.size)
		r = read_full(sock, m->raw, m->hdr.size, NULL, NULL,
			      deadline_ns);
	if (r) {
		vhu_close_fds(fds, *nfds);
		*nfds = 0;
	}
	return r;
}

static int bad(const char **why, const char *w)
{
	*why = w;
	return -EINVAL;
}

int vhu_check_request(const struct vhu_msg *m, int nfds, int nr_queues,
		      const char **why)
{
	const struct vhu_req_info *i = vhu_req_info(m->hdr.request);
	uint32_t size = m->hdr.size;

	if (!i)
		return bad(why, "unknown request");
	if ((m->hdr.flags & VHU_FLAG_VERSION_MASK) != VHU_VERSION)
		return bad(why, "bad version");
	if (m->hdr.flags & VHU_FLAG_REPLY)
		return bad(why, "reply flag on a request");
	if (size < i->min_size || size > i->max_size)
		return bad(why, "bad payload size");
	if (nfds < i->min_fds || nfds > i->max_fds)
		return bad(why, "bad number of descriptors");
	switch (m->hdr.request) {
	case VHU_SET_MEM_TABLE:
		if (m->mem.nregions == 0 || m->mem.nregions > VHU_MAX_REGIONS)
			return bad(why, "bad number of memory regions");
		if (size != 8 + m->mem.nregions * sizeof(struct vhu_region))
			return bad(why, "payload size does not match regions");
		if ((uint32_t)nfds != m->mem.nregions)
			return bad(why, "one descriptor per region needed");
		break;
	case VHU_SET_VRING_KICK:
	case VHU_SET_VRING_CALL:
	case VHU_SET_VRING_ERR:
		if (m->u64 & ~(VHU_VRING_IDX_MASK | VHU_VRING_NOFD))
			return bad(why, "reserved bits in the ring index");
		if ((m->u64 & VHU_VRING_IDX_MASK) >= (uint64_t)nr_queues)
			return bad(why, "ring index out of range");
		if ((nfds == 0) != !!(m->u64 & VHU_VRING_NOFD))
			return bad(why, "descriptor and no-fd flag disagree");
		break;
	case VHU_SET_VRING_NUM:
	case VHU_SET_VRING_BASE:
	case VHU_GET_VRING_BASE:
	case VHU_SET_VRING_ENABLE:
		if (m->state.index >= (uint32_t)nr_queues)
			return bad(why, "ring index out of range");
		break;
	case VHU_SET_VRING_ADDR:
		if (m->addr.index >= (uint32_t)nr_queues)
			return bad(why, "ring index out of range");
		break;
	case VHU_GET_CONFIG:
	case VHU_SET_CONFIG:
		if (m->config.size > VHU_MAX_CONFIG ||
		    size != CFG_HDR + m->config.size)
			return bad(why, "config size does not match payload");
		if (m->config.offset > VHU_MAX_CONFIG - m->config.size)
			return bad(why, "config range outside the space");
		break;
	default:
		break;
	}
	return 0;
}

static int bad_reply(const char **why, const char *w)
{
	*why = w;
	return -EPROTO;
}

int vhu_check_reply(const struct vhu_msg *m, int nfds, uint32_t req, bool ack,
		    uint32_t config_size, const char **why)
{
	const struct vhu_req_info *i = vhu_req_info(req);
	enum vhu_reply_kind k = i ? i->reply : VHU_REPLY_NONE;
	uint32_t want = 0;
	int want_fds = 0;

	if (m->hdr.request != req)
		return bad_reply(why, "reply to another request");
	if (!(m->hdr.flags & VHU_FLAG_REPLY))
		return bad_reply(why, "reply flag missing");
	switch (k) {
	case VHU_REPLY_NONE:
		if (!ack)
			return bad_reply(why, "reply to a request without one");
		want = U64;
		break;
	case VHU_REPLY_U64:
		want = U64;
		break;
	case VHU_REPLY_STATE:
		want = STATE;
		break;
	case VHU_REPLY_CONFIG:
		/* A zero-length config payload is the back-end's error. */
		if (m->hdr.size == 0 || m->hdr.size == CFG_HDR)
			return bad_reply(why, "back-end refused the config");
		want = CFG_HDR + config_size;
		if (m->hdr.size == want && m->config.size != config_size)
			return bad_reply(why, "config reply of another size");
		break;
	case VHU_REPLY_INFLIGHT:
		want = sizeof(struct vhu_inflight);
		want_fds = 1;
		break;
	}
	if (m->hdr.size != want)
		return bad_reply(why, "reply payload of the wrong size");
	if (nfds != want_fds)
		return bad_reply(why, "wrong number of descriptors in reply");
	return 0;
}
