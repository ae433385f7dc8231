// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for virtio-rng (src/devices/rng/rng.c) on the real
 * split-virtqueue walker. The input is
 *   u8 flags | guest memory image (64 KiB from GPA 0, fuzz_virtq.h)
 * flags: bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 a rate limit of
 * 512 bytes/s (so the bucket runs dry within the input's chains).
 *
 * The device is kicked twice (and its rate timer handled once). Checks:
 * posted heads are the walker's chains in order; without a limit each
 * length is exactly its chain's writable bytes, with one the total is at
 * most the bucket; a chain with a device-readable buffer, or one the
 * walker refuses, breaks the device (NEEDS_RESET) and nothing after it is
 * posted; no byte outside the writable buffers and the used ring changes
 * (when buffers cannot rewrite the rings, fuzz_virtq.h).
 */
#include "devices/rng/rng.h"

#include "fuzz_virtq.h"

#define RATE 512

#define F_EVENT_IDX 1
#define F_INDIRECT 2
#define F_RATE 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fake_raise(void *transport, bool config)
{
}

static const struct virtio_transport_ops tops = { .raise = fake_raise };
static struct fq_pred pred;

static void run(uint8_t flags)
{
	const struct rng_config cfg = { .rate_bytes_per_sec =
						(flags & F_RATE) ? RATE : 0 };
	bool ev = flags & F_EVENT_IDX, ind = flags & F_INDIRECT, safe;
	uint32_t lens[FQ_MAX_CHAINS];
	struct virtio_dev *d;
	uint64_t total = 0;
	struct err e;
	int expect = 0, n;
	bool breaks;

	fq_predict(&pred, 0, ev, ind);
	safe = fq_safe(&pred, 1);
	memcpy(fq_mem.host, fq_image, FQ_MEM);

	CHECK(rng_create(&cfg, &fq_mem, &d, &e) == 0);
	d->tops = &tops;
	d->features = 1ULL << VIRTIO_F_VERSION_1 |
		      (ev ? 1ULL << VIRTIO_F_RING_EVENT_IDX : 0) |
		      (ind ? 1ULL << VIRTIO_F_RING_INDIRECT_DESC : 0);
	fq_setup_vq(&d->vq[0], 0, ev, ind);
	CHECK(d->ops->activate(d) == 0);
	d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	virtio_dev_kick(d, 0);
	virtio_dev_kick(d, 0);
	if (flags & F_RATE) {
		pthread_mutex_lock(&d->lock);
		d->ops->fd_ready(d, rng_watch_fd(d));
		pthread_mutex_unlock(&d->lock);
	}

	/* Where the device has to stop: the first chain with a readable
	 * buffer, else the one the walker refuses. */
	while (expect < pred.n && !pred.c[expect].read_len)
		expect++;
	breaks = expect < pred.n || pred.bad;
	memset(lens, 0, sizeof(lens));
	n = fq_check_used(&d->vq[0], &pred, safe, lens);
	CHECK(d->broken == !!(d->status & VIRTIO_STATUS_NEEDS_RESET));
	if (safe) {
		if (flags & F_RATE) {
			CHECK(n <= expect);
			CHECK(!d->broken || breaks);
		} else {
			CHECK(n == expect);
			CHECK(d->broken == breaks);
		}
		for (int i = 0; i < n; i++) {
			if (!(flags & F_RATE))
				CHECK(lens[i] == pred.c[i].write_len);
			total += lens[i];
		}
		/* A full bucket, and what refills while the input runs. */
		if (flags & F_RATE)
			CHECK(total <= 2 * RATE);
		fq_check_untouched(&pred, 1);
	}
	d->ops->destroy(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fq_mem.host)
		fq_init_mem();
	if (size < 1)
		return 0;
	fq_load(data + 1, size - 1);
	run(data[0]);
	return 0;
}
