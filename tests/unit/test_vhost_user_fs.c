// SPDX-License-Identifier: MIT
/* --fs end to end without a guest kernel: wisp's virtio-mmio register
 * file driven by hand, the queues run by a real virtiofsd (QEMU 7.2's,
 * Debian's qemu-system-common) sharing a temp directory. FUSE_INIT on
 * the request queue is answered, and FUSE_LOOKUP of a file created in
 * the directory returns its size: the device, its config space (tag)
 * and the call relay work with the real back-end. Skipped (not passed)
 * without virtiofsd or without root (its sandbox needs it). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
#include "virtio/mmio.h"

#define VFSD "/usr/lib/qemu/virtiofsd"
#define QSIZE 16

/* The back-end process a failed case left behind (cmocka jumps out of
 * it), killed after the run. */
static pid_t live_backend;
/* Queue q's rings at RING(q); request buffers after them. */
#define RING(q) (0x100000ull + 0x10000ull * (q))
#define REQ 0x140000ull
#define REPLY 0x150000ull

#define FUSE_LOOKUP 1
#define FUSE_INIT 26

struct ctx {
	char dir[64], share[96], sock[96];
	pid_t vfsd;
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

static void set_desc(struct ctx *c, uint64_t ring, int i, uint64_t a,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = gp(c, ring + 16ull * i, 16);

	memcpy(d, &a, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* One FUSE request of inlen bytes at REQ on the request queue (1), the
 * reply into REPLY; returns the reply's length. */
static uint32_t fuse(struct ctx *c, uint32_t inlen)
{
	uint64_t ring = RING(1);
	uint16_t *avail = gp(c, ring + 0x1000, 4 + 2 * QSIZE);
	uint8_t *used = gp(c, ring + 0x2000, 4 + 8 * QSIZE);
	uint64_t deadline = now_ns() + 5000000000ull;
	uint32_t len;

	memset(gp(c, REPLY, 4096), 0, 4096);
	set_desc(c, ring, 0, REQ, inlen, 1, 1);
	set_desc(c, ring, 1, REPLY, 4096, 2, 0);
	avail[2 + c->avail_idx % QSIZE] = 0;
	__atomic_store_n(&avail[1], ++c->avail_idx, __ATOMIC_RELEASE);
	w32(c, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	while (__atomic_load_n((uint16_t *)(used + 2), __ATOMIC_ACQUIRE) ==
	       c->used_seen) {
		if (now_ns() > deadline)
			fail_msg("FUSE request: no completion in 5 s");
		efd_wait(c->irq_efd, now_ns() + 100000000ull);
		efd_drain(c->irq_efd);
	}
	memcpy(&len, used + 4 + 8 * (c->used_seen % QSIZE) + 4, 4);
	c->used_seen++;
	while (!(r32(c, VIRTIO_MMIO_INTERRUPT_STATUS) &
		 VIRTIO_MMIO_INT_VRING)) {
		if (now_ns() > deadline)
			fail_msg("FUSE request: no interrupt in 5 s");
		usleep(1000);
	}
	w32(c, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	return len;
}

static void in_header(uint8_t *p, uint32_t len, uint32_t op, uint64_t unique,
		      uint64_t nodeid)
{
	memset(p, 0, 40);
	memcpy(p, &len, 4);
	memcpy(p + 4, &op, 4);
	memcpy(p + 8, &unique, 8);
	memcpy(p + 16, &nodeid, 8);
}

static void test_virtiofsd(void **state)
{
	struct vhu_dev_config vc = { .device_id = VIRTIO_ID_FS,
				     .tag = "share" };
	struct virtio_irq_host irq = { add_irqfd, del_irqfd, NULL, false };
	struct virtio_dev *d = NULL;
	struct ctx c = { .irq_efd = -1 };
	struct err e = { 0 };
	char path[160], tag[37] = { 0 };
	uint8_t *req, *rep;
	uint32_t v, len;
	int32_t error;
	uint64_t u, size;
	FILE *f;

	if (access(VFSD, X_OK) || geteuid() != 0) {
		skip();
		return;
	}
	irq.opaque = &c;
	strcpy(c.dir, "/tmp/wisp-vfs-XXXXXX");
	assert_non_null(mkdtemp(c.dir));
	snprintf(c.share, sizeof(c.share), "%s/share", c.dir);
	snprintf(c.sock, sizeof(c.sock), "%s/vfs.sock", c.dir);
	assert_int_equal(mkdir(c.share, 0755), 0);
	snprintf(path, sizeof(path), "%s/hello.txt", c.share);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("hello from the host\n", f); /* 20 bytes */
	fclose(f);
	c.vfsd = fork();
	assert_true(c.vfsd >= 0);
	if (c.vfsd == 0) {
		char src[128];
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		dup2(fd, 2);
		snprintf(src, sizeof(src), "source=%s", c.share);
		snprintf(path, sizeof(path), "--socket-path=%s", c.sock);
		execl(VFSD, VFSD, path, "-o", src, "-o", "sandbox=chroot", "-o",
		      "cache=none", (char *)NULL);
		_exit(127);
	}
	live_backend = c.vfsd;
	for (int i = 0; i < 100 && access(c.sock, F_OK); i++)
		usleep(50000);
	assert_int_equal(guest_mem_init(&c.mem, 16 << 20, &e), 0);
	vc.socket = c.sock;
	if (vhu_dev_create(&vc, &c.mem, &d, &e))
		fail_msg("vhu_dev_create: %s", e.msg);
	assert_int_equal(
		virtio_mmio_create(d, 0xd0000000, 5, NULL, &irq, &c.t, &e), 0);
	assert_int_equal(r32(&c, VIRTIO_MMIO_DEVICE_ID), 26);
	for (int i = 0; i < 36; i++)
		virtio_mmio_bus_ops.read(c.t, 0, VIRTIO_MMIO_CONFIG + i,
					 (uint8_t *)&tag[i], 1);
	assert_string_equal(tag, "share");
	virtio_mmio_bus_ops.read(c.t, 0, VIRTIO_MMIO_CONFIG + 36, (uint8_t *)&v,
				 4);
	assert_int_equal(v, 1); /* num_request_queues */
	w32(&c, VIRTIO_MMIO_STATUS, 1 | 2);
	w32(&c, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_true(r32(&c, VIRTIO_MMIO_DEVICE_FEATURES) & 1);
	w32(&c, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	w32(&c, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	w32(&c, VIRTIO_MMIO_STATUS, 1 | 2 | 8);
	for (uint32_t q = 0; q < 2; q++) {
		w32(&c, VIRTIO_MMIO_QUEUE_SEL, q);
		w32(&c, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
		w32(&c, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)RING(q));
		w32(&c, VIRTIO_MMIO_QUEUE_DRIVER_LOW,
		    (uint32_t)(RING(q) + 0x1000));
		w32(&c, VIRTIO_MMIO_QUEUE_DEVICE_LOW,
		    (uint32_t)(RING(q) + 0x2000));
		w32(&c, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	w32(&c, VIRTIO_MMIO_STATUS, 1 | 2 | 8 | 4);
	assert_int_equal(r32(&c, VIRTIO_MMIO_STATUS), 1 | 2 | 8 | 4);

	/* FUSE_INIT 7.31. */
	req = gp(&c, REQ, 4096);
	rep = gp(&c, REPLY, 4096);
	in_header(req, 56, FUSE_INIT, 1, 0);
	v = 7;
	memcpy(req + 40, &v, 4);
	v = 31;
	memcpy(req + 44, &v, 4);
	len = fuse(&c, 56);
	assert_true(len >= 16 + 8);
	memcpy(&error, rep + 4, 4);
	memcpy(&u, rep + 8, 8);
	memcpy(&v, rep + 16, 4);
	assert_int_equal(error, 0);
	assert_int_equal(u, 1);
	assert_int_equal(v, 7); /* the server's major version */

	/* FUSE_LOOKUP "hello.txt" in the root (node 1). */
	in_header(req, 40 + 10, FUSE_LOOKUP, 2, 1);
	memcpy(req + 40, "hello.txt", 10);
	len = fuse(&c, 50);
	memcpy(&error, rep + 4, 4);
	assert_int_equal(error, 0);
	assert_true(len >= 16 + 56);
	memcpy(&size, rep + 16 + 48, 8); /* entry_out.attr.size */
	assert_int_equal(size, 20);
	/* And one that is not there. */
	in_header(req, 40 + 8, FUSE_LOOKUP, 3, 1);
	memcpy(req + 40, "absent!", 8);
	fuse(&c, 48);
	memcpy(&error, rep + 4, 4);
	assert_int_equal(error, -ENOENT);

	virtio_mmio_destroy(c.t);
	guest_mem_destroy(&c.mem);
	kill(c.vfsd, SIGTERM);
	waitpid(c.vfsd, NULL, 0);
	live_backend = 0;
	unlink(path);
	snprintf(path, sizeof(path), "%s/hello.txt", c.share);
	unlink(path);
	rmdir(c.share);
	unlink(c.sock);
	rmdir(c.dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_virtiofsd),
	};

	int ret = cmocka_run_group_tests(tests, NULL, NULL);

	if (live_backend > 0 && kill(live_backend, SIGKILL) == 0)
		waitpid(live_backend, NULL, 0);
	return ret;
}
