// SPDX-License-Identifier: MIT
/*
 * The Firecracker-style front end: wisp --api-sock PATH [--config-file
 * FILE] [--no-api]. The configuration arrives through the API (or the
 * file) and fills the same struct vm_config as "wisp run".
 *
 * Threads: the main thread waits for InstanceStart, then builds the VM
 * (vm_create) and runs it (vm_run) as "wisp run" does; the HTTP server's
 * thread serves requests throughout and hands InstanceStart to the main
 * thread; a metrics thread flushes every 60 s (WISP_METRICS_PERIOD_MS,
 * for tests). The process ends when the
 * VM does, with its exit code.
 */
#include "cli/api_main.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api/api.h"
#include "api/config_file.h"
#include "api/server.h"
#include "sandbox/seccomp.h"
#include "util/log.h"
#include "util/time.h"
#include "vmm/control.h"
#include "vmm/snapshot.h"
#include "vmm/vcpu.h"
#include "vmm/vmm.h"

#define METRICS_PERIOD_MS 60000
/* Tests only: Firecracker's API has no field for the period, and a test
 * cannot wait minutes for lines. */
#define METRICS_PERIOD_ENV "WISP_METRICS_PERIOD_MS"

struct front {
	struct api api;
	pthread_t main_thread;
	bool debug_exit;
	const char *seccomp, *seccomp_test; /* docs/sandbox.md */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* InstanceStart handed from the API thread to the main thread. */
	int start_efd;
	const struct vm_config *pending;
	const struct api_snapshot_load *pending_load; /* instead of pending */
	bool start_done;
	int start_ret;
	struct err start_err;
	struct vm *vm; /* set once vm_create succeeded */
	bool quit; /* the metrics thread stops */
	uint64_t metrics_period_ms;
	bool exiting; /* no InstanceStart will be served any more */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wisp --api-sock PATH [--config-file FILE] [options]\n"
		"       wisp --no-api --config-file FILE [options]\n"
		"\n"
		"Serve Firecracker's REST API on a unix socket created at PATH\n"
		"(mode 0600) and run the VM it configures; with --config-file,\n"
		"boot from a Firecracker JSON config file at once.\n"
		"\n"
		"  --api-sock PATH        where to create the API socket\n"
		"  --config-file FILE     configure from FILE and start the VM\n"
		"  --no-api               no API socket (needs --config-file)\n"
		"  --debug-exit           enable the test-guest exit port (0x%x)\n"
		"  --seccomp kill|log|off seccomp filters per thread: a call outside\n"
		"                         the table kills (default) or is logged\n"
		"  --seccomp-test KIND    test only: that thread kind makes a\n"
		"                         forbidden call once its filter is in\n"
		"  -v, --verbose          more diagnostics (twice: debug)\n",
		0xf4);
}

static struct vm_config with_front(struct front *f, const struct vm_config *cfg)
{
	struct vm_config c = *cfg;

	c.debug_exit = f->debug_exit;
	return c;
}

/* On the API thread (api lock held): hand the config to the main thread
 * and wait for vm_create's verdict. vm_create is wisp's own code and
 * bounded by the host; no timeout here. */
static int hand_to_main(struct front *f, const struct vm_config *cfg,
			const struct api_snapshot_load *load, struct err *e);

static int op_start(void *opaque, const struct vm_config *cfg, struct err *e)
{
	struct front *f = opaque;
	int ret;

	if (pthread_equal(pthread_self(), f->main_thread)) {
		/* --config-file: the main thread starts the VM itself. */
		struct vm_config c = with_front(f, cfg);

		ret = vm_create(&c, &f->vm, e);
		if (ret) {
			vm_destroy(f->vm);
			f->vm = NULL;
		}
		return ret;
	}
	return hand_to_main(f, cfg, NULL, e);
}

/* PUT /snapshot/load: the main thread builds the VM from the snapshot
 * as it would for InstanceStart. */
static int op_snapshot_load(void *opaque, const struct api_snapshot_load *r,
			    struct err *e)
{
	struct front *f = opaque;

	if (pthread_equal(pthread_self(), f->main_thread))
		return err_config(e, -EINVAL,
				  "snapshot/load: not from a config file");
	return hand_to_main(f, NULL, r, e);
}

static int op_snapshot_create(void *opaque, const struct api_snapshot_create *r,
			      struct err *e)
{
	struct front *f = opaque;
	struct vm_snapshot_req q = { r->diff ? VM_SNAPSHOT_DIFF :
					       VM_SNAPSHOT_FULL,
				     r->snapshot_path, r->mem_path };

	return vm_snapshot_create(f->vm, &q, e);
}

static int hand_to_main(struct front *f, const struct vm_config *cfg,
			const struct api_snapshot_load *load, struct err *e)
{
	uint64_t one = 1;
	int ret;

	pthread_mutex_lock(&f->lock);
	if (f->exiting) {
		pthread_mutex_unlock(&f->lock);
		return err_set(e, -ECANCELED, "InstanceStart: wisp is exiting");
	}
	f->pending = cfg;
	f->pending_load = load;
	f->start_done = false;
	if (write(f->start_efd, &one, sizeof(one)) != sizeof(one)) {
		pthread_mutex_unlock(&f->lock);
		return err_set(e, -errno, "InstanceStart: eventfd: %s",
			       strerror(errno));
	}
	while (!f->start_done)
		pthread_cond_wait(&f->cond, &f->lock);
	ret = f->start_ret;
	if (ret)
		*e = f->start_err;
	pthread_mutex_unlock(&f->lock);
	return ret;
}

static int op_pause(void *opaque, bool pause, struct err *e)
{
	struct front *f = opaque;

	if (!pause) {
		vm_resume(f->vm);
		return 0;
	}
	return vm_pause(f->vm, e);
}

static json_t *latency_json(const uint64_t *buckets)
{
	static const uint64_t bound_us[] = BLK_LAT_BOUNDS_US;
	json_t *h = json_object();
	char key[32];

	for (int k = 0; k < BLK_LAT_BUCKETS; k++) {
		if (k < BLK_LAT_BUCKETS - 1)
			snprintf(key, sizeof(key), "le_%llu",
				 (unsigned long long)bound_us[k]);
		else
			snprintf(key, sizeof(key), "gt_%llu",
				 (unsigned long long)bound_us[k - 1]);
		json_object_set_new(h, key,
				    json_integer((json_int_t)buckets[k]));
	}
	return h;
}

static json_t *blk_json(const struct blk_stats *b)
{
	json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			      "read_count", (json_int_t)b->read_count,
			      "read_bytes", (json_int_t)b->read_bytes,
			      "write_count", (json_int_t)b->write_count,
			      "write_bytes", (json_int_t)b->write_bytes,
			      "flush_count", (json_int_t)b->flush_count,
			      "execute_fails", (json_int_t)b->execute_fails,
			      "invalid_reqs_count",
			      (json_int_t)b->invalid_reqs_count);

	if (j)
		json_object_set_new(j, "latency_us",
				    latency_json(b->latency_us));
	return j;
}

/* Firecracker's names where the meaning is the same: rx_* is what the
 * guest received (read from the tap), tx_* what it sent. no_rx_avail_buffer
 * counts frames held for want of receive buffers; rx_dropped_frames
 * (frames the guest's buffers could not take, or the tap's malformed
 * ones) is wisp's own. */
static json_t *net_json(const struct net_stats *n)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "rx_bytes_count", (json_int_t)n->rx_bytes,
			 "rx_packets_count", (json_int_t)n->rx_frames,
			 "rx_dropped_frames", (json_int_t)n->rx_dropped,
			 "no_rx_avail_buffer", (json_int_t)n->rx_held,
			 "rx_rate_limiter_throttled",
			 (json_int_t)n->rx_throttled, "tx_bytes_count",
			 (json_int_t)n->tx_bytes, "tx_packets_count",
			 (json_int_t)n->tx_frames, "tx_malformed_frames",
			 (json_int_t)n->tx_dropped, "tap_write_fails",
			 (json_int_t)n->tx_errors, "tx_rate_limiter_throttled",
			 (json_int_t)n->tx_throttled);
}

/* Firecracker's layout: "block" sums every drive, "block_<drive_id>"
 * is one drive, "net" and "net_<iface_id>" the same for the network
 * interfaces (a vhost=on one is in neither: the kernel moves its frames);
 * "entropy" as Firecracker's; "vconsole" and "ioreq_servers" are wisp's
 * own. */
static void devices_metrics(const struct vm_stats *s, json_t *obj)
{
	struct blk_stats sum = { 0 };
	struct net_stats nsum = { 0 };
	int nets = 0;

	for (int i = 0; i < s->nr_disks; i++) {
		const struct blk_stats *b = &s->disks[i].st;
		char key[64];

		sum.read_count += b->read_count;
		sum.read_bytes += b->read_bytes;
		sum.write_count += b->write_count;
		sum.write_bytes += b->write_bytes;
		sum.flush_count += b->flush_count;
		sum.execute_fails += b->execute_fails;
		sum.invalid_reqs_count += b->invalid_reqs_count;
		for (int k = 0; k < BLK_LAT_BUCKETS; k++)
			sum.latency_us[k] += b->latency_us[k];
		snprintf(key, sizeof(key), "block_%s", s->disks[i].id);
		json_object_set_new(obj, key, blk_json(b));
	}
	if (s->nr_disks)
		json_object_set_new(obj, "block", blk_json(&sum));
	for (int i = 0; i < s->nr_nets; i++) {
		const struct net_stats *n = &s->nets[i].st;
		char key[64];

		if (s->nets[i].vhost)
			continue;
		nsum.rx_bytes += n->rx_bytes;
		nsum.rx_frames += n->rx_frames;
		nsum.rx_dropped += n->rx_dropped;
		nsum.rx_held += n->rx_held;
		nsum.rx_throttled += n->rx_throttled;
		nsum.tx_bytes += n->tx_bytes;
		nsum.tx_frames += n->tx_frames;
		nsum.tx_dropped += n->tx_dropped;
		nsum.tx_errors += n->tx_errors;
		nsum.tx_throttled += n->tx_throttled;
		snprintf(key, sizeof(key), "net_%s", s->nets[i].id);
		json_object_set_new(obj, key, net_json(n));
		nets++;
	}
	if (nets)
		json_object_set_new(obj, "net", net_json(&nsum));
	if (s->has_rng)
		json_object_set_new(
			obj, "entropy",
			json_pack("{s:I, s:I, s:I}", "entropy_bytes",
				  (json_int_t)s->rng.entropy_bytes,
				  "entropy_event_count",
				  (json_int_t)s->rng.entropy_event_count,
				  "host_rng_fails",
				  (json_int_t)s->rng.host_rng_fails));
	if (s->has_vconsole)
		json_object_set_new(
			obj, "vconsole",
			json_pack("{s:I, s:I, s:I}", "in_bytes",
				  (json_int_t)s->vconsole.in_bytes, "out_bytes",
				  (json_int_t)s->vconsole.out_bytes,
				  "out_dropped_bytes",
				  (json_int_t)s->vconsole.out_dropped_bytes));
	if (s->nr_servers) {
		json_t *a = json_array();

		for (int i = 0; i < s->nr_servers; i++) {
			const struct ioreq_stats *st = &s->servers[i].st;

			json_array_append_new(
				a,
				json_pack("{s:s, s:I, s:I, s:I, s:I}", "socket",
					  s->servers[i].socket, "round_trips",
					  (json_int_t)st->sync, "posted",
					  (json_int_t)st->posted, "timeouts",
					  (json_int_t)st->timeouts, "ring_full",
					  (json_int_t)st->ring_full));
		}
		json_object_set_new(obj, "ioreq_servers", a);
	}
}

static void op_metrics(void *opaque, void *obj)
{
	static const char *const kinds[] = VM_EXIT_KIND_NAMES;
	struct front *f = opaque;
	struct vm_stats *s = malloc(sizeof(*s));
	json_t *vcpus;

	if (!s)
		return;
	vm_get_stats(f->vm, s);
	json_object_set_new(
		obj, "vmm",
		json_pack("{s:i, s:I, s:I}", "vcpus", s->vcpus, "paused_ms",
			  (json_int_t)(s->paused_ns / 1000000), "first_exit_ns",
			  (json_int_t)s->first_exit_ns));
	/* Firecracker's "vcpu" section uses exit_* names too, summed over
	 * vCPUs; wisp adds the per-vCPU arrays. */
	vcpus = json_object();
	for (int k = 0; k < VM_EXIT_KINDS; k++) {
		json_t *per = json_array();
		uint64_t sum = 0;
		char key[48];

		for (int i = 0; i < s->vcpus && i < VM_STATS_MAX_VCPUS; i++) {
			sum += s->exits[i][k];
			json_array_append_new(
				per, json_integer((json_int_t)s->exits[i][k]));
		}
		json_object_set_new(vcpus, kinds[k],
				    json_integer((json_int_t)sum));
		snprintf(key, sizeof(key), "%s_per_vcpu", kinds[k]);
		json_object_set_new(vcpus, key, per);
	}
	json_object_set_new(obj, "vcpu", vcpus);
	devices_metrics(s, obj);
	free(s);
}

static int op_ctrl_alt_del(void *opaque, struct err *e)
{
	struct front *f = opaque;

	return vm_send_ctrl_alt_del(f->vm, e);
}

/* On the API thread: the VM runs (PATCH is refused before start). */
static int op_set_limits(void *opaque, bool disk, int index,
			 const struct rl_config *rl, const struct rl_config *tx,
			 struct err *e)
{
	struct front *f = opaque;

	return disk ? vm_set_disk_limits(f->vm, index, rl, e) :
		      vm_set_net_limits(f->vm, index, rl, tx, e);
}

static const struct api_ops ops = {
	.start = op_start,
	.pause = op_pause,
	.ctrl_alt_del = op_ctrl_alt_del,
	.metrics = op_metrics,
	.snapshot_create = op_snapshot_create,
	.snapshot_load = op_snapshot_load,
	.set_limits = op_set_limits,
};

static void *metrics_main(void *arg)
{
	struct front *f = arg;
	struct timespec ts;

	sb_seccomp_enter(SB_METRICS);
	pthread_mutex_lock(&f->lock);
	while (!f->quit) {
		mono_deadline_ms(&ts, f->metrics_period_ms);
		if (pthread_cond_timedwait(&f->cond, &f->lock, &ts) !=
			    ETIMEDOUT ||
		    f->quit)
			continue;
		pthread_mutex_unlock(&f->lock);
		{
			struct err e = { 0 };
			int ret = api_flush_metrics(&f->api, &e);

			/* -ENOENT: no metrics file configured. */
			if (ret && ret != -ENOENT)
				log_warn("%s", e.msg);
		}
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* 0, or -EINVAL with a message when the test-only variable is set to
 * something other than 1..3600000. */
static int metrics_period(uint64_t *ms)
{
	const char *v = getenv(METRICS_PERIOD_ENV);
	unsigned long long n;
	char *end;

	*ms = METRICS_PERIOD_MS;
	if (!v)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || n < 1 || n > 3600000) {
		fprintf(stderr,
			"wisp: %s='%s': not a period in milliseconds "
			"(1..3600000)\n",
			METRICS_PERIOD_ENV, v);
		return -EINVAL;
	}
	*ms = n;
	return 0;
}

static int open_sigfd(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	return signalfd(-1, &s, SFD_CLOEXEC);
}

/* The main thread before InstanceStart: waits for it or a signal.
 * Returns 0 once the VM exists (f->vm), else the process exit code. */
static int wait_for_start(struct front *f)
{
	for (;;) {
		struct pollfd p[2];
		const struct api_snapshot_load *load;
		struct vm_config c;
		struct err e = { 0 };
		uint64_t v;
		int sfd = open_sigfd(), ret;

		if (sfd < 0) {
			fprintf(stderr, "wisp: signalfd: %s\n",
				strerror(errno));
			return WISP_EXIT_HOST;
		}
		p[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = f->start_efd, .events = POLLIN };
		do
			ret = poll(p, 2, -1);
		while (ret < 0 && errno == EINTR);
		if (ret < 0 || (p[0].revents & POLLIN)) {
			struct signalfd_siginfo si = { 0 };
			ssize_t n = read(sfd, &si, sizeof(si));

			close(sfd);
			if (ret < 0 || n != sizeof(si))
				return WISP_EXIT_HOST;
			log_info("signal %u before InstanceStart: exiting",
				 si.ssi_signo);
			return WISP_EXIT_SIGNAL_BASE + (int)si.ssi_signo;
		}
		/* The VM's own loop takes the signals from here on. */
		close(sfd);
		if (read(f->start_efd, &v, sizeof(v)) != sizeof(v))
			continue;
		pthread_mutex_lock(&f->lock);
		load = f->pending_load;
		if (!load)
			c = with_front(f, f->pending);
		pthread_mutex_unlock(&f->lock);
		if (load) {
			struct vm_restore_req rq = {
				load->snapshot_path,
				load->mem_path,
				load->uffd ? VM_MEM_UFFD : VM_MEM_FILE,
				!load->resume,
				NULL,
				load->enable_diff
			};

			ret = vm_restore(&rq, &f->vm, &e);
		} else {
			ret = vm_create(&c, &f->vm, &e);
		}
		if (ret) {
			vm_destroy(f->vm);
			f->vm = NULL;
		}
		pthread_mutex_lock(&f->lock);
		f->start_ret = ret;
		f->start_err = e;
		f->start_done = true;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
		if (!ret)
			return 0;
	}
}

static int parse(int argc, char **argv, const char **sock, const char **file,
		 bool *no_api, struct front *f)
{
	enum {
		OPT_SOCK = 256,
		OPT_FILE,
		OPT_NO_API,
		OPT_DEBUG_EXIT,
		OPT_SECCOMP,
		OPT_SECCOMP_TEST,
	};
	static const struct option opts[] = {
		{ "api-sock", required_argument, NULL, OPT_SOCK },
		{ "config-file", required_argument, NULL, OPT_FILE },
		{ "no-api", no_argument, NULL, OPT_NO_API },
		{ "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
		{ "seccomp", required_argument, NULL, OPT_SECCOMP },
		{ "seccomp-test", required_argument, NULL, OPT_SECCOMP_TEST },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int verbosity = 0, c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_SOCK:
			*sock = optarg;
			break;
		case OPT_FILE:
			*file = optarg;
			break;
		case OPT_NO_API:
			*no_api = true;
			break;
		case OPT_DEBUG_EXIT:
			f->debug_exit = true;
			break;
		case OPT_SECCOMP:
			f->seccomp = optarg;
			break;
		case OPT_SECCOMP_TEST:
			f->seccomp_test = optarg;
			break;
		case 'v':
			verbosity++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			fprintf(stderr, "wisp: %s: missing argument\n",
				argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr,
				"wisp: unknown option '%s' (see wisp --api-sock --help)\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wisp: unexpected argument '%s'\n",
			argv[optind]);
		return -EINVAL;
	}
	if (*no_api && *sock) {
		fprintf(stderr,
			"wisp: --no-api and --api-sock exclude each other\n");
		return -EINVAL;
	}
	if (*no_api && !*file) {
		fprintf(stderr, "wisp: --no-api needs --config-file FILE\n");
		return -EINVAL;
	}
	if (!*no_api && !*sock) {
		fprintf(stderr,
			"wisp: --api-sock PATH is required (or --no-api with --config-file)\n");
		return -EINVAL;
	}
	log_set_level(verbosity >= 2 ? LOG_DEBUG :
		      verbosity == 1 ? LOG_INFO :
				       LOG_WARN);
	return 0;
}

int api_main(int argc, char **argv)
{
	const char *sock = NULL, *file = NULL;
	struct api_server *srv = NULL;
	pthread_t metrics_thread;
	bool no_api = false, metrics_up = false;
	struct front *f = calloc(1, sizeof(*f));
	struct err e = { 0 };
	sigset_t block;
	int code;

	if (!f) {
		fprintf(stderr, "wisp: out of memory\n");
		return WISP_EXIT_HOST;
	}
	f->start_efd = -1;
	if (parse(argc, argv, &sock, &file, &no_api, f) ||
	    metrics_period(&f->metrics_period_ms)) {
		free(f);
		return WISP_EXIT_CONFIG;
	}
	f->main_thread = pthread_self();
	pthread_mutex_init(&f->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&f->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	api_init(&f->api, &ops, f);
	/* Before any thread exists, so every thread inherits the mask:
	 * signals reach the main thread's signalfd (and later the VM's),
	 * never the default action on the HTTP thread. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1); /* pending until the VM's loop dumps */
	sigaddset(&block, SIG_KICK);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Before the first thread: each one installs its kind's filter. */
	if (sb_seccomp_setup(f->seccomp, f->seccomp_test, SB_WISP_KINDS, &e)) {
		fprintf(stderr, "wisp: %s\n", e.msg);
		code = vm_exit_code(&e);
		goto out;
	}
	/* jansson seeds its hash from /dev/urandom on first use, which the
	 * metrics thread's table does not allow: now, before any thread. */
	json_object_seed(0);
	code = WISP_EXIT_HOST;
	f->start_efd = eventfd(0, EFD_CLOEXEC);
	if (f->start_efd < 0) {
		fprintf(stderr, "wisp: eventfd: %s\n", strerror(errno));
		goto out;
	}
	if (pthread_create(&metrics_thread, NULL, metrics_main, f)) {
		fprintf(stderr, "wisp: cannot start the metrics thread\n");
		goto out;
	}
	metrics_up = true;
	if (!no_api && api_server_start(&srv, sock, &f->api, &e)) {
		fprintf(stderr, "wisp: %s\n", e.msg);
		code = vm_exit_code(&e);
		goto out;
	}
	if (srv)
		log_debug("api: accepting on '%s' at CLOCK_MONOTONIC %llu ns",
			  sock, (unsigned long long)now_ns());
	if (file) {
		/* Through the log: the file's logger section may have
		 * set a sink already. */
		if (api_config_file_load(&f->api, file, &e) ||
		    api_start(&f->api, &e)) {
			log_error("%s", e.msg);
			code = vm_exit_code(&e);
			goto out;
		}
	} else {
		code = wait_for_start(f);
		if (code)
			goto out;
	}
	code = vm_run(f->vm);
	/* As Firecracker, a last line when the VM ends: what the guest did
	 * since the last flush is not lost (-ENOENT: no metrics file). */
	{
		struct err me = { 0 };
		int ret = api_flush_metrics(&f->api, &me);

		if (ret && ret != -ENOENT)
			log_warn("%s", me.msg);
	}
	/* No request may use the VM from here on: api_set_stopped waits
	 * for one in flight (a pause is bounded). */
	api_set_stopped(&f->api);
	vm_destroy(f->vm);
	f->vm = NULL;
out:
	/* An InstanceStart that raced with a signal must not wait for a
	 * main thread that is leaving (the server's stop waits for it). */
	pthread_mutex_lock(&f->lock);
	f->exiting = true;
	if (!f->start_done && f->pending) {
		f->start_ret = err_set(&f->start_err, -ECANCELED,
				       "InstanceStart: wisp is exiting");
		f->start_done = true;
	}
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	api_server_stop(srv);
	if (metrics_up) {
		pthread_mutex_lock(&f->lock);
		f->quit = true;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
		pthread_join(metrics_thread, NULL);
	}
	if (f->start_efd >= 0)
		close(f->start_efd);
	api_destroy(&f->api);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return code;
}
