// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for virtio-net: transmit chains and headers from the
 * guest, frames and headers from the backend. The input is
 *   u8 flags | u8 nframes | nframes x (u16 len, len bytes) | guest memory
 * The frames (at most 4, each at most FRAME_MAX bytes, virtio_net_hdr
 * included) are what the backend sends; the rest is the image of a
 * 64 KiB guest (from GPA 0) with the rx queue's rings at 0x0/0x100/0x200
 * and the tx queue's at 0x400/0x500/0x600, QSIZE entries each. flags:
 * bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 MRG_RXBUF, bit 3 CSUM and
 * HOST_TSO4/6, bit 4 GUEST_CSUM and GUEST_TSO4/6.
 *
 * The backend is a SOCK_SEQPACKET socket pair. After tx and rx kicks and
 * a readiness callback, the device must be healthy or broken with
 * NEEDS_RESET, have answered every tx chain it took (but the one that
 * broke it), and every frame that reached the backend must carry a
 * header valid for the negotiated features and a length within bounds.
 * Guard pages around guest RAM turn stray accesses into crashes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/net/net.h"
#include "mem/guest_mem.h"
#include "util/log.h"
#include "virtio/virtio.h"

#define FUZZ_MEM (64ULL << 10)
#define QSIZE 16
#define MAX_FRAMES 4
#define FRAME_MAX (NET_HDR_SIZE + 4096)

#define F_EVENT_IDX 1
#define F_INDIRECT 2
#define F_MRG 4
#define F_HOST_OFF 8
#define F_GUEST_OFF 16

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_virtio_net: check failed: %s\n", \
				#cond);                                        \
			abort();                                               \
		}                                                              \
	} while (0)

static struct guest_mem mem;
static uint8_t out[NET_HDR_SIZE + NET_MAX_FRAME + 1];
static int raises;

static void fake_raise(void *transport, bool config)
{
	raises++;
}

static const struct virtio_transport_ops tops = { .raise = fake_raise };

static void guard(void *addr)
{
	mmap(addr, 4096, PROT_NONE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
}

static void init_once(void)
{
	struct err e;

	log_set_level(LOG_ERROR);
	if (guest_mem_init(&mem, FUZZ_MEM, &e) < 0) {
		fprintf(stderr, "fuzz_virtio_net: %s\n", e.msg);
		abort();
	}
	guard(mem.host - 4096);
	guard(mem.host + FUZZ_MEM);
}

static void setup_vq(struct virtq *vq, uint64_t base, uint8_t flags)
{
	memset(vq, 0, sizeof(*vq));
	vq->size = QSIZE;
	vq->desc_gpa = base;
	vq->avail_gpa = base + 0x100;
	vq->used_gpa = base + 0x200;
	vq->event_idx = flags & F_EVENT_IDX;
	vq->indirect = flags & F_INDIRECT;
	vq->mem = &mem;
	vq->ready = true;
}

static uint64_t features(struct virtio_dev *d, uint8_t flags)
{
	uint64_t f = d->ops->features(d) | 1ULL << VIRTIO_F_VERSION_1;

	if (flags & F_EVENT_IDX)
		f |= 1ULL << VIRTIO_F_RING_EVENT_IDX;
	if (flags & F_INDIRECT)
		f |= 1ULL << VIRTIO_F_RING_INDIRECT_DESC;
	if (!(flags & F_MRG))
		f &= ~(1ULL << VIRTIO_NET_F_MRG_RXBUF);
	if (!(flags & F_HOST_OFF))
		f &= ~(1ULL << VIRTIO_NET_F_CSUM |
		       1ULL << VIRTIO_NET_F_HOST_TSO4 |
		       1ULL << VIRTIO_NET_F_HOST_TSO6);
	if (!(flags & F_GUEST_OFF))
		f &= ~(1ULL << VIRTIO_NET_F_GUEST_CSUM |
		       1ULL << VIRTIO_NET_F_GUEST_TSO4 |
		       1ULL << VIRTIO_NET_F_GUEST_TSO6);
	return f;
}

static void ready(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	d->ops->fd_ready(d, d->watch_fds[0]);
	pthread_mutex_unlock(&d->lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_config cfg = { .tap = "fuzz" };
	struct virtio_dev *d;
	struct virtq *tx, *rx;
	struct err e;
	uint8_t flags, nframes;
	size_t pos = 2, n;
	int sv[2];

	if (!mem.host)
		init_once();
	if (size < 2)
		return 0;
	flags = data[0];
	nframes = data[1] % (MAX_FRAMES + 1);
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
			 0, sv) == 0);
	CHECK(net_create_fd(&cfg, sv[0], false, &mem, &d, &e) == 0);
	for (int i = 0; i < nframes && pos + 2 <= size; i++) {
		size_t len = (size_t)(data[pos] | data[pos + 1] << 8) %
			     (FRAME_MAX + 1);

		pos += 2;
		if (len > size - pos)
			len = size - pos;
		if (send(sv[1], data + pos, len, MSG_DONTWAIT) < 0)
			CHECK(errno == EAGAIN || len == 0);
		pos += len;
	}
	n = size - pos < FUZZ_MEM ? size - pos : FUZZ_MEM;
	memset(mem.host, 0, FUZZ_MEM);
	memcpy(mem.host, data + pos, n);

	raises = 0;
	d->tops = &tops;
	d->features = features(d, flags);
	setup_vq(&d->vq[NET_RXQ], 0x0, flags);
	setup_vq(&d->vq[NET_TXQ], 0x400, flags);
	CHECK(d->ops->activate(d) == 0);
	d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;

	virtio_dev_kick(d, NET_TXQ);
	ready(d);
	virtio_dev_kick(d, NET_RXQ);
	ready(d);
	virtio_dev_kick(d, NET_TXQ);

	CHECK(d->broken == !!(d->status & VIRTIO_STATUS_NEEDS_RESET));
	tx = &d->vq[NET_TXQ];
	CHECK(tx->used_idx == tx->last_avail ||
	      (d->broken && (uint16_t)(tx->used_idx + 1) == tx->last_avail));
	rx = &d->vq[NET_RXQ];
	CHECK((uint16_t)(rx->last_avail - rx->used_idx) <= QSIZE);
	CHECK(raises <= 8);
	/* Only well-formed frames reach the backend. */
	for (;;) {
		struct virtio_net_hdr h;
		ssize_t got = recv(sv[1], out, sizeof(out), MSG_DONTWAIT);

		if (got < 0)
			break;
		CHECK(got >= NET_HDR_SIZE + NET_MIN_FRAME &&
		      got <= NET_HDR_SIZE + NET_MAX_FRAME);
		memcpy(&h, out, sizeof(h));
		CHECK(h.num_buffers == 0);
		CHECK(!net_check_tx_hdr(&h, d->features,
					(uint32_t)got - NET_HDR_SIZE));
	}
	d->ops->destroy(d);
	close(sv[1]);
	return 0;
}
