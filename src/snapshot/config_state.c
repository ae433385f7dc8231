// SPDX-License-Identifier: MIT
#include "snapshot/config_state.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#define STR_MAX 4096

/* A limiter's buckets, as the front ends parsed them; decoded values are
 * the device's to bound (rl_init takes any). */
static void ser_rl(struct ser_w *w, const struct rl_config *rl)
{
	const struct tb_config *b[2] = { &rl->bw, &rl->ops };

	for (int i = 0; i < 2; i++) {
		ser_u64(w, b[i]->size);
		ser_u64(w, b[i]->one_time_burst);
		ser_u64(w, b[i]->refill_ms);
	}
}

static void deser_rl(struct ser_r *r, struct rl_config *rl)
{
	struct tb_config *b[2] = { &rl->bw, &rl->ops };

	for (int i = 0; i < 2; i++) {
		b[i]->size = deser_u64(r);
		b[i]->one_time_burst = deser_u64(r);
		b[i]->refill_ms = deser_u64(r);
		/* The front ends' own bound (devopts: at most an hour). */
		if (b[i]->size &&
		    (!b[i]->refill_ms || b[i]->refill_ms > 3600000))
			r->fail = true;
	}
}

void snap_config_save(const struct vm_config *c, struct ser_w *w)
{
	ser_str(w, c->kernel);
	ser_str(w, c->initrd);
	ser_str(w, c->cmdline_extra);
	ser_u8(w, c->no_default_cmdline);
	ser_u32(w, (uint32_t)c->cpus);
	ser_u64(w, c->memory_mib);
	ser_u32(w, (uint32_t)c->serial);
	ser_str(w, c->serial_path);
	ser_u8(w, c->debug_exit);
	ser_u32(w, (uint32_t)c->console);
	ser_u32(w, (uint32_t)c->nr_disks);
	for (int i = 0; i < c->nr_disks; i++) {
		const struct disk_config *d = &c->disks[i];

		ser_str(w, d->path);
		ser_u8(w, d->readonly);
		ser_str(w, d->id);
		ser_u8(w, d->direct);
		ser_u32(w, (uint32_t)d->engine);
		ser_u8(w, d->no_iommu);
		ser_rl(w, &d->rl);
	}
	ser_u32(w, (uint32_t)c->nr_servers);
	for (int i = 0; i < c->nr_servers; i++) {
		ser_str(w, c->servers[i].socket);
		ser_str(w, c->servers[i].spawn);
		ser_u8(w, c->servers[i].no_iommu);
	}
	ser_u32(w, (uint32_t)c->nr_nets);
	for (int i = 0; i < c->nr_nets; i++) {
		const struct vm_net_config *n = &c->nets[i];

		ser_str(w, n->tap);
		ser_str(w, n->id);
		ser_bytes(w, n->mac, 6);
		ser_u8(w, n->has_mac);
		ser_u64(w, n->rx_rate);
		ser_u64(w, n->tx_rate);
		ser_rl(w, &n->rx_rl);
		ser_rl(w, &n->tx_rl);
	}
	ser_u8(w, c->rng);
	ser_u64(w, c->rng_rate);
	ser_u8(w, c->acpi);
	ser_u8(w, c->iommu);
	ser_u32(w, c->shutdown_timeout_s);
	ser_u8(w, c->async_pf);
	ser_u32(w, c->watchdog_s);
	ser_str(w, c->vsock_uds);
	ser_u64(w, c->vsock_cid);
}

int snap_config_decode(struct vm_config *c, const uint8_t *p, uint64_t len,
		       struct err *e)
{
	struct ser_r r = { p, (size_t)len, 0, false };
	uint32_t v;

	memset(c, 0, sizeof(*c));
	c->kernel = deser_str(&r, STR_MAX);
	c->initrd = deser_str(&r, STR_MAX);
	c->cmdline_extra = deser_str(&r, STR_MAX);
	c->no_default_cmdline = deser_bool(&r);
	v = deser_u32(&r);
	if (v < 1 || v > 64)
		r.fail = true;
	c->cpus = (int)v;
	c->memory_mib = deser_u64(&r);
	if (c->memory_mib == 0 || c->memory_mib > (1ull << 22))
		r.fail = true;
	v = deser_u32(&r);
	if (v > SERIAL_FILE)
		r.fail = true;
	c->serial = (enum serial_mode)v;
	c->serial_path = deser_str(&r, STR_MAX);
	if (c->serial == SERIAL_FILE && !c->serial_path)
		r.fail = true;
	c->debug_exit = deser_bool(&r);
	v = deser_u32(&r);
	if (v > CONSOLE_VIRTIO)
		r.fail = true;
	c->console = (enum console_mode)v;
	v = deser_u32(&r);
	if (v > VM_MAX_DISKS)
		r.fail = true;
	c->nr_disks = r.fail ? 0 : (int)v;
	for (int i = 0; i < c->nr_disks; i++) {
		struct disk_config *d = &c->disks[i];

		d->path = deser_str(&r, STR_MAX);
		d->readonly = deser_bool(&r);
		d->id = deser_str(&r, STR_MAX);
		d->direct = deser_bool(&r);
		v = deser_u32(&r);
		if (v > 8 || !d->path)
			r.fail = true;
		d->engine = (int)v;
		d->no_iommu = deser_bool(&r);
		deser_rl(&r, &d->rl);
	}
	v = deser_u32(&r);
	if (v > VM_MAX_SERVERS)
		r.fail = true;
	c->nr_servers = r.fail ? 0 : (int)v;
	for (int i = 0; i < c->nr_servers; i++) {
		c->servers[i].socket = deser_str(&r, STR_MAX);
		c->servers[i].spawn = deser_str(&r, STR_MAX);
		c->servers[i].no_iommu = deser_bool(&r);
		if (!c->servers[i].socket == !c->servers[i].spawn)
			r.fail = true;
	}
	v = deser_u32(&r);
	if (v > VM_MAX_NETS)
		r.fail = true;
	c->nr_nets = r.fail ? 0 : (int)v;
	for (int i = 0; i < c->nr_nets; i++) {
		struct vm_net_config *n = &c->nets[i];
		const uint8_t *mac;

		n->tap = deser_str(&r, STR_MAX);
		n->id = deser_str(&r, STR_MAX);
		mac = ser_r_take(&r, 6);
		if (mac)
			memcpy(n->mac, mac, 6);
		n->has_mac = deser_bool(&r);
		n->rx_rate = deser_u64(&r);
		n->tx_rate = deser_u64(&r);
		deser_rl(&r, &n->rx_rl);
		deser_rl(&r, &n->tx_rl);
		if (!n->tap)
			r.fail = true;
	}
	c->rng = deser_bool(&r);
	c->rng_rate = deser_u64(&r);
	c->acpi = deser_bool(&r);
	c->iommu = deser_bool(&r);
	c->shutdown_timeout_s = deser_u32(&r);
	if (c->shutdown_timeout_s > VM_MAX_SHUTDOWN_TIMEOUT_S)
		r.fail = true;
	c->async_pf = deser_bool(&r);
	c->watchdog_s = deser_u32(&r);
	/* The CID's range and the path are the vsock device's to check
	 * (vsock_create), as for the command line. */
	c->vsock_uds = deser_str(&r, STR_MAX);
	c->vsock_cid = deser_u64(&r);
	if (!deser_done(&r))
		return err_config(e, -EINVAL,
				  "snapshot: configuration section malformed");
	return 0;
}

/* The options each server takes a value with; nothing else may follow
 * the program (no --seccomp, --jail, --persist, --vhost-user: those are
 * wisp's to choose or would make it another server). */
static const struct {
	const char *prog, *opt;
} spawn_ok[] = {
	{ "wisp-blk", "--disk" },
	{ "wisp-rng", "--rate" },
	{ "wisp-console", NULL },
	{ "wisp-net", "--net" },
};

int snap_spawn_check(const char *cmd, struct err *e)
{
	const char *w = cmd, *prog, *base = NULL;
	size_t n;
	int k = -1, words = 0;

	if (!cmd || strlen(cmd) >= STR_MAX)
		return err_config(e, -EINVAL, "snapshot: no server command");
	for (;;) {
		while (*w == ' ')
			w++;
		if (!*w)
			break;
		n = strcspn(w, " ");
		if (words == 0) {
			prog = w;
			base = prog;
			for (const char *q = prog; q < prog + n; q++)
				if (*q == '/')
					base = q + 1;
			for (size_t i = 0;
			     i < sizeof(spawn_ok) / sizeof(spawn_ok[0]); i++)
				if (strlen(spawn_ok[i].prog) ==
					    (size_t)(prog + n - base) &&
				    !strncmp(base, spawn_ok[i].prog,
					     (size_t)(prog + n - base)))
					k = (int)i;
			if (k < 0)
				return err_config(
					e, -EINVAL,
					"snapshot: --spawn-server '%s': only "
					"wisp's own servers (wisp-blk, "
					"wisp-rng, wisp-console, wisp-net) are "
					"kept in a state file, which must not "
					"carry another command to run; attach "
					"that server with --server instead",
					cmd);
		} else if (words % 2 == 1) {
			if (!spawn_ok[k].opt || strlen(spawn_ok[k].opt) != n ||
			    strncmp(w, spawn_ok[k].opt, n))
				return err_config(
					e, -EINVAL,
					"snapshot: --spawn-server '%s': %s "
					"takes only %s%s in a state file "
					"(wisp adds the socket and the jail)",
					cmd, spawn_ok[k].prog,
					spawn_ok[k].opt ? spawn_ok[k].opt :
							  "no option",
					spawn_ok[k].opt ? " VALUE" : "");
		} else if (*w == '-') {
			return err_config(e, -EINVAL,
					  "snapshot: --spawn-server '%s': a "
					  "value starting with '-'",
					  cmd);
		}
		words++;
		w += n;
	}
	if (words == 0 || words % 2 == 0)
		return err_config(
			e, -EINVAL, "snapshot: --spawn-server '%s': %s", cmd,
			words ? "an option without its value" : "empty");
	return 0;
}
