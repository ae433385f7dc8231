// SPDX-License-Identifier: MIT
/*
 * wisp-blk, wisp-rng, wisp-console, wisp-net: wisp's virtio devices as IOREQ
 * servers (docs/ioreq.md). The device and the virtio-mmio transport are
 * the same code that runs inside wisp; only the glue differs: doorbells
 * are registered with the VMM over the protocol, the interrupt eventfd
 * comes from the VMM, and guest accesses arrive as IOREQ requests.
 *
 *   wisp-blk --socket PATH --disk path=FILE[,readonly=on|off][,id=NAME]
 *            [,direct=on|off][,engine=sync|uring]
 *   wisp-rng --socket PATH [--rate BYTES]
 *   wisp-console --socket PATH          (the guest's hvc0 on this stdio)
 *   wisp-net --socket PATH --net tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,id=NAME]
 * --persist serves one VMM after another instead of exiting when the VMM
 * goes away. --jail SPEC (what wisp adds when it spawns a server, see
 * sandbox/jail.h) confines the server once its socket is bound and its
 * disk or tap is open, before the first VMM connects (docs/jail.md). With --vhost-user PATH instead of --socket, wisp-blk and
 * wisp-rng serve the same device as a vhost-user back-end
 * (servers/vhu_back.c) to QEMU or wisp's --vhost-user-blk.
 *
 * Exit: 0 when the VMM said BYE or hung up (or SIGTERM stopped serving),
 * 1 with a message on stderr when the VMM broke the protocol, stopped
 * answering, or (SIGBUS) shrank shared memory under the server. At the
 * end of each connection one line says what was served, including how
 * many QueueNotify writes reached the window instead of a doorbell lane.
 * SIGUSR1 logs the device's state (its queues on both sides, interrupt
 * status, I/O thread) to stderr within half a second, as it does in wisp.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "config/devopts.h"
#include "devices/blk/blk.h"
#include "devices/console/console.h"
#include "devices/net/net.h"
#include "devices/rng/rng.h"
#include "ioreq/server.h"
#include "sandbox/jail.h"
#include "sandbox/seccomp.h"
#include "servers/vhu_back.h"
#include "util/efd.h"
#include "util/time.h"
#include "virtio/dump.h"
#include "virtio/mmio.h"

enum kind { KIND_BLK, KIND_RNG, KIND_CONSOLE, KIND_NET };

struct opts {
	enum kind kind;
	const char *socket;
	const char *vhost_user; /* serve vhost-user here instead */
	struct blk_config blk;
	char *disk_arg;
	uint64_t rate;
	struct net_config net;
	bool persist;
	bool jailed;
	struct jail_server jail;
	int disk_fd; /* jailed wisp-blk: the image, opened before the jail */
	int tap_fd; /* jailed wisp-net: the tap, opened before the jail */
	const char *seccomp; /* --seccomp; else $WISP_SECCOMP, else kill */
};

/* The connection being served, for the SIGTERM handler. */
static struct wisp_ioreq_server *volatile current;
static volatile sig_atomic_t terminated;
/* SIGUSR1 came: the watcher thread dumps the device at its next tick. */
static volatile sig_atomic_t dump_wanted;
/* QueueNotify writes that came as window writes: a doorbell lane that
 * works keeps this at 0 (the kick goes to the eventfd in the kernel). */
static uint64_t notify_in_window;

static void on_term(int sig)
{
	terminated = 1;
	if (current)
		wisp_ioreq_stop(current);
	else
		_exit(128 + sig); /* waiting for a VMM: nothing to finish */
}

static void on_usr1(int sig)
{
	(void)sig;
	dump_wanted = 1;
}

/* Only a VMM shrinking guest RAM or the shared page (unsealed memfds)
 * can make an access fault; say so instead of dying silently. */
static void on_sigbus(int sig)
{
	static const char m[] = "wisp-dev: SIGBUS: shared memory shrank under "
				"the server (a broken or hostile VMM)\n";
	ssize_t n = write(STDERR_FILENO, m, sizeof(m) - 1);

	(void)n;
	_exit(1);
}

static void window_read(void *opaque, int cpu, uint64_t off, uint8_t *data,
			uint32_t len)
{
	virtio_mmio_bus_ops.read(opaque, cpu, off, data, len);
}

static void window_write(void *opaque, int cpu, uint64_t off,
			 const uint8_t *data, uint32_t len)
{
	if (off == VIRTIO_MMIO_QUEUE_NOTIFY)
		notify_in_window++;
	virtio_mmio_bus_ops.write(opaque, cpu, off, data, len);
}

static const struct bus_ops window_ops = { window_read, window_write };

/* The doorbell registry's backend in a server process: a lane becomes
 * an ADD_DOORBELL to the VMM (which puts it into its own registry). */
static int srv_lane_assign(void *opaque, uint64_t addr, uint32_t len,
			   uint32_t flags, uint64_t datamatch, int efd)
{
	struct err e;
	int ret = wisp_ioreq_add_doorbell(opaque, addr, len,
					  flags & IOEVR_F_DATAMATCH, datamatch,
					  efd, &e);

	if (ret)
		fprintf(stderr, "%s\n", e.msg);
	return ret;
}

/* The transport made its own interrupt eventfd; point that fd number at
 * the VMM's irqfd-bound eventfd instead. */
static int srv_add_irqfd(void *opaque, int efd, unsigned int gsi)
{
	struct wisp_ioreq_server *s = opaque;

	return dup3(s->irq_efd, efd, O_CLOEXEC) < 0 ? -errno : 0;
}

/* The lost-interrupt recovery wisp runs for its own devices
 * (virtio_mmio_irq_check, from its watchdog's tick), run here for the
 * device this process serves: the nested rig's L1 was seen to lose an
 * edge, and a driver that waits for an interrupt then waits for ever
 * (with EVENT_IDX no later completion signals again). Checked every
 * IRQ_WATCH_TICK_MS; a cause set IRQ_WATCH_LIMIT_MS with no read of
 * InterruptStatus is signalled once more. Not while the VMM holds the
 * device (a held device is being saved or remapped). */
#define IRQ_WATCH_TICK_MS 500
#define IRQ_WATCH_LIMIT_MS 1000

struct irq_watcher {
	struct virtio_mmio *t;
	const char *prog;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	/* Under lock: holds (pause_dev, state_save) not yet resumed; a
	 * remap may come inside a save. */
	int held;
	uint64_t reraised; /* under lock */
};

static void *irq_watch(void *arg)
{
	struct irq_watcher *iw = arg;
	struct virtio_irq_watch w = { 0 };
	struct timespec ts;

	pthread_mutex_lock(&iw->lock);
	while (!iw->stop) {
		mono_deadline_ms(&ts, IRQ_WATCH_TICK_MS);
		pthread_cond_timedwait(&iw->cond, &iw->lock, &ts);
		if (iw->stop)
			break;
		if (dump_wanted) {
			/* the dump takes the device lock (bounded): not
			 * under ours, which a hold takes first */
			dump_wanted = 0;
			pthread_mutex_unlock(&iw->lock);
			virtio_mmio_dump(iw->t, LOG_WARN);
			pthread_mutex_lock(&iw->lock);
			if (iw->stop)
				break;
		}
		if (iw->held > 0) {
			w.since_ns = 0;
			continue;
		}
		if (!virtio_mmio_irq_check(iw->t, &w, now_ns(),
					   IRQ_WATCH_LIMIT_MS * 1000000ULL))
			continue;
		iw->reraised = w.reraised;
		if (w.reraised == 1)
			fprintf(stderr,
				"%s: the guest has not read the interrupt it "
				"was sent %d ms ago; raised it again (said "
				"once)\n",
				iw->prog, IRQ_WATCH_LIMIT_MS);
	}
	pthread_mutex_unlock(&iw->lock);
	return NULL;
}

static struct irq_watcher watcher = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};
static pthread_once_t watcher_once = PTHREAD_ONCE_INIT;

/* The tick's timeout on CLOCK_MONOTONIC: a wall-clock step must not
 * stretch it. */
static void watcher_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&watcher.cond, &a);
	pthread_condattr_destroy(&a);
}

static void watcher_stop(pthread_t th)
{
	pthread_mutex_lock(&watcher.lock);
	watcher.stop = true;
	pthread_cond_signal(&watcher.cond);
	pthread_mutex_unlock(&watcher.lock);
	pthread_join(th, NULL);
}

static void watcher_hold(bool held)
{
	pthread_mutex_lock(&watcher.lock);
	watcher.held += held ? 1 : -1;
	pthread_mutex_unlock(&watcher.lock);
}

static void pause_dev(void *opaque)
{
	struct virtio_dev *d = ((struct virtio_mmio *)opaque)->dev;

	watcher_hold(true);
	pthread_mutex_lock(&d->lock);
	/* The disk's requests in flight point into the mapping about to
	 * go. */
	if (d->device_id == VIRTIO_ID_BLOCK)
		blk_quiesce(d);
}

static void resume_dev(void *opaque)
{
	pthread_mutex_unlock(&((struct virtio_mmio *)opaque)->dev->lock);
	watcher_hold(false);
}

/* wisp-console's input thread writes the guest's receive queue itself,
 * outside the I/O thread a hold parks: a held device must not get any,
 * so the hold takes this lock until the resume. */
static pthread_mutex_t pump_lock = PTHREAD_MUTEX_INITIALIZER;

/* As long as wisp waits for its own devices' I/O threads to park. */
#define STATE_PARK_MS 5000

/* STATE_SAVE: the same state an in-process device puts in a snapshot
 * (virtio_mmio_save), taken as wisp takes it: the I/O thread parked
 * after the device's quiesce finished the requests in flight (a disk's
 * reads and writes are done and in the used ring, in guest RAM, which
 * the snapshot's memory file then has). It stays parked until
 * STATE_RESUME: a request taken after the state would be in neither. */
static int state_save(void *opaque, uint8_t *buf, size_t cap, struct err *e)
{
	struct virtio_mmio *t = opaque;
	struct ser_w w = { 0 };
	int ret;

	watcher_hold(true);
	pthread_mutex_lock(&pump_lock);
	ret = virtio_iothread_pause(&t->io, STATE_PARK_MS);
	if (ret) {
		pthread_mutex_unlock(&pump_lock);
		watcher_hold(false);
		return err_set(e, ret,
			       "%s: the I/O thread did not park within %d ms",
			       t->dev->name, STATE_PARK_MS);
	}
	virtio_mmio_save(t, &w);
	if (w.fail || w.len > cap)
		ret = err_set(e, w.fail ? -ENOMEM : -E2BIG,
			      "%s: device state: %s", t->dev->name,
			      w.fail ? "out of memory" : "too large");
	else
		memcpy(buf, w.p, w.len);
	free(w.p);
	if (ret) {
		virtio_iothread_resume(&t->io);
		pthread_mutex_unlock(&pump_lock);
		watcher_hold(false);
		return ret;
	}
	return (int)w.len;
}

static void state_resume(void *opaque)
{
	virtio_iothread_resume(&((struct virtio_mmio *)opaque)->io);
	pthread_mutex_unlock(&pump_lock);
	watcher_hold(false);
}

/* STATE_LOAD: virtio_mmio_load checks the whole state (device ID, queue
 * count and sizes, rings inside guest RAM or the IOMMU's mappings)
 * before it changes anything, with the I/O thread parked; then every
 * live queue is looked at once, as wisp does for its own devices. */
static int state_load(void *opaque, const uint8_t *buf, size_t len,
		      struct err *e)
{
	struct virtio_mmio *t = opaque;
	int ret = virtio_iothread_pause(&t->io, STATE_PARK_MS);

	if (ret)
		return err_set(e, ret,
			       "%s: the I/O thread did not park within %d ms",
			       t->dev->name, STATE_PARK_MS);
	ret = virtio_mmio_load(t, buf, len, e);
	virtio_iothread_resume(&t->io);
	if (ret)
		return ret;
	virtio_mmio_resignal(t);
	/* An interrupt the driver had not acknowledged: the edge that
	 * raised it went through KVM's irqfd asynchronously and may have
	 * missed the snapshot's interrupt controller state. Once more is
	 * harmless (the driver reads InterruptStatus and finds its work). */
	if (atomic_load(t->isr)) {
		int r = efd_signal(t->irq_efd);

		if (r && r != -EAGAIN)
			fprintf(stderr, "%s: interrupt after restore: %s\n",
				t->dev->name, strerror(-r));
	}
	return 0;
}

/* With IOREQ_F_SHARED_ISR (asked for with IOREQ_F_ALL) wisp serves the
 * guest's InterruptStatus reads and ACKs from the shared page, so an
 * interrupt costs the guest no round trip to this process. */
static void share_isr(struct wisp_ioreq_server *s, struct virtio_mmio *t)
{
	uint32_t *reads, *isr = wisp_ioreq_shared_isr(s, &reads);

	if (isr)
		virtio_mmio_share_isr(t, (atomic_uint *)isr,
				      (atomic_uint *)reads);
}

/* At the end, where a console's bytes went. Its queues are SIGUSR1's
 * (virtio_mmio_dump): by now the guest's shutdown has reset them. */
static void report_console(struct virtio_mmio *t, const char *prog)
{
	struct vconsole_stats st;

	vconsole_get_stats(t->dev, &st);
	fprintf(stderr,
		"%s: input: %llu bytes into the guest's buffers; output: %llu bytes, %llu dropped\n",
		prog, (unsigned long long)st.in_bytes,
		(unsigned long long)st.out_bytes,
		(unsigned long long)st.out_dropped_bytes);
}

static void *stdin_pump(void *arg)
{
	struct virtio_dev *d = arg;
	uint8_t buf[256];
	ssize_t n;

	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0) {
		size_t off = 0;

		while (off < (size_t)n) {
			size_t k;

			pthread_mutex_lock(&pump_lock);
			k = vconsole_push_input(d, buf + off, (size_t)n - off);
			pthread_mutex_unlock(&pump_lock);

			off += k;
			if (!k)
				usleep(10000);
		}
	}
	return NULL;
}

/* The same parser as wisp run's --disk: one meaning for every front end. */
static int parse_disk(char *arg, struct blk_config *b, struct err *e)
{
	struct devopts_disk d;
	int ret = devopts_parse_disk("--disk", arg, &d, e);

	if (ret)
		return ret;
	*b = (struct blk_config){
		.path = d.path,
		.readonly = d.readonly,
		.id = d.id,
		.direct = d.direct,
		.engine = (enum blk_engine_kind)d.engine,
		.rl = d.rl,
	};
	return 0;
}

static int serve_one(const struct opts *o, int lfd, const char *prog)
{
	struct wisp_ioreq_server *s = NULL;
	struct virtio_mmio *t = NULL;
	struct virtio_dev *d = NULL;
	struct ioeventfd_registry lanes;
	struct virtq_dma dma;
	bool lanes_ok = false, watching = false;
	pthread_t pump, watch_thread;
	struct err e = { 0 };
	int ret;

	ret = wisp_ioreq_accept(lfd, prog, IOREQ_F_ALL, &s, &e);
	if (ret)
		goto out;
	current = s;
	notify_in_window = 0;
	switch (o->kind) {
	case KIND_BLK:
		ret = blk_create_fd(&o->blk, o->disk_fd, &s->mem, &d, &e);
		break;
	case KIND_RNG: {
		struct rng_config rc = { o->rate };

		ret = rng_create(&rc, &s->mem, &d, &e);
		break;
	}
	case KIND_CONSOLE:
		ret = vconsole_create(STDOUT_FILENO, &s->mem, &d, &e);
		break;
	case KIND_NET:
		if (o->tap_fd < 0) {
			ret = net_create(&o->net, &s->mem, &d, &e);
			break;
		}
		ret = fcntl(o->tap_fd, F_DUPFD_CLOEXEC, 0);
		if (ret < 0) {
			ret = -errno;
			snprintf(e.msg, sizeof(e.msg), "tap '%s': dup: %s",
				 o->net.tap, strerror(errno));
			break;
		}
		ret = net_create_fd(&o->net, ret, true, &s->mem, &d, &e);
		break;
	}
	if (ret)
		goto out;
	/* Behind the VMM's IOMMU: the same device code, translating every
	 * address through the table the VMM keeps in this process. */
	dma = (struct virtq_dma){ wisp_ioreq_translate, wisp_ioreq_dma_begin,
				  wisp_ioreq_dma_end, s };
	if (wisp_ioreq_iommu(s)) {
		ret = virtio_dev_set_dma(d, &dma);
		if (ret) {
			snprintf(e.msg, sizeof(e.msg), "IOMMU: %s",
				 strerror(-ret));
			goto out;
		}
	}
	{
		const struct ioevr_host host = { srv_lane_assign, NULL, s };
		const struct virtio_irq_host irq = { srv_add_irqfd, NULL, s,
						     true };

		ret = ioevr_init(&lanes, &host);
		if (ret) {
			snprintf(e.msg, sizeof(e.msg), "doorbells: %s",
				 strerror(-ret));
			goto out;
		}
		lanes_ok = true;
		ret = virtio_mmio_create(d, s->welcome.window_base,
					 s->welcome.gsi, &lanes, &irq, &t, &e);
	}
	if (t)
		d = NULL; /* owned by the transport now */
	if (ret)
		goto out;
	share_isr(s, t);
	ret = wisp_ioreq_map_range(s, s->welcome.window_base, VIRTIO_MMIO_SIZE,
				   IOREQ_RANGE_SYNC, &window_ops, t, &e);
	if (ret)
		goto out;
	s->pause = pause_dev;
	s->resume = resume_dev;
	s->state_save = state_save;
	s->state_resume = state_resume;
	s->state_load = state_load;
	s->hook_opaque = t;
	if (o->kind == KIND_CONSOLE &&
	    pthread_create(&pump, NULL, stdin_pump, t->dev) == 0)
		pthread_detach(pump);
	ret = wisp_ioreq_ready(s, &e);
	if (ret)
		goto out;
	pthread_once(&watcher_once, watcher_init);
	pthread_mutex_lock(&watcher.lock);
	watcher.t = t;
	watcher.prog = prog;
	watcher.stop = false;
	watcher.held = 0; /* a VMM gone inside a hold never resumed it */
	watcher.reraised = 0;
	pthread_mutex_unlock(&watcher.lock);
	watching = pthread_create(&watch_thread, NULL, irq_watch, &watcher) ==
		   0;
	fprintf(stderr, "%s: serving window 0x%llx (GSI %u)\n", prog,
		(unsigned long long)s->welcome.window_base, s->welcome.gsi);
	ret = wisp_ioreq_serve(s, &e);
	if (ret == -EINTR && terminated)
		ret = 0;
	if (watching) {
		watcher_stop(watch_thread);
		watching = false;
		if (watcher.reraised)
			fprintf(stderr,
				"%s: %llu lost interrupts raised again\n", prog,
				(unsigned long long)watcher.reraised);
	}
	fprintf(stderr,
		"%s: %s: %llu requests, %llu posted writes; %llu QueueNotify writes reached the window\n",
		prog, ret ? "VMM failed" : "done",
		(unsigned long long)s->handled_sync,
		(unsigned long long)s->handled_posted,
		(unsigned long long)notify_in_window);
	if (o->kind == KIND_CONSOLE)
		report_console(t, prog);
	if (wisp_ioreq_iommu(s)) {
		struct wisp_ioreq_iommu_stats st;

		wisp_ioreq_iommu_stats(s, &st);
		fprintf(stderr,
			"%s: IOMMU: %llu maps, %llu unmaps, %llu resets, %llu faults (%llu not reported), %u mappings left\n",
			prog, (unsigned long long)st.maps,
			(unsigned long long)st.unmaps,
			(unsigned long long)st.resets,
			(unsigned long long)st.faults,
			(unsigned long long)st.faults_dropped, st.mappings);
	}
out:
	if (ret)
		fprintf(stderr, "%s: %s\n", prog, e.msg);
	if (watching)
		watcher_stop(watch_thread);
	if (d && d->ops->destroy)
		d->ops->destroy(d);
	virtio_mmio_destroy(t);
	{
		sigset_t term, old;

		/* The handler must not see a server being freed. */
		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &term, &old);
		current = NULL;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (lanes_ok)
		ioevr_destroy(&lanes);
	wisp_ioreq_close(s);
	return ret;
}

/* One vhost-user front-end: a fresh device on empty guest memory (the
 * front-end's SET_MEM_TABLE fills it), served until it hangs up. */
static int serve_vhost_user(const struct opts *o, int lfd, const char *prog)
{
	struct guest_mem gm = { .memfd = -1 };
	struct virtio_dev *d = NULL;
	struct err e = { 0 };
	int sock, ret;

	sock = vhu_back_accept(lfd, &e);
	if (sock < 0) {
		fprintf(stderr, "%s: %s\n", prog, e.msg);
		return sock;
	}
	if (o->kind == KIND_BLK) {
		ret = blk_create_fd(&o->blk, o->disk_fd, &gm, &d, &e);
	} else {
		struct rng_config rc = { o->rate };

		ret = rng_create(&rc, &gm, &d, &e);
	}
	if (!ret) {
		fprintf(stderr, "%s: serving a vhost-user front-end\n", prog);
		ret = vhu_back_serve(sock, d, &gm, &terminated, &e);
		fprintf(stderr, "%s: vhost-user front-end %s\n", prog,
			ret ? "failed" : "done");
	}
	if (ret)
		fprintf(stderr, "%s: %s\n", prog, e.msg);
	if (d && d->ops->destroy)
		d->ops->destroy(d);
	if (gm.host)
		munmap(gm.host, gm.size);
	close(sock);
	return ret;
}

/* Everything the device opens by name is opened now; after the jail the
 * server has no file system, ids or capabilities to open it with. */
static int enter_jail(struct opts *o, const char *prog)
{
	struct err e;
	int fd;

	if (o->kind == KIND_BLK) {
		fd = blk_open_file(&o->blk, &e);
		if (fd < 0)
			goto fail;
		o->disk_fd = fd;
	} else if (o->kind == KIND_NET) {
		fd = net_open_tap(&o->net, &e);
		if (fd < 0)
			goto fail;
		o->tap_fd = fd;
	}
	if (jail_server_enter(&o->jail, &e) == 0)
		return 0;
fail:
	fprintf(stderr, "%s: %s\n", prog, e.msg);
	return -1;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s --socket PATH|--vhost-user PATH [--persist] "
		"[--jail SPEC] %s\n",
		prog,
		!strcmp(prog, "wisp-blk") ?
			"--disk path=FILE[,readonly=on|off][,id=NAME]"
			"[,direct=on|off][,engine=sync|uring]" :
		!strcmp(prog, "wisp-rng") ?
			"[--rate BYTES]" :
		!strcmp(prog, "wisp-net") ?
			"--net tap=NAME[,mac=XX:XX:XX:XX:XX:XX]"
			"[,id=NAME]" :
			"");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "vhost-user", required_argument, NULL, 'V' },
		{ "disk", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "net", required_argument, NULL, 'n' },
		{ "persist", no_argument, NULL, 'p' },
		{ "jail", required_argument, NULL, 'j' },
		{ "seccomp", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .disk_fd = -1, .tap_fd = -1 };
	const char *prog = basename(argv[0]);
	struct err e;
	int c, lfd, ret;

	if (!strcmp(prog, "wisp-blk"))
		o.kind = KIND_BLK;
	else if (!strcmp(prog, "wisp-rng"))
		o.kind = KIND_RNG;
	else if (!strcmp(prog, "wisp-console"))
		o.kind = KIND_CONSOLE;
	else if (!strcmp(prog, "wisp-net"))
		o.kind = KIND_NET;
	else {
		fprintf(stderr,
			"%s: run as wisp-blk, wisp-rng, wisp-console or "
			"wisp-net\n",
			prog);
		return 1;
	}
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o.socket = optarg;
			break;
		case 'V':
			o.vhost_user = optarg;
			break;
		case 'S':
			o.seccomp = optarg;
			break;
		case 'd':
			if (o.kind != KIND_BLK || o.disk_arg) {
				fprintf(stderr, "%s: --disk: %s\n", prog,
					o.disk_arg ? "given twice" :
						     "only for wisp-blk");
				return 1;
			}
			o.disk_arg = optarg;
			if (parse_disk(o.disk_arg, &o.blk, &e)) {
				fprintf(stderr, "%s: %s\n", prog, e.msg);
				return 1;
			}
			break;
		case 'r':
			if (o.kind != KIND_RNG) {
				fprintf(stderr,
					"%s: --rate: only for wisp-rng\n",
					prog);
				return 1;
			}
			if (devopts_parse_rng_rate("--rate", optarg, &o.rate,
						   &e)) {
				fprintf(stderr, "%s: %s\n", prog, e.msg);
				return 1;
			}
			break;
		case 'n': {
			struct devopts_net n;

			if (o.kind != KIND_NET || o.net.tap) {
				fprintf(stderr, "%s: --net: %s\n", prog,
					o.net.tap ? "given twice" :
						    "only for wisp-net");
				return 1;
			}
			if (devopts_parse_net("--net", optarg, &n, &e)) {
				fprintf(stderr, "%s: %s\n", prog, e.msg);
				return 1;
			}
			o.net = (struct net_config){ .tap = n.tap,
						     .id = n.id,
						     .has_mac = n.has_mac,
						     .rx_rate = n.rx_rate,
						     .tx_rate = n.tx_rate,
						     .rx_rl = n.rx_rl,
						     .tx_rl = n.tx_rl };
			memcpy(o.net.mac, n.mac, 6);
			break;
		}
		case 'p':
			o.persist = true;
			break;
		case 'j':
			if (o.jailed ||
			    jail_server_parse(optarg, &o.jail, &e) < 0) {
				fprintf(stderr, "%s: %s\n", prog,
					o.jailed ? "--jail: given twice" :
						   e.msg);
				return 1;
			}
			o.jailed = true;
			break;
		default:
			usage(prog);
			return c == 'h' ? 0 : 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog,
			argv[optind]);
		return 1;
	}
	if (o.vhost_user &&
	    (o.socket || (o.kind != KIND_BLK && o.kind != KIND_RNG))) {
		fprintf(stderr,
			"%s: --vhost-user: instead of --socket, for wisp-blk "
			"and wisp-rng\n",
			prog);
		return 1;
	}
	if ((!o.socket && !o.vhost_user) ||
	    (o.kind == KIND_BLK && !o.disk_arg) ||
	    (o.kind == KIND_NET && !o.net.tap)) {
		usage(prog);
		return 1;
	}
	/* Compiled now, installed once listening (docs/sandbox.md). */
	if (sb_seccomp_server_setup(o.seccomp, SB_SERVER, &e)) {
		fprintf(stderr, "%s: %s\n", prog, e.msg);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGBUS, on_sigbus);
	{
		struct sigaction sa = { .sa_handler = on_term };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		sa.sa_handler = on_usr1;
		sigaction(SIGUSR1, &sa, NULL);
	}
	if (o.vhost_user) {
		lfd = vhu_back_listen(o.vhost_user, &e);
		if (lfd < 0) {
			fprintf(stderr, "%s: %s\n", prog, e.msg);
			return 1;
		}
		if (o.jailed && enter_jail(&o, prog))
			return 1;
		sb_seccomp_enter(SB_SERVER);
		do {
			ret = serve_vhost_user(&o, lfd, prog);
		} while (o.persist && !terminated);
		close(lfd);
		unlink(o.vhost_user);
		return ret ? 1 : 0;
	}
	lfd = wisp_ioreq_listen(o.socket, &e);
	if (lfd < 0) {
		fprintf(stderr, "%s: %s\n", prog, e.msg);
		return 1;
	}
	if (o.jailed && enter_jail(&o, prog))
		return 1;
	sb_seccomp_enter(SB_SERVER);
	do {
		ret = serve_one(&o, lfd, prog);
	} while (o.persist && !terminated);
	close(lfd);
	unlink(o.socket);
	return ret ? 1 : 0;
}
