// SPDX-License-Identifier: MIT
#include "ioreq/vmm.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ioreq/msg.h"
#include "util/log.h"
#include "virtio/virtqueue.h"

#define RING_ENTRIES 256
#define RING_OFFSET 4096
#define MAX_DOORBELLS 16
#define MIN_SPIN_NS 20000ull
#define MAX_SPIN_NS 50000ull
#define SHADOW_QUEUES 8

/* virtio-mmio offsets the VMM shadows to stand in for a lost server. */
#define VM_MAGIC 0x000
#define VM_VERSION 0x004
#define VM_DEVICE_ID 0x008
#define VM_VENDOR_ID 0x00c
#define VM_QUEUE_SEL 0x030
#define VM_QUEUE_NUM 0x038
#define VM_QUEUE_READY 0x044
#define VM_INT_STATUS 0x060
#define VM_INT_ACK 0x064
#define VM_STATUS 0x070
#define VM_QUEUE_DESC 0x080
#define VM_QUEUE_DRIVER 0x090
#define VM_QUEUE_DEVICE 0x0a0
#define VM_CONFIG_GEN 0x0fc
#define VIRTIO_NEEDS_RESET 0x40
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_BLK_S_IOERR 1

struct fwd_range {
	uint64_t off, len; /* relative to the window */
	uint32_t mode;
	bool coalesced; /* registered with the host's posted queue */
};

struct doorbell {
	uint64_t addr;
	uint32_t len;
	bool datamatch;
	uint64_t value;
	int efd;
};

struct shadow_queue {
	uint32_t num;
	uint64_t desc, avail, used;
	bool ready;
};

struct ioreq_client {
	struct ioreq_client_config cfg;
	char name[64];
	char path[108];

	/* Shared by forwarding vCPUs, exclusive for attach/detach. */
	pthread_rwlock_t lock;
	/* Set before detaching, so waiting vCPUs give up at once. */
	atomic_bool dead;
	/* We cut a misbehaving server off (timeout, corrupted ring): it may
	 * still be alive, so its in-flight requests must not be completed
	 * behind its back. */
	atomic_bool cut_off;

	/* Valid while attached (under lock). */
	int sock;
	int shm_fd;
	uint8_t *shm;
	size_t shm_size;
	struct ioreq_slot *slots;
	struct ioreq_ring *ring;
	uint32_t ring_head; /* private copy: the shared one is not trusted */
	int wake_efd;
	int resp_efd[IOREQ_MAX_VCPUS];
	uint32_t features;
	char server_name[32];
	struct fwd_range ranges[IOREQ_MAX_RANGES];
	int nr_ranges;
	struct doorbell dbs[MAX_DOORBELLS];
	int nr_dbs;
	uint32_t mem_generation;
	pthread_mutex_t ring_lock; /* producers of the buffered ring */

	int irq_efd; /* our dup, kept across attachments */
	atomic_ullong ewma_ns; /* response time, for the spin budget */

	/* virtio-mmio shadow, guarded by shadow_lock. */
	pthread_mutex_t shadow_lock;
	bool virtio;
	uint32_t sh_id[4]; /* magic, version, device id, vendor */
	uint32_t sh_status, sh_queue_sel, sh_gen, stub_isr;
	struct shadow_queue sh_q[SHADOW_QUEUES];

	atomic_ullong st_sync, st_posted, st_ring_full, st_timeouts,
		st_spins_hit, st_blocks;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void efd_signal(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("ioreq: eventfd write: %s", strerror(errno));
}

static void efd_drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

/* --- attach --- */

static int connect_socket(const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		int err;

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		err = errno;
		close(fd);
		/* A server being started has not bound its socket yet. */
		if ((err != ENOENT && err != ECONNREFUSED) ||
		    now_ns() >= deadline)
			return -err;
		usleep(10000);
	}
}

static void free_attachment(struct ioreq_client *c)
{
	for (int i = 0; i < c->nr_dbs; i++) {
		struct doorbell *d = &c->dbs[i];

		if (c->cfg.host.del_doorbell)
			c->cfg.host.del_doorbell(c->cfg.host.opaque, d->addr,
						 d->len, d->datamatch, d->value,
						 d->efd);
		close(d->efd);
	}
	c->nr_dbs = 0;
	for (int i = 0; i < c->nr_ranges; i++)
		if (c->ranges[i].coalesced && c->cfg.host.del_posted)
			c->cfg.host.del_posted(c->cfg.host.opaque,
					       c->cfg.window_base +
						       c->ranges[i].off,
					       c->ranges[i].len);
	c->nr_ranges = 0;
	if (c->shm)
		munmap(c->shm, c->shm_size);
	c->shm = NULL;
	c->slots = NULL;
	c->ring = NULL;
	if (c->shm_fd >= 0)
		close(c->shm_fd);
	if (c->wake_efd >= 0)
		close(c->wake_efd);
	for (int i = 0; i < IOREQ_MAX_VCPUS; i++) {
		if (c->resp_efd[i] >= 0)
			close(c->resp_efd[i]);
		c->resp_efd[i] = -1;
	}
	if (c->sock >= 0)
		close(c->sock);
	c->shm_fd = c->wake_efd = c->sock = -1;
}

static int make_shared(struct ioreq_client *c, struct err *e)
{
	size_t ring_bytes = sizeof(struct ioreq_ring) +
			    RING_ENTRIES * sizeof(struct ioreq_ring_entry);

	c->shm_size = (RING_OFFSET + ring_bytes + 4095) & ~(size_t)4095;
	c->shm_fd = memfd_create("wisp-ioreq", MFD_CLOEXEC);
	if (c->shm_fd < 0 || ftruncate(c->shm_fd, (off_t)c->shm_size) < 0)
		return err_set(e, -errno, "%s: shared page: %s", c->name,
			       strerror(errno));
	c->shm = mmap(NULL, c->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      c->shm_fd, 0);
	if (c->shm == MAP_FAILED) {
		c->shm = NULL;
		return err_set(e, -errno, "%s: shared page: %s", c->name,
			       strerror(errno));
	}
	c->slots = (struct ioreq_slot *)(void *)c->shm;
	c->ring = (struct ioreq_ring *)(void *)(c->shm + RING_OFFSET);
	c->ring_head = 0;
	c->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_efd < 0)
		return err_set(e, -errno, "%s: eventfd: %s", c->name,
			       strerror(errno));
	for (int i = 0; i < c->cfg.nr_vcpus; i++) {
		c->resp_efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->resp_efd[i] < 0)
			return err_set(e, -errno, "%s: eventfd: %s", c->name,
				       strerror(errno));
	}
	return 0;
}

static int send_mem_map(struct ioreq_client *c)
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
	return ioreq_send(c->sock, &m, sizeof(m), &g->memfd, 1);
}

static int send_ack(struct ioreq_client *c, uint32_t seq, int status)
{
	struct ioreq_ack a = { { IOREQ_MSG_ACK, sizeof(a), seq, 0 },
			       status,
			       0 };

	return ioreq_send(c->sock, &a, sizeof(a), NULL, 0);
}

static bool in_window(const struct ioreq_client *c, uint64_t addr, uint64_t len)
{
	return len && addr >= c->cfg.window_base &&
	       addr - c->cfg.window_base < c->cfg.window_size &&
	       len <= c->cfg.window_size - (addr - c->cfg.window_base);
}

static int handle_map_range(struct ioreq_client *c,
			    const struct ioreq_map_range *m)
{
	uint64_t off;

	if (m->space != IOREQ_SPACE_MMIO ||
	    (m->mode != IOREQ_RANGE_SYNC && m->mode != IOREQ_RANGE_POSTED) ||
	    !in_window(c, m->addr, m->len))
		return -EINVAL;
	if (m->mode == IOREQ_RANGE_POSTED &&
	    !(c->features & IOREQ_F_BUFFERED_RING))
		return -EINVAL;
	if (c->nr_ranges == IOREQ_MAX_RANGES)
		return -ENOSPC;
	off = m->addr - c->cfg.window_base;
	for (int i = 0; i < c->nr_ranges; i++) {
		const struct fwd_range *r = &c->ranges[i];

		if (off < r->off + r->len && r->off < off + m->len)
			return -EEXIST;
	}
	c->ranges[c->nr_ranges++] =
		(struct fwd_range){ off, m->len, m->mode, false };
	if (m->mode == IOREQ_RANGE_POSTED && c->cfg.host.add_posted)
		c->ranges[c->nr_ranges - 1].coalesced =
			c->cfg.host.add_posted(c->cfg.host.opaque, m->addr,
					       m->len) == 0;
	return 0;
}

static int handle_add_doorbell(struct ioreq_client *c,
			       const struct ioreq_add_doorbell *m, int fd)
{
	struct doorbell *d;
	int ret;

	if (!(c->features & IOREQ_F_DOORBELLS) ||
	    m->space != IOREQ_SPACE_MMIO || (m->flags & ~IOREQ_DB_DATAMATCH) ||
	    (m->len != 1 && m->len != 2 && m->len != 4 && m->len != 8) ||
	    !in_window(c, m->addr, m->len))
		return -EINVAL;
	if (c->nr_dbs == MAX_DOORBELLS)
		return -ENOSPC;
	if (!c->cfg.host.add_doorbell)
		return -EOPNOTSUPP;
	ret = c->cfg.host.add_doorbell(c->cfg.host.opaque, m->addr, m->len,
				       m->flags & IOREQ_DB_DATAMATCH,
				       m->datamatch, fd);
	if (ret)
		return ret;
	d = &c->dbs[c->nr_dbs++];
	*d = (struct doorbell){ m->addr, m->len, m->flags & IOREQ_DB_DATAMATCH,
				m->datamatch, fd };
	return 0;
}

/* HELLO ... READY, with the exclusive lock held (or before any vCPU). */
static int handshake(struct ioreq_client *c, int timeout_ms, struct err *e)
{
	union {
		struct ioreq_hdr hdr;
		struct ioreq_hello hello;
		struct ioreq_map_range range;
		struct ioreq_add_doorbell db;
		uint8_t raw[IOREQ_MAX_MSG];
	} m;
	struct ioreq_welcome w = { 0 };
	int fds[IOREQ_MAX_FDS], nfds, n, ret;
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;

	n = ioreq_recv(c->sock, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds,
		       timeout_ms);
	if (n <= 0) {
		return err_set(e, n ? n : -ECONNRESET, "%s: no HELLO: %s",
			       c->name, n ? strerror(-n) : "disconnected");
	}
	ioreq_close_fds(fds, nfds);
	if (m.hdr.type != IOREQ_MSG_HELLO || n != sizeof(m.hello) ||
	    m.hello.magic != IOREQ_MAGIC)
		return err_set(e, -EPROTO, "%s: bad HELLO", c->name);
	if (m.hello.version != IOREQ_VERSION)
		return err_set(e, -EPROTONOSUPPORT,
			       "%s: server speaks version %u, wisp %u", c->name,
			       m.hello.version, IOREQ_VERSION);
	memcpy(c->server_name, m.hello.name, sizeof(c->server_name));
	c->server_name[sizeof(c->server_name) - 1] = 0;
	c->features = m.hello.features & c->cfg.features;

	ret = make_shared(c, e);
	if (ret)
		return ret;
	w.hdr.type = IOREQ_MSG_WELCOME;
	w.hdr.len = sizeof(w);
	w.magic = IOREQ_MAGIC;
	w.version = IOREQ_VERSION;
	w.features = c->features;
	w.nr_vcpus = (uint32_t)c->cfg.nr_vcpus;
	w.shared_size = c->shm_size;
	if (c->features & IOREQ_F_BUFFERED_RING) {
		w.ring_offset = RING_OFFSET;
		w.ring_entries = RING_ENTRIES;
	}
	w.gsi = c->cfg.gsi;
	w.window_base = c->cfg.window_base;
	w.window_size = c->cfg.window_size;
	fds[0] = c->shm_fd;
	fds[1] = c->irq_efd;
	fds[2] = c->wake_efd;
	for (int i = 0; i < c->cfg.nr_vcpus; i++)
		fds[3 + i] = c->resp_efd[i];
	ret = ioreq_send(c->sock, &w, sizeof(w), fds, 3 + c->cfg.nr_vcpus);
	if (!ret)
		ret = send_mem_map(c);
	if (ret)
		return err_set(e, ret, "%s: sending WELCOME: %s", c->name,
			       strerror(-ret));

	for (;;) {
		int left = (int)((deadline - now_ns()) / 1000000);

		if ((int64_t)(deadline - now_ns()) <= 0)
			left = 0;
		n = ioreq_recv(c->sock, &m, sizeof(m), fds, IOREQ_MAX_FDS,
			       &nfds, left);
		if (n <= 0)
			return err_set(e, n ? n : -ECONNRESET,
				       "%s: handshake: %s", c->name,
				       n ? strerror(-n) : "disconnected");
		switch (m.hdr.type) {
		case IOREQ_MSG_MAP_RANGE:
			ioreq_close_fds(fds, nfds);
			ret = n == sizeof(m.range) && !nfds ?
				      handle_map_range(c, &m.range) :
				      -EPROTO;
			break;
		case IOREQ_MSG_ADD_DOORBELL:
			if (n != sizeof(m.db) || nfds != 1) {
				ioreq_close_fds(fds, nfds);
				ret = -EPROTO;
				break;
			}
			ret = handle_add_doorbell(c, &m.db, fds[0]);
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
		default:
			ioreq_close_fds(fds, nfds);
			return err_set(e, -EPROTO,
				       "%s: unexpected message type %u",
				       c->name, m.hdr.type);
		}
		if (ret == -EPROTO)
			return err_set(e, ret, "%s: malformed message type %u",
				       c->name, m.hdr.type);
		ret = send_ack(c, m.hdr.seq, ret);
		if (ret)
			return err_set(e, ret, "%s: %s", c->name,
				       strerror(-ret));
	}
}

static int attach(struct ioreq_client *c, int timeout_ms, struct err *e)
{
	int ret;

	c->sock = connect_socket(c->path, timeout_ms);
	if (c->sock < 0) {
		ret = c->sock;
		c->sock = -1;
		return err_set(e, ret, "%s: server socket '%s': %s", c->name,
			       c->path, strerror(-ret));
	}
	ret = handshake(c, timeout_ms, e);
	if (ret) {
		free_attachment(c);
		return ret;
	}
	pthread_mutex_lock(&c->shadow_lock);
	c->virtio = c->features & IOREQ_F_VIRTIO_MMIO;
	c->stub_isr = 0;
	pthread_mutex_unlock(&c->shadow_lock);
	atomic_store(&c->cut_off, false);
	atomic_store(&c->dead, false);
	log_info("%s: server '%s' attached (%d ranges, %d doorbells)", c->name,
		 c->server_name, c->nr_ranges, c->nr_dbs);
	return 0;
}

int ioreq_client_create(const struct ioreq_client_config *cfg,
			struct ioreq_client **out, struct err *e)
{
	struct ioreq_client *c = calloc(1, sizeof(*c));
	int ret;

	*out = NULL;
	if (!c)
		return err_set(e, -ENOMEM, "ioreq: out of memory");
	if (cfg->nr_vcpus < 1 || cfg->nr_vcpus > IOREQ_MAX_VCPUS) {
		free(c);
		return err_set(e, -EINVAL, "ioreq: %d vCPUs (at most %d)",
			       cfg->nr_vcpus, IOREQ_MAX_VCPUS);
	}
	c->cfg = *cfg;
	if (!c->cfg.timeout_ms)
		c->cfg.timeout_ms = 2000;
	if (!c->cfg.connect_timeout_ms)
		c->cfg.connect_timeout_ms = 5000;
	if (!c->cfg.features)
		c->cfg.features = IOREQ_F_ALL;
	snprintf(c->name, sizeof(c->name), "%s", cfg->name);
	snprintf(c->path, sizeof(c->path), "%s", cfg->socket_path);
	c->cfg.name = c->name;
	c->cfg.socket_path = c->path;
	pthread_rwlock_init(&c->lock, NULL);
	pthread_mutex_init(&c->ring_lock, NULL);
	pthread_mutex_init(&c->shadow_lock, NULL);
	c->sock = c->shm_fd = c->wake_efd = -1;
	for (int i = 0; i < IOREQ_MAX_VCPUS; i++)
		c->resp_efd[i] = -1;
	atomic_store(&c->dead, true);
	c->irq_efd = dup(cfg->irq_efd);
	if (c->irq_efd < 0) {
		ret = err_set(e, -errno, "%s: %s", c->name, strerror(errno));
		ioreq_client_destroy(c);
		return ret;
	}
	ret = attach(c, c->cfg.connect_timeout_ms, e);
	if (ret) {
		ioreq_client_destroy(c);
		return ret;
	}
	*out = c;
	return 0;
}

/* --- detach and the stand-in for a lost virtio device --- */

/* A blk server died with requests in flight: answer them with IOERR so
 * the guest sees errors instead of hanging. Only for a server known to
 * be gone (its socket closed), never for one that is merely slow, which
 * could still complete the same chains. */
static void fail_inflight_blk(struct ioreq_client *c)
{
	static __thread struct virtq_chain chain;

	for (int q = 0; q < SHADOW_QUEUES; q++) {
		struct shadow_queue *s = &c->sh_q[q];
		struct virtq vq = { 0 };
		const char *why;
		uint16_t *used_idx;
		int n = 0;

		if (!s->ready)
			continue;
		vq.size = (uint16_t)s->num;
		vq.desc_gpa = s->desc;
		vq.avail_gpa = s->avail;
		vq.used_gpa = s->used;
		vq.mem = c->cfg.mem;
		vq.indirect = true;
		vq.ready = true;
		if (virtq_validate_rings(&vq, &why) < 0)
			continue;
		used_idx = guest_mem_ptr(c->cfg.mem, s->used + 2, 2);
		/* The server completes in order: everything between used
		 * and avail is in flight. */
		vq.last_avail = vq.used_idx =
			__atomic_load_n(used_idx, __ATOMIC_ACQUIRE);
		while (n++ < vq.size && virtq_pop(&vq, &chain, &why) == 1) {
			const struct virtq_seg *last;

			if (!chain.nr_write)
				break;
			last = &chain.seg[chain.nr_read + chain.nr_write - 1];
			last->host[last->len - 1] = VIRTIO_BLK_S_IOERR;
			virtq_push(&vq, chain.head, 1);
		}
		if (n > 1)
			log_warn(
				"%s: failed %d in-flight request(s) on queue %d",
				c->name, n - 1, q);
	}
}

static void detach(struct ioreq_client *c, const char *why, bool gone)
{
	if (atomic_load(&c->cut_off)) {
		gone = false;
		why = "cut off: it stopped answering or corrupted shared state";
	}
	if (atomic_exchange(&c->dead, true) && c->sock < 0)
		return;
	/* Wake vCPUs waiting for an answer; they see dead and give up. */
	for (int i = 0; i < c->cfg.nr_vcpus; i++)
		efd_signal(c->resp_efd[i]);
	pthread_rwlock_wrlock(&c->lock);
	if (c->sock < 0) {
		pthread_rwlock_unlock(&c->lock);
		return;
	}
	free_attachment(c);
	pthread_mutex_lock(&c->shadow_lock);
	if (c->virtio) {
		if (gone && c->sh_id[2] == VIRTIO_ID_BLOCK)
			fail_inflight_blk(c);
		c->sh_gen++;
		c->stub_isr = 3; /* used buffers (if any) + config change */
	}
	pthread_mutex_unlock(&c->shadow_lock);
	pthread_rwlock_unlock(&c->lock);
	log_warn("%s: server detached (%s); device marked broken%s", c->name,
		 why, c->virtio ? " (NEEDS_RESET)" : "");
	efd_signal(c->irq_efd);
}

int ioreq_client_try_attach(struct ioreq_client *c)
{
	struct err e;
	int ret;

	if (!atomic_load(&c->dead))
		return 0;
	pthread_rwlock_wrlock(&c->lock);
	ret = c->sock >= 0 ? 0 : attach(c, 2000, &e);
	pthread_rwlock_unlock(&c->lock);
	if (ret && ret != -ENOENT && ret != -ECONNREFUSED)
		log_info("%s", e.msg);
	return ret;
}

bool ioreq_client_attached(const struct ioreq_client *c)
{
	return !atomic_load(&c->dead);
}

bool ioreq_client_is_virtio(const struct ioreq_client *c)
{
	return c->virtio;
}

int ioreq_client_fd(const struct ioreq_client *c)
{
	return atomic_load(&c->dead) ? -1 : c->sock;
}

void ioreq_client_handle_event(struct ioreq_client *c)
{
	union ioreq_msg m;
	int fds[IOREQ_MAX_FDS], nfds, n;

	if (c->sock < 0)
		return;
	n = ioreq_recv(c->sock, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds, 0);
	if (n == -ETIMEDOUT || n == -EAGAIN)
		return;
	ioreq_close_fds(fds, nfds);
	if (n == 0 || n == -ECONNRESET) {
		detach(c, "disconnected", true);
		return;
	}
	if (n < 0) {
		detach(c, strerror(-n), false);
		return;
	}
	if (m.hdr.type == IOREQ_MSG_MEM_UNMAPPED && n == sizeof(m.gen))
		return; /* late answer to an invalidation we gave up on */
	detach(c, "protocol violation", false);
}

int ioreq_client_remap(struct ioreq_client *c, struct err *e)
{
	struct ioreq_mem_gen g = {
		{ IOREQ_MSG_MEM_INVALIDATE, sizeof(g), 0, 0 }, 0, 0
	};
	union ioreq_msg m;
	int fds[IOREQ_MAX_FDS], nfds, n, ret = 0;

	pthread_rwlock_wrlock(&c->lock);
	if (c->sock < 0) {
		pthread_rwlock_unlock(&c->lock);
		return 0; /* nobody maps the memory */
	}
	g.generation = c->mem_generation;
	ret = ioreq_send(c->sock, &g, sizeof(g), NULL, 0);
	while (!ret) {
		n = ioreq_recv(c->sock, &m, sizeof(m), fds, IOREQ_MAX_FDS,
			       &nfds, c->cfg.timeout_ms);
		ioreq_close_fds(fds, nfds);
		if (n <= 0) {
			ret = n ? n : -ECONNRESET;
			break;
		}
		if (m.hdr.type == IOREQ_MSG_MEM_UNMAPPED &&
		    n == sizeof(m.gen) && m.gen.generation == g.generation)
			break;
		ret = -EPROTO;
	}
	if (!ret)
		ret = send_mem_map(c);
	pthread_rwlock_unlock(&c->lock);
	if (ret) {
		/* No answer means no promise: the server is cut off, and may
		 * still hold the mapping, so nothing is completed for it. */
		if (ret != -ECONNRESET)
			atomic_store(&c->cut_off, true);
		detach(c, "no answer to MEM_INVALIDATE", ret == -ECONNRESET);
		return err_set(e, ret, "%s: remap: %s", c->name,
			       strerror(-ret));
	}
	return 0;
}

void ioreq_client_destroy(struct ioreq_client *c)
{
	if (!c)
		return;
	if (c->sock >= 0) {
		struct ioreq_hdr bye = { IOREQ_MSG_BYE, sizeof(bye), 0, 0 };

		ioreq_send(c->sock, &bye, sizeof(bye), NULL, 0);
	}
	atomic_store(&c->dead, true);
	free_attachment(c);
	if (c->irq_efd >= 0)
		close(c->irq_efd);
	pthread_rwlock_destroy(&c->lock);
	pthread_mutex_destroy(&c->ring_lock);
	pthread_mutex_destroy(&c->shadow_lock);
	free(c);
}

void ioreq_client_stats(const struct ioreq_client *c, struct ioreq_stats *s)
{
	s->sync = atomic_load(&c->st_sync);
	s->posted = atomic_load(&c->st_posted);
	s->ring_full = atomic_load(&c->st_ring_full);
	s->timeouts = atomic_load(&c->st_timeouts);
	s->spins_hit = atomic_load(&c->st_spins_hit);
	s->blocks = atomic_load(&c->st_blocks);
}

/* --- forwarding (vCPU threads, shared lock held) --- */

static uint64_t spin_budget(struct ioreq_client *c)
{
	uint64_t ewma = atomic_load_explicit(&c->ewma_ns, memory_order_relaxed);

	/* Spin for about twice the usual answer time, within [MIN, MAX]:
	 * the floor keeps one slow answer (which raises the average with
	 * its wake-up latency) from switching spinning off for good, the
	 * cap bounds what a slow server costs us per request. */
	if (ewma * 2 < MIN_SPIN_NS)
		return MIN_SPIN_NS;
	return ewma * 2 > MAX_SPIN_NS ? MAX_SPIN_NS : ewma * 2;
}

/* Returns true with *data filled (reads) once the server answered; false
 * if it is gone or did not answer in time (then it is cut off). */
static bool forward_sync(struct ioreq_client *c, int cpu, uint8_t dir,
			 uint64_t addr, uint32_t size, uint64_t *data)
{
	struct ioreq_slot *s = &c->slots[cpu];
	uint64_t t0 = now_ns(), budget = spin_budget(c), dt;
	uint32_t st;

	s->addr = addr;
	s->size = size;
	s->dir = dir;
	s->space = IOREQ_SPACE_MMIO;
	s->data = dir == IOREQ_DIR_WRITE ? *data : 0;
	s->seq++;
	__atomic_store_n(&s->vmm_polling, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&s->state, IOREQ_STATE_READY, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&c->ring->server_polling, __ATOMIC_SEQ_CST))
		efd_signal(c->wake_efd);
	atomic_fetch_add(&c->st_sync, 1);

	for (;;) {
		st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
		if (st == IOREQ_STATE_IORESP_READY) {
			atomic_fetch_add(&c->st_spins_hit, 1);
			goto answered;
		}
		if (atomic_load(&c->dead))
			return false;
		if (now_ns() - t0 >= budget)
			break;
		__builtin_ia32_pause();
	}
	__atomic_store_n(&s->vmm_polling, 0, __ATOMIC_SEQ_CST);
	atomic_fetch_add(&c->st_blocks, 1);
	for (;;) {
		struct pollfd p = { .fd = c->resp_efd[cpu], .events = POLLIN };
		int64_t left;

		st = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST);
		if (st == IOREQ_STATE_IORESP_READY)
			break;
		if (atomic_load(&c->dead))
			return false;
		left = (int64_t)c->cfg.timeout_ms * 1000000 -
		       (int64_t)(now_ns() - t0);
		if (left <= 0) {
			atomic_fetch_add(&c->st_timeouts, 1);
			log_warn("%s: server did not answer within %d ms",
				 c->name, c->cfg.timeout_ms);
			atomic_store(&c->cut_off, true);
			atomic_store(&c->dead, true);
			/* The main loop sees the hang-up and detaches. */
			shutdown(c->sock, SHUT_RDWR);
			return false;
		}
		poll(&p, 1, (int)(left / 1000000) + 1);
		efd_drain(c->resp_efd[cpu]);
	}
answered:
	if (dir == IOREQ_DIR_READ)
		*data = s->data;
	__atomic_store_n(&s->state, IOREQ_STATE_NONE, __ATOMIC_RELEASE);
	dt = now_ns() - t0;
	atomic_store_explicit(
		&c->ewma_ns,
		(atomic_load_explicit(&c->ewma_ns, memory_order_relaxed) * 7 +
		 dt) / 8,
		memory_order_relaxed);
	return true;
}

/* Returns false when the ring is full (the caller goes synchronous). */
static bool forward_posted(struct ioreq_client *c, uint64_t addr, uint32_t size,
			   uint64_t data)
{
	struct ioreq_ring *r = c->ring;
	struct ioreq_ring_entry *en;
	uint32_t tail, used;

	pthread_mutex_lock(&c->ring_lock);
	tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	used = c->ring_head - tail;
	if (used >= RING_ENTRIES) {
		pthread_mutex_unlock(&c->ring_lock);
		if (used > RING_ENTRIES) {
			/* tail ahead of head: the server wrote garbage. */
			log_warn("%s: buffered ring tail corrupted", c->name);
			atomic_store(&c->cut_off, true);
			atomic_store(&c->dead, true);
			shutdown(c->sock, SHUT_RDWR);
		}
		atomic_fetch_add(&c->st_ring_full, 1);
		return false;
	}
	en = &r->entries[c->ring_head % RING_ENTRIES];
	en->addr = addr;
	en->data = data;
	en->size = size;
	en->space = IOREQ_SPACE_MMIO;
	c->ring_head++;
	__atomic_store_n(&r->head, c->ring_head, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&c->ring_lock);
	atomic_fetch_add(&c->st_posted, 1);
	if (!__atomic_load_n(&r->server_polling, __ATOMIC_SEQ_CST))
		efd_signal(c->wake_efd);
	return true;
}

static const struct fwd_range *find_range(const struct ioreq_client *c,
					  uint64_t off)
{
	for (int i = 0; i < c->nr_ranges; i++)
		if (off - c->ranges[i].off < c->ranges[i].len &&
		    off >= c->ranges[i].off)
			return &c->ranges[i];
	return NULL;
}

static void shadow_access(struct ioreq_client *c, uint64_t off, bool write,
			  uint64_t v)
{
	struct shadow_queue *q;

	if (!c->virtio)
		return;
	pthread_mutex_lock(&c->shadow_lock);
	q = c->sh_queue_sel < SHADOW_QUEUES ? &c->sh_q[c->sh_queue_sel] : NULL;
	if (!write) {
		if (off <= VM_VENDOR_ID && !(off & 3))
			c->sh_id[off / 4] = (uint32_t)v;
		else if (off == VM_STATUS)
			c->sh_status = (uint32_t)v;
		else if (off == VM_CONFIG_GEN)
			c->sh_gen = (uint32_t)v;
		pthread_mutex_unlock(&c->shadow_lock);
		return;
	}
	switch (off) {
	case VM_STATUS:
		c->sh_status = (uint32_t)v;
		if (v == 0)
			memset(c->sh_q, 0, sizeof(c->sh_q));
		break;
	case VM_QUEUE_SEL:
		c->sh_queue_sel = (uint32_t)v;
		break;
	case VM_QUEUE_NUM:
		if (q)
			q->num = (uint32_t)v;
		break;
	case VM_QUEUE_READY:
		if (q)
			q->ready = v != 0;
		break;
	case VM_QUEUE_DESC:
	case VM_QUEUE_DESC + 4:
	case VM_QUEUE_DRIVER:
	case VM_QUEUE_DRIVER + 4:
	case VM_QUEUE_DEVICE:
	case VM_QUEUE_DEVICE + 4:
		if (q) {
			uint64_t *a = off < VM_QUEUE_DRIVER ? &q->desc :
				      off < VM_QUEUE_DEVICE ? &q->avail :
							      &q->used;
			if (off & 4)
				*a = (*a & 0xffffffffull) | (v << 32);
			else
				*a = (*a & ~0xffffffffull) | (uint32_t)v;
		}
		break;
	}
	pthread_mutex_unlock(&c->shadow_lock);
}

/* What a lost virtio-mmio device looks like to its driver. */
static uint64_t stub_read(struct ioreq_client *c, uint64_t off)
{
	uint64_t v = 0;

	pthread_mutex_lock(&c->shadow_lock);
	if (off <= VM_VENDOR_ID && !(off & 3))
		v = c->sh_id[off / 4];
	else if (off == VM_STATUS)
		v = c->sh_status | VIRTIO_NEEDS_RESET;
	else if (off == VM_INT_STATUS)
		v = c->stub_isr;
	else if (off == VM_CONFIG_GEN)
		v = c->sh_gen;
	pthread_mutex_unlock(&c->shadow_lock);
	return v;
}

static void stub_write(struct ioreq_client *c, uint64_t off, uint64_t v)
{
	pthread_mutex_lock(&c->shadow_lock);
	if (off == VM_STATUS)
		c->sh_status = (uint32_t)v;
	else if (off == VM_INT_ACK)
		c->stub_isr &= ~(uint32_t)v;
	pthread_mutex_unlock(&c->shadow_lock);
}

/* vCPU i uses slot i; other threads (the VMM's posted-write drain) the
 * last slot, which the VMM reserves for them. */
static int slot_of(const struct ioreq_client *c, int cpu)
{
	return cpu < 0 ? c->cfg.nr_vcpus - 1 : cpu;
}

static void window_read(void *opaque, int cpu, uint64_t off, uint8_t *data,
			uint32_t len)
{
	struct ioreq_client *c = opaque;
	cpu = slot_of(c, cpu);
	uint64_t v = ~0ull;

	pthread_rwlock_rdlock(&c->lock);
	if (!atomic_load(&c->dead)) {
		/* A read in flight when the server is lost completes with
		 * all-ones; later ones see the stand-in device. */
		if (cpu >= 0 && cpu < c->cfg.nr_vcpus && find_range(c, off) &&
		    forward_sync(c, cpu, IOREQ_DIR_READ,
				 c->cfg.window_base + off, len, &v))
			shadow_access(c, off, false, v);
	} else if (c->virtio) {
		v = stub_read(c, off);
	}
	pthread_rwlock_unlock(&c->lock);
	memcpy(data, &v, len);
}

static void window_write(void *opaque, int cpu, uint64_t off,
			 const uint8_t *data, uint32_t len)
{
	struct ioreq_client *c = opaque;
	cpu = slot_of(c, cpu);
	const struct fwd_range *r;
	uint64_t v = 0;

	memcpy(&v, data, len);
	pthread_rwlock_rdlock(&c->lock);
	if (atomic_load(&c->dead) || cpu < 0 || cpu >= c->cfg.nr_vcpus) {
		if (c->virtio)
			stub_write(c, off, v);
		pthread_rwlock_unlock(&c->lock);
		return;
	}
	r = find_range(c, off);
	if (r) {
		shadow_access(c, off, true, v);
		if (r->mode != IOREQ_RANGE_POSTED ||
		    !forward_posted(c, c->cfg.window_base + off, len, v))
			forward_sync(c, cpu, IOREQ_DIR_WRITE,
				     c->cfg.window_base + off, len, &v);
	}
	pthread_rwlock_unlock(&c->lock);
}

const struct bus_ops ioreq_window_ops = {
	.read = window_read,
	.write = window_write,
};
