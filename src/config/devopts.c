// SPDX-License-Identifier: MIT
#include "config/devopts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int devopts_parse_u64(const char *opt, const char *s, uint64_t min,
		      uint64_t max, uint64_t *out, struct err *e)
{
	uint64_t v = 0;
	const char *p = s;

	/* By hand rather than strtoull, which accepts leading spaces, '+'
	 * and a '-' that wraps around. */
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned int d = (unsigned int)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			break;
		v = v * 10 + d;
	}
	if (p == s || *p || v < min || v > max)
		return err_config(
			e, -EINVAL,
			"%s '%s': expected a number from %llu to %llu", opt, s,
			(unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

int devopts_parse_rng_rate(const char *opt, const char *s, uint64_t *out,
			   struct err *e)
{
	return devopts_parse_u64(opt, s, 1, DEVOPTS_RNG_RATE_MAX, out, e);
}

static int parse_onoff(const char *opt, const char *key, const char *v,
		       bool *out, struct err *e)
{
	if (!strcmp(v, "on")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "off")) {
		*out = false;
		return 0;
	}
	return err_config(e, -EINVAL, "%s: %s='%s': expected on or off", opt,
			  key, v);
}

int devopts_parse_onoff(const char *opt, const char *s, bool *out,
			struct err *e)
{
	if (!strcmp(s, "on") || !strcmp(s, "off")) {
		*out = !strcmp(s, "on");
		return 0;
	}
	return err_config(e, -EINVAL, "%s '%s': expected on or off", opt, s);
}

static int check_id(const char *opt, const char *id, struct err *e)
{
	size_t n = strlen(id);

	if (n == 0 || n > DEVOPTS_DISK_ID_MAX)
		return err_config(e, -EINVAL,
				  "%s: id='%s': expected 1 to %d characters",
				  opt, id, DEVOPTS_DISK_ID_MAX);
	for (size_t i = 0; i < n; i++) {
		if (id[i] < 0x20 || id[i] > 0x7e)
			return err_config(e, -EINVAL,
					  "%s: id: expected printable ASCII",
					  opt);
	}
	return 0;
}

int devopts_parse_bucket(const char *opt, const char *s, struct tb_config *out,
			 struct err *e)
{
	struct tb_config t = { 0, 0, 1000 };
	char buf[96], *parts[3] = { buf, NULL, NULL };
	char what[64];
	int n = 1, ret;

	if (strlen(s) >= sizeof(buf))
		return err_config(e, -EINVAL,
				  "%s '%s': expected SIZE[:REFILL_MS[:BURST]]",
				  opt, s);
	memcpy(buf, s, strlen(s) + 1);
	for (char *p = buf; *p; p++) {
		if (*p != ':')
			continue;
		if (n == 3)
			return err_config(e, -EINVAL,
					  "%s '%s': expected "
					  "SIZE[:REFILL_MS[:BURST]]",
					  opt, s);
		*p = 0;
		parts[n++] = p + 1;
	}
	snprintf(what, sizeof(what), "%s size", opt);
	ret = devopts_parse_u64(what, parts[0], 1, DEVOPTS_BUCKET_SIZE_MAX,
				&t.size, e);
	if (!ret && parts[1]) {
		snprintf(what, sizeof(what), "%s refill time (ms)", opt);
		ret = devopts_parse_u64(what, parts[1], 1,
					DEVOPTS_BUCKET_REFILL_MAX, &t.refill_ms,
					e);
	}
	if (!ret && parts[2]) {
		snprintf(what, sizeof(what), "%s one-time burst", opt);
		ret = devopts_parse_u64(what, parts[2], 0,
					DEVOPTS_BUCKET_SIZE_MAX,
					&t.one_time_burst, e);
	}
	if (ret)
		return ret;
	*out = t;
	return 0;
}

enum {
	K_PATH,
	K_READONLY,
	K_ID,
	K_DIRECT,
	K_ENGINE,
	K_IOMMU,
	K_BW,
	K_OPS,
	NR_KEYS
};

static const char *const keys[NR_KEYS] = { "path",   "readonly", "id", "direct",
					   "engine", "iommu",	 "bw", "ops" };

static int parse_engine(const char *opt, const char *v,
			enum devopts_engine *out, struct err *e)
{
	if (!strcmp(v, "sync")) {
		*out = DEVOPTS_ENGINE_SYNC;
		return 0;
	}
	if (!strcmp(v, "uring")) {
		*out = DEVOPTS_ENGINE_URING;
		return 0;
	}
	return err_config(e, -EINVAL, "%s: engine='%s': expected sync or uring",
			  opt, v);
}

/* Takes the next item of a comma-separated key=value list at *cursor
 * (split in place), looks its key up in keys[] and refuses an empty item,
 * a missing '=', an unknown key and a key given twice. Returns the key's
 * index with *value set and *cursor moved on (NULL after the last item),
 * or -EINVAL with e set. */
static int next_kv(const char *opt, char **cursor, const char *const *keys,
		   int nkeys, const char *expected, unsigned int *seen,
		   char **value, struct err *e)
{
	char *item = *cursor, *comma = strchr(item, ','), *eq;
	int k;

	if (comma)
		*comma = 0;
	*cursor = comma ? comma + 1 : NULL;
	if (!*item)
		return err_config(e, -EINVAL, "%s: empty item (a stray ',')",
				  opt);
	eq = strchr(item, '=');
	if (!eq)
		return err_config(e, -EINVAL, "%s: '%s': expected key=value",
				  opt, item);
	*eq++ = 0;
	for (k = 0; k < nkeys && strcmp(item, keys[k]); k++)
		;
	if (k == nkeys)
		return err_config(e, -EINVAL,
				  "%s: unknown key '%s' (expected %s)", opt,
				  item, expected);
	if (*seen & (1u << k))
		return err_config(e, -EINVAL, "%s: '%s' given twice", opt,
				  item);
	*seen |= 1u << k;
	*value = eq;
	return k;
}

int devopts_parse_disk(const char *opt, char *arg, struct devopts_disk *out,
		       struct err *e)
{
	struct devopts_disk d = { 0 };
	unsigned int seen = 0;
	char *cur = arg;
	int ret;

	while (cur) {
		char *eq = NULL;
		int k = next_kv(opt, &cur, keys, NR_KEYS,
				"path, readonly, id, direct, engine, iommu, bw "
				"or ops",
				&seen, &eq, e);
		const char *item = k >= 0 ? keys[k] : NULL;

		if (k < 0)
			return k;
		switch (k) {
		case K_PATH:
			if (!*eq)
				return err_config(e, -EINVAL,
						  "%s: path= is empty", opt);
			d.path = eq;
			ret = 0;
			break;
		case K_READONLY:
			ret = parse_onoff(opt, item, eq, &d.readonly, e);
			break;
		case K_ID:
			ret = check_id(opt, eq, e);
			d.id = eq;
			break;
		case K_DIRECT:
			ret = parse_onoff(opt, item, eq, &d.direct, e);
			break;
		case K_IOMMU: {
			bool on = true;

			ret = parse_onoff(opt, item, eq, &on, e);
			d.no_iommu = !on;
			break;
		}
		case K_BW:
		case K_OPS: {
			char what[32];

			snprintf(what, sizeof(what), "%s: %s", opt, item);
			ret = devopts_parse_bucket(
				what, eq, k == K_BW ? &d.rl.bw : &d.rl.ops, e);
			break;
		}
		default:
			ret = parse_engine(opt, eq, &d.engine, e);
			break;
		}
		if (ret)
			return ret;
	}
	if (!d.path)
		return err_config(e, -EINVAL, "%s: path=FILE is required", opt);
	*out = d;
	return 0;
}

/* --net: kept apart from the disk parser above, with its own key table. */
enum {
	N_TAP,
	N_MAC,
	N_ID,
	N_RX_RATE,
	N_TX_RATE,
	N_RX_BW,
	N_RX_OPS,
	N_TX_BW,
	N_TX_OPS,
	N_VHOST,
	NR_NET_KEYS
};

static const char *const net_keys[NR_NET_KEYS] = {
	"tap",	 "mac",	   "id",    "rx-rate", "tx-rate",
	"rx-bw", "rx-ops", "tx-bw", "tx-ops",  "vhost",
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_mac(const char *opt, const char *s, uint8_t mac[6],
		     struct err *e)
{
	for (int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		int hi = hexval(p[0]), lo = hi < 0 ? -1 : hexval(p[1]);

		if (hi < 0 || lo < 0 || p[2] != (i == 5 ? 0 : ':'))
			return err_config(e, -EINVAL,
					  "%s: mac='%s': expected six hex "
					  "pairs like 02:00:00:00:00:01",
					  opt, s);
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	if (mac[0] & 1)
		return err_config(e, -EINVAL,
				  "%s: mac='%s': a multicast address", opt, s);
	if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return err_config(e, -EINVAL, "%s: mac='%s': all zeroes", opt,
				  s);
	return 0;
}

static int check_ifname(const char *opt, const char *s, struct err *e)
{
	size_t n = strlen(s);

	if (n == 0 || n > DEVOPTS_IFNAME_MAX || !strcmp(s, ".") ||
	    !strcmp(s, ".."))
		return err_config(e, -EINVAL,
				  "%s: tap='%s': expected an interface name of "
				  "1 to %d characters",
				  opt, s, DEVOPTS_IFNAME_MAX);
	for (size_t i = 0; i < n; i++) {
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '/' || s[i] == ':')
			return err_config(e, -EINVAL,
					  "%s: tap='%s': no spaces, '/' or ':' "
					  "in an interface name",
					  opt, s);
	}
	return 0;
}

int devopts_parse_net(const char *opt, char *arg, struct devopts_net *out,
		      struct err *e)
{
	struct devopts_net d = { 0 };
	unsigned int seen = 0;
	char *cur = arg;
	int ret;

	while (cur) {
		char *eq = NULL;
		int k = next_kv(
			opt, &cur, net_keys, NR_NET_KEYS,
			"tap, mac, id, rx-rate, tx-rate, rx-bw, rx-ops, "
			"tx-bw, tx-ops or vhost",
			&seen, &eq, e);
		const char *item = k >= 0 ? net_keys[k] : NULL;

		if (k < 0)
			return k;
		switch (k) {
		case N_TAP:
			ret = check_ifname(opt, eq, e);
			d.tap = eq;
			break;
		case N_MAC:
			ret = parse_mac(opt, eq, d.mac, e);
			d.has_mac = true;
			break;
		case N_ID:
			ret = check_id(opt, eq, e);
			d.id = eq;
			break;
		case N_VHOST: {
			char what[32];

			snprintf(what, sizeof(what), "%s: vhost", opt);
			ret = devopts_parse_onoff(what, eq, &d.vhost, e);
			break;
		}
		case N_RX_RATE:
		case N_TX_RATE: {
			char what[32];

			snprintf(what, sizeof(what), "%s: %s", opt, item);
			ret = devopts_parse_u64(
				what, eq, 1, DEVOPTS_NET_RATE_MAX,
				k == N_RX_RATE ? &d.rx_rate : &d.tx_rate, e);
			break;
		}
		default: {
			struct tb_config *t = k == N_RX_BW  ? &d.rx_rl.bw :
					      k == N_RX_OPS ? &d.rx_rl.ops :
					      k == N_TX_BW  ? &d.tx_rl.bw :
							      &d.tx_rl.ops;
			char what[32];

			snprintf(what, sizeof(what), "%s: %s", opt, item);
			ret = devopts_parse_bucket(what, eq, t, e);
			break;
		}
		}
		if (ret)
			return ret;
	}
	if (!d.tap)
		return err_config(e, -EINVAL, "%s: tap=NAME is required", opt);
	if ((d.rx_rate && d.rx_rl.bw.size) || (d.tx_rate && d.tx_rl.bw.size))
		return err_config(e, -EINVAL,
				  "%s: rx-rate/tx-rate and rx-bw/tx-bw are two "
				  "ways of one limit: give one",
				  opt);
	/* vhost-net moves the frames in the kernel, past wisp's buckets. */
	if (d.vhost &&
	    (d.rx_rate || d.tx_rate || d.rx_rl.bw.size || d.rx_rl.ops.size ||
	     d.tx_rl.bw.size || d.tx_rl.ops.size))
		return err_config(e, -EINVAL,
				  "%s: vhost=on and rate limits: the kernel "
				  "moves the frames, wisp cannot limit them",
				  opt);
	*out = d;
	return 0;
}

enum { V_CID, V_UDS, NR_VSOCK_KEYS };

static const char *const vsock_keys[NR_VSOCK_KEYS] = { "cid", "uds" };

int devopts_parse_vsock(const char *opt, char *arg, struct devopts_vsock *out,
			struct err *e)
{
	struct devopts_vsock d = { 0 };
	unsigned int seen = 0;
	char *cur = arg;
	int ret;

	while (cur) {
		char *eq = NULL;
		int k = next_kv(opt, &cur, vsock_keys, NR_VSOCK_KEYS,
				"cid or uds", &seen, &eq, e);

		if (k < 0)
			return k;
		if (k == V_CID) {
			char what[32];

			snprintf(what, sizeof(what), "%s: cid", opt);
			ret = devopts_parse_u64(what, eq, DEVOPTS_VSOCK_CID_MIN,
						DEVOPTS_VSOCK_CID_MAX, &d.cid,
						e);
			if (ret)
				return ret;
		} else {
			if (!*eq)
				return err_config(e, -EINVAL,
						  "%s: uds: empty path", opt);
			d.uds = eq;
		}
	}
	if (!d.cid || !d.uds)
		return err_config(e, -EINVAL,
				  "%s: cid=N and uds=PATH are required", opt);
	*out = d;
	return 0;
}

enum { V_SOCKET, V_ID, V_TAG, V_TYPE, V_QUEUES, V_CONFIG, NR_VHU_KEYS };

static const char *const vhu_keys[NR_VHU_KEYS] = {
	"socket", "id", "tag", "type", "queues", "config"
};

/* Which keys each option takes, and the list its message names. */
static const struct {
	unsigned int keys;
	const char *expected;
} vhu_kinds[] = {
	[DEVOPTS_VHU_BLK] = { 1u << V_SOCKET | 1u << V_ID, "socket or id" },
	[DEVOPTS_VHU_FS] = { 1u << V_SOCKET | 1u << V_TAG, "socket or tag" },
	[DEVOPTS_VHU_ANY] = { 1u << V_SOCKET | 1u << V_TYPE | 1u << V_QUEUES |
				      1u << V_CONFIG,
			      "type, socket, queues or config" },
};

static int check_tag(const char *opt, const char *tag, struct err *e)
{
	size_t n = strlen(tag);

	if (n < 1 || n > DEVOPTS_FS_TAG_MAX)
		return err_config(e, -EINVAL,
				  "%s: tag '%s' must be 1 to %d characters",
				  opt, tag, DEVOPTS_FS_TAG_MAX);
	for (size_t i = 0; i < n; i++)
		if (tag[i] <= ' ' || tag[i] > '~')
			return err_config(e, -EINVAL,
					  "%s: tag '%s': only printable ASCII "
					  "without spaces",
					  opt, tag);
	return 0;
}

int devopts_parse_vhost_user(const char *opt, enum devopts_vhu_kind kind,
			     char *arg, struct devopts_vhost_user *out,
			     struct err *e)
{
	struct devopts_vhost_user d = { .queues = 1 };
	unsigned int seen = 0;
	char *cur = arg;
	uint64_t v;
	int ret = 0;

	while (cur) {
		char *eq = NULL;
		int k = next_kv(opt, &cur, vhu_keys, NR_VHU_KEYS,
				vhu_kinds[kind].expected, &seen, &eq, e);
		char what[48];

		if (k < 0)
			return k;
		if (!(vhu_kinds[kind].keys & (1u << k)))
			return err_config(e, -EINVAL,
					  "%s: unknown key '%s' (expected %s)",
					  opt, vhu_keys[k],
					  vhu_kinds[kind].expected);
		snprintf(what, sizeof(what), "%s: %s", opt, vhu_keys[k]);
		switch (k) {
		case V_SOCKET:
			ret = *eq ? 0 :
				    err_config(e, -EINVAL,
					       "%s: socket must not be empty",
					       opt);
			d.socket = eq;
			break;
		case V_ID:
			ret = check_id(opt, eq, e);
			d.id = eq;
			break;
		case V_TAG:
			ret = check_tag(opt, eq, e);
			d.tag = eq;
			break;
		case V_TYPE:
			ret = devopts_parse_u64(what, eq, 1, 0xffff, &v, e);
			d.type = (uint32_t)v;
			break;
		case V_QUEUES:
			ret = devopts_parse_u64(what, eq, 1,
						DEVOPTS_VHU_QUEUES_MAX, &v, e);
			d.queues = (int)v;
			break;
		case V_CONFIG:
			ret = devopts_parse_u64(what, eq, 0,
						DEVOPTS_VHU_CONFIG_MAX, &v, e);
			d.config_size = (uint32_t)v;
			break;
		}
		if (ret)
			return ret;
	}
	if (!d.socket)
		return err_config(e, -EINVAL, "%s: socket=PATH is required",
				  opt);
	if (kind == DEVOPTS_VHU_FS && !d.tag)
		return err_config(e, -EINVAL, "%s: tag=NAME is required", opt);
	if (kind == DEVOPTS_VHU_ANY && !d.type)
		return err_config(e, -EINVAL,
				  "%s: type=ID (the virtio device ID) is "
				  "required",
				  opt);
	*out = d;
	return 0;
}
