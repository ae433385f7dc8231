/* SPDX-License-Identifier: MIT */
/*
 * ioeventfd lanes: "a guest write of len bytes at addr (optionally only
 * of one value) signals an eventfd", with the argument checks, collision
 * rules and matching of KVM_IOEVENTFD, plus GenieZone's range rule (see
 * docs/ioeventfd.md for the table of rules).
 *
 * The registry is the userspace side of those lanes: every lane lives
 * here, and a lane the host kernel also accepted (struct ioevr_host, e.g.
 * KVM_IOEVENTFD) is marked in_kernel, so the vCPU exit path normally never
 * sees its writes. A lane the host refused is served by ioevr_write() on
 * the exit path. Reads never match a lane: there is no read entry point.
 *
 * The registry does not own the eventfds: the caller keeps each fd open
 * until its lane is deassigned (or the registry destroyed), and closes it.
 */
#ifndef WISP_BUS_IOEVENTFD_H
#define WISP_BUS_IOEVENTFD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Same bit values as KVM's KVM_IOEVENTFD_FLAG_*, so they pass through. */
#define IOEVR_F_DATAMATCH (1u << 0)
#define IOEVR_F_PIO (1u << 1)
#define IOEVR_F_DEASSIGN (1u << 2)
#define IOEVR_F_VALID (IOEVR_F_DATAMATCH | IOEVR_F_PIO | IOEVR_F_DEASSIGN)

/*
 * Optional mirror of lanes into the host kernel. Both callbacks return 0
 * or -errno and get flags reduced to IOEVR_F_DATAMATCH | IOEVR_F_PIO (the
 * callback name says whether to assign or deassign). They run with the
 * registry's mutex held and must not call back into the registry.
 */
struct ioevr_host {
	int (*assign)(void *opaque, uint64_t addr, uint32_t len, uint32_t flags,
		      uint64_t datamatch, int fd);
	int (*deassign)(void *opaque, uint64_t addr, uint32_t len,
			uint32_t flags, uint64_t datamatch, int fd);
	void *opaque;
};

struct ioeventfd_lane {
	uint64_t addr;
	uint32_t len; /* 0 (any access size), 1, 2, 4 or 8 */
	bool pio; /* port I/O space; else MMIO */
	bool datamatch; /* false: wildcard, any value matches */
	uint64_t value; /* with datamatch: the value to match */
	int fd; /* eventfd, not owned */
	bool in_kernel; /* the host accepted it: the exit path won't see it */
};

/*
 * Threads: lanes are assigned and deassigned at run time from any thread
 * (e.g. when a guest driver enables a queue), and ioevr_write() runs on
 * vCPU threads. Every entry point takes `lock`, which guards all fields
 * below. ioevr_write() looks the lane up under the lock, records its fd
 * in inflight[] and signals it after unlocking (the eventfd may belong to
 * a hostile server, and every PIO/MMIO exit takes this lock); the signal
 * is bounded (util/efd.h). ioevr_deassign() waits (on `idle`) until no
 * write of that fd is in flight, so a lane's fd is never written after
 * ioevr_deassign() returns. The host callbacks (an ioctl) run under the
 * lock, stalling concurrent exit-path lookups for their duration.
 *
 * ioevr_write() serves only the lanes the host did not take. A write of
 * an in-kernel lane reaches it only if it exited before the host took
 * the lane, and then goes to the bus like any write from before the lane
 * existed (virtio-mmio's QueueNotify handler signals the same eventfd).
 * exit_lanes counts the lanes not in the host (including one between its
 * insertion and the host's answer); it changes only under the lock, and
 * ioevr_write() reads it without the lock and returns false at once at 0:
 * with every lane in the kernel an exit takes no mutex.
 *
 * lanes[] is sorted by (pio, addr); lanes at one address keep assignment
 * order. A write is looked up by binary search plus a scan of the lanes
 * at that address (at most a few: O(log n + k)); assign checks
 * collisions over all lanes of the address space (O(n)) and inserts with
 * memmove (O(n)).
 */
#define IOEVR_MAX_INFLIGHT 64 /* concurrent exit-path signals */

struct ioeventfd_registry {
	pthread_mutex_t lock;
	pthread_cond_t idle; /* an inflight[] entry was released */
	int inflight[IOEVR_MAX_INFLIGHT]; /* fds being signalled, -1 free */
	struct ioeventfd_lane *lanes;
	int nr, cap;
	atomic_int exit_lanes; /* see above */
	struct ioevr_host host; /* all NULL without a host */
	bool host_refusal_logged; /* the one info message was printed */
	bool signal_failure_logged; /* the one warning was printed */
};

/* host may be NULL (no mirroring: every lane is served by ioevr_write).
 * Returns 0 or -errno. */
int ioevr_init(struct ioeventfd_registry *r, const struct ioevr_host *host);

/* Forgets every lane without calling host->deassign (the VM going away
 * drops its kernel lanes) and without closing any fd. */
void ioevr_destroy(struct ioeventfd_registry *r);

/*
 * Adds a lane; with IOEVR_F_DEASSIGN in flags it is ioevr_deassign()
 * instead (KVM's single entry point). Returns 0, or:
 *  -EINVAL  len not 0/1/2/4/8, unknown flag bits, addr + len wraps past
 *           2^64, len 0 with IOEVR_F_DATAMATCH, fd not an eventfd
 *  -EBADF   fd is not an open file descriptor
 *  -EEXIST  collision with a lane of the same address space (see .md)
 *  -ENOMEM
 * A host refusal is not an error: the lane stays, served by ioevr_write.
 */
int ioevr_assign(struct ioeventfd_registry *r, uint64_t addr, uint32_t len,
		 uint32_t flags, uint64_t datamatch, int fd);

/*
 * Removes the lane with exactly this fd, address space, address, len,
 * wildcard-ness and (with IOEVR_F_DATAMATCH) value; IOEVR_F_DEASSIGN in
 * flags is optional. The same argument checks as ioevr_assign come first
 * (-EINVAL, -EBADF); no such lane: -ENOENT. For an in-kernel lane
 * host->deassign is called first; if it fails, the lane stays and its
 * error is returned. Returns only once no ioevr_write() is signalling
 * fd (each such signal is bounded), so the caller may close fd then.
 */
int ioevr_deassign(struct ioeventfd_registry *r, uint64_t addr, uint32_t len,
		   uint32_t flags, uint64_t datamatch, int fd);

/*
 * The exit path: a guest WRITE of len (1..8) bytes of value (the written
 * bytes in host byte order, as KVM reads them) at addr. If a lane that is
 * not in the host kernel matches
 * (same space and address; lane len 0 or equal to len; wildcard or value
 * truncated to len bytes equal to the lane's), its eventfd gets 1 added
 * and true is returned: the write is consumed. The signal is bounded (an
 * eventfd its other owner filled or made blocking loses the signal after
 * at most EFD_BLOCK_BOUND_MS, logged once) and made without the lock.
 * The collision rules allow at most one matching lane. len 0 or > 8
 * never matches.
 */
bool ioevr_write(struct ioeventfd_registry *r, bool pio, uint64_t addr,
		 uint32_t len, uint64_t value);

/* Whether the lane identified as by ioevr_deassign() exists and is
 * mirrored into the host kernel. */
bool ioevr_in_kernel(struct ioeventfd_registry *r, uint64_t addr, uint32_t len,
		     uint32_t flags, uint64_t datamatch, int fd);

/* Number of lanes (both spaces). */
int ioevr_count(struct ioeventfd_registry *r);

#endif
