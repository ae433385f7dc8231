/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock's connection state machine (the "muxer"): every stream
 * between the guest and a host unix socket (uds.h), keyed by (host port,
 * guest port), with the spec's credit-based flow control both ways,
 * half-close, RST on every error, and the host-initiated CONNECT
 * handshake. Pure of virtqueues: the device (vsock.c) hands it each
 * packet the guest sent and asks it for the next packet for the guest.
 *
 * Everything the guest sends is hostile. A packet for no connection gets
 * an RST (except an RST); a bogus operation, a packet that breaks the
 * connection's state, an RW beyond the credit we gave, or a length
 * larger than VSOCK_MAX_PKT or than the bytes present resets that
 * connection. Memory is bounded whatever the guest does: at most
 * VSOCK_MAX_CONNS connections, each buffering at most VSOCK_BUF_ALLOC
 * bytes the host has not read yet (the credit we advertise, allocated
 * only while needed), VSOCK_MAX_PENDING host clients that have not sent
 * their CONNECT line, and VSOCK_RST_RING replies for unknown connections
 * (more are dropped and counted). Data from the host is read from its
 * socket only when the guest has credit and an rx buffer for it, so no
 * host-to-guest buffer exists.
 *
 * Every wait on a peer is bounded by VSOCK_TIMEOUT_MS: a host client's
 * CONNECT line, the guest's answer to a host-initiated REQUEST, and the
 * guest's RST after we shut both directions down.
 *
 * Host sockets are watched edge-triggered in a private epoll set
 * (vsock_mux_fd), so a socket with data the guest cannot take yet never
 * makes the owner spin.
 *
 * Threads: none of its own; one caller at a time (the device's lock).
 */
#ifndef WISP_DEVICES_VSOCK_CONN_H
#define WISP_DEVICES_VSOCK_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/vsock/proto.h"
#include "util/err.h"

#define VSOCK_MAX_CONNS 512
#define VSOCK_BUF_ALLOC (64u << 10)
#define VSOCK_MAX_PKT (64u << 10) /* payload of one packet, either way */
#define VSOCK_MAX_PENDING 64
#define VSOCK_RST_RING 64
#define VSOCK_TIMEOUT_MS 2000
/* What a transport reset's hold adds to a held client's timeout: the
 * restored guest must run to handle the event. */
#define VSOCK_HOLD_MS 10000
/* Host ports wisp assigns to host-initiated connections (Firecracker
 * starts there too), so they never meet the guest's view of a
 * well-known host port. */
#define VSOCK_LOCAL_PORT_BASE (1u << 30)

struct vsock_mux;

struct vsock_mux_stats {
	uint64_t conns_opened, conns_closed; /* established or refused */
	uint64_t rst_sent, rst_dropped; /* replies, dropped: ring full */
	uint64_t bad_packets; /* wrong CIDs or type, bogus ops, bad sizes */
	uint64_t credit_violations; /* RW beyond the credit we gave */
	uint64_t host_refused; /* host clients cut: bad line, limits, uid */
	uint64_t timeouts;
	uint64_t rx_bytes, tx_bytes; /* to / from the guest, payload */
	uint32_t conns; /* now */
};

/* A mux for guest_cid whose host side is uds_path (kept: it must
 * outlive the mux). Listens on uds_path. On failure *out is NULL and
 * nothing is left open; on success the caller owns it. */
int vsock_mux_create(uint64_t guest_cid, const char *uds_path,
		     struct vsock_mux **out, struct err *e);
/* Closes every socket, removes the listener's path. */
void vsock_mux_destroy(struct vsock_mux *m);

/* The fd to watch for readability (an epoll set): then vsock_mux_poll. */
int vsock_mux_fd(const struct vsock_mux *m);

/* Handles what the host sockets have to say: new clients, CONNECT
 * lines, data, hang-ups, expired waits. Never blocks. */
void vsock_mux_poll(struct vsock_mux *m);

/* One packet from the guest: its header and the avail payload bytes
 * that followed it in the chain (avail may differ from h->len: that is
 * checked here). */
void vsock_mux_from_guest(struct vsock_mux *m, const struct vsock_hdr *h,
			  const uint8_t *payload, uint32_t avail);

/* Whether vsock_mux_to_guest may have a packet (it may still find none:
 * a socket that turned out empty). */
bool vsock_mux_has_work(const struct vsock_mux *m);

/* The next packet for the guest with at most max payload bytes (written
 * to buf). Returns true with *h filled (h->len the payload's length),
 * false when there is nothing to send now. */
bool vsock_mux_to_guest(struct vsock_mux *m, struct vsock_hdr *h, uint8_t *buf,
			uint32_t max);

/* Drops every connection without a word to the guest (the driver is
 * gone, or a transport reset tells it so): host sockets are closed, the
 * listener stays. */
void vsock_mux_reset(struct vsock_mux *m);

/* The same, except host-initiated connections whose REQUEST the guest
 * was never sent (a restored device's clients that came before the
 * state was loaded): the guest cannot reset what it never saw, so they
 * wait for the hold instead. */
void vsock_mux_reset_known(struct vsock_mux *m);

/* While hold is true, host clients are accepted but their CONNECT lines
 * are not acted on, and no REQUEST of a connection made before reaches
 * the guest. For a transport reset the driver has not handled yet: a
 * connection it saw before the reset event would be reset with the
 * others. Bounded: a held client times out VSOCK_HOLD_MS after its own
 * VSOCK_TIMEOUT_MS. false acts on what waits, each client's timeout
 * starting again. */
void vsock_mux_hold_host(struct vsock_mux *m, bool hold);

/* The next host-side port a host-initiated connection gets, for a
 * snapshot: the restored device goes on from there, so a connection
 * made after the restore does not take the ports of connections the
 * guest may still hold sockets for (reset but not yet closed, a new
 * REQUEST on that pair would be answered with an RST). The setter
 * takes only ports from VSOCK_LOCAL_PORT_BASE up (-EINVAL), and gives
 * the connections whose REQUEST is unsent (clients that came before the
 * load) new ports from there. */
uint32_t vsock_mux_next_port(const struct vsock_mux *m);
int vsock_mux_set_next_port(struct vsock_mux *m, uint32_t port);

void vsock_mux_get_stats(const struct vsock_mux *m, struct vsock_mux_stats *s);

#endif
