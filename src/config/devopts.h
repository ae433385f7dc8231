/* SPDX-License-Identifier: MIT */
/*
 * Device options, parsed once and strictly for every front end: `wisp
 * run` and the device servers (wisp-blk, wisp-rng) call these and nothing
 * else, so an option means the same everywhere. Anything not exactly
 * understood is refused with an ERR_CONFIG message that names the option,
 * the key and the bad value; nothing is guessed or silently defaulted.
 */
#ifndef WISP_CONFIG_DEVOPTS_H
#define WISP_CONFIG_DEVOPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "util/ratelimit.h"

/* The virtio-blk GET_ID string is 20 bytes (VIRTIO_BLK_ID_BYTES). */
#define DEVOPTS_DISK_ID_MAX 20
/* 1 TiB/s: far above what getrandom() delivers, so it never limits by
 * accident; the device's token bucket handles any 64-bit rate. */
#define DEVOPTS_RNG_RATE_MAX (1ULL << 40)

/* virtio-blk I/O engine; the values are blk.h's enum blk_engine_kind. */
enum devopts_engine {
	DEVOPTS_ENGINE_AUTO, /* not given: io_uring, else synchronous */
	DEVOPTS_ENGINE_SYNC,
	DEVOPTS_ENGINE_URING,
};

struct devopts_disk {
	const char *path;
	const char *id; /* NULL: not given (the device derives one) */
	bool readonly;
	bool direct; /* O_DIRECT */
	enum devopts_engine engine;
	bool no_iommu; /* iommu=off: not behind the VM's --iommu */
	struct rl_config rl; /* bw=, ops=: zero sizes when not given */
};

/* Limits of one token bucket: sizes up to 2^40, refill times up to an
 * hour (in ms), as Firecracker's TokenBucket. */
#define DEVOPTS_BUCKET_SIZE_MAX (1ULL << 40)
#define DEVOPTS_BUCKET_REFILL_MAX 3600000ULL

/* "SIZE[:REFILL_MS[:ONE_TIME_BURST]]" for option opt: a token bucket of
 * SIZE (1..DEVOPTS_BUCKET_SIZE_MAX) tokens refilled from empty in
 * REFILL_MS (1..DEVOPTS_BUCKET_REFILL_MAX, default 1000) and an optional
 * one-time burst (0..DEVOPTS_BUCKET_SIZE_MAX). Returns 0 or -EINVAL;
 * *out is set only on success. */
int devopts_parse_bucket(const char *opt, const char *s, struct tb_config *out,
			 struct err *e);

/*
 * "path=FILE[,readonly=on|off][,id=NAME][,direct=on|off]
 * [,engine=sync|uring][,iommu=on|off][,bw=BUCKET][,ops=BUCKET]", as given to
 * option opt (for messages, e.g. "--disk"). Keys may come in any order,
 * each at most once; path is required and non-empty (a path cannot
 * contain ','); values of readonly, direct and iommu are exactly "on" or
 * "off" (iommu defaults to on: behind the IOMMU when the VM has one);
 * id is 1 to DEVOPTS_DISK_ID_MAX printable ASCII characters; engine is
 * exactly "sync" or "uring" (omitted: DEVOPTS_ENGINE_AUTO); bw (data
 * bytes) and ops (requests) are rate-limit buckets, see
 * devopts_parse_bucket.
 *
 * arg is split in place and the strings in *out point into it, so it must
 * outlive *out (argv does). On failure returns -EINVAL, *out is untouched
 * and arg may be partly split.
 */
int devopts_parse_disk(const char *opt, char *arg, struct devopts_disk *out,
		       struct err *e);

/* A decimal unsigned integer from min to max: digits only (no sign,
 * spaces, suffix or base prefix), no overflow. Returns 0 or -EINVAL;
 * *out is set only on success. */
int devopts_parse_u64(const char *opt, const char *s, uint64_t min,
		      uint64_t max, uint64_t *out, struct err *e);

/* "on" or "off", nothing else. */
int devopts_parse_onoff(const char *opt, const char *s, bool *out,
			struct err *e);

/* virtio-rng rate limit in bytes per second, 1..DEVOPTS_RNG_RATE_MAX
 * (omit the option for no limit). */
int devopts_parse_rng_rate(const char *opt, const char *s, uint64_t *out,
			   struct err *e);

/* Linux interface names are at most IFNAMSIZ - 1 = 15 bytes. */
#define DEVOPTS_IFNAME_MAX 15
/* 1 TiB/s, as for the rng: never limits by accident. */
#define DEVOPTS_NET_RATE_MAX (1ULL << 40)

struct devopts_net {
	const char *tap;
	const char *id; /* NULL: not given */
	uint8_t mac[6];
	bool has_mac;
	uint64_t rx_rate, tx_rate; /* bytes per second, 0: not given */
	/* rx-bw=, rx-ops=, tx-bw=, tx-ops=: buckets of bytes and frames. */
	struct rl_config rx_rl, tx_rl;
	bool vhost; /* vhost=on|off (default off) */
};

/*
 * "tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,id=NAME][,rx-rate=BYTES]
 * [,tx-rate=BYTES][,rx-bw=BUCKET][,rx-ops=BUCKET][,tx-bw=BUCKET]
 * [,tx-ops=BUCKET][,vhost=on|off]" for option opt (e.g.
 * "--net"). Keys in any order, each at most once; tap is required: 1 to
 * DEVOPTS_IFNAME_MAX printable characters without spaces, '/' or ':',
 * not "." or ".."; mac is six two-digit hex pairs separated by ':', not
 * multicast and not all zeroes; id as for disks; the rates are bytes per
 * second, 1 to DEVOPTS_NET_RATE_MAX (rx-bw / tx-bw are refused with
 * them: one bandwidth limit per direction); the buckets as
 * devopts_parse_bucket. Same ownership and
 * failure rules as devopts_parse_disk.
 */
int devopts_parse_net(const char *opt, char *arg, struct devopts_net *out,
		      struct err *e);

/* Guest CIDs: 0-2 are reserved, -1U is VMADDR_CID_ANY. */
#define DEVOPTS_VSOCK_CID_MIN 3
#define DEVOPTS_VSOCK_CID_MAX 4294967294ULL

struct devopts_vsock {
	uint64_t cid;
	const char *uds; /* the host side's unix socket path */
};

/*
 * "cid=N,uds=PATH" for option opt ("--vsock"): both required, each once,
 * in any order; N from DEVOPTS_VSOCK_CID_MIN to DEVOPTS_VSOCK_CID_MAX;
 * PATH not empty (its length is the device's to check). Same ownership
 * and failure rules as devopts_parse_disk.
 */
int devopts_parse_vsock(const char *opt, char *arg, struct devopts_vsock *out,
			struct err *e);
/* vhost-user devices: --vhost-user-blk, --fs, --vhost-user. */
enum devopts_vhu_kind {
	DEVOPTS_VHU_BLK, /* socket=PATH[,id=NAME] */
	DEVOPTS_VHU_FS, /* socket=PATH,tag=NAME */
	DEVOPTS_VHU_ANY, /* type=ID,socket=PATH[,queues=N][,config=BYTES] */
};

#define DEVOPTS_FS_TAG_MAX 36 /* virtio-fs tag bytes */
#define DEVOPTS_VHU_QUEUES_MAX 8
#define DEVOPTS_VHU_CONFIG_MAX 256

struct devopts_vhost_user {
	const char *socket;
	const char *id; /* blk: NULL if not given */
	const char *tag; /* fs */
	uint32_t type; /* any: the virtio device ID, 1..65535 */
	int queues; /* any: 1..DEVOPTS_VHU_QUEUES_MAX, default 1 */
	uint32_t config_size; /* any: 0..DEVOPTS_VHU_CONFIG_MAX, default 0 */
};

/*
 * The keys kind takes (above), each at most once, in any order; socket
 * is required and non-empty; id as for disks; tag 1 to
 * DEVOPTS_FS_TAG_MAX printable characters without spaces; type, queues
 * and config decimal in their ranges. Same ownership and failure rules
 * as devopts_parse_disk.
 */
int devopts_parse_vhost_user(const char *opt, enum devopts_vhu_kind kind,
			     char *arg, struct devopts_vhost_user *out,
			     struct err *e);

#endif
