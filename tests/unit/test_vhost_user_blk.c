// SPDX-License-Identifier: MIT
/* The vhost-user front-end end to end without a guest kernel: wisp's
 * virtio-mmio register file driven by hand (as a driver would), the
 * queues run by a real back-end on a temp image: qemu-storage-daemon
 * (Debian's qemu-system-common), and wisp's own wisp-blk --vhost-user
 * (so both of wisp's sides meet). Writes land in the image (pread), reads come back,
 * the back-end signals the transport's interrupt eventfd itself; kill -9 of
 * the back-end: requests fail with IOERR, NEEDS_RESET is set; a new
 * back-end on the same socket: wisp reconnects by itself and I/O works
 * again. Each back-end's case is skipped (not passed) where its binary is
 * missing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/vhost_user/vhost_user.h"
#include "mem/guest_mem.h"
#include "util/efd.h"
#include "util/time.h"
#include "vhost_user/front.h"
#include "vhost_user/msg.h"
#include "virtio/mmio.h"

#define QSD "/usr/bin/qemu-storage-daemon"
#define QSIZE 16

/* The back-end process a failed case left behind (cmocka jumps out of
 * it), killed after the run. */
static pid_t live_backend;
#define DESC 0x100000ull
#define AVAIL 0x101000ull
#define USED 0x102000ull
#define HDR 0x110000ull
#define DATA 0x111000ull
#define STATUS 0x120000ull

struct ctx {
	const char *backend; /* QSD or the wisp-blk binary */
	char dir[64], img[96], sock[96];
	pid_t qsd;
	struct guest_mem mem;
	struct virtio_mmio *t;
	int irq_efd;
	uint16_t avail_idx, used_seen;
};

static int add_irqfd(void *opaque, int efd, unsigned int gsi)
{
	((struct ctx *)opaque)->irq_efd = efd;
	return 0;
}

static int del_irqfd(void *opaque, int efd, unsigned int gsi)
{
	return 0;
}

static pid_t start_qsd(struct ctx *c)
{
	char blockdev[256], exp[256];
	pid_t p;

	unlink(c->sock);
	snprintf(blockdev, sizeof(blockdev),
		 "driver=file,node-name=f0,filename=%s", c->img);
	snprintf(exp, sizeof(exp),
		 "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,"
		 "addr.path=%s,writable=on",
		 c->sock);
	p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		int fd = open("/dev/null", O_WRONLY);
		char disk[128];

		/* Not the test's stdout and stderr: meson waits for them. */
		dup2(fd, 1);
		dup2(fd, 2);
		snprintf(disk, sizeof(disk), "path=%s", c->img);
		if (strcmp(c->backend, QSD))
			execl(c->backend, "wisp-blk", "--vhost-user", c->sock,
			      "--disk", disk, (char *)NULL);
		else
			execl(QSD, QSD, "--blockdev", blockdev, "--export", exp,
			      (char *)NULL);
		_exit(127);
	}
	live_backend = p;
	for (int i = 0; i < 100; i++) {
		struct stat st;

		if (stat(c->sock, &st) == 0)
			return p;
		usleep(50000);
	}
	fail_msg("qemu-storage-daemon: no socket at %s", c->sock);
	return -1;
}

static void w32(struct ctx *c, uint64_t off, uint32_t v)
{
	virtio_mmio_bus_ops.write(c->t, 0, off, (uint8_t *)&v, 4);
}

static uint32_t r32(struct ctx *c, uint64_t off)
{
	uint32_t v;

	virtio_mmio_bus_ops.read(c->t, 0, off, (uint8_t *)&v, 4);
	return v;
}

static void *gp(struct ctx *c, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr(&c->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static void set_desc(struct ctx *c, int i, uint64_t a, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *d = gp(c, DESC + 16ull * i, 16);

	memcpy(d, &a, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* One request (type, sector, 4 KiB) in descriptors 0-2; waits for its
 * completion; returns the status byte. */
static int request(struct ctx *c, uint32_t type, uint64_t sector)
{
	uint8_t *h = gp(c, HDR, 16), *st = gp(c, STATUS, 1);
	uint16_t *avail = gp(c, AVAIL, 4 + 2 * QSIZE);
	uint16_t *used_idx = gp(c, USED + 2, 2);
	uint64_t deadline = now_ns() + 5000000000ull;

	memset(h, 0, 16);
	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	*st = 0xff;
	set_desc(c, 0, HDR, 16, 1, 1);
	set_desc(c, 1, DATA, 4096, 1 | (type == 0 ? 2 : 0), 2);
	set_desc(c, 2, STATUS, 1, 2, 0);
	uint16_t *avail_event = gp(c, USED + 4 + 8 * QSIZE, 2);
	uint16_t old = c->avail_idx;

	avail[2 + c->avail_idx % QSIZE] = 0;
	/* used_event: interrupt for this request's completion. */
	__atomic_store_n(&avail[2 + QSIZE], c->used_seen, __ATOMIC_RELEASE);
	__atomic_store_n(&avail[1], ++c->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* A driver with EVENT_IDX kicks only when the device asked to be
	 * told about this entry (virtio 1.2, 2.7.10). */
	if ((uint16_t)(c->avail_idx -
		       __atomic_load_n(avail_event, __ATOMIC_ACQUIRE) - 1) <
	    (uint16_t)(c->avail_idx - old))
		w32(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	while (__atomic_load_n(used_idx, __ATOMIC_ACQUIRE) == c->used_seen) {
		if (now_ns() > deadline)
			fail_msg("request type %u: no completion in 5 s", type);
		efd_wait(c->irq_efd, now_ns() + 100000000ull);
		efd_drain(c->irq_efd);
	}
	c->used_seen++;
	/* The used-buffer bit is kept set for a direct interrupt. */
	while (!(r32(c, VIRTIO_MMIO_INTERRUPT_STATUS) &
		 VIRTIO_MMIO_INT_VRING)) {
		if (now_ns() > deadline)
			fail_msg("request type %u: no interrupt in 5 s", type);
		usleep(1000);
	}
	w32(c, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	return *st;
}

static void end_to_end(const char *backend)
{
	struct vhu_dev_config vc = { .device_id = VIRTIO_ID_BLOCK };
	struct virtio_irq_host irq = { add_irqfd, del_irqfd, NULL, false };
	struct virtio_dev *d = NULL;
	struct ctx c = { .irq_efd = -1, .backend = backend };
	uint8_t buf[4096], *data;
	uint64_t cap = 0, deadline;
	struct err e = { 0 };
	uint32_t feat_lo, feat_hi;
	int fd, st;

	irq.opaque = &c;
	strcpy(c.dir, "/tmp/wisp-vhu-XXXXXX");
	assert_non_null(mkdtemp(c.dir));
	snprintf(c.img, sizeof(c.img), "%s/disk.img", c.dir);
	snprintf(c.sock, sizeof(c.sock), "%s/qsd.sock", c.dir);
	fd = open(c.img, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	c.qsd = start_qsd(&c);
	assert_int_equal(guest_mem_init(&c.mem, 16 << 20, &e), 0);
	vc.socket = c.sock;
	vc.id = "t0";
	if (vhu_dev_create(&vc, &c.mem, &d, &e))
		fail_msg("vhu_dev_create: %s", e.msg);
	assert_int_equal(
		virtio_mmio_create(d, 0xd0000000, 5, NULL, &irq, &c.t, &e), 0);
	/* The driver's side of initialisation. */
	assert_int_equal(r32(&c, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	w32(&c, VIRTIO_MMIO_STATUS, 1 | 2);
	w32(&c, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	feat_lo = r32(&c, VIRTIO_MMIO_DEVICE_FEATURES);
	w32(&c, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	feat_hi = r32(&c, VIRTIO_MMIO_DEVICE_FEATURES);
	assert_true(feat_hi & 1); /* VERSION_1 from the back-end */
	/* The protocol-features bit is the front-end's, never the guest's. */
	assert_false(feat_lo & (1u << 30));
	virtio_mmio_bus_ops.read(c.t, 0, VIRTIO_MMIO_CONFIG, (uint8_t *)&cap,
				 8);
	assert_int_equal(cap, 2048); /* 1 MiB in sectors, from GET_CONFIG */
	/* EVENT_IDX, as Linux negotiates it: the driver then depends on
	 * avail_event being right after a back-end died and came back. */
	assert_true(feat_lo & (1u << 29));
	w32(&c, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	w32(&c, VIRTIO_MMIO_DRIVER_FEATURES, 1u << 29);
	w32(&c, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	w32(&c, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	w32(&c, VIRTIO_MMIO_STATUS, 1 | 2 | 8);
	assert_true(r32(&c, VIRTIO_MMIO_STATUS) & 8);
	w32(&c, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(r32(&c, VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
	w32(&c, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	w32(&c, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC);
	w32(&c, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)AVAIL);
	w32(&c, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)USED);
	w32(&c, VIRTIO_MMIO_QUEUE_READY, 1);
	w32(&c, VIRTIO_MMIO_STATUS, 1 | 2 | 8 | 4);
	assert_int_equal(r32(&c, VIRTIO_MMIO_STATUS), 1 | 2 | 8 | 4);

	/* Write, check the image; read back. */
	data = gp(&c, DATA, 4096);
	for (int i = 0; i < 4096; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(request(&c, 1, 8), 0);
	assert_int_equal(pread(fd, buf, 4096, 8 * 512), 4096);
	assert_memory_equal(buf, data, 4096);
	memset(data, 0, 4096);
	assert_int_equal(request(&c, 0, 8), 0);
	assert_memory_equal(buf, data, 4096);

	/* The back-end dies: the next request fails, NEEDS_RESET. */
	kill(c.qsd, SIGKILL);
	waitpid(c.qsd, NULL, 0);
	live_backend = 0;
	st = request(&c, 1, 16);
	assert_int_equal(st, 1); /* VIRTIO_BLK_S_IOERR */
	assert_true(r32(&c, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(r32(&c, VIRTIO_MMIO_INTERRUPT_STATUS) & 2);

	/* A new back-end on the same socket: wisp reconnects by itself. */
	c.qsd = start_qsd(&c);
	deadline = now_ns() + 5000000000ull;
	while (r32(&c, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET) {
		if (now_ns() > deadline)
			fail_msg("no reconnection within 5 s");
		usleep(20000);
	}
	for (int i = 0; i < 4096; i++)
		data[i] = (uint8_t)(i * 13 + 1);
	assert_int_equal(request(&c, 1, 24), 0);
	assert_int_equal(pread(fd, buf, 4096, 24 * 512), 4096);
	assert_memory_equal(buf, data, 4096);

	virtio_mmio_destroy(c.t);
	guest_mem_destroy(&c.mem);
	kill(c.qsd, SIGTERM);
	waitpid(c.qsd, NULL, 0);
	live_backend = 0;
	close(fd);
	unlink(c.img);
	unlink(c.sock);
	rmdir(c.dir);
}

static void test_qsd(void **state)
{
	if (access(QSD, X_OK)) {
		skip();
		return;
	}
	end_to_end(QSD);
}

/* wisp-blk --vhost-user: the path comes from meson (WISP_BLK). */
static void test_wisp_blk(void **state)
{
	const char *b = getenv("WISP_BLK");

	if (!b || access(b, X_OK)) {
		skip();
		return;
	}
	end_to_end(b);
}

/* A scripted back-end with an inflight buffer, in this process: it
 * answers the set-up, then (when told) plays a back-end that took two
 * requests and completed the second one first, and dies. */
struct fake {
	char sock[96];
	int lfd, conn;
	int inflight_fd;
	struct vhu_inflight_queue *qr;
	volatile int die;
	pthread_t t;
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct vhu_msg m;
	int fds[VHU_MAX_FDS], nfds;

	f->conn = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	assert_true(f->conn >= 0);
	while (!f->die) {
		int r = vhu_recv(f->conn, &m, fds, &nfds,
				 now_ns() + 50000000ull);
		int rfd = -1;

		if (r == -ETIMEDOUT)
			continue;
		if (r)
			break;
		vhu_close_fds(fds, nfds);
		m.hdr.flags = VHU_VERSION | VHU_FLAG_REPLY;
		switch (m.hdr.request) {
		case VHU_GET_FEATURES:
			m.u64 = (1ull << 32) |
				(1ull << VHU_F_PROTOCOL_FEATURES);
			m.hdr.size = 8;
			break;
		case VHU_GET_PROTOCOL_FEATURES:
			m.u64 = (1ull << VHU_PF_CONFIG) |
				(1ull << VHU_PF_INFLIGHT_SHMFD);
			m.hdr.size = 8;
			break;
		case VHU_GET_CONFIG: {
			uint64_t cap = 2048;

			memset(m.raw + 12, 0, m.config.size);
			memcpy(m.raw + 12, &cap, 8);
			break;
		}
		case VHU_GET_INFLIGHT_FD: {
			uint64_t size =
				vhu_inflight_queue_size(m.inflight.queue_size) *
				m.inflight.num_queues;

			f->inflight_fd = memfd_create("inflight", MFD_CLOEXEC);
			assert_int_equal(ftruncate(f->inflight_fd, (off_t)size),
					 0);
			f->qr = mmap(NULL, size, PROT_READ | PROT_WRITE,
				     MAP_SHARED, f->inflight_fd, 0);
			assert_true(f->qr != MAP_FAILED);
			m.inflight.mmap_size = size;
			m.inflight.mmap_offset = 0;
			rfd = f->inflight_fd;
			break;
		}
		default:
			continue; /* no reply: no REPLY_ACK offered */
		}
		assert_int_equal(vhu_send(f->conn, &m, &rfd, rfd >= 0 ? 1 : 0,
					  now_ns() + 1000000000ull),
				 0);
	}
	return NULL;
}

/* One 4 KiB write request in descriptors head..head+2. */
static void post_write(struct ctx *c, uint16_t head, uint64_t hdr, uint64_t st)
{
	uint16_t *avail = gp(c, AVAIL, 4 + 2 * QSIZE);
	uint8_t *h = gp(c, hdr, 16);
	uint32_t type = 1;

	memset(h, 0, 16);
	memcpy(h, &type, 4);
	*(uint8_t *)gp(c, st, 1) = 0xff;
	set_desc(c, head, hdr, 16, 1, (uint16_t)(head + 1));
	set_desc(c, head + 1, DATA, 4096, 1, (uint16_t)(head + 2));
	set_desc(c, head + 2, st, 1, 2, 0);
	avail[2 + c->avail_idx % QSIZE] = head;
	__atomic_store_n(&avail[1], ++c->avail_idx, __ATOMIC_RELEASE);
}

/* The back-end took heads 3 then 0 and completed 0 first (out of order),
 * then died: with its inflight buffer wisp fails exactly head 3; failing
 * "in ring order" would complete head 0 twice and never head 3. */
static void test_inflight_exact(void **state)
{
	struct vhu_dev_config vc = { .device_id = VIRTIO_ID_BLOCK, .id = "f" };
	struct virtio_irq_host irq = { add_irqfd, del_irqfd, NULL, false };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctx c = { .irq_efd = -1 };
	struct fake f = { .inflight_fd = -1 };
	struct virtio_dev *d = NULL;
	struct err e = { 0 };
	uint16_t *used_idx;
	uint32_t *used_ring, id;
	uint64_t deadline;
	char dir[] = "/tmp/wisp-vhu-XXXXXX";

	irq.opaque = &c;
	assert_non_null(mkdtemp(dir));
	snprintf(f.sock, sizeof(f.sock), "%s/fake.sock", dir);
	strcpy(sa.sun_path, f.sock);
	f.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f.lfd, 1), 0);
	assert_int_equal(pthread_create(&f.t, NULL, fake_main, &f), 0);
	assert_int_equal(guest_mem_init(&c.mem, 16 << 20, &e), 0);
	vc.socket = f.sock;
	if (vhu_dev_create(&vc, &c.mem, &d, &e))
		fail_msg("vhu_dev_create: %s", e.msg);
	assert_int_equal(
		virtio_mmio_create(d, 0xd0000000, 5, NULL, &irq, &c.t, &e), 0);
	w32(&c, VIRTIO_MMIO_STATUS, 1 | 2);
	w32(&c, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	w32(&c, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	w32(&c, VIRTIO_MMIO_STATUS, 1 | 2 | 8);
	w32(&c, VIRTIO_MMIO_QUEUE_SEL, 0);
	w32(&c, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	w32(&c, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC);
	w32(&c, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)AVAIL);
	w32(&c, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)USED);
	w32(&c, VIRTIO_MMIO_QUEUE_READY, 1);
	w32(&c, VIRTIO_MMIO_STATUS, 1 | 2 | 8 | 4);
	assert_int_equal(r32(&c, VIRTIO_MMIO_STATUS), 1 | 2 | 8 | 4);
	assert_non_null(f.qr); /* wisp asked for the inflight buffer */

	post_write(&c, 3, HDR, STATUS);
	post_write(&c, 0, HDR + 64, STATUS + 64);
	/* The back-end's view: both taken, head 0 completed (status OK,
	 * used entry 0, its batch published), head 3 still in flight. */
	used_idx = gp(&c, USED + 2, 2);
	used_ring = gp(&c, USED + 4, 8 * QSIZE);
	f.qr->version = 1;
	f.qr->desc_num = 256;
	f.qr->desc[3].inflight = 1;
	f.qr->desc[3].counter = 1;
	*(uint8_t *)gp(&c, STATUS + 64, 1) = 0;
	used_ring[0] = 0;
	used_ring[1] = 1;
	__atomic_store_n(used_idx, 1, __ATOMIC_RELEASE);
	f.qr->used_idx = 1;
	f.qr->last_batch_head = 0;
	/* It dies; nobody listens any more. */
	close(f.lfd);
	unlink(f.sock);
	f.die = 1;
	pthread_join(f.t, NULL);
	close(f.conn);

	deadline = now_ns() + 3000000000ull;
	while (__atomic_load_n(used_idx, __ATOMIC_ACQUIRE) < 2) {
		if (now_ns() > deadline)
			fail_msg("the in-flight request was never failed");
		usleep(10000);
	}
	usleep(600000); /* three reconnect passes: nothing more */
	assert_int_equal(__atomic_load_n(used_idx, __ATOMIC_ACQUIRE), 2);
	memcpy(&id, &used_ring[2], 4);
	assert_int_equal(id, 3);
	assert_int_equal(*(uint8_t *)gp(&c, STATUS, 1), 1); /* IOERR */
	assert_int_equal(*(uint8_t *)gp(&c, STATUS + 64, 1), 0);
	assert_true(r32(&c, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);

	virtio_mmio_destroy(c.t);
	guest_mem_destroy(&c.mem);
	munmap(f.qr, vhu_inflight_queue_size(256));
	close(f.inflight_fd);
	rmdir(dir);
}

/* A back-end that accepts and never answers: creation fails within the
 * reply bound with a message; one without VERSION_1 is refused. */
static void *silent_main(void *arg)
{
	struct fake *f = arg;
	struct vhu_msg m;
	int fds[VHU_MAX_FDS], nfds;

	f->conn = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	while (!f->die && f->conn >= 0) {
		int r = vhu_recv(f->conn, &m, fds, &nfds,
				 now_ns() + 50000000ull);

		if (r == -ETIMEDOUT)
			continue;
		if (r)
			break;
		vhu_close_fds(fds, nfds);
		if (f->inflight_fd == 1 && m.hdr.request == VHU_GET_FEATURES) {
			/* Answers, but with a legacy-only device. */
			m.hdr.flags = VHU_VERSION | VHU_FLAG_REPLY;
			m.hdr.size = 8;
			m.u64 = 1ull << 9;
			vhu_send(f->conn, &m, NULL, 0,
				 now_ns() + 1000000000ull);
		}
	}
	return NULL;
}

static void hostile_create(int mode, int want_ret, const char *want)
{
	struct vhu_dev_config vc = { .device_id = VIRTIO_ID_BLOCK };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fake f = { .inflight_fd = mode };
	struct guest_mem mem;
	struct virtio_dev *d = NULL;
	struct err e = { 0 };
	char dir[] = "/tmp/wisp-vhu-XXXXXX";
	uint64_t t0;
	int ret;

	assert_non_null(mkdtemp(dir));
	snprintf(f.sock, sizeof(f.sock), "%s/h.sock", dir);
	strcpy(sa.sun_path, f.sock);
	f.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f.lfd, 1), 0);
	assert_int_equal(pthread_create(&f.t, NULL, silent_main, &f), 0);
	assert_int_equal(guest_mem_init(&mem, 4 << 20, &e), 0);
	vc.socket = f.sock;
	t0 = now_ns();
	ret = vhu_dev_create(&vc, &mem, &d, &e);
	assert_int_equal(ret, want_ret);
	assert_null(d);
	if (!strstr(e.msg, want))
		fail_msg("'%s' lacks '%s'", e.msg, want);
	/* The reply bound is 2 s: never much longer. */
	assert_true(now_ns() - t0 < 3000000000ull);
	f.die = 1;
	pthread_join(f.t, NULL);
	if (f.conn >= 0)
		close(f.conn);
	close(f.lfd);
	unlink(f.sock);
	rmdir(dir);
	guest_mem_destroy(&mem);
}

static void test_hostile_backends(void **state)
{
	hostile_create(0, -ETIMEDOUT, "GET_FEATURES: no reply in time");
	hostile_create(1, -ENOTSUP, "does not offer VIRTIO_F_VERSION_1");
}

/* Nobody listens: a config error naming the socket, nothing left. */
static void test_no_backend(void **state)
{
	struct vhu_dev_config vc = { .device_id = VIRTIO_ID_BLOCK,
				     .socket = "/tmp/wisp-vhu-nobody.sock" };
	struct guest_mem mem;
	struct virtio_dev *d = NULL;
	struct err e = { 0 };

	assert_int_equal(guest_mem_init(&mem, 4 << 20, &e), 0);
	assert_true(vhu_dev_create(&vc, &mem, &d, &e) < 0);
	assert_null(d);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_non_null(strstr(e.msg, "/tmp/wisp-vhu-nobody.sock"));
	guest_mem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_backend),
		cmocka_unit_test(test_qsd),
		cmocka_unit_test(test_wisp_blk),
		cmocka_unit_test(test_inflight_exact),
		cmocka_unit_test(test_hostile_backends),
	};

	int ret = cmocka_run_group_tests(tests, NULL, NULL);

	if (live_backend > 0 && kill(live_backend, SIGKILL) == 0)
		waitpid(live_backend, NULL, 0);
	return ret;
}
