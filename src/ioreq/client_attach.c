// SPDX-License-Identifier: MIT
/*
 * Attaching to a server: connect (retrying while a spawned server has
 * not bound its socket yet), check who the peer is, create the shared
 * page and eventfds, run the handshake (HELLO, WELCOME, MEM_MAP, then the
 * server's ranges and doorbells up to READY) into a fresh attachment and
 * publish it. Also client creation, re-attach and the guest-RAM remap.
 *
 * Every send to the server and every wait for it is bounded by one
 * deadline per attach: a server that floods the handshake or stops
 * reading costs at most that long, and nothing it queued is processed
 * after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ioreq/client_priv.h"
#include "ioreq/msg.h"
#include "util/log.h"
#include "util/time.h"

static uint64_t deadline_in(int ms)
{
	return now_ns() + (uint64_t)ms * 1000000ull;
}

static int ms_left(uint64_t deadline)
{
	uint64_t now = now_ns();

	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* Refuses a peer that is neither the expected uid nor root: anyone who
 * can bind the path first would otherwise get guest RAM. */
static int check_peer(struct ioreq_client *c, int fd, struct err *e)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	uid_t want = c->cfg.server_uid ? c->cfg.server_uid : geteuid();

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return err_set(e, -errno, "%s: server socket '%s': peer: %s",
			       c->name, c->path, strerror(errno));
	if (cr.uid != want && cr.uid != 0)
		return err_set(e, -EACCES,
			       "%s: server socket '%s': the peer runs as uid "
			       "%u (pid %d), expected uid %u or root: refused",
			       c->name, c->path, (unsigned)cr.uid, (int)cr.pid,
			       (unsigned)want);
	return 0;
}

/* Returns the connected socket or -errno. */
static int connect_socket(struct ioreq_client *c, uint64_t deadline,
			  struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int ret;

	/* Checked at creation; the copy cannot be cut here. */
	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		int err;

		if (fd < 0)
			return err_set(e, -errno, "%s: socket: %s", c->name,
				       strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			ret = check_peer(c, fd, e);
			if (ret) {
				close(fd);
				return ret;
			}
			return fd;
		}
		err = errno;
		close(fd);
		/* A server being started has not bound its socket yet. */
		if ((err != ENOENT && err != ECONNREFUSED) ||
		    now_ns() >= deadline)
			/* Nobody serves the socket the user named: theirs
			 * to fix; anything else is the host's. */
			return err_setc(e,
					err == ENOENT || err == ECONNREFUSED ?
						ERR_CONFIG :
						ERR_HOST,
					-err, "%s: server socket '%s': %s",
					c->name, c->path, strerror(err));
		usleep(10000);
	}
}

static int make_eventfd(struct ioreq_client *c, int *fd, struct err *e)
{
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*fd < 0)
		return err_set(e, -errno, "%s: eventfd: %s", c->name,
			       strerror(errno));
	return 0;
}

/* The shared page: slots, then the buffered ring. The server writes slot
 * state and data and the ring's tail, so it gets it writable, but with
 * its size sealed: a server that shrank it would SIGBUS our vCPUs. */
static int make_shared(struct ioreq_client *c, struct ioreq_attachment *a,
		       struct err *e)
{
	size_t ring_bytes = sizeof(struct ioreq_ring) +
			    RING_ENTRIES * sizeof(struct ioreq_ring_entry);
	int ret;

	a->shm_size = (RING_OFFSET + ring_bytes + 4095) & ~(size_t)4095;
	a->shm_fd = memfd_create("wisp-ioreq", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (a->shm_fd < 0 || ftruncate(a->shm_fd, (off_t)a->shm_size) < 0 ||
	    fcntl(a->shm_fd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return err_set(e, -errno, "%s: shared page: %s", c->name,
			       strerror(errno));
	a->shm = mmap(NULL, a->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      a->shm_fd, 0);
	if (a->shm == MAP_FAILED) {
		a->shm = NULL;
		return err_set(e, -errno, "%s: shared page: %s", c->name,
			       strerror(errno));
	}
	a->slots = (struct ioreq_slot *)(void *)a->shm;
	a->ring = (struct ioreq_ring *)(void *)(a->shm + RING_OFFSET);
	a->ring_head = 0;
	ret = make_eventfd(c, &a->wake_efd, e);
	for (int i = 0; !ret && i < c->cfg.nr_vcpus; i++)
		ret = make_eventfd(c, &a->resp_efd[i], e);
	return ret;
}

static int send_mem_map(struct ioreq_client *c, int sock, uint64_t deadline)
{
	struct ioreq_mem_map m = { 0 };
	const struct guest_mem *g = c->cfg.mem;

	m.hdr.type = IOREQ_MSG_MEM_MAP;
	m.hdr.len = sizeof(m);
	m.generation = ++c->mem_generation;
	m.nr_regions = (uint32_t)g->nr_regions;
	for (int i = 0; i < g->nr_regions; i++) {
		m.regions[i].gpa = g->regions[i].gpa;
		m.regions[i].size = g->regions[i].size;
		m.regions[i].offset = g->regions[i].offset;
	}
	return ioreq_send_by(sock, &m, sizeof(m), &g->memfd, 1, deadline);
}

static bool in_window(const struct ioreq_client *c, uint64_t addr, uint64_t len)
{
	return len && addr >= c->cfg.window_base &&
	       addr - c->cfg.window_base < c->cfg.window_size &&
	       len <= c->cfg.window_size - (addr - c->cfg.window_base);
}

static int handle_map_range(struct ioreq_client *c, struct ioreq_attachment *a,
			    const struct ioreq_map_range *m)
{
	uint64_t off;

	if (m->space != IOREQ_SPACE_MMIO ||
	    (m->mode != IOREQ_RANGE_SYNC && m->mode != IOREQ_RANGE_POSTED) ||
	    !in_window(c, m->addr, m->len))
		return -EINVAL;
	if (m->mode == IOREQ_RANGE_POSTED &&
	    !(a->features & IOREQ_F_BUFFERED_RING))
		return -EINVAL;
	if (a->nr_ranges == IOREQ_MAX_RANGES)
		return -ENOSPC;
	off = m->addr - c->cfg.window_base;
	for (int i = 0; i < a->nr_ranges; i++) {
		const struct fwd_range *r = &a->ranges[i];

		if (off < r->off + r->len && r->off < off + m->len)
			return -EEXIST;
	}
	a->ranges[a->nr_ranges++] =
		(struct fwd_range){ off, m->len, m->mode, false };
	return 0;
}

static int handle_add_doorbell(struct ioreq_client *c,
			       struct ioreq_attachment *a,
			       const struct ioreq_add_doorbell *m, int fd)
{
	uint32_t flags = (m->flags & IOREQ_DB_DATAMATCH) ? IOEVR_F_DATAMATCH :
							   0;
	int ret;

	if (!(a->features & IOREQ_F_DOORBELLS) ||
	    m->space != IOREQ_SPACE_MMIO || (m->flags & ~IOREQ_DB_DATAMATCH) ||
	    (m->len != 1 && m->len != 2 && m->len != 4 && m->len != 8) ||
	    !in_window(c, m->addr, m->len))
		return -EINVAL;
	if (a->nr_dbs == MAX_DOORBELLS)
		return -ENOSPC;
	if (!c->cfg.doorbells)
		return -EOPNOTSUPP;
	ret = ioevr_assign(c->cfg.doorbells, m->addr, m->len, flags,
			   m->datamatch, fd);
	if (ret)
		return ret;
	a->dbs[a->nr_dbs++] =
		(struct doorbell){ m->addr, m->len, flags, m->datamatch, fd };
	return 0;
}

/* HELLO, WELCOME + MEM_MAP. */
static int greet(struct ioreq_client *c, struct ioreq_attachment *a,
		 uint64_t deadline, struct err *e)
{
	union {
		struct ioreq_hdr hdr;
		struct ioreq_hello hello;
		uint8_t raw[IOREQ_MAX_MSG];
	} m;
	struct ioreq_welcome w = { 0 };
	int fds[IOREQ_MAX_FDS], nfds, n, ret, iommu_peer = -1, state_peer = -1;

	n = ioreq_recv(a->sock, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds,
		       ms_left(deadline));
	if (n <= 0)
		return err_set(e, n ? n : -ECONNRESET, "%s: no HELLO: %s",
			       c->name, n ? strerror(-n) : "disconnected");
	ioreq_close_fds(fds, nfds);
	if (m.hdr.type != IOREQ_MSG_HELLO || n != sizeof(m.hello) ||
	    m.hello.magic != IOREQ_MAGIC)
		return err_set(e, -EPROTO, "%s: bad HELLO", c->name);
	if (m.hello.version < IOREQ_VERSION_MIN)
		return err_set(e, -EPROTONOSUPPORT,
			       "%s: server speaks version %u, wisp %u to %u",
			       c->name, m.hello.version, IOREQ_VERSION_MIN,
			       IOREQ_VERSION);
	memcpy(a->server_name, m.hello.name, sizeof(a->server_name));
	a->server_name[sizeof(a->server_name) - 1] = 0;
	/* A newer server talks our version; an older one its own. */
	a->version = m.hello.version < IOREQ_VERSION ? m.hello.version :
						       IOREQ_VERSION;
	a->features = m.hello.features & c->cfg.features;
	if (a->version < 2 || !c->cfg.iommu.snapshot)
		a->features &= ~IOREQ_F_IOMMU;
	/* The shared InterruptStatus lives in the ring's header and means
	 * a virtio-mmio window. */
	if ((a->features & (IOREQ_F_BUFFERED_RING | IOREQ_F_VIRTIO_MMIO)) !=
	    (IOREQ_F_BUFFERED_RING | IOREQ_F_VIRTIO_MMIO))
		a->features &= ~IOREQ_F_SHARED_ISR;
	/* Behind the IOMMU the guest hands the device IOVAs: a server that
	 * cannot translate them would use them as guest-physical
	 * addresses, outside the confinement the guest asked for. */
	if (c->cfg.iommu.snapshot && !(a->features & IOREQ_F_IOMMU))
		return err_config(
			e, -EPROTONOSUPPORT,
			"%s: server '%s' (IOREQ version %u) does not translate "
			"DMA (no IOREQ_F_IOMMU) and cannot be put behind "
			"--iommu: refused (update the server, or run the VM "
			"without --iommu)",
			c->name, a->server_name, m.hello.version);

	ret = make_shared(c, a, e);
	if (ret)
		return ret;
	if (a->features & IOREQ_F_IOMMU) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) <
		    0)
			return err_set(e, -errno, "%s: IOMMU channel: %s",
				       c->name, strerror(errno));
		a->iommu_sock = sv[0];
		iommu_peer = sv[1];
	}
	/* Its own channel, so a snapshot (on the API's thread) never
	 * reads an answer the main loop's control-socket watch wants. */
	if (a->features & IOREQ_F_STATE) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) <
		    0) {
			ret = err_set(e, -errno, "%s: state channel: %s",
				      c->name, strerror(errno));
			if (iommu_peer >= 0)
				close(iommu_peer);
			return ret;
		}
		a->state_sock = sv[0];
		state_peer = sv[1];
	}
	w.hdr.type = IOREQ_MSG_WELCOME;
	w.hdr.len = sizeof(w);
	w.magic = IOREQ_MAGIC;
	w.version = a->version;
	w.features = a->features;
	w.nr_vcpus = (uint32_t)c->cfg.nr_vcpus;
	w.shared_size = a->shm_size;
	if (a->features & IOREQ_F_BUFFERED_RING) {
		w.ring_offset = RING_OFFSET;
		w.ring_entries = RING_ENTRIES;
	}
	w.gsi = c->cfg.gsi;
	w.window_base = c->cfg.window_base;
	w.window_size = c->cfg.window_size;
	fds[0] = a->shm_fd;
	fds[1] = c->irq_efd;
	fds[2] = a->wake_efd;
	for (int i = 0; i < c->cfg.nr_vcpus; i++)
		fds[3 + i] = a->resp_efd[i];
	nfds = 3 + c->cfg.nr_vcpus;
	if (iommu_peer >= 0)
		fds[nfds++] = iommu_peer;
	if (state_peer >= 0)
		fds[nfds++] = state_peer;
	ret = ioreq_send_by(a->sock, &w, sizeof(w), fds, nfds, deadline);
	/* The server has its own reference now (or never will). */
	if (iommu_peer >= 0)
		close(iommu_peer);
	if (state_peer >= 0)
		close(state_peer);
	if (!ret)
		ret = send_mem_map(c, a->sock, deadline);
	if (ret)
		return err_set(e, ret, "%s: sending WELCOME: %s", c->name,
			       strerror(-ret));
	return 0;
}

/* The server's MAP_RANGE / ADD_DOORBELL messages up to READY, each
 * answered with an ACK. */
static int handshake(struct ioreq_client *c, struct ioreq_attachment *a,
		     uint64_t deadline, struct err *e)
{
	union {
		struct ioreq_hdr hdr;
		struct ioreq_map_range range;
		struct ioreq_add_doorbell db;
		uint8_t raw[IOREQ_MAX_MSG];
	} m;
	int fds[IOREQ_MAX_FDS], nfds, n, ret;

	ret = greet(c, a, deadline, e);
	if (ret)
		return ret;
	for (;;) {
		struct ioreq_ack ack = { { IOREQ_MSG_ACK, sizeof(ack), 0, 0 },
					 0,
					 0 };

		/* Past the deadline nothing more is read, however much the
		 * server has queued. */
		if (now_ns() >= deadline)
			return err_set(e, -ETIMEDOUT,
				       "%s: handshake: no READY in time",
				       c->name);
		n = ioreq_recv(a->sock, &m, sizeof(m), fds, IOREQ_MAX_FDS,
			       &nfds, ms_left(deadline));
		if (n <= 0)
			return err_set(e, n ? n : -ECONNRESET,
				       "%s: handshake: %s", c->name,
				       n ? strerror(-n) : "disconnected");
		switch (m.hdr.type) {
		case IOREQ_MSG_MAP_RANGE:
			ioreq_close_fds(fds, nfds);
			ret = n == sizeof(m.range) && !nfds ?
				      handle_map_range(c, a, &m.range) :
				      -EPROTO;
			break;
		case IOREQ_MSG_ADD_DOORBELL:
			if (n != sizeof(m.db) || nfds != 1) {
				ioreq_close_fds(fds, nfds);
				ret = -EPROTO;
				break;
			}
			ret = handle_add_doorbell(c, a, &m.db, fds[0]);
			if (ret)
				close(fds[0]);
			break;
		case IOREQ_MSG_READY:
			ioreq_close_fds(fds, nfds);
			if (n != sizeof(m.hdr) || nfds)
				return err_set(e, -EPROTO, "%s: bad READY",
					       c->name);
			return 0;
		case IOREQ_MSG_MEM_UNMAPPED:
			ioreq_close_fds(fds, nfds);
			continue;
		case IOREQ_MSG_IOMMU_FAULT:
			ioreq_close_fds(fds, nfds);
			/* Not attached yet: nothing to report it for. */
			if (nfds || !(a->features & IOREQ_F_IOMMU) ||
			    n != sizeof(struct ioreq_iommu_fault))
				return err_set(e, -EPROTO,
					       "%s: bad IOMMU_FAULT", c->name);
			continue;
		default:
			ioreq_close_fds(fds, nfds);
			return err_set(e, -EPROTO,
				       "%s: unexpected message type %u",
				       c->name, m.hdr.type);
		}
		if (ret == -EPROTO)
			return err_set(e, ret, "%s: malformed message type %u",
				       c->name, m.hdr.type);
		ack.hdr.seq = m.hdr.seq;
		ack.status = ret;
		ret = ioreq_send_by(a->sock, &ack, sizeof(ack), NULL, 0,
				    deadline);
		if (ret)
			return err_set(e, ret, "%s: handshake: ACK: %s",
				       c->name, strerror(-ret));
	}
}

static struct ioreq_attachment *new_attachment(void)
{
	struct ioreq_attachment *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->sock = a->shm_fd = a->wake_efd = a->iommu_sock = -1;
	a->state_sock = -1;
	for (int i = 0; i < IOREQ_MAX_VCPUS; i++)
		a->resp_efd[i] = -1;
	return a;
}

/* Posted ranges are coalesced only once the attachment is live: writes
 * queued earlier would reach the stand-in. */
static void add_posted(struct ioreq_client *c, struct ioreq_attachment *a)
{
	if (!c->cfg.posted.add_posted)
		return;
	for (int i = 0; i < a->nr_ranges; i++) {
		struct fwd_range *r = &a->ranges[i];

		if (r->mode == IOREQ_RANGE_POSTED)
			r->coalesced = c->cfg.posted.add_posted(
					       c->cfg.posted.opaque,
					       c->cfg.window_base + r->off,
					       r->len) == 0;
	}
}

int ioreq_client_attach(struct ioreq_client *c, int connect_ms, int timeout_ms,
			struct err *e)
{
	struct ioreq_attachment *a = new_attachment();
	uint64_t deadline = deadline_in(connect_ms);
	int ret;

	if (!a)
		return err_set(e, -ENOMEM, "%s: out of memory", c->name);
	a->sock = connect_socket(c, deadline, e);
	if (a->sock < 0) {
		ret = a->sock;
		a->sock = -1;
		ioreq_attachment_free(c, a);
		return ret;
	}
	/* The handshake gets its own bound: a spawned server may have used
	 * most of the first one to start. */
	deadline = deadline_in(timeout_ms);
	ret = handshake(c, a, deadline, e);
	if (ret) {
		ioreq_attachment_free(c, a);
		return ret;
	}
	/* From the snapshot to the publication no IOMMU change may pass:
	 * it would reach neither the snapshot nor the new server. */
	pthread_mutex_lock(&c->iommu_lock);
	if (a->features & IOREQ_F_IOMMU) {
		ret = ioreq_client_iommu_replay(c, a, deadline, e);
		if (ret) {
			pthread_mutex_unlock(&c->iommu_lock);
			ioreq_attachment_free(c, a);
			return ret;
		}
	}
	pthread_rwlock_wrlock(&c->lock);
	c->att = a;
	c->virtio = a->features & IOREQ_F_VIRTIO_MMIO;
	atomic_store(&c->cut_off, false);
	atomic_store(&c->dead, false);
	pthread_rwlock_unlock(&c->lock);
	pthread_mutex_unlock(&c->iommu_lock);
	virtio_standin_attached(&c->standin);
	add_posted(c, a);
	log_info("%s: server '%s' attached (%d ranges, %d doorbells)", c->name,
		 a->server_name, a->nr_ranges, a->nr_dbs);
	return 0;
}

int ioreq_client_create(const struct ioreq_client_config *cfg,
			struct ioreq_client **out, struct err *e)
{
	struct ioreq_client *c;
	struct sockaddr_un sa;
	size_t len = strlen(cfg->socket_path);
	int ret;

	*out = NULL;
	if (len >= sizeof(sa.sun_path))
		return err_config(e, -ENAMETOOLONG,
				  "%s: server socket '%s': %zu bytes, a unix "
				  "socket path has at most %zu",
				  cfg->name, cfg->socket_path, len,
				  sizeof(sa.sun_path) - 1);
	if (cfg->nr_vcpus < 1 || cfg->nr_vcpus > IOREQ_MAX_VCPUS)
		return err_set(e, -EINVAL, "ioreq: %d vCPUs (at most %d)",
			       cfg->nr_vcpus, IOREQ_MAX_VCPUS);
	c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(e, -ENOMEM, "ioreq: out of memory");
	c->cfg = *cfg;
	if (!c->cfg.timeout_ms)
		c->cfg.timeout_ms = 2000;
	if (!c->cfg.connect_timeout_ms)
		c->cfg.connect_timeout_ms = 5000;
	if (!c->cfg.features)
		c->cfg.features = IOREQ_F_ALL;
	snprintf(c->name, sizeof(c->name), "%s", cfg->name);
	memcpy(c->path, cfg->socket_path, len + 1);
	c->cfg.name = c->name;
	c->cfg.socket_path = c->path;
	pthread_rwlock_init(&c->lock, NULL);
	pthread_mutex_init(&c->ring_lock, NULL);
	pthread_mutex_init(&c->iommu_lock, NULL);
	pthread_mutex_init(&c->state_lock, NULL);
	atomic_store(&c->dead, true);
	c->irq_efd = -1;
	ret = virtio_standin_init(&c->standin);
	if (ret) {
		pthread_rwlock_destroy(&c->lock);
		pthread_mutex_destroy(&c->ring_lock);
		pthread_mutex_destroy(&c->iommu_lock);
		pthread_mutex_destroy(&c->state_lock);
		free(c);
		return err_set(e, ret, "%s: %s", cfg->name, strerror(-ret));
	}
	c->irq_efd = fcntl(cfg->irq_efd, F_DUPFD_CLOEXEC, 0);
	if (c->irq_efd < 0) {
		ret = err_set(e, -errno, "%s: %s", c->name, strerror(errno));
		ioreq_client_destroy(c);
		return ret;
	}
	ret = ioreq_client_attach(c, c->cfg.connect_timeout_ms,
				  c->cfg.connect_timeout_ms, e);
	if (ret) {
		ioreq_client_destroy(c);
		return ret;
	}
	*out = c;
	return 0;
}

int ioreq_client_try_attach(struct ioreq_client *c)
{
	struct err e;
	int ret;

	if (c->att)
		return 0;
	/* One connect attempt: the main loop runs this every 200 ms, and
	 * waiting here for a server that is not up yet would stall it
	 * (signals, timers, the posted-write flush) for the whole bound. */
	ret = ioreq_client_attach(c, 0, 2000, &e);
	if (ret && ret != -ENOENT && ret != -ECONNREFUSED)
		log_info("%s", e.msg);
	return ret;
}

int ioreq_client_remap(struct ioreq_client *c, struct err *e)
{
	struct ioreq_mem_gen g = {
		{ IOREQ_MSG_MEM_INVALIDATE, sizeof(g), 0, 0 }, 0, 0
	};
	union ioreq_msg m;
	uint64_t deadline = deadline_in(c->cfg.timeout_ms);
	int fds[IOREQ_MAX_FDS], nfds, n, ret = 0;
	int sock;

	/* The exclusive lock keeps vCPUs from forwarding (and so the
	 * server from touching guest RAM for them) until it is remapped. */
	pthread_rwlock_wrlock(&c->lock);
	if (!c->att) {
		pthread_rwlock_unlock(&c->lock);
		return 0; /* nobody maps the memory */
	}
	sock = c->att->sock;
	g.generation = c->mem_generation;
	ret = ioreq_send_by(sock, &g, sizeof(g), NULL, 0, deadline);
	while (!ret) {
		n = ioreq_recv(sock, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds,
			       ms_left(deadline));
		ioreq_close_fds(fds, nfds);
		if (n <= 0) {
			ret = n ? n : -ECONNRESET;
			break;
		}
		if (m.hdr.type == IOREQ_MSG_MEM_UNMAPPED &&
		    n == sizeof(m.gen) && m.gen.generation == g.generation)
			break;
		/* A fault its device reported meanwhile. */
		if (m.hdr.type == IOREQ_MSG_IOMMU_FAULT && !nfds &&
		    ioreq_client_iommu_fault(c, &m, n) == 0)
			continue;
		ret = -EPROTO;
	}
	if (!ret)
		ret = send_mem_map(c, sock, deadline);
	pthread_rwlock_unlock(&c->lock);
	if (ret) {
		/* No answer means no promise: the server is cut off, and may
		 * still hold the mapping, so nothing is completed for it. */
		if (ret != -ECONNRESET)
			atomic_store(&c->cut_off, true);
		ioreq_client_detach(c, "no answer to MEM_INVALIDATE",
				    ret == -ECONNRESET);
		return err_set(e, ret, "%s: remap: %s", c->name,
			       strerror(-ret));
	}
	return 0;
}
