// SPDX-License-Identifier: MIT
#include "ioreq/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "iommu/inflight.h"
#include "iommu/iova.h"
#include "ioreq/msg.h"
#include "util/time.h"

#define DEFAULT_TIMEOUT_MS 5000
#define MAX_SHARED_SIZE (16u << 20)
#define MAX_RING_ENTRIES (1u << 16)
/* The ring header holds atomics the VMM and the server share: keep it on
 * its own cache lines (and naturally aligned, which atomics require). */
#define RING_ALIGN 64
/* What a VMM can make the server hold in its IOMMU table (the VMM's own
 * per-domain limit is lower), and how long an UNMAP may wait for the
 * device's requests in flight: below the VMM's 2 s bound on the answer,
 * so a slow disk is reported as a failed UNMAP, not a silent server. */
#define IOMMU_MAX_MAPS 65536
#define IOMMU_DRAIN_MS 1000
#define IOMMU_MAX_FAULTS 16
#define IOMMU_PAGE 4096ull

struct wisp_ioreq_iommu {
	pthread_mutex_t lock; /* mode, space, faults */
	uint32_t mode; /* IOREQ_IOMMU_* */
	struct iova_space space;
	struct dma_inflight infl;
	struct {
		uint64_t iova;
		uint32_t flags;
	} faults[IOMMU_MAX_FAULTS];
	unsigned int nr_faults;
	int fault_efd; /* device threads -> the serving thread */
	struct wisp_ioreq_iommu_stats st;
};

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

/* --- bounded I/O on what the VMM controls --- */

/* Sends one message, waiting at most timeout_ms for room: a VMM that
 * stops reading cannot hold the server in sendmsg(). Only this thread
 * queues messages to the VMM, so room seen by poll() stays room. */
static int send_msg(struct wisp_ioreq_server *s, const void *msg, size_t len,
		    const int *fds, int nfds, struct err *e)
{
	const struct ioreq_hdr *h = msg;
	struct pollfd p = { s->sock, POLLOUT, 0 };
	int r;

	do {
		r = poll(&p, 1, s->timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return err_set(e, -ETIMEDOUT,
			       "ioreq: message %u: the VMM reads nothing",
			       h->type);
	if (r < 0)
		return err_set(e, -errno, "ioreq: message %u: poll: %s",
			       h->type, strerror(errno));
	r = ioreq_send(s->sock, msg, len, fds, nfds);
	if (r)
		return err_set(e, r, "ioreq: message %u: %s", h->type,
			       strerror(-r));
	return 0;
}

/* Empties an eventfd without ever blocking: the VMM shares the open file
 * description and may have cleared O_NONBLOCK on it. */
static int efd_drain(int fd)
{
	uint64_t v;
	struct iovec iov = { &v, sizeof(v) };
	ssize_t n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);

	return n < 0 && errno != EAGAIN && errno != EINTR ? -errno : 0;
}

/* Adds 1 to an eventfd the VMM reads. A write only blocks when the
 * counter is at its maximum, which poll() reports as not writable, so
 * the wait for room is bounded by timeout_ms. (RWF_NOWAIT is not
 * supported for eventfd writes.) A VMM that fills the counter in the
 * instant between the poll and the write can still stall the write
 * until it reads: it stalls only itself. */
static int efd_signal(struct wisp_ioreq_server *s, int fd)
{
	struct pollfd p = { fd, POLLOUT, 0 };
	uint64_t one = 1;
	int r;

	do {
		r = poll(&p, 1, s->timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

static const char *msg_name(uint32_t type)
{
	switch (type) {
	case IOREQ_MSG_WELCOME:
		return "WELCOME";
	case IOREQ_MSG_MEM_MAP:
		return "MEM_MAP";
	case IOREQ_MSG_ACK:
		return "ACK";
	default:
		return "message";
	}
}

/* Receives exactly one message of type and size with want_fds fds. */
static int recv_expect(struct wisp_ioreq_server *s, uint32_t type, void *buf,
		       size_t size, int *fds, int want_fds, struct err *e)
{
	int tmp[IOREQ_MAX_FDS], nfds,
		n = ioreq_recv(s->sock, buf, size, tmp, IOREQ_MAX_FDS, &nfds,
			       s->timeout_ms);
	const struct ioreq_hdr *h = buf;

	if (n <= 0)
		return err_set(e, n ? n : -ECONNRESET,
			       "ioreq: waiting for %s: %s", msg_name(type),
			       n == -EPROTO ? "malformed packet (size or fds)" :
			       n	    ? strerror(-n) :
					      "the VMM disconnected");
	if (h->type != type || (size_t)n != size || nfds != want_fds) {
		ioreq_close_fds(tmp, nfds);
		return err_set(
			e, -EPROTO,
			"ioreq: expected %s (%zu bytes, %d fds), got type %u (%d bytes, %d fds)",
			msg_name(type), size, want_fds, h->type, n, nfds);
	}
	if (want_fds)
		memcpy(fds, tmp, sizeof(int) * (size_t)nfds);
	return 0;
}

/* A memfd or regular file of at least size bytes; *sealed: it cannot
 * shrink any more. */
static int check_memfd(int fd, uint64_t size, const char *what, bool *sealed,
		       struct err *e)
{
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0)
		return err_set(e, -errno, "ioreq: %s fd: %s", what,
			       strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(e, -EPROTO,
			       "ioreq: %s fd is not a memfd or file (mode 0%o)",
			       what, (unsigned int)st.st_mode);
	if ((uint64_t)st.st_size < size)
		return err_set(
			e, -EPROTO,
			"ioreq: %s: announced %llu bytes, the memfd has %llu",
			what, (unsigned long long)size,
			(unsigned long long)st.st_size);
	/* Unsealed, the VMM could shrink it after this check and fault
	 * every access the server makes (SIGBUS): refuse it. */
	seals = fcntl(fd, F_GET_SEALS);
	*sealed = seals >= 0 && (seals & F_SEAL_SHRINK);
	if (!*sealed)
		return err_set(e, -EPROTO,
			       "ioreq: %s memfd is not sealed against "
			       "shrinking (F_SEAL_SHRINK)",
			       what);
	return 0;
}

/* An eventfd: the server polls, drains and signals these, and a FIFO or
 * socket in their place could block the device's own writes. Anonymous
 * inodes have no file type bits; /proc, when mounted, names the kind. */
static int check_eventfd(int fd, const char *what, int i, struct err *e)
{
	char link[64], target[32] = "";
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return err_set(e, -errno, "ioreq: %s fd %d: %s", what, i,
			       strerror(errno));
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n > 0)
		target[n] = 0;
	if ((st.st_mode & S_IFMT) ||
	    (n > 0 && strcmp(target, "anon_inode:[eventfd]")))
		return err_set(e, -EPROTO, "ioreq: %s fd %d is not an eventfd",
			       what, i);
	return 0;
}

static int map_memory(struct wisp_ioreq_server *s, struct err *e)
{
	struct ioreq_mem_map m;
	struct guest_mem_region r[IOREQ_MAX_MEM_REGIONS];
	uint64_t end = 0;
	int fd = -1, ret;

	ret = recv_expect(s, IOREQ_MSG_MEM_MAP, &m, sizeof(m), &fd, 1, e);
	if (ret)
		return ret;
	if (m.nr_regions < 1 || m.nr_regions > IOREQ_MAX_MEM_REGIONS ||
	    m.nr_regions > GUEST_MEM_MAX_REGIONS) {
		ret = err_set(e, -EPROTO, "ioreq: MEM_MAP with %u regions",
			      m.nr_regions);
		goto fail;
	}
	for (uint32_t i = 0; i < m.nr_regions; i++) {
		r[i] = (struct guest_mem_region){ m.regions[i].gpa,
						  m.regions[i].size,
						  m.regions[i].offset };
		/* guest_mem_attach checks the tiling; the sum must not wrap
		 * before it does. */
		if (r[i].size > UINT64_MAX - end) {
			ret = err_set(
				e, -EPROTO,
				"ioreq: MEM_MAP region %u: size overflows", i);
			goto fail;
		}
		end += r[i].size;
	}
	ret = check_memfd(fd, end, "guest memory", &s->mem_sealed, e);
	if (ret)
		goto fail;
	ret = guest_mem_attach(&s->mem, fd, r, (int)m.nr_regions, e);
	if (ret)
		goto fail;
	return 0;
fail:
	close(fd);
	return ret;
}

/* Checks a WELCOME against what was asked and the fds that came with it;
 * every sum is computed so that it cannot wrap. */
static int check_welcome(struct wisp_ioreq_server *s, uint32_t asked, int n,
			 int nfds, struct err *e)
{
	const struct ioreq_welcome *w = &s->welcome;
	uint64_t slots, ring_bytes;

	if (n != sizeof(*w) || w->hdr.type != IOREQ_MSG_WELCOME)
		return err_set(
			e, -EPROTO,
			"ioreq: expected WELCOME, got type %u (%d bytes)",
			w->hdr.type, n);
	if (w->magic != IOREQ_MAGIC || w->version < IOREQ_VERSION_MIN ||
	    w->version > IOREQ_VERSION)
		return err_set(e, -EPROTO,
			       "ioreq: WELCOME with magic 0x%x version %u",
			       w->magic, w->version);
	if (w->features & ~asked)
		return err_set(
			e, -EPROTO,
			"ioreq: WELCOME grants features 0x%x, asked 0x%x",
			w->features, asked);
	/* Version 1 has no IOMMU: a VMM granting it there is broken. */
	if (w->version < 2 && (w->features & IOREQ_F_IOMMU))
		return err_set(e, -EPROTO,
			       "ioreq: WELCOME version %u grants the IOMMU",
			       w->version);
	if (w->nr_vcpus < 1 || w->nr_vcpus > IOREQ_MAX_VCPUS ||
	    nfds != 3 + (int)w->nr_vcpus +
			    ((w->features & IOREQ_F_IOMMU) ? 1 : 0) +
			    ((w->features & IOREQ_F_STATE) ? 1 : 0))
		return err_set(e, -EPROTO,
			       "ioreq: WELCOME for %u vCPUs with %d fds",
			       w->nr_vcpus, nfds);
	if (w->window_size == 0 ||
	    w->window_base + w->window_size < w->window_base)
		return err_set(e, -EPROTO,
			       "ioreq: WELCOME window 0x%llx+0x%llx",
			       (unsigned long long)w->window_base,
			       (unsigned long long)w->window_size);
	slots = (uint64_t)w->nr_vcpus * sizeof(struct ioreq_slot);
	if (w->shared_size < slots || w->shared_size > MAX_SHARED_SIZE)
		return err_set(
			e, -EPROTO,
			"ioreq: WELCOME shared page of %llu bytes for %u slots",
			(unsigned long long)w->shared_size, w->nr_vcpus);
	/* The shared InterruptStatus is in the ring's header. */
	if ((w->features & IOREQ_F_SHARED_ISR) &&
	    (!w->ring_offset || !(w->features & IOREQ_F_VIRTIO_MMIO)))
		return err_set(e, -EPROTO,
			       "ioreq: WELCOME grants the shared "
			       "InterruptStatus without a ring or a "
			       "virtio-mmio window (features 0x%x)",
			       w->features);
	if (!w->ring_offset)
		return 0;
	if (!(w->features & IOREQ_F_BUFFERED_RING) || w->ring_entries == 0 ||
	    w->ring_entries > MAX_RING_ENTRIES ||
	    (w->ring_entries & (w->ring_entries - 1)))
		return err_set(
			e, -EPROTO,
			"ioreq: WELCOME ring of %u entries (features 0x%x)",
			w->ring_entries, w->features);
	ring_bytes =
		sizeof(struct ioreq_ring) +
		(uint64_t)w->ring_entries * sizeof(struct ioreq_ring_entry);
	if (w->ring_offset < slots || w->ring_offset % RING_ALIGN ||
	    w->ring_offset > w->shared_size ||
	    ring_bytes > w->shared_size - w->ring_offset)
		return err_set(
			e, -EPROTO,
			"ioreq: WELCOME ring at %llu (%llu bytes) outside the shared page (%llu bytes, slots end at %llu)",
			(unsigned long long)w->ring_offset,
			(unsigned long long)ring_bytes,
			(unsigned long long)w->shared_size,
			(unsigned long long)slots);
	return 0;
}

/* The IOMMU channel must be what the protocol says: a connected
 * SOCK_SEQPACKET socket (a pipe or a stream socket would break the
 * one-message-per-packet rule under us). */
static bool is_seqpacket(int fd)
{
	struct stat st;
	int type = 0;
	socklen_t len = sizeof(type);

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	       getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	       type == SOCK_SEQPACKET;
}

static int iommu_init(struct wisp_ioreq_server *s, struct err *e)
{
	struct wisp_ioreq_iommu *io;
	int ret;

	if (!is_seqpacket(s->iommu_sock))
		return err_set(e, -EPROTO,
			       "ioreq: WELCOME's IOMMU channel is not a "
			       "SOCK_SEQPACKET socket");
	io = calloc(1, sizeof(*io));
	if (!io)
		return err_set(e, -ENOMEM, "ioreq: IOMMU: out of memory");
	io->fault_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ret = io->fault_efd < 0 ? -errno : dma_inflight_init(&io->infl, 0);
	if (ret) {
		if (io->fault_efd >= 0)
			close(io->fault_efd);
		free(io);
		return err_set(e, ret, "ioreq: IOMMU: %s", strerror(-ret));
	}
	pthread_mutex_init(&io->lock, NULL);
	io->mode = IOREQ_IOMMU_BLOCK;
	iova_space_init(&io->space, IOMMU_MAX_MAPS, NULL);
	s->iommu = io;
	return 0;
}

static void iommu_free(struct wisp_ioreq_iommu *io)
{
	if (!io)
		return;
	iova_space_fini(&io->space);
	dma_inflight_destroy(&io->infl);
	pthread_mutex_destroy(&io->lock);
	close(io->fault_efd);
	free(io);
}

static struct wisp_ioreq_server *server_new(int sock, const char *name)
{
	struct wisp_ioreq_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->sock = sock;
	s->shm_fd = s->wake_efd = s->irq_efd = s->iommu_sock = -1;
	s->state_sock = -1;
	s->mem.memfd = -1;
	for (int i = 0; i < IOREQ_MAX_VCPUS; i++)
		s->resp_efd[i] = -1;
	s->spin_ns = 50000;
	s->timeout_ms = DEFAULT_TIMEOUT_MS;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_efd < 0) {
		free(s);
		return NULL;
	}
	return s;
}

int wisp_ioreq_handshake(int sock, const char *name, uint32_t features,
			 struct wisp_ioreq_server **out, struct err *e)
{
	struct wisp_ioreq_server *s = server_new(sock, name);
	struct ioreq_hello h = { 0 };
	int fds[IOREQ_MAX_FDS], nfds = 0, n, ret;

	*out = NULL;
	if (!s) {
		close(sock);
		return err_set(e, -ENOMEM, "ioreq: %s", strerror(errno));
	}
	h.hdr = (struct ioreq_hdr){ IOREQ_MSG_HELLO, sizeof(h), 0, 0 };
	h.magic = IOREQ_MAGIC;
	h.version = IOREQ_VERSION;
	h.features = features;
	snprintf(h.name, sizeof(h.name), "%s", name);
	ret = send_msg(s, &h, sizeof(h), NULL, 0, e);
	if (ret)
		goto fail;
	n = ioreq_recv(s->sock, &s->welcome, sizeof(s->welcome), fds,
		       IOREQ_MAX_FDS, &nfds, s->timeout_ms);
	if (n <= 0) {
		ret = err_set(e, n ? n : -ECONNRESET,
			      "ioreq: waiting for WELCOME: %s",
			      n == -EPROTO ? "malformed packet (size or fds)" :
			      n		   ? strerror(-n) :
					     "the VMM disconnected");
		goto fail;
	}
	ret = check_welcome(s, features, n, nfds, e);
	if (ret) {
		ioreq_close_fds(fds, nfds);
		goto fail;
	}
	s->shm_fd = fds[0];
	s->irq_efd = fds[1];
	s->wake_efd = fds[2];
	s->nr_vcpus = (int)s->welcome.nr_vcpus;
	for (int i = 0; i < s->nr_vcpus; i++)
		s->resp_efd[i] = fds[3 + i];
	/* The channels come last: the state channel after the IOMMU's. Both
	 * are ours before either is checked, so a failure closes both. */
	if (s->welcome.features & IOREQ_F_STATE)
		s->state_sock = fds[--nfds];
	if (s->welcome.features & IOREQ_F_IOMMU)
		s->iommu_sock = fds[--nfds];
	if (s->welcome.features & IOREQ_F_STATE) {
		if (!is_seqpacket(s->state_sock)) {
			ret = err_set(e, -EPROTO,
				      "ioreq: WELCOME's state channel is not "
				      "a SOCK_SEQPACKET socket");
			goto fail;
		}
		s->state_buf = malloc(IOREQ_MAX_STATE_MSG);
		if (!s->state_buf) {
			ret = err_set(e, -ENOMEM, "ioreq: out of memory");
			goto fail;
		}
	}
	if (s->welcome.features & IOREQ_F_IOMMU) {
		ret = iommu_init(s, e);
		if (ret)
			goto fail;
	}
	for (int i = 1; i < nfds; i++) {
		ret = check_eventfd(fds[i], "WELCOME", i, e);
		if (ret)
			goto fail;
	}
	ret = check_memfd(s->shm_fd, s->welcome.shared_size, "shared page",
			  &s->shm_sealed, e);
	if (ret)
		goto fail;
	s->shm = mmap(NULL, s->welcome.shared_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED, s->shm_fd, 0);
	if (s->shm == MAP_FAILED) {
		s->shm = NULL;
		ret = err_set(e, -errno, "ioreq: shared page: mmap: %s",
			      strerror(errno));
		goto fail;
	}
	s->slots = (struct ioreq_slot *)(void *)s->shm;
	if (s->welcome.ring_offset) {
		s->ring = (struct ioreq_ring *)(void *)(s->shm +
							s->welcome.ring_offset);
		/* Consume from where the producer says it starts; from here
		 * on only our own copy counts. */
		s->ring_tail =
			__atomic_load_n(&s->ring->head, __ATOMIC_ACQUIRE);
		__atomic_store_n(&s->ring->tail, s->ring_tail,
				 __ATOMIC_RELEASE);
	}
	ret = map_memory(s, e);
	if (ret)
		goto fail;
	*out = s;
	return 0;
fail:
	wisp_ioreq_close(s);
	return ret;
}

int wisp_ioreq_accept(int listen_fd, const char *name, uint32_t features,
		      struct wisp_ioreq_server **out, struct err *e)
{
	int sock = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

	*out = NULL;
	if (sock < 0)
		return err_set(e, -errno, "ioreq: accept: %s", strerror(errno));
	return wisp_ioreq_handshake(sock, name, features, out, e);
}

static int request(struct wisp_ioreq_server *s, void *msg, size_t len, int fd,
		   struct err *e)
{
	struct ioreq_hdr *h = msg;
	struct ioreq_ack a;
	int ret;

	h->seq = ++s->seq;
	ret = send_msg(s, msg, len, fd >= 0 ? &fd : NULL, fd >= 0, e);
	if (!ret)
		ret = recv_expect(s, IOREQ_MSG_ACK, &a, sizeof(a), NULL, 0, e);
	if (ret)
		return ret;
	if (a.hdr.seq != h->seq)
		return err_set(e, -EPROTO,
			       "ioreq: ACK for request %u, expected %u",
			       a.hdr.seq, h->seq);
	/* Only a negative errno is a status: anything else would be
	 * handed to the caller as success or as a bogus code. */
	if (a.status > 0 || a.status < -4095)
		return err_set(e, -EPROTO, "ioreq: ACK with status %d",
			       a.status);
	if (a.status)
		return err_set(e, a.status, "ioreq: the VMM refused: %s",
			       strerror(-a.status));
	return 0;
}

uint32_t *wisp_ioreq_shared_isr(struct wisp_ioreq_server *s, uint32_t **reads)
{
	if (!(s->welcome.features & IOREQ_F_SHARED_ISR) || !s->ring) {
		*reads = NULL;
		return NULL;
	}
	*reads = &s->ring->isr_reads;
	return &s->ring->isr;
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

	return send_msg(s, &h, sizeof(h), NULL, 0, e);
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

/* Each field of shared memory is read once, into a local: the VMM may
 * change it at any moment, and a second read could see another value
 * than the one that was checked. */
#define SHARED_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static int drain_ring(struct wisp_ioreq_server *s, struct err *e)
{
	struct ioreq_ring *r = s->ring;
	uint32_t n = s->welcome.ring_entries, tail = s->ring_tail, head;
	int done = 0;

	if (!r)
		return 0;
	head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	if (head - tail > n)
		return err_set(
			e, -EPROTO,
			"ioreq: ring head %u is %u entries past tail %u (ring of %u)",
			head, head - tail, tail, n);
	while (tail != head) {
		/* n is a power of two kept privately: always in range. */
		struct ioreq_ring_entry *en = &r->entries[tail & (n - 1)];
		uint64_t addr = SHARED_LOAD(en->addr),
			 data = SHARED_LOAD(en->data);
		uint32_t size = SHARED_LOAD(en->size);

		do_write(s, BUS_CPU_NONE, addr, size, data);
		tail++;
		s->ring_tail = tail;
		__atomic_store_n(&r->tail, tail, __ATOMIC_RELEASE);
		s->handled_posted++;
		done++;
	}
	return done;
}

static int process(struct wisp_ioreq_server *s, struct err *e)
{
	int done = drain_ring(s, e);

	if (done < 0)
		return done;
	for (int i = 0; i < s->nr_vcpus; i++) {
		struct ioreq_slot *sl = &s->slots[i];
		uint64_t addr, data;
		uint32_t size;
		uint8_t dir;
		int r;

		if (__atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) !=
		    IOREQ_STATE_READY)
			continue;
		/* Posted writes this vCPU made before this request are in
		 * the ring already (published before the slot): run them
		 * first so the device sees program order. */
		r = drain_ring(s, e);
		if (r < 0)
			return r;
		done += r;
		__atomic_store_n(&sl->state, IOREQ_STATE_INPROCESS,
				 __ATOMIC_RELAXED);
		addr = SHARED_LOAD(sl->addr);
		size = SHARED_LOAD(sl->size);
		dir = SHARED_LOAD(sl->dir);
		if (dir == IOREQ_DIR_WRITE) {
			data = SHARED_LOAD(sl->data);
			do_write(s, i, addr, size, data);
		} else {
			/* A read, or a direction that does not exist: the
			 * answer of an unclaimed address. */
			data = dir == IOREQ_DIR_READ ?
				       do_read(s, i, addr, size) :
				       ~0ull;
			__atomic_store_n(&sl->data, data, __ATOMIC_RELAXED);
		}
		__atomic_store_n(&sl->state, IOREQ_STATE_IORESP_READY,
				 __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&sl->vmm_polling, __ATOMIC_SEQ_CST)) {
			r = efd_signal(s, s->resp_efd[i]);
			if (r)
				return err_set(
					e, r,
					"ioreq: slot %d response eventfd: %s",
					i,
					r == -ETIMEDOUT ?
						"full, the VMM does not read it" :
						strerror(-r));
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
static int remap(struct wisp_ioreq_server *s, uint32_t generation,
		 struct err *e)
{
	struct ioreq_mem_gen g = { { IOREQ_MSG_MEM_UNMAPPED, sizeof(g), 0, 0 },
				   generation,
				   0 };
	int ret;

	if (s->pause)
		s->pause(s->hook_opaque);
	guest_mem_destroy(&s->mem);
	ret = send_msg(s, &g, sizeof(g), NULL, 0, e);
	if (!ret)
		ret = map_memory(s, e);
	if (s->resume)
		s->resume(s->hook_opaque);
	return ret;
}

/* One control message: 1 to go on, 0 for BYE or a hang-up, -errno. */
static int control(struct wisp_ioreq_server *s, struct err *e)
{
	union ioreq_msg m;
	int fds[IOREQ_MAX_FDS], nfds, n;

	n = ioreq_recv(s->sock, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds, 0);
	if (n == -ETIMEDOUT || n == -EAGAIN)
		return 1;
	ioreq_close_fds(fds, nfds);
	if (n == 0 || n == -ECONNRESET)
		return 0;
	if (n < 0)
		return err_set(e, n, "ioreq: control message: %s",
			       strerror(-n));
	if (nfds)
		return err_set(e, -EPROTO,
			       "ioreq: control message %u with %d fds",
			       m.hdr.type, nfds);
	switch (m.hdr.type) {
	case IOREQ_MSG_BYE:
		if (n != sizeof(m.hdr))
			break;
		return 0;
	case IOREQ_MSG_MEM_INVALIDATE:
		if (n != sizeof(m.gen))
			break;
		n = remap(s, m.gen.generation, e);
		return n ? n : 1;
	default:
		return err_set(
			e, -EPROTO,
			"ioreq: unexpected control message %u (%d bytes)",
			m.hdr.type, n);
	}
	return err_set(e, -EPROTO, "ioreq: control message %u of %d bytes",
		       m.hdr.type, n);
}

/* --- the IOMMU table --- */

bool wisp_ioreq_iommu(const struct wisp_ioreq_server *s)
{
	return s->iommu != NULL;
}

/* Device threads: a refused DMA, for the serving thread to report. */
static void iommu_fault(struct wisp_ioreq_server *s, uint64_t iova, bool wr)
{
	struct wisp_ioreq_iommu *io = s->iommu;
	uint64_t one = 1;
	ssize_t n;

	io->st.faults++;
	if (io->nr_faults == IOMMU_MAX_FAULTS) {
		io->st.faults_dropped++;
		return;
	}
	io->faults[io->nr_faults].iova = iova;
	io->faults[io->nr_faults].flags = wr ? IOREQ_IOMMU_WRITE :
					       IOREQ_IOMMU_READ;
	io->nr_faults++;
	/* Our own non-blocking eventfd: at worst EAGAIN, then it is set. */
	n = write(io->fault_efd, &one, sizeof(one));
	(void)n;
}

int wisp_ioreq_translate(void *opaque, int token, uint64_t iova, uint64_t len,
			 bool write, uint64_t *gpa, uint64_t *plen)
{
	struct wisp_ioreq_server *s = opaque;
	struct wisp_ioreq_iommu *io = s->iommu;
	uint32_t need = write ? IOVA_PERM_WRITE : IOVA_PERM_READ;
	const struct iova_map *m;
	int ret = 0;

	if (!io) {
		*gpa = iova;
		*plen = len;
		return len ? 0 : -EFAULT;
	}
	if (len == 0)
		return -EFAULT;
	pthread_mutex_lock(&io->lock);
	switch (io->mode) {
	case IOREQ_IOMMU_BYPASS:
		*gpa = iova;
		*plen = len;
		break;
	case IOREQ_IOMMU_TRANSLATE:
		m = iova_space_find(&io->space, iova);
		if (!m || !(m->perm & need)) {
			ret = -EFAULT;
			break;
		}
		*gpa = m->phys + (iova - m->start);
		/* Bytes left in this mapping, without overflowing at 2^64. */
		*plen = m->last - iova >= len - 1 ? len : m->last - iova + 1;
		break;
	default:
		ret = -EFAULT;
		break;
	}
	if (ret)
		iommu_fault(s, iova, write);
	else
		/* Under the table's lock: an UNMAP applied after this
		 * finds the range recorded and waits for the request. */
		dma_inflight_record(&io->infl, token, iova, iova + (*plen - 1));
	pthread_mutex_unlock(&io->lock);
	return ret;
}

int wisp_ioreq_dma_begin(void *opaque)
{
	struct wisp_ioreq_server *s = opaque;

	return s->iommu ? dma_inflight_begin(&s->iommu->infl) : 0;
}

void wisp_ioreq_dma_end(void *opaque, int token)
{
	struct wisp_ioreq_server *s = opaque;

	if (s->iommu)
		dma_inflight_end(&s->iommu->infl, token);
}

void wisp_ioreq_iommu_stats(struct wisp_ioreq_server *s,
			    struct wisp_ioreq_iommu_stats *st)
{
	*st = (struct wisp_ioreq_iommu_stats){ 0 };
	if (!s->iommu)
		return;
	pthread_mutex_lock(&s->iommu->lock);
	*st = s->iommu->st;
	st->mappings = s->iommu->space.nr;
	pthread_mutex_unlock(&s->iommu->lock);
}

/* IOMMU_MAP: the VMM checked the guest's request; we check it again
 * (the VMM is not trusted either) and answer with the table's verdict. */
static int32_t iommu_map(struct wisp_ioreq_iommu *io,
			 const struct ioreq_iommu_map *m)
{
	uint32_t perm = 0;
	int ret;

	if ((m->perm & ~(IOREQ_IOMMU_READ | IOREQ_IOMMU_WRITE)) ||
	    m->reserved || m->last < m->iova ||
	    ((m->iova | m->gpa | (m->last + 1)) & (IOMMU_PAGE - 1)))
		return -EINVAL;
	if (m->perm & IOREQ_IOMMU_READ)
		perm |= IOVA_PERM_READ;
	if (m->perm & IOREQ_IOMMU_WRITE)
		perm |= IOVA_PERM_WRITE;
	pthread_mutex_lock(&io->lock);
	ret = io->mode == IOREQ_IOMMU_TRANSLATE ?
		      iova_space_map(&io->space, m->iova, m->last, m->gpa,
				     perm) :
		      -EINVAL;
	if (!ret)
		io->st.maps++;
	pthread_mutex_unlock(&io->lock);
	return ret;
}

/* IOMMU_UNMAP and IOMMU_RESET: change the table, then wait for every
 * request that may still use what was removed; only then is the change
 * true for the device, and only then is it confirmed. */
static int32_t iommu_unmap(struct wisp_ioreq_iommu *io,
			   const struct ioreq_iommu_unmap *m)
{
	int ret;

	if (m->last < m->iova)
		return -EINVAL;
	pthread_mutex_lock(&io->lock);
	ret = iova_space_unmap(&io->space, m->iova, m->last, NULL);
	if (!ret)
		io->st.unmaps++;
	pthread_mutex_unlock(&io->lock);
	return ret ? ret :
		     dma_inflight_drain(&io->infl, m->iova, m->last,
					IOMMU_DRAIN_MS);
}

static int32_t iommu_reset(struct wisp_ioreq_iommu *io,
			   const struct ioreq_iommu_reset *m)
{
	if (m->mode > IOREQ_IOMMU_TRANSLATE || m->reserved)
		return -EINVAL;
	pthread_mutex_lock(&io->lock);
	iova_space_fini(&io->space);
	iova_space_init(&io->space, IOMMU_MAX_MAPS, NULL);
	io->mode = m->mode;
	io->st.resets++;
	pthread_mutex_unlock(&io->lock);
	return dma_inflight_drain(&io->infl, 0, UINT64_MAX, IOMMU_DRAIN_MS);
}

/* Sends on the IOMMU channel, bounded like send_msg. */
static int iommu_send(struct wisp_ioreq_server *s, const void *msg, size_t len,
		      struct err *e)
{
	struct pollfd p = { s->iommu_sock, POLLOUT, 0 };
	int r;

	do {
		r = poll(&p, 1, s->timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return err_set(e, -ETIMEDOUT,
			       "ioreq: IOMMU_DONE: the VMM reads nothing");
	if (r < 0)
		return err_set(e, -errno, "ioreq: IOMMU channel: poll: %s",
			       strerror(errno));
	r = ioreq_send(s->iommu_sock, msg, len, NULL, 0);
	return r ? err_set(e, r, "ioreq: IOMMU channel: %s", strerror(-r)) : 0;
}

/* One message on the IOMMU channel: 1 to go on, 0 for a hang-up, -errno
 * for a protocol error. */
static int iommu_message(struct wisp_ioreq_server *s, struct err *e)
{
	union {
		struct ioreq_hdr hdr;
		struct ioreq_iommu_map map;
		struct ioreq_iommu_unmap unmap;
		struct ioreq_iommu_reset reset;
		uint8_t raw[IOREQ_MAX_MSG];
	} m;
	struct ioreq_iommu_done d = { { IOREQ_MSG_IOMMU_DONE, sizeof(d), 0, 0 },
				      0,
				      0 };
	int fds[IOREQ_MAX_FDS], nfds, n;

	n = ioreq_recv(s->iommu_sock, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds,
		       0);
	if (n == -ETIMEDOUT || n == -EAGAIN)
		return 1;
	ioreq_close_fds(fds, nfds);
	if (n == 0 || n == -ECONNRESET)
		return 0;
	if (n < 0)
		return err_set(e, n, "ioreq: IOMMU channel: %s", strerror(-n));
	if (nfds)
		return err_set(e, -EPROTO,
			       "ioreq: IOMMU message %u with %d fds",
			       m.hdr.type, nfds);
	switch (m.hdr.type) {
	case IOREQ_MSG_IOMMU_MAP:
		if (n != sizeof(m.map))
			goto bad_size;
		d.status = iommu_map(s->iommu, &m.map);
		break;
	case IOREQ_MSG_IOMMU_UNMAP:
		if (n != sizeof(m.unmap))
			goto bad_size;
		d.status = iommu_unmap(s->iommu, &m.unmap);
		break;
	case IOREQ_MSG_IOMMU_RESET:
		if (n != sizeof(m.reset))
			goto bad_size;
		d.status = iommu_reset(s->iommu, &m.reset);
		break;
	default:
		return err_set(e, -EPROTO,
			       "ioreq: unexpected IOMMU message %u (%d bytes)",
			       m.hdr.type, n);
	}
	d.hdr.seq = m.hdr.seq;
	n = iommu_send(s, &d, sizeof(d), e);
	return n ? n : 1;
bad_size:
	return err_set(e, -EPROTO, "ioreq: IOMMU message %u of %d bytes",
		       m.hdr.type, n);
}

/* Faults the device's threads recorded go to the VMM (control socket): 1
 * to go on, 0 when the VMM has gone (a VMM that closes with our messages
 * unread makes the send fail with ECONNRESET, not the next read), -errno. */
static int iommu_report(struct wisp_ioreq_server *s, struct err *e)
{
	struct wisp_ioreq_iommu *io = s->iommu;
	struct ioreq_iommu_fault f[IOMMU_MAX_FAULTS];
	unsigned int n;
	uint64_t v;
	ssize_t r = read(io->fault_efd, &v, sizeof(v));

	(void)r;
	pthread_mutex_lock(&io->lock);
	n = io->nr_faults;
	for (unsigned int i = 0; i < n; i++)
		f[i] = (struct ioreq_iommu_fault){
			{ IOREQ_MSG_IOMMU_FAULT, sizeof(f[i]), 0, 0 },
			io->faults[i].iova,
			io->faults[i].flags,
			0,
		};
	io->nr_faults = 0;
	pthread_mutex_unlock(&io->lock);
	for (unsigned int i = 0; i < n; i++) {
		int ret = send_msg(s, &f[i], sizeof(f[i]), NULL, 0, e);

		if (ret == -EPIPE || ret == -ECONNRESET)
			return 0;
		if (ret)
			return ret;
	}
	return 1;
}

/* --- device state (IOREQ_F_STATE) --- */

static void state_release(struct wisp_ioreq_server *s)
{
	if (s->state_held && s->state_resume)
		s->state_resume(s->hook_opaque);
	s->state_held = false;
}

/* The answer to one STATE_*: a status and a payload (the state, or on
 * failure the message). The VMM waits for it; a VMM that stops reading
 * gets timeout_ms, then serving ends. */
static int state_answer(struct wisp_ioreq_server *s, uint32_t seq,
			int32_t status, const void *p, size_t len,
			struct err *e)
{
	struct ioreq_state_msg *a =
		(struct ioreq_state_msg *)(void *)s->state_buf;
	int r;

	a->hdr = (struct ioreq_hdr){ IOREQ_MSG_STATE,
				     (uint32_t)(sizeof(*a) + len), seq, 0 };
	a->status = status;
	a->len = (uint32_t)len;
	if (len && p != (const void *)(a + 1))
		memmove(a + 1, p, len);
	/* Bounded even for a 16 KiB answer the socket has no room for. */
	r = ioreq_send_by(s->state_sock, a, sizeof(*a) + len, NULL, 0,
			  now_ns() + (uint64_t)s->timeout_ms * 1000000ull);
	if (r == -ETIMEDOUT)
		return err_set(e, r, "ioreq: STATE: the VMM reads nothing");
	return r ? err_set(e, r, "ioreq: STATE: %s", strerror(-r)) : 0;
}

static int state_failed(struct wisp_ioreq_server *s, uint32_t seq, int ret,
			const struct err *why, struct err *e)
{
	const char *m = why && why->msg[0] ? why->msg : strerror(-ret);
	size_t n = strnlen(m, IOREQ_MAX_STATE_ERR - 1);
	char line[IOREQ_MAX_STATE_ERR];

	/* The protocol's bound on a refusal's message, NUL included. */
	memcpy(line, m, n);
	line[n] = 0;
	return state_answer(s, seq, ret, line, n + 1, e);
}

/* One state-channel message: 1 to go on, 0 for a hang-up, -errno. */
static int state_message(struct wisp_ioreq_server *s, struct err *e)
{
	struct ioreq_state_msg *m =
		(struct ioreq_state_msg *)(void *)s->state_buf;
	uint8_t *payload = s->state_buf + sizeof(*m);
	int fds[IOREQ_MAX_FDS], nfds, n, ret;
	struct err why = { 0 };
	uint32_t seq;

	n = ioreq_recv(s->state_sock, s->state_buf, IOREQ_MAX_STATE_MSG, fds,
		       IOREQ_MAX_FDS, &nfds, 0);
	if (n == -ETIMEDOUT || n == -EAGAIN)
		return 1;
	ioreq_close_fds(fds, nfds);
	if (n == 0 || n == -ECONNRESET)
		return 0;
	if (n < 0)
		return err_set(e, n, "ioreq: state channel: %s%s",
			       n == -EPROTO ? "malformed packet: " : "",
			       strerror(-n));
	if (nfds || (size_t)n < sizeof(*m) ||
	    m->len != (size_t)n - sizeof(*m) || m->status || m->hdr.reserved ||
	    (m->hdr.type != IOREQ_MSG_STATE_LOAD && m->len))
		return err_set(e, -EPROTO,
			       "ioreq: state message %u of %d bytes (%d fds)",
			       m->hdr.type, n, nfds);
	seq = m->hdr.seq;
	switch (m->hdr.type) {
	case IOREQ_MSG_STATE_SAVE:
		/* A second save while held is refused: the VMM resumes
		 * first (its snapshot is over). */
		if (!s->state_save)
			ret = -ENOTSUP;
		else if (s->state_held)
			ret = err_set(&why, -EBUSY,
				      "ioreq: STATE_SAVE: the device is held "
				      "already");
		else
			ret = s->state_save(s->hook_opaque, payload,
					    IOREQ_MAX_STATE, &why);
		if (ret > IOREQ_MAX_STATE)
			ret = err_set(&why, -E2BIG,
				      "ioreq: STATE_SAVE: %d bytes of state",
				      ret);
		if (ret >= 0) {
			s->state_held = true;
			ret = state_answer(s, seq, 0, payload, (size_t)ret, e);
		} else {
			ret = state_failed(s, seq, ret, &why, e);
		}
		break;
	case IOREQ_MSG_STATE_RESUME:
		state_release(s);
		ret = state_answer(s, seq, 0, NULL, 0, e);
		break;
	case IOREQ_MSG_STATE_LOAD:
		if (!s->state_load)
			ret = -ENOTSUP;
		else if (s->state_held)
			ret = err_set(&why, -EBUSY,
				      "ioreq: STATE_LOAD while the device is "
				      "held");
		else
			ret = s->state_load(s->hook_opaque, payload, m->len,
					    &why);
		ret = ret < 0 ? state_failed(s, seq, ret, &why, e) :
				state_answer(s, seq, 0, NULL, 0, e);
		break;
	default:
		return err_set(e, -EPROTO,
			       "ioreq: unexpected state message %u (%d bytes)",
			       m->hdr.type, n);
	}
	return ret ? ret : 1;
}

static bool stopping(struct wisp_ioreq_server *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

static int serve_loop(struct wisp_ioreq_server *s, struct err *e)
{
	uint64_t idle_since = now_ns();
	unsigned int busy = 0;

	for (;;) {
		/* poll() skips the entries whose fd is -1 (no IOMMU, no
		 * state channel). */
		struct pollfd p[6] = { { s->sock, POLLIN, 0 },
				       { s->wake_efd, POLLIN, 0 },
				       { s->stop_efd, POLLIN, 0 },
				       { s->iommu_sock, POLLIN, 0 },
				       { s->iommu ? s->iommu->fault_efd : -1,
					 POLLIN, 0 },
				       { s->state_sock, POLLIN, 0 } };
		int n;

		if (stopping(s))
			return err_set(e, -EINTR, "ioreq: stopped");
		n = process(s, e);
		if (n < 0)
			return n;
		if (n > 0) {
			idle_since = now_ns();
			/* A guest that keeps the slots busy must not starve
			 * the IOMMU channel: the VMM's UNMAP waits on it. */
			if (s->iommu && ++busy % 32 == 0 &&
			    poll(&p[3], 1, 0) > 0) {
				int r = iommu_message(s, e);

				if (r <= 0)
					return r;
			}
			continue;
		}
		if (now_ns() - idle_since < s->spin_ns) {
			/* Polling: the VMM skips the wake-up eventfd. The
			 * IOMMU channel too: the guest's UNMAP waits for our
			 * answer, and a strict-mode guest sends two per I/O. */
			struct pollfd q[2] = { p[0], p[3] };

			set_polling(s, 1);
			__builtin_ia32_pause();
			if (poll(q, s->iommu ? 2 : 1, 0) <= 0)
				continue;
		}
		set_polling(s, 0);
		/* Re-check after clearing the flag: a request published while
		 * the VMM still saw us polling came without a wake-up. */
		n = process(s, e);
		if (n < 0)
			return n;
		if (n > 0) {
			idle_since = now_ns();
			continue;
		}
		/* Waiting for the next request has no bound: an idle guest
		 * sends none. A VMM that goes away hangs the socket up. */
		if (poll(p, 6, -1) < 0 && errno != EINTR)
			return err_set(e, -errno, "ioreq: poll: %s",
				       strerror(errno));
		if (s->iommu && p[3].revents) {
			int r = iommu_message(s, e);

			if (r <= 0)
				return r;
		}
		if (s->iommu && (p[4].revents & POLLIN)) {
			n = iommu_report(s, e);
			if (n <= 0)
				return n;
		}
		if (p[5].revents) {
			int r = state_message(s, e);

			if (r <= 0)
				return r;
		}
		if (p[1].revents & POLLIN) {
			n = efd_drain(s->wake_efd);
			if (n)
				return err_set(e, n, "ioreq: wake eventfd: %s",
					       strerror(-n));
		}
		if (p[1].revents & (POLLERR | POLLNVAL))
			return err_set(e, -EPROTO,
				       "ioreq: the wake eventfd is unusable");
		if (p[0].revents) {
			int r = control(s, e);

			if (r <= 0)
				return r;
		}
		idle_since = now_ns();
	}
}

int wisp_ioreq_serve(struct wisp_ioreq_server *s, struct err *e)
{
	int ret = serve_loop(s, e);

	/* A device held for a snapshot the VMM never finished runs again
	 * (its destruction must not wait on a parked thread). */
	state_release(s);
	return ret;
}

void wisp_ioreq_stop(struct wisp_ioreq_server *s)
{
	uint64_t one = 1;
	ssize_t n;

	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	/* Our own non-blocking eventfd: at worst EAGAIN, then it is set. */
	n = write(s->stop_efd, &one, sizeof(one));
	(void)n;
}

bool wisp_ioreq_sealed(const struct wisp_ioreq_server *s)
{
	return s->shm_sealed && s->mem_sealed;
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
	if (s->stop_efd >= 0)
		close(s->stop_efd);
	if (s->iommu_sock >= 0)
		close(s->iommu_sock);
	if (s->state_sock >= 0)
		close(s->state_sock);
	free(s->state_buf);
	iommu_free(s->iommu);
	free(s);
}
