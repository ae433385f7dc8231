/* SPDX-License-Identifier: MIT */
/*
 * What the API and the config file have been told about the VM before it
 * starts, in Firecracker's terms, and the mapping between that and JSON:
 * one function per resource reads a JSON body (the body of PUT /drives/x
 * and an element of the config file's "drives" array alike), checks every
 * field (unknown names, wrong types, values out of range: each refused
 * with a message naming the field) and changes the model only when the
 * whole body is good.
 *
 * No VMM here: model_to_vm_config turns the model into the struct
 * vm_config the VMM builds from, so this file is what the fuzzer drives.
 *
 * Owns: every string in it (malloc'd copies); model_free releases them.
 * A vm_config filled by model_to_vm_config points into the model and is
 * valid until the model changes or is freed.
 */
#ifndef WISP_API_MODEL_H
#define WISP_API_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "util/log.h"
#include "vmm/config.h"

#define MODEL_MAX_DRIVES VM_MAX_DISKS
#define MODEL_MAX_IFACES 8
#define MODEL_MAX_SERVERS VM_MAX_SERVERS
#define MODEL_MAX_FS 4
/* Firecracker's limit on vcpu_count. */
#define MODEL_MAX_VCPUS 32

struct model_drive {
	char *id;
	char *path;
	char *partuuid; /* NULL: none */
	bool root, read_only;
	bool writeback; /* cache_type "Writeback" (else "Unsafe") */
	char serial[21]; /* the virtio-blk ID: drive_id, cut to 20 bytes */
	struct rl_config rl; /* rate_limiter; zero sizes: none */
	char *socket; /* vhost-user-blk back-end (no path_on_host); NULL */
};

/* PUT /fs/{id}: virtio-fs from a vhost-user back-end (virtiofsd). */
struct model_fs {
	char *id;
	char *socket;
	char *tag;
};

/* Stored and reported by GET /vm/config; no device yet. */
struct model_iface {
	char *id;
	char *host_dev_name;
	char *guest_mac; /* NULL: none */
	int64_t mtu; /* 0: none */
	struct rl_config rx_rl, tx_rl; /* rx/tx_rate_limiter */
};

struct model_server {
	char *id;
	char *socket; /* attach to a running server, or */
	char *spawn; /* start "spawn --socket PATH" */
	bool no_iommu; /* "iommu": false, as --server-iommu off */
};

struct model {
	char *kernel, *boot_args, *initrd;
	int vcpu_count;
	uint64_t mem_size_mib;
	bool track_dirty_pages; /* machine-config: Diff snapshots allowed */
	int nr_drives;
	struct model_drive drives[MODEL_MAX_DRIVES];
	bool entropy;
	/* From entropy's rate_limiter bandwidth bucket (0: unlimited). */
	uint64_t entropy_size, entropy_refill_ms;
	int nr_ifaces;
	struct model_iface ifaces[MODEL_MAX_IFACES];
	bool iommu; /* PUT /iommu: a virtio-iommu with every device behind */
	/* PUT /iommu "requests": "vcpu" (--iommu-requests vcpu) and
	 * "poll_us" (--iommu-poll; -1: absent). */
	bool iommu_vcpu;
	int64_t iommu_poll_us;
	bool vsock;
	int64_t vsock_cid;
	char *vsock_uds;
	int nr_servers;
	struct model_server servers[MODEL_MAX_SERVERS];
	int nr_fs;
	struct model_fs fs[MODEL_MAX_FS];
	/* Logger and metrics: applied by the caller (api.c), kept here so
	 * GET /vm/config shows them. */
	bool logger; /* PUT /logger seen */
	char *log_path; /* NULL: stderr */
	char *log_level; /* NULL: not set */
	bool log_show_level, log_show_origin;
	/* "": every subsystem; else a folder under src/. */
	char log_module[LOG_MODULE_MAX];
	char *metrics_path;
	/* Built by model_to_vm_config: boot_args plus the root= option. */
	char *cmdline;
};

void model_init(struct model *m);
void model_free(struct model *m);

/* Each returns 0, or -EINVAL with e (class config) naming the field. */
int model_put_boot_source(struct model *m, json_t *body, struct err *e);
int model_put_machine(struct model *m, json_t *body, bool partial,
		      struct err *e);
/* id: from the URL (NULL in the config file: taken from the body). */
int model_put_drive(struct model *m, const char *id, json_t *body,
		    struct err *e);
/* PATCH /drives/{id} (post-boot): a new rate_limiter (*index is the
 * drive's, *changed says whether the body had one; stored only with
 * apply, so a caller can check first); path_on_host is refused (not
 * yet). */
int model_patch_drive(struct model *m, const char *id, json_t *body, bool apply,
		      int *index, bool *changed, struct err *e);
int model_put_entropy(struct model *m, json_t *body, struct err *e);
int model_put_iface(struct model *m, const char *id, json_t *body,
		    struct err *e);
/* PATCH /network-interfaces/{id}: new rx/tx rate limiters (*index is
 * the interface's, *rx / *tx say which the body had; stored only with
 * apply). */
int model_patch_iface(struct model *m, const char *id, json_t *body, bool apply,
		      int *index, bool *rx, bool *tx, struct err *e);
int model_put_vsock(struct model *m, json_t *body, struct err *e);
/* wisp's own PUT /iommu {"enabled": bool, "requests": "thread"|"vcpu",
 * "poll_us": N} (--iommu, --iommu-requests, --iommu-poll). */
int model_put_iommu(struct model *m, json_t *body, struct err *e);
int model_put_server(struct model *m, const char *id, json_t *body,
		     struct err *e);
/* wisp's own PUT /fs/{id} {"fs_id", "socket", "tag"} (--fs). */
int model_put_fs(struct model *m, const char *id, json_t *body, struct err *e);
/* Parses a Logger body: *level is one of LOG_ERROR..LOG_DEBUG or LOG_OFF;
 * stores path, level, show_level, show_log_origin and module in the
 * model (the caller builds the log sink from them). */
int model_put_logger(struct model *m, json_t *body, int *level, struct err *e);
int model_put_metrics(struct model *m, json_t *body, struct err *e);
/* PATCH /vm: *pause true for "Paused", false for "Resumed". */
int model_parse_vm_state(json_t *body, bool *pause, struct err *e);
/* PUT /actions: the action_type string (owned by body). */
int model_parse_action(json_t *body, const char **action, struct err *e);

/* Fills c (defaults first) for vm_create; -EINVAL when the model cannot
 * boot (no kernel). c points into m. */
int model_to_vm_config(struct model *m, struct vm_config *c, struct err *e);

/* New references, for GET /machine-config and GET /vm/config. */
json_t *model_machine_json(const struct model *m);
json_t *model_json(const struct model *m);

#endif
