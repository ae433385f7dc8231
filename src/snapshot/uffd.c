// SPDX-License-Identifier: MIT
/*
 * The Uffd backend: wisp's side of Firecracker's page-fault handler
 * protocol, and the monitor that notices a handler that died or stopped
 * reading faults.
 *
 * wisp keeps its own copy of the userfaultfd for two reasons. While the
 * handler lives it changes nothing. When the handler dies, the last close
 * of the uffd would release it and every missing page would silently turn
 * into a zero page; holding it keeps the faulting vCPUs waiting until wisp
 * has either copied the pages in itself or stopped the VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/seccomp.h"
#include "snapshot/mem_restore_priv.h"
#include "snapshot/uffd_map.h"
#include "util/log.h"
#include "util/time.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

#define PAGE 4096ULL
#define SWEEP_CHUNK (2ULL << 20)
#define MONITOR_TICK_MS 100

static int uffd_create(struct err *e)
{
	int fd, dev;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	/* Without CAP_SYS_PTRACE and vm.unprivileged_userfaultfd=0 the
	 * syscall gives EPERM (for faults from the kernel, such as KVM's);
	 * /dev/userfaultfd (6.1) is gated by its file mode instead. */
	if (errno != EPERM && errno != ENOSYS)
		return err_set(e, -errno, "userfaultfd: %s", strerror(errno));
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return err_set(
			e, -EPERM,
			"userfaultfd: not permitted (needs CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd)");
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	if (fd < 0)
		return err_set(e, -errno, "/dev/userfaultfd: %s",
			       strerror(errno));
	return fd;
}

static int uffd_setup(struct snap_mem_restore *r, struct err *e)
{
	/* MISSING_SHMEM: guest RAM is a memfd mapped MAP_SHARED. EVENT_REMOVE
	 * as Firecracker asks for it: handlers written for it expect that
	 * protocol; wisp never discards guest RAM, so it is never sent. */
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_MISSING_SHMEM |
			    UFFD_FEATURE_EVENT_REMOVE,
	};
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)r->hva, .len = r->len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int ret;

	ret = uffd_create(e);
	if (ret < 0)
		return ret;
	r->uffd = ret;
	if (ioctl(r->uffd, UFFDIO_API, &api) < 0)
		return err_set(
			e, -errno,
			"userfaultfd: UFFDIO_API (shmem missing faults, remove events): %s",
			strerror(errno));
	if (ioctl(r->uffd, UFFDIO_REGISTER, &reg) < 0)
		return err_set(
			e, -errno,
			"userfaultfd: register guest RAM (%zu bytes): %s",
			r->len, strerror(errno));
	r->registered = true;
	if (!(reg.ioctls & (1ULL << _UFFDIO_COPY))) {
		return err_set(
			e, -EOPNOTSUPP,
			"userfaultfd: UFFDIO_COPY not offered for guest RAM");
	}
	return 0;
}

static int handler_connect(struct snap_mem_restore *r, const char *path,
			   struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline = now_ns() + SNAP_UFFD_CONNECT_MS * 1000000ULL;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	int pidfd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_config(e, -ENAMETOOLONG,
				  "uffd handler socket '%s': path too long",
				  path);
	strcpy(sa.sun_path, path);
	r->sock =
		socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (r->sock < 0)
		return err_set(e, -errno, "socket: %s", strerror(errno));
	/* Non-blocking: a handler with a full backlog gives EAGAIN instead
	 * of blocking us for as long as it likes. */
	while (connect(r->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || now_ns() > deadline)
			return err_config(
				e, -errno,
				"uffd handler socket '%s': connect: %s", path,
				strerror(errno));
		nanosleep(&(struct timespec){ .tv_nsec = 5000000 }, NULL);
	}
	if (getsockopt(r->sock, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
		return err_set(e, -errno, "uffd handler '%s': SO_PEERCRED: %s",
			       path, strerror(errno));
	if (cred.uid != 0 && cred.uid != geteuid())
		return err_config(
			e, -EPERM,
			"uffd handler '%s': peer runs as uid %u, not %u or root",
			path, (unsigned)cred.uid, (unsigned)geteuid());
	/* SO_PEERPIDFD names the process that connected without the PID
	 * reuse race of pidfd_open(); older kernels only have the latter. */
	cl = sizeof(pidfd);
	if (getsockopt(r->sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &cl) == 0) {
		r->pidfd = pidfd;
	} else {
		pidfd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
		if (pidfd >= 0)
			r->pidfd = pidfd;
		else
			log_warn(
				"uffd handler '%s': no pidfd (%s), watching its socket only",
				path, strerror(errno));
	}
	return 0;
}

static int handler_send(struct snap_mem_restore *r, const char *path,
			struct err *e)
{
	struct uffd_region reg = {
		.base = (uintptr_t)r->hva,
		.size = r->len,
		.offset = 0,
		.page_size = PAGE,
	};
	char body[UFFD_MAP_MSG_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov;
	struct msghdr mh = { 0 };
	struct cmsghdr *cm;
	uint64_t deadline = now_ns() + SNAP_UFFD_CONNECT_MS * 1000000ULL;
	int n;

	n = uffd_map_encode(body, sizeof(body), &reg, 1);
	if (n < 0)
		return err_set(e, n, "uffd mappings: cannot encode");
	iov = (struct iovec){ .iov_base = body, .iov_len = (size_t)n };
	memset(&c, 0, sizeof(c));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = c.buf;
	mh.msg_controllen = sizeof(c.buf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &r->uffd, sizeof(int));
	for (;;) {
		ssize_t s = sendmsg(r->sock, &mh, MSG_NOSIGNAL);

		if (s == n)
			return 0;
		if (s >= 0)
			return err_set(
				e, -EIO,
				"uffd handler '%s': short send (%zd of %d)",
				path, s, n);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return err_config(e, -errno,
					  "uffd handler '%s': send: %s", path,
					  strerror(errno));
		struct pollfd p = { .fd = r->sock, .events = POLLOUT };
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;

		if (left <= 0 || poll(&p, 1, (int)left) == 0)
			return err_config(
				e, -ETIMEDOUT,
				"uffd handler '%s': does not take the handshake",
				path);
	}
}

/* Copies [off, off+n) of guest RAM in from the fallback file. Pages that
 * are already there (the handler served them) are skipped. */
static int copy_range(struct snap_mem_restore *r, uint64_t off, uint64_t n)
{
	int again = 0;

	while (n) {
		struct uffdio_copy c = {
			.dst = (uintptr_t)r->hva + off,
			.src = (uintptr_t)r->fb_map + off,
			.len = n,
		};
		uint64_t done;

		if (ioctl(r->uffd, UFFDIO_COPY, &c) == 0) {
			atomic_fetch_add(&r->st_pages, n / PAGE);
			return 0;
		}
		done = c.copy > 0 ? (uint64_t)c.copy : 0;
		atomic_fetch_add(&r->st_pages, done / PAGE);
		off += done;
		n -= done;
		if (errno == EEXIST) {
			off += PAGE;
			n -= PAGE;
		} else if (errno == EAGAIN) {
			/* The address space is changing under the copy (a
			 * non-cooperative event); bounded retries. */
			if (++again > 1000)
				return -EAGAIN;
			nanosleep(&(struct timespec){ .tv_nsec = 100000 },
				  NULL);
		} else {
			return -errno;
		}
	}
	return 0;
}

/* Serves every fault queued on the uffd (the handler no longer does). */
static int serve_pending(struct snap_mem_restore *r)
{
	struct uffd_msg m[32];

	for (;;) {
		ssize_t n = read(r->uffd, m, sizeof(m));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		for (size_t i = 0; i < (size_t)n / sizeof(m[0]); i++) {
			uint64_t a;
			int ret;

			if (m[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			a = m[i].arg.pagefault.address & ~(PAGE - 1);
			if (a < (uintptr_t)r->hva ||
			    a >= (uintptr_t)r->hva + r->len)
				continue;
			ret = copy_range(r, a - (uintptr_t)r->hva, PAGE);
			if (ret)
				return ret;
		}
	}
}

/* The next data extent of the fallback file at or after pos: [*s, *end). */
static bool next_data(struct snap_mem_restore *r, uint64_t pos, uint64_t *s,
		      uint64_t *end)
{
	off_t d = lseek(r->fb_fd, (off_t)pos, SEEK_DATA);
	off_t h;

	if (d < 0) {
		if (errno == ENXIO)
			return false;
		d = (off_t)pos; /* no SEEK_DATA: treat all as data */
		h = (off_t)r->len;
	} else {
		h = lseek(r->fb_fd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > r->len)
			h = (off_t)r->len;
	}
	if ((uint64_t)d >= r->len)
		return false;
	*s = (uint64_t)d & ~(PAGE - 1);
	*end = ((uint64_t)h + PAGE - 1) & ~(PAGE - 1);
	if (*end > r->len)
		*end = r->len;
	return true;
}

/*
 * Copies every data page still missing in from the file, serving queued
 * faults between chunks so that waiting vCPUs go first. A copy also wakes
 * a vCPU whose fault the dead (or stopped) handler had read and never
 * answered. The holes need nothing: once the range is unregistered they
 * fault in as the memfd's zero pages.
 */
static int takeover(struct snap_mem_restore *r)
{
	uint64_t pos = 0, s, end;
	struct uffdio_range range = { (uintptr_t)r->hva, r->len };
	int ret;

	while (next_data(r, pos, &s, &end)) {
		for (uint64_t at = s; at < end; at += SWEEP_CHUNK) {
			uint64_t n = end - at < SWEEP_CHUNK ? end - at :
							      SWEEP_CHUNK;

			ret = serve_pending(r);
			if (!ret)
				ret = copy_range(r, at, n);
			if (ret)
				return ret;
		}
		pos = end;
	}
	ret = serve_pending(r);
	if (ret)
		return ret;
	if (ioctl(r->uffd, UFFDIO_UNREGISTER, &range) < 0)
		return -errno;
	r->registered = false;
	return 0;
}

/* Guest pages present in the memfd's page cache (what the handler has
 * copied in so far), or 0 when mincore cannot say. */
static uint64_t resident(struct snap_mem_restore *r, unsigned char *vec)
{
	uint64_t n = 0;

	if (!vec || mincore(r->hva, r->len, vec) < 0)
		return 0;
	for (size_t i = 0; i < r->len / PAGE; i++)
		n += vec[i] & 1;
	return n;
}

static bool stop_requested(struct snap_mem_restore *r)
{
	struct pollfd p = { .fd = r->stop_efd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* After the handler failed: take over, report, or (nothing set up yet)
 * wait for set_fallback. Returns true when nothing is left to do. */
static bool handle_failure(struct snap_mem_restore *r)
{
	bool have_file, have_fail;
	int ret;

	pthread_mutex_lock(&r->lock);
	have_file = r->fb_map != NULL;
	have_fail = r->fail != NULL;
	pthread_mutex_unlock(&r->lock);

	if (have_file) {
		log_warn(
			"uffd handler %s; serving the missing guest pages from the memory file",
			r->why);
		ret = takeover(r);
		if (ret == 0) {
			atomic_store(&r->st_took_over, true);
			log_warn("uffd takeover done: %llu pages copied in",
				 (unsigned long long)atomic_load(&r->st_pages));
			return true;
		}
		snprintf(
			r->why + strlen(r->why),
			sizeof(r->why) - strlen(r->why),
			"; copying the pages in from the memory file failed: %s",
			strerror(-ret));
	}
	if (have_fail) {
		char msg[320];

		snprintf(msg, sizeof(msg),
			 "guest memory: uffd handler %s; the VM cannot go on",
			 r->why);
		log_error("%s", msg);
		r->fail(r->fail_ctx, msg);
		return true;
	}
	if (!r->failure_handled)
		log_error(
			"guest memory: uffd handler %s; vCPUs touching pages it did not serve will wait until wisp is stopped",
			r->why);
	r->failure_handled = true;
	return false;
}

static void *monitor(void *arg)
{
	struct snap_mem_restore *r = arg;
	uint64_t unread_since = 0, present = 0;
	bool failed = false;
	/* For telling a slow handler with a long queue (pages keep
	 * arriving) from a stopped one. */
	unsigned char *vec;

	sb_seccomp_enter(SB_UFFD_MONITOR);
	vec = malloc(r->len / PAGE);
	for (;;) {
		struct pollfd p[4] = {
			{ .fd = r->stop_efd, .events = POLLIN },
			{ .fd = r->sock, .events = POLLIN | POLLRDHUP },
			{ .fd = r->pidfd, .events = POLLIN },
			{ .fd = r->uffd, .events = POLLIN },
		};
		int n = poll(p, failed ? 1 : 4, MONITOR_TICK_MS);

		if (n < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		if (failed) {
			if (handle_failure(r))
				break;
			continue;
		}
		if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
			snprintf(r->why, sizeof(r->why), "closed its socket");
			failed = true;
		} else if (p[1].revents & POLLIN) {
			/* The protocol has nothing for the handler to say:
			 * drain it so it cannot spin us, EOF means gone. */
			char junk[256];

			if (recv(r->sock, junk, sizeof(junk), MSG_DONTWAIT) ==
			    0) {
				snprintf(r->why, sizeof(r->why),
					 "closed its socket");
				failed = true;
			}
		}
		if (!failed && r->pidfd >= 0 && (p[2].revents & POLLIN)) {
			snprintf(r->why, sizeof(r->why), "exited");
			failed = true;
		}
		if (!failed && (p[3].revents & POLLIN)) {
			uint64_t t = now_ns();

			if (!unread_since) {
				unread_since = t;
				present = resident(r, vec);
			} else if (t - unread_since >
				   SNAP_UFFD_STALL_MS * 1000000ULL) {
				uint64_t now_present = resident(r, vec);

				if (now_present > present) {
					/* Busy, not stuck: start over. */
					unread_since = t;
					present = now_present;
				} else {
					snprintf(
						r->why, sizeof(r->why),
						"served no page for %d ms with faults waiting",
						SNAP_UFFD_STALL_MS);
					failed = true;
				}
			}
		} else {
			unread_since = 0;
		}
		if (failed) {
			atomic_store(&r->st_failed, true);
			if (handle_failure(r))
				break;
		}
		if (stop_requested(r))
			break;
	}
	free(vec);
	return NULL;
}

int snap_uffd_start(struct snap_mem_restore *r, const char *sock_path,
		    struct err *e)
{
	int ret;

	ret = uffd_setup(r, e);
	if (ret)
		return ret;
	ret = handler_connect(r, sock_path, e);
	if (ret)
		return ret;
	ret = handler_send(r, sock_path, e);
	if (ret)
		return ret;
	/* The stamp bench/snapshot.py reads: from here on the handler
	 * can serve (and prefetch) while wisp builds the rest. */
	log_debug("uffd: guest RAM registered, handler '%s' has the uffd at "
		  "CLOCK_MONOTONIC %llu ns",
		  sock_path, (unsigned long long)now_ns());
	r->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->stop_efd < 0)
		return err_set(e, -errno, "eventfd: %s", strerror(errno));
	ret = pthread_create(&r->monitor, NULL, monitor, r);
	if (ret)
		return err_set(e, -ret, "uffd monitor thread: %s",
			       strerror(ret));
	r->thread_started = true;
	return 0;
}

int snap_uffd_set_fallback(struct snap_mem_restore *r, const char *mem_path,
			   snap_mem_fail_fn fail, void *ctx, struct err *e)
{
	int fd = -1, ret;
	void *map = NULL;

	if (mem_path) {
		ret = snap_mem_open_file(mem_path, r->len, &fd, e);
		if (ret)
			return ret;
		map = mmap(NULL, r->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			ret = -errno;
			close(fd);
			return err_set(e, ret, "memory file '%s': mmap: %s",
				       mem_path, strerror(-ret));
		}
	}
	pthread_mutex_lock(&r->lock);
	if (r->fallback_set) {
		pthread_mutex_unlock(&r->lock);
		if (map)
			munmap(map, r->len);
		if (fd >= 0)
			close(fd);
		return err_set(e, -EBUSY, "uffd fallback: already set");
	}
	r->fb_fd = fd;
	r->fb_map = map;
	r->fail = fail;
	r->fail_ctx = ctx;
	r->fallback_set = true;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

void snap_uffd_stop(struct snap_mem_restore *r)
{
	if (r->thread_started) {
		uint64_t one = 1;

		if (write(r->stop_efd, &one, sizeof(one)) < 0)
			log_warn("uffd monitor: cannot signal stop: %s",
				 strerror(errno));
		pthread_join(r->monitor, NULL);
	}
	if (r->registered) {
		struct uffdio_range range = { (uintptr_t)r->hva, r->len };

		ioctl(r->uffd, UFFDIO_UNREGISTER, &range);
	}
	if (r->fb_map)
		munmap((void *)r->fb_map, r->len);
	if (r->fb_fd >= 0)
		close(r->fb_fd);
	if (r->pidfd >= 0)
		close(r->pidfd);
	if (r->sock >= 0)
		close(r->sock);
	if (r->uffd >= 0)
		close(r->uffd);
	if (r->stop_efd >= 0)
		close(r->stop_efd);
}
