// SPDX-License-Identifier: MIT
/* virtio-net through the fake driver, with the tap replaced by a
 * SOCK_SEQPACKET socket pair (one message per frame, like a tap): the
 * header and offload rules both ways, mergeable and single rx buffers,
 * holding a frame without polling when the ring is empty, and hostile
 * chains and headers from the guest and the backend. The last test uses
 * a real tap inside a network namespace of its own (skipped without
 * CAP_NET_ADMIN). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/net/net.h"
#include "util/ratelimit.h"
#include "fake_driver.h"
#include "util/time.h"
#include "virtio/iothread.h"

#define QSIZE 16
#define ALL_FEATURES (~0ULL)
#define NO_MRG (~(1ULL << VIRTIO_NET_F_MRG_RXBUF))

struct ctx {
	struct fake_driver f;
	int peer; /* the backend's side of the "tap" */
};

static struct ctx *setup_cfg(const struct net_config *cfg, uint64_t want,
			     uint16_t qsize)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct virtio_dev *d;
	struct err e;
	int sv[2];

	assert_non_null(c);
	fake_init(&c->f);
	assert_int_equal(socketpair(AF_UNIX,
				    SOCK_SEQPACKET | SOCK_NONBLOCK |
					    SOCK_CLOEXEC,
				    0, sv),
			 0);
	c->peer = sv[1];
	assert_int_equal(net_create_fd(cfg, sv[0], false, &c->f.mem, &d, &e),
			 0);
	fake_attach(&c->f, d, want, qsize);
	return c;
}

static struct ctx *setup(uint64_t want, uint16_t qsize)
{
	struct net_config cfg = { .tap = "test0" };

	return setup_cfg(&cfg, want, qsize);
}

static void done(struct ctx *c)
{
	fake_destroy(&c->f);
	close(c->peer);
	free(c);
}

static struct net_stats stats(struct ctx *c)
{
	struct net_stats s;

	net_get_stats(c->f.d, &s);
	return s;
}

/* What the I/O thread does when the watched fd is readable. */
static void tap_ready(struct ctx *c)
{
	struct virtio_dev *d = c->f.d;

	pthread_mutex_lock(&d->lock);
	d->ops->fd_ready(d, d->watch_fds[0]);
	pthread_mutex_unlock(&d->lock);
}

/* Would the I/O thread wake up for the device now? */
static bool watch_readable(struct ctx *c)
{
	struct pollfd p = { c->f.d->watch_fds[0], POLLIN, 0 };

	return poll(&p, 1, 0) == 1;
}

static void fill_frame(uint8_t *p, uint32_t len, unsigned int seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed);
}

static ssize_t peer_recv(struct ctx *c, uint8_t *buf, size_t len)
{
	return recv(c->peer, buf, len, MSG_DONTWAIT);
}

/* The backend sends hdr + a frame of len pattern bytes. */
static void peer_send(struct ctx *c, const struct virtio_net_hdr *h,
		      uint32_t len, unsigned int seed)
{
	uint8_t *buf = malloc(NET_HDR_SIZE + len);

	assert_non_null(buf);
	memcpy(buf, h, NET_HDR_SIZE);
	fill_frame(buf + NET_HDR_SIZE, len, seed);
	assert_int_equal(send(c->peer, buf, NET_HDR_SIZE + len, 0),
			 NET_HDR_SIZE + len);
	free(buf);
}

/* A tx chain: the header in two pieces (5 + 7 bytes), then the frame
 * in two buffers. */
static uint16_t tx_split(struct ctx *c, const struct virtio_net_hdr *h,
			 uint32_t len, unsigned int seed)
{
	uint64_t h1 = fake_alloc(&c->f, 5), h2 = fake_alloc(&c->f, 7);
	uint32_t a = len / 3;
	uint64_t d1 = fake_alloc(&c->f, a), d2 = fake_alloc(&c->f, len - a);
	uint8_t *frame = malloc(len);
	struct fake_buf b[4] = { { h1, 5, false },
				 { h2, 7, false },
				 { d1, a, false },
				 { d2, len - a, false } };

	assert_non_null(frame);
	fill_frame(frame, len, seed);
	memcpy(fake_ptr(&c->f, h1, 5), h, 5);
	memcpy(fake_ptr(&c->f, h2, 7), (const uint8_t *)h + 5, 7);
	memcpy(fake_ptr(&c->f, d1, a), frame, a);
	memcpy(fake_ptr(&c->f, d2, len - a), frame + a, len - a);
	free(frame);
	return fake_add_chain(&c->f, NET_TXQ, b, 4);
}

static void expect_used(struct ctx *c, int q, uint16_t head, uint32_t len)
{
	uint32_t id, l;

	assert_true(fake_get_used(&c->f, q, &id, &l));
	assert_int_equal(id, head);
	assert_int_equal(l, len);
}

static void test_config_and_features(void **state)
{
	struct ctx *c = setup(ALL_FEATURES, QSIZE);
	struct virtio_dev *d = c->f.d;
	uint8_t cfg[NET_CONFIG_SIZE];
	uint64_t f = d->ops->features(d);

	(void)state;
	assert_int_equal(d->device_id, VIRTIO_ID_NET);
	assert_int_equal(d->nr_queues, 2);
	assert_int_equal(d->config_size, NET_CONFIG_SIZE);
	assert_true(f & 1ULL << VIRTIO_NET_F_MRG_RXBUF);
	assert_true(f & 1ULL << VIRTIO_NET_F_STATUS);
	assert_true(f & 1ULL << VIRTIO_NET_F_MAC);
	/* Not offered: the kernel's tap has no UFO, and there is no
	 * control queue, so a kick on queue 2 is ignored (below). */
	assert_false(f & 1ULL << VIRTIO_NET_F_HOST_UFO);
	assert_false(f & 1ULL << VIRTIO_NET_F_CTRL_VQ);
	for (uint32_t i = 0; i < sizeof(cfg); i++)
		d->ops->config_read(d, i, &cfg[i], 1);
	/* Random MAC: unicast, locally administered. */
	assert_int_equal(cfg[0] & 3, 2);
	assert_int_equal(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
	assert_int_equal(cfg[8] | cfg[9] << 8, 1);
	fake_kick(&c->f, 2);
	assert_false(fake_broken(&c->f));
	done(c);

	{
		struct net_config nc = { .tap = "x",
					 .has_mac = true,
					 .mac = { 2, 1, 2, 3, 4, 5 } };
		struct virtio_dev *d2;
		struct err e;
		uint8_t mac[6];
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
		assert_int_equal(
			net_create_fd(&nc, sv[0], false, NULL, &d2, &e), 0);
		for (int i = 0; i < 6; i++)
			d2->ops->config_read(d2, (uint32_t)i, &mac[i], 1);
		assert_memory_equal(mac, nc.mac, 6);
		d2->ops->destroy(d2);
		close(sv[1]);
	}
}

static void test_offload_flags(void **state)
{
	const uint64_t csum = 1ULL << VIRTIO_NET_F_GUEST_CSUM,
		       t4 = 1ULL << VIRTIO_NET_F_GUEST_TSO4,
		       t6 = 1ULL << VIRTIO_NET_F_GUEST_TSO6;
	struct ctx *c;

	(void)state;
	assert_int_equal(net_tap_offloads(0), 0);
	assert_int_equal(net_tap_offloads(csum), NET_TUN_F_CSUM);
	assert_int_equal(net_tap_offloads(csum | t4),
			 NET_TUN_F_CSUM | NET_TUN_F_TSO4);
	assert_int_equal(net_tap_offloads(csum | t4 | t6),
			 NET_TUN_F_CSUM | NET_TUN_F_TSO4 | NET_TUN_F_TSO6);
	/* TSO without the checksum offload it depends on: none at all,
	 * or the kernel would send partial checksums the guest refused. */
	assert_int_equal(net_tap_offloads(t4 | t6), 0);
	/* Host-side features do not ask anything of the kernel's rx. */
	assert_int_equal(net_tap_offloads(1ULL << VIRTIO_NET_F_CSUM |
					  1ULL << VIRTIO_NET_F_HOST_TSO4),
			 0);

	c = setup(ALL_FEATURES, QSIZE);
	assert_int_equal(net_current_offloads(c->f.d),
			 NET_TUN_F_CSUM | NET_TUN_F_TSO4 | NET_TUN_F_TSO6);
	assert_true(net_rx_polling(c->f.d));
	done(c);
	c = setup(~csum, QSIZE);
	assert_int_equal(net_current_offloads(c->f.d), 0);
	done(c);
}

static void test_tx_split_header(void **state)
{
	struct ctx *c = setup(ALL_FEATURES, QSIZE);
	struct virtio_net_hdr h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				    .hdr_len = 54,
				    .gso_size = 1448,
				    .csum_start = 34,
				    .csum_offset = 16,
				    .num_buffers = 77 };
	uint8_t buf[NET_HDR_SIZE + 5000], want[5000];
	struct virtio_net_hdr got;
	uint16_t head;
	int irqs = c->f.irqs;

	(void)state;
	head = tx_split(c, &h, 5000, 1);
	fake_kick(&c->f, NET_TXQ);
	expect_used(c, NET_TXQ, head, 0);
	assert_true(c->f.irqs > irqs);
	assert_int_equal(peer_recv(c, buf, sizeof(buf)), NET_HDR_SIZE + 5000);
	memcpy(&got, buf, sizeof(got));
	assert_int_equal(got.flags, h.flags);
	assert_int_equal(got.gso_type, h.gso_type);
	assert_int_equal(got.gso_size, h.gso_size);
	assert_int_equal(got.csum_start, h.csum_start);
	assert_int_equal(got.csum_offset, h.csum_offset);
	/* num_buffers means nothing on tx; the kernel gets 0. */
	assert_int_equal(got.num_buffers, 0);
	fill_frame(want, 5000, 1);
	assert_memory_equal(buf + NET_HDR_SIZE, want, 5000);
	assert_int_equal(stats(c).tx_frames, 1);
	assert_int_equal(stats(c).tx_bytes, 5000);

	/* A batch: three frames, one kick, every chain completed. */
	for (unsigned int i = 0; i < 3; i++)
		tx_split(c, &(struct virtio_net_hdr){ 0 }, 60 + i, i);
	fake_kick(&c->f, NET_TXQ);
	for (unsigned int i = 0; i < 3; i++) {
		uint32_t id, len;

		assert_true(fake_get_used(&c->f, NET_TXQ, &id, &len));
		assert_int_equal(peer_recv(c, buf, sizeof(buf)),
				 NET_HDR_SIZE + 60 + i);
		fill_frame(want, 60 + i, i);
		assert_memory_equal(buf + NET_HDR_SIZE, want, 60 + i);
	}
	assert_int_equal(stats(c).tx_frames, 4);
	done(c);
}

/* Each bad frame is completed (the driver gets its buffer back), not
 * sent, counted, and leaves the device working. */
static void tx_dropped(struct ctx *c, const struct virtio_net_hdr *h,
		       uint32_t len, const char *what)
{
	uint64_t before = stats(c).tx_dropped;
	uint8_t buf[64];
	uint16_t head = tx_split(c, h, len, 0);

	fake_kick(&c->f, NET_TXQ);
	expect_used(c, NET_TXQ, head, 0);
	if (peer_recv(c, buf, sizeof(buf)) >= 0)
		fail_msg("%s: the frame reached the backend", what);
	if (stats(c).tx_dropped != before + 1)
		fail_msg("%s: not counted as dropped", what);
	assert_false(fake_broken(&c->f));
}

static void test_tx_hostile_headers(void **state)
{
	struct ctx *c =
		setup(ALL_FEATURES & ~(1ULL << VIRTIO_NET_F_HOST_TSO6), QSIZE);
	const uint8_t csum = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	uint8_t buf[128];

	(void)state;
	tx_dropped(c, &(struct virtio_net_hdr){ .flags = 0x80 }, 100,
		   "unknown flag");
	tx_dropped(c, &(struct virtio_net_hdr){ .flags = 2 }, 100,
		   "DATA_VALID on tx");
	tx_dropped(c,
		   &(struct virtio_net_hdr){
			   .flags = csum, .csum_start = 90, .csum_offset = 9 },
		   100, "checksum field past the end");
	tx_dropped(c,
		   &(struct virtio_net_hdr){ .flags = csum,
					     .csum_start = 0xffff,
					     .csum_offset = 0xffff },
		   100, "checksum offsets that overflow 16 bits");
	tx_dropped(c,
		   &(struct virtio_net_hdr){ .flags = csum,
					     .gso_type =
						     VIRTIO_NET_HDR_GSO_TCPV6,
					     .gso_size = 1000 },
		   3000, "TSO6 not negotiated");
	tx_dropped(c,
		   &(struct virtio_net_hdr){ .flags = csum,
					     .gso_type = VIRTIO_NET_HDR_GSO_UDP,
					     .gso_size = 1000 },
		   3000, "UFO");
	tx_dropped(c,
		   &(struct virtio_net_hdr){
			   .flags = csum, .gso_type = 2, .gso_size = 1000 },
		   3000, "unknown GSO type");
	tx_dropped(c,
		   &(struct virtio_net_hdr){ .flags = csum,
					     .gso_type =
						     VIRTIO_NET_HDR_GSO_TCPV4 |
						     VIRTIO_NET_HDR_GSO_ECN,
					     .gso_size = 1000 },
		   3000, "ECN not negotiated");
	tx_dropped(c,
		   &(struct virtio_net_hdr){ .gso_type =
						     VIRTIO_NET_HDR_GSO_TCPV4,
					     .gso_size = 1000 },
		   3000, "GSO without NEEDS_CSUM");
	tx_dropped(c,
		   &(struct virtio_net_hdr){ .flags = csum,
					     .gso_type =
						     VIRTIO_NET_HDR_GSO_TCPV4 },
		   3000, "GSO size 0");
	tx_dropped(c,
		   &(struct virtio_net_hdr){ .flags = csum,
					     .gso_type =
						     VIRTIO_NET_HDR_GSO_TCPV4,
					     .gso_size = 1000,
					     .hdr_len = 3001 },
		   3000, "hdr_len beyond the frame");
	tx_dropped(c, &(struct virtio_net_hdr){ 0 }, 13,
		   "shorter than an Ethernet header");
	tx_dropped(c, &(struct virtio_net_hdr){ 0 }, NET_MAX_FRAME + 1,
		   "larger than the maximum frame");

	/* A chain shorter than the header itself. */
	{
		uint64_t g = fake_alloc(&c->f, 11);
		struct fake_buf b = { g, 11, false };
		uint16_t head = fake_add_chain(&c->f, NET_TXQ, &b, 1);

		fake_kick(&c->f, NET_TXQ);
		expect_used(c, NET_TXQ, head, 0);
		assert_true(peer_recv(c, buf, sizeof(buf)) < 0);
	}
	assert_int_equal(stats(c).tx_dropped, 14);
	/* Still working: the largest frame allowed goes through. */
	tx_split(c, &(struct virtio_net_hdr){ 0 }, NET_MAX_FRAME, 3);
	fake_kick(&c->f, NET_TXQ);
	{
		uint8_t *big = malloc(NET_HDR_SIZE + NET_MAX_FRAME + 1);

		assert_non_null(big);
		assert_int_equal(peer_recv(c, big,
					   NET_HDR_SIZE + NET_MAX_FRAME + 1),
				 NET_HDR_SIZE + NET_MAX_FRAME);
		free(big);
	}
	assert_int_equal(stats(c).tx_frames, 1);
	done(c);

	/* Without CSUM negotiated, NEEDS_CSUM is refused. */
	c = setup(~(1ULL << VIRTIO_NET_F_CSUM), QSIZE);
	tx_dropped(c,
		   &(struct virtio_net_hdr){
			   .flags = csum, .csum_start = 34, .csum_offset = 16 },
		   100, "NEEDS_CSUM without CSUM");
	done(c);
}

static void test_tx_bad_chains(void **state)
{
	struct ctx *c = setup(ALL_FEATURES, QSIZE);
	uint64_t g = fake_alloc(&c->f, 100), w = fake_alloc(&c->f, 100);
	struct fake_buf b[2] = { { g, 100, false }, { w, 100, true } };

	(void)state;
	fake_add_chain(&c->f, NET_TXQ, b, 2);
	fake_kick(&c->f, NET_TXQ);
	assert_true(fake_broken(&c->f));
	done(c);

	/* The backend refusing a write: counted as an error, the chain
	 * still completes. */
	c = setup(ALL_FEATURES, QSIZE);
	shutdown(c->peer, SHUT_RD);
	{
		uint16_t head =
			tx_split(c, &(struct virtio_net_hdr){ 0 }, 100, 0);

		fake_kick(&c->f, NET_TXQ);
		expect_used(c, NET_TXQ, head, 0);
		assert_int_equal(stats(c).tx_errors + stats(c).tx_dropped, 1);
		assert_false(fake_broken(&c->f));
	}
	done(c);
}

static uint16_t rx_buf(struct ctx *c, uint64_t *gpa, uint32_t len)
{
	struct fake_buf b;

	*gpa = fake_alloc(&c->f, len);
	b = (struct fake_buf){ *gpa, len, true };
	return fake_add_chain(&c->f, NET_RXQ, &b, 1);
}

static void test_rx_mergeable(void **state)
{
	struct ctx *c = setup(ALL_FEATURES, QSIZE);
	struct virtio_net_hdr h = { .flags = VIRTIO_NET_HDR_F_DATA_VALID };
	uint8_t *all = malloc(NET_HDR_SIZE + 2500), want[2500];
	uint64_t g[3];
	uint16_t head[3];
	struct virtio_net_hdr got;

	(void)state;
	assert_non_null(all);
	for (int i = 0; i < 3; i++)
		head[i] = rx_buf(c, &g[i], 1000);
	fake_kick(&c->f, NET_RXQ);
	peer_send(c, &h, 2500, 9);
	assert_true(watch_readable(c));
	tap_ready(c);
	expect_used(c, NET_RXQ, head[0], 1000);
	expect_used(c, NET_RXQ, head[1], 1000);
	expect_used(c, NET_RXQ, head[2], NET_HDR_SIZE + 2500 - 2000);
	for (int i = 0; i < 3; i++)
		memcpy(all + 1000 * i, fake_ptr(&c->f, g[i], 1000),
		       i < 2 ? 1000 : NET_HDR_SIZE + 500);
	memcpy(&got, all, sizeof(got));
	assert_int_equal(got.num_buffers, 3);
	assert_int_equal(got.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	fill_frame(want, 2500, 9);
	assert_memory_equal(all + NET_HDR_SIZE, want, 2500);
	assert_int_equal(stats(c).rx_frames, 1);
	assert_int_equal(stats(c).rx_bytes, 2500);
	assert_false(watch_readable(c));
	free(all);
	done(c);
}

static void test_rx_single_buffers(void **state)
{
	struct ctx *c = setup(NO_MRG, QSIZE);
	struct virtio_net_hdr got;
	uint64_t g, g2;
	uint16_t head, head2;
	uint8_t want[1500];

	(void)state;
	head = rx_buf(c, &g, 1526);
	fake_kick(&c->f, NET_RXQ);
	/* Too big for the buffer: dropped, and the buffer stays for the
	 * next frame. */
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 2000, 1);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 1500, 2);
	tap_ready(c);
	expect_used(c, NET_RXQ, head, NET_HDR_SIZE + 1500);
	memcpy(&got, fake_ptr(&c->f, g, NET_HDR_SIZE), sizeof(got));
	assert_int_equal(got.num_buffers, 1);
	fill_frame(want, 1500, 2);
	assert_memory_equal(fake_ptr(&c->f, g + NET_HDR_SIZE, 1500), want,
			    1500);
	assert_int_equal(stats(c).rx_dropped, 1);
	assert_int_equal(stats(c).rx_frames, 1);

	/* A chain of two buffers with the header split across them. */
	{
		uint64_t a = fake_alloc(&c->f, 7), b = fake_alloc(&c->f, 200);
		struct fake_buf bb[2] = { { a, 7, true }, { b, 200, true } };

		head2 = fake_add_chain(&c->f, NET_RXQ, bb, 2);
		fake_kick(&c->f, NET_RXQ);
		peer_send(c, &(struct virtio_net_hdr){ .gso_size = 5 }, 100, 3);
		tap_ready(c);
		expect_used(c, NET_RXQ, head2, NET_HDR_SIZE + 100);
		memcpy(&got, fake_ptr(&c->f, a, 7), 7);
		memcpy((uint8_t *)&got + 7, fake_ptr(&c->f, b, 5), 5);
		assert_int_equal(got.gso_size, 5);
		assert_int_equal(got.num_buffers, 1);
		fill_frame(want, 100, 3);
		assert_memory_equal(fake_ptr(&c->f, b + 5, 100), want, 100);
	}
	(void)g2;
	done(c);
}

/* No buffers: the frame is held, the tap leaves the watched set (no
 * wakeups while the socket stays readable), and the next rx kick
 * delivers it and re-arms. */
static void test_rx_hold_without_polling(void **state)
{
	struct ctx *c = setup(ALL_FEATURES, QSIZE);
	uint64_t g;
	uint16_t head;
	uint32_t id, len;
	uint8_t want[300];

	(void)state;
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 300, 4);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 301, 5);
	assert_true(watch_readable(c));
	tap_ready(c);
	assert_false(fake_get_used(&c->f, NET_RXQ, &id, &len));
	assert_int_equal(stats(c).rx_held, 1);
	assert_false(net_rx_polling(c->f.d));
	assert_false(watch_readable(c));
	/* A spurious wakeup changes nothing. */
	tap_ready(c);
	assert_int_equal(stats(c).rx_held, 1);

	head = rx_buf(c, &g, 400);
	fake_kick(&c->f, NET_RXQ);
	expect_used(c, NET_RXQ, head, NET_HDR_SIZE + 300);
	fill_frame(want, 300, 4);
	assert_memory_equal(fake_ptr(&c->f, g + NET_HDR_SIZE, 300), want, 300);
	/* The second frame found the ring empty again. */
	assert_int_equal(stats(c).rx_held, 2);
	assert_false(watch_readable(c));
	head = rx_buf(c, &g, 400);
	fake_kick(&c->f, NET_RXQ);
	expect_used(c, NET_RXQ, head, NET_HDR_SIZE + 301);
	assert_true(net_rx_polling(c->f.d));
	assert_false(watch_readable(c));
	assert_int_equal(stats(c).rx_frames, 2);

	/* A ring whose buffers together cannot take the frame: dropped,
	 * the buffers stay available. */
	done(c);
	c = setup(ALL_FEATURES, 4);
	for (int i = 0; i < 4; i++)
		rx_buf(c, &g, 100);
	fake_kick(&c->f, NET_RXQ);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 1000, 6);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 150, 7);
	tap_ready(c);
	assert_int_equal(stats(c).rx_dropped, 1);
	assert_true(fake_get_used(&c->f, NET_RXQ, &id, &len));
	assert_int_equal(len, 100);
	assert_true(fake_get_used(&c->f, NET_RXQ, &id, &len));
	assert_int_equal(len, NET_HDR_SIZE + 150 - 100);
	assert_false(fake_broken(&c->f));
	done(c);
}

static void test_rx_hostile_backend(void **state)
{
	struct ctx *c =
		setup(ALL_FEATURES & ~(1ULL << VIRTIO_NET_F_GUEST_TSO6), QSIZE);
	uint8_t *big = calloc(1, NET_HDR_SIZE + NET_MAX_FRAME + 1);
	uint64_t g;
	uint16_t head;

	(void)state;
	assert_non_null(big);
	head = rx_buf(c, &g, 2000);
	fake_kick(&c->f, NET_RXQ);
	assert_int_equal(send(c->peer, big, 5, 0), 5);
	assert_int_equal(send(c->peer, big, NET_HDR_SIZE + NET_MAX_FRAME + 1,
			      0),
			 NET_HDR_SIZE + NET_MAX_FRAME + 1);
	peer_send(
		c,
		&(struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
					  .gso_type = VIRTIO_NET_HDR_GSO_TCPV6,
					  .gso_size = 1400 },
		1500, 0);
	peer_send(c,
		  &(struct virtio_net_hdr){
			  .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
			  .gso_type = VIRTIO_NET_HDR_GSO_TCPV4 },
		  1500, 0);
	peer_send(c, &(struct virtio_net_hdr){ .flags = 0x40 }, 100, 0);
	peer_send(c,
		  &(struct virtio_net_hdr){ .flags =
						    VIRTIO_NET_HDR_F_NEEDS_CSUM,
					    .csum_start = 99 },
		  100, 0);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 10, 0);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 64, 8);
	tap_ready(c);
	assert_int_equal(stats(c).rx_dropped, 7);
	expect_used(c, NET_RXQ, head, NET_HDR_SIZE + 64);
	assert_false(fake_broken(&c->f));
	free(big);
	done(c);

	/* A GRO'd frame the kernel verified: GSO with DATA_VALID instead of
	 * NEEDS_CSUM is passed on as is. */
	c = setup(ALL_FEATURES, QSIZE);
	head = rx_buf(c, &g, 4000);
	fake_kick(&c->f, NET_RXQ);
	peer_send(
		c,
		&(struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_DATA_VALID,
					  .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
					  .hdr_len = 66,
					  .gso_size = 1448 },
		2962, 0);
	tap_ready(c);
	expect_used(c, NET_RXQ, head, NET_HDR_SIZE + 2962);
	assert_int_equal(stats(c).rx_dropped, 0);
	done(c);

	/* Without GUEST_CSUM the kernel's DATA_VALID is not passed on. */
	c = setup(~(1ULL << VIRTIO_NET_F_GUEST_CSUM), QSIZE);
	head = rx_buf(c, &g, 2000);
	fake_kick(&c->f, NET_RXQ);
	peer_send(c, &(struct virtio_net_hdr){ .flags = 2 }, 64, 0);
	tap_ready(c);
	expect_used(c, NET_RXQ, head, NET_HDR_SIZE + 64);
	assert_int_equal(*(uint8_t *)fake_ptr(&c->f, g, 1), 0);
	done(c);

	/* The backend going away breaks the device once, and the watch
	 * goes quiet (no wakeup loop on the hung-up socket). */
	c = setup(ALL_FEATURES, QSIZE);
	rx_buf(c, &g, 2000);
	fake_kick(&c->f, NET_RXQ);
	close(c->peer);
	c->peer = -1;
	assert_true(watch_readable(c));
	tap_ready(c);
	assert_true(fake_broken(&c->f));
	assert_false(watch_readable(c));
	done(c);
}

static void test_rx_bad_chains(void **state)
{
	struct ctx *c = setup(ALL_FEATURES, QSIZE);
	uint64_t g = fake_alloc(&c->f, 100), w = fake_alloc(&c->f, 100);
	struct fake_buf b[2] = { { g, 100, false }, { w, 100, true } };

	(void)state;
	fake_add_chain(&c->f, NET_RXQ, b, 2);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 64, 0);
	tap_ready(c);
	assert_true(fake_broken(&c->f));
	assert_false(watch_readable(c));
	done(c);

	/* MRG_RXBUF: a buffer smaller than the header breaks the rule of
	 * 5.1.6.3.1. */
	c = setup(ALL_FEATURES, QSIZE);
	rx_buf(c, &g, 8);
	fake_kick(&c->f, NET_RXQ);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 64, 0);
	tap_ready(c);
	assert_true(fake_broken(&c->f));
	done(c);

	/* A descriptor index out of range in the rx ring. */
	c = setup(ALL_FEATURES, QSIZE);
	fake_set_desc(&c->f, NET_RXQ, 0, w, 100,
		      VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 999);
	fake_publish(&c->f, NET_RXQ, 0);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 64, 0);
	tap_ready(c);
	assert_true(fake_broken(&c->f));
	assert_false(watch_readable(c));
	done(c);
}

#define MS 1000000ULL

/* The bucket's arithmetic on a controlled clock. */
static void test_token_bucket(void **state)
{
	struct token_bucket tb;

	(void)state;
	tb_init(&tb, 0, 0, 0, 0);
	assert_int_equal(tb_consume(&tb, UINT64_MAX, 0), 0);

	/* 1000 tokens per 100 ms, starting full. */
	tb_init(&tb, 1000, 0, 100, 0);
	assert_int_equal(tb_available(&tb, 0), 1000);
	assert_int_equal(tb_consume(&tb, 600, 0), 0);
	assert_int_equal(tb_available(&tb, 0), 400);
	/* 600 more need 200 more tokens: 20 ms. */
	assert_int_equal(tb_consume(&tb, 600, 0), 20 * MS);
	assert_int_equal(tb_available(&tb, 0), 400);
	assert_true(tb_consume(&tb, 600, 20 * MS - 1) > 0);
	assert_int_equal(tb_consume(&tb, 600, 20 * MS), 0);
	assert_int_equal(tb_available(&tb, 20 * MS), 0);
	/* Refill caps at the size. */
	assert_int_equal(tb_available(&tb, 10000 * MS), 1000);

	/* Larger than the bucket: passes only from full, then owes the
	 * excess (2500 - 1000 = 1500 tokens = 150 ms before anything). */
	assert_int_equal(tb_consume(&tb, 2500, 10000 * MS), 0);
	assert_int_equal(tb_available(&tb, 10000 * MS), 0);
	assert_int_equal(tb_consume(&tb, 1, 10000 * MS), 150 * MS + 100000);
	assert_true(tb_consume(&tb, 2500, 10100 * MS) > 0);
	assert_int_equal(tb_consume(&tb, 2500, 10250 * MS), 0);

	/* A one-time burst is spent first and never comes back. */
	tb_init(&tb, 100, 500, 1000, 0);
	assert_int_equal(tb_available(&tb, 0), 600);
	assert_int_equal(tb_consume(&tb, 450, 0), 0);
	assert_int_equal(tb_consume(&tb, 150, 0), 0);
	assert_int_equal(tb_available(&tb, 0), 0);
	assert_int_equal(tb_available(&tb, 5000 * MS), 100);
}

static bool wait_timer(struct ctx *c, int ms)
{
	struct pollfd p = { c->f.d->watch_fds[1], POLLIN, 0 };

	return poll(&p, 1, ms) == 1;
}

static void timer_ready(struct ctx *c)
{
	struct virtio_dev *d = c->f.d;

	pthread_mutex_lock(&d->lock);
	d->ops->fd_ready(d, d->watch_fds[1]);
	pthread_mutex_unlock(&d->lock);
}

/* tx at 20000 B/s (a bucket of 20000): three 8000-byte frames, the third
 * waits in the ring, not dropped, and goes when the timerfd fires about
 * 200 ms later. */
static void test_tx_rate_limit(void **state)
{
	struct net_config cfg = { .tap = "t", .tx_rate = 20000 };
	struct ctx *c = setup_cfg(&cfg, ALL_FEATURES, QSIZE);
	static uint8_t buf[NET_HDR_SIZE + 8000];
	uint32_t id, len;
	uint64_t t0;

	(void)state;
	assert_int_equal(c->f.d->nr_watch_fds, 2);
	for (unsigned int i = 0; i < 3; i++)
		tx_split(c, &(struct virtio_net_hdr){ 0 }, 8000, i);
	t0 = now_ns();
	fake_kick(&c->f, NET_TXQ);
	assert_true(fake_get_used(&c->f, NET_TXQ, &id, &len));
	assert_true(fake_get_used(&c->f, NET_TXQ, &id, &len));
	assert_false(fake_get_used(&c->f, NET_TXQ, &id, &len));
	assert_int_equal(stats(c).tx_frames, 2);
	assert_int_equal(stats(c).tx_throttled, 1);
	/* Another kick while over budget changes nothing. */
	fake_kick(&c->f, NET_TXQ);
	assert_int_equal(stats(c).tx_frames, 2);
	assert_true(wait_timer(c, 2000));
	assert_true(now_ns() - t0 >= 150 * MS);
	timer_ready(c);
	assert_true(fake_get_used(&c->f, NET_TXQ, &id, &len));
	assert_int_equal(stats(c).tx_frames, 3);
	assert_int_equal(stats(c).tx_dropped, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(peer_recv(c, buf, sizeof(buf)),
				 NET_HDR_SIZE + 8000);
	done(c);
}

/* rx at 20000 B/s: the frame over budget is held, the tap unwatched, and
 * it is delivered once (charged once) when the timer fires. */
static void test_rx_rate_limit(void **state)
{
	struct net_config cfg = { .tap = "t", .rx_rate = 20000 };
	struct ctx *c = setup_cfg(&cfg, ALL_FEATURES, QSIZE);
	uint64_t g;
	uint32_t id, len;

	(void)state;
	for (int i = 0; i < 8; i++)
		rx_buf(c, &g, 4096);
	fake_kick(&c->f, NET_RXQ);
	for (unsigned int i = 0; i < 3; i++)
		peer_send(c, &(struct virtio_net_hdr){ 0 }, 8000, i);
	tap_ready(c);
	assert_int_equal(stats(c).rx_frames, 2);
	assert_int_equal(stats(c).rx_throttled, 1);
	assert_false(net_rx_polling(c->f.d));
	assert_false(watch_readable(c));
	assert_true(wait_timer(c, 2000));
	timer_ready(c);
	assert_int_equal(stats(c).rx_frames, 3);
	assert_int_equal(stats(c).rx_dropped, 0);
	assert_true(net_rx_polling(c->f.d));
	for (int i = 0; i < 6; i++)
		assert_true(fake_get_used(&c->f, NET_RXQ, &id, &len));
	done(c);

	/* A frame held for lack of buffers is charged once, not again
	 * when it is finally delivered: two 8000-byte frames fit 20000. */
	c = setup_cfg(&cfg, ALL_FEATURES, QSIZE);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 8000, 1);
	tap_ready(c);
	assert_int_equal(stats(c).rx_held, 1);
	for (int i = 0; i < 4; i++)
		rx_buf(c, &g, 4096);
	fake_kick(&c->f, NET_RXQ);
	assert_int_equal(stats(c).rx_frames, 1);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 8000, 2);
	tap_ready(c);
	assert_int_equal(stats(c).rx_frames, 2);
	assert_int_equal(stats(c).rx_throttled, 0);
	done(c);
}

/* The real I/O thread (src/virtio/iothread.c) around the device: while a
 * frame is held for lack of buffers and the socket stays readable, the
 * thread sleeps (next to no CPU over 300 ms); an rx doorbell then gets
 * the frame delivered. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void test_iothread_no_busy_loop(void **state)
{
	struct ctx *c = setup(ALL_FEATURES, QSIZE);
	struct virtio_iothread t;
	struct net_stats st;
	int kick[2];
	uint64_t g, one = 1, cpu0, cpu1;
	uint32_t id, len;
	struct err e;
	int w;

	(void)state;
	for (int q = 0; q < 2; q++) {
		kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(kick[q] >= 0);
	}
	assert_int_equal(virtio_iothread_start(&t, c->f.d, kick, &e), 0);
	/* One frame gets held, the second keeps the socket readable. */
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 500, 1);
	peer_send(c, &(struct virtio_net_hdr){ 0 }, 501, 2);
	for (w = 0; w < 200; w++) {
		pthread_mutex_lock(&c->f.d->lock);
		net_get_stats(c->f.d, &st);
		pthread_mutex_unlock(&c->f.d->lock);
		if (st.rx_held)
			break;
		usleep(10000);
	}
	assert_true(st.rx_held >= 1);
	cpu0 = cpu_ns();
	usleep(300000);
	cpu1 = cpu_ns();
	if (cpu1 - cpu0 > 50 * MS)
		fail_msg("%llu ms of CPU in 300 ms with a frame held",
			 (unsigned long long)((cpu1 - cpu0) / MS));
	pthread_mutex_lock(&c->f.d->lock);
	net_get_stats(c->f.d, &st);
	pthread_mutex_unlock(&c->f.d->lock);
	assert_int_equal(st.rx_held, 1);
	pthread_mutex_lock(&c->f.d->lock);
	rx_buf(c, &g, 1000);
	rx_buf(c, &g, 1000);
	pthread_mutex_unlock(&c->f.d->lock);
	assert_int_equal(write(kick[NET_RXQ], &one, sizeof(one)), 8);
	for (uint32_t want = 500; want <= 501; want++) {
		for (w = 0;
		     w < 200 && !fake_get_used(&c->f, NET_RXQ, &id, &len); w++)
			usleep(10000);
		assert_true(w < 200);
		assert_int_equal(len, NET_HDR_SIZE + want);
	}
	virtio_iothread_stop(&t);
	close(kick[0]);
	close(kick[1]);
	done(c);
}

/* A real tap in a private network namespace: the device opens it,
 * sets the vnet header size and the offloads, and frames cross it both
 * ways (seen and injected through an AF_PACKET socket on the tap). With
 * vhost, on a host without /dev/vhost-net: the same, through the
 * fallback to wisp's own device (the rig runs vhost-net itself). */
static int tap_child(bool vhost)
{
	struct ifreq ifr = { 0 };
	struct net_config cfg = { .tap = "wtap0", .vhost = vhost };
	struct fake_driver *f = calloc(1, sizeof(*f));
	struct virtio_dev *d;
	struct err e;
	int fd, ps, sock, ret;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_ALL) };
	uint8_t frame[NET_HDR_SIZE + 60], got[2048];
	uint64_t g;
	struct fake_buf b;
	uint32_t id, len;

	if (!f || unshare(CLONE_NEWNET) < 0 ||
	    (vhost && access("/dev/vhost-net", F_OK) == 0))
		return 77;
	/* No IPv6 chatter (router solicitations, MLD) on the new tap. */
	for (int i = 0; i < 2; i++) {
		int s = open(
			i ? "/proc/sys/net/ipv6/conf/default/disable_ipv6" :
			    "/proc/sys/net/ipv6/conf/all/disable_ipv6",
			O_WRONLY | O_CLOEXEC);

		if (s >= 0) {
			if (write(s, "1", 1) != 1)
				return 9;
			close(s);
		}
	}
	/* Missing tap: a config error that names it, and nothing made. */
	ret = net_create(&cfg, &f->mem, &d, &e);
	if (ret != -ENODEV || e.cls != ERR_CONFIG || !strstr(e.msg, "wtap0"))
		return 10;
	if (if_nametoindex("wtap0"))
		return 11;
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 77;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "wtap0");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0)
		return 77;
	close(fd);
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ifr.ifr_flags = IFF_UP;
	if (sock < 0 || ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
		return 12;

	fake_init(f);
	if (net_create(&cfg, &f->mem, &d, &e))
		return 13;
	if (strstr(d->name, "vhost"))
		return 22;
	fake_attach(f, d, ~0ULL, QSIZE);
	if (net_current_offloads(d) !=
	    (NET_TUN_F_CSUM | NET_TUN_F_TSO4 | NET_TUN_F_TSO6))
		return 14;
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	sll.sll_ifindex = (int)if_nametoindex("wtap0");
	if (ps < 0 || bind(ps, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		return 15;

	/* Guest -> kernel: a broadcast frame with an unused EtherType. */
	memset(frame, 0, sizeof(frame));
	memset(frame + NET_HDR_SIZE, 0xff, 6);
	memcpy(frame + NET_HDR_SIZE + 6, "\x02\x00\x00\x00\x00\x01", 6);
	frame[NET_HDR_SIZE + 12] = 0x88;
	frame[NET_HDR_SIZE + 13] = 0xb5;
	fill_frame(frame + NET_HDR_SIZE + 14, 46, 42);
	g = fake_alloc(f, sizeof(frame));
	memcpy(fake_ptr(f, g, sizeof(frame)), frame, sizeof(frame));
	b = (struct fake_buf){ g, sizeof(frame), false };
	fake_add_chain(f, NET_TXQ, &b, 1);
	fake_kick(f, NET_TXQ);
	for (;;) {
		struct pollfd p = { ps, POLLIN, 0 };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);

		if (poll(&p, 1, 2000) != 1)
			return 16;
		ret = (int)recvfrom(ps, got, sizeof(got), 0,
				    (struct sockaddr *)&from, &fl);
		if (ret < 0)
			return 16;
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;
		if (ret != 60 || memcmp(got, frame + NET_HDR_SIZE, 60))
			return 17;
		break;
	}

	/* Kernel -> guest: sent on the tap, read by the device. */
	g = fake_alloc(f, 2048);
	b = (struct fake_buf){ g, 2048, true };
	fake_add_chain(f, NET_RXQ, &b, 1);
	fake_kick(f, NET_RXQ);
	frame[NET_HDR_SIZE + 20] ^= 0x5a;
	if (send(ps, frame + NET_HDR_SIZE, 60, 0) != 60)
		return 18;
	{
		struct pollfd p = { d->watch_fds[0], POLLIN, 0 };

		if (poll(&p, 1, 2000) != 1)
			return 19;
	}
	pthread_mutex_lock(&d->lock);
	d->ops->fd_ready(d, d->watch_fds[0]);
	pthread_mutex_unlock(&d->lock);
	if (!fake_get_used(f, NET_RXQ, &id, &len) || len != NET_HDR_SIZE + 60)
		return 20;
	if (memcmp(fake_ptr(f, g + NET_HDR_SIZE, 60), frame + NET_HDR_SIZE, 60))
		return 21;
	fake_destroy(f);
	free(f);
	return 0;
}

static void real_tap(bool vhost)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(tap_child(vhost));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		skip();
	if (WEXITSTATUS(st))
		fail_msg("tap test failed at step %d", WEXITSTATUS(st));
}

static void test_real_tap(void **state)
{
	(void)state;
	real_tap(false);
}

static void test_real_tap_vhost_fallback(void **state)
{
	(void)state;
	real_tap(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_and_features),
		cmocka_unit_test(test_offload_flags),
		cmocka_unit_test(test_tx_split_header),
		cmocka_unit_test(test_tx_hostile_headers),
		cmocka_unit_test(test_tx_bad_chains),
		cmocka_unit_test(test_rx_mergeable),
		cmocka_unit_test(test_rx_single_buffers),
		cmocka_unit_test(test_rx_hold_without_polling),
		cmocka_unit_test(test_rx_hostile_backend),
		cmocka_unit_test(test_rx_bad_chains),
		cmocka_unit_test(test_token_bucket),
		cmocka_unit_test(test_tx_rate_limit),
		cmocka_unit_test(test_rx_rate_limit),
		cmocka_unit_test(test_iothread_no_busy_loop),
		cmocka_unit_test(test_real_tap),
		cmocka_unit_test(test_real_tap_vhost_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
