// SPDX-License-Identifier: MIT
/* virtio-vsock: the connection state machine (conn.h) driven packet by
 * packet against real unix sockets in a private directory (connect,
 * credit both ways, half-close and shutdown, RST, bogus operations,
 * unknown ports, oversize packets, the host CONNECT handshake, many
 * connections, the bounded waits), the CONNECT line parser, and the
 * device through the fake driver (rings, hostile chains, rx without
 * buffers, the TRANSPORT_RESET event). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/vsock/conn.h"
#include "devices/vsock/uds.h"
#include "devices/vsock/vsock.h"
#include "fake_driver.h"

#define CID 3
#define GPORT 5000 /* the guest's ephemeral port */

struct ctx {
	char dir[64], uds[96];
	struct vsock_mux *m;
	uint8_t buf[VSOCK_MAX_PKT];
};

static struct ctx *setup(void)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct err e;

	assert_non_null(c);
	snprintf(c->dir, sizeof(c->dir), "/tmp/wisp-vsock-XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	snprintf(c->uds, sizeof(c->uds), "%s/v.sock", c->dir);
	assert_int_equal(vsock_mux_create(CID, c->uds, &c->m, &e), 0);
	return c;
}

static void rm_dir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void done(struct ctx *c)
{
	struct stat st;

	vsock_mux_destroy(c->m);
	/* The listener's path goes with the mux. */
	assert_int_not_equal(stat(c->uds, &st), 0);
	rm_dir(c->dir);
	free(c);
}

static struct vsock_mux_stats stats(struct ctx *c)
{
	struct vsock_mux_stats s;

	vsock_mux_get_stats(c->m, &s);
	return s;
}

/* A host listener at "<uds>_port". */
static int host_listen(struct ctx *c, uint32_t port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", c->uds, port);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 512), 0);
	return fd;
}

/* A host client of the mux's own socket. */
static int host_dial(struct ctx *c)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", c->uds);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void guest(struct ctx *c, uint16_t op, uint32_t gport, uint32_t hport,
		  const void *data, uint32_t len, uint32_t flags)
{
	struct vsock_hdr h = {
		.src_cid = CID,
		.dst_cid = VSOCK_HOST_CID,
		.src_port = gport,
		.dst_port = hport,
		.len = len,
		.type = VSOCK_TYPE_STREAM,
		.op = op,
		.flags = flags,
		.buf_alloc = 256 << 10,
		.fwd_cnt = 0,
	};

	vsock_mux_from_guest(c->m, &h, data, len);
}

/* The guest's next packet, after looking at the host sockets. */
static bool next(struct ctx *c, struct vsock_hdr *h)
{
	vsock_mux_poll(c->m);
	return vsock_mux_to_guest(c->m, h, c->buf, sizeof(c->buf));
}

static void expect_pkt(struct ctx *c, uint16_t op, uint32_t src, uint32_t dst)
{
	struct vsock_hdr h;

	assert_true(next(c, &h));
	assert_int_equal(h.op, op);
	assert_int_equal(h.src_cid, VSOCK_HOST_CID);
	assert_int_equal(h.dst_cid, CID);
	assert_int_equal(h.src_port, src);
	assert_int_equal(h.dst_port, dst);
	assert_int_equal(h.type, VSOCK_TYPE_STREAM);
	if (op != VSOCK_OP_RW)
		assert_int_equal(h.len, 0);
}

static void expect_nothing(struct ctx *c)
{
	struct vsock_hdr h;

	assert_false(next(c, &h));
}

/* Waits (bounded) until fd has something to read or has hung up. */
static void wait_readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };

	assert_int_equal(poll(&p, 1, 2000), 1);
}

/* The peer closed: end-of-file, or ECONNRESET when it closed with
 * bytes of ours unread. */
static void expect_eof(int fd)
{
	char b;
	ssize_t r;

	wait_readable(fd);
	r = recv(fd, &b, 1, 0);
	assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
}

static int accept_one(int lfd)
{
	int fd;

	wait_readable(lfd);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* Guest connects to host port hport from gport; returns the host's
 * accepted end. */
static int guest_connect(struct ctx *c, int lfd, uint32_t gport, uint32_t hport)
{
	guest(c, VSOCK_OP_REQUEST, gport, hport, NULL, 0, 0);
	expect_pkt(c, VSOCK_OP_RESPONSE, hport, gport);
	return accept_one(lfd);
}

static void test_parse_connect(void **state)
{
	static const char *const bad[] = {
		"CONNECT \n",
		"CONNECT 1",
		"connect 1\n",
		"CONNECT  1\n",
		"CONNECT +1\n",
		"CONNECT -1\n",
		"CONNECT 01\n",
		"CONNECT 1 \n",
		"CONNECT 4294967296\n",
		"CONNECT 1x\n",
		"CONNECT 99999999999999999999\n",
		"CONNECT 1\n\n",
		"CONNECTX 1\n",
	};
	uint32_t port = 7;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vsock_uds_parse_connect(bad[i], strlen(bad[i]),
							 &port),
				 -EINVAL);
	assert_int_equal(port, 7);
	assert_int_equal(vsock_uds_parse_connect("CONNECT 0\n", 10, &port), 0);
	assert_int_equal(port, 0);
	assert_int_equal(
		vsock_uds_parse_connect("CONNECT 4294967295\n", 19, &port), 0);
	assert_int_equal(port, 4294967295u);
}

/* Guest to host: REQUEST, RESPONSE, data both ways, RST. */
static void test_guest_connect(void **state)
{
	struct ctx *c = setup();
	int lfd = host_listen(c, 1234), h;
	char b[16];
	struct vsock_hdr p;

	(void)state;
	h = guest_connect(c, lfd, GPORT, 1234);
	assert_int_equal(stats(c).conns, 1);
	guest(c, VSOCK_OP_RW, GPORT, 1234, "hello", 5, 0);
	assert_int_equal(recv(h, b, sizeof(b), 0), 5);
	assert_memory_equal(b, "hello", 5);
	assert_int_equal(send(h, "world!", 6, 0), 6);
	/* A buffer with room for a header only takes no data (and the
	 * search for a packet ends). */
	vsock_mux_poll(c->m);
	assert_false(vsock_mux_to_guest(c->m, &p, c->buf, 0));
	assert_true(next(c, &p));
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_int_equal(p.len, 6);
	assert_memory_equal(c->buf, "world!", 6);
	/* Our credit: what we take, and what the host has consumed. */
	assert_int_equal(p.buf_alloc, VSOCK_BUF_ALLOC);
	assert_int_equal(p.fwd_cnt, 5);
	expect_nothing(c);
	/* The guest's RST closes the host's end, with no reply. */
	guest(c, VSOCK_OP_RST, GPORT, 1234, NULL, 0, 0);
	expect_eof(h);
	expect_nothing(c);
	assert_int_equal(stats(c).conns, 0);
	close(h);
	close(lfd);
	done(c);
}

/* Nobody listens, bogus packets for no connection, wrong addresses. */
static void test_unknown_ports(void **state)
{
	struct ctx *c = setup();
	struct vsock_hdr h = {
		.src_cid = 4, /* not the guest's */
		.dst_cid = VSOCK_HOST_CID,
		.src_port = GPORT,
		.dst_port = 1,
		.type = VSOCK_TYPE_STREAM,
		.op = VSOCK_OP_REQUEST,
	};

	(void)state;
	guest(c, VSOCK_OP_REQUEST, GPORT, 999, NULL, 0, 0);
	expect_pkt(c, VSOCK_OP_RST, 999, GPORT);
	guest(c, VSOCK_OP_RW, GPORT, 998, "x", 1, 0);
	expect_pkt(c, VSOCK_OP_RST, 998, GPORT);
	guest(c, VSOCK_OP_SHUTDOWN, GPORT, 997, NULL, 0, 3);
	expect_pkt(c, VSOCK_OP_RST, 997, GPORT);
	/* An RST for nothing is not answered (no RST ping-pong). */
	guest(c, VSOCK_OP_RST, GPORT, 996, NULL, 0, 0);
	expect_nothing(c);
	/* Forged source or a destination that is not the host: dropped,
	 * an answer would go to an address the guest does not have. */
	vsock_mux_from_guest(c->m, &h, NULL, 0);
	h.src_cid = CID;
	h.dst_cid = 7;
	vsock_mux_from_guest(c->m, &h, NULL, 0);
	expect_nothing(c);
	assert_int_equal(stats(c).bad_packets, 2);
	/* Not a stream: refused. */
	h.dst_cid = VSOCK_HOST_CID;
	h.type = 2;
	vsock_mux_from_guest(c->m, &h, NULL, 0);
	expect_pkt(c, VSOCK_OP_RST, 1, GPORT);
	assert_int_equal(stats(c).conns, 0);
	done(c);
}

/* The replies to unknown connections are bounded: a flood gets the
 * first VSOCK_RST_RING answers, the rest are dropped and counted. */
static void test_rst_flood(void **state)
{
	struct ctx *c = setup();
	struct vsock_hdr h;
	int n = 0;

	(void)state;
	for (int i = 0; i < VSOCK_RST_RING + 100; i++)
		guest(c, VSOCK_OP_RW, GPORT + (uint32_t)i, 1, "x", 1, 0);
	while (next(c, &h))
		n++;
	assert_int_equal(n, VSOCK_RST_RING);
	assert_int_equal(stats(c).rst_dropped, 100);
	done(c);
}

/* Host to guest: "CONNECT P\n", the guest's REQUEST on port P from a
 * host port of wisp's choosing, "OK <port>\n" after the RESPONSE, and
 * bytes sent along with the line reach the guest. */
static void test_host_connect(void **state)
{
	struct ctx *c = setup();
	int h = host_dial(c);
	const char want[] = "OK 1073741824\n";
	struct vsock_hdr p;
	char b[32];

	(void)state;
	assert_int_equal(send(h, "CONNECT 52\nextra", 16, 0), 16);
	expect_pkt(c, VSOCK_OP_REQUEST, VSOCK_LOCAL_PORT_BASE, 52);
	expect_nothing(c);
	/* Nothing for the host before the guest answers. */
	assert_int_equal(recv(h, b, sizeof(b), MSG_DONTWAIT), -1);
	guest(c, VSOCK_OP_RESPONSE, 52, VSOCK_LOCAL_PORT_BASE, NULL, 0, 0);
	wait_readable(h);
	assert_int_equal(recv(h, b, sizeof(b), 0), (ssize_t)strlen(want));
	assert_memory_equal(b, want, strlen(want));
	assert_true(next(c, &p));
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_int_equal(p.len, 5);
	assert_memory_equal(c->buf, "extra", 5);
	guest(c, VSOCK_OP_RW, 52, VSOCK_LOCAL_PORT_BASE, "back", 4, 0);
	assert_int_equal(recv(h, b, sizeof(b), 0), 4);
	assert_memory_equal(b, "back", 4);
	assert_int_equal(stats(c).conns_opened, 1);
	close(h);
	/* The host hung up: SHUTDOWN both ways, then the guest's RST. */
	expect_pkt(c, VSOCK_OP_SHUTDOWN, VSOCK_LOCAL_PORT_BASE, 52);
	guest(c, VSOCK_OP_RST, 52, VSOCK_LOCAL_PORT_BASE, NULL, 0, 0);
	assert_int_equal(stats(c).conns, 0);

	/* A guest that refuses: the host client is closed without OK. */
	h = host_dial(c);
	assert_int_equal(send(h, "CONNECT 53\n", 11, 0), 11);
	expect_pkt(c, VSOCK_OP_REQUEST, VSOCK_LOCAL_PORT_BASE + 1, 53);
	guest(c, VSOCK_OP_RST, 53, VSOCK_LOCAL_PORT_BASE + 1, NULL, 0, 0);
	expect_eof(h);
	close(h);
	done(c);
}

/* Bad CONNECT lines: the client is cut and counted, nothing reaches
 * the guest; a line in pieces is fine. */
static void test_host_bad_lines(void **state)
{
	static const char *const bad[] = {
		"CONNECT\n",
		"CONNECT 99999999999\n",
		"HELLO 1\n",
		"CONNECT 1 2\n",
		"0123456789012345678901234567890123456789", /* no newline */
	};
	struct ctx *c = setup();
	int h;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		h = host_dial(c);
		assert_int_equal(send(h, bad[i], strlen(bad[i]), 0),
				 (ssize_t)strlen(bad[i]));
		expect_nothing(c);
		expect_eof(h);
		close(h);
	}
	assert_int_equal(stats(c).host_refused, 5);
	h = host_dial(c);
	assert_int_equal(send(h, "CONN", 4, 0), 4);
	expect_nothing(c);
	assert_int_equal(send(h, "ECT 9\n", 6, 0), 6);
	expect_pkt(c, VSOCK_OP_REQUEST, VSOCK_LOCAL_PORT_BASE, 9);
	close(h);
	done(c);
}

/* The guest's credit: never more than buf_alloc - (sent - fwd_cnt)
 * bytes in flight; at zero one CREDIT_REQUEST, then silence until a
 * CREDIT_UPDATE gives room. */
static void test_credit_to_guest(void **state)
{
	struct ctx *c = setup();
	int lfd = host_listen(c, 80), h;
	struct vsock_hdr p = {
		.src_cid = CID,
		.dst_cid = VSOCK_HOST_CID,
		.src_port = GPORT,
		.dst_port = 80,
		.type = VSOCK_TYPE_STREAM,
		.op = VSOCK_OP_REQUEST,
		.buf_alloc = 100,
	};
	char data[300];

	(void)state;
	memset(data, 'd', sizeof(data));
	vsock_mux_from_guest(c->m, &p, NULL, 0);
	expect_pkt(c, VSOCK_OP_RESPONSE, 80, GPORT);
	h = accept_one(lfd);
	assert_int_equal(send(h, data, 300, 0), 300);
	assert_true(next(c, &p));
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_int_equal(p.len, 100);
	expect_pkt(c, VSOCK_OP_CREDIT_REQUEST, 80, GPORT);
	expect_nothing(c);
	/* The guest consumed 60 bytes. */
	p = (struct vsock_hdr){ .src_cid = CID,
				.dst_cid = VSOCK_HOST_CID,
				.src_port = GPORT,
				.dst_port = 80,
				.type = VSOCK_TYPE_STREAM,
				.op = VSOCK_OP_CREDIT_UPDATE,
				.buf_alloc = 100,
				.fwd_cnt = 60 };
	vsock_mux_from_guest(c->m, &p, NULL, 0);
	assert_true(next(c, &p));
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_int_equal(p.len, 60);
	/* A lie (more consumed than sent) gives no credit at all. */
	p = (struct vsock_hdr){ .src_cid = CID,
				.dst_cid = VSOCK_HOST_CID,
				.src_port = GPORT,
				.dst_port = 80,
				.type = VSOCK_TYPE_STREAM,
				.op = VSOCK_OP_CREDIT_UPDATE,
				.buf_alloc = 100,
				.fwd_cnt = 1000 };
	vsock_mux_from_guest(c->m, &p, NULL, 0);
	expect_pkt(c, VSOCK_OP_CREDIT_REQUEST, 80, GPORT);
	expect_nothing(c);
	/* CREDIT_REQUEST from the guest: our fwd_cnt in an update. */
	guest(c, VSOCK_OP_CREDIT_REQUEST, GPORT, 80, NULL, 0, 0);
	assert_true(next(c, &p));
	assert_true(p.op == VSOCK_OP_RW || p.op == VSOCK_OP_CREDIT_UPDATE);
	close(h);
	close(lfd);
	done(c);
}

/* Our credit: a host that does not read makes wisp buffer at most
 * VSOCK_BUF_ALLOC bytes; a guest that sends beyond it is reset, and a
 * well-behaved one hears about freed space. */
static void test_credit_from_guest(void **state)
{
	struct ctx *c = setup();
	int lfd = host_listen(c, 81), h;
	static uint8_t chunk[VSOCK_MAX_PKT], sink[1 << 16];
	struct vsock_hdr p;
	uint64_t sent = 0;
	int i;

	(void)state;
	h = guest_connect(c, lfd, GPORT, 81);
	for (i = 0; i < 200 && !stats(c).credit_violations; i++) {
		guest(c, VSOCK_OP_RW, GPORT, 81, chunk, sizeof(chunk), 0);
		sent += sizeof(chunk);
	}
	assert_int_equal(stats(c).credit_violations, 1);
	/* At least the host socket's buffer plus ours went through. */
	assert_true(sent > VSOCK_BUF_ALLOC);
	assert_int_equal(stats(c).conns, 0);
	/* The CREDIT_UPDATEs on the way, then the RST. */
	while (next(c, &p) && p.op == VSOCK_OP_CREDIT_UPDATE)
		;
	assert_int_equal(p.op, VSOCK_OP_RST);
	close(h);

	/* Well behaved: the host reads, the guest hears about it. */
	h = guest_connect(c, lfd, GPORT + 1, 81);
	guest(c, VSOCK_OP_RW, GPORT + 1, 81, chunk, VSOCK_BUF_ALLOC / 2, 0);
	for (size_t got = 0; got < VSOCK_BUF_ALLOC / 2;) {
		ssize_t r = recv(h, sink, sizeof(sink), 0);

		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_true(next(c, &p));
	assert_int_equal(p.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(p.fwd_cnt, VSOCK_BUF_ALLOC / 2);
	close(h);
	close(lfd);
	done(c);
}

/* Oversize and short packets reset their connection. */
static void test_oversize(void **state)
{
	struct ctx *c = setup();
	int lfd = host_listen(c, 82), h;
	static uint8_t big[VSOCK_MAX_PKT + 1];

	(void)state;
	h = guest_connect(c, lfd, GPORT, 82);
	guest(c, VSOCK_OP_RW, GPORT, 82, big, sizeof(big), 0);
	expect_pkt(c, VSOCK_OP_RST, 82, GPORT);
	expect_eof(h);
	close(h);
	h = guest_connect(c, lfd, GPORT, 82);
	/* len says 100, the chain had 50. */
	{
		struct vsock_hdr p = { .src_cid = CID,
				       .dst_cid = VSOCK_HOST_CID,
				       .src_port = GPORT,
				       .dst_port = 82,
				       .len = 100,
				       .type = VSOCK_TYPE_STREAM,
				       .op = VSOCK_OP_RW };

		vsock_mux_from_guest(c->m, &p, big, 50);
	}
	expect_pkt(c, VSOCK_OP_RST, 82, GPORT);
	expect_eof(h);
	assert_int_equal(stats(c).bad_packets, 2);
	close(h);
	close(lfd);
	done(c);
}

/* Operations that make no sense on a live connection reset it. */
static void test_bogus_ops(void **state)
{
	static const uint16_t ops[] = { VSOCK_OP_INVALID, 99, VSOCK_OP_REQUEST,
					VSOCK_OP_RESPONSE };
	struct ctx *c = setup();
	int lfd = host_listen(c, 83), h;

	(void)state;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		h = guest_connect(c, lfd, GPORT, 83);
		guest(c, ops[i], GPORT, 83, NULL, 0, 0);
		expect_pkt(c, VSOCK_OP_RST, 83, GPORT);
		expect_eof(h);
		assert_int_equal(stats(c).conns, 0);
		close(h);
	}
	/* A host-initiated connection wants a RESPONSE, nothing else. */
	h = host_dial(c);
	assert_int_equal(send(h, "CONNECT 7\n", 10, 0), 10);
	expect_pkt(c, VSOCK_OP_REQUEST, VSOCK_LOCAL_PORT_BASE, 7);
	guest(c, VSOCK_OP_RW, 7, VSOCK_LOCAL_PORT_BASE, "x", 1, 0);
	expect_pkt(c, VSOCK_OP_RST, VSOCK_LOCAL_PORT_BASE, 7);
	expect_eof(h);
	close(h);
	close(lfd);
	done(c);
}

/* Half-close both ways, then the full close. */
static void test_shutdown(void **state)
{
	struct ctx *c = setup();
	int lfd = host_listen(c, 84), h;
	struct vsock_hdr p;
	char b[8];

	(void)state;
	/* The guest stops sending: the host reads EOF and still writes. */
	h = guest_connect(c, lfd, GPORT, 84);
	guest(c, VSOCK_OP_RW, GPORT, 84, "abc", 3, 0);
	guest(c, VSOCK_OP_SHUTDOWN, GPORT, 84, NULL, 0, VSOCK_SHUTDOWN_SEND);
	assert_int_equal(recv(h, b, sizeof(b), 0), 3);
	expect_eof(h);
	assert_int_equal(send(h, "xyz", 3, 0), 3);
	assert_true(next(c, &p));
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_memory_equal(c->buf, "xyz", 3);
	/* RW after its own SHUTDOWN(SEND) is a protocol error. */
	guest(c, VSOCK_OP_RW, GPORT, 84, "late", 4, 0);
	expect_pkt(c, VSOCK_OP_RST, 84, GPORT);
	close(h);

	/* The host stops sending (shutdown SHUT_WR): SHUTDOWN(SEND) to the
	 * guest, which still sends; then the guest closes: RST. */
	h = guest_connect(c, lfd, GPORT + 1, 84);
	assert_int_equal(shutdown(h, SHUT_WR), 0);
	assert_true(next(c, &p));
	assert_int_equal(p.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(p.flags, VSOCK_SHUTDOWN_SEND);
	guest(c, VSOCK_OP_RW, GPORT + 1, 84, "more", 4, 0);
	assert_int_equal(recv(h, b, sizeof(b), 0), 4);
	assert_memory_equal(b, "more", 4);
	guest(c, VSOCK_OP_SHUTDOWN, GPORT + 1, 84, NULL, 0,
	      VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV);
	expect_pkt(c, VSOCK_OP_RST, 84, GPORT + 1);
	expect_eof(h);
	assert_int_equal(stats(c).conns, 0);
	close(h);

	/* Both half-closes: done once both directions are. */
	h = guest_connect(c, lfd, GPORT + 2, 84);
	guest(c, VSOCK_OP_SHUTDOWN, GPORT + 2, 84, NULL, 0,
	      VSOCK_SHUTDOWN_SEND);
	expect_eof(h);
	assert_int_equal(stats(c).conns, 1);
	assert_int_equal(shutdown(h, SHUT_WR), 0);
	assert_true(next(c, &p));
	assert_int_equal(p.op, VSOCK_OP_SHUTDOWN);
	expect_pkt(c, VSOCK_OP_RST, 84, GPORT + 2);
	assert_int_equal(stats(c).conns, 0);
	close(h);
	close(lfd);
	done(c);
}

/* Many connections at once, each with its own data, in both
 * directions; up to the limit, and one more is refused. */
static void test_many(void **state)
{
	enum { N = VSOCK_MAX_CONNS };
	struct ctx *c = setup();
	int lfd = host_listen(c, 85), *h = calloc(N, sizeof(int));
	bool *seen = calloc(N, sizeof(bool));
	struct rlimit rl;
	struct vsock_hdr p;
	int got = 0;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * N + 64 && rl.rlim_max >= 2 * N + 64) {
		rl.rlim_cur = 2 * N + 64;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	assert_true(rl.rlim_cur >= 2 * N + 64);
	for (uint32_t i = 0; i < N; i++) {
		char msg[16];
		int n = snprintf(msg, sizeof(msg), "g%u", i);

		h[i] = guest_connect(c, lfd, GPORT + i, 85);
		guest(c, VSOCK_OP_RW, GPORT + i, 85, msg, (uint32_t)n, 0);
	}
	guest(c, VSOCK_OP_REQUEST, GPORT + N, 85, NULL, 0, 0);
	expect_pkt(c, VSOCK_OP_RST, 85, GPORT + N);
	assert_int_equal(stats(c).conns, N);
	for (uint32_t i = 0; i < N; i++) {
		char msg[16], b[16];
		int n = snprintf(msg, sizeof(msg), "g%u", i);

		assert_int_equal(recv(h[i], b, sizeof(b), 0), n);
		assert_memory_equal(b, msg, (size_t)n);
		n = snprintf(msg, sizeof(msg), "h%u", i);
		assert_int_equal(send(h[i], msg, (size_t)n, 0), n);
	}
	while (got < N && next(c, &p)) {
		uint32_t i = p.dst_port - GPORT;
		char msg[16];
		int n;

		assert_int_equal(p.op, VSOCK_OP_RW);
		assert_true(i < N && !seen[i]);
		n = snprintf(msg, sizeof(msg), "h%u", i);
		assert_int_equal(p.len, n);
		assert_memory_equal(c->buf, msg, (size_t)n);
		seen[i] = true;
		got++;
	}
	assert_int_equal(got, N);
	for (int i = 0; i < N; i++)
		close(h[i]);
	/* Every hang-up becomes a SHUTDOWN. */
	for (got = 0; got < N && next(c, &p); got++)
		assert_int_equal(p.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(got, N);
	free(h);
	free(seen);
	close(lfd);
	done(c);
}

/* Every wait on a peer ends: a host client without a line, a guest
 * that never answers a REQUEST, a guest that never sends the RST after
 * a full shutdown. */
static void test_timeouts(void **state)
{
	struct ctx *c = setup();
	int lfd = host_listen(c, 86), quiet = host_dial(c), asked, g;
	struct timespec ts = { VSOCK_TIMEOUT_MS / 1000 + 1, 0 };
	struct vsock_hdr p;

	(void)state;
	asked = host_dial(c);
	assert_int_equal(send(asked, "CONNECT 5\n", 10, 0), 10);
	expect_pkt(c, VSOCK_OP_REQUEST, VSOCK_LOCAL_PORT_BASE, 5);
	g = guest_connect(c, lfd, GPORT, 86);
	close(g);
	expect_pkt(c, VSOCK_OP_SHUTDOWN, 86, GPORT);
	nanosleep(&ts, NULL);
	vsock_mux_poll(c->m);
	expect_eof(quiet);
	expect_eof(asked);
	assert_int_equal(stats(c).timeouts, 3);
	assert_int_equal(stats(c).conns, 0);
	/* Two RSTs: the unanswered REQUEST and the unfinished close. */
	assert_true(next(c, &p));
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_true(next(c, &p));
	assert_int_equal(p.op, VSOCK_OP_RST);
	expect_nothing(c);
	close(quiet);
	close(asked);
	close(lfd);
	done(c);
}

/* A reset drops every connection and queued answer; the listener stays. */
static void test_reset(void **state)
{
	struct ctx *c = setup();
	int lfd = host_listen(c, 87), h, h2;

	(void)state;
	h = guest_connect(c, lfd, GPORT, 87);
	guest(c, VSOCK_OP_RW, GPORT, 999, "x", 1, 0); /* an RST queued */
	vsock_mux_reset(c->m);
	expect_eof(h);
	expect_nothing(c);
	assert_int_equal(stats(c).conns, 0);
	h2 = host_dial(c);
	assert_int_equal(send(h2, "CONNECT 1\n", 10, 0), 10);
	expect_pkt(c, VSOCK_OP_REQUEST, VSOCK_LOCAL_PORT_BASE, 1);
	close(h);
	close(h2);
	close(lfd);
	done(c);
}

/* A restored device's load (vsock_mux_reset_known, then the hold): a
 * connection the guest knows is dropped; a host client whose REQUEST was
 * never sent survives it and, like one that comes during the hold,
 * waits past its own timeout until the hold ends, then reaches the
 * guest. */
static void test_reset_keeps_unsent(void **state)
{
	struct ctx *c = setup();
	int lfd = host_listen(c, 88), g, h, h2, seen = 0;
	struct timespec ts = { 2, 300000000 };
	struct vsock_hdr p;
	char b[8];

	(void)state;
	g = guest_connect(c, lfd, GPORT, 88);
	h = host_dial(c);
	assert_int_equal(send(h, "CONNECT 60\n", 11, 0), 11);
	vsock_mux_poll(c->m); /* its connection exists, REQUEST unsent */
	assert_int_equal(stats(c).conns, 2);
	vsock_mux_reset_known(c->m);
	vsock_mux_hold_host(c->m, true);
	expect_eof(g);
	assert_int_equal(stats(c).conns, 1);
	h2 = host_dial(c);
	assert_int_equal(send(h2, "CONNECT 61\n", 11, 0), 11);
	expect_nothing(c);
	nanosleep(&ts, NULL); /* beyond VSOCK_TIMEOUT_MS */
	expect_nothing(c);
	assert_int_equal(recv(h, b, sizeof(b), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(recv(h2, b, sizeof(b), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(stats(c).timeouts, 0);
	vsock_mux_hold_host(c->m, false);
	for (int i = 0; i < 2; i++) {
		assert_true(next(c, &p));
		assert_int_equal(p.op, VSOCK_OP_REQUEST);
		assert_true(p.dst_port == 60 || p.dst_port == 61);
		seen |= 1 << (p.dst_port - 60);
	}
	assert_int_equal(seen, 3);
	expect_nothing(c);
	/* and the full reset still drops them */
	vsock_mux_reset(c->m);
	expect_eof(h);
	expect_eof(h2);
	close(g);
	close(h);
	close(h2);
	close(lfd);
	done(c);
}

/* A socket path that exists is refused, not removed. */
/* A client that came before a restored device's state was loaded got
 * its port from the fresh counter, which the guest may still hold a
 * reset socket for (the rig's snapshot-net-vsock saw the guest answer
 * that REQUEST with an RST): the restored counter gives it a new one,
 * and its OK line names that one. */
static void test_restored_port_renumbers(void **state)
{
	struct ctx *c = setup();
	const uint32_t port = VSOCK_LOCAL_PORT_BASE + 7;
	int h = host_dial(c);
	char want[32], b[32];
	int n = snprintf(want, sizeof(want), "OK %u\n", port);

	(void)state;
	assert_int_equal(send(h, "CONNECT 60\n", 11, 0), 11);
	vsock_mux_poll(c->m); /* made with the fresh counter's port */
	assert_int_equal(stats(c).conns, 1);
	assert_int_equal(vsock_mux_set_next_port(c->m, port), 0);
	vsock_mux_reset_known(c->m);
	vsock_mux_hold_host(c->m, true);
	expect_nothing(c);
	vsock_mux_hold_host(c->m, false);
	expect_pkt(c, VSOCK_OP_REQUEST, port, 60);
	expect_nothing(c);
	assert_int_equal(vsock_mux_next_port(c->m), port + 1);
	/* The old pair is unknown now; the new one answers. */
	guest(c, VSOCK_OP_RESPONSE, 60, VSOCK_LOCAL_PORT_BASE, NULL, 0, 0);
	expect_pkt(c, VSOCK_OP_RST, VSOCK_LOCAL_PORT_BASE, 60);
	guest(c, VSOCK_OP_RESPONSE, 60, port, NULL, 0, 0);
	wait_readable(h);
	assert_int_equal(recv(h, b, sizeof(b), 0), n);
	assert_memory_equal(b, want, (size_t)n);
	assert_int_equal(stats(c).conns_opened, 1);
	close(h);
	done(c);
}

static void test_create_errors(void **state)
{
	struct ctx *c = setup();
	struct vsock_mux *m2 = NULL;
	struct stat st;
	struct err e;
	char longp[200];

	(void)state;
	assert_int_equal(vsock_mux_create(CID, c->uds, &m2, &e), -EEXIST);
	assert_null(m2);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_non_null(strstr(e.msg, c->uds));
	assert_int_equal(stat(c->uds, &st), 0);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	assert_int_equal(vsock_mux_create(CID, longp, &m2, &e), -ENAMETOOLONG);
	done(c);
}

/* The device through the fake driver. */
struct dctx {
	struct fake_driver f;
	char dir[64], uds[96];
	uint64_t rxbuf[4], txbuf, evbuf;
};

static struct dctx *dsetup(void)
{
	struct dctx *c = calloc(1, sizeof(*c));
	struct vsock_config cfg;
	struct virtio_dev *d;
	struct err e;

	assert_non_null(c);
	snprintf(c->dir, sizeof(c->dir), "/tmp/wisp-vsock-XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	snprintf(c->uds, sizeof(c->uds), "%s/v.sock", c->dir);
	cfg = (struct vsock_config){ CID, c->uds };
	fake_init(&c->f);
	assert_int_equal(vsock_create(&cfg, &c->f.mem, &d, &e), 0);
	fake_attach(&c->f, d, ~0ULL, 16);
	for (int i = 0; i < 4; i++)
		c->rxbuf[i] = fake_alloc(&c->f, 4096);
	c->txbuf = fake_alloc(&c->f, 4096);
	c->evbuf = fake_alloc(&c->f, 64);
	return c;
}

static void ddone(struct dctx *c)
{
	fake_destroy(&c->f);
	rm_dir(c->dir);
	free(c);
}

static void pump_fd(struct dctx *c)
{
	struct virtio_dev *d = c->f.d;

	pthread_mutex_lock(&d->lock);
	d->ops->fd_ready(d, d->watch_fds[0]);
	pthread_mutex_unlock(&d->lock);
}

static bool watch_readable(struct dctx *c)
{
	struct pollfd p = { c->f.d->watch_fds[0], POLLIN, 0 };

	return poll(&p, 1, 0) == 1;
}

static void dsend(struct dctx *c, uint16_t op, uint32_t gport, uint32_t hport,
		  const void *data, uint32_t len)
{
	uint8_t *p = fake_ptr(&c->f, c->txbuf, VSOCK_HDR_SIZE + len);
	struct vsock_hdr h = {
		CID, VSOCK_HOST_CID, gport, hport, len, VSOCK_TYPE_STREAM, op,
		0,   4096,	     0
	};
	struct fake_buf b[2] = {
		{ c->txbuf, VSOCK_HDR_SIZE, false },
		{ c->txbuf + VSOCK_HDR_SIZE, len, false },
	};
	uint32_t id, ulen;

	vsock_hdr_encode(&h, p);
	if (len)
		memcpy(p + VSOCK_HDR_SIZE, data, len);
	fake_add_chain(&c->f, VSOCK_TXQ, b, len ? 2 : 1);
	fake_kick(&c->f, VSOCK_TXQ);
	assert_true(fake_get_used(&c->f, VSOCK_TXQ, &id, &ulen));
	assert_int_equal(ulen, 0);
}

static void add_rx(struct dctx *c, int i)
{
	struct fake_buf b = { c->rxbuf[i], 4096, true };

	fake_add_chain(&c->f, VSOCK_RXQ, &b, 1);
}

/* The next used rx buffer, decoded; false if none. */
static bool drecv(struct dctx *c, int i, struct vsock_hdr *h)
{
	uint32_t id, len;

	if (!fake_get_used(&c->f, VSOCK_RXQ, &id, &len))
		return false;
	assert_true(len >= VSOCK_HDR_SIZE);
	vsock_hdr_decode(fake_ptr(&c->f, c->rxbuf[i], VSOCK_HDR_SIZE), h);
	assert_int_equal(len, VSOCK_HDR_SIZE + h->len);
	return true;
}

static void test_device(void **state)
{
	struct dctx *c = dsetup();
	struct virtio_dev *d = c->f.d;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), h;
	uint8_t cfg[8];
	struct vsock_hdr p;
	char b[8];

	(void)state;
	assert_int_equal(d->device_id, 19);
	assert_int_equal(d->nr_queues, 3);
	d->ops->config_read(d, 0, cfg, 8);
	assert_int_equal(le64(cfg), CID);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_77", c->uds);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	/* The RESPONSE waits for an rx buffer (no buffer: no spin). */
	dsend(c, VSOCK_OP_REQUEST, GPORT, 77, NULL, 0);
	assert_false(drecv(c, 0, &p));
	assert_false(watch_readable(c));
	add_rx(c, 0);
	fake_kick(&c->f, VSOCK_RXQ);
	assert_true(drecv(c, 0, &p));
	assert_int_equal(p.op, VSOCK_OP_RESPONSE);
	assert_int_equal(p.dst_port, GPORT);
	h = accept_one(lfd);
	dsend(c, VSOCK_OP_RW, GPORT, 77, "ping", 4);
	assert_int_equal(recv(h, b, sizeof(b), 0), 4);
	assert_memory_equal(b, "ping", 4);
	/* Host data with no rx buffer stays in the socket, and the watch
	 * goes quiet once the edge is consumed. */
	assert_int_equal(send(h, "pong", 4, 0), 4);
	wait_readable(d->watch_fds[0]);
	pump_fd(c);
	assert_false(watch_readable(c));
	assert_false(drecv(c, 1, &p));
	add_rx(c, 1);
	fake_kick(&c->f, VSOCK_RXQ);
	assert_true(drecv(c, 1, &p));
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_memory_equal(fake_ptr(&c->f, c->rxbuf[1] + VSOCK_HDR_SIZE, 4),
			    "pong", 4);
	/* A transport reset closes the connection and posts the event
	 * once the driver gives an event buffer. */
	vsock_transport_reset(d);
	expect_eof(h);
	{
		struct fake_buf eb = { c->evbuf, 8, true };
		struct vsock_stats s;
		uint32_t id, len;

		fake_add_chain(&c->f, VSOCK_EVQ, &eb, 1);
		fake_kick(&c->f, VSOCK_EVQ);
		assert_true(fake_get_used(&c->f, VSOCK_EVQ, &id, &len));
		assert_int_equal(len, 4);
		assert_int_equal(le32(fake_ptr(&c->f, c->evbuf, 4)),
				 VSOCK_EVENT_TRANSPORT_RESET);
		vsock_get_stats(d, &s);
		assert_int_equal(s.resets_sent, 1);
		assert_int_equal(s.mux.conns, 0);
	}
	assert_false(fake_broken(&c->f));
	close(h);
	close(lfd);
	ddone(c);
}

/* Chains that break the rules: a short tx chain is dropped, a tx chain
 * with writable parts or an rx buffer too small for a header sets
 * NEEDS_RESET. */
static void test_device_hostile(void **state)
{
	struct dctx *c = dsetup();
	struct fake_buf b[2] = { { c->txbuf, 20, false },
				 { c->rxbuf[0], 100, true } };
	struct vsock_stats s;
	uint32_t id, len;

	(void)state;
	fake_add_chain(&c->f, VSOCK_TXQ, b, 1);
	fake_kick(&c->f, VSOCK_TXQ);
	assert_true(fake_get_used(&c->f, VSOCK_TXQ, &id, &len));
	vsock_get_stats(c->f.d, &s);
	assert_int_equal(s.tx_malformed, 1);
	assert_false(fake_broken(&c->f));
	/* An RST for port 1 is owed; the only rx buffer is 10 bytes. */
	dsend(c, VSOCK_OP_RW, GPORT, 1, "x", 1);
	b[1].len = 10;
	fake_add_chain(&c->f, VSOCK_RXQ, &b[1], 1);
	fake_kick(&c->f, VSOCK_RXQ);
	assert_true(fake_broken(&c->f));
	ddone(c);

	c = dsetup();
	b[0] = (struct fake_buf){ c->txbuf, VSOCK_HDR_SIZE, false };
	b[1] = (struct fake_buf){ c->rxbuf[0], 100, true };
	fake_add_chain(&c->f, VSOCK_TXQ, b, 2);
	fake_kick(&c->f, VSOCK_TXQ);
	assert_true(fake_broken(&c->f));
	ddone(c);
}

static void test_device_config(void **state)
{
	struct virtio_dev *d = NULL;
	struct vsock_config cfg = { 2, "/tmp/x" };
	struct guest_mem mem;
	struct err e;

	(void)state;
	memset(&mem, 0, sizeof(mem));
	assert_int_equal(vsock_create(&cfg, &mem, &d, &e), -EINVAL);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_null(d);
	cfg.guest_cid = 0xffffffffu;
	assert_int_equal(vsock_create(&cfg, &mem, &d, &e), -EINVAL);
	cfg.guest_cid = 3;
	cfg.uds_path = "";
	assert_int_equal(vsock_create(&cfg, &mem, &d, &e), -EINVAL);
	cfg.uds_path = "/nonexistent-dir/v.sock";
	assert_true(vsock_create(&cfg, &mem, &d, &e) < 0);
	assert_non_null(strstr(e.msg, "/nonexistent-dir/v.sock"));
	assert_null(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_connect),
		cmocka_unit_test(test_guest_connect),
		cmocka_unit_test(test_unknown_ports),
		cmocka_unit_test(test_rst_flood),
		cmocka_unit_test(test_host_connect),
		cmocka_unit_test(test_host_bad_lines),
		cmocka_unit_test(test_credit_to_guest),
		cmocka_unit_test(test_credit_from_guest),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_bogus_ops),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_reset_keeps_unsent),
		cmocka_unit_test(test_restored_port_renumbers),
		cmocka_unit_test(test_create_errors),
		cmocka_unit_test(test_device),
		cmocka_unit_test(test_device_hostile),
		cmocka_unit_test(test_device_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
