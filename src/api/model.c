// SPDX-License-Identifier: MIT
#include "api/model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"

enum ftype { F_STR, F_INT, F_BOOL, F_OBJ };

struct field {
	const char *name;
	enum ftype type;
	bool required;
};

static const char *const type_names[] = {
	[F_STR] = "a string",
	[F_INT] = "an integer",
	[F_BOOL] = "a boolean",
	[F_OBJ] = "an object",
};

static bool type_ok(json_t *v, enum ftype t)
{
	switch (t) {
	case F_STR:
		return json_is_string(v);
	case F_INT:
		return json_is_integer(v);
	case F_BOOL:
		return json_is_boolean(v);
	case F_OBJ:
		return json_is_object(v);
	}
	return false;
}

/* The one gate every body goes through: an object, no field outside the
 * list, every listed field of its type (null counts as absent, as in
 * Firecracker), every required one present. */
static int check_object(json_t *o, const char *what, const struct field *f,
			struct err *e)
{
	const char *key;
	json_t *v;

	if (!json_is_object(o))
		return err_config(e, -EINVAL, "%s: expected a JSON object",
				  what);
	json_object_foreach(o, key, v)
	{
		const struct field *k;

		for (k = f; k->name; k++)
			if (!strcmp(k->name, key))
				break;
		if (!k->name)
			return err_config(e, -EINVAL, "%s: unknown field '%s'",
					  what, key);
		if (json_is_null(v) && !k->required)
			continue;
		if (!type_ok(v, k->type))
			return err_config(e, -EINVAL,
					  "%s: field '%s': expected %s", what,
					  key, type_names[k->type]);
	}
	for (; f->name; f++) {
		v = json_object_get(o, f->name);
		if (f->required && (!v || json_is_null(v)))
			return err_config(e, -EINVAL, "%s: missing field '%s'",
					  what, f->name);
	}
	return 0;
}

/* The field, or NULL when absent or null. */
static json_t *get(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	return v && !json_is_null(v) ? v : NULL;
}

static const char *get_str(json_t *o, const char *name)
{
	json_t *v = get(o, name);

	return v ? json_string_value(v) : NULL;
}

static bool get_bool(json_t *o, const char *name, bool dflt)
{
	json_t *v = get(o, name);

	return v ? json_is_true(v) : dflt;
}

/* An integer field, when present, in [lo, hi]. */
static int check_int(json_t *o, const char *what, const char *name,
		     long long lo, long long hi, struct err *e)
{
	json_t *v = get(o, name);

	if (v && (json_integer_value(v) < lo || json_integer_value(v) > hi))
		return err_config(e, -EINVAL,
				  "%s: field '%s': %lld is not in %lld..%lld",
				  what, name, (long long)json_integer_value(v),
				  lo, hi);
	return 0;
}

/* Strings with a NUL inside would be cut silently by every consumer. */
static int check_str(json_t *o, const char *what, const char *name,
		     bool nonempty, struct err *e)
{
	json_t *v = get(o, name);

	if (!v)
		return 0;
	if (strlen(json_string_value(v)) != json_string_length(v))
		return err_config(e, -EINVAL, "%s: field '%s': contains a NUL",
				  what, name);
	if (nonempty && !json_string_length(v))
		return err_config(e, -EINVAL, "%s: field '%s': empty", what,
				  name);
	return 0;
}

static int dup_opt(char **dst, const char *s)
{
	char *c = NULL;

	if (s) {
		c = strdup(s);
		if (!c)
			return -ENOMEM;
	}
	free(*dst);
	*dst = c;
	return 0;
}

static int oom(struct err *e)
{
	return err_set(e, -ENOMEM, "out of memory");
}

/* Firecracker's resource ids: 1..64 of [A-Za-z0-9_]. */
static int check_id(const char *what, const char *id, struct err *e)
{
	size_t n = strlen(id);

	if (n < 1 || n > 64)
		return err_config(e, -EINVAL,
				  "%s: id '%.64s': 1 to 64 characters", what,
				  id);
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!(c == '_' || (c >= '0' && c <= '9') ||
		      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return err_config(e, -EINVAL,
					  "%s: id '%s': only letters, digits "
					  "and '_'",
					  what, id);
	}
	return 0;
}

/* The body's id field must match the URL's; config files carry it only
 * in the body. */
static int body_id(const char *what, const char *field, const char *url_id,
		   json_t *body, const char **out, struct err *e)
{
	const char *b = get_str(body, field);

	if (url_id && b && strcmp(url_id, b))
		return err_config(e, -EINVAL,
				  "%s: the id in the path ('%s') does not "
				  "match the body's %s ('%s')",
				  what, url_id, field, b);
	*out = url_id ? url_id : b;
	if (!*out)
		return err_config(e, -EINVAL, "%s: missing field '%s'", what,
				  field);
	return check_id(what, *out, e);
}

void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->vcpu_count = VM_DEFAULT_CPUS;
	m->mem_size_mib = VM_DEFAULT_MEMORY_MIB;
	m->iommu_poll_us = -1;
}

static void drive_free(struct model_drive *d)
{
	free(d->id);
	free(d->path);
	free(d->partuuid);
	free(d->socket);
	memset(d, 0, sizeof(*d));
}

static void iface_free(struct model_iface *i)
{
	free(i->id);
	free(i->host_dev_name);
	free(i->guest_mac);
	memset(i, 0, sizeof(*i));
}

static void server_free(struct model_server *s)
{
	free(s->id);
	free(s->socket);
	free(s->spawn);
	memset(s, 0, sizeof(*s));
}

void model_free(struct model *m)
{
	free(m->kernel);
	free(m->boot_args);
	free(m->initrd);
	for (int i = 0; i < m->nr_drives; i++)
		drive_free(&m->drives[i]);
	for (int i = 0; i < m->nr_ifaces; i++)
		iface_free(&m->ifaces[i]);
	for (int i = 0; i < m->nr_servers; i++)
		server_free(&m->servers[i]);
	for (int i = 0; i < m->nr_fs; i++) {
		free(m->fs[i].id);
		free(m->fs[i].socket);
		free(m->fs[i].tag);
	}
	free(m->vsock_uds);
	free(m->log_path);
	free(m->log_level);
	free(m->metrics_path);
	free(m->cmdline);
	model_init(m);
}

int model_put_boot_source(struct model *m, json_t *body, struct err *e)
{
	static const struct field f[] = {
		{ "kernel_image_path", F_STR, true },
		{ "boot_args", F_STR, false },
		{ "initrd_path", F_STR, false },
		{ NULL, 0, false },
	};
	char *k = NULL, *a = NULL, *i = NULL;
	int ret;

	ret = check_object(body, "boot-source", f, e);
	if (!ret)
		ret = check_str(body, "boot-source", "kernel_image_path", true,
				e);
	if (!ret)
		ret = check_str(body, "boot-source", "boot_args", false, e);
	if (!ret)
		ret = check_str(body, "boot-source", "initrd_path", true, e);
	if (ret)
		return ret;
	if (dup_opt(&k, get_str(body, "kernel_image_path")) ||
	    dup_opt(&a, get_str(body, "boot_args")) ||
	    dup_opt(&i, get_str(body, "initrd_path"))) {
		free(k);
		free(a);
		free(i);
		return oom(e);
	}
	free(m->kernel);
	free(m->boot_args);
	free(m->initrd);
	m->kernel = k;
	m->boot_args = a;
	m->initrd = i;
	return 0;
}

int model_put_machine(struct model *m, json_t *body, bool partial,
		      struct err *e)
{
	const struct field f[] = {
		{ "vcpu_count", F_INT, !partial },
		{ "mem_size_mib", F_INT, !partial },
		{ "smt", F_BOOL, false },
		{ "track_dirty_pages", F_BOOL, false },
		{ "cpu_template", F_STR, false },
		{ "huge_pages", F_STR, false },
		{ NULL, 0, false },
	};
	const char *s;
	json_t *v;
	int ret;

	ret = check_object(body, "machine-config", f, e);
	if (ret)
		return ret;
	ret = check_int(body, "machine-config", "vcpu_count", 1,
			MODEL_MAX_VCPUS, e);
	/* The same ceiling as --memory; the host's limit is checked when
	 * memory is created. */
	if (!ret)
		ret = check_int(body, "machine-config", "mem_size_mib", 1,
				1ll << 26, e);
	if (ret)
		return ret;
	/* Accepted only where wisp does what was asked. */
	if (get_bool(body, "smt", false))
		return err_config(e, -EINVAL,
				  "machine-config: field 'smt': SMT topology "
				  "is not supported yet (use false)");
	s = get_str(body, "cpu_template");
	if (s && strcmp(s, "None"))
		return err_config(e, -EINVAL,
				  "machine-config: field 'cpu_template': '%s' "
				  "is not supported (only \"None\")",
				  s);
	s = get_str(body, "huge_pages");
	if (s && strcmp(s, "None"))
		return err_config(e, -EINVAL,
				  "machine-config: field 'huge_pages': '%s' is "
				  "not supported yet (only \"None\")",
				  s);
	if (!partial) {
		m->vcpu_count = VM_DEFAULT_CPUS;
		m->mem_size_mib = VM_DEFAULT_MEMORY_MIB;
	}
	if ((v = get(body, "vcpu_count")))
		m->vcpu_count = (int)json_integer_value(v);
	if ((v = get(body, "mem_size_mib")))
		m->mem_size_mib = (uint64_t)json_integer_value(v);
	if (!partial || get(body, "track_dirty_pages"))
		m->track_dirty_pages =
			get_bool(body, "track_dirty_pages", false);
	return 0;
}

static const struct field rate_limiter_fields[] = {
	{ "bandwidth", F_OBJ, false },
	{ "ops", F_OBJ, false },
	{ NULL, 0, false },
};

static const struct field bucket_fields[] = {
	{ "size", F_INT, true },
	{ "refill_time", F_INT, true },
	{ "one_time_burst", F_INT, false },
	{ NULL, 0, false },
};

/* One TokenBucket: Firecracker's rules (a zero size or refill_time is no
 * limit), the sizes and times the command line takes. */
static int parse_bucket(json_t *b, const char *what, const char *name,
			struct tb_config *t, struct err *e)
{
	json_int_t size, refill, burst = 0;
	char w[96];
	int ret;

	snprintf(w, sizeof(w), "%s: %s", what, name);
	ret = check_object(b, w, bucket_fields, e);
	if (ret)
		return ret;
	size = json_integer_value(get(b, "size"));
	refill = json_integer_value(get(b, "refill_time"));
	if (get(b, "one_time_burst"))
		burst = json_integer_value(get(b, "one_time_burst"));
	if (size < 0 || refill < 0 || burst < 0 || size > (1ll << 40) ||
	    burst > (1ll << 40) || refill > 3600000)
		return err_config(e, -EINVAL,
				  "%s: size and one_time_burst must be in "
				  "0..%llu, refill_time in 0..3600000 (ms)",
				  w, 1ull << 40);
	*t = (struct tb_config){ 0 };
	if (size && refill)
		*t = (struct tb_config){ (uint64_t)size, (uint64_t)burst,
					 (uint64_t)refill };
	return 0;
}

/* A RateLimiter object: bandwidth (bytes) and ops buckets. */
static int parse_limiter(json_t *rl, const char *what, struct rl_config *out,
			 struct err *e)
{
	struct rl_config c = { 0 };
	json_t *b;
	int ret = check_object(rl, what, rate_limiter_fields, e);

	if (!ret && (b = get(rl, "bandwidth")))
		ret = parse_bucket(b, what, "bandwidth", &c.bw, e);
	if (!ret && (b = get(rl, "ops")))
		ret = parse_bucket(b, what, "ops", &c.ops, e);
	if (!ret)
		*out = c;
	return ret;
}

static json_t *bucket_json(const struct tb_config *t)
{
	return json_pack("{s:I, s:I, s:I}", "size", (json_int_t)t->size,
			 "one_time_burst", (json_int_t)t->one_time_burst,
			 "refill_time", (json_int_t)t->refill_ms);
}

/* o[key] = the limiter, left out when there is no limit. */
static void set_limiter(json_t *o, const char *key, const struct rl_config *rl)
{
	json_t *j;

	if (!rl->bw.size && !rl->ops.size)
		return;
	j = json_object();
	if (j && rl->bw.size)
		json_object_set_new(j, "bandwidth", bucket_json(&rl->bw));
	if (j && rl->ops.size)
		json_object_set_new(j, "ops", bucket_json(&rl->ops));
	json_object_set_new(o, key, j);
}

static struct model_drive *find_drive(struct model *m, const char *id)
{
	for (int i = 0; i < m->nr_drives; i++)
		if (!strcmp(m->drives[i].id, id))
			return &m->drives[i];
	return NULL;
}

int model_put_drive(struct model *m, const char *url_id, json_t *body,
		    struct err *e)
{
	static const struct field f[] = {
		{ "drive_id", F_STR, false },
		{ "path_on_host", F_STR, false },
		{ "is_root_device", F_BOOL, true },
		{ "is_read_only", F_BOOL, false },
		{ "partuuid", F_STR, false },
		{ "cache_type", F_STR, false },
		{ "io_engine", F_STR, false },
		{ "rate_limiter", F_OBJ, false },
		{ "socket", F_STR, false },
		{ NULL, 0, false },
	};
	struct model_drive nd = { 0 }, *old;
	const char *id, *s;
	int ret;

	ret = check_object(body, "drive", f, e);
	if (!ret)
		ret = body_id("drive", "drive_id", url_id, body, &id, e);
	if (!ret)
		ret = check_str(body, "drive", "path_on_host", true, e);
	if (!ret)
		ret = check_str(body, "drive", "partuuid", true, e);
	if (!ret)
		ret = check_str(body, "drive", "socket", true, e);
	if (ret)
		return ret;
	/* vhost-user-blk, as Firecracker's: the back-end has the image. */
	if (get(body, "socket") &&
	    (get(body, "path_on_host") || get(body, "partuuid") ||
	     get(body, "rate_limiter") ||
	     get_bool(body, "is_root_device", false) ||
	     get_bool(body, "is_read_only", false)))
		return err_config(
			e, -EINVAL,
			"drive '%s': a vhost-user drive ('socket') "
			"takes no path_on_host, partuuid or rate_limiter "
			"and is not the root device or read-only here",
			id);
	if (!get(body, "path_on_host") && !get(body, "socket"))
		return err_config(e, -EINVAL,
				  "drive '%s': missing field 'path_on_host'",
				  id);
	if (get(body, "rate_limiter")) {
		char what[64];

		snprintf(what, sizeof(what), "drive '%s': rate_limiter", id);
		ret = parse_limiter(get(body, "rate_limiter"), what, &nd.rl, e);
		if (ret)
			return ret;
	}
	s = get_str(body, "cache_type");
	if (s && strcmp(s, "Unsafe") && strcmp(s, "Writeback"))
		return err_config(e, -EINVAL,
				  "drive '%s': field 'cache_type': '%s' is not "
				  "Unsafe or Writeback",
				  id, s);
	nd.writeback = s && !strcmp(s, "Writeback");
	s = get_str(body, "io_engine");
	if (s && strcmp(s, "Sync"))
		return err_config(e, -EINVAL,
				  "drive '%s': field 'io_engine': '%s' is not "
				  "supported (only \"Sync\")",
				  id, s);
	nd.root = get_bool(body, "is_root_device", false);
	nd.read_only = get_bool(body, "is_read_only", false);
	old = find_drive(m, id);
	for (int i = 0; i < m->nr_drives; i++)
		if (nd.root && m->drives[i].root && &m->drives[i] != old)
			return err_config(e, -EINVAL,
					  "drive '%s': drive '%s' is already "
					  "the root device",
					  id, m->drives[i].id);
	if (!old && m->nr_drives == MODEL_MAX_DRIVES)
		return err_config(e, -EINVAL, "drive '%s': at most %d drives",
				  id, MODEL_MAX_DRIVES);
	if (dup_opt(&nd.id, id) ||
	    dup_opt(&nd.path, get_str(body, "path_on_host")) ||
	    dup_opt(&nd.partuuid, get_str(body, "partuuid")) ||
	    dup_opt(&nd.socket, get_str(body, "socket"))) {
		drive_free(&nd);
		return oom(e);
	}
	snprintf(nd.serial, sizeof(nd.serial), "%s", id);
	if (old)
		drive_free(old);
	else
		old = &m->drives[m->nr_drives++];
	*old = nd;
	return 0;
}

int model_patch_drive(struct model *m, const char *url_id, json_t *body,
		      bool apply, int *index, bool *changed, struct err *e)
{
	static const struct field f[] = {
		{ "drive_id", F_STR, true },
		{ "path_on_host", F_STR, false },
		{ "rate_limiter", F_OBJ, false },
		{ NULL, 0, false },
	};
	struct model_drive *d;
	struct rl_config rl;
	const char *id;
	char what[64];
	int ret = check_object(body, "drive", f, e);

	*changed = false;
	if (!ret)
		ret = body_id("drive", "drive_id", url_id, body, &id, e);
	if (ret)
		return ret;
	d = find_drive(m, id);
	if (!d)
		return err_config(e, -ENOENT, "drive '%s': no such drive", id);
	if (get(body, "path_on_host"))
		return err_config(e, -EOPNOTSUPP,
				  "drive '%s': changing path_on_host after "
				  "start is not supported yet",
				  id);
	if (!get(body, "rate_limiter"))
		return 0;
	snprintf(what, sizeof(what), "drive '%s': rate_limiter", id);
	ret = parse_limiter(get(body, "rate_limiter"), what, &rl, e);
	if (ret)
		return ret;
	if (apply)
		d->rl = rl;
	*index = (int)(d - m->drives);
	*changed = true;
	return 0;
}

/* A token bucket as bytes per second; ops buckets and bursts are not
 * something the rng's limiter has. */
static int parse_bandwidth(json_t *rl, const char *what, uint64_t *size,
			   uint64_t *refill_ms, struct err *e)
{
	json_t *b, *v;
	int ret;

	ret = check_object(rl, what, rate_limiter_fields, e);
	if (ret)
		return ret;
	if (get(rl, "ops"))
		return err_config(e, -EINVAL,
				  "%s: field 'ops': an ops bucket is not "
				  "supported (only bandwidth)",
				  what);
	b = get(rl, "bandwidth");
	if (!b)
		return 0;
	ret = check_object(b, what, bucket_fields, e);
	if (ret)
		return ret;
	v = get(b, "one_time_burst");
	if (v && json_integer_value(v) != 0)
		return err_config(e, -EINVAL,
				  "%s: field 'one_time_burst': not supported "
				  "yet (use 0)",
				  what);
	if (json_integer_value(get(b, "size")) < 0 ||
	    json_integer_value(get(b, "refill_time")) < 0)
		return err_config(e, -EINVAL,
				  "%s: bandwidth size and refill_time must not "
				  "be negative",
				  what);
	*size = (uint64_t)json_integer_value(get(b, "size"));
	*refill_ms = (uint64_t)json_integer_value(get(b, "refill_time"));
	/* Firecracker: a zero size or refill time means no limit. */
	if (!*size || !*refill_ms)
		*size = *refill_ms = 0;
	else if (*size > (1ull << 40))
		return err_config(e, -EINVAL,
				  "%s: bandwidth size %llu is above %llu", what,
				  (unsigned long long)*size, 1ull << 40);
	return 0;
}

int model_put_iommu(struct model *m, json_t *body, struct err *e)
{
	static const struct field f[] = {
		{ "enabled", F_BOOL, true },
		{ "requests", F_STR, false },
		{ "poll_us", F_INT, false },
		{ NULL, 0, false },
	};
	int ret = check_object(body, "iommu", f, e);
	const char *req;
	json_t *poll;

	if (ret)
		return ret;
	req = get_str(body, "requests");
	poll = get(body, "poll_us");
	if (req && strcmp(req, "vcpu") && strcmp(req, "thread"))
		return err_config(e, -EINVAL,
				  "iommu: field 'requests': '%s' is neither "
				  "thread nor vcpu",
				  req);
	ret = check_int(body, "iommu", "poll_us", 0, VM_MAX_IOMMU_POLL_US, e);
	if (ret)
		return ret;
	m->iommu = json_is_true(get(body, "enabled"));
	m->iommu_vcpu = req && !strcmp(req, "vcpu");
	m->iommu_poll_us = poll ? json_integer_value(poll) : -1;
	return 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' :
	       c >= 'a' && c <= 'f' ? c - 'a' + 10 :
				      c - 'A' + 10;
}

int model_put_entropy(struct model *m, json_t *body, struct err *e)
{
	static const struct field f[] = {
		{ "rate_limiter", F_OBJ, false },
		{ NULL, 0, false },
	};
	uint64_t size = 0, refill = 0;
	json_t *rl;
	int ret = check_object(body, "entropy", f, e);

	if (ret)
		return ret;
	rl = get(body, "rate_limiter");
	if (rl) {
		ret = parse_bandwidth(rl, "entropy: rate_limiter", &size,
				      &refill, e);
		if (ret)
			return ret;
	}
	m->entropy = true;
	m->entropy_size = size;
	m->entropy_refill_ms = refill;
	return 0;
}

static int check_mac(const char *s)
{
	/* xx:xx:xx:xx:xx:xx */
	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 17; i++) {
		char c = s[i];

		if (i % 3 == 2 ?
			    c != ':' :
			    !((c >= '0' && c <= '9') ||
			      (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return -EINVAL;
	}
	return 0;
}

/* rx_rate_limiter and tx_rate_limiter of body (each left as is when
 * absent; *has_rx / *has_tx, if given, say which were there). */
static int iface_limiters(json_t *body, const char *id, struct rl_config *rx,
			  struct rl_config *tx, bool *has_rx, bool *has_tx,
			  struct err *e)
{
	static const char *const names[2] = { "rx_rate_limiter",
					      "tx_rate_limiter" };
	struct rl_config *out[2] = { rx, tx }, tmp[2] = { *rx, *tx };
	bool *has[2] = { has_rx, has_tx };

	for (int k = 0; k < 2; k++) {
		json_t *v = get(body, names[k]);
		char what[96];
		int ret;

		if (has[k])
			*has[k] = v != NULL;
		if (!v)
			continue;
		snprintf(what, sizeof(what), "network interface '%s': %s", id,
			 names[k]);
		ret = parse_limiter(v, what, &tmp[k], e);
		if (ret)
			return ret;
	}
	*out[0] = tmp[0];
	*out[1] = tmp[1];
	return 0;
}

int model_put_iface(struct model *m, const char *url_id, json_t *body,
		    struct err *e)
{
	static const struct field f[] = {
		{ "iface_id", F_STR, false },
		{ "host_dev_name", F_STR, true },
		{ "guest_mac", F_STR, false },
		{ "mtu", F_INT, false },
		{ "rx_rate_limiter", F_OBJ, false },
		{ "tx_rate_limiter", F_OBJ, false },
		{ NULL, 0, false },
	};
	struct model_iface ni = { 0 }, *old = NULL;
	const char *id, *mac;
	json_t *v;
	int ret;

	ret = check_object(body, "network interface", f, e);
	if (!ret)
		ret = body_id("network interface", "iface_id", url_id, body,
			      &id, e);
	if (!ret)
		ret = check_str(body, "network interface", "host_dev_name",
				true, e);
	if (ret)
		return ret;
	mac = get_str(body, "guest_mac");
	if (mac && check_mac(mac))
		return err_config(e, -EINVAL,
				  "network interface '%s': field 'guest_mac': "
				  "'%s' is not xx:xx:xx:xx:xx:xx",
				  id, mac);
	v = get(body, "mtu");
	if (v && (json_integer_value(v) < 68 || json_integer_value(v) > 65535))
		return err_config(e, -EINVAL,
				  "network interface '%s': field 'mtu': %lld "
				  "is not in 68..65535",
				  id, (long long)json_integer_value(v));
	ret = iface_limiters(body, id, &ni.rx_rl, &ni.tx_rl, NULL, NULL, e);
	if (ret)
		return ret;
	for (int i = 0; i < m->nr_ifaces; i++)
		if (!strcmp(m->ifaces[i].id, id))
			old = &m->ifaces[i];
	if (!old && m->nr_ifaces == MODEL_MAX_IFACES)
		return err_config(e, -EINVAL,
				  "network interface '%s': at most %d", id,
				  MODEL_MAX_IFACES);
	if (dup_opt(&ni.id, id) ||
	    dup_opt(&ni.host_dev_name, get_str(body, "host_dev_name")) ||
	    dup_opt(&ni.guest_mac, mac)) {
		iface_free(&ni);
		return oom(e);
	}
	ni.mtu = v ? json_integer_value(v) : 0;
	if (old)
		iface_free(old);
	else
		old = &m->ifaces[m->nr_ifaces++];
	*old = ni;
	return 0;
}

int model_patch_iface(struct model *m, const char *url_id, json_t *body,
		      bool apply, int *index, bool *rx, bool *tx, struct err *e)
{
	static const struct field f[] = {
		{ "iface_id", F_STR, true },
		{ "rx_rate_limiter", F_OBJ, false },
		{ "tx_rate_limiter", F_OBJ, false },
		{ NULL, 0, false },
	};
	struct model_iface *nf = NULL;
	struct rl_config rxc, txc;
	const char *id;
	int ret = check_object(body, "network interface", f, e);

	*rx = *tx = false;
	if (!ret)
		ret = body_id("network interface", "iface_id", url_id, body,
			      &id, e);
	if (ret)
		return ret;
	for (int i = 0; i < m->nr_ifaces; i++)
		if (!strcmp(m->ifaces[i].id, id))
			nf = &m->ifaces[i];
	if (!nf)
		return err_config(e, -ENOENT,
				  "network interface '%s': no such interface",
				  id);
	rxc = nf->rx_rl;
	txc = nf->tx_rl;
	ret = iface_limiters(body, id, &rxc, &txc, rx, tx, e);
	if (ret)
		return ret;
	if (apply) {
		nf->rx_rl = rxc;
		nf->tx_rl = txc;
	}
	*index = (int)(nf - m->ifaces);
	return 0;
}

int model_put_vsock(struct model *m, json_t *body, struct err *e)
{
	static const struct field f[] = {
		{ "guest_cid", F_INT, true },
		{ "uds_path", F_STR, true },
		{ "vsock_id", F_STR, false },
		{ NULL, 0, false },
	};
	char *uds = NULL;
	json_t *v;
	int ret = check_object(body, "vsock", f, e);

	if (!ret)
		ret = check_str(body, "vsock", "uds_path", true, e);
	if (ret)
		return ret;
	v = get(body, "guest_cid");
	if (json_integer_value(v) < 3 || json_integer_value(v) > UINT32_MAX)
		return err_config(e, -EINVAL,
				  "vsock: field 'guest_cid': %lld is not in "
				  "3..%u",
				  (long long)json_integer_value(v), UINT32_MAX);
	if (dup_opt(&uds, get_str(body, "uds_path")))
		return oom(e);
	free(m->vsock_uds);
	m->vsock_uds = uds;
	m->vsock_cid = json_integer_value(v);
	m->vsock = true;
	return 0;
}

int model_put_server(struct model *m, const char *url_id, json_t *body,
		     struct err *e)
{
	static const struct field f[] = {
		{ "id", F_STR, false },	   { "socket", F_STR, false },
		{ "spawn", F_STR, false }, { "iommu", F_BOOL, false },
		{ NULL, 0, false },
	};
	struct model_server ns = { 0 }, *old = NULL;
	const char *id;
	int ret;

	ret = check_object(body, "ioreq server", f, e);
	if (!ret)
		ret = body_id("ioreq server", "id", url_id, body, &id, e);
	if (!ret)
		ret = check_str(body, "ioreq server", "socket", true, e);
	if (!ret)
		ret = check_str(body, "ioreq server", "spawn", true, e);
	if (ret)
		return ret;
	if (!get(body, "socket") == !get(body, "spawn"))
		return err_config(e, -EINVAL,
				  "ioreq server '%s': exactly one of 'socket' "
				  "and 'spawn' is required",
				  id);
	for (int i = 0; i < m->nr_servers; i++)
		if (!strcmp(m->servers[i].id, id))
			old = &m->servers[i];
	if (!old && m->nr_servers == MODEL_MAX_SERVERS)
		return err_config(e, -EINVAL, "ioreq server '%s': at most %d",
				  id, MODEL_MAX_SERVERS);
	if (dup_opt(&ns.id, id) ||
	    dup_opt(&ns.socket, get_str(body, "socket")) ||
	    dup_opt(&ns.spawn, get_str(body, "spawn"))) {
		server_free(&ns);
		return oom(e);
	}
	/* Behind the IOMMU (when there is one) unless told otherwise, as
	 * on the command line. */
	ns.no_iommu = !get_bool(body, "iommu", true);
	if (old)
		server_free(old);
	else
		old = &m->servers[m->nr_servers++];
	*old = ns;
	return 0;
}

int model_put_fs(struct model *m, const char *url_id, json_t *body,
		 struct err *e)
{
	static const struct field f[] = {
		{ "fs_id", F_STR, true },
		{ "socket", F_STR, true },
		{ "tag", F_STR, true },
		{ NULL, 0, false },
	};
	struct model_fs nf = { 0 }, *old = NULL;
	const char *id, *tag;
	int ret;

	ret = check_object(body, "fs", f, e);
	if (!ret)
		ret = body_id("fs", "fs_id", url_id, body, &id, e);
	if (!ret)
		ret = check_str(body, "fs", "socket", true, e);
	if (!ret)
		ret = check_str(body, "fs", "tag", true, e);
	if (ret)
		return ret;
	tag = get_str(body, "tag");
	if (strlen(tag) > 36 || strpbrk(tag, " \t,"))
		return err_config(e, -EINVAL,
				  "fs '%s': field 'tag': 1 to 36 characters "
				  "without spaces or commas",
				  id);
	for (int i = 0; i < m->nr_fs; i++)
		if (!strcmp(m->fs[i].id, id))
			old = &m->fs[i];
	if (!old && m->nr_fs == MODEL_MAX_FS)
		return err_config(e, -EINVAL, "fs '%s': at most %d", id,
				  MODEL_MAX_FS);
	if (dup_opt(&nf.id, id) ||
	    dup_opt(&nf.socket, get_str(body, "socket")) ||
	    dup_opt(&nf.tag, tag)) {
		free(nf.id);
		free(nf.socket);
		free(nf.tag);
		return oom(e);
	}
	if (old) {
		free(old->id);
		free(old->socket);
		free(old->tag);
	} else {
		old = &m->fs[m->nr_fs++];
	}
	*old = nf;
	return 0;
}

int model_put_logger(struct model *m, json_t *body, int *level, struct err *e)
{
	static const struct field f[] = {
		{ "level", F_STR, false },
		{ "log_path", F_STR, false },
		{ "show_level", F_BOOL, false },
		{ "show_log_origin", F_BOOL, false },
		{ "module", F_STR, false },
		{ NULL, 0, false },
	};
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "Error", LOG_ERROR }, { "Warning", LOG_WARN },
		{ "Warn", LOG_WARN },	{ "Info", LOG_INFO },
		{ "Debug", LOG_DEBUG }, { "Trace", LOG_DEBUG },
		{ "Off", LOG_OFF },
	};
	const char *s, *mod;
	char *p = NULL, *l = NULL;
	int ret = check_object(body, "logger", f, e);

	if (!ret)
		ret = check_str(body, "logger", "log_path", true, e);
	if (!ret)
		ret = check_str(body, "logger", "module", true, e);
	if (ret)
		return ret;
	*level = LOG_INFO; /* Firecracker's default */
	s = get_str(body, "level");
	if (s) {
		size_t i;

		for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
			if (!strcasecmp(levels[i].name, s))
				break;
		if (i == sizeof(levels) / sizeof(levels[0]))
			return err_config(e, -EINVAL,
					  "logger: field 'level': '%s' is not "
					  "Error, Warning, Info, Debug, Trace "
					  "or Off",
					  s);
		*level = levels[i].level;
	}
	mod = get_str(body, "module");
	if (mod) {
		size_t n = strlen(mod);

		/* A folder under src/: what log.c matches the origin with. */
		if (!n || n >= sizeof(m->log_module) ||
		    strspn(mod, "abcdefghijklmnopqrstuvwxyz0123456789_/") !=
			    n ||
		    mod[0] == '/' || mod[n - 1] == '/' || strstr(mod, "//"))
			return err_config(e, -EINVAL,
					  "logger: field 'module': '%s' is not "
					  "a wisp subsystem (a folder under "
					  "src/, e.g. \"virtio\" or "
					  "\"devices/blk\")",
					  mod);
	}
	if (dup_opt(&p, get_str(body, "log_path")) || dup_opt(&l, s)) {
		free(p);
		return oom(e);
	}
	free(m->log_path);
	free(m->log_level);
	m->logger = true;
	m->log_path = p;
	m->log_show_level = get_bool(body, "show_level", false);
	m->log_show_origin = get_bool(body, "show_log_origin", false);
	snprintf(m->log_module, sizeof(m->log_module), "%s", mod ? mod : "");
	m->log_level = l;
	return 0;
}

int model_put_metrics(struct model *m, json_t *body, struct err *e)
{
	static const struct field f[] = {
		{ "metrics_path", F_STR, true },
		{ "emit_id", F_BOOL, false },
		{ "properties", F_OBJ, false },
		{ NULL, 0, false },
	};
	char *p = NULL;
	int ret = check_object(body, "metrics", f, e);

	if (!ret)
		ret = check_str(body, "metrics", "metrics_path", true, e);
	if (ret)
		return ret;
	if (get_bool(body, "emit_id", false) || get(body, "properties"))
		return err_config(e, -EINVAL,
				  "metrics: emit_id and properties are not "
				  "supported yet");
	if (dup_opt(&p, get_str(body, "metrics_path")))
		return oom(e);
	free(m->metrics_path);
	m->metrics_path = p;
	return 0;
}

int model_parse_vm_state(json_t *body, bool *pause, struct err *e)
{
	static const struct field f[] = {
		{ "state", F_STR, true },
		{ NULL, 0, false },
	};
	const char *s;
	int ret = check_object(body, "vm", f, e);

	if (ret)
		return ret;
	s = get_str(body, "state");
	if (!strcmp(s, "Paused"))
		*pause = true;
	else if (!strcmp(s, "Resumed"))
		*pause = false;
	else
		return err_config(e, -EINVAL,
				  "vm: field 'state': '%s' is not Paused or "
				  "Resumed",
				  s);
	return 0;
}

int model_parse_action(json_t *body, const char **action, struct err *e)
{
	static const struct field f[] = {
		{ "action_type", F_STR, true },
		{ NULL, 0, false },
	};
	int ret = check_object(body, "actions", f, e);

	if (ret)
		return ret;
	*action = get_str(body, "action_type");
	return 0;
}

int model_to_vm_config(struct model *m, struct vm_config *c, struct err *e)
{
	const struct model_drive *root = NULL;
	size_t n;

	vm_config_defaults(c);
	/* Firecracker's SIGTERM ends the VMM at once; an orchestrator that
	 * wants a graceful stop sends SendCtrlAltDel first. Keep that. */
	c->shutdown_timeout_s = 0;
	if (!m->kernel)
		return err_config(e, -EINVAL,
				  "InstanceStart: no boot source (PUT "
				  "/boot-source with kernel_image_path first)");
	c->kernel = m->kernel;
	c->initrd = m->initrd;
	c->cpus = m->vcpu_count;
	c->memory_mib = m->mem_size_mib;
	c->track_dirty_pages = m->track_dirty_pages;
	/* The root device is vda, as in Firecracker; the rest follow in the
	 * order they were added. */
	for (int i = 0; i < m->nr_drives; i++)
		if (m->drives[i].root)
			root = &m->drives[i];
	c->nr_disks = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < m->nr_drives; i++) {
			const struct model_drive *d = &m->drives[i];
			struct disk_config *dc;

			if ((d == root) != (pass == 0) || d->socket)
				continue;
			dc = &c->disks[c->nr_disks++];
			dc->path = d->path;
			dc->readonly = d->read_only;
			dc->id = d->serial;
			dc->rl = d->rl;
		}
	free(m->cmdline);
	m->cmdline = NULL;
	n = (m->boot_args ? strlen(m->boot_args) : 0) +
	    (root && root->partuuid ? strlen(root->partuuid) : 0) + 32;
	if (m->boot_args || root) {
		m->cmdline = malloc(n);
		if (!m->cmdline)
			return oom(e);
		if (!root)
			snprintf(m->cmdline, n, "%s", m->boot_args);
		else if (root->partuuid)
			snprintf(m->cmdline, n, "%s%sroot=PARTUUID=%s %s",
				 m->boot_args ? m->boot_args : "",
				 m->boot_args ? " " : "", root->partuuid,
				 root->read_only ? "ro" : "rw");
		else
			snprintf(m->cmdline, n, "%s%sroot=/dev/vda %s",
				 m->boot_args ? m->boot_args : "",
				 m->boot_args ? " " : "",
				 root->read_only ? "ro" : "rw");
	}
	c->cmdline_extra = m->cmdline;
	/* vhost-user drives, then file systems: devices of their own. */
	c->nr_vhost_user = 0;
	for (int i = 0; i < m->nr_drives + m->nr_fs; i++) {
		const struct model_drive *d = i < m->nr_drives ? &m->drives[i] :
								 NULL;
		struct vm_vhu_config *vc;

		if (d && !d->socket)
			continue;
		if (c->nr_vhost_user == VM_MAX_VHOST_USER)
			return err_config(
				e, -EINVAL,
				"InstanceStart: at most %d vhost-user "
				"drives and file systems",
				VM_MAX_VHOST_USER);
		vc = &c->vhost_user[c->nr_vhost_user++];
		if (d) {
			*vc = (struct vm_vhu_config){ .device_id = 2,
						      .socket = d->socket,
						      .id = d->serial };
		} else {
			const struct model_fs *f = &m->fs[i - m->nr_drives];

			*vc = (struct vm_vhu_config){ .device_id = 26,
						      .socket = f->socket,
						      .tag = f->tag };
		}
	}
	c->rng = m->entropy;
	if (m->entropy && m->entropy_refill_ms)
		c->rng_rate = m->entropy_size * 1000 / m->entropy_refill_ms;
	if (m->entropy && m->entropy_refill_ms && !c->rng_rate)
		c->rng_rate = 1; /* below 1 B/s: the slowest wisp has */
	c->iommu = m->iommu;
	c->iommu_vcpu = m->iommu_vcpu;
	/* 0 is "never" to the client, "default" to the VMM. */
	if (m->iommu_poll_us >= 0)
		c->iommu_poll_ns = m->iommu_poll_us ? m->iommu_poll_us * 1000 :
						      -1;
	/* Network interfaces are virtio-net devices on their taps. */
	if (m->nr_ifaces > VM_MAX_NETS)
		return err_config(e, -EINVAL,
				  "InstanceStart: %d network interfaces, at "
				  "most %d",
				  m->nr_ifaces, VM_MAX_NETS);
	c->nr_nets = m->nr_ifaces;
	for (int i = 0; i < m->nr_ifaces; i++) {
		const struct model_iface *f = &m->ifaces[i];
		struct vm_net_config *nc = &c->nets[i];

		if (f->mtu)
			return err_config(e, -EINVAL,
					  "network interface '%s': field 'mtu' "
					  "is not supported yet",
					  f->id);
		nc->tap = f->host_dev_name;
		nc->id = f->id;
		nc->rx_rl = f->rx_rl;
		nc->tx_rl = f->tx_rl;
		nc->has_mac = f->guest_mac != NULL;
		/* Checked as xx:xx:xx:xx:xx:xx when it was PUT. */
		for (int b = 0; f->guest_mac && b < 6; b++)
			nc->mac[b] =
				(uint8_t)(hexval(f->guest_mac[3 * b]) << 4 |
					  hexval(f->guest_mac[3 * b + 1]));
	}
	if (m->vsock) {
		c->vsock_uds = m->vsock_uds;
		c->vsock_cid = (uint64_t)m->vsock_cid;
	}
	c->nr_servers = m->nr_servers;
	for (int i = 0; i < m->nr_servers; i++) {
		c->servers[i].socket = m->servers[i].socket;
		c->servers[i].spawn = m->servers[i].spawn;
		c->servers[i].no_iommu = m->servers[i].no_iommu;
	}
	return 0;
}

static json_t *jstr_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *model_machine_json(const struct model *m)
{
	return json_pack("{s:i, s:I, s:b, s:b, s:s}", "vcpu_count",
			 m->vcpu_count, "mem_size_mib",
			 (json_int_t)m->mem_size_mib, "smt", 0,
			 "track_dirty_pages", m->track_dirty_pages,
			 "huge_pages", "None");
}

static json_t *drive_json(const struct model_drive *d)
{
	json_t *j = json_pack("{s:s, s:o, s:b, s:b, s:s, s:s}", "drive_id",
			      d->id, "path_on_host", jstr_or_null(d->path),
			      "is_root_device", d->root, "is_read_only",
			      d->read_only, "cache_type",
			      d->writeback ? "Writeback" : "Unsafe",
			      "io_engine", "Sync");

	if (j && d->partuuid)
		json_object_set_new(j, "partuuid", json_string(d->partuuid));
	if (j)
		set_limiter(j, "rate_limiter", &d->rl);
	if (j && d->socket)
		json_object_set_new(j, "socket", json_string(d->socket));
	return j;
}

json_t *model_json(const struct model *m)
{
	json_t *j = json_object(), *a, *o;

	if (!j)
		return NULL;
	if (m->kernel)
		json_object_set_new(
			j, "boot-source",
			json_pack("{s:s, s:o, s:o}", "kernel_image_path",
				  m->kernel, "boot_args",
				  jstr_or_null(m->boot_args), "initrd_path",
				  jstr_or_null(m->initrd)));
	else
		json_object_set_new(j, "boot-source", json_null());
	json_object_set_new(j, "machine-config", model_machine_json(m));
	a = json_array();
	for (int i = 0; i < m->nr_drives; i++)
		json_array_append_new(a, drive_json(&m->drives[i]));
	json_object_set_new(j, "drives", a);
	a = json_array();
	for (int i = 0; i < m->nr_ifaces; i++) {
		const struct model_iface *f = &m->ifaces[i];
		json_t *o = json_pack("{s:s, s:s}", "iface_id", f->id,
				      "host_dev_name", f->host_dev_name);

		if (o && f->guest_mac)
			json_object_set_new(o, "guest_mac",
					    json_string(f->guest_mac));
		if (o && f->mtu)
			json_object_set_new(o, "mtu", json_integer(f->mtu));
		if (o) {
			set_limiter(o, "rx_rate_limiter", &f->rx_rl);
			set_limiter(o, "tx_rate_limiter", &f->tx_rl);
		}
		json_array_append_new(a, o);
	}
	json_object_set_new(j, "network-interfaces", a);
	o = json_pack("{s:b, s:s}", "enabled", m->iommu, "requests",
		      m->iommu_vcpu ? "vcpu" : "thread");
	if (m->iommu_poll_us >= 0)
		json_object_set_new(o, "poll_us",
				    json_integer(m->iommu_poll_us));
	json_object_set_new(j, "iommu", o);
	if (m->vsock)
		json_object_set_new(j, "vsock",
				    json_pack("{s:I, s:s}", "guest_cid",
					      (json_int_t)m->vsock_cid,
					      "uds_path", m->vsock_uds));
	else
		json_object_set_new(j, "vsock", json_null());
	if (!m->entropy)
		json_object_set_new(j, "entropy", json_null());
	else if (m->entropy_refill_ms)
		json_object_set_new(
			j, "entropy",
			json_pack("{s:{s:{s:I, s:I}}}", "rate_limiter",
				  "bandwidth", "size",
				  (json_int_t)m->entropy_size, "refill_time",
				  (json_int_t)m->entropy_refill_ms));
	else
		json_object_set_new(j, "entropy", json_object());
	json_object_set_new(
		j, "logger",
		m->logger ? json_pack("{s:o, s:o, s:b, s:b, s:o}", "log_path",
				      jstr_or_null(m->log_path), "level",
				      jstr_or_null(m->log_level), "show_level",
				      m->log_show_level, "show_log_origin",
				      m->log_show_origin, "module",
				      m->log_module[0] ?
					      json_string(m->log_module) :
					      json_null()) :
			    json_null());
	json_object_set_new(j, "metrics",
			    m->metrics_path ? json_pack("{s:s}", "metrics_path",
							m->metrics_path) :
					      json_null());
	a = json_array();
	for (int i = 0; i < m->nr_servers; i++) {
		const struct model_server *s = &m->servers[i];

		json_array_append_new(
			a, json_pack("{s:s, s:o, s:o, s:b}", "id", s->id,
				     "socket", jstr_or_null(s->socket), "spawn",
				     jstr_or_null(s->spawn), "iommu",
				     !s->no_iommu));
	}
	json_object_set_new(j, "ioreq-servers", a);
	a = json_array();
	for (int i = 0; i < m->nr_fs; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "fs_id",
						   m->fs[i].id, "socket",
						   m->fs[i].socket, "tag",
						   m->fs[i].tag));
	json_object_set_new(j, "fs", a);
	return j;
}
