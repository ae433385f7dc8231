// SPDX-License-Identifier: MIT
#include "devices/net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/counter.h"
#include "util/ratelimit.h"
#include "util/log.h"
#include "util/ser.h"
#include "util/time.h"

/* Frames handled per wakeup: the tap stays readable (level-triggered),
 * so the remainder comes on the next round after other work. */
#define RX_BATCH 256
/* Header, the largest frame, and one byte to recognise a larger one. */
#define RXBUF_SIZE (NET_HDR_SIZE + NET_MAX_FRAME + 1)

_Static_assert(sizeof(struct virtio_net_hdr) == NET_HDR_SIZE,
	       "virtio_net_hdr_v1 is 12 bytes");
_Static_assert(NET_TUN_F_CSUM == TUN_F_CSUM && NET_TUN_F_TSO4 == TUN_F_TSO4 &&
		       NET_TUN_F_TSO6 == TUN_F_TSO6,
	       "TUN_F_* values");

struct net {
	struct virtio_dev dev;
	char name[IFNAMSIZ + 16];
	int fd; /* the tap (or the test's socket) */
	bool is_tap;
	/* Private epoll set holding fd while receive is armed; it is what
	 * the I/O thread watches, so dropping fd from it stops the wakeups
	 * without touching the I/O thread. */
	int epfd;
	bool polling;
	unsigned int offloads;
	uint8_t mac[6];
	uint8_t *rxbuf;
	uint32_t rx_len; /* a frame held in rxbuf (header included), or 0 */
	uint8_t *txbuf; /* bounce buffer for chains with too many buffers */
	struct net_stats st;
	/* Rate limits: the buckets and the timerfd that ends a wait. */
	struct rate_limiter rx_rl, tx_rl;
	int timer_fd; /* always there: limits may be set later */
	uint64_t timer_deadline; /* 0: not armed */
	bool rx_paid; /* the held frame's tokens are already taken */
	uint64_t last_err_ns; /* rate limit for backend error lines */
	struct virtq_chain first, chain;
};

static struct net *to_net(struct virtio_dev *d)
{
	return d->priv;
}

unsigned int net_tap_offloads(uint64_t f)
{
	unsigned int o = 0;

	if (!(f & (1ULL << VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	o |= NET_TUN_F_CSUM;
	if (f & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
		o |= NET_TUN_F_TSO4;
	if (f & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
		o |= NET_TUN_F_TSO6;
	return o;
}

/* The rules a header must follow in one direction: which flags may be
 * set and which feature each GSO type needs. */
struct hdr_rules {
	uint8_t flags_ok;
	int csum, tso4, tso6, ecn, ufo; /* feature bits */
	bool gso_needs_csum;
};

static const char *check_hdr(const struct virtio_net_hdr *h, uint64_t f,
			     uint32_t len, const struct hdr_rules *r)
{
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	int need;

	if (len < NET_MIN_FRAME)
		return "frame shorter than an Ethernet header";
	if (len > NET_MAX_FRAME)
		return "frame larger than the maximum";
	if (h->flags & ~r->flags_ok)
		return "unknown header flags";
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!((f >> r->csum) & 1))
			return "checksum offload not negotiated";
		if ((uint32_t)h->csum_start + h->csum_offset + 2 > len)
			return "checksum offset outside the frame";
	}
	if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return NULL;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		need = r->tso4;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		need = r->tso6;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		need = r->ufo;
		break;
	default:
		return "unknown GSO type";
	}
	if (!((f >> need) & 1))
		return "GSO type not negotiated";
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !((f >> r->ecn) & 1))
		return "GSO ECN not negotiated";
	/* Segmentation needs the checksum to be finished per segment: a
	 * guest always asks for it. The kernel may hand over a GRO'd
	 * super-frame whose checksums were verified (DATA_VALID) instead,
	 * which Linux drivers accept. */
	if (r->gso_needs_csum && !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return "GSO without NEEDS_CSUM";
	if (h->gso_size == 0)
		return "GSO with a zero segment size";
	if (h->hdr_len > len)
		return "header length beyond the frame";
	return NULL;
}

const char *net_check_tx_hdr(const struct virtio_net_hdr *h, uint64_t f,
			     uint32_t len)
{
	static const struct hdr_rules tx = {
		VIRTIO_NET_HDR_F_NEEDS_CSUM,
		VIRTIO_NET_F_CSUM,
		VIRTIO_NET_F_HOST_TSO4,
		VIRTIO_NET_F_HOST_TSO6,
		VIRTIO_NET_F_HOST_ECN,
		VIRTIO_NET_F_HOST_UFO,
		true,
	};

	return check_hdr(h, f, len, &tx);
}

const char *net_check_rx_hdr(const struct virtio_net_hdr *h, uint64_t f,
			     uint32_t len)
{
	static const struct hdr_rules rx = {
		VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID,
		VIRTIO_NET_F_GUEST_CSUM,
		VIRTIO_NET_F_GUEST_TSO4,
		VIRTIO_NET_F_GUEST_TSO6,
		VIRTIO_NET_F_GUEST_ECN,
		VIRTIO_NET_F_GUEST_UFO,
		false,
	};

	return check_hdr(h, f, len, &rx);
}

static void backend_error(struct net *n, const char *what, int err)
{
	uint64_t now = now_ns();

	if (n->last_err_ns && now - n->last_err_ns < 5000000000ULL)
		return;
	n->last_err_ns = now;
	log_warn("%s: %s: %s (frame dropped)", n->name, what, strerror(err));
}

static void rx_arm(struct net *n, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (on == n->polling)
		return;
	/* DEL rather than MOD to no events: EPOLLERR and EPOLLHUP are
	 * reported whatever the mask, and must not wake us either. */
	if (epoll_ctl(n->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, n->fd, &ev) <
	    0) {
		log_warn("%s: epoll_ctl: %s", n->name, strerror(errno));
		return;
	}
	n->polling = on;
}

/* Arms the timer for wait_ns from now unless it fires earlier already. */
static void arm_timer(struct net *n, uint64_t wait_ns)
{
	uint64_t now = now_ns(), when = now + wait_ns;
	struct itimerspec its = { 0 };

	if (n->timer_deadline && n->timer_deadline <= when)
		return;
	its.it_value.tv_sec = (time_t)(wait_ns / 1000000000ULL);
	its.it_value.tv_nsec = (long)(wait_ns % 1000000000ULL);
	if (timerfd_settime(n->timer_fd, 0, &its, NULL) < 0) {
		log_warn("%s: timerfd_settime: %s", n->name, strerror(errno));
		return;
	}
	n->timer_deadline = when;
}

static int set_offloads(struct net *n, unsigned int o)
{
	if (n->is_tap && ioctl(n->fd, TUNSETOFFLOAD, (unsigned long)o) < 0)
		return -errno;
	n->offloads = o;
	return 0;
}

/* Hands the chains back that were taken for a frame not delivered:
 * nothing was completed, so the driver still owns them as available. */
static void unpop(struct virtq *vq, uint16_t nr)
{
	vq->last_avail = (uint16_t)(vq->last_avail - nr);
}

static int rx_chain_ok(struct virtio_dev *d, const struct virtq_chain *c,
		       bool mrg)
{
	if (c->nr_read) {
		virtio_dev_set_broken(d,
				      "rx buffer with device-readable parts");
		return -EINVAL;
	}
	/* 5.1.6.3.1: with MRG_RXBUF every buffer holds at least a header,
	 * and a chain must have room for something in any case. */
	if (c->write_len == 0 || (mrg && c->write_len < NET_HDR_SIZE)) {
		virtio_dev_set_broken(d, "rx buffer too small for a header");
		return -EINVAL;
	}
	return 0;
}

/* Delivers the held frame. Returns 2 when it was delivered, 1 when it
 * was dropped (counted), 0 when the ring has too few buffers for it now, -EINVAL when
 * the device broke. */
static int rx_deliver(struct net *n)
{
	struct virtio_dev *d = &n->dev;
	struct virtq *vq = &d->vq[NET_RXQ];
	bool mrg = virtio_has_feature(d, VIRTIO_NET_F_MRG_RXBUF);
	uint16_t heads[NET_QUEUE_SIZE];
	uint32_t lens[NET_QUEUE_SIZE];
	uint32_t total = n->rx_len, done = 0;
	uint16_t nr = 0, nb;
	int r;

	if (!mrg) {
		r = virtio_dev_pop(d, NET_RXQ, &n->first);
		if (r <= 0)
			return r;
		if (rx_chain_ok(d, &n->first, false))
			return -EINVAL;
		if (n->first.write_len < total) {
			/* The buffer stays with the driver for a smaller
			 * frame; this one cannot ever fit it. */
			unpop(vq, 1);
			counter_add(&n->st.rx_dropped, 1);
			return 1;
		}
		virtq_chain_write(&n->first, 0, n->rxbuf, total);
		virtq_push(vq, n->first.head, total);
		return 2;
	}
	while (done < total) {
		struct virtq_chain *c = nr ? &n->chain : &n->first;
		uint32_t k;

		if (nr == vq->size) {
			/* Every buffer the ring can hold is not enough. */
			unpop(vq, nr);
			counter_add(&n->st.rx_dropped, 1);
			return 1;
		}
		r = virtio_dev_pop(d, NET_RXQ, c);
		if (r < 0)
			return r;
		if (r == 0) {
			unpop(vq, nr);
			return 0;
		}
		if (rx_chain_ok(d, c, true))
			return -EINVAL;
		k = c->write_len < total - done ? c->write_len : total - done;
		/* Written before we know the frame fits: if it does not, the
		 * buffers go back unused and their contents do not matter. */
		virtq_chain_write(c, 0, n->rxbuf + done, k);
		heads[nr] = c->head;
		lens[nr] = k;
		nr++;
		done += k;
	}
	nb = nr;
	virtq_chain_write(&n->first,
			  offsetof(struct virtio_net_hdr, num_buffers), &nb,
			  sizeof(nb));
	for (uint16_t i = 0; i < nr; i++)
		virtq_push(vq, heads[i], lens[i]);
	return 2;
}

/* Reads one frame from the backend into rxbuf. Returns 1 with a frame
 * held, 0 when there is none now (or it was dropped: call again), -1
 * when the backend is gone. */
static int rx_read(struct net *n, bool *again)
{
	struct virtio_dev *d = &n->dev;
	struct virtio_net_hdr h;
	const char *why;
	ssize_t got;

	*again = false;
	got = read(n->fd, n->rxbuf, RXBUF_SIZE);
	if (got < 0) {
		if (errno == EINTR) {
			*again = true;
			return 0;
		}
		if (errno == EAGAIN)
			return 0;
		rx_arm(n, false);
		virtio_dev_set_broken(d, "tap read failed");
		log_warn("%s: read: %s", n->name, strerror(errno));
		return -1;
	}
	if (got == 0) {
		rx_arm(n, false);
		virtio_dev_set_broken(d, "tap closed");
		return -1;
	}
	*again = true;
	if ((size_t)got < NET_HDR_SIZE) {
		counter_add(&n->st.rx_dropped, 1);
		return 0;
	}
	memcpy(&h, n->rxbuf, sizeof(h));
	why = net_check_rx_hdr(&h, d->features,
			       (uint32_t)((size_t)got - NET_HDR_SIZE));
	if (why) {
		counter_add(&n->st.rx_dropped, 1);
		return 0;
	}
	if (!virtio_has_feature(d, VIRTIO_NET_F_GUEST_CSUM))
		h.flags &= (uint8_t)~VIRTIO_NET_HDR_F_DATA_VALID;
	/* 5.1.6.4: without MRG_RXBUF num_buffers is 1; with it,
	 * rx_deliver sets the real count. */
	h.num_buffers = 1;
	memcpy(n->rxbuf, &h, sizeof(h));
	n->rx_len = (uint32_t)got;
	return 1;
}

static void rx_process(struct net *n)
{
	struct virtio_dev *d = &n->dev;
	bool pushed = false;

	if (d->broken || !(d->status & VIRTIO_STATUS_DRIVER_OK) ||
	    !d->vq[NET_RXQ].ready) {
		rx_arm(n, false);
		return;
	}
	for (int i = 0; i < RX_BATCH; i++) {
		int r;

		if (!n->rx_len) {
			bool again;

			r = rx_read(n, &again);
			if (r < 0)
				break;
			if (r == 0) {
				if (again)
					continue;
				rx_arm(n, true);
				break;
			}
		}
		if (!n->rx_paid) {
			uint64_t wait = rl_consume(&n->rx_rl,
						   n->rx_len - NET_HDR_SIZE, 1,
						   now_ns());

			if (wait) {
				/* Over budget: keep the frame, stop reading
				 * the tap, and come back on the timer. */
				counter_add(&n->st.rx_throttled, 1);
				rx_arm(n, false);
				arm_timer(n, wait);
				break;
			}
			n->rx_paid = true;
		}
		r = rx_deliver(n);
		if (r < 0) {
			rx_arm(n, false);
			break;
		}
		if (r == 0) {
			/* No buffers: keep the frame, stop listening to the
			 * tap until the driver kicks rx again. */
			counter_add(&n->st.rx_held, 1);
			rx_arm(n, false);
			break;
		}
		if (r == 2) {
			counter_add(&n->st.rx_frames, 1);
			counter_add(&n->st.rx_bytes, n->rx_len - NET_HDR_SIZE);
			pushed = true;
		}
		n->rx_len = 0;
		n->rx_paid = false;
		rx_arm(n, true);
	}
	if (pushed)
		virtio_dev_notify_queue(d, NET_RXQ);
}

/* Sends one tx chain; returns true if it was handed to the backend. */
static bool tx_one(struct net *n, const struct virtq_chain *c)
{
	struct virtio_dev *d = &n->dev;
	struct iovec iov[IOV_MAX];
	struct virtio_net_hdr h;
	uint32_t len, off = NET_HDR_SIZE;
	int niov = 1;
	ssize_t w;

	if (c->read_len < NET_HDR_SIZE) {
		counter_add(&n->st.tx_dropped, 1);
		return false;
	}
	len = c->read_len - NET_HDR_SIZE;
	/* Copied once: the guest may rewrite the header while we look. */
	virtq_chain_read(c, 0, &h, sizeof(h));
	if (net_check_tx_hdr(&h, d->features, len)) {
		counter_add(&n->st.tx_dropped, 1);
		return false;
	}
	h.num_buffers = 0;
	iov[0] = (struct iovec){ &h, sizeof(h) };
	for (int i = 0; i < c->nr_read; i++) {
		const struct virtq_seg *s = &c->seg[i];

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		if (niov == IOV_MAX) {
			/* More pieces than one writev takes: bounce. */
			virtq_chain_read(c, NET_HDR_SIZE, n->txbuf, len);
			iov[1] = (struct iovec){ n->txbuf, len };
			niov = 2;
			break;
		}
		iov[niov++] = (struct iovec){ s->host + off, s->len - off };
		off = 0;
	}
	w = writev(n->fd, iov, niov);
	if (w < 0) {
		if (errno == EAGAIN || errno == ENOBUFS)
			counter_add(&n->st.tx_dropped, 1);
		else
			counter_add(&n->st.tx_errors, 1);
		if (errno != EAGAIN)
			backend_error(n, "tap write", errno);
		return false;
	}
	counter_add(&n->st.tx_frames, 1);
	counter_add(&n->st.tx_bytes, len);
	return true;
}

static void tx_process(struct net *n)
{
	struct virtio_dev *d = &n->dev;
	struct virtq *vq = &d->vq[NET_TXQ];
	bool pushed = false;

	/* The whole ring each time: with EVENT_IDX the driver kicks again
	 * only after avail_event, which is published once the ring is
	 * seen empty. */
	while (virtio_dev_pop(d, NET_TXQ, &n->chain) > 0) {
		if (n->chain.nr_write) {
			virtio_dev_set_broken(
				d, "tx buffer with device-writable parts");
			break;
		}
		if (n->chain.read_len > NET_HDR_SIZE) {
			uint64_t wait = rl_consume(
				&n->tx_rl, n->chain.read_len - NET_HDR_SIZE, 1,
				now_ns());

			if (wait) {
				/* Over budget: the chain goes back to the
				 * ring until the timer fires. */
				unpop(vq, 1);
				counter_add(&n->st.tx_throttled, 1);
				arm_timer(n, wait);
				break;
			}
		}
		tx_one(n, &n->chain);
		virtq_push(vq, n->chain.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_queue(d, NET_TXQ);
}

uint64_t net_device_features(void)
{
	return 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM |
	       1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_GUEST_TSO4 |
	       1ULL << VIRTIO_NET_F_GUEST_TSO6 |
	       1ULL << VIRTIO_NET_F_HOST_TSO4 | 1ULL << VIRTIO_NET_F_HOST_TSO6 |
	       1ULL << VIRTIO_NET_F_MRG_RXBUF | 1ULL << VIRTIO_NET_F_STATUS;
}

static uint64_t net_features(struct virtio_dev *d)
{
	return net_device_features();
}

void net_config_bytes(const uint8_t mac[6], uint32_t off, uint8_t *data,
		      uint32_t len)
{
	uint8_t cfg[NET_CONFIG_SIZE];
	uint16_t status = VIRTIO_NET_S_LINK_UP, pairs = 1;

	memcpy(cfg, mac, 6);
	memcpy(cfg + 6, &status, 2);
	memcpy(cfg + 8, &pairs, 2);
	if (off > sizeof(cfg) || len > sizeof(cfg) - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, cfg + off, len);
}

static void net_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data,
			    uint32_t len)
{
	net_config_bytes(to_net(d)->mac, off, data, len);
}

static void net_config_write(struct virtio_dev *d, uint32_t off,
			     const uint8_t *data, uint32_t len)
{
	/* With VERSION_1 the MAC is read-only (5.1.4.1). */
}

static int net_activate(struct virtio_dev *d)
{
	struct net *n = to_net(d);
	int ret = set_offloads(n, net_tap_offloads(d->features));

	if (ret) {
		log_warn("%s: TUNSETOFFLOAD: %s", n->name, strerror(-ret));
		return ret;
	}
	n->rx_len = 0;
	rx_arm(n, true);
	return 0;
}

static void net_queue_notify(struct virtio_dev *d, int q)
{
	struct net *n = to_net(d);

	if (q == NET_TXQ)
		tx_process(n);
	else if (q == NET_RXQ)
		rx_process(n);
}

static void net_fd_ready(struct virtio_dev *d, int fd)
{
	struct net *n = to_net(d);

	/* A wakeup that raced with rx_arm(false) is stale. */
	if (fd == n->epfd && n->polling)
		rx_process(n);
	if (fd == n->timer_fd && n->timer_fd >= 0) {
		uint64_t ticks;

		if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
			log_warn("%s: timerfd: %s", n->name, strerror(errno));
		n->timer_deadline = 0;
		if (d->broken || !(d->status & VIRTIO_STATUS_DRIVER_OK))
			return;
		tx_process(n);
		rx_process(n);
	}
}

static void net_reset(struct virtio_dev *d)
{
	struct net *n = to_net(d);

	rx_arm(n, false);
	n->rx_len = 0;
	n->rx_paid = false;
	/* Frames queued in the tap for the old driver are stale but
	 * harmless: the next driver sees them as ordinary traffic. */
	if (set_offloads(n, 0))
		log_warn("%s: TUNSETOFFLOAD: %s", n->name, strerror(errno));
}

static void net_destroy(struct virtio_dev *d)
{
	struct net *n = to_net(d);

	close(n->epfd);
	close(n->fd);
	if (n->timer_fd >= 0)
		close(n->timer_fd);
	free(n->rxbuf);
	free(n->txbuf);
	virtio_dev_fini(d);
	free(n);
}

/* The snapshot payload: the MAC the driver read (a random one would
 * change under a restored guest), after a version. Held rx frames and
 * the rate limiters' buckets are not kept: the first is a frame lost on
 * the wire, the second start full, as after a PATCH. */
#define NET_STATE_VERSION 1

static void net_save(struct virtio_dev *d, struct ser_w *w)
{
	ser_u32(w, NET_STATE_VERSION);
	ser_bytes(w, to_net(d)->mac, 6);
}

int net_state_decode(const uint8_t *p, uint32_t len, uint8_t mac[6],
		     const char **why)
{
	struct ser_r r = { p, len, 0, false };
	const uint8_t *m;

	if (deser_u32(&r) != NET_STATE_VERSION) {
		*why = "unknown virtio-net state version";
		return -EINVAL;
	}
	m = ser_r_take(&r, 6);
	if (!deser_done(&r) || !m) {
		*why = "virtio-net state of the wrong length";
		return -EINVAL;
	}
	/* A device address is unicast and not all zeroes (what
	 * net_pick_mac and the front ends give). */
	if ((m[0] & 1) || !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5])) {
		*why = "virtio-net MAC is multicast or zero";
		return -EINVAL;
	}
	memcpy(mac, m, 6);
	return 0;
}

static int net_load(struct virtio_dev *d, const uint8_t *p, uint32_t len,
		    const char **why)
{
	return net_state_decode(p, len, to_net(d)->mac, why);
}

static const struct virtio_dev_ops net_ops = {
	.features = net_features,
	.save = net_save,
	.load = net_load,
	.config_read = net_config_read,
	.config_write = net_config_write,
	.activate = net_activate,
	.queue_notify = net_queue_notify,
	.reset = net_reset,
	.fd_ready = net_fd_ready,
	.destroy = net_destroy,
};

void net_limits(const struct net_config *cfg, struct rl_config *rx,
		struct rl_config *tx)
{
	*rx = cfg->rx_rl;
	*tx = cfg->tx_rl;
	/* rx_rate / tx_rate: a bandwidth bucket holding one second. */
	if (!rx->bw.size && cfg->rx_rate)
		rx->bw = (struct tb_config){ cfg->rx_rate, 0, 1000 };
	if (!tx->bw.size && cfg->tx_rate)
		tx->bw = (struct tb_config){ cfg->tx_rate, 0, 1000 };
}

void net_set_limits(struct virtio_dev *d, const struct rl_config *rx,
		    const struct rl_config *tx)
{
	struct net *n = to_net(d);

	pthread_mutex_lock(&d->lock);
	if (rx)
		rl_init(&n->rx_rl, rx, now_ns());
	if (tx)
		rl_init(&n->tx_rl, tx, now_ns());
	/* What waited on the old limits goes now, or waits on the new. */
	if (!d->broken && (d->status & VIRTIO_STATUS_DRIVER_OK)) {
		tx_process(n);
		rx_process(n);
	}
	pthread_mutex_unlock(&d->lock);
}

int net_pick_mac(const struct net_config *cfg, uint8_t mac[6], struct err *e)
{
	if (cfg->has_mac) {
		memcpy(mac, cfg->mac, 6);
		return 0;
	}
	if (getrandom(mac, 6, 0) != 6)
		return err_set(e, -EIO, "virtio-net %s: getrandom: %s",
			       cfg->id	? cfg->id :
			       cfg->tap ? cfg->tap :
					  "?",
			       strerror(errno));
	/* Unicast, locally administered. */
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02);
	return 0;
}

int net_create_fd(const struct net_config *cfg, int fd, bool is_tap,
		  struct guest_mem *mem, struct virtio_dev **out, struct err *e)
{
	const char *label = cfg->id ? cfg->id : cfg->tap ? cfg->tap : "?";
	struct rl_config rx, tx;
	struct net *n;
	int ret;

	*out = NULL;
	n = calloc(1, sizeof(*n));
	if (!n) {
		close(fd);
		return err_set(e, -ENOMEM, "virtio-net %s: out of memory",
			       label);
	}
	n->fd = fd;
	n->is_tap = is_tap;
	n->timer_fd = -1;
	snprintf(n->name, sizeof(n->name), "virtio-net %s", label);
	n->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (n->epfd < 0) {
		ret = err_set(e, -errno, "%s: epoll_create1: %s", n->name,
			      strerror(errno));
		goto fail;
	}
	net_limits(cfg, &rx, &tx);
	rl_init(&n->rx_rl, &rx, now_ns());
	rl_init(&n->tx_rl, &tx, now_ns());
	n->timer_fd =
		timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (n->timer_fd < 0) {
		ret = err_set(e, -errno, "%s: timerfd_create: %s", n->name,
			      strerror(errno));
		goto fail;
	}
	n->rxbuf = malloc(RXBUF_SIZE);
	n->txbuf = malloc(NET_MAX_FRAME);
	if (!n->rxbuf || !n->txbuf) {
		ret = err_set(e, -ENOMEM, "%s: out of memory", n->name);
		goto fail;
	}
	ret = net_pick_mac(cfg, n->mac, e);
	if (ret)
		goto fail;
	virtio_dev_init(&n->dev, n->name, VIRTIO_ID_NET, &net_ops, n, mem, 2,
			NET_QUEUE_SIZE, NET_CONFIG_SIZE);
	n->dev.watch_fds[0] = n->epfd;
	n->dev.nr_watch_fds = 1;
	if (n->timer_fd >= 0) {
		n->dev.watch_fds[1] = n->timer_fd;
		n->dev.nr_watch_fds = 2;
	}
	*out = &n->dev;
	return 0;
fail:
	if (n->epfd >= 0)
		close(n->epfd);
	if (n->timer_fd >= 0)
		close(n->timer_fd);
	close(fd);
	free(n->rxbuf);
	free(n->txbuf);
	free(n);
	return ret;
}

static bool name_ok(const char *s)
{
	size_t len = s ? strlen(s) : 0;

	if (len == 0 || len >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '/' || s[i] == ':')
			return false;
	return true;
}

int net_open_tap(const struct net_config *cfg, struct err *e)
{
	struct ifreq ifr = { 0 };
	unsigned int feat = 0;
	int fd, ret, hdrsz = NET_HDR_SIZE;

	if (!name_ok(cfg->tap))
		return err_config(e, -EINVAL,
				  "tap '%s': not a valid interface name",
				  cfg->tap ? cfg->tap : "");
	/* TUNSETIFF would create a missing tap (with CAP_NET_ADMIN) as a
	 * fresh, unconfigured interface that vanishes with us: refuse. */
	if (if_nametoindex(cfg->tap) == 0)
		return err_config(e, -ENODEV,
				  "tap '%s': no such interface (create it "
				  "first, e.g. ip tuntap add %s mode tap)",
				  cfg->tap, cfg->tap);
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return err_config(e, -errno, "tap '%s': /dev/net/tun: %s",
				  cfg->tap, strerror(errno));
	if (ioctl(fd, TUNGETFEATURES, &feat) < 0 || !(feat & IFF_VNET_HDR)) {
		ret = err_config(e, -EOPNOTSUPP,
				 "tap '%s': the tun driver has no IFF_VNET_HDR",
				 cfg->tap);
		goto fail;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", cfg->tap);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		ret = -errno;
		err_config(e, ret, "tap '%s': TUNSETIFF: %s%s", cfg->tap,
			   strerror(errno),
			   errno == EINVAL ? " (not a tap device?)" :
			   errno == EBUSY  ? " (in use by another process?)" :
			   errno == EPERM  ? " (owned by another user?)" :
					     "");
		goto fail;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, 0UL) < 0) {
		ret = err_set(e, -errno, "tap '%s': vnet header setup: %s",
			      cfg->tap, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}

int net_create(const struct net_config *cfg, struct guest_mem *mem,
	       struct virtio_dev **out, struct err *e)
{
	int fd, ret;

	*out = NULL;
	fd = net_open_tap(cfg, e);
	if (fd < 0)
		return fd;
	if (cfg->vhost) {
		const char *label = cfg->id ? cfg->id : cfg->tap;
		struct err ve = { 0 };
		uint64_t vf = 0;
		int vfd = -1;

		ret = net_vhost_open(label, &vfd, &vf, &ve);
		/* wisp's transport is virtio 1 only. */
		if (!ret && !(vf & (1ull << VIRTIO_F_VERSION_1))) {
			close(vfd);
			ret = err_set(&ve, -ENOTSUP,
				      "virtio-net %s: vhost-net lacks "
				      "VERSION_1",
				      label);
		}
		if (!ret)
			return net_vhost_create(cfg, fd, vfd, vf, mem, out, e);
		log_warn("%s; vhost=on falls back to wisp's own device",
			 ve.msg);
	}
	return net_create_fd(cfg, fd, true, mem, out, e);
}

void net_get_stats(struct virtio_dev *d, struct net_stats *s)
{
	const struct net_stats *st = &to_net(d)->st;

	s->rx_frames = counter_get(&st->rx_frames);
	s->rx_bytes = counter_get(&st->rx_bytes);
	s->rx_dropped = counter_get(&st->rx_dropped);
	s->tx_frames = counter_get(&st->tx_frames);
	s->tx_bytes = counter_get(&st->tx_bytes);
	s->tx_dropped = counter_get(&st->tx_dropped);
	s->tx_errors = counter_get(&st->tx_errors);
	s->rx_held = counter_get(&st->rx_held);
	s->rx_throttled = counter_get(&st->rx_throttled);
	s->tx_throttled = counter_get(&st->tx_throttled);
}

bool net_is_own(const struct virtio_dev *d)
{
	return d->ops == &net_ops;
}

bool net_rx_polling(struct virtio_dev *d)
{
	return to_net(d)->polling;
}

unsigned int net_current_offloads(struct virtio_dev *d)
{
	return to_net(d)->offloads;
}
