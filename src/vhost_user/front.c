// SPDX-License-Identifier: MIT
#include "vhost_user/front.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/time.h"
#include "vhost_user/msg.h"

void vhu_front_init(struct vhu_front *f, const char *name, const char *path)
{
	memset(f, 0, sizeof(*f));
	f->name = name;
	f->path = path;
	f->sock = -1;
	f->timeout_ms = VHU_FRONT_TIMEOUT_MS;
}

void vhu_front_close(struct vhu_front *f)
{
	if (f->sock >= 0)
		close(f->sock);
	f->sock = -1;
	f->protocol = 0;
}

static int check_peer(struct vhu_front *f, struct err *e)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(f->sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return err_set(e, -errno,
			       "%s: vhost-user socket '%s': peer: %s", f->name,
			       f->path, strerror(errno));
	if (cr.uid != geteuid() && cr.uid != 0)
		return err_set(e, -EACCES,
			       "%s: vhost-user socket '%s': the back-end runs "
			       "as uid %u (pid %d), expected uid %u or root: "
			       "refused",
			       f->name, f->path, (unsigned)cr.uid, (int)cr.pid,
			       (unsigned)geteuid());
	return 0;
}

static void hdr(struct vhu_msg *m, uint32_t req, uint32_t size)
{
	m->hdr.request = req;
	m->hdr.flags = VHU_VERSION;
	m->hdr.size = size;
}

int vhu_front_call(struct vhu_front *f, struct vhu_msg *m, const int *fds,
		   int nfds, struct vhu_msg *reply, int *rfd,
		   uint32_t config_size, struct err *e)
{
	const struct vhu_req_info *info = vhu_req_info(m->hdr.request);
	uint32_t req = m->hdr.request;
	uint64_t deadline;
	bool ack = false;
	const char *why = NULL;
	int got[VHU_MAX_FDS], ngot = 0, ret;

	if (rfd)
		*rfd = -1;
	if (!info)
		return err_set(e, -EINVAL, "%s: request %u not in the table",
			       f->name, req);
	if (f->sock < 0)
		return err_set(e, -ENOTCONN, "%s: back-end not connected",
			       f->name);
	if (info->reply == VHU_REPLY_NONE &&
	    vhu_front_has(f, VHU_PF_REPLY_ACK)) {
		m->hdr.flags |= VHU_FLAG_NEED_REPLY;
		ack = true;
	}
	deadline = now_ns() + (uint64_t)f->timeout_ms * 1000000ull;
	ret = vhu_send(f->sock, m, fds, nfds, deadline);
	if (ret)
		return err_set(e, ret, "%s: vhost-user %s: send: %s", f->name,
			       info->name, strerror(-ret));
	if (info->reply == VHU_REPLY_NONE && !ack)
		return 0;
	ret = vhu_recv(f->sock, reply, got, &ngot, deadline);
	if (ret)
		return err_set(e, ret, "%s: vhost-user %s: %s", f->name,
			       info->name,
			       ret == -ETIMEDOUT ? "no reply in time" :
			       ret == -EPROTO	 ? "malformed reply" :
						   strerror(-ret));
	ret = vhu_check_reply(reply, ngot, req, ack, config_size, &why);
	if (!ret && ack && reply->u64 != 0) {
		ret = -EIO;
		why = "the back-end refused it";
	}
	if (ret) {
		vhu_close_fds(got, ngot);
		return err_set(e, ret, "%s: vhost-user %s: %s", f->name,
			       info->name, why);
	}
	if (ngot && rfd)
		*rfd = got[0];
	else
		vhu_close_fds(got, ngot);
	return 0;
}

static int call_u64(struct vhu_front *f, uint32_t req, uint64_t *v,
		    struct err *e)
{
	struct vhu_msg m;
	int ret;

	hdr(&m, req, 0);
	ret = vhu_front_call(f, &m, NULL, 0, &m, NULL, 0, e);
	if (!ret)
		*v = m.u64;
	return ret;
}

static int send_u64(struct vhu_front *f, uint32_t req, uint64_t v,
		    const int *fds, int nfds, struct err *e)
{
	struct vhu_msg m;

	hdr(&m, req, sizeof(v));
	m.u64 = v;
	return vhu_front_call(f, &m, fds, nfds, &m, NULL, 0, e);
}

static int send_state(struct vhu_front *f, uint32_t req, uint32_t index,
		      uint32_t num, struct err *e)
{
	struct vhu_msg m;

	hdr(&m, req, sizeof(m.state));
	m.state.index = index;
	m.state.num = num;
	return vhu_front_call(f, &m, NULL, 0, &m, NULL, 0, e);
}

int vhu_front_connect(struct vhu_front *f, struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t pf = 0;
	struct vhu_msg m;
	int ret;

	if (strlen(f->path) >= sizeof(sa.sun_path))
		return err_config(e, -ENAMETOOLONG,
				  "%s: vhost-user socket path '%s' is longer "
				  "than a socket address allows",
				  f->name, f->path);
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	vhu_front_close(f);
	f->sock =
		socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (f->sock < 0)
		return err_set(e, -errno, "%s: socket: %s", f->name,
			       strerror(errno));
	/* A unix stream connect does not wait for the listener: it either
	 * succeeds, or fails at once (EAGAIN: its backlog is full). */
	if (connect(f->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = err_set(e, -errno,
			      "%s: vhost-user socket '%s': connect: %s",
			      f->name, f->path, strerror(errno));
		goto fail;
	}
	ret = check_peer(f, e);
	if (!ret)
		ret = call_u64(f, VHU_GET_FEATURES, &f->features, e);
	if (ret)
		goto fail;
	if (f->features & (1ull << VHU_F_PROTOCOL_FEATURES)) {
		ret = call_u64(f, VHU_GET_PROTOCOL_FEATURES, &pf, e);
		if (!ret)
			ret = send_u64(f, VHU_SET_PROTOCOL_FEATURES,
				       pf & VHU_FRONT_PROTOCOL, NULL, 0, e);
		if (ret)
			goto fail;
		f->protocol = pf & VHU_FRONT_PROTOCOL;
	}
	hdr(&m, VHU_SET_OWNER, 0);
	ret = vhu_front_call(f, &m, NULL, 0, &m, NULL, 0, e);
	if (ret)
		goto fail;
	return 0;
fail:
	vhu_front_close(f);
	return ret;
}

int vhu_front_set_features(struct vhu_front *f, uint64_t features,
			   struct err *e)
{
	/* The protocol-features bit is acked where it was offered, or the
	 * back-end would treat the rings as enabled from the start. */
	if (f->features & (1ull << VHU_F_PROTOCOL_FEATURES))
		features |= 1ull << VHU_F_PROTOCOL_FEATURES;
	return send_u64(f, VHU_SET_FEATURES, features, NULL, 0, e);
}

int vhu_front_set_mem(struct vhu_front *f, const struct vhu_region *regs, int n,
		      int fd, struct err *e)
{
	int fds[VHU_MAX_REGIONS];
	struct vhu_msg m;
	int ret;

	if (n < 1 || n > VHU_MAX_REGIONS)
		return err_set(e, -EINVAL, "%s: %d memory regions", f->name, n);
	if (vhu_front_has(f, VHU_PF_CONFIGURE_MEM_SLOTS)) {
		uint64_t slots = 0;

		ret = call_u64(f, VHU_GET_MAX_MEM_SLOTS, &slots, e);
		if (ret)
			return ret;
		if (slots < (uint64_t)n)
			return err_set(e, -ENOSPC,
				       "%s: the back-end takes %llu memory "
				       "slots, the guest has %d regions",
				       f->name, (unsigned long long)slots, n);
		for (int i = 0; i < n; i++) {
			hdr(&m, VHU_ADD_MEM_REG, sizeof(m.mem1));
			m.mem1.padding = 0;
			m.mem1.region = regs[i];
			ret = vhu_front_call(f, &m, &fd, 1, &m, NULL, 0, e);
			if (ret)
				return ret;
		}
		return 0;
	}
	hdr(&m, VHU_SET_MEM_TABLE, 8 + (uint32_t)n * sizeof(struct vhu_region));
	m.mem.nregions = (uint32_t)n;
	m.mem.padding = 0;
	for (int i = 0; i < n; i++) {
		m.mem.regions[i] = regs[i];
		fds[i] = fd;
	}
	return vhu_front_call(f, &m, fds, n, &m, NULL, 0, e);
}

int vhu_front_get_config(struct vhu_front *f, uint32_t off, uint8_t *buf,
			 uint32_t len, struct err *e)
{
	struct vhu_msg m;
	int ret;

	if (len > VHU_MAX_CONFIG || off > VHU_MAX_CONFIG - len)
		return err_set(e, -EINVAL, "%s: config range", f->name);
	hdr(&m, VHU_GET_CONFIG, sizeof(m.config) + len);
	m.config.offset = off;
	m.config.size = len;
	m.config.flags = 0;
	memset(m.raw + sizeof(m.config), 0, len);
	ret = vhu_front_call(f, &m, NULL, 0, &m, NULL, len, e);
	if (!ret)
		memcpy(buf, m.raw + sizeof(m.config), len);
	return ret;
}

int vhu_front_set_config(struct vhu_front *f, uint32_t off, const uint8_t *buf,
			 uint32_t len, struct err *e)
{
	struct vhu_msg m;

	if (len > VHU_MAX_CONFIG || off > VHU_MAX_CONFIG - len)
		return err_set(e, -EINVAL, "%s: config range", f->name);
	hdr(&m, VHU_SET_CONFIG, sizeof(m.config) + len);
	m.config.offset = off;
	m.config.size = len;
	m.config.flags = 0;
	memcpy(m.raw + sizeof(m.config), buf, len);
	return vhu_front_call(f, &m, NULL, 0, &m, NULL, 0, e);
}

static int send_fd(struct vhu_front *f, uint32_t req, uint32_t index, int fd,
		   struct err *e)
{
	if (fd < 0)
		return send_u64(f, req, index | VHU_VRING_NOFD, NULL, 0, e);
	return send_u64(f, req, index, &fd, 1, e);
}

int vhu_front_start_vring(struct vhu_front *f, const struct vhu_vring_setup *s,
			  struct err *e)
{
	struct vhu_msg m;
	int ret;

	ret = send_state(f, VHU_SET_VRING_NUM, s->index, s->num, e);
	if (ret)
		return ret;
	hdr(&m, VHU_SET_VRING_ADDR, sizeof(m.addr));
	memset(&m.addr, 0, sizeof(m.addr));
	m.addr.index = s->index;
	m.addr.desc_ua = s->desc_ua;
	m.addr.avail_ua = s->avail_ua;
	m.addr.used_ua = s->used_ua;
	ret = vhu_front_call(f, &m, NULL, 0, &m, NULL, 0, e);
	if (!ret)
		ret = send_state(f, VHU_SET_VRING_BASE, s->index, s->base, e);
	if (!ret)
		ret = send_fd(f, VHU_SET_VRING_KICK, s->index, s->kick, e);
	if (!ret)
		ret = send_fd(f, VHU_SET_VRING_CALL, s->index, s->call, e);
	if (!ret && s->err >= 0)
		ret = send_fd(f, VHU_SET_VRING_ERR, s->index, s->err, e);
	if (!ret && (f->features & (1ull << VHU_F_PROTOCOL_FEATURES)))
		ret = send_state(f, VHU_SET_VRING_ENABLE, s->index, 1, e);
	return ret;
}

int vhu_front_stop_vring(struct vhu_front *f, uint32_t index, uint16_t *base,
			 struct err *e)
{
	struct vhu_msg m;
	int ret;

	hdr(&m, VHU_GET_VRING_BASE, sizeof(m.state));
	m.state.index = index;
	m.state.num = 0;
	ret = vhu_front_call(f, &m, NULL, 0, &m, NULL, 0, e);
	if (ret)
		return ret;
	if (m.state.index != index || m.state.num > 0xffff)
		return err_set(e, -EPROTO,
			       "%s: vhost-user GET_VRING_BASE: reply for ring "
			       "%u with base %u",
			       f->name, m.state.index, m.state.num);
	*base = (uint16_t)m.state.num;
	return 0;
}

int vhu_front_get_inflight(struct vhu_front *f, uint16_t nq, uint16_t qsize,
			   int *fd, void **map, uint64_t *size, struct err *e)
{
	uint64_t need = vhu_inflight_queue_size(qsize) * nq;
	struct vhu_msg m;
	struct stat st;
	void *p;
	int rfd = -1, ret;

	hdr(&m, VHU_GET_INFLIGHT_FD, sizeof(m.inflight));
	memset(&m.inflight, 0, sizeof(m.inflight));
	m.inflight.num_queues = nq;
	m.inflight.queue_size = qsize;
	ret = vhu_front_call(f, &m, NULL, 0, &m, &rfd, 0, e);
	if (ret)
		return ret;
	/* The back-end chose the file and the numbers: all checked. */
	if (m.inflight.mmap_size < need ||
	    m.inflight.mmap_size > (1ull << 30) ||
	    m.inflight.mmap_offset & 4095 || fstat(rfd, &st) < 0 ||
	    m.inflight.mmap_offset + m.inflight.mmap_size <
		    m.inflight.mmap_offset ||
	    m.inflight.mmap_offset + m.inflight.mmap_size >
		    (uint64_t)st.st_size) {
		close(rfd);
		return err_set(e, -EPROTO,
			       "%s: vhost-user GET_INFLIGHT_FD: a buffer of "
			       "%llu bytes at %llu does not fit its file or "
			       "%u queues",
			       f->name,
			       (unsigned long long)m.inflight.mmap_size,
			       (unsigned long long)m.inflight.mmap_offset, nq);
	}
	p = mmap(NULL, m.inflight.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 rfd, (off_t)m.inflight.mmap_offset);
	if (p == MAP_FAILED) {
		ret = -errno;
		close(rfd);
		return err_set(e, ret, "%s: inflight buffer: mmap: %s", f->name,
			       strerror(-ret));
	}
	*fd = rfd;
	*map = p;
	*size = m.inflight.mmap_size;
	return 0;
}

int vhu_front_set_inflight(struct vhu_front *f, int fd, uint64_t size,
			   uint16_t nq, uint16_t qsize, struct err *e)
{
	struct vhu_msg m;

	hdr(&m, VHU_SET_INFLIGHT_FD, sizeof(m.inflight));
	m.inflight.mmap_size = size;
	m.inflight.mmap_offset = 0;
	m.inflight.num_queues = nq;
	m.inflight.queue_size = qsize;
	return vhu_front_call(f, &m, &fd, 1, &m, NULL, 0, e);
}
