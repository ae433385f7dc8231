/* SPDX-License-Identifier: MIT */
/*
 * The Firecracker-compatible control plane without its transport: a
 * request (method, path, body) in, a status and a JSON body out. The
 * HTTP server (server.c) and the config file (config_file.c) feed it;
 * what it cannot do itself (build and start the VM, pause it, read VMM
 * counters) it asks of the front end through struct api_ops, so the
 * fuzzer can drive it with no VM behind it.
 *
 * Pre-boot resources (boot source, machine config, drives, entropy,
 * vsock, network interfaces, logger, metrics, IOREQ servers) are refused
 * after InstanceStart, as in Firecracker; PATCH /vm only after it.
 *
 * Threads: every entry point takes the api's lock, so requests from the
 * HTTP thread and calls from the front end's thread are serialized. The
 * ops are called with that lock held and must not call back into api_*.
 */
#ifndef WISP_API_API_H
#define WISP_API_API_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/model.h"
#include "util/err.h"
#include "vmm/config.h"

enum api_state { API_NOT_STARTED, API_RUNNING, API_PAUSED, API_STOPPED };

/* PUT /snapshot/create and /snapshot/load (snapshot.c); the strings
 * point into the request's JSON and live for the op's call. */
struct api_snapshot_create {
	bool diff; /* snapshot_type Diff (else Full) */
	const char *snapshot_path, *mem_path;
};

struct api_snapshot_load {
	const char *snapshot_path;
	const char *mem_path; /* mem_backend.backend_path or mem_file_path */
	bool uffd; /* backend_type Uffd (else File) */
	bool enable_diff, resume;
};

struct api_ops {
	/* InstanceStart: build the VM from cfg (valid while the api lives)
	 * and start running it; 0, or -errno with e set. */
	int (*start)(void *opaque, const struct vm_config *cfg, struct err *e);
	/* PATCH /vm: 0, or -errno with e set (the VM keeps its state). */
	int (*pause)(void *opaque, bool pause, struct err *e);
	/* SendCtrlAltDel: 0, or -errno with e set. */
	int (*ctrl_alt_del)(void *opaque, struct err *e);
	/* FlushMetrics: add the VMM's own counters to the metrics object
	 * (may be NULL). */
	void (*metrics)(void *opaque, void *json_object);
	/* PUT /snapshot/create on a paused VM; PUT /snapshot/load instead
	 * of InstanceStart (the VM then exists, paused unless r->resume).
	 * 0, or -errno with e set. */
	int (*snapshot_create)(void *opaque,
			       const struct api_snapshot_create *r,
			       struct err *e);
	int (*snapshot_load)(void *opaque, const struct api_snapshot_load *r,
			     struct err *e);
	/* PATCH of a rate limiter on a running VM: disk number index of
	 * the started vm_config gets rl (tx unused), or network device
	 * index gets rl as rx and tx (NULL: that direction unchanged). 0,
	 * or -errno with e set (nothing changed). NULL: refused. */
	int (*set_limits)(void *opaque, bool disk, int index,
			  const struct rl_config *rl,
			  const struct rl_config *tx, struct err *e);
};

/* Endpoints as counted in the metrics. */
enum api_ep {
	EP_ROOT,
	EP_ACTIONS,
	EP_BOOT_SOURCE,
	EP_MACHINE,
	EP_DRIVES,
	EP_ENTROPY,
	EP_LOGGER,
	EP_METRICS,
	EP_NET,
	EP_VSOCK,
	EP_VM,
	EP_VM_CONFIG,
	EP_SNAPSHOT,
	EP_VERSION,
	EP_IOREQ,
	EP_IOMMU,
	EP_FS,
	EP_UNSUPPORTED,
	EP_NR
};

enum api_method { M_GET, M_PUT, M_PATCH, M_NR };

struct api {
	pthread_mutex_t lock;
	struct model m;
	enum api_state state;
	struct vm_config cfg; /* what InstanceStart built the VM from */
	const struct api_ops *ops;
	void *opaque;
	int metrics_fd; /* -1: PUT /metrics not done */
	uint64_t start_ns;
	uint64_t requests[EP_NR][M_NR], fails[EP_NR][M_NR];
	uint64_t bad_requests; /* unknown path or method, unparsable */
};

void api_init(struct api *a, const struct api_ops *ops, void *opaque);
void api_destroy(struct api *a);

/* Handles one request; body may be NULL when len is 0. Returns the HTTP
 * status and sets *resp to a malloc'd JSON text, or NULL for no body. */
int api_handle(struct api *a, const char *method, const char *path,
	       const char *body, size_t len, char **resp);

/* Applies a Firecracker config file's text (every section through the
 * same mapping as the API). 0, or -errno with e naming the section. */
int api_load_config(struct api *a, const char *text, size_t len, struct err *e);

/* InstanceStart, from the front end (after --config-file). */
int api_start(struct api *a, struct err *e);

/* The VM has ended: nothing may use the VM any more. */
void api_set_stopped(struct api *a);

/* The snapshot bodies (strict: unknown fields, wrong types, missing
 * paths refused with e set). */
int api_parse_snapshot_create(json_t *body, struct api_snapshot_create *r,
			      struct err *e);
int api_parse_snapshot_load(json_t *body, struct api_snapshot_load *r,
			    struct err *e);

/* Writes one metrics line (FlushMetrics, and the 60 s timer). -errno
 * when no metrics file is set or the write failed. */
int api_flush_metrics(struct api *a, struct err *e);

#endif
