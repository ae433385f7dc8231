// SPDX-License-Identifier: MIT
#include "bus/ioeventfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/efd.h"
#include "util/log.h"

int ioevr_init(struct ioeventfd_registry *r, const struct ioevr_host *host)
{
	int ret;

	memset(r, 0, sizeof(*r));
	if (host)
		r->host = *host;
	for (int i = 0; i < IOEVR_MAX_INFLIGHT; i++)
		r->inflight[i] = -1;
	ret = pthread_mutex_init(&r->lock, NULL);
	if (ret)
		return -ret;
	ret = pthread_cond_init(&r->idle, NULL);
	if (ret) {
		pthread_mutex_destroy(&r->lock);
		return -ret;
	}
	return 0;
}

/* Whether an exit-path signal of fd is under way (lock held). */
static bool fd_inflight(const struct ioeventfd_registry *r, int fd)
{
	for (int i = 0; i < IOEVR_MAX_INFLIGHT; i++)
		if (r->inflight[i] == fd)
			return true;
	return false;
}

void ioevr_destroy(struct ioeventfd_registry *r)
{
	free(r->lanes);
	r->lanes = NULL;
	r->nr = r->cap = 0;
	atomic_store(&r->exit_lanes, 0);
	pthread_cond_destroy(&r->idle);
	pthread_mutex_destroy(&r->lock);
}

/* -EINVAL for a file that is not an eventfd; accepted when /proc cannot
 * tell (e.g. not mounted). */
static int check_eventfd(int fd)
{
	static const char want[] = "anon_inode:[eventfd]";
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return 0;
	target[n] = '\0';
	return strcmp(target, want) ? -EINVAL : 0;
}

/* The argument checks of KVM_IOEVENTFD (and gzvm_ioeventfd_check_valid),
 * in the same order, then the fd. */
static int check_args(uint64_t addr, uint32_t len, uint32_t flags, int fd)
{
	switch (len) {
	case 0:
	case 1:
	case 2:
	case 4:
	case 8:
		break;
	default:
		return -EINVAL;
	}
	if (addr + len < addr)
		return -EINVAL;
	if (flags & ~IOEVR_F_VALID)
		return -EINVAL;
	if (!len && (flags & IOEVR_F_DATAMATCH))
		return -EINVAL;
	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	return check_eventfd(fd);
}

static int key_cmp(bool pio_a, uint64_t addr_a, bool pio_b, uint64_t addr_b)
{
	if (pio_a != pio_b)
		return pio_a ? 1 : -1;
	if (addr_a != addr_b)
		return addr_a < addr_b ? -1 : 1;
	return 0;
}

/* Index of the first lane whose (pio, addr) is >= the key. */
static int lower_bound(const struct ioeventfd_registry *r, bool pio,
		       uint64_t addr)
{
	int lo = 0, hi = r->nr;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		const struct ioeventfd_lane *l = &r->lanes[mid];

		if (key_cmp(l->pio, l->addr, pio, addr) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* [a, a + len) contains x (empty for len 0). No wrap: checked on entry. */
static bool inside(uint64_t x, uint64_t a, uint32_t len)
{
	return x >= a && x < a + len;
}

static bool collides(const struct ioeventfd_lane *e,
		     const struct ioeventfd_lane *n)
{
	if (e->pio != n->pio)
		return false;
	if (e->addr == n->addr)
		/* KVM's rule. */
		return !e->len || !n->len ||
		       (e->len == n->len && (!e->datamatch || !n->datamatch ||
					     e->value == n->value));
	/* GenieZone's range rule, in both directions. */
	return inside(n->addr, e->addr, e->len) ||
	       inside(e->addr, n->addr, n->len);
}

static bool same_lane(const struct ioeventfd_lane *l, bool pio, uint64_t addr,
		      uint32_t len, bool dm, uint64_t value, int fd)
{
	return l->pio == pio && l->addr == addr && l->len == len &&
	       l->fd == fd && l->datamatch == dm && (!dm || l->value == value);
}

/* Index of the lane identified exactly by the arguments, or -1. */
static int find_lane(const struct ioeventfd_registry *r, bool pio,
		     uint64_t addr, uint32_t len, bool dm, uint64_t value,
		     int fd)
{
	int i;

	for (i = lower_bound(r, pio, addr);
	     i < r->nr && r->lanes[i].pio == pio && r->lanes[i].addr == addr;
	     i++)
		if (same_lane(&r->lanes[i], pio, addr, len, dm, value, fd))
			return i;
	return -1;
}

static int insert_lane(struct ioeventfd_registry *r,
		       const struct ioeventfd_lane *n)
{
	int pos, i;

	for (i = 0; i < r->nr; i++)
		if (collides(&r->lanes[i], n))
			return -EEXIST;
	if (r->nr == r->cap) {
		int cap = r->cap ? r->cap * 2 : 16;
		struct ioeventfd_lane *a =
			realloc(r->lanes, (size_t)cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		r->lanes = a;
		r->cap = cap;
	}
	/* After the lanes already at this address: keeps assignment order. */
	pos = lower_bound(r, n->pio, n->addr);
	while (pos < r->nr && r->lanes[pos].pio == n->pio &&
	       r->lanes[pos].addr == n->addr)
		pos++;
	memmove(&r->lanes[pos + 1], &r->lanes[pos],
		(size_t)(r->nr - pos) * sizeof(r->lanes[0]));
	r->lanes[pos] = *n;
	r->nr++;
	atomic_fetch_add_explicit(&r->exit_lanes, 1, memory_order_release);
	return pos;
}

static void remove_lane(struct ioeventfd_registry *r, int i)
{
	if (!r->lanes[i].in_kernel)
		atomic_fetch_sub_explicit(&r->exit_lanes, 1,
					  memory_order_release);
	memmove(&r->lanes[i], &r->lanes[i + 1],
		(size_t)(r->nr - i - 1) * sizeof(r->lanes[0]));
	r->nr--;
}

int ioevr_deassign(struct ioeventfd_registry *r, uint64_t addr, uint32_t len,
		   uint32_t flags, uint64_t datamatch, int fd)
{
	bool pio = flags & IOEVR_F_PIO, dm = flags & IOEVR_F_DATAMATCH;
	int ret = check_args(addr, len, flags, fd), i;

	if (ret)
		return ret;
	pthread_mutex_lock(&r->lock);
	i = find_lane(r, pio, addr, len, dm, datamatch, fd);
	if (i < 0) {
		ret = -ENOENT;
	} else {
		if (r->lanes[i].in_kernel && r->host.deassign)
			ret = r->host.deassign(r->host.opaque, addr, len,
					       flags & ~IOEVR_F_DEASSIGN,
					       datamatch, fd);
		if (!ret)
			remove_lane(r, i);
		/* A write that found the lane before it went may still be
		 * signalling fd; the caller closes fd after we return. */
		while (!ret && fd_inflight(r, fd))
			pthread_cond_wait(&r->idle, &r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int ioevr_assign(struct ioeventfd_registry *r, uint64_t addr, uint32_t len,
		 uint32_t flags, uint64_t datamatch, int fd)
{
	struct ioeventfd_lane n;
	int ret, pos, hret;

	if (flags & IOEVR_F_DEASSIGN)
		return ioevr_deassign(r, addr, len, flags, datamatch, fd);
	ret = check_args(addr, len, flags, fd);
	if (ret)
		return ret;
	n = (struct ioeventfd_lane){
		.addr = addr,
		.len = len,
		.pio = flags & IOEVR_F_PIO,
		.datamatch = flags & IOEVR_F_DATAMATCH,
		.value = (flags & IOEVR_F_DATAMATCH) ? datamatch : 0,
		.fd = fd,
	};

	pthread_mutex_lock(&r->lock);
	pos = insert_lane(r, &n);
	if (pos < 0) {
		pthread_mutex_unlock(&r->lock);
		return pos;
	}
	if (r->host.assign) {
		hret = r->host.assign(r->host.opaque, addr, len, flags, n.value,
				      fd);
		if (!hret) {
			r->lanes[pos].in_kernel = true;
			atomic_fetch_sub_explicit(&r->exit_lanes, 1,
						  memory_order_release);
		} else if (!r->host_refusal_logged) {
			r->host_refusal_logged = true;
			log_info("ioeventfd: host refused %s lane 0x%llx/%u: "
				 "%s; served on the exit path (logged once)",
				 n.pio ? "pio" : "mmio",
				 (unsigned long long)addr, len,
				 strerror(-hret));
		}
	}
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static bool lane_matches(const struct ioeventfd_lane *l, uint32_t len,
			 uint64_t value)
{
	uint64_t mask;

	if (!l->len)
		return true;
	if (l->len != len)
		return false;
	if (!l->datamatch)
		return true;
	mask = len == 8 ? ~0ull : (1ull << (8 * len)) - 1;
	return (value & mask) == l->value;
}

static void report_signal_failure(struct ioeventfd_registry *r, int fd,
				  uint64_t addr, int err)
{
	/* Racy flag: at worst the one warning is printed twice. */
	if (r->signal_failure_logged)
		return;
	r->signal_failure_logged = true;
	log_warn("ioeventfd: signalling fd %d for 0x%llx failed: %s "
		 "(logged once)",
		 fd, (unsigned long long)addr,
		 err == -EAGAIN ? "counter full or fd made blocking" :
				  strerror(-err));
}

bool ioevr_write(struct ioeventfd_registry *r, bool pio, uint64_t addr,
		 uint32_t len, uint64_t value)
{
	int i, fd = -1, slot = -1, ret;

	if (!len || len > 8)
		return false;
	if (!atomic_load_explicit(&r->exit_lanes, memory_order_acquire))
		return false;
	pthread_mutex_lock(&r->lock);
	for (i = lower_bound(r, pio, addr);
	     i < r->nr && r->lanes[i].pio == pio && r->lanes[i].addr == addr;
	     i++) {
		if (lane_matches(&r->lanes[i], len, value)) {
			if (!r->lanes[i].in_kernel)
				fd = r->lanes[i].fd;
			break;
		}
	}
	if (fd < 0) {
		pthread_mutex_unlock(&r->lock);
		return false;
	}
	for (i = 0; i < IOEVR_MAX_INFLIGHT && slot < 0; i++)
		if (r->inflight[i] < 0)
			slot = i;
	if (slot < 0) {
		/* More concurrent exits than slots: signal under the lock
		 * (still bounded by efd_signal). */
		ret = efd_signal(fd);
		pthread_mutex_unlock(&r->lock);
		if (ret)
			report_signal_failure(r, fd, addr, ret);
		return true;
	}
	r->inflight[slot] = fd;
	pthread_mutex_unlock(&r->lock);
	ret = efd_signal(fd);
	pthread_mutex_lock(&r->lock);
	r->inflight[slot] = -1;
	pthread_cond_broadcast(&r->idle);
	pthread_mutex_unlock(&r->lock);
	if (ret)
		report_signal_failure(r, fd, addr, ret);
	return true;
}

bool ioevr_in_kernel(struct ioeventfd_registry *r, uint64_t addr, uint32_t len,
		     uint32_t flags, uint64_t datamatch, int fd)
{
	bool ret;
	int i;

	pthread_mutex_lock(&r->lock);
	i = find_lane(r, flags & IOEVR_F_PIO, addr, len,
		      flags & IOEVR_F_DATAMATCH, datamatch, fd);
	ret = i >= 0 && r->lanes[i].in_kernel;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int ioevr_count(struct ioeventfd_registry *r)
{
	int n;

	pthread_mutex_lock(&r->lock);
	n = r->nr;
	pthread_mutex_unlock(&r->lock);
	return n;
}
