// SPDX-License-Identifier: MIT
/*
 * wisp-uffd: a userfaultfd page-fault handler for a snapshot's memory file,
 * speaking Firecracker's protocol (docs/uffd.md), so it serves wisp and
 * Firecracker alike.
 *
 *   wisp-uffd --socket PATH --mem FILE [--delay-us N] [--no-prefetch]
 *             [--accept-timeout-ms N]
 *
 * It listens on PATH, takes one VMM (same euid or root), receives the
 * region mappings and the uffd, then serves each fault with UFFDIO_COPY
 * from the file (a page the VMM discarded since, UFFD_EVENT_REMOVE, comes
 * back as a zero page) and, whenever no fault waits, copies the file's
 * next data pages in ahead of the guest. --delay-us N sleeps N µs before
 * every page it copies, as a slow network fetch would. Holes in the file
 * are only served on fault.
 *
 * Exit: 0 when the VMM hangs up; 1 with a message when the VMM does not
 * connect in time, fails its credentials check or sends a bad handshake,
 * or a copy fails for another reason than "already there". The last line
 * on stderr says what was served.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sandbox/seccomp.h"
#include "snapshot/uffd_map.h"
#include "util/time.h"
#include "util/unixsock.h"

#define PAGE 4096ULL
#define HANDSHAKE_MS 5000
/* Pages per copy when there is no delay. The handler serves faults only
 * between copies, so this bounds how long a vCPU fault waits behind the
 * prefetch: 256 KiB, not 2 MiB. */
#define PREFETCH_BATCH 64
/* Until the guest's first fault, or PREFETCH_HOLD_MS after the handover,
 * the prefetch copies at most PREFETCH_BATCH pages every
 * PREFETCH_HOLD_GAP_NS (the first at once) instead of going flat out:
 * until the guest runs, the VMM's restore needs the same CPUs. A small
 * guest's few pages still all come in before it runs. */
#define PREFETCH_HOLD_MS 20
#define PREFETCH_HOLD_GAP_NS 1000000ULL

struct handler {
	const char *mem_path;
	int mem_fd, uffd, sock;
	const uint8_t *map;
	uint64_t file_size, pages;
	uint8_t *done; /* per file page: served or known present */
	uint8_t *zero; /* per file page: the VMM discarded it (REMOVE) */
	struct uffd_region reg[UFFD_MAP_MAX_REGIONS];
	int nr;
	unsigned delay_us;
	bool prefetch;
	/* prefetch cursor: region index and byte offset inside it */
	int pf_reg;
	uint64_t pf_off;
	uint64_t faults, zero_faults, prefetched, eexist, t0;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("wisp-uffd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void pause_us(unsigned us)
{
	if (us)
		nanosleep(&(struct timespec){ .tv_sec = us / 1000000,
					      .tv_nsec =
						      (us % 1000000) * 1000L },
			  NULL);
}

static int listen_on(const char *path)
{
	struct stat st;
	int s;

	/* A stale socket of an earlier run goes; any other file stays. */
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		die("socket '%s': a file that is not a socket is there", path);
	/* At PATH only once it listens: a VMM that waits for PATH to
	 * appear (scripts do) never meets ECONNREFUSED. */
	s = unix_listen(path, 1, SOCK_CLOEXEC);
	if (s < 0)
		die("socket '%s': %s", path, strerror(-s));
	return s;
}

static int accept_vmm(int ls, int timeout_ms)
{
	struct pollfd p = { .fd = ls, .events = POLLIN };
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	int c;

	if (poll(&p, 1, timeout_ms) != 1)
		die("no VMM connected within %d ms", timeout_ms);
	c = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		die("accept: %s", strerror(errno));
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
		die("SO_PEERCRED: %s", strerror(errno));
	if (cred.uid != 0 && cred.uid != geteuid())
		die("VMM runs as uid %u, not %u or root", (unsigned)cred.uid,
		    (unsigned)geteuid());
	return c;
}

/* The handshake: one message with the JSON mappings and the uffd. */
static void handshake(struct handler *h)
{
	char body[UFFD_MAP_MSG_MAX * 8];
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} c;
	struct iovec iov = { body, sizeof(body) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = c.buf,
			     .msg_controllen = sizeof(c.buf) };
	struct pollfd p = { .fd = h->sock, .events = POLLIN };
	struct err e = { 0 };
	ssize_t n, tl;
	char link[64], target[64];

	if (poll(&p, 1, HANDSHAKE_MS) != 1)
		die("the VMM sent no handshake within %d ms", HANDSHAKE_MS);
	n = recvmsg(h->sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n <= 0)
		die("handshake: %s", n == 0 ? "VMM hung up" : strerror(errno));
	h->uffd = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		int nfd = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		for (int i = 0; i < nfd; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
			if (h->uffd < 0)
				h->uffd = fd;
			else
				close(fd); /* one fd is the protocol */
		}
	}
	if (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))
		die("handshake: message truncated");
	if (h->uffd < 0)
		die("handshake: no file descriptor");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", h->uffd);
	tl = readlink(link, target, sizeof(target) - 1);
	target[tl > 0 ? tl : 0] = 0;
	if (strcmp(target, "anon_inode:[userfaultfd]"))
		die("handshake: the fd is '%s', not a userfaultfd", target);
	/* Non-blocking whatever the VMM set: the loop polls. */
	if (fcntl(h->uffd, F_SETFL, O_NONBLOCK) < 0)
		die("uffd: %s", strerror(errno));
	h->nr = uffd_map_parse(body, (size_t)n, h->reg, UFFD_MAP_MAX_REGIONS,
			       &e);
	if (h->nr < 0)
		die("handshake: %s", e.msg);
	for (int i = 0; i < h->nr; i++) {
		if (h->reg[i].page_size != PAGE)
			die("region %d: page size %" PRIu64
			    " (only 4096 is served)",
			    i, h->reg[i].page_size);
		if (h->reg[i].offset > h->file_size ||
		    h->reg[i].size > h->file_size - h->reg[i].offset)
			die("region %d: [%" PRIu64 ", +%" PRIu64
			    ") is outside the memory file (%" PRIu64 " bytes)",
			    i, h->reg[i].offset, h->reg[i].size, h->file_size);
	}
}

static int region_of(struct handler *h, uint64_t addr)
{
	for (int i = 0; i < h->nr; i++)
		if (addr >= h->reg[i].base &&
		    addr - h->reg[i].base < h->reg[i].size)
			return i;
	return -1;
}

/* Copies npages from region i at byte offset off. Returns 0, or -errno for
 * what cannot go on (the VMM's mapping is gone: -ENOENT, -EFAULT). Pages
 * already present count as done. */
static int copy_pages(struct handler *h, int i, uint64_t off, uint64_t np,
		      bool fault)
{
	struct uffd_region *r = &h->reg[i];
	uint64_t fp = (r->offset + off) / PAGE;

	while (np) {
		struct uffdio_copy c = {
			.dst = r->base + off,
			.src = (uintptr_t)h->map + r->offset + off,
			.len = np * PAGE,
		};
		struct uffdio_zeropage z = {
			.range = { r->base + off, PAGE },
		};
		uint64_t done;
		int rc;

		if (h->zero[fp]) {
			rc = ioctl(h->uffd, UFFDIO_ZEROPAGE, &z);
			c.copy = rc == 0 ? (int64_t)PAGE : z.zeropage;
			c.len = PAGE;
		} else {
			pause_us(h->delay_us * (unsigned)np);
			rc = ioctl(h->uffd, UFFDIO_COPY, &c);
		}
		if (rc == 0)
			done = c.len;
		else
			done = c.copy > 0 ? (uint64_t)c.copy : 0;
		for (uint64_t k = 0; k < done / PAGE; k++)
			h->done[fp + k] = 1;
		if (fault) {
			h->faults++;
			h->zero_faults += h->zero[fp];
		} else {
			h->prefetched += done / PAGE;
		}
		fp += done / PAGE;
		off += done;
		np -= done / PAGE;
		if (rc == 0)
			continue;
		if (errno == EEXIST) {
			h->eexist++;
			h->done[fp] = 1;
			fp++;
			off += PAGE;
			np--;
		} else if (errno == EAGAIN) {
			/* A REMOVE or UNMAP event is queued: read it first. */
			return -EAGAIN;
		} else {
			return -errno;
		}
	}
	return 0;
}

/* Marks [start, end) of the VMM's address space as discarded: later faults
 * there get zero pages, the prefetch skips it. */
static void mark_zero(struct handler *h, uint64_t start, uint64_t end,
		      bool gone)
{
	for (uint64_t a = start & ~(PAGE - 1); a < end; a += PAGE) {
		int i = region_of(h, a);

		if (i < 0)
			continue;
		uint64_t fp = (h->reg[i].offset + a - h->reg[i].base) / PAGE;

		h->zero[fp] = 1;
		/* Unmapped: nothing to copy there any more. Removed:
		 * present again only when it faults. */
		h->done[fp] = gone;
	}
}

/* Reads and serves queued events. Returns -errno on a fatal error. */
static int serve_events(struct handler *h)
{
	struct uffd_msg m[64];
	ssize_t n;

	n = read(h->uffd, m, sizeof(m));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	for (size_t k = 0; k < (size_t)n / sizeof(m[0]); k++) {
		uint64_t a, s, e2;
		int i, ret;

		switch (m[k].event) {
		case UFFD_EVENT_PAGEFAULT:
			a = m[k].arg.pagefault.address & ~(PAGE - 1);
			i = region_of(h, a);
			if (i < 0) {
				fprintf(stderr,
					"wisp-uffd: fault at 0x%" PRIx64
					" outside every region, ignored\n",
					a);
				break;
			}
			ret = copy_pages(h, i, a - h->reg[i].base, 1, true);
			if (ret == -EAGAIN) {
				/* Retried: the fault is queued again
				 * when the faulting thread retries. */
				struct uffdio_range w = { a, PAGE };

				ioctl(h->uffd, UFFDIO_WAKE, &w);
			} else if (ret) {
				return ret;
			}
			break;
		case UFFD_EVENT_REMOVE:
			s = m[k].arg.remove.start;
			e2 = m[k].arg.remove.end;
			mark_zero(h, s, e2, false);
			break;
		case UFFD_EVENT_UNMAP:
			mark_zero(h, m[k].arg.remove.start, m[k].arg.remove.end,
				  true);
			break;
		default:
			/* REMAP/FORK are not requested by wisp or
			 * Firecracker; nothing to do for others. */
			break;
		}
	}
	return 0;
}

/* Copies the next batch of data pages nobody asked for yet. Returns false
 * when the prefetch is over. */
static bool prefetch_some(struct handler *h)
{
	uint64_t batch = h->delay_us ? 1 : PREFETCH_BATCH;

	while (h->pf_reg < h->nr) {
		struct uffd_region *r = &h->reg[h->pf_reg];
		uint64_t off = h->pf_off, np = 0, fp, lim;
		off_t d, hole;

		if (off >= r->size) {
			h->pf_reg++;
			h->pf_off = 0;
			continue;
		}
		/* Skip the file's holes: they fault in as zero pages. */
		d = lseek(h->mem_fd, (off_t)(r->offset + off), SEEK_DATA);
		if (d < 0 || (uint64_t)d >= r->offset + r->size) {
			h->pf_off = r->size;
			continue;
		}
		off = ((uint64_t)d - r->offset) & ~(PAGE - 1);
		fp = (r->offset + off) / PAGE;
		/* Up to the data's end: copying the hole after it would make
		 * zero pages resident that the guest may never touch (and
		 * cost the VMM's start-up the copy). */
		hole = lseek(h->mem_fd, d, SEEK_HOLE);
		lim = r->size;
		if (hole > d && (uint64_t)hole < r->offset + r->size)
			lim = ((uint64_t)hole - r->offset + PAGE - 1) &
			      ~(PAGE - 1);
		while (np < batch && off + np * PAGE < lim &&
		       !h->done[fp + np] && !h->zero[fp + np])
			np++;
		if (np == 0) {
			h->pf_off = off + PAGE;
			continue;
		}
		int ret = copy_pages(h, h->pf_reg, off, np, false);

		if (ret == -EAGAIN)
			return true; /* read the queued event first */
		if (ret) {
			fprintf(stderr,
				"wisp-uffd: prefetch stopped at 0x%" PRIx64
				": %s\n",
				r->base + off, strerror(-ret));
			h->pf_reg = h->nr;
			return false;
		}
		h->pf_off = off + np * PAGE;
		return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "mem", required_argument, NULL, 'm' },
		{ "delay-us", required_argument, NULL, 'd' },
		{ "no-prefetch", no_argument, NULL, 'n' },
		{ "accept-timeout-ms", required_argument, NULL, 'a' },
		{ "seccomp", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct handler h = { .prefetch = true };
	const char *sock_path = NULL, *seccomp = NULL;
	struct err se = { 0 };
	int accept_ms = 60000, ls, c, ret = 0;
	bool pf_reported = false;
	/* the hold's window: its start (now_ns) and pages copied in it */
	uint64_t win_start = 0, win_pages = 0;
	struct stat st;
	char *end;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock_path = optarg;
			break;
		case 'm':
			h.mem_path = optarg;
			break;
		case 'd':
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);

			if (errno || *end || !*optarg || v > 10000000)
				die("--delay-us '%s': 0..10000000", optarg);
			h.delay_us = (unsigned)v;
			break;
		case 'n':
			h.prefetch = false;
			break;
		case 'S':
			seccomp = optarg;
			break;
		case 'a':
			accept_ms = atoi(optarg);
			if (accept_ms <= 0)
				die("--accept-timeout-ms '%s': positive",
				    optarg);
			break;
		default:
			fprintf(stderr,
				"usage: wisp-uffd --socket PATH --mem FILE [--delay-us N] [--no-prefetch] [--accept-timeout-ms N] [--seccomp kill|log|off]\n");
			return c == 'h' ? 0 : 1;
		}
	}
	if (!sock_path || !h.mem_path)
		die("--socket and --mem are required");
	if (sb_seccomp_server_setup(seccomp, SB_UFFD, &se))
		die("%s", se.msg);
	h.mem_fd = open(h.mem_path, O_RDONLY | O_CLOEXEC);
	if (h.mem_fd < 0 || fstat(h.mem_fd, &st) < 0)
		die("memory file '%s': %s", h.mem_path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size % (off_t)PAGE)
		die("memory file '%s': not a regular file of whole pages",
		    h.mem_path);
	h.file_size = (uint64_t)st.st_size;
	h.pages = h.file_size / PAGE;
	h.map = mmap(NULL, h.file_size, PROT_READ, MAP_PRIVATE, h.mem_fd, 0);
	h.done = calloc(h.pages, 1);
	h.zero = calloc(h.pages, 1);
	if (h.map == MAP_FAILED || !h.done || !h.zero)
		die("memory file '%s': cannot map: %s", h.mem_path,
		    strerror(errno));

	ls = listen_on(sock_path);
	/* jansson seeds its hash from /dev/urandom on first use: now, while
	 * opening a file is still allowed. */
	json_object_seed(0);
	/* Before the first byte from the VMM (docs/sandbox.md). */
	sb_seccomp_enter(SB_UFFD);
	h.sock = accept_vmm(ls, accept_ms);
	close(ls);
	handshake(&h);
	h.t0 = now_ns();
	fprintf(stderr,
		"wisp-uffd: serving %d region(s) from '%s' (%" PRIu64
		" MiB), delay %u us/page, prefetch %s\n",
		h.nr, h.mem_path, h.file_size >> 20, h.delay_us,
		h.prefetch ? "on" : "off");

	for (;;) {
		uint64_t now = now_ns();
		bool held = !h.faults &&
			    now - h.t0 < PREFETCH_HOLD_MS * 1000000ULL;
		bool full;

		if (now - win_start >= PREFETCH_HOLD_GAP_NS) {
			win_start = now;
			win_pages = 0;
		}
		full = held && win_pages >= PREFETCH_BATCH;
		bool more = h.prefetch && h.pf_reg < h.nr;
		struct pollfd p[2] = {
			{ .fd = h.uffd, .events = POLLIN },
			{ .fd = h.sock, .events = POLLIN | POLLRDHUP },
		};
		int n = poll(p, 2, !more ? 1000 : full ? 1 : 0);

		if (n < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (p[1].revents & (POLLHUP | POLLRDHUP | POLLERR))
			break; /* the VMM is gone */
		if (p[1].revents & POLLIN) {
			char junk[256];

			if (recv(h.sock, junk, sizeof(junk), 0) == 0)
				break;
		}
		if (p[0].revents & (POLLERR | POLLHUP))
			break;
		if (p[0].revents & POLLIN) {
			ret = serve_events(&h);
			if (ret == -ESRCH)
				ret = 0; /* the VMM's address space is gone */
			if (ret)
				break;
			continue;
		}
		if (!more || full)
			continue;
		uint64_t before = h.prefetched;
		bool going = prefetch_some(&h);

		win_pages += h.prefetched - before;
		if (!going && !pf_reported) {
			pf_reported = true;
			fprintf(stderr,
				"wisp-uffd: prefetch done after %" PRIu64
				" ms\n",
				(now_ns() - h.t0) / 1000000);
		}
	}
	fprintf(stderr,
		"wisp-uffd: %" PRIu64 " faults served (%" PRIu64
		" zero), %" PRIu64 " pages prefetched, %" PRIu64
		" already present, %" PRIu64 " ms%s%s\n",
		h.faults, h.zero_faults, h.prefetched, h.eexist,
		(now_ns() - h.t0) / 1000000, ret ? ", stopped: " : "",
		ret ? strerror(-ret) : "");
	free(h.done);
	free(h.zero);
	munmap((void *)h.map, h.file_size);
	return ret ? 1 : 0;
}
