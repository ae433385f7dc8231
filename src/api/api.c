// SPDX-License-Identifier: MIT
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/time.h"

#define PRE_BOOT_ONLY                                                  \
	"The requested operation is not supported after starting the " \
	"microVM."
#define POST_BOOT_ONLY                                                  \
	"The requested operation is not supported before starting the " \
	"microVM."

/* What a route accepts: methods as a mask of 1 << enum api_method. */
struct route {
	const char *path;
	bool has_id; /* path is a prefix followed by "/ID" */
	enum api_ep ep;
	unsigned methods;
	const char *name; /* in the metrics */
};

#define G (1u << M_GET)
#define P (1u << M_PUT)
#define A (1u << M_PATCH)

static const struct route routes[] = {
	{ "/", false, EP_ROOT, G, "instance_info" },
	{ "/actions", false, EP_ACTIONS, P, "actions" },
	{ "/boot-source", false, EP_BOOT_SOURCE, P, "boot_source" },
	{ "/machine-config", false, EP_MACHINE, G | P | A, "machine_cfg" },
	{ "/drives", true, EP_DRIVES, P | A, "drive" },
	{ "/entropy", false, EP_ENTROPY, P, "entropy" },
	{ "/logger", false, EP_LOGGER, P, "logger" },
	{ "/metrics", false, EP_METRICS, P, "metrics" },
	{ "/network-interfaces", true, EP_NET, P | A, "network" },
	{ "/vsock", false, EP_VSOCK, P, "vsock" },
	{ "/vm", false, EP_VM, A, "vm" },
	{ "/vm/config", false, EP_VM_CONFIG, G, "vm_config" },
	{ "/snapshot/create", false, EP_SNAPSHOT, P, "snapshot" },
	{ "/snapshot/load", false, EP_SNAPSHOT, P, "snapshot" },
	{ "/version", false, EP_VERSION, G, "vmm_version" },
	{ "/ioreq-servers", true, EP_IOREQ, P, "ioreq_server" },
	{ "/iommu", false, EP_IOMMU, P, "iommu" },
	{ "/fs", true, EP_FS, P, "fs" },
	/* Firecracker resources wisp does not have (yet): 400, not 404,
	 * so a client learns it is the feature that is missing. */
	{ "/balloon", false, EP_UNSUPPORTED, G | P | A, "unsupported" },
	{ "/balloon/statistics", false, EP_UNSUPPORTED, G | P | A,
	  "unsupported" },
	{ "/mmds", false, EP_UNSUPPORTED, G | P | A, "unsupported" },
	{ "/mmds/config", false, EP_UNSUPPORTED, P, "unsupported" },
	{ "/cpu-config", false, EP_UNSUPPORTED, P, "unsupported" },
	{ "/serial", false, EP_UNSUPPORTED, P, "unsupported" },
	{ "/hotplug/memory", false, EP_UNSUPPORTED, G | P | A, "unsupported" },
	{ "/pmem", true, EP_UNSUPPORTED, P | A, "unsupported" },
};

#undef G
#undef P
#undef A

static const char *const method_names[M_NR] = { "get", "put", "patch" };

void api_init(struct api *a, const struct api_ops *ops, void *opaque)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	model_init(&a->m);
	a->ops = ops;
	a->opaque = opaque;
	a->metrics_fd = -1;
	a->start_ns = now_ns();
}

void api_destroy(struct api *a)
{
	model_free(&a->m);
	if (a->metrics_fd >= 0)
		close(a->metrics_fd);
	pthread_mutex_destroy(&a->lock);
}

static char *fault(const char *msg)
{
	char clean[sizeof(((struct err *)0)->msg)];
	json_t *j;
	char *s;
	size_t i;

	/* Messages quote the request's path, which need not be UTF-8 (JSON
	 * strings must be): keep printable ASCII only. */
	for (i = 0; msg[i] && i < sizeof(clean) - 1; i++)
		clean[i] = msg[i] >= 0x20 && msg[i] < 0x7f ? msg[i] : '?';
	clean[i] = 0;
	j = json_pack("{s:s}", "fault_message", clean);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

static char *dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	json_decref(j);
	return s;
}

/* Files the logger and metrics write to: existing files or FIFOs, opened
 * non-blocking so a FIFO nobody drains cannot stall the writer. */
static int open_sink(const char *what, const char *path, struct err *e)
{
	struct stat st;
	int fd = open(path,
		      O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return err_config(e, -errno, "%s: '%s': %s", what, path,
				  strerror(errno));
	if (fstat(fd, &st) || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
		close(fd);
		return err_config(e, -EINVAL,
				  "%s: '%s': not a regular file or a FIFO",
				  what, path);
	}
	return fd;
}

/* Parsed into a scratch model first: a body refused here, or a path
 * that cannot be opened, changes nothing. */
static int put_logger(struct api *a, json_t *body, struct err *e)
{
	struct log_sink sink = { .fd = -1 };
	struct model t;
	int level, ret;

	model_init(&t);
	ret = model_put_logger(&t, body, &level, e);
	if (ret)
		goto out;
	if (t.log_path) {
		sink.fd = open_sink("logger", t.log_path, e);
		if (sink.fd < 0) {
			ret = sink.fd;
			goto out;
		}
	}
	sink.show_level = t.log_show_level;
	sink.show_origin = t.log_show_origin;
	snprintf(sink.module, sizeof(sink.module), "%s", t.log_module);
	/* From here on the messages that went to stderr go to the sink. */
	log_set_sink(&sink);
	log_set_level((enum log_level)level);
	free(a->m.log_path);
	free(a->m.log_level);
	a->m.logger = true;
	a->m.log_path = t.log_path;
	a->m.log_level = t.log_level;
	t.log_path = t.log_level = NULL;
	a->m.log_show_level = t.log_show_level;
	a->m.log_show_origin = t.log_show_origin;
	memcpy(a->m.log_module, t.log_module, sizeof(a->m.log_module));
out:
	model_free(&t);
	return ret;
}

static int put_metrics(struct api *a, json_t *body, struct err *e)
{
	int fd, ret;

	if (a->metrics_fd >= 0)
		return err_config(e, -EEXIST,
				  "metrics: already initialized (to '%s')",
				  a->m.metrics_path);
	ret = model_put_metrics(&a->m, body, e);
	if (ret)
		return ret;
	fd = open_sink("metrics", a->m.metrics_path, e);
	if (fd < 0) {
		free(a->m.metrics_path);
		a->m.metrics_path = NULL;
		return fd;
	}
	a->metrics_fd = fd;
	return 0;
}

static int flush_locked(struct api *a, struct err *e)
{
	json_t *j, *per[M_NR];
	struct timespec ts;
	char *line;
	size_t n;
	ssize_t w;

	if (a->metrics_fd < 0)
		return err_config(e, -ENOENT,
				  "metrics: not initialized (PUT /metrics "
				  "first)");
	clock_gettime(CLOCK_REALTIME, &ts);
	j = json_object();
	for (int m = 0; m < M_NR; m++) {
		char key[32];

		per[m] = json_object();
		snprintf(key, sizeof(key), "%s_api_requests", method_names[m]);
		json_object_set_new(j, key, per[m]);
	}
	for (size_t r = 0; r < sizeof(routes) / sizeof(routes[0]); r++)
		for (int m = 0; m < M_NR; m++) {
			char key[64];

			if (!(routes[r].methods & (1u << m)))
				continue;
			snprintf(key, sizeof(key), "%s_count", routes[r].name);
			json_object_set_new(
				per[m], key,
				json_integer(
					(json_int_t)
						a->requests[routes[r].ep][m]));
			snprintf(key, sizeof(key), "%s_fails", routes[r].name);
			json_object_set_new(
				per[m], key,
				json_integer(
					(json_int_t)a->fails[routes[r].ep][m]));
		}
	json_object_set_new(j, "utc_timestamp_ms",
			    json_integer((json_int_t)ts.tv_sec * 1000 +
					 ts.tv_nsec / 1000000));
	json_object_set_new(
		j, "api_server",
		json_pack("{s:I, s:I}", "bad_requests",
			  (json_int_t)a->bad_requests, "uptime_ms",
			  (json_int_t)((now_ns() - a->start_ns) / 1000000)));
	if (a->ops && a->ops->metrics && a->state != API_NOT_STARTED &&
	    a->state != API_STOPPED)
		a->ops->metrics(a->opaque, j);
	line = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!line)
		return err_set(e, -ENOMEM, "metrics: out of memory");
	n = strlen(line);
	line[n] = '\n'; /* json_dumps left room for the NUL */
	w = write(a->metrics_fd, line, n + 1);
	free(line);
	if (w < 0)
		return err_set(e, -errno, "metrics: '%s': %s",
			       a->m.metrics_path, strerror(errno));
	if ((size_t)w != n + 1)
		return err_set(e, -EAGAIN, "metrics: '%s': short write",
			       a->m.metrics_path);
	return 0;
}

int api_flush_metrics(struct api *a, struct err *e)
{
	int ret;

	pthread_mutex_lock(&a->lock);
	ret = flush_locked(a, e);
	pthread_mutex_unlock(&a->lock);
	return ret;
}

static int start_locked(struct api *a, struct err *e)
{
	int ret;

	if (a->state != API_NOT_STARTED)
		return err_config(e, -EALREADY,
				  "InstanceStart: the microVM was already "
				  "started");
	ret = model_to_vm_config(&a->m, &a->cfg, e);
	if (ret)
		return ret;
	if (!a->ops || !a->ops->start)
		return err_set(e, -ENOSYS, "InstanceStart: no VMM");
	ret = a->ops->start(a->opaque, &a->cfg, e);
	if (ret)
		return ret;
	a->state = API_RUNNING;
	return 0;
}

int api_start(struct api *a, struct err *e)
{
	int ret;

	pthread_mutex_lock(&a->lock);
	ret = start_locked(a, e);
	pthread_mutex_unlock(&a->lock);
	return ret;
}

void api_set_stopped(struct api *a)
{
	pthread_mutex_lock(&a->lock);
	a->state = API_STOPPED;
	pthread_mutex_unlock(&a->lock);
}

static int do_action(struct api *a, json_t *body, struct err *e)
{
	const char *act;
	int ret = model_parse_action(body, &act, e);

	if (ret)
		return ret;
	if (!strcmp(act, "InstanceStart"))
		return start_locked(a, e);
	if (!strcmp(act, "FlushMetrics"))
		return flush_locked(a, e);
	if (!strcmp(act, "SendCtrlAltDel")) {
		if (a->state == API_NOT_STARTED)
			return err_config(e, -EINVAL, POST_BOOT_ONLY);
		if (a->state == API_STOPPED)
			return err_config(e, -EINVAL,
					  "SendCtrlAltDel: the microVM has "
					  "stopped");
		if (!a->ops->ctrl_alt_del)
			return err_config(e, -EOPNOTSUPP,
					  "SendCtrlAltDel: not supported");
		return a->ops->ctrl_alt_del(a->opaque, e);
	}
	return err_config(e, -EINVAL,
			  "actions: field 'action_type': '%s' is not "
			  "InstanceStart, SendCtrlAltDel or FlushMetrics",
			  act);
}

static int do_vm(struct api *a, json_t *body, struct err *e)
{
	bool pause;
	int ret = model_parse_vm_state(body, &pause, e);

	if (ret)
		return ret;
	if (a->state == API_NOT_STARTED)
		return err_config(e, -EINVAL, POST_BOOT_ONLY);
	if (a->state == API_STOPPED)
		return err_config(e, -EINVAL, "vm: the microVM has stopped");
	if (pause == (a->state == API_PAUSED))
		return 0;
	ret = a->ops->pause(a->opaque, pause, e);
	if (ret)
		return ret;
	a->state = pause ? API_PAUSED : API_RUNNING;
	return 0;
}

static const char *state_name(enum api_state s)
{
	switch (s) {
	case API_NOT_STARTED:
		return "Not started";
	case API_PAUSED:
		return "Paused";
	case API_STOPPED:
		return "Stopped";
	case API_RUNNING:
	default:
		return "Running";
	}
}

/* PATCH /drives/{id} or /network-interfaces/{id} on a running VM: the
 * body is checked, the device changed, and only then the model (a
 * refused PATCH changes nothing). */
static int patch_limits(struct api *a, bool disk, const char *id, json_t *body,
			struct err *e)
{
	bool rx = false, tx = false;
	int k, idx = -1, ret;

	ret = disk ? model_patch_drive(&a->m, id, body, false, &k, &rx, e) :
		     model_patch_iface(&a->m, id, body, false, &k, &rx, &tx, e);
	if (ret || (!rx && !tx))
		return ret;
	/* The started config points at the model's strings. */
	for (int i = 0; disk && i < a->cfg.nr_disks; i++)
		if (a->cfg.disks[i].path == a->m.drives[k].path)
			idx = i;
	for (int i = 0; !disk && i < a->cfg.nr_nets; i++)
		if (a->cfg.nets[i].id == a->m.ifaces[k].id)
			idx = i;
	if (idx < 0 || !a->ops || !a->ops->set_limits)
		return err_config(e, -EOPNOTSUPP,
				  "%s '%s': its rate limiter cannot be changed",
				  disk ? "drive" : "network interface", id);
	if (disk) {
		struct rl_config old = a->m.drives[k].rl;

		model_patch_drive(&a->m, id, body, true, &k, &rx, e);
		ret = a->ops->set_limits(a->opaque, true, idx,
					 &a->m.drives[k].rl, NULL, e);
		if (ret)
			a->m.drives[k].rl = old;
	} else {
		struct rl_config orx = a->m.ifaces[k].rx_rl,
				 otx = a->m.ifaces[k].tx_rl;

		model_patch_iface(&a->m, id, body, true, &k, &rx, &tx, e);
		ret = a->ops->set_limits(a->opaque, false, idx,
					 rx ? &a->m.ifaces[k].rx_rl : NULL,
					 tx ? &a->m.ifaces[k].tx_rl : NULL, e);
		if (ret) {
			a->m.ifaces[k].rx_rl = orx;
			a->m.ifaces[k].tx_rl = otx;
		}
	}
	return ret;
}

static bool pre_boot_resource(enum api_ep ep)
{
	switch (ep) {
	case EP_BOOT_SOURCE:
	case EP_MACHINE:
	case EP_ENTROPY:
	case EP_LOGGER:
	case EP_METRICS:
	case EP_VSOCK:
	case EP_IOREQ:
	case EP_IOMMU:
	case EP_FS:
		return true;
	default:
		return false;
	}
}

/* Firecracker's rules: create while Paused, load instead of
 * InstanceStart and before any boot resource is configured. */
static bool boot_configured(const struct model *m)
{
	return m->kernel || m->boot_args || m->initrd || m->nr_drives ||
	       m->nr_ifaces || m->entropy || m->vsock || m->nr_servers ||
	       m->iommu;
}

static int do_snapshot(struct api *a, const struct route *r, json_t *body,
		       struct err *e)
{
	int ret;

	if (!strcmp(r->path, "/snapshot/create")) {
		struct api_snapshot_create c;

		ret = api_parse_snapshot_create(body, &c, e);
		if (ret)
			return ret;
		if (a->state != API_PAUSED)
			return err_config(e, -EINVAL,
					  "snapshot/create: the microVM must "
					  "be paused (PATCH /vm Paused) first");
		if (!a->ops || !a->ops->snapshot_create)
			return err_config(e, -EOPNOTSUPP,
					  "snapshot/create: not supported");
		return a->ops->snapshot_create(a->opaque, &c, e);
	}
	{
		struct api_snapshot_load l;

		ret = api_parse_snapshot_load(body, &l, e);
		if (ret)
			return ret;
		if (a->state != API_NOT_STARTED)
			return err_config(e, -EINVAL,
					  "snapshot/load: loading a snapshot "
					  "is not allowed after the microVM "
					  "started");
		if (boot_configured(&a->m))
			return err_config(e, -EINVAL,
					  "snapshot/load: loading a snapshot "
					  "is not allowed after configuring "
					  "boot-specific resources");
		if (!a->ops || !a->ops->snapshot_load)
			return err_config(e, -EOPNOTSUPP,
					  "snapshot/load: not supported");
		ret = a->ops->snapshot_load(a->opaque, &l, e);
		if (ret)
			return ret;
		a->state = l.resume ? API_RUNNING : API_PAUSED;
		return 0;
	}
}

/* One request on a matched route; returns the status, *resp as for
 * api_handle. */
static int dispatch(struct api *a, const struct route *r, enum api_method m,
		    const char *id, json_t *body, char **resp, struct err *e)
{
	int ret = 0;

	if (m == M_GET) {
		json_t *j = NULL;

		switch (r->ep) {
		case EP_ROOT:
			j = json_pack("{s:s, s:s, s:s, s:s}", "id",
				      "anonymous-instance", "state",
				      state_name(a->state), "vmm_version",
				      WISP_VERSION, "app_name", "wisp");
			break;
		case EP_MACHINE:
			j = model_machine_json(&a->m);
			break;
		case EP_VM_CONFIG:
			j = model_json(&a->m);
			break;
		case EP_VERSION:
			j = json_pack("{s:s}", "firecracker_version",
				      WISP_VERSION);
			break;
		default:
			break;
		}
		if (!j) {
			err_config(e, -EOPNOTSUPP, "%s: not supported yet",
				   r->path);
			return 400;
		}
		*resp = dump(j);
		return *resp ? 200 : 500;
	}
	if (r->ep == EP_UNSUPPORTED) {
		err_config(e, -EOPNOTSUPP, "%s: not supported yet", r->path);
		return 400;
	}
	if (r->ep == EP_SNAPSHOT)
		return do_snapshot(a, r, body, e) ? 400 : 204;
	if (a->state != API_NOT_STARTED &&
	    (pre_boot_resource(r->ep) ||
	     (m == M_PUT && (r->ep == EP_DRIVES || r->ep == EP_NET)))) {
		err_config(e, -EINVAL, PRE_BOOT_ONLY);
		return 400;
	}
	switch (r->ep) {
	case EP_ACTIONS:
		ret = do_action(a, body, e);
		break;
	case EP_BOOT_SOURCE:
		ret = model_put_boot_source(&a->m, body, e);
		break;
	case EP_MACHINE:
		ret = model_put_machine(&a->m, body, m == M_PATCH, e);
		break;
	case EP_DRIVES:
		if (m == M_PUT) {
			ret = model_put_drive(&a->m, id, body, e);
		} else if (a->state == API_NOT_STARTED) {
			int k;
			bool ch;

			/* Checked like Firecracker does, then refused. */
			ret = model_patch_drive(&a->m, id, body, false, &k, &ch,
						e);
			if (ret != -EINVAL && ret != -ENOENT)
				ret = err_config(e, -EINVAL, POST_BOOT_ONLY);
		} else {
			ret = patch_limits(a, true, id, body, e);
		}
		break;
	case EP_ENTROPY:
		ret = model_put_entropy(&a->m, body, e);
		break;
	case EP_IOMMU:
		ret = model_put_iommu(&a->m, body, e);
		break;
	case EP_LOGGER:
		ret = put_logger(a, body, e);
		break;
	case EP_METRICS:
		ret = put_metrics(a, body, e);
		break;
	case EP_NET:
		if (m == M_PUT)
			ret = model_put_iface(&a->m, id, body, e);
		else if (a->state == API_NOT_STARTED)
			ret = err_config(e, -EINVAL, POST_BOOT_ONLY);
		else
			ret = patch_limits(a, false, id, body, e);
		break;
	case EP_VSOCK:
		ret = model_put_vsock(&a->m, body, e);
		break;
	case EP_VM:
		ret = do_vm(a, body, e);
		break;
	case EP_IOREQ:
		ret = model_put_server(&a->m, id, body, e);
		break;
	case EP_FS:
		ret = model_put_fs(&a->m, id, body, e);
		break;
	default:
		ret = err_config(e, -EOPNOTSUPP, "%s: not supported", r->path);
		break;
	}
	if (!ret)
		return 204;
	/* A host failure (out of memory, a failed syscall) is the server's
	 * fault: 500, as Firecracker's "default" responses. */
	return e->cls == ERR_HOST && ret == -ENOMEM ? 500 : 400;
}

static const struct route *match(const char *path, const char **id)
{
	*id = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];
		size_t n = strlen(r->path);

		if (!r->has_id) {
			if (!strcmp(path, r->path))
				return r;
			continue;
		}
		if (!strncmp(path, r->path, n) && path[n] == '/' &&
		    path[n + 1] && !strchr(path + n + 1, '/')) {
			*id = path + n + 1;
			return r;
		}
	}
	return NULL;
}

int api_handle(struct api *a, const char *method, const char *path,
	       const char *body, size_t len, char **resp)
{
	struct err e = { 0 };
	const struct route *r;
	const char *id;
	json_t *j = NULL;
	enum api_method m;
	int status;

	*resp = NULL;
	if (!strcmp(method, "GET"))
		m = M_GET;
	else if (!strcmp(method, "PUT"))
		m = M_PUT;
	else if (!strcmp(method, "PATCH"))
		m = M_PATCH;
	else
		m = M_NR;
	pthread_mutex_lock(&a->lock);
	r = match(path, &id);
	if (!r) {
		a->bad_requests++;
		err_config(&e, -ENOENT, "no resource at '%.200s'", path);
		status = 404;
		goto out;
	}
	if (m == M_NR || !(r->methods & (1u << m))) {
		a->bad_requests++;
		err_config(&e, -EINVAL, "%s: method %.16s is not allowed",
			   r->path, method);
		status = 405;
		goto out;
	}
	a->requests[r->ep][m]++;
	if (m != M_GET) {
		json_error_t jerr;

		j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES,
			       &jerr);
		if (!j) {
			a->fails[r->ep][m]++;
			err_config(&e, -EINVAL,
				   "%s: invalid JSON body (line %d, column "
				   "%d): %s",
				   r->path, jerr.line, jerr.column, jerr.text);
			status = 400;
			goto out;
		}
	}
	status = dispatch(a, r, m, id, j, resp, &e);
	if (status >= 400)
		a->fails[r->ep][m]++;
out:
	pthread_mutex_unlock(&a->lock);
	json_decref(j);
	if (status >= 400) {
		if (status == 500)
			log_warn("api: %s %.200s: %s", method, path, e.msg);
		*resp = fault(e.msg[0] ? e.msg : "internal error");
	}
	return status;
}

/* Config file sections, in the order they are applied (logger first so
 * the rest is logged where it was asked to be). */
static int apply_section(struct api *a, const char *key, json_t *v,
			 struct err *e)
{
	if (!strcmp(key, "logger"))
		return put_logger(a, v, e);
	if (!strcmp(key, "metrics"))
		return put_metrics(a, v, e);
	if (!strcmp(key, "boot-source"))
		return model_put_boot_source(&a->m, v, e);
	if (!strcmp(key, "machine-config"))
		return model_put_machine(&a->m, v, false, e);
	if (!strcmp(key, "entropy"))
		return model_put_entropy(&a->m, v, e);
	if (!strcmp(key, "vsock"))
		return model_put_vsock(&a->m, v, e);
	if (!strcmp(key, "drives") || !strcmp(key, "network-interfaces") ||
	    !strcmp(key, "ioreq-servers") || !strcmp(key, "fs")) {
		size_t i;
		json_t *el;

		if (!json_is_array(v))
			return err_config(e, -EINVAL, "'%s': expected an array",
					  key);
		json_array_foreach(v, i, el)
		{
			int ret = key[0] == 'd' ?
					  model_put_drive(&a->m, NULL, el, e) :
				  key[0] == 'n' ?
					  model_put_iface(&a->m, NULL, el, e) :
				  key[0] == 'f' ?
					  model_put_fs(&a->m, NULL, el, e) :
					  model_put_server(&a->m, NULL, el, e);

			if (ret)
				return ret;
		}
		return 0;
	}
	return err_config(e, -EINVAL,
			  "unknown or unsupported section '%s' (boot-source, "
			  "machine-config, drives, network-interfaces, vsock, "
			  "entropy, logger, metrics, ioreq-servers, fs)",
			  key);
}

int api_load_config(struct api *a, const char *text, size_t len, struct err *e)
{
	static const char *const order[] = {
		"logger",      "metrics", "machine-config",
		"boot-source", "drives",  "network-interfaces",
		"vsock",       "entropy", "ioreq-servers",
		"fs",
	};
	json_error_t jerr;
	const char *key;
	json_t *j, *v;
	int ret = 0;

	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return err_config(e, -EINVAL,
				  "invalid JSON (line %d, column %d): %s",
				  jerr.line, jerr.column, jerr.text);
	pthread_mutex_lock(&a->lock);
	if (!json_is_object(j)) {
		ret = err_config(e, -EINVAL, "expected a JSON object");
		goto out;
	}
	/* Unknown sections first: nothing is applied from a file with a
	 * typo in it. */
	json_object_foreach(j, key, v)
	{
		size_t i;

		for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
			if (!strcmp(order[i], key))
				break;
		if (i == sizeof(order) / sizeof(order[0])) {
			ret = apply_section(a, key, v, e);
			goto out;
		}
	}
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		v = json_object_get(j, order[i]);
		if (!v || json_is_null(v))
			continue;
		/* The messages name the resource ("drive 'x': ..."). */
		ret = apply_section(a, order[i], v, e);
		if (ret)
			goto out;
	}
out:
	pthread_mutex_unlock(&a->lock);
	json_decref(j);
	return ret;
}
