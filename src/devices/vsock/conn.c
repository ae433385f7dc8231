// SPDX-License-Identifier: MIT
#include "devices/vsock/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "devices/vsock/uds.h"
#include "util/log.h"
#include "util/time.h"

#define HASH_SIZE 1024
#define TICK_MS 100 /* resolution of the bounded waits */

/* What an epoll event points at. */
enum kind { K_LISTENER, K_TIMER, K_PENDING, K_CONN };

struct tag {
	enum kind kind;
};

/* A host client that has not sent its CONNECT line yet. */
struct pending {
	struct tag tag;
	int fd; /* -1: slot free */
	uint64_t deadline_ms;
};

enum state {
	S_CONNECTING, /* host-initiated: REQUEST to the guest, no answer */
	S_ESTABLISHED,
};

/* Packets a connection owes the guest. */
#define P_REQUEST 1u
#define P_RESPONSE 2u
#define P_CREDIT_UPDATE 4u
#define P_SHUTDOWN 8u

struct conn {
	struct tag tag;
	int fd;
	uint32_t local_port, peer_port; /* host side, guest side */
	enum state state;
	unsigned int pend;
	bool queued, dead;
	TAILQ_ENTRY(conn) rq; /* ready queue, or the dead list */
	struct conn *hnext;
	/* Host socket. */
	bool readable, hup, local_eof, wr_shut;
	uint32_t shut_flags; /* what our SHUTDOWN says */
	uint32_t peer_shut; /* what the guest's SHUTDOWNs said */
	/* The guest's receive credit (host to guest data). */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	bool credit_requested;
	/* Our receive credit (guest to host data): bytes from the guest
	 * the host socket has not taken yet wait in buf. */
	uint32_t rx_cnt, fwd_cnt, last_fwd_sent;
	uint8_t *buf;
	uint32_t buf_head, buf_len;
	uint64_t deadline_ms; /* 0: none */
};

TAILQ_HEAD(conn_list, conn);

struct vsock_mux {
	uint64_t guest_cid;
	const char *uds;
	int epfd, lfd, tfd;
	dev_t l_dev;
	ino_t l_ino;
	struct tag ltag, ttag;
	bool timer_on;
	struct pending pend[VSOCK_MAX_PENDING];
	struct conn *hash[HASH_SIZE];
	struct conn_list ready, dead;
	struct {
		uint32_t local_port, peer_port;
	} rst[VSOCK_RST_RING];
	unsigned int rst_head, rst_count;
	uint32_t next_local_port;
	/* Host clients' CONNECT lines wait (vsock_mux_hold_host). */
	bool hold_host;
	struct vsock_mux_stats st;
};

static unsigned int hash_of(uint32_t local, uint32_t peer)
{
	return (local * 2654435761u ^ peer * 40503u) % HASH_SIZE;
}

static struct conn *find(struct vsock_mux *m, uint32_t local, uint32_t peer)
{
	for (struct conn *c = m->hash[hash_of(local, peer)]; c; c = c->hnext)
		if (c->local_port == local && c->peer_port == peer)
			return c;
	return NULL;
}

/* Into the table under its current ports. */
static void hash_add(struct vsock_mux *m, struct conn *c)
{
	unsigned int h = hash_of(c->local_port, c->peer_port);

	c->hnext = m->hash[h];
	m->hash[h] = c;
}

static void rst_reply(struct vsock_mux *m, uint32_t local, uint32_t peer)
{
	unsigned int i;

	if (m->rst_count == VSOCK_RST_RING) {
		m->st.rst_dropped++;
		return;
	}
	i = (m->rst_head + m->rst_count) % VSOCK_RST_RING;
	m->rst[i].local_port = local;
	m->rst[i].peer_port = peer;
	m->rst_count++;
}

static void timer_on(struct vsock_mux *m)
{
	struct itimerspec its = {
		.it_value = { 0, TICK_MS * 1000000L },
		.it_interval = { 0, TICK_MS * 1000000L },
	};

	if (m->timer_on)
		return;
	if (timerfd_settime(m->tfd, 0, &its, NULL) < 0) {
		log_warn("vsock: timerfd_settime: %s", strerror(errno));
		return;
	}
	m->timer_on = true;
}

static void set_deadline(struct vsock_mux *m, uint64_t *deadline)
{
	*deadline = now_ms() + VSOCK_TIMEOUT_MS;
	timer_on(m);
}

/* A host-initiated connection whose REQUEST the guest has not been
 * sent: invisible to it, so a transport reset need not end it, and a
 * hold keeps it back (vsock_mux_hold_host). */
static bool unsent(const struct conn *c)
{
	return c->state == S_CONNECTING && (c->pend & P_REQUEST);
}

/* Ends c: the host socket is closed at once, the memory is freed by
 * reap() (an epoll batch may still point at it). */
static void conn_kill(struct vsock_mux *m, struct conn *c, bool rst)
{
	struct conn **pp = &m->hash[hash_of(c->local_port, c->peer_port)];

	if (c->dead)
		return;
	while (*pp != c)
		pp = &(*pp)->hnext;
	*pp = c->hnext;
	if (c->queued)
		TAILQ_REMOVE(&m->ready, c, rq);
	c->queued = false;
	c->dead = true;
	TAILQ_INSERT_TAIL(&m->dead, c, rq);
	close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	if (rst)
		rst_reply(m, c->local_port, c->peer_port);
	m->st.conns--;
	m->st.conns_closed++;
}

static void reap(struct vsock_mux *m)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&m->dead))) {
		TAILQ_REMOVE(&m->dead, c, rq);
		free(c);
	}
}

static struct conn *conn_new(struct vsock_mux *m, int fd, uint32_t local,
			     uint32_t peer, enum state s)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
	};

	if (!c)
		return NULL;
	c->tag.kind = K_CONN;
	c->fd = fd;
	c->local_port = local;
	c->peer_port = peer;
	c->state = s;
	ev.data.ptr = &c->tag;
	/* MOD for a pending client's fd, ADD for a new one. */
	if (epoll_ctl(m->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 &&
	    (errno != ENOENT ||
	     epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)) {
		log_warn("vsock: epoll_ctl: %s", strerror(errno));
		free(c);
		return NULL;
	}
	/* Bytes that came with the CONNECT line raised no new edge. */
	c->readable = true;
	hash_add(m, c);
	m->st.conns++;
	return c;
}

static uint32_t peer_credit(const struct conn *c)
{
	uint32_t used = c->tx_cnt - c->peer_fwd_cnt;

	/* A guest that claims to have consumed more than we sent, or to
	 * have less room than before, gets nothing until it makes sense. */
	return used >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - used;
}

static bool can_read(const struct conn *c)
{
	return c->state == S_ESTABLISHED && c->readable && !c->local_eof &&
	       !(c->peer_shut & VSOCK_SHUTDOWN_RCV);
}

static bool conn_ready(const struct conn *c)
{
	if (c->pend)
		return true;
	if (!can_read(c))
		return false;
	return peer_credit(c) > 0 || !c->credit_requested;
}

/* Tells the guest about freed buffer space before it runs out: once
 * half of what it may send is unacknowledged. */
static void credit_check(struct conn *c)
{
	if (c->fwd_cnt != c->last_fwd_sent &&
	    c->rx_cnt - c->last_fwd_sent >= VSOCK_BUF_ALLOC / 2)
		c->pend |= P_CREDIT_UPDATE;
}

/* After any change to c: finishes it when both directions are done,
 * queues it when it owes the guest a packet. May free c. */
static void settle(struct vsock_mux *m, struct conn *c)
{
	if (c->dead)
		return;
	if ((c->peer_shut & VSOCK_SHUTDOWN_SEND) && !c->buf_len) {
		if (!c->wr_shut) {
			/* The host reader sees end-of-file. */
			shutdown(c->fd, SHUT_WR);
			c->wr_shut = true;
		}
		/* Both sides are done: the guest said it sends and takes
		 * nothing more, or it sends nothing and we have nothing
		 * more to send. */
		if ((c->peer_shut & VSOCK_SHUTDOWN_RCV) ||
		    (c->local_eof && !(c->pend & P_SHUTDOWN))) {
			conn_kill(m, c, true);
			return;
		}
	}
	if (m->hold_host && unsent(c))
		return;
	if (!c->queued && conn_ready(c)) {
		TAILQ_INSERT_TAIL(&m->ready, c, rq);
		c->queued = true;
	}
}

/* Writes buffered guest data to the host socket. Returns false after
 * killing c. */
static bool flush(struct vsock_mux *m, struct conn *c)
{
	while (c->buf_len) {
		uint32_t n = VSOCK_BUF_ALLOC - c->buf_head;
		ssize_t w;

		if (n > c->buf_len)
			n = c->buf_len;
		w = send(c->fd, c->buf + c->buf_head, n,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			conn_kill(m, c, true);
			return false;
		}
		c->buf_head = (c->buf_head + (uint32_t)w) % VSOCK_BUF_ALLOC;
		c->buf_len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w;
		if ((uint32_t)w < n)
			break;
	}
	if (!c->buf_len && c->buf) {
		free(c->buf);
		c->buf = NULL;
		c->buf_head = 0;
	}
	credit_check(c);
	return true;
}

/* Guest data for the host: straight to the socket when nothing waits,
 * the rest into the buffer the credit we gave bounds. */
static void guest_rw(struct vsock_mux *m, struct conn *c, const uint8_t *p,
		     uint32_t len)
{
	uint32_t done = 0;

	if (c->peer_shut & VSOCK_SHUTDOWN_SEND) {
		m->st.bad_packets++;
		conn_kill(m, c, true);
		return;
	}
	if (len > VSOCK_BUF_ALLOC - c->buf_len) {
		m->st.credit_violations++;
		conn_kill(m, c, true);
		return;
	}
	c->rx_cnt += len;
	m->st.tx_bytes += len;
	if (!c->buf_len && len) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			conn_kill(m, c, true);
			return;
		}
		if (w > 0) {
			done = (uint32_t)w;
			c->fwd_cnt += done;
		}
	}
	if (done < len) {
		uint32_t tail, n, rest = len - done;

		if (!c->buf) {
			c->buf = malloc(VSOCK_BUF_ALLOC);
			if (!c->buf) {
				log_warn("vsock: out of memory for a "
					 "connection's buffer");
				conn_kill(m, c, true);
				return;
			}
			c->buf_head = 0;
		}
		tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
		n = VSOCK_BUF_ALLOC - tail < rest ? VSOCK_BUF_ALLOC - tail :
						    rest;
		memcpy(c->buf + tail, p + done, n);
		memcpy(c->buf, p + done + n, rest - n);
		c->buf_len += rest;
	}
	credit_check(c);
}

static void guest_connect(struct vsock_mux *m, const struct vsock_hdr *h)
{
	struct conn *c;
	int fd;

	if (m->st.conns >= VSOCK_MAX_CONNS) {
		rst_reply(m, h->dst_port, h->src_port);
		return;
	}
	fd = vsock_uds_connect(m->uds, h->dst_port);
	if (fd < 0) {
		rst_reply(m, h->dst_port, h->src_port);
		return;
	}
	c = conn_new(m, fd, h->dst_port, h->src_port, S_ESTABLISHED);
	if (!c) {
		close(fd);
		rst_reply(m, h->dst_port, h->src_port);
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pend |= P_RESPONSE;
	m->st.conns_opened++;
	settle(m, c);
}

static void send_ok(struct vsock_mux *m, struct conn *c)
{
	char line[VSOCK_UDS_LINE_MAX];
	size_t n = vsock_uds_format_ok(line, c->local_port);

	/* A fresh socket's buffer takes a line; anything else means the
	 * client is gone. */
	if (send(c->fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)n) {
		conn_kill(m, c, true);
		return;
	}
	c->state = S_ESTABLISHED;
	c->deadline_ms = 0;
	m->st.conns_opened++;
}

void vsock_mux_from_guest(struct vsock_mux *m, const struct vsock_hdr *h,
			  const uint8_t *payload, uint32_t avail)
{
	struct conn *c;

	if (h->src_cid != m->guest_cid || h->dst_cid != VSOCK_HOST_CID) {
		/* Not ours to answer: an RST would carry a forged address. */
		m->st.bad_packets++;
		return;
	}
	c = find(m, h->dst_port, h->src_port);
	if (h->type != VSOCK_TYPE_STREAM) {
		m->st.bad_packets++;
		if (c)
			conn_kill(m, c, true);
		else if (h->op != VSOCK_OP_RST)
			rst_reply(m, h->dst_port, h->src_port);
		goto out;
	}
	if (!c) {
		if (h->op == VSOCK_OP_REQUEST)
			guest_connect(m, h);
		else if (h->op != VSOCK_OP_RST)
			rst_reply(m, h->dst_port, h->src_port);
		goto out;
	}
	if (h->op == VSOCK_OP_RST) {
		conn_kill(m, c, false);
		goto out;
	}
	if (h->op == VSOCK_OP_RW &&
	    (h->len > VSOCK_MAX_PKT || h->len > avail)) {
		m->st.bad_packets++;
		conn_kill(m, c, true);
		goto out;
	}
	/* Every packet carries the sender's credit (5.10.6.3). */
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->credit_requested = false;
	if (c->state == S_CONNECTING) {
		if (h->op == VSOCK_OP_RESPONSE && !(c->pend & P_REQUEST)) {
			send_ok(m, c);
		} else {
			m->st.bad_packets++;
			conn_kill(m, c, true);
		}
		goto out;
	}
	switch (h->op) {
	case VSOCK_OP_RW:
		guest_rw(m, c, payload, h->len);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->pend |= P_CREDIT_UPDATE;
		break;
	case VSOCK_OP_SHUTDOWN:
		c->peer_shut |= h->flags &
				(VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
		break;
	default: /* REQUEST or RESPONSE on a live connection, INVALID, ... */
		m->st.bad_packets++;
		conn_kill(m, c, true);
		break;
	}
	settle(m, c);
out:
	reap(m);
}

static void fill(struct vsock_mux *m, struct conn *c, struct vsock_hdr *h,
		 uint16_t op)
{
	*h = (struct vsock_hdr){
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = m->guest_cid,
		.src_port = c->local_port,
		.dst_port = c->peer_port,
		.type = VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = VSOCK_BUF_ALLOC,
		.fwd_cnt = c->fwd_cnt,
	};
	/* Every packet tells the guest our fwd_cnt. */
	c->last_fwd_sent = c->fwd_cnt;
	c->pend &= ~P_CREDIT_UPDATE;
}

/* c's next packet for the guest. Returns 1 with *h filled, 0 if it has
 * none, -1 after killing c. */
static int emit(struct vsock_mux *m, struct conn *c, struct vsock_hdr *h,
		uint8_t *buf, uint32_t max)
{
	if (m->hold_host && unsent(c))
		return 0;
	if (c->pend & P_REQUEST) {
		c->pend &= ~P_REQUEST;
		fill(m, c, h, VSOCK_OP_REQUEST);
		return 1;
	}
	if (c->pend & P_RESPONSE) {
		c->pend &= ~P_RESPONSE;
		fill(m, c, h, VSOCK_OP_RESPONSE);
		return 1;
	}
	if (can_read(c)) {
		uint32_t n = peer_credit(c);

		if (n == 0 && !c->credit_requested) {
			c->credit_requested = true;
			fill(m, c, h, VSOCK_OP_CREDIT_REQUEST);
			return 1;
		}
		n = n < max ? n : max;
		n = n < VSOCK_MAX_PKT ? n : VSOCK_MAX_PKT;
		if (n) {
			ssize_t r = recv(c->fd, buf, n, MSG_DONTWAIT);

			if (r > 0) {
				fill(m, c, h, VSOCK_OP_RW);
				h->len = (uint32_t)r;
				c->tx_cnt += (uint32_t)r;
				m->st.rx_bytes += (uint64_t)r;
				return 1;
			}
			if (r == 0) {
				c->local_eof = true;
				c->shut_flags = VSOCK_SHUTDOWN_SEND;
				if (c->hup)
					c->shut_flags |= VSOCK_SHUTDOWN_RCV;
				c->pend |= P_SHUTDOWN;
			} else if (errno == EAGAIN) {
				c->readable = false;
			} else if (errno != EINTR) {
				conn_kill(m, c, true);
				return -1;
			}
		}
	}
	if (c->pend & P_CREDIT_UPDATE) {
		fill(m, c, h, VSOCK_OP_CREDIT_UPDATE);
		return 1;
	}
	if (c->pend & P_SHUTDOWN) {
		c->pend &= ~P_SHUTDOWN;
		fill(m, c, h, VSOCK_OP_SHUTDOWN);
		h->flags = c->shut_flags;
		/* Both ways shut: the guest answers with an RST. */
		if (c->shut_flags == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND))
			set_deadline(m, &c->deadline_ms);
		return 1;
	}
	return 0;
}

bool vsock_mux_has_work(const struct vsock_mux *m)
{
	return m->rst_count || !TAILQ_EMPTY(&m->ready);
}

bool vsock_mux_to_guest(struct vsock_mux *m, struct vsock_hdr *h, uint8_t *buf,
			uint32_t max)
{
	struct conn *c;
	bool got = false;

	if (m->rst_count) {
		*h = (struct vsock_hdr){
			.src_cid = VSOCK_HOST_CID,
			.dst_cid = m->guest_cid,
			.src_port = m->rst[m->rst_head].local_port,
			.dst_port = m->rst[m->rst_head].peer_port,
			.type = VSOCK_TYPE_STREAM,
			.op = VSOCK_OP_RST,
		};
		m->rst_head = (m->rst_head + 1) % VSOCK_RST_RING;
		m->rst_count--;
		m->st.rst_sent++;
		return true;
	}
	/* One pass at most: a connection with nothing to send now (no
	 * room in this buffer, an empty socket) goes back to the tail and
	 * must not be asked again in this call. */
	for (uint32_t pass = 0;
	     !got && pass <= m->st.conns && (c = TAILQ_FIRST(&m->ready));
	     pass++) {
		int r;

		TAILQ_REMOVE(&m->ready, c, rq);
		c->queued = false;
		r = emit(m, c, h, buf, max);
		if (r >= 0)
			settle(m, c); /* to the tail: round robin */
		got = r > 0;
	}
	reap(m);
	return got;
}

static void pending_drop(struct vsock_mux *m, struct pending *p, bool refused)
{
	close(p->fd);
	p->fd = -1;
	p->deadline_ms = 0;
	if (refused)
		m->st.host_refused++;
}

static uint32_t alloc_local_port(struct vsock_mux *m, uint32_t peer)
{
	for (;;) {
		uint32_t p = m->next_local_port++;

		if (m->next_local_port < VSOCK_LOCAL_PORT_BASE)
			m->next_local_port = VSOCK_LOCAL_PORT_BASE;
		/* At most VSOCK_MAX_CONNS ports are taken: this ends. */
		if (!find(m, p, peer))
			return p;
	}
}

/* A host client's CONNECT line: looked at first (MSG_PEEK), so bytes
 * after it stay in the socket for the guest. */
static void pending_read(struct vsock_mux *m, struct pending *p)
{
	char line[VSOCK_UDS_LINE_MAX];
	const char *nl;
	uint32_t port;
	struct conn *c;
	ssize_t r;

	/* The line stays in the socket; its edge is gone, so nothing wakes
	 * up for it until vsock_mux_hold_host(false) looks again (or its
	 * deadline drops it). */
	if (m->hold_host)
		return;
	r = recv(p->fd, line, sizeof(line), MSG_PEEK | MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		pending_drop(m, p, false);
		return;
	}
	nl = memchr(line, '\n', (size_t)r);
	if (!nl) {
		if (r == (ssize_t)sizeof(line))
			pending_drop(m, p, true);
		return;
	}
	r = recv(p->fd, line, (size_t)(nl - line + 1), MSG_DONTWAIT);
	if (r != nl - line + 1 ||
	    vsock_uds_parse_connect(line, (size_t)r, &port) ||
	    m->st.conns >= VSOCK_MAX_CONNS) {
		pending_drop(m, p, true);
		return;
	}
	c = conn_new(m, p->fd, alloc_local_port(m, port), port, S_CONNECTING);
	if (!c) {
		pending_drop(m, p, true);
		return;
	}
	p->fd = -1;
	p->deadline_ms = 0;
	c->pend |= P_REQUEST;
	set_deadline(m, &c->deadline_ms);
	settle(m, c);
}

static void accept_all(struct vsock_mux *m)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
		struct pending *p = NULL;
		int fd = vsock_uds_accept(m->lfd);

		if (fd == -EAGAIN)
			return;
		if (fd < 0) {
			m->st.host_refused++;
			if (fd == -EPERM || fd == -ECONNABORTED)
				continue;
			/* EMFILE and the like: the listener stays readable
			 * and is tried again on the next event. */
			return;
		}
		for (int i = 0; i < VSOCK_MAX_PENDING && !p; i++)
			if (m->pend[i].fd < 0)
				p = &m->pend[i];
		if (!p) {
			close(fd);
			m->st.host_refused++;
			continue;
		}
		ev.data.ptr = &p->tag;
		if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			m->st.host_refused++;
			continue;
		}
		p->fd = fd;
		set_deadline(m, &p->deadline_ms);
		/* A line sent before the ADD raised its edge already. */
		pending_read(m, p);
	}
}

static void conn_event(struct vsock_mux *m, struct conn *c, uint32_t events)
{
	if (c->dead)
		return;
	if (events & EPOLLERR) {
		conn_kill(m, c, true);
		return;
	}
	if (events & EPOLLHUP) {
		c->hup = true;
		if (c->state == S_CONNECTING) {
			/* The client left before the guest answered; an
			 * unsent REQUEST needs no RST. */
			conn_kill(m, c, !(c->pend & P_REQUEST));
			return;
		}
		if (c->local_eof && !(c->shut_flags & VSOCK_SHUTDOWN_RCV)) {
			c->shut_flags |= VSOCK_SHUTDOWN_RCV;
			c->pend |= P_SHUTDOWN;
		}
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
		c->readable = true;
	if ((events & (EPOLLOUT | EPOLLHUP)) && !flush(m, c))
		return;
	settle(m, c);
}

static void tick(struct vsock_mux *m)
{
	uint64_t now = now_ms(), ticks;
	bool any = false;

	if (read(m->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		log_warn("vsock: timerfd: %s", strerror(errno));
	for (int i = 0; i < VSOCK_MAX_PENDING; i++) {
		struct pending *p = &m->pend[i];

		if (p->fd < 0 || !p->deadline_ms)
			continue;
		if (now >=
		    p->deadline_ms + (m->hold_host ? VSOCK_HOLD_MS : 0)) {
			m->st.timeouts++;
			pending_drop(m, p, false);
		} else {
			any = true;
		}
	}
	for (int i = 0; i < HASH_SIZE; i++) {
		struct conn *c = m->hash[i], *next;

		for (; c; c = next) {
			next = c->hnext;
			if (!c->deadline_ms)
				continue;
			if (now >= c->deadline_ms + (m->hold_host && unsent(c) ?
							     VSOCK_HOLD_MS :
							     0)) {
				m->st.timeouts++;
				conn_kill(m, c, true);
			} else {
				any = true;
			}
		}
	}
	if (!any && m->timer_on) {
		struct itimerspec off = { 0 };

		if (timerfd_settime(m->tfd, 0, &off, NULL) == 0)
			m->timer_on = false;
	}
}

void vsock_mux_poll(struct vsock_mux *m)
{
	struct epoll_event ev[64];
	int n;

	do {
		n = epoll_wait(m->epfd, ev, 64, 0);
		for (int i = 0; i < n; i++) {
			struct tag *t = ev[i].data.ptr;

			switch (t->kind) {
			case K_LISTENER:
				accept_all(m);
				break;
			case K_TIMER:
				tick(m);
				break;
			case K_PENDING: {
				struct pending *p = (struct pending *)t;

				if (p->fd >= 0)
					pending_read(m, p);
				break;
			}
			case K_CONN:
				conn_event(m, (struct conn *)t, ev[i].events);
				break;
			}
		}
		reap(m);
	} while (n == 64);
}

/* Kills every connection (but the unsent ones when keep_unsent) without
 * an RST, and the RSTs still queued for the guest. */
static void reset_conns(struct vsock_mux *m, bool keep_unsent)
{
	for (int i = 0; i < HASH_SIZE; i++) {
		struct conn *c = m->hash[i], *next;

		for (; c; c = next) {
			next = c->hnext;
			if (!keep_unsent || !unsent(c))
				conn_kill(m, c, false);
		}
	}
	m->rst_count = 0;
	m->rst_head = 0;
	reap(m);
}

void vsock_mux_reset(struct vsock_mux *m)
{
	reset_conns(m, false);
}

void vsock_mux_reset_known(struct vsock_mux *m)
{
	reset_conns(m, true);
}

void vsock_mux_hold_host(struct vsock_mux *m, bool hold)
{
	bool was = m->hold_host;

	m->hold_host = hold;
	if (!was || hold)
		return;
	/* Their time starts now: the hold was the guest's, not theirs. */
	for (int i = 0; i < VSOCK_MAX_PENDING; i++)
		if (m->pend[i].fd >= 0) {
			set_deadline(m, &m->pend[i].deadline_ms);
			pending_read(m, &m->pend[i]);
		}
	for (int i = 0; i < HASH_SIZE; i++)
		for (struct conn *c = m->hash[i]; c; c = c->hnext)
			if (unsent(c)) {
				set_deadline(m, &c->deadline_ms);
				settle(m, c);
			}
}

uint32_t vsock_mux_next_port(const struct vsock_mux *m)
{
	return m->next_local_port;
}

int vsock_mux_set_next_port(struct vsock_mux *m, uint32_t port)
{
	struct conn *moved = NULL, *c;

	if (port < VSOCK_LOCAL_PORT_BASE)
		return -EINVAL;
	m->next_local_port = port;
	/* A client that came before a restored device's state was loaded
	 * got its port from the fresh counter: the guest may still hold a
	 * reset socket on that pair. Its REQUEST was never sent, nor its
	 * OK line, so nobody knows the port yet: it takes a new one. */
	for (int i = 0; i < HASH_SIZE; i++) {
		struct conn **pp = &m->hash[i];

		while ((c = *pp)) {
			if (unsent(c)) {
				*pp = c->hnext;
				c->hnext = moved;
				moved = c;
			} else {
				pp = &c->hnext;
			}
		}
	}
	while ((c = moved)) {
		moved = c->hnext;
		c->local_port = alloc_local_port(m, c->peer_port);
		hash_add(m, c);
	}
	return 0;
}

int vsock_mux_fd(const struct vsock_mux *m)
{
	return m->epfd;
}

void vsock_mux_get_stats(const struct vsock_mux *m, struct vsock_mux_stats *s)
{
	*s = m->st;
}

int vsock_mux_create(uint64_t guest_cid, const char *uds_path,
		     struct vsock_mux **out, struct err *e)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct vsock_mux *m;
	struct stat st;
	int ret;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(e, -ENOMEM, "vsock: out of memory");
	m->guest_cid = guest_cid;
	m->uds = uds_path;
	m->lfd = m->tfd = -1;
	m->next_local_port = VSOCK_LOCAL_PORT_BASE;
	m->ltag.kind = K_LISTENER;
	m->ttag.kind = K_TIMER;
	TAILQ_INIT(&m->ready);
	TAILQ_INIT(&m->dead);
	for (int i = 0; i < VSOCK_MAX_PENDING; i++) {
		m->pend[i].tag.kind = K_PENDING;
		m->pend[i].fd = -1;
	}
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->epfd < 0) {
		ret = err_set(e, -errno, "vsock: epoll_create1: %s",
			      strerror(errno));
		goto fail;
	}
	m->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (m->tfd < 0) {
		ret = err_set(e, -errno, "vsock: timerfd_create: %s",
			      strerror(errno));
		goto fail;
	}
	ev.data.ptr = &m->ttag;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->tfd, &ev) < 0) {
		ret = err_set(e, -errno, "vsock: epoll_ctl: %s",
			      strerror(errno));
		goto fail;
	}
	m->lfd = vsock_uds_listen(uds_path, e);
	if (m->lfd < 0) {
		ret = m->lfd;
		goto fail;
	}
	if (stat(uds_path, &st) == 0) {
		m->l_dev = st.st_dev;
		m->l_ino = st.st_ino;
	}
	/* Edge-triggered: a listener we cannot accept from (EMFILE) must
	 * not wake us until the next client. */
	ev.events = EPOLLIN | EPOLLET;
	ev.data.ptr = &m->ltag;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->lfd, &ev) < 0) {
		ret = err_set(e, -errno, "vsock: epoll_ctl: %s",
			      strerror(errno));
		goto fail;
	}
	*out = m;
	return 0;
fail:
	vsock_mux_destroy(m);
	return ret;
}

void vsock_mux_destroy(struct vsock_mux *m)
{
	struct stat st;

	if (!m)
		return;
	vsock_mux_reset(m);
	for (int i = 0; i < VSOCK_MAX_PENDING; i++)
		if (m->pend[i].fd >= 0)
			close(m->pend[i].fd);
	if (m->lfd >= 0) {
		/* Only our own socket: the path may have been replaced. */
		if (stat(m->uds, &st) == 0 && st.st_dev == m->l_dev &&
		    st.st_ino == m->l_ino)
			unlink(m->uds);
		close(m->lfd);
	}
	if (m->tfd >= 0)
		close(m->tfd);
	if (m->epfd >= 0)
		close(m->epfd);
	free(m);
}
