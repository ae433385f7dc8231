// SPDX-License-Identifier: MIT
#include "ioreq/server.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ioreq/msg.h"

#define CTRL_TIMEOUT_MS 5000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int wisp_ioreq_listen(const char *path, struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, -ENAMETOOLONG, "socket '%s': path too long",
			       path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, -errno, "socket: %s", strerror(errno));
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 4) < 0) {
		int ret = -errno;

		close(fd);
		return err_set(e, ret, "socket '%s': %s", path, strerror(-ret));
	}
	return fd;
}

static int recv_expect(struct wisp_ioreq_server *s, uint32_t type, void *buf,
		       size_t size, int *fds, int want_fds, struct err *e)
{
	int tmp[IOREQ_MAX_FDS], nfds,
		n = ioreq_recv(s->sock, buf, size, tmp, IOREQ_MAX_FDS, &nfds,
			       CTRL_TIMEOUT_MS);
	const struct ioreq_hdr *h = buf;

	if (n <= 0)
		return err_set(e, n ? n : -ECONNRESET,
			       "ioreq: waiting for message %u: %s", type,
			       n ? strerror(-n) : "disconnected");
	if (h->type != type || (size_t)n != size || nfds != want_fds) {
		ioreq_close_fds(tmp, nfds);
		return err_set(
			e, -EPROTO,
			"ioreq: expected message %u (%zu bytes, %d fds), got %u (%d bytes, %d fds)",
			type, size, want_fds, h->type, n, nfds);
	}
	memcpy(fds, tmp, sizeof(int) * (size_t)nfds);
	return 0;
}

static int map_memory(struct wisp_ioreq_server *s, struct err *e)
{
	struct ioreq_mem_map m;
	struct guest_mem_region r[IOREQ_MAX_MEM_REGIONS];
	int fd = -1, ret;

	ret = recv_expect(s, IOREQ_MSG_MEM_MAP, &m, sizeof(m), &fd, 1, e);
	if (ret)
		return ret;
	if (m.nr_regions < 1 || m.nr_regions > IOREQ_MAX_MEM_REGIONS ||
	    m.nr_regions > GUEST_MEM_MAX_REGIONS) {
		close(fd);
		return err_set(e, -EPROTO, "ioreq: MEM_MAP with %u regions",
			       m.nr_regions);
	}
	for (uint32_t i = 0; i < m.nr_regions; i++)
		r[i] = (struct guest_mem_region){ m.regions[i].gpa,
						  m.regions[i].size,
						  m.regions[i].offset };
	ret = guest_mem_attach(&s->mem, fd, r, (int)m.nr_regions, e);
	if (ret)
		close(fd);
	return ret;
}

int wisp_ioreq_accept(int listen_fd, const char *name, uint32_t features,
		      struct wisp_ioreq_server **out, struct err *e)
{
	struct wisp_ioreq_server *s = calloc(1, sizeof(*s));
	struct ioreq_hello h = { 0 };
	int fds[IOREQ_MAX_FDS], nfds = 0, n, ret;

	*out = NULL;
	if (!s)
		return err_set(e, -ENOMEM, "ioreq: out of memory");
	s->shm_fd = s->wake_efd = s->irq_efd = -1;
	s->mem.memfd = -1;
	for (int i = 0; i < IOREQ_MAX_VCPUS; i++)
		s->resp_efd[i] = -1;
	s->spin_ns = 50000;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->sock = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (s->sock < 0) {
		ret = err_set(e, -errno, "ioreq: accept: %s", strerror(errno));
		goto fail;
	}
	h.hdr = (struct ioreq_hdr){ IOREQ_MSG_HELLO, sizeof(h), 0, 0 };
	h.magic = IOREQ_MAGIC;
	h.version = IOREQ_VERSION;
	h.features = features;
	snprintf(h.name, sizeof(h.name), "%s", name);
	ret = ioreq_send(s->sock, &h, sizeof(h), NULL, 0);
	if (ret) {
		err_set(e, ret, "ioreq: HELLO: %s", strerror(-ret));
		goto fail;
	}
	n = ioreq_recv(s->sock, &s->welcome, sizeof(s->welcome), fds,
		       IOREQ_MAX_FDS, &nfds, CTRL_TIMEOUT_MS);
	if (n != sizeof(s->welcome) ||
	    s->welcome.hdr.type != IOREQ_MSG_WELCOME ||
	    s->welcome.magic != IOREQ_MAGIC || s->welcome.nr_vcpus < 1 ||
	    s->welcome.nr_vcpus > IOREQ_MAX_VCPUS ||
	    nfds != 3 + (int)s->welcome.nr_vcpus) {
		ioreq_close_fds(fds, nfds);
		ret = err_set(e, n < 0 ? n : -EPROTO, "ioreq: bad WELCOME");
		goto fail;
	}
	s->shm_fd = fds[0];
	s->irq_efd = fds[1];
	s->wake_efd = fds[2];
	s->nr_vcpus = (int)s->welcome.nr_vcpus;
	for (int i = 0; i < s->nr_vcpus; i++)
		s->resp_efd[i] = fds[3 + i];
	/* The shared page must hold the slots and the ring it announces. */
	if (s->welcome.shared_size < (uint64_t)s->nr_vcpus * 64 ||
	    s->welcome.shared_size > (16u << 20) ||
	    (s->welcome.ring_offset &&
	     (s->welcome.ring_entries == 0 ||
	      (s->welcome.ring_entries & (s->welcome.ring_entries - 1)) ||
	      s->welcome.ring_offset < (uint64_t)s->nr_vcpus * 64 ||
	      s->welcome.ring_offset + sizeof(struct ioreq_ring) +
			      (uint64_t)s->welcome.ring_entries *
				      sizeof(struct ioreq_ring_entry) >
		      s->welcome.shared_size))) {
		ret = err_set(e, -EPROTO,
			      "ioreq: WELCOME layout is inconsistent");
		goto fail;
	}
	s->shm = mmap(NULL, s->welcome.shared_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED, s->shm_fd, 0);
	if (s->shm == MAP_FAILED) {
		s->shm = NULL;
		ret = err_set(e, -errno, "ioreq: shared page: %s",
			      strerror(errno));
		goto fail;
	}
	s->slots = (struct ioreq_slot *)(void *)s->shm;
	if (s->welcome.ring_offset)
		s->ring = (struct ioreq_ring *)(void *)(s->shm +
							s->welcome.ring_offset);
	ret = map_memory(s, e);
	if (ret)
		goto fail;
	*out = s;
	return 0;
fail:
	wisp_ioreq_close(s);
	return ret;
}

static int request(struct wisp_ioreq_server *s, void *msg, size_t len, int fd,
		   struct err *e)
{
	struct ioreq_hdr *h = msg;
	struct ioreq_ack a;
	int ret;

	h->seq = ++s->seq;
	ret = ioreq_send(s->sock, msg, len, fd >= 0 ? &fd : NULL, fd >= 0);
	if (!ret)
		ret = recv_expect(s, IOREQ_MSG_ACK, &a, sizeof(a), NULL, 0, e);
	else
		err_set(e, ret, "ioreq: send: %s", strerror(-ret));
	if (ret)
		return ret;
	if (a.hdr.seq != h->seq)
		return err_set(e, -EPROTO, "ioreq: ACK for the wrong request");
	if (a.status)
		return err_set(e, a.status, "ioreq: the VMM refused: %s",
			       strerror(-a.status));
	return 0;
}

int wisp_ioreq_map_range(struct wisp_ioreq_server *s, uint64_t addr,
			 uint64_t len, uint32_t mode, const struct bus_ops *ops,
			 void *opaque, struct err *e)
{
	struct ioreq_map_range m = { { IOREQ_MSG_MAP_RANGE, sizeof(m), 0, 0 },
				     IOREQ_SPACE_MMIO,
				     mode,
				     addr,
				     len };
	int ret;

	if (s->nr_ranges == IOREQ_MAX_RANGES)
		return err_set(e, -ENOSPC, "ioreq: too many ranges");
	ret = request(s, &m, sizeof(m), -1, e);
	if (ret)
		return ret;
	s->ranges[s->nr_ranges++] =
		(struct wisp_ioreq_range){ addr, len, mode, ops, opaque };
	return 0;
}

int wisp_ioreq_add_doorbell(struct wisp_ioreq_server *s, uint64_t addr,
			    uint32_t len, bool datamatch, uint64_t value,
			    int efd, struct err *e)
{
	struct ioreq_add_doorbell m = {
		{ IOREQ_MSG_ADD_DOORBELL, sizeof(m), 0, 0 },
		IOREQ_SPACE_MMIO,
		datamatch ? IOREQ_DB_DATAMATCH : 0,
		addr,
		len,
		0,
		value,
	};

	return request(s, &m, sizeof(m), efd, e);
}

int wisp_ioreq_ready(struct wisp_ioreq_server *s, struct err *e)
{
	struct ioreq_hdr h = { IOREQ_MSG_READY, sizeof(h), ++s->seq, 0 };
	int ret = ioreq_send(s->sock, &h, sizeof(h), NULL, 0);

	return ret ? err_set(e, ret, "ioreq: READY: %s", strerror(-ret)) : 0;
}

/* --- serving --- */

static const struct wisp_ioreq_range *find(struct wisp_ioreq_server *s,
					   uint64_t addr, uint32_t size)
{
	for (int i = 0; i < s->nr_ranges; i++) {
		const struct wisp_ioreq_range *r = &s->ranges[i];

		if (addr >= r->addr && addr - r->addr < r->len &&
		    size <= r->len - (addr - r->addr))
			return r;
	}
	return NULL;
}

static bool valid_size(uint32_t size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

static void do_write(struct wisp_ioreq_server *s, int cpu, uint64_t addr,
		     uint32_t size, uint64_t data)
{
	const struct wisp_ioreq_range *r;

	if (!valid_size(size))
		return;
	r = find(s, addr, size);
	if (r && r->ops->write)
		r->ops->write(r->opaque, cpu, addr - r->addr,
			      (const uint8_t *)&data, size);
}

static uint64_t do_read(struct wisp_ioreq_server *s, int cpu, uint64_t addr,
			uint32_t size)
{
	const struct wisp_ioreq_range *r;
	uint64_t v = ~0ull;

	if (!valid_size(size))
		return v;
	r = find(s, addr, size);
	if (r && r->ops->read) {
		v = 0;
		r->ops->read(r->opaque, cpu, addr - r->addr, (uint8_t *)&v,
			     size);
	}
	return v;
}

static int drain_ring(struct wisp_ioreq_server *s)
{
	struct ioreq_ring *r = s->ring;
	uint32_t n = s->welcome.ring_entries, tail, head;
	int done = 0;

	if (!r)
		return 0;
	tail = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
	head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	if (head - tail > n)
		return -EPROTO; /* the VMM never publishes more than fits */
	while (tail != head) {
		struct ioreq_ring_entry en = r->entries[tail % n];

		do_write(s, BUS_CPU_NONE, en.addr, en.size, en.data);
		tail++;
		__atomic_store_n(&r->tail, tail, __ATOMIC_RELEASE);
		s->handled_posted++;
		done++;
	}
	return done;
}

static int process(struct wisp_ioreq_server *s)
{
	int done = drain_ring(s);

	if (done < 0)
		return done;
	for (int i = 0; i < s->nr_vcpus; i++) {
		struct ioreq_slot *sl = &s->slots[i];
		uint64_t v;
		int r;

		if (__atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) !=
		    IOREQ_STATE_READY)
			continue;
		/* Posted writes this vCPU made before this request are in
		 * the ring already (published before the slot): run them
		 * first so the device sees program order. */
		r = drain_ring(s);
		if (r < 0)
			return r;
		done += r;
		__atomic_store_n(&sl->state, IOREQ_STATE_INPROCESS,
				 __ATOMIC_RELAXED);
		if (sl->dir == IOREQ_DIR_WRITE) {
			do_write(s, i, sl->addr, sl->size, sl->data);
		} else {
			v = do_read(s, i, sl->addr, sl->size);
			sl->data = v;
		}
		__atomic_store_n(&sl->state, IOREQ_STATE_IORESP_READY,
				 __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&sl->vmm_polling, __ATOMIC_SEQ_CST)) {
			uint64_t one = 1;

			if (write(s->resp_efd[i], &one, sizeof(one)) < 0 &&
			    errno != EAGAIN)
				return -errno;
		}
		s->handled_sync++;
		done++;
	}
	return done;
}

static void set_polling(struct wisp_ioreq_server *s, uint32_t v)
{
	if (s->ring)
		__atomic_store_n(&s->ring->server_polling, v, __ATOMIC_SEQ_CST);
}

/* MEM_INVALIDATE: stop the device's other threads, unmap, confirm, wait
 * for the new layout, map it, resume. */
static int remap(struct wisp_ioreq_server *s, uint32_t generation)
{
	struct ioreq_mem_gen g = { { IOREQ_MSG_MEM_UNMAPPED, sizeof(g), 0, 0 },
				   generation,
				   0 };
	struct err e;
	int ret;

	if (s->pause)
		s->pause(s->hook_opaque);
	guest_mem_destroy(&s->mem);
	ret = ioreq_send(s->sock, &g, sizeof(g), NULL, 0);
	if (!ret)
		ret = map_memory(s, &e);
	if (s->resume)
		s->resume(s->hook_opaque);
	return ret;
}

static int control(struct wisp_ioreq_server *s)
{
	union ioreq_msg m;
	int fds[IOREQ_MAX_FDS], nfds, n;

	n = ioreq_recv(s->sock, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds, 0);
	if (n == -ETIMEDOUT || n == -EAGAIN)
		return 1;
	ioreq_close_fds(fds, nfds);
	if (n <= 0)
		return n == 0 || n == -ECONNRESET ? 0 : n;
	switch (m.hdr.type) {
	case IOREQ_MSG_BYE:
		return 0;
	case IOREQ_MSG_MEM_INVALIDATE:
		if (n != sizeof(m.gen))
			return -EPROTO;
		n = remap(s, m.gen.generation);
		return n ? n : 1;
	default:
		return -EPROTO;
	}
}

int wisp_ioreq_serve(struct wisp_ioreq_server *s)
{
	uint64_t idle_since = now_ns();

	for (;;) {
		struct pollfd p[2] = { { s->sock, POLLIN, 0 },
				       { s->wake_efd, POLLIN, 0 } };
		int n = process(s);

		if (n < 0)
			return n;
		if (n > 0) {
			idle_since = now_ns();
			continue;
		}
		if (now_ns() - idle_since < s->spin_ns) {
			/* Polling: the VMM skips the wake-up eventfd. */
			set_polling(s, 1);
			__builtin_ia32_pause();
			if (poll(p, 1, 0) <= 0)
				continue;
		}
		set_polling(s, 0);
		/* Re-check after clearing the flag: a request published while
		 * the VMM still saw us polling came without a wake-up. */
		n = process(s);
		if (n < 0)
			return n;
		if (n > 0) {
			idle_since = now_ns();
			continue;
		}
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents & POLLIN) {
			uint64_t v;

			if (read(s->wake_efd, &v, sizeof(v)) < 0 &&
			    errno != EAGAIN)
				return -errno;
		}
		if (p[0].revents) {
			int r = control(s);

			if (r <= 0)
				return r;
		}
		idle_since = now_ns();
	}
}

void wisp_ioreq_close(struct wisp_ioreq_server *s)
{
	if (!s)
		return;
	guest_mem_destroy(&s->mem);
	if (s->shm)
		munmap(s->shm, s->welcome.shared_size);
	if (s->shm_fd >= 0)
		close(s->shm_fd);
	if (s->irq_efd >= 0)
		close(s->irq_efd);
	if (s->wake_efd >= 0)
		close(s->wake_efd);
	for (int i = 0; i < IOREQ_MAX_VCPUS; i++)
		if (s->resp_efd[i] >= 0)
			close(s->resp_efd[i]);
	if (s->sock >= 0)
		close(s->sock);
	free(s);
}
