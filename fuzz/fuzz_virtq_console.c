// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for virtio-console (src/devices/console/console.c) on
 * the real split-virtqueue walker. The input is
 *   u8 flags | u16 n | n bytes of host input | guest memory image
 * (64 KiB from GPA 0, fuzz_virtq.h: queue 0 receiveq, queue 1 transmitq).
 * flags: bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 an emergency write
 * (config emerg_wr) of the first input byte before anything else.
 *
 * The transmitq is kicked first, with output going to a pipe nobody reads
 * meanwhile, then the input is pushed and the receiveq kicked. Checks
 * (when buffers cannot rewrite the rings, fuzz_virtq.h): transmit chains
 * are posted in order with length 0; what the pipe got plus what was
 * dropped is exactly the readable bytes of the posted chains (and the
 * emergency byte), and when nothing was dropped (and no transmit buffer
 * lies over the used ring the device writes) it is those bytes in order;
 * receive chains are posted in order, each with at most its writable
 * bytes, their bytes are the input's prefix (unless buffers overlap), and
 * with input that fits the buffer the split is exactly the one predicted;
 * a device-readable receive buffer, or a chain the walker refuses, breaks
 * the device; no other guest byte changes.
 */
#include <fcntl.h>
#include <unistd.h>

#include "devices/console/console.h"

#include "fuzz_virtq.h"

#define F_EVENT_IDX 1
#define F_INDIRECT 2
#define F_EMERG 4

#define PIPE_SIZE (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fake_raise(void *transport, bool config)
{
}

static const struct virtio_transport_ops tops = { .raise = fake_raise };
static struct fq_pred ptx, prx;
static uint8_t outbuf[PIPE_SIZE], expect_out[PIPE_SIZE];

/* The readable bytes of the posted transmit chains, in order (at most
 * cap of them); returns their total. */
static uint64_t tx_bytes(int n, uint8_t *dst, size_t cap, size_t *filled)
{
	uint64_t total = 0;

	for (int i = 0; i < n; i++)
		for (int s = 0; s < ptx.c[i].nr; s++) {
			const struct fq_seg *g = &ptx.c[i].seg[s];
			uint64_t k = g->len;

			if (g->write)
				continue;
			if (*filled < cap) {
				if (k > cap - *filled)
					k = cap - *filled;
				memcpy(dst + *filled, fq_image + g->off, k);
				*filled += k;
			}
			total += g->len;
		}
	return total;
}

/* No readable buffer of the posted transmit chains overlaps the
 * transmitq's used ring (with avail_event): the device writes there after
 * each chain, so a later chain reading it sends bytes the image did not
 * have (seen: one 14 KiB buffer over the whole ring page, posted four
 * times). */
static bool tx_stable(int n)
{
	const uint64_t used = VCONSOLE_TXQ * 0x400 + 0x200;

	for (int i = 0; i < n; i++)
		for (int s = 0; s < ptx.c[i].nr; s++)
			if (!ptx.c[i].seg[s].write &&
			    overlaps(ptx.c[i].seg[s].off, ptx.c[i].seg[s].len,
				     used, 4 + 8 * FQ_QSIZE + 2))
				return false;
	return true;
}

/* No two writable buffers of the receive chains share a byte. */
static bool rx_disjoint(void)
{
	static uint8_t seen[FQ_MEM];

	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < prx.n; i++)
		for (int s = 0; s < prx.c[i].nr; s++) {
			const struct fq_seg *g = &prx.c[i].seg[s];

			if (!g->write)
				continue;
			for (uint64_t b = g->off; b < g->off + g->len; b++) {
				if (seen[b])
					return false;
				seen[b] = 1;
			}
		}
	return true;
}

static void run(uint8_t flags, const uint8_t *in, size_t in_len)
{
	bool ev = flags & F_EVENT_IDX, ind = flags & F_INDIRECT;
	bool safe, breaks = false;
	uint32_t lens[FQ_MAX_CHAINS];
	struct vconsole_stats st;
	struct virtio_dev *d;
	size_t taken, filled = 0, got = 0, delivered = 0;
	uint64_t want;
	struct err e;
	int p[2], ntx, nrx, expect;

	fq_predict(&ptx, VCONSOLE_TXQ, ev, ind);
	memcpy(fq_mem.host, fq_image, FQ_MEM);
	fq_predict(&prx, VCONSOLE_RXQ, ev, ind);
	/* Only receive buffers are written (transmit ones are read before
	 * any is). */
	safe = fq_safe(&prx, 2);
	memcpy(fq_mem.host, fq_image, FQ_MEM);

	CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE);
	CHECK(vconsole_create(p[1], &fq_mem, &d, &e) == 0);
	d->tops = &tops;
	d->features = 1ULL << VIRTIO_F_VERSION_1 | d->ops->features(d) |
		      (ev ? 1ULL << VIRTIO_F_RING_EVENT_IDX : 0) |
		      (ind ? 1ULL << VIRTIO_F_RING_INDIRECT_DESC : 0);
	fq_setup_vq(&d->vq[VCONSOLE_RXQ], VCONSOLE_RXQ, ev, ind);
	fq_setup_vq(&d->vq[VCONSOLE_TXQ], VCONSOLE_TXQ, ev, ind);
	CHECK(d->ops->activate(d) == 0);
	d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;

	if ((flags & F_EMERG) && in_len) {
		pthread_mutex_lock(&d->lock);
		d->ops->config_write(d, 8, in, 1);
		pthread_mutex_unlock(&d->lock);
		expect_out[filled++] = in[0];
	}
	virtio_dev_kick(d, VCONSOLE_TXQ);
	virtio_dev_kick(d, VCONSOLE_TXQ);
	ntx = fq_check_used(&d->vq[VCONSOLE_TXQ], &ptx, safe, lens);
	if (safe) {
		/* The transmit side breaks only on a refused chain. */
		CHECK(ntx == ptx.n);
		for (int i = 0; i < ntx; i++)
			CHECK(lens[i] == 0);
		want = filled; /* the emergency byte */
		want += tx_bytes(ntx, expect_out, sizeof(expect_out), &filled);
		for (ssize_t r;
		     (r = read(p[0], outbuf + got, sizeof(outbuf) - got)) > 0;)
			got += (size_t)r;
		vconsole_get_stats(d, &st);
		CHECK(st.out_bytes == got);
		CHECK(st.out_bytes + st.out_dropped_bytes == want);
		if (!st.out_dropped_bytes && tx_stable(ntx))
			CHECK(!memcmp(outbuf, expect_out, got));
		if (ptx.bad)
			CHECK(d->broken);
	}
	if (d->broken)
		goto out;

	taken = vconsole_push_input(d, in, in_len);
	CHECK(taken <= in_len);
	virtio_dev_kick(d, VCONSOLE_RXQ);
	virtio_dev_kick(d, VCONSOLE_RXQ);
	memset(lens, 0, sizeof(lens));
	nrx = fq_check_used(&d->vq[VCONSOLE_RXQ], &prx, safe, lens);
	CHECK(d->broken == !!(d->status & VIRTIO_STATUS_NEEDS_RESET));
	if (!safe)
		goto out;
	for (int i = 0; i < nrx; i++)
		delivered += lens[i];
	vconsole_get_stats(d, &st);
	CHECK(st.in_bytes == delivered);
	CHECK(delivered <= taken && taken - delivered <= VCONSOLE_RX_SIZE);
	if (in_len <= VCONSOLE_RX_SIZE) {
		/* Everything fits: the split is the walker's chains in turn. */
		size_t rem = taken;

		CHECK(taken == in_len);
		expect = 0;
		while (rem && expect < prx.n) {
			if (prx.c[expect].read_len) {
				breaks = true;
				break;
			}
			CHECK(lens[expect] ==
			      (rem < prx.c[expect].write_len ?
				       rem :
				       prx.c[expect].write_len));
			rem -= lens[expect];
			expect++;
		}
		if (rem && expect == prx.n && prx.bad)
			breaks = true;
		CHECK(nrx == expect);
		CHECK(d->broken == breaks);
	}
	if (rx_disjoint()) {
		size_t at = 0;

		for (int i = 0; i < nrx; i++) {
			uint32_t left = lens[i];

			for (int s = 0; s < prx.c[i].nr && left; s++) {
				const struct fq_seg *g = &prx.c[i].seg[s];
				uint32_t k = g->len < left ? g->len : left;

				if (!g->write)
					continue;
				CHECK(!memcmp(fq_mem.host + g->off, in + at,
					      k));
				at += k;
				left -= k;
			}
		}
		CHECK(at == delivered);
	}
	fq_check_untouched(&prx, 2);
out:
	d->ops->destroy(d);
	close(p[0]);
	close(p[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;

	if (!fq_mem.host)
		fq_init_mem();
	if (size < 3)
		return 0;
	n = le16(data + 1);
	if (n > size - 3)
		n = size - 3;
	fq_load(data + 3 + n, size - 3 - n);
	run(data[0], data + 3, n);
	return 0;
}
