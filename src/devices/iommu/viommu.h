/* SPDX-License-Identifier: MIT */
/*
 * virtio-iommu (virtio 1.2, 5.13; device ID 23): a requestq for ATTACH,
 * DETACH, MAP, UNMAP and PROBE, an eventq for fault records. Each endpoint
 * (one per virtio-mmio window, as the ACPI VIOT names them) gets a
 * struct virtq_dma that the endpoint device's queues use for every
 * guest-memory access: IOVA → GPA through the endpoint's domain, with the
 * mapping's permissions, then the usual checked GPA accessor.
 *
 * Domains are address-space objects of the IOASID allocator: the device
 * has one set (the VM's) whose local range is the guest's domain_range;
 * a guest domain ID is a local ID bound to a global one. What a guest can
 * make the device hold is bounded by the set's quota (domains), a limit
 * of mappings per domain and a total of mapped entries: running out is
 * VIRTIO_IOMMU_S_NOMEM to the guest.
 *
 * A DMA to an unmapped IOVA, or without the permission, fails (the
 * translation returns -EFAULT; see struct virtq_dma) and a fault record is
 * queued for the eventq (at most VIOMMU_MAX_PENDING_FAULTS wait for
 * buffers; more are counted and dropped).
 *
 * Threads: requests run on the IOMMU's I/O thread, which also holds the
 * lock while it looks for the driver's next request after an answer
 * (poll_ns, at most 2 ms per kick), or with vcpu_requests in the vCPU
 * thread that kicked the requestq (a ring's worth per kick, the rest on
 * the I/O thread); both under the device lock. Translations run
 * on the endpoint devices' threads under their locks.
 * Both take the IOMMU's translation lock (after the device lock). A
 * translating thread delivers a fault itself only if the IOMMU's device
 * lock is free (trylock), else the IOMMU's I/O thread does (an eventfd
 * it watches): endpoint threads never wait for the IOMMU, which waits
 * for their requests to drain; the IOMMU never takes an endpoint's lock.
 *
 * A request that removes translations (UNMAP, DETACH, ATTACH elsewhere,
 * a bypass change, a reset) completes only once no request of an
 * affected endpoint's device still uses them: in process, the chains
 * taken before the change (struct virtq_dma begin/end) have been pushed
 * back; out of process, the server confirmed (struct viommu_remote_ops).
 * Both waits are bounded; past the bound the request fails (DEVERR).
 */
#ifndef WISP_DEVICES_IOMMU_VIOMMU_H
#define WISP_DEVICES_IOMMU_VIOMMU_H

#include <stdbool.h>
#include <stdint.h>

#include "iommu/ioasid.h"
#include "iommu/iova.h"
#include "mem/guest_mem.h"
#include "util/err.h"
#include "virtio/virtio.h"

/* Feature bits (5.13.3). */
#define VIRTIO_IOMMU_F_INPUT_RANGE 0
#define VIRTIO_IOMMU_F_DOMAIN_RANGE 1
#define VIRTIO_IOMMU_F_MAP_UNMAP 2
#define VIRTIO_IOMMU_F_BYPASS 3
#define VIRTIO_IOMMU_F_PROBE 4
#define VIRTIO_IOMMU_F_MMIO 5
#define VIRTIO_IOMMU_F_BYPASS_CONFIG 6

/* Requests and status codes (5.13.6). */
#define VIRTIO_IOMMU_T_ATTACH 1
#define VIRTIO_IOMMU_T_DETACH 2
#define VIRTIO_IOMMU_T_MAP 3
#define VIRTIO_IOMMU_T_UNMAP 4
#define VIRTIO_IOMMU_T_PROBE 5

#define VIRTIO_IOMMU_S_OK 0
#define VIRTIO_IOMMU_S_IOERR 1
#define VIRTIO_IOMMU_S_UNSUPP 2
#define VIRTIO_IOMMU_S_DEVERR 3
#define VIRTIO_IOMMU_S_INVAL 4
#define VIRTIO_IOMMU_S_RANGE 5
#define VIRTIO_IOMMU_S_NOENT 6
#define VIRTIO_IOMMU_S_FAULT 7
#define VIRTIO_IOMMU_S_NOMEM 8

#define VIRTIO_IOMMU_ATTACH_F_BYPASS 1
#define VIRTIO_IOMMU_MAP_F_READ 1
#define VIRTIO_IOMMU_MAP_F_WRITE 2
#define VIRTIO_IOMMU_MAP_F_MMIO 4

#define VIRTIO_IOMMU_PROBE_T_NONE 0
#define VIRTIO_IOMMU_PROBE_T_RESV_MEM 1
#define VIRTIO_IOMMU_RESV_MEM_T_RESERVED 0
#define VIRTIO_IOMMU_RESV_MEM_T_MSI 1

#define VIRTIO_IOMMU_FAULT_R_UNKNOWN 0
#define VIRTIO_IOMMU_FAULT_R_DOMAIN 1
#define VIRTIO_IOMMU_FAULT_R_MAPPING 2
#define VIRTIO_IOMMU_FAULT_F_READ 1
#define VIRTIO_IOMMU_FAULT_F_WRITE 2
#define VIRTIO_IOMMU_FAULT_F_ADDRESS 0x100

/* Request sizes: the driver-readable part, then the 4-byte tail. */
#define VIOMMU_ATTACH_LEN 20
#define VIOMMU_DETACH_LEN 20
#define VIOMMU_MAP_LEN 36
#define VIOMMU_UNMAP_LEN 28
#define VIOMMU_PROBE_LEN 72
#define VIOMMU_TAIL_LEN 4
#define VIOMMU_FAULT_LEN 24

/* Config layout (5.13.4). */
#define VIOMMU_CFG_PAGE_SIZE_MASK 0
#define VIOMMU_CFG_INPUT_START 8
#define VIOMMU_CFG_INPUT_END 16
#define VIOMMU_CFG_DOMAIN_START 24
#define VIOMMU_CFG_DOMAIN_END 28
#define VIOMMU_CFG_PROBE_SIZE 32
#define VIOMMU_CFG_BYPASS 36
#define VIOMMU_CONFIG_SIZE 40

#define VIOMMU_PAGE_SIZE_MASK (~0xfffull) /* every power of two >= 4 KiB */
#define VIOMMU_INPUT_END ((1ull << 48) - 1)
#define VIOMMU_PROBE_SIZE 64
#define VIOMMU_MSI_START 0xfee00000ull
#define VIOMMU_MSI_END 0xfeefffffull

#define VIOMMU_QUEUE_SIZE 128
#define VIOMMU_MAX_ENDPOINTS 32
#define VIOMMU_MAX_PENDING_FAULTS 64

/* Global IDs of the host-wide range (above domain_range). */
#define VIOMMU_HOST_GLOBAL_IDS 65536

struct viommu_config {
	uint32_t max_domains; /* 0: 64 */
	uint32_t max_maps_per_domain; /* 0: 16384 */
	uint64_t max_total_maps; /* 0: 65536 */
	uint32_t domain_end; /* domain_range is [0, domain_end]; 0: 1023 */
	/* Unattached endpoints reach guest memory untranslated until the
	 * driver negotiates (and then as its bypass field says). */
	bool bypass;
	/* The domains' global IDs come from the host-wide registry
	 * (iommu/registry.h) at registry_path (NULL: its default), so no
	 * two wisp processes hold the same one; otherwise they are private
	 * to this VM. */
	bool host_registry;
	const char *registry_path;
	/* Requests run in the kicking vCPU's thread (the driver spins on
	 * each answer, so the vCPU might as well make it) instead of on the
	 * device's I/O thread, kicked through an ioeventfd. */
	bool vcpu_requests;
	/* Without vcpu_requests, after answering, how long the device looks
	 * for the driver's next request itself, with kicks held back: 0
	 * for VIOMMU_POLL_NS when
	 * this process may run on more than one CPU (on one, the driver
	 * cannot add it meanwhile), negative for never. */
	int64_t poll_ns;
};
#define VIOMMU_POLL_NS 200000

/* An endpoint's state, as a remote endpoint's server must apply it. */
#define VIOMMU_EP_BLOCK 0
#define VIOMMU_EP_BYPASS 1
#define VIOMMU_EP_TRANSLATE 2

/*
 * An endpoint whose device runs in another process (an IOREQ server)
 * keeps its own copy of the translation. The IOMMU calls these on its
 * request thread (device lock held, no translation lock) after changing
 * its own table, and completes the guest's request only when they
 * return: each returns 0 once the device confirmed (for unmap and reset:
 * no request of the device still uses what was removed), or -errno,
 * which fails the request (UNMAP, DETACH, ATTACH: DEVERR; MAP: NOMEM for
 * -ENOSPC/-ENOMEM, else DEVERR, and the mapping is withdrawn). seq
 * numbers the changes (see viommu_snapshot). perm: IOVA_PERM_READ/WRITE.
 */
struct viommu_remote_ops {
	int (*map)(void *opaque, uint64_t seq, uint64_t start, uint64_t last,
		   uint64_t gpa, uint32_t perm);
	int (*unmap)(void *opaque, uint64_t seq, uint64_t start, uint64_t last);
	/* Every mapping goes; then the endpoint is VIOMMU_EP_*. A move to
	 * a translated domain is a reset followed by its mappings. */
	int (*reset)(void *opaque, uint64_t seq, uint32_t mode);
};

/* cfg may be NULL (defaults). On success *out belongs to the caller,
 * released with (*out)->ops->destroy after every endpoint device is gone;
 * on failure *out is NULL and nothing is left allocated. Failures are
 * config errors (sizes that do not fit the ID space) or host errors. */
int viommu_create(const struct viommu_config *cfg, struct guest_mem *mem,
		  struct virtio_dev **out, struct err *e);

/* Declares endpoint id and returns the translation its device uses
 * (virtio_dev_set_dma(dev, *dma)); it lives as long as the IOMMU.
 * -EEXIST: id taken; -ENOSPC: VIOMMU_MAX_ENDPOINTS reached. */
int viommu_add_endpoint(struct virtio_dev *iommu, uint32_t id,
			const struct virtq_dma **dma, struct err *e);

/* Declares endpoint id as remote: ops and opaque live as long as the
 * IOMMU. Errors as for viommu_add_endpoint. */
int viommu_add_remote_endpoint(struct virtio_dev *iommu, uint32_t id,
			       const struct viommu_remote_ops *ops,
			       void *opaque, struct err *e);

/* Endpoint id's state now, for a server that (re)connects: its mode,
 * its domain's mappings (*maps malloc'd, the caller frees it; NULL when
 * *nr is 0) and the number of the last change it reflects (changes with
 * a number up to *seq need not be applied on top). Any thread but one
 * holding the IOMMU's translation lock. -ENOENT, -ENOMEM. */
int viommu_snapshot(struct virtio_dev *iommu, uint32_t id, uint32_t *mode,
		    struct iova_map **maps, uint32_t *nr, uint64_t *seq);

/* A remote endpoint's device had a DMA refused: a fault record for the
 * eventq, as for an in-process one. */
void viommu_report_fault(struct virtio_dev *iommu, uint32_t id, uint64_t iova,
			 bool write);

struct viommu_stats {
	uint64_t faults; /* DMA refused */
	uint64_t faults_dropped; /* not reported: the pending queue was full */
	uint32_t domains;
	uint64_t mappings;
	/* Removals that failed: a device's requests did not drain in
	 * time; a remote endpoint refused or did not answer. */
	uint64_t drain_timeouts, remote_errors;
	/* Answers followed by a look for more (poll_ns), and the requests
	 * that look found without a kick. */
	uint64_t polls, poll_hits;
};
void viommu_get_stats(struct virtio_dev *iommu, struct viommu_stats *st);

/* The host (global) ID behind the guest's domain, or -ENOENT. */
int viommu_domain_global(struct virtio_dev *iommu, uint32_t domain,
			 uint32_t *global);

#endif
