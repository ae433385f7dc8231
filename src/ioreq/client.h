/* SPDX-License-Identifier: MIT */
/*
 * The VMM side of the IOREQ protocol (docs/ioreq.md), the client of a
 * device-model process (an IOREQ server): connects to it, gives it guest
 * RAM, a request slot per vCPU, a buffered ring for posted writes and its
 * interrupt eventfd, and forwards the guest's accesses to the server's
 * window.
 *
 * Nothing here trusts the server: the client checks the peer's
 * credentials, reads only a slot's state and data from shared memory,
 * validates every control message, bounds every wait on the server
 * (answers, sends, eventfds it shares), and when the server misbehaves,
 * hangs or goes away it stops forwarding: in-flight reads complete with
 * all-ones, a virtio-mmio window is then answered by the stand-in device
 * (virtio/standin.h: NEEDS_RESET and a configuration interrupt), and the
 * VM keeps running. A restarted server can attach again on the socket.
 *
 * Files: client_attach.c (connect, peer check, handshake, shared memory,
 * create, re-attach, remap), client_forward.c (slots, posted ring, the
 * window's bus ops, statistics), client_detach.c (control-socket events,
 * detach to the stand-in, destroy), client_iommu.c (the IOMMU channel:
 * the snapshot at attach, map/unmap/reset), client_state.c (the state
 * channel: a device's snapshot state). client_priv.h holds the shared
 * state.
 *
 * No KVM here: doorbell lanes go into the ioeventfd registry it is given,
 * posted ranges through struct ioreq_posted_host.
 *
 * Threads: forwarding runs on vCPU threads (shared lock on the client);
 * attach, detach, remap and destroy on the main thread. Attaching
 * prepares a new attachment without the lock and swaps it in under the
 * exclusive lock; detaching swaps it out the same way.
 */
#ifndef WISP_IOREQ_CLIENT_H
#define WISP_IOREQ_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bus/bus.h"
#include "bus/ioeventfd.h"
#include "ioreq/proto.h"
#include "mem/guest_mem.h"
#include "util/err.h"

/* Optional: let guest writes to a posted range queue up in the host
 * kernel (KVM coalesced MMIO) instead of exiting one by one; the VMM then
 * drains them into the buffered ring, in order, before it handles any
 * other exit and at least every millisecond. */
struct ioreq_posted_host {
	int (*add_posted)(void *opaque, uint64_t addr, uint64_t len);
	int (*del_posted)(void *opaque, uint64_t addr, uint64_t len);
	void *opaque;
};

/* The device is behind the VM's IOMMU (docs/ioreq.md, "The IOMMU"): the
 * server must speak version 2 and take IOREQ_F_IOMMU, or it is refused
 * (it would use the guest's IOVAs as guest-physical addresses). */
struct ioreq_iommu_host {
	/* The endpoint's state now, for a server that (re)attaches: its
	 * mode (IOREQ_IOMMU_*), its mappings (only iova, last, gpa and
	 * perm are used; *maps is malloc'd, the caller frees it) and the
	 * number of the last change it reflects (see ioreq_client_iommu_*).
	 * Called on the attaching thread; 0 or -errno. */
	int (*snapshot)(void *opaque, uint32_t *mode,
			struct ioreq_iommu_map **maps, uint32_t *nr,
			uint64_t *seq);
	/* The server's device had a DMA refused (IOMMU_FAULT); main
	 * thread. flags: IOREQ_IOMMU_READ or IOREQ_IOMMU_WRITE. */
	void (*fault)(void *opaque, uint64_t iova, uint32_t flags);
	void *opaque;
};

struct ioreq_client_config {
	const char *name; /* for messages */
	const char *socket_path; /* connect (and reconnect) here */
	int nr_vcpus; /* slots; the last one is used by non-vCPU threads */
	struct guest_mem *mem;
	uint64_t window_base, window_size;
	unsigned int gsi;
	int irq_efd; /* irqfd-bound; the client dups it */
	/* The server's doorbell lanes go here (NULL: doorbells refused). */
	struct ioeventfd_registry *doorbells;
	struct ioreq_posted_host posted; /* all NULL: no coalescing */
	int timeout_ms; /* bounded wait for an answer (0: 2000) */
	int connect_timeout_ms; /* first attach (0: 5000) */
	uint32_t features; /* offered (0: IOREQ_F_ALL) */
	/* The uid the server must run as (SO_PEERCRED); 0: wisp's own
	 * effective uid. A root peer is always accepted. */
	uid_t server_uid;
	/* snapshot set: behind the IOMMU (IOREQ_F_IOMMU required). */
	struct ioreq_iommu_host iommu;
};

struct ioreq_client;

/* Connects and completes the handshake (the server's READY), both within
 * connect_timeout_ms. A socket path that does not fit a unix socket
 * address is a config error (-ENAMETOOLONG); a peer of another uid is
 * refused (-EACCES). On failure *out is NULL and nothing is kept. */
int ioreq_client_create(const struct ioreq_client_config *cfg,
			struct ioreq_client **out, struct err *e);
/* Says BYE (without waiting for room on the socket), unregisters and
 * frees everything. */
void ioreq_client_destroy(struct ioreq_client *c);

/* The window's bus ops (opaque = the client). */
extern const struct bus_ops ioreq_window_ops;

/* Event-loop integration: the control socket (-1 while detached), to be
 * polled for input/hang-up; call handle_event when it fires. */
int ioreq_client_fd(const struct ioreq_client *c);
void ioreq_client_handle_event(struct ioreq_client *c);
/* While detached: try to attach again (returns 0 when attached). The
 * handshake runs without the lock vCPUs take, within 2 s. */
int ioreq_client_try_attach(struct ioreq_client *c);
bool ioreq_client_attached(const struct ioreq_client *c);

/* Detached from a server known dead (not cut off): fails, with the
 * device type's error status, the requests the guest posted since the
 * last call, and raises the interrupt. Its doorbells still go to the
 * dead server's eventfds, so nothing else would ever complete them.
 * Main thread; returns how many were failed. */
int ioreq_client_fail_pending(struct ioreq_client *c);
/* The server announced a virtio-mmio device in its window. */
bool ioreq_client_is_virtio(const struct ioreq_client *c);

/* Asks the server to drop its guest RAM mapping and waits (timeout_ms)
 * for its answer (or its disconnect), then maps the (new) layout again.
 * Main thread. */
int ioreq_client_remap(struct ioreq_client *c, struct err *e);

/*
 * Behind the IOMMU: tell the server about a change of the endpoint's
 * translation, and wait (timeout_ms) for its IOMMU_DONE, which it sends
 * once no request of its device uses what was removed. seq numbers the
 * changes (increasing); one that the server's last snapshot already
 * reflects is skipped. While no server is attached there is nobody to
 * tell: 0 (the next attachment starts from a snapshot). Returns the
 * server's status (0 or -errno); a server that does not answer in time
 * or breaks the protocol is cut off (its window becomes the NEEDS_RESET
 * stand-in) and the call returns -ETIMEDOUT or -EPROTO. Any thread but
 * the main one's event handling; calls are serialized.
 */
int ioreq_client_iommu_map(struct ioreq_client *c, uint64_t seq, uint64_t iova,
			   uint64_t last, uint64_t gpa, uint32_t perm);
int ioreq_client_iommu_unmap(struct ioreq_client *c, uint64_t seq,
			     uint64_t iova, uint64_t last);
int ioreq_client_iommu_reset(struct ioreq_client *c, uint64_t seq,
			     uint32_t mode);

/*
 * Device state for snapshots (IOREQ_F_STATE, docs/ioreq.md "Device
 * state"), over the state channel; any thread but the main one's event
 * handling, calls serialized, each answer waited for at most 5 times
 * timeout_ms (10 s by default: a disk finishes its requests first).
 * state_save: the server finishes its device's requests in flight, holds
 * the device and returns its state (*out malloc'd, at most
 * IOREQ_MAX_STATE bytes, opaque here); the device stays held until
 * state_resume. state_load gives a saved state to a (new) server, which
 * checks it whole before applying it. -ENOTCONN without a server,
 * -ENOTSUP when it lacks IOREQ_F_STATE, the server's refusal with its
 * message (config class), or a transport failure (the server is then
 * cut off, as on a timeout of the other channels).
 */
bool ioreq_client_has_state(struct ioreq_client *c);
int ioreq_client_state_save(struct ioreq_client *c, uint8_t **out, size_t *len,
			    struct err *e);
int ioreq_client_state_resume(struct ioreq_client *c, struct err *e);
int ioreq_client_state_load(struct ioreq_client *c, const uint8_t *state,
			    size_t len, struct err *e);

struct ioreq_stats {
	uint64_t sync, posted, ring_full, timeouts, spins_hit, blocks;
	/* InterruptStatus reads and ACKs served from the shared word. */
	uint64_t shared_isr;
};
void ioreq_client_stats(const struct ioreq_client *c, struct ioreq_stats *s);

#endif
