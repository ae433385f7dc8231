/* SPDX-License-Identifier: MIT */
/*
 * libwisp-ioreq: the server side of the IOREQ protocol (docs/ioreq.md),
 * for device models that run in their own process. No KVM and no VMM
 * code: a server gets guest RAM, request slots, the buffered ring and its
 * interrupt eventfd from the VMM, registers the ranges it serves (with
 * the same struct bus_ops a device uses inside wisp) and doorbell lanes,
 * and runs wisp_ioreq_serve() until the VMM goes away. This header and
 * what it includes (the wire format, the guest-memory accessors, struct
 * bus_ops, struct err) are the library's whole interface; it links with
 * libwisp-ioreq-proto, libwisp-mem, libwisp-iommu (the IOMMU table and
 * in-flight tracking) and libwisp-util only (tests/unit/test_ioreq_link.c).
 *
 * The VMM is not trusted: every size and offset it announces is checked
 * against the fds it passes (fstat), the shared page and the ring are
 * indexed only through values the library keeps privately, and every
 * wait on the VMM (messages, its eventfds) is bounded by timeout_ms. A
 * broken or hostile VMM makes the calls below fail with -EPROTO or
 * -ETIMEDOUT and a message, never crash or hang the server. One residual
 * hazard is the VMM shrinking a memfd after the checks: that raises
 * SIGBUS on the next access unless the memfd carries F_SEAL_SHRINK;
 * wisp_ioreq_sealed() tells which case a server is in.
 *
 * Threads: one thread calls wisp_ioreq_serve(); range callbacks run on it.
 * A device's own threads (e.g. a virtio I/O thread) may run concurrently
 * and must lock what they share with the callbacks; the pause/resume
 * hooks bracket a guest-memory remap so those threads stay out of it.
 * wisp_ioreq_stop() may be called from any thread or a signal handler.
 */
#ifndef WISP_IOREQ_SERVER_H
#define WISP_IOREQ_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "ioreq/proto.h"
#include "mem/guest_mem.h"
#include "util/err.h"

struct wisp_ioreq_range {
	uint64_t addr, len;
	uint32_t mode;
	const struct bus_ops *ops;
	void *opaque;
};

struct wisp_ioreq_server {
	int sock;
	char name[32];
	struct ioreq_welcome welcome; /* window, gsi, features, ... */
	struct guest_mem mem; /* guest RAM (remapped in place) */
	int irq_efd; /* write 1: an edge on the device's line */

	int shm_fd;
	uint8_t *shm;
	struct ioreq_slot *slots;
	struct ioreq_ring *ring;
	int wake_efd;
	int resp_efd[IOREQ_MAX_VCPUS];
	int nr_vcpus;
	uint32_t seq;
	struct wisp_ioreq_range ranges[IOREQ_MAX_RANGES];
	int nr_ranges;
	uint64_t spin_ns; /* poll this long for more work before sleeping */
	void (*pause)(void *opaque); /* guest RAM about to be unmapped */
	void (*resume)(void *opaque); /* guest RAM mapped again */
	void *hook_opaque;
	int timeout_ms; /* bound of every wait on the VMM (default 5000) */
	/* IOREQ_F_STATE (docs/ioreq.md, "Device state"): called on the
	 * serving thread with hook_opaque. state_save finishes the
	 * device's requests in flight, holds the device (no new request
	 * taken from its queues) and writes its state into buf (at most
	 * cap bytes): the length, or -errno with e. state_resume lets a
	 * held device run again. state_load checks the whole state before
	 * it changes anything, applies it and looks at every live queue:
	 * 0, or -errno with e (the device as before). Unset: the VMM's
	 * requests are refused with -ENOTSUP. */
	int (*state_save)(void *opaque, uint8_t *buf, size_t cap,
			  struct err *e);
	void (*state_resume)(void *opaque);
	int (*state_load)(void *opaque, const uint8_t *buf, size_t len,
			  struct err *e);
	/* Counters of what was served: slot requests (reads and writes)
	 * and ring entries (posted writes). */
	uint64_t handled_sync, handled_posted;

	/* Private state: the ring consumer's position (the copy in shared
	 * memory is only published, never read back), the stop request. */
	uint32_t ring_tail;
	int stop_efd;
	int stop;
	bool shm_sealed, mem_sealed;
	/* IOREQ_F_IOMMU: the IOMMU channel and the translation table. */
	int iommu_sock;
	struct wisp_ioreq_iommu *iommu;
	/* IOREQ_F_STATE: the state channel; the device is held after a
	 * STATE_SAVE until STATE_RESUME (or the end of the connection). */
	int state_sock;
	bool state_held;
	uint8_t *state_buf; /* IOREQ_MAX_STATE_MSG bytes */
};

/* Creates a listening SOCK_SEQPACKET socket at path (a stale socket file
 * is replaced). Returns the fd or -errno. */
int wisp_ioreq_listen(const char *path, struct err *e);

/* Accepts one VMM connection and runs the handshake up to guest RAM being
 * mapped: HELLO (name, features) -> WELCOME -> MEM_MAP. The wait for a
 * connection is unbounded (a server waits for its VMM); the handshake is
 * bounded. On failure *out is NULL and nothing is left open except
 * listen_fd (which the caller always keeps). */
int wisp_ioreq_accept(int listen_fd, const char *name, uint32_t features,
		      struct wisp_ioreq_server **out, struct err *e);

/* The same handshake on an already connected SOCK_SEQPACKET socket (a
 * socketpair end or an inherited fd). Takes ownership of sock, also on
 * failure. */
int wisp_ioreq_handshake(int sock, const char *name, uint32_t features,
			 struct wisp_ioreq_server **out, struct err *e);

/* With IOREQ_F_SHARED_ISR granted: the shared page's InterruptStatus word
 * (NULL otherwise) and, in *reads, the count of the guest's reads the
 * VMM served from it (virtio_mmio_share_isr takes both). A server that
 * asks for the feature must keep its window's InterruptStatus there, or
 * the guest never sees its interrupts' causes. */
uint32_t *wisp_ioreq_shared_isr(struct wisp_ioreq_server *s, uint32_t **reads);

/* Before wisp_ioreq_ready(): forward [addr, addr+len) of the assigned
 * window to ops (offsets relative to addr); mode IOREQ_RANGE_SYNC or
 * IOREQ_RANGE_POSTED. */
int wisp_ioreq_map_range(struct wisp_ioreq_server *s, uint64_t addr,
			 uint64_t len, uint32_t mode, const struct bus_ops *ops,
			 void *opaque, struct err *e);

/* Before wisp_ioreq_ready(): a write of len bytes at addr (matching value
 * if datamatch) signals efd without involving either process's code. */
int wisp_ioreq_add_doorbell(struct wisp_ioreq_server *s, uint64_t addr,
			    uint32_t len, bool datamatch, uint64_t value,
			    int efd, struct err *e);

int wisp_ioreq_ready(struct wisp_ioreq_server *s, struct err *e);

/* Serves requests until the VMM says BYE or disconnects (returns 0),
 * wisp_ioreq_stop() is called (-EINTR), or the VMM breaks the protocol
 * (-EPROTO) or stops answering within timeout_ms (-ETIMEDOUT); e says
 * which. */
int wisp_ioreq_serve(struct wisp_ioreq_server *s, struct err *e);

/* Makes wisp_ioreq_serve() return -EINTR soon. Async-signal-safe. */
void wisp_ioreq_stop(struct wisp_ioreq_server *s);

/* Whether the VMM sealed the shared page and guest RAM against
 * shrinking (F_SEAL_SHRINK): only then can it not provoke a SIGBUS. */
bool wisp_ioreq_sealed(const struct wisp_ioreq_server *s);

/*
 * IOREQ_F_IOMMU (version 2): the VMM put the device behind an IOMMU.
 * Every guest address the device is given is then an IOVA; the device's
 * queues translate through wisp_ioreq_translate() (the signature of
 * struct virtq_dma's translate, opaque = s; token: the request's, from
 * wisp_ioreq_dma_begin(), or 0 for a translation whose result is not
 * kept), and bracket each request with wisp_ioreq_dma_begin()/end() so
 * that an IOMMU_UNMAP is answered only once no request still uses a
 * removed mapping. The table is kept
 * by wisp_ioreq_serve() from the VMM's IOMMU_MAP/UNMAP/RESET; it starts
 * empty and blocking. A refused DMA returns -EFAULT and is reported to
 * the VMM (IOMMU_FAULT, at most 16 waiting; more are counted). Without
 * the feature translate() is the identity and begin/end do nothing.
 * Thread-safe: called from the device's threads.
 */
bool wisp_ioreq_iommu(const struct wisp_ioreq_server *s);
int wisp_ioreq_translate(void *s, int token, uint64_t iova, uint64_t len,
			 bool write, uint64_t *gpa, uint64_t *plen);
int wisp_ioreq_dma_begin(void *s);
void wisp_ioreq_dma_end(void *s, int token);

struct wisp_ioreq_iommu_stats {
	uint64_t maps, unmaps, resets, faults, faults_dropped;
	uint32_t mappings;
};
void wisp_ioreq_iommu_stats(struct wisp_ioreq_server *s,
			    struct wisp_ioreq_iommu_stats *st);

void wisp_ioreq_close(struct wisp_ioreq_server *s);

#endif
