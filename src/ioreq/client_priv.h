/* SPDX-License-Identifier: MIT */
/* State shared by the client's files (client.h says which owns what). */
#ifndef WISP_IOREQ_CLIENT_PRIV_H
#define WISP_IOREQ_CLIENT_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "ioreq/client.h"
#include "ioreq/proto.h"
#include "virtio/standin.h"

#define RING_ENTRIES 256
#define RING_OFFSET 4096
#define MAX_DOORBELLS 16

struct fwd_range {
	uint64_t off, len; /* relative to the window */
	uint32_t mode;
	bool coalesced; /* registered with the host's posted queue */
};

struct doorbell {
	uint64_t addr;
	uint32_t len;
	uint32_t flags; /* IOEVR_F_DATAMATCH or 0 */
	uint64_t value;
	int efd;
};

/* One connection to one server process: everything that lives and dies
 * with it. Built by the main thread without the client lock, published
 * in c->att under the exclusive lock, read by vCPUs under the shared
 * lock, freed after being unpublished. */
struct ioreq_attachment {
	int sock;
	int shm_fd;
	uint8_t *shm;
	size_t shm_size;
	struct ioreq_slot *slots;
	struct ioreq_ring *ring;
	uint32_t ring_head; /* private copy: the shared one is not trusted */
	int wake_efd;
	int resp_efd[IOREQ_MAX_VCPUS];
	uint32_t features;
	char server_name[32];
	struct fwd_range ranges[IOREQ_MAX_RANGES];
	int nr_ranges;
	struct doorbell dbs[MAX_DOORBELLS];
	int nr_dbs;
	uint32_t version; /* negotiated */
	/* IOREQ_F_IOMMU: our end of the IOMMU channel, the change number
	 * the server's snapshot reflected, the channel's message counter. */
	int iommu_sock;
	uint64_t iommu_seq;
	uint32_t iommu_msg;
	/* IOREQ_F_STATE: our end of the state channel, its counter. */
	int state_sock;
	uint32_t state_msg;
};

struct ioreq_client {
	struct ioreq_client_config cfg;
	char name[64];
	char path[108];

	/* Shared by forwarding vCPUs, exclusive to swap att. */
	pthread_rwlock_t lock;
	struct ioreq_attachment *att; /* NULL while detached */
	/* Set before detaching, so waiting vCPUs give up at once. */
	atomic_bool dead;
	/* We cut a misbehaving server off (timeout, corrupted ring): it may
	 * still be alive, so its in-flight requests must not be completed
	 * behind its back. */
	atomic_bool cut_off;
	pthread_mutex_t ring_lock; /* producers of the buffered ring */
	/* Serializes the IOMMU channel: held by ioreq_client_iommu_* and by
	 * an attach from its snapshot until the attachment is published, so
	 * no change falls between the two. Taken before lock. */
	pthread_mutex_t iommu_lock;
	/* Serializes the state channel (ioreq_client_state_*). Taken
	 * before lock. */
	pthread_mutex_t state_lock;
	uint32_t mem_generation; /* main thread */

	int irq_efd; /* our dup, kept across attachments */
	atomic_ullong ewma_ns; /* response time, for the spin budget */

	bool virtio; /* under lock, like att */
	struct virtio_standin standin;

	atomic_ullong st_sync, st_posted, st_ring_full, st_timeouts,
		st_spins_hit, st_blocks, st_shared_isr;
};

/* client_attach.c. A socket nobody listens on yet is retried for
 * connect_ms (0: one attempt); the handshake gets timeout_ms. */
int ioreq_client_attach(struct ioreq_client *c, int connect_ms, int timeout_ms,
			struct err *e);
/* client_detach.c: unregisters the attachment's lanes and ranges,
 * unmaps and closes everything, frees it. */
void ioreq_attachment_free(struct ioreq_client *c, struct ioreq_attachment *a);
void ioreq_client_detach(struct ioreq_client *c, const char *why, bool gone);
/* client_iommu.c: with IOREQ_F_IOMMU, brings a new attachment's server
 * to the endpoint's state (iommu_lock held) before it is published. */
int ioreq_client_iommu_replay(struct ioreq_client *c,
			      struct ioreq_attachment *a, uint64_t deadline,
			      struct err *e);
/* An IOMMU_FAULT from the server (main thread): 0 or -EPROTO. */
int ioreq_client_iommu_fault(struct ioreq_client *c, const void *msg, int n);

/* client_forward.c: a vCPU gives up on the server (timeout, corruption):
 * mark it dead and cut off and hang up, so the main loop detaches. */
void ioreq_client_cut_off(struct ioreq_client *c, struct ioreq_attachment *a);

#endif
