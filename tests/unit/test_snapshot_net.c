// SPDX-License-Identifier: MIT
/* virtio-net and virtio-vsock in a snapshot: the net device's state
 * through the virtio-mmio transport, from one device to a second one
 * (the restored VM's), and every kind of payload a restore must refuse
 * before it changes anything; the vsock device's TRANSPORT_RESET after
 * a load. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/net/net.h"
#include "devices/vsock/proto.h"
#include "devices/vsock/vsock.h"
#include "fake_driver.h"
#include "util/le.h"
#include "virtio/mmio.h"

#define BASE_A 0xd0000000ull
#define BASE_B 0xd0001000ull
#define QSIZE 64
/* The transport payload's layout (virtio_mmio_save): a 53-byte head,
 * 36 bytes per queue, then the device blob (u32 length, the net
 * payload: u32 version and the MAC). */
#define OFF_DRV_FEAT 24
#define OFF_FEAT 36
#define OFF_Q(q) (53 + 36 * (q))
#define Q_SIZE 0
#define Q_DESC 3
#define OFF_BLOB (53 + 36 * 2)
#define OFF_MAC (OFF_BLOB + 8)
#define STATE_LEN (OFF_BLOB + 4 + 10)

static int h_irqfd(void *o, int efd, unsigned int gsi)
{
	return 0;
}

struct side {
	struct virtio_mmio *t;
	int peer; /* the "tap"'s other end */
};

struct fixture {
	struct guest_mem mem;
	struct side a, b;
};

static void side_init(struct fixture *f, struct side *s, uint64_t base)
{
	const struct virtio_irq_host irq = { h_irqfd, NULL, NULL, false };
	struct net_config cfg = { .tap = "snap0" };
	struct virtio_dev *d;
	struct err e = { 0 };
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX,
				    SOCK_SEQPACKET | SOCK_NONBLOCK |
					    SOCK_CLOEXEC,
				    0, sv),
			 0);
	s->peer = sv[1];
	/* No MAC given: each device picks a random one, so the restored
	 * device shows the saved one only if the payload carried it. */
	assert_int_equal(net_create_fd(&cfg, sv[0], false, &f->mem, &d, &e), 0);
	assert_int_equal(virtio_mmio_create(d, base, 5, NULL, &irq, &s->t, &e),
			 0);
}

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	assert_int_equal(guest_mem_init(&f.mem, FAKE_MEM_SIZE, NULL), 0);
	side_init(&f, &f.a, BASE_A);
	side_init(&f, &f.b, BASE_B);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_mmio_destroy(f->a.t);
	virtio_mmio_destroy(f->b.t);
	close(f->a.peer);
	close(f->b.peer);
	guest_mem_destroy(&f->mem);
	return 0;
}

static uint32_t rd(struct side *s, uint64_t off)
{
	uint32_t v = 0;

	virtio_mmio_bus_ops.read(s->t, 0, off, (uint8_t *)&v, 4);
	return v;
}

static void wr(struct side *s, uint64_t off, uint32_t v)
{
	virtio_mmio_bus_ops.write(s->t, 0, off, (const uint8_t *)&v, 4);
}

static void mac_of(struct side *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++)
		virtio_mmio_bus_ops.read(s->t, 0, 0x100 + (uint64_t)i, &mac[i],
					 1);
}

/* The guest's driver: features, both queues, DRIVER_OK. */
static uint64_t bring_up(struct side *s)
{
	uint64_t feat = net_device_features() | (1ull << VIRTIO_F_VERSION_1);

	wr(s, 0x70, 0);
	wr(s, 0x70, 3);
	wr(s, 0x24, 0);
	wr(s, 0x20, (uint32_t)feat);
	wr(s, 0x24, 1);
	wr(s, 0x20, (uint32_t)(feat >> 32));
	wr(s, 0x70, 3 | 8);
	for (int q = 0; q < 2; q++) {
		uint64_t b = 0x10000ull + 0x4000ull * (uint64_t)q;

		wr(s, 0x30, (uint32_t)q);
		wr(s, 0x38, QSIZE);
		wr(s, 0x80, (uint32_t)b);
		wr(s, 0x84, 0);
		wr(s, 0x90, (uint32_t)(b + 0x1000));
		wr(s, 0x94, 0);
		wr(s, 0xa0, (uint32_t)(b + 0x2000));
		wr(s, 0xa4, 0);
		wr(s, 0x44, 1);
	}
	wr(s, 0x70, 0xf);
	assert_int_equal(rd(s, 0x70), 0xf);
	return feat;
}

static void save(struct side *s, struct ser_w *w)
{
	memset(w, 0, sizeof(*w));
	virtio_mmio_save(s->t, w);
	assert_false(w->fail);
	assert_int_equal(w->len, STATE_LEN);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct virtio_dev *b = f->b.t->dev;
	uint8_t ma[6], mb[6];
	struct ser_w w;
	struct err e = { 0 };
	uint64_t feat = bring_up(&f->a);

	mac_of(&f->a, ma);
	mac_of(&f->b, mb);
	/* Two random addresses (46 random bits) are different. */
	assert_memory_not_equal(ma, mb, 6);
	save(&f->a, &w);
	assert_int_equal(virtio_mmio_load(f->b.t, w.p, w.len, &e), 0);
	free(w.p);
	mac_of(&f->b, mb);
	assert_memory_equal(ma, mb, 6);
	assert_int_equal(rd(&f->b, 0x70), 0xf);
	assert_int_equal(b->features, feat & f->a.t->dev->features);
	assert_int_equal(b->features, f->a.t->dev->features);
	for (int q = 0; q < 2; q++) {
		assert_true(b->vq[q].ready);
		assert_int_equal(b->vq[q].size, QSIZE);
		assert_int_equal(b->vq[q].desc_gpa,
				 f->a.t->dev->vq[q].desc_gpa);
		assert_int_equal(b->vq[q].used_gpa,
				 f->a.t->dev->vq[q].used_gpa);
	}
	/* Activated as when the driver wrote DRIVER_OK: the offloads
	 * follow the negotiated features and receive is armed. */
	assert_int_equal(net_current_offloads(b),
			 net_tap_offloads(b->features));
	assert_int_not_equal(net_current_offloads(b), 0);
	assert_true(net_rx_polling(b));
}

/* A refused payload leaves the device as it was: not started, its own
 * MAC. */
static void refused(struct fixture *f, const uint8_t *p, size_t len,
		    const char *why)
{
	struct virtio_dev *b = f->b.t->dev;
	uint8_t before[6], after[6];
	struct err e = { 0 };

	mac_of(&f->b, before);
	assert_int_equal(virtio_mmio_load(f->b.t, p, len, &e), -EINVAL);
	assert_int_equal(e.cls, ERR_CONFIG);
	if (!strstr(e.msg, why))
		fail_msg("'%s' does not say '%s'", e.msg, why);
	assert_int_equal(rd(&f->b, 0x70), 0);
	assert_false(b->vq[0].ready);
	assert_false(b->vq[1].ready);
	assert_int_equal(b->features, 0);
	assert_false(net_rx_polling(b));
	mac_of(&f->b, after);
	assert_memory_equal(before, after, 6);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	struct ser_w w;
	uint8_t *p;

	bring_up(&f->a);
	save(&f->a, &w);
	p = malloc(w.len);
	assert_non_null(p);

	/* A queue larger than the device's maximum. */
	memcpy(p, w.p, w.len);
	put16(p + OFF_Q(1) + Q_SIZE, NET_QUEUE_SIZE * 2);
	refused(f, p, w.len, "queue size above its maximum");
	/* A ready queue's ring outside guest RAM. */
	memcpy(p, w.p, w.len);
	put64(p + OFF_Q(0) + Q_DESC, FAKE_MEM_SIZE - 16);
	refused(f, p, w.len, "transport state");
	memcpy(p, w.p, w.len);
	put64(p + OFF_Q(1) + Q_DESC, 1ull << 40);
	refused(f, p, w.len, "transport state");
	/* A feature the device does not offer (no control queue), acked
	 * by the "driver" too. */
	assert_false(net_device_features() & (1ull << VIRTIO_NET_F_CTRL_VQ));
	memcpy(p, w.p, w.len);
	put64(p + OFF_DRV_FEAT,
	      le64(p + OFF_DRV_FEAT) | (1ull << VIRTIO_NET_F_CTRL_VQ));
	put64(p + OFF_FEAT,
	      le64(p + OFF_FEAT) | (1ull << VIRTIO_NET_F_CTRL_VQ));
	refused(f, p, w.len, "features the device does not offer");
	/* The net payload: another version, a multicast or zero MAC. */
	memcpy(p, w.p, w.len);
	put32(p + OFF_BLOB + 4, 2);
	refused(f, p, w.len, "unknown virtio-net state version");
	memcpy(p, w.p, w.len);
	p[OFF_MAC] |= 1;
	refused(f, p, w.len, "multicast or zero");
	memcpy(p, w.p, w.len);
	memset(p + OFF_MAC, 0, 6);
	refused(f, p, w.len, "multicast or zero");
	/* A payload one byte short: its blob runs past the end. */
	refused(f, w.p, w.len - 1, "transport state");
	/* The intact one still loads into the same device. */
	{
		struct err e = { 0 };

		assert_int_equal(virtio_mmio_load(f->b.t, w.p, w.len, &e), 0);
		assert_int_equal(rd(&f->b, 0x70), 0xf);
	}
	free(p);
	free(w.p);
}

/* The pure decoder alone: every length but the right one is refused,
 * and nothing is written on a refusal. */
static void test_decode(void **state)
{
	uint8_t buf[16] = { 1, 0, 0, 0, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
	uint8_t mac[6] = { 9, 9, 9, 9, 9, 9 };
	const char *why = NULL;

	(void)state;
	for (uint32_t len = 0; len < sizeof(buf); len++) {
		if (len == 10)
			continue;
		assert_int_equal(net_state_decode(buf, len, mac, &why),
				 -EINVAL);
		assert_non_null(why);
		assert_int_equal(mac[0], 9);
	}
	assert_int_equal(net_state_decode(buf, 10, mac, &why), 0);
	assert_memory_equal(mac, buf + 4, 6);
}

/* A host client of the device's socket that sent line. */
static int host_connect(const char *uds, const char *line)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", uds);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	return fd;
}

/* vsock: the device's connections do not survive a snapshot, so a
 * loaded device posts TRANSPORT_RESET once the driver gives an event
 * buffer, and host clients wait until the driver has handled it; a bad
 * payload is refused and posts nothing. */
static void test_vsock_reset(void **state)
{
	char dir[64], uds[96];
	struct fake_driver f;
	struct vsock_config cfg;
	struct virtio_dev *d;
	struct err e = { 0 };
	struct ser_w w = { 0 };
	const char *why = NULL;
	struct fake_buf eb, rb;
	struct vsock_stats st;
	struct vsock_hdr h;
	int hc;
	uint32_t id, len;
	/* Another version; one byte short; a port below the base. */
	static const uint8_t bad[3][8] = { { 2, 0, 0, 0, 0, 0, 0, 0x40 },
					   { 1, 0, 0, 0, 0, 0, 0, 0x40 },
					   { 1, 0, 0, 0, 0xff, 0xff, 0xff,
					     0x3f } };
	static const uint32_t bad_len[3] = { 8, 7, 8 };

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/wisp-snapvs-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	cfg = (struct vsock_config){ 3, uds };
	fake_init(&f);
	assert_int_equal(vsock_create(&cfg, &f.mem, &d, &e), 0);
	fake_attach(&f, d, ~0ULL, 16);
	eb = (struct fake_buf){ fake_alloc(&f, 64), 8, true };
	assert_non_null(d->ops->save);
	pthread_mutex_lock(&d->lock);
	d->ops->save(d, &w);
	for (int i = 0; i < 3; i++)
		assert_int_equal(d->ops->load(d, bad[i], bad_len[i], &why),
				 -EINVAL);
	pthread_mutex_unlock(&d->lock);
	assert_false(w.fail);
	assert_int_equal(w.len, 8);
	/* The saved next port, moved on as if connections had been made
	 * before the snapshot: the first connection after the load takes
	 * the port after it, not the base again. */
	put32(w.p + 4, VSOCK_LOCAL_PORT_BASE + 5);
	/* Refused loads owe the driver nothing. */
	fake_add_chain(&f, VSOCK_EVQ, &eb, 1);
	fake_kick(&f, VSOCK_EVQ);
	assert_false(fake_get_used(&f, VSOCK_EVQ, &id, &len));
	/* As virtio_mmio_load runs it: load, then activate. */
	pthread_mutex_lock(&d->lock);
	assert_int_equal(d->ops->load(d, w.p, (uint32_t)w.len, &why), 0);
	assert_int_equal(d->ops->activate(d), 0);
	pthread_mutex_unlock(&d->lock);
	assert_true(fake_get_used(&f, VSOCK_EVQ, &id, &len));
	assert_int_equal(len, 4);
	assert_int_equal(le32(fake_ptr(&f, eb.gpa, 4)),
			 VSOCK_EVENT_TRANSPORT_RESET);
	/* With EVENT_IDX the driver kicks after its refill only if the
	 * device asked for the next buffer it adds. */
	assert_true(d->vq[VSOCK_EVQ].event_idx);
	assert_int_equal(fake_avail_event(&f, VSOCK_EVQ),
			 f.q[VSOCK_EVQ].avail_idx);
	vsock_get_stats(d, &st);
	assert_int_equal(st.resets_sent, 1);
	/* A host client right after the restore, before the driver handled
	 * the event: its CONNECT waits (a REQUEST now would be reset with
	 * the old connections)... */
	hc = host_connect(uds, "CONNECT 6000\n");
	rb = (struct fake_buf){ fake_alloc(&f, 4096), 4096, true };
	fake_add_chain(&f, VSOCK_RXQ, &rb, 1);
	fake_kick(&f, VSOCK_RXQ);
	usleep(20000);
	pthread_mutex_lock(&d->lock);
	d->ops->fd_ready(d, d->watch_fds[0]);
	pthread_mutex_unlock(&d->lock);
	assert_false(fake_get_used(&f, VSOCK_RXQ, &id, &len));
	/* A kick of the event queue with no buffer added (the restore's
	 * re-signal of every ready queue) is not the driver's answer. */
	fake_kick(&f, VSOCK_EVQ);
	assert_false(fake_get_used(&f, VSOCK_RXQ, &id, &len));
	/* ...until the driver's event-queue kick (it refilled the buffer it
	 * read the event from): then the REQUEST goes out. The event is
	 * sent once. */
	fake_add_chain(&f, VSOCK_EVQ, &eb, 1);
	fake_kick(&f, VSOCK_EVQ);
	assert_false(fake_get_used(&f, VSOCK_EVQ, &id, &len));
	assert_true(fake_get_used(&f, VSOCK_RXQ, &id, &len));
	assert_int_equal(len, VSOCK_HDR_SIZE);
	vsock_hdr_decode(fake_ptr(&f, rb.gpa, VSOCK_HDR_SIZE), &h);
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, 6000);
	assert_int_equal(h.src_port, VSOCK_LOCAL_PORT_BASE + 5);
	assert_false(fake_broken(&f));
	close(hc);
	free(w.p);
	fake_destroy(&f);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_vsock_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
