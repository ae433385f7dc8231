/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM from a snapshot's memory file, eagerly, lazily or through a
 * userfaultfd page-fault handler (docs/uffd.md). The memory file is a
 * plain dump of the guest-RAM memfd (src/mem/guest_mem.h): memfd offset 0
 * is file offset 0, holes are zero pages.
 *
 * Owns: for SNAP_MEM_UFFD the userfaultfd, the connection to the handler,
 * the handler's pidfd and one monitor thread; for SNAP_MEM_FILE nothing
 * after start returns (the private mapping it puts over guest RAM belongs
 * to the caller's mapping, which the caller unmaps as before). Touches the
 * caller's guest-RAM mapping [hva, hva+len) and memfd, never anything
 * else of the VM.
 *
 * What each backend does with guest RAM:
 *  - SNAP_MEM_FILE, !need_shared: the memory file is mapped MAP_PRIVATE
 *    over [hva, hva+len) (pages come in on first touch, writes stay
 *    private). Guest RAM is then that mapping, no longer the memfd: the
 *    memfd's pages are released, and a later snapshot must read guest RAM
 *    through the mapping.
 *  - SNAP_MEM_FILE, need_shared: the file's data extents are copied into
 *    the memfd before start returns (IOREQ servers see the same pages).
 *  - SNAP_MEM_UFFD, !need_shared: guest RAM is registered MISSING with a
 *    userfaultfd that goes to the handler listening on `path`, with
 *    Firecracker's handshake. Pages stay missing until the handler (or
 *    wisp, see snap_mem_restore_set_fallback) copies them in.
 *  - SNAP_MEM_UFFD, need_shared: refused (config error). A server touching
 *    a missing page through its own mapping of the memfd is not seen by
 *    the userfaultfd: shmem would put a zero page there, the guest would
 *    read zeros and the handler's copy would fail with EEXIST.
 *
 * Threads: start, set_fallback and stop on one thread (the caller's);
 * the monitor thread only makes userfaultfd ioctls and never touches guest
 * RAM itself, so it cannot fault on it.
 */
#ifndef WISP_SNAPSHOT_MEM_RESTORE_H
#define WISP_SNAPSHOT_MEM_RESTORE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

enum snap_mem_backend { SNAP_MEM_FILE, SNAP_MEM_UFFD };

struct snap_mem_restore; /* opaque */

/* A handler that leaves a fault unread this long, and copied no page in
 * meanwhile, is taken as stopped. */
#define SNAP_UFFD_STALL_MS 3000
/* How long wisp waits to connect to the handler and hand it the fd. */
#define SNAP_UFFD_CONNECT_MS 2000

/*
 * Make guest RAM, the live mapping [hva, hva+len) of the sealed guest-RAM
 * memfd `memfd`, show the contents of a snapshot's memory file.
 *  - SNAP_MEM_FILE: `path` is the memory file (its size must be len).
 *  - SNAP_MEM_UFFD: `path` is the unix socket of a Firecracker-protocol
 *    page-fault handler (the peer must run as wisp's euid or root).
 * `need_shared` is true when other processes (IOREQ servers) map the
 * memfd. Called after the memfd is mapped and before any vCPU runs; the
 * memfd's current contents are discarded. On failure nothing is left
 * registered and *out is NULL; the caller still owns memfd and the
 * mapping (after a failed SNAP_MEM_FILE start guest RAM reads as zeros).
 */
int snap_mem_restore_start(struct snap_mem_restore **out,
			   enum snap_mem_backend b, const char *path, int memfd,
			   void *hva, size_t len, bool need_shared,
			   struct err *e);

/* Called at most once, from the monitor thread, when the handler failed
 * and wisp cannot serve the missing pages itself: the VM must stop (its
 * faulting vCPUs would wait for ever). msg says what happened. */
typedef void (*snap_mem_fail_fn)(void *ctx, const char *msg);

/*
 * SNAP_MEM_UFFD only (a no-op returning 0 for SNAP_MEM_FILE), optional,
 * right after start and before any vCPU runs: what happens when the
 * handler dies (socket EOF or hang-up, its pidfd) or leaves a fault
 * unread for SNAP_UFFD_STALL_MS while serving no page. With mem_path (the snapshot's memory
 * file, opened and size-checked now) wisp copies every page still
 * missing from that file itself and the VM runs on. Without it, or if
 * that copy fails, fail(ctx, msg) is called. Without this call at all a
 * handler failure is only logged. Returns 0 or -errno with e set (the
 * file cannot be opened or has the wrong size).
 */
int snap_mem_restore_set_fallback(struct snap_mem_restore *r,
				  const char *mem_path, snap_mem_fail_fn fail,
				  void *ctx, struct err *e);

/* True when guest RAM is no longer the memfd's pages (a File restore
 * without need_shared put the private file mapping over it): a snapshot
 * of this VM must read guest RAM through the mapping. NULL: false. */
bool snap_mem_restore_private(const struct snap_mem_restore *r);

/* Counters for tests and the benchmark. */
struct snap_mem_restore_stats {
	bool handler_failed; /* the monitor saw the handler die or stall */
	bool took_over; /* wisp then served the missing pages itself */
	unsigned long long pages_copied; /* pages wisp copied in on takeover */
};
void snap_mem_restore_get_stats(struct snap_mem_restore *r,
				struct snap_mem_restore_stats *s);

/* Stops serving (unregisters, closes the handler connection). NULL is
 * fine. Call only when no vCPU runs: unregistering wakes any thread still
 * waiting on a missing page, which then reads a zero page. */
void snap_mem_restore_stop(struct snap_mem_restore *r);

#endif
