/* SPDX-License-Identifier: MIT */
/*
 * The IOREQ protocol: wire format shared by the VMM side (ioreq/client_*.c)
 * and the server library (ioreq/server.c). docs/ioreq.md is the normative
 * description; this header is its C rendering. All integers are
 * little-endian; structures are packed to the sizes asserted below.
 *
 * Transport: a SOCK_SEQPACKET unix socket (one message per packet, fds
 * in SCM_RIGHTS), plus shared memory and eventfds passed over it.
 */
#ifndef WISP_IOREQ_PROTO_H
#define WISP_IOREQ_PROTO_H

#include <stdint.h>

#define IOREQ_MAGIC 0x51524f49u /* "IORQ" */
/* Version 2 adds IOREQ_F_IOMMU and its messages. A version-2 peer talks
 * to a version-1 peer at version 1 (WELCOME carries min of both), where
 * IOREQ_F_IOMMU does not exist. */
#define IOREQ_VERSION 2
#define IOREQ_VERSION_MIN 1

/* Feature bits negotiated in HELLO: the VMM offers, the server answers
 * with the subset it uses. */
#define IOREQ_F_BUFFERED_RING (1u << 0) /* posted writes through the ring */
#define IOREQ_F_DOORBELLS (1u << 1) /* server-owned ioeventfd lanes */
#define IOREQ_F_VIRTIO_MMIO (1u << 2) /* window is a virtio-mmio device */
/* Version 2: the device's DMA goes through an IOMMU; the server
 * translates every guest address it is given through the table that
 * IOMMU_MAP/UNMAP/RESET keep, sent on the IOMMU channel (WELCOME's last
 * fd). */
#define IOREQ_F_IOMMU (1u << 3)
/* The server saves and loads its device's state for snapshots over the
 * state channel (WELCOME's last fd). Any version: a peer that does not
 * know the bit never asks for it or grants it. */
#define IOREQ_F_STATE (1u << 4)
/* The virtio-mmio window's InterruptStatus is the ring header's isr word
 * (needs BUFFERED_RING and VIRTIO_MMIO): the server's transport keeps it
 * there, and the VMM serves the guest's InterruptStatus reads and
 * InterruptACK writes from it, with no round trip. Any version. */
#define IOREQ_F_SHARED_ISR (1u << 5)
#define IOREQ_F_ALL                                                        \
	(IOREQ_F_BUFFERED_RING | IOREQ_F_DOORBELLS | IOREQ_F_VIRTIO_MMIO | \
	 IOREQ_F_IOMMU | IOREQ_F_STATE | IOREQ_F_SHARED_ISR)

#define IOREQ_MAX_FDS (5 + IOREQ_MAX_VCPUS)
#define IOREQ_MAX_MSG 512
#define IOREQ_MAX_VCPUS 32
#define IOREQ_MAX_RANGES 16
#define IOREQ_MAX_MEM_REGIONS 4

enum ioreq_msg_type {
	/* server -> VMM */
	IOREQ_MSG_HELLO = 1, /* first message */
	IOREQ_MSG_MAP_RANGE = 2, /* forward [addr, addr+len) to me */
	IOREQ_MSG_ADD_DOORBELL = 3, /* + 1 fd: an ioeventfd lane */
	IOREQ_MSG_READY = 4, /* ranges and lanes done; start forwarding */
	IOREQ_MSG_MEM_UNMAPPED = 5, /* ack of MEM_INVALIDATE */
	IOREQ_MSG_IOMMU_FAULT = 6, /* control socket: a DMA was refused */
	IOREQ_MSG_IOMMU_DONE = 7, /* IOMMU channel: an IOMMU_* is applied */
	IOREQ_MSG_STATE = 8, /* state channel: the answer to a STATE_* */
	/* VMM -> server */
	IOREQ_MSG_WELCOME = 16, /* answer to HELLO; fds: see below */
	IOREQ_MSG_MEM_MAP = 17, /* + 1 fd: guest RAM memfd and its layout */
	IOREQ_MSG_MEM_INVALIDATE = 18, /* drop your guest RAM mappings */
	IOREQ_MSG_ACK = 19, /* result of MAP_RANGE / ADD_DOORBELL */
	IOREQ_MSG_BYE = 20, /* VMM is going away */
	/* VMM -> server, on the IOMMU channel; each answered by
	 * IOMMU_DONE with the same seq before the next is sent. */
	IOREQ_MSG_IOMMU_MAP = 21, /* add [iova, last] -> gpa */
	IOREQ_MSG_IOMMU_UNMAP = 22, /* remove the mappings inside a range */
	IOREQ_MSG_IOMMU_RESET = 23, /* drop every mapping; set the mode */
	/* VMM -> server, on the state channel; each answered by STATE with
	 * the same seq before the next is sent. */
	IOREQ_MSG_STATE_SAVE = 24, /* quiesce, hold the device, send state */
	IOREQ_MSG_STATE_RESUME = 25, /* let a held device run again */
	IOREQ_MSG_STATE_LOAD = 26, /* + payload: apply a saved state */
};

struct ioreq_hdr {
	uint32_t type;
	uint32_t len; /* of the whole message including this header */
	uint32_t seq; /* echoed in ACK */
	uint32_t reserved;
};

/* HELLO: the server introduces itself. */
struct ioreq_hello {
	struct ioreq_hdr hdr;
	uint32_t magic;
	uint32_t version;
	uint32_t features; /* what the server can use */
	uint32_t reserved;
	char name[32]; /* NUL-terminated, for messages */
};

/*
 * WELCOME: the VMM's answer, with 3 + nr_vcpus fds (+ 1 with
 * IOREQ_F_IOMMU) in this order:
 *   [0] the shared page memfd (slots, then the buffered ring), mapped
 *       MAP_SHARED with size shared_size;
 *   [1] the interrupt eventfd for the device's line (irqfd-bound):
 *       writing 1 raises an edge on gsi;
 *   [2] the server's wake eventfd: the VMM writes it after publishing a
 *       request (any slot) or ring entries;
 *   [3 + i] slot i's response eventfd: the server writes it after
 *       setting slot i to IORESP_READY (unless vmm_polling is set);
 *   [3 + nr_vcpus] with IOREQ_F_IOMMU: the IOMMU channel, a connected
 *       SOCK_SEQPACKET socket carrying IOMMU_MAP/UNMAP/RESET and their
 *       IOMMU_DONE answers;
 *   then, with IOREQ_F_STATE: the state channel, a connected
 *       SOCK_SEQPACKET socket carrying STATE_SAVE/RESUME/LOAD and their
 *       STATE answers.
 */
struct ioreq_welcome {
	struct ioreq_hdr hdr;
	uint32_t magic;
	uint32_t version; /* min(the server's, the VMM's) */
	uint32_t features; /* negotiated: offered & asked */
	uint32_t nr_vcpus; /* slots in the shared page */
	uint64_t shared_size;
	uint64_t ring_offset; /* buffered ring in the shared page; 0: none */
	uint32_t ring_entries; /* a power of two */
	uint32_t gsi; /* the device's interrupt line */
	uint64_t window_base; /* the device's assigned MMIO window */
	uint64_t window_size;
};

/* IOMMU_MAP: [iova, last] (inclusive, page-aligned) translates to
 * [gpa, gpa + last - iova] with perm (IOREQ_IOMMU_READ/WRITE). */
#define IOREQ_IOMMU_READ 1u
#define IOREQ_IOMMU_WRITE 2u
struct ioreq_iommu_map {
	struct ioreq_hdr hdr;
	uint64_t iova;
	uint64_t last;
	uint64_t gpa;
	uint32_t perm;
	uint32_t reserved;
};

/* IOMMU_UNMAP: every mapping inside [iova, last] goes; the server answers
 * only once no request of its device still uses one of them. */
struct ioreq_iommu_unmap {
	struct ioreq_hdr hdr;
	uint64_t iova;
	uint64_t last;
};

/* IOMMU_RESET: the table is emptied (waiting as for UNMAP) and the
 * device's DMA is then blocked, untranslated, or translated. */
#define IOREQ_IOMMU_BLOCK 0 /* no domain: every DMA fails */
#define IOREQ_IOMMU_BYPASS 1 /* addresses are GPAs */
#define IOREQ_IOMMU_TRANSLATE 2 /* through the (new, empty) table */
struct ioreq_iommu_reset {
	struct ioreq_hdr hdr;
	uint32_t mode;
	uint32_t reserved;
};

/* IOMMU_DONE: the answer to one IOMMU_* (hdr.seq echoed); status 0 or a
 * negative errno (the change could not be made or vouched for). */
struct ioreq_iommu_done {
	struct ioreq_hdr hdr;
	int32_t status;
	uint32_t reserved;
};

/* IOMMU_FAULT (server -> VMM, control socket): the device's DMA to iova
 * was refused (flags: IOREQ_IOMMU_READ/WRITE, the access). */
struct ioreq_iommu_fault {
	struct ioreq_hdr hdr;
	uint64_t iova;
	uint32_t flags;
	uint32_t reserved;
};

/*
 * STATE_SAVE (no payload): the server finishes its device's requests in
 * flight, holds the device (it takes no new request from its queues; its
 * register window still answers) until STATE_RESUME or the channel's
 * hang-up, and answers STATE with status 0 and the device's state (at
 * most IOREQ_MAX_STATE bytes, opaque to the VMM, which stores it in the
 * snapshot and gives it back in STATE_LOAD), or a negative errno and a
 * NUL-terminated message (at most IOREQ_MAX_STATE_ERR bytes).
 * STATE_RESUME (no payload): answered by STATE, status 0, no payload.
 * STATE_LOAD (len bytes of a STATE_SAVE's payload): the server checks the
 * whole state against its device before it changes anything, applies
 * it, looks at every live queue once, and answers STATE with status 0,
 * or a negative errno and a message (the device is then as before).
 */
#define IOREQ_MAX_STATE 16384
#define IOREQ_MAX_STATE_ERR 256 /* a refusal's message, NUL included */
#define IOREQ_MAX_STATE_MSG (sizeof(struct ioreq_state_msg) + IOREQ_MAX_STATE)
struct ioreq_state_msg {
	struct ioreq_hdr hdr;
	int32_t status;
	uint32_t len; /* payload bytes after this header */
};

struct ioreq_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t offset; /* in the memfd */
};

/* MEM_MAP: guest RAM layout; 1 fd (the memfd). generation increases with
 * every new layout. */
struct ioreq_mem_map {
	struct ioreq_hdr hdr;
	uint32_t generation;
	uint32_t nr_regions;
	struct ioreq_mem_region regions[IOREQ_MAX_MEM_REGIONS];
};

/* MEM_INVALIDATE (VMM -> server) and MEM_UNMAPPED (server -> VMM): the
 * server must stop touching guest RAM of that generation, munmap it,
 * then answer MEM_UNMAPPED with the same generation. The VMM does not
 * reuse the memory before the answer (or the server's disconnect). */
struct ioreq_mem_gen {
	struct ioreq_hdr hdr;
	uint32_t generation;
	uint32_t reserved;
};

#define IOREQ_SPACE_MMIO 0
#define IOREQ_SPACE_PIO 1

#define IOREQ_RANGE_SYNC 0 /* every access is a synchronous request */
#define IOREQ_RANGE_POSTED 1 /* writes go through the ring; reads sync */

/* MAP_RANGE: forward accesses to [addr, addr+len). */
struct ioreq_map_range {
	struct ioreq_hdr hdr;
	uint32_t space;
	uint32_t mode;
	uint64_t addr;
	uint64_t len;
};

/* ADD_DOORBELL: 1 fd; same fields and rules as KVM_IOEVENTFD. */
#define IOREQ_DB_DATAMATCH 1
struct ioreq_add_doorbell {
	struct ioreq_hdr hdr;
	uint32_t space;
	uint32_t flags;
	uint64_t addr;
	uint32_t len;
	uint32_t reserved;
	uint64_t datamatch;
};

/* ACK: status is 0 or a negative errno. */
struct ioreq_ack {
	struct ioreq_hdr hdr;
	int32_t status;
	uint32_t reserved;
};

/*
 * Shared page. Slot i belongs to vCPU i. The VMM fills addr, size, dir,
 * space and (for writes) data, then stores state = READY with release
 * ordering and writes the wake eventfd (unless the server is polling).
 * The server loads state with acquire ordering, stores INPROCESS, handles
 * the access, stores data (for reads), then state = IORESP_READY with
 * release ordering, and writes the slot's response eventfd (unless the
 * VMM is polling: vmm_polling != 0). The VMM loads IORESP_READY with
 * acquire ordering, takes data, and stores NONE.
 */
enum ioreq_state {
	IOREQ_STATE_NONE = 0,
	IOREQ_STATE_READY = 1,
	IOREQ_STATE_INPROCESS = 2,
	IOREQ_STATE_IORESP_READY = 3,
};

#define IOREQ_DIR_WRITE 0
#define IOREQ_DIR_READ 1

struct ioreq_slot {
	uint64_t addr;
	uint64_t data;
	uint32_t size; /* 1, 2, 4 or 8 */
	uint8_t dir;
	uint8_t space;
	uint8_t reserved[2];
	uint32_t state; /* enum ioreq_state; atomic */
	uint32_t vmm_polling; /* VMM is spinning: no eventfd needed */
	uint32_t seq; /* incremented per request, for debugging */
	uint8_t pad[28];
};

/*
 * Buffered ring for posted writes: one producer side (the VMM, which
 * serializes its vCPUs), one consumer (the server). Entries between tail
 * and head (free-running uint32 counters, index = counter % entries) are
 * published; the VMM stores head with release ordering after filling the
 * entry, the server stores tail with release ordering after consuming.
 * Full (head - tail == entries): the VMM uses the vCPU's slot instead.
 * Ordering: before a synchronous request the VMM has published every
 * earlier posted write of that vCPU in the ring, and the server drains
 * the ring before it looks at the slots, so a vCPU's accesses are seen
 * in program order.
 */
struct ioreq_ring_entry {
	uint64_t addr;
	uint64_t data;
	uint32_t size;
	uint8_t space;
	uint8_t reserved[3];
	uint64_t pad;
};

struct ioreq_ring {
	uint32_t head; /* atomic; written by the VMM */
	uint32_t pad0[15];
	uint32_t tail; /* atomic; written by the server */
	uint32_t server_polling; /* server is spinning: no wake needed */
	/* With IOREQ_F_SHARED_ISR: the window's InterruptStatus (bit 0
	 * used buffer, bit 1 configuration change), set by the server's
	 * device and cleared by the VMM for the guest's ACK; and the count
	 * of the guest's InterruptStatus reads, which the VMM bumps and the
	 * server's lost-interrupt watch reads (the server no longer sees
	 * them). Both atomic. */
	uint32_t isr;
	uint32_t isr_reads;
	uint32_t pad1[12];
	struct ioreq_ring_entry entries[];
};

_Static_assert(sizeof(struct ioreq_hdr) == 16, "hdr");
_Static_assert(sizeof(struct ioreq_hello) == 64, "hello");
_Static_assert(sizeof(struct ioreq_welcome) == 72, "welcome");
_Static_assert(sizeof(struct ioreq_mem_map) == 24 + 24 * IOREQ_MAX_MEM_REGIONS,
	       "mem_map");
_Static_assert(sizeof(struct ioreq_map_range) == 40, "map_range");
_Static_assert(sizeof(struct ioreq_add_doorbell) == 48, "add_doorbell");
_Static_assert(sizeof(struct ioreq_slot) == 64, "slot");
_Static_assert(sizeof(struct ioreq_ring) == 128, "ring header");
_Static_assert(sizeof(struct ioreq_iommu_map) == 48, "iommu_map");
_Static_assert(sizeof(struct ioreq_iommu_unmap) == 32, "iommu_unmap");
_Static_assert(sizeof(struct ioreq_iommu_reset) == 24, "iommu_reset");
_Static_assert(sizeof(struct ioreq_iommu_done) == 24, "iommu_done");
_Static_assert(sizeof(struct ioreq_iommu_fault) == 32, "iommu_fault");
_Static_assert(sizeof(struct ioreq_state_msg) == 24, "state");
_Static_assert(sizeof(struct ioreq_ring_entry) == 32, "ring entry");
_Static_assert(sizeof(struct ioreq_ring) == 128, "ring header");

#endif
