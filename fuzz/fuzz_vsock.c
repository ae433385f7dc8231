// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for virtio-vsock's connection state machine
 * (src/devices/vsock/conn.c) with real unix sockets: the input is a
 * script of records, each starting with a command byte c:
 *   c % 4 == 0  a guest packet: 44 header bytes (bit 4 of c keeps the
 *               CIDs as given, else they are the right ones; the ports
 *               are folded to a few values so packets meet connections),
 *               u16 payload length, the payload
 *   c % 4 == 1  a new host client of wisp's socket, then u8 n and n
 *               bytes it writes (a CONNECT line or not)
 *   c % 4 == 2  u8 i: host client i writes one more line, or (bit 4 of
 *               c) closes; host server connection i closes
 *   c % 4 == 3  u16 max: the guest takes packets of up to max bytes
 *               until there are none (bounded)
 * The guest side's host listeners are "<uds>_1" and "<uds>_2". Every
 * packet for the guest must be well formed (our CIDs, a known operation,
 * a stream, len within max and only on RW), and the connection count
 * stays within its bound; ASan and UBSan check the rest.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/vsock/conn.h"
#include "util/log.h"

#define CID 3
#define MAX_HOST 8

#define CHECK(cond)                                                       \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "fuzz_vsock: check failed: %s\n", \
				#cond);                                   \
			abort();                                          \
		}                                                         \
	} while (0)

static char dir[64], uds[96];
static uint8_t buf[VSOCK_MAX_PKT];
static int lfd[2] = { -1, -1 };

static void init_once(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	log_set_level(LOG_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/wisp-fuzz-vsock-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(uds, sizeof(uds), "%s/v", dir);
	for (int i = 0; i < 2; i++) {
		lfd[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		snprintf(a.sun_path, sizeof(a.sun_path), "%s_%d", uds, i + 1);
		CHECK(lfd[i] >= 0);
		CHECK(bind(lfd[i], (struct sockaddr *)&a, sizeof(a)) == 0);
		CHECK(listen(lfd[i], 64) == 0);
	}
}

static uint32_t fold_port(uint32_t p)
{
	/* Host ports 1 and 2 have listeners; wisp's own range starts at
	 * VSOCK_LOCAL_PORT_BASE. */
	switch (p % 6) {
	case 0:
		return 1;
	case 1:
		return 2;
	case 2:
		return 3;
	case 3:
		return VSOCK_LOCAL_PORT_BASE + (p >> 8) % 4;
	default:
		return p % 8;
	}
}

static void drain(struct vsock_mux *m, uint32_t max)
{
	struct vsock_hdr h;

	vsock_mux_poll(m);
	for (int i = 0; i < 512 && vsock_mux_to_guest(m, &h, buf, max); i++) {
		CHECK(h.src_cid == VSOCK_HOST_CID && h.dst_cid == CID);
		CHECK(h.type == VSOCK_TYPE_STREAM);
		CHECK(h.op >= VSOCK_OP_REQUEST &&
		      h.op <= VSOCK_OP_CREDIT_REQUEST);
		CHECK(h.len <= max);
		CHECK(h.op == VSOCK_OP_RW ? h.len > 0 : h.len == 0);
		CHECK(h.op != VSOCK_OP_RST || h.buf_alloc == 0);
	}
}

/* Accepts what wisp connected to the listeners, so connects succeed and
 * the far ends can be closed. */
static void accept_servers(int *srv, int *nsrv)
{
	for (int i = 0; i < 2; i++) {
		int fd;

		while ((fd = accept4(lfd[i], NULL, NULL, SOCK_NONBLOCK)) >= 0) {
			if (*nsrv < MAX_HOST)
				srv[(*nsrv)++] = fd;
			else
				close(fd);
		}
	}
}

static int dial(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", uds);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vsock_mux *m;
	struct vsock_mux_stats st;
	int host[MAX_HOST], srv[MAX_HOST], nhost = 0, nsrv = 0;
	size_t pos = 0;
	struct err e;

	if (lfd[0] < 0)
		init_once();
	CHECK(vsock_mux_create(CID, uds, &m, &e) == 0);
	while (pos < size) {
		uint8_t c = data[pos++];

		switch (c % 4) {
		case 0: {
			struct vsock_hdr h;
			uint32_t len;

			if (size - pos < VSOCK_HDR_SIZE + 2)
				goto out;
			vsock_hdr_decode(data + pos, &h);
			pos += VSOCK_HDR_SIZE;
			len = (uint32_t)(data[pos] | data[pos + 1] << 8);
			pos += 2;
			if (len > size - pos)
				len = (uint32_t)(size - pos);
			if (!(c & 16)) {
				h.src_cid = CID;
				h.dst_cid = VSOCK_HOST_CID;
				h.type = VSOCK_TYPE_STREAM;
				h.src_port = fold_port(h.src_port);
				h.dst_port = fold_port(h.dst_port);
				h.op = (uint16_t)(h.op % 9);
			}
			vsock_mux_from_guest(m, &h, data + pos, len);
			pos += len;
			accept_servers(srv, &nsrv);
			break;
		}
		case 1: {
			uint8_t n;
			int fd;

			if (pos >= size)
				goto out;
			n = data[pos++];
			if (n > size - pos)
				n = (uint8_t)(size - pos);
			if (nhost < MAX_HOST && (fd = dial()) >= 0) {
				host[nhost++] = fd;
				if (send(fd, data + pos, n, MSG_NOSIGNAL) < 0)
					CHECK(errno == EAGAIN ||
					      errno == EPIPE ||
					      errno == ECONNRESET);
			}
			pos += n;
			vsock_mux_poll(m);
			break;
		}
		case 2: {
			uint8_t i;

			if (pos >= size)
				goto out;
			i = data[pos++] % MAX_HOST;
			if (c & 16) {
				if (i < nhost && host[i] >= 0) {
					close(host[i]);
					host[i] = -1;
				}
				if (i < nsrv && srv[i] >= 0) {
					close(srv[i]);
					srv[i] = -1;
				}
			} else if (i < nhost && host[i] >= 0) {
				if (send(host[i], "data\n", 5, MSG_NOSIGNAL) <
				    0)
					CHECK(errno == EAGAIN ||
					      errno == EPIPE ||
					      errno == ECONNRESET);
			}
			vsock_mux_poll(m);
			break;
		}
		default: {
			uint32_t max;

			if (size - pos < 2)
				goto out;
			max = (uint32_t)(data[pos] | data[pos + 1] << 8);
			pos += 2;
			drain(m, max);
			break;
		}
		}
		vsock_mux_get_stats(m, &st);
		CHECK(st.conns <= VSOCK_MAX_CONNS);
	}
out:
	drain(m, VSOCK_MAX_PKT);
	vsock_mux_destroy(m);
	for (int i = 0; i < nhost; i++)
		if (host[i] >= 0)
			close(host[i]);
	accept_servers(srv, &nsrv);
	for (int i = 0; i < nsrv; i++)
		if (srv[i] >= 0)
			close(srv[i]);
	return 0;
}
