// SPDX-License-Identifier: MIT
/* virtio-iommu through a fake driver: every request with valid and hostile
 * fields (status codes per virtio 1.2, 5.13.6), the quotas, UNMAP's no-split
 * rule, PROBE's MSI region, and translation as an endpoint sees it: a
 * virtio-blk behind the IOMMU reading into mapped and unmapped IOVAs,
 * permissions, fault records on the eventq, invalidation on UNMAP, DETACH
 * and ATTACH, and a ring that is unmapped under the device. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/blk/blk.h"
#include "devices/rng/rng.h"
#include "devices/iommu/viommu.h"
#include "fake_driver.h"

#define QSIZE 16
#define NR_EP 6
#define MAX_DOMAINS 4
#define MAX_MAPS 8
#define MAX_TOTAL 12
#define DOMAIN_END 15
#define R VIRTIO_IOMMU_MAP_F_READ
#define W VIRTIO_IOMMU_MAP_F_WRITE
#define RW (R | W)

/* The blk endpoint's queues and heap, away from the IOMMU's. */
#define EP_QUEUES 0x80000ULL
#define EP_HEAP (8ULL << 20)
#define IMG_SIZE (64ULL << 10)

struct ctx {
	struct fake_driver f; /* the IOMMU's driver, owns guest RAM */
	struct virtio_dev *iommu;
	const struct virtq_dma *dma[NR_EP]; /* endpoints 1..NR_EP */
	/* The blk endpoint (endpoint 1), when a test sets it up. */
	struct fake_driver bf;
	bool have_blk;
	char path[PATH_MAX];
	int img_fd;
};

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* The next setup's viommu_config.poll_ns (0: the default) and
 * vcpu_requests. */
static int64_t setup_poll_ns;
static bool setup_vcpu;

static int setup_cfg(void **state, bool bypass)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct viommu_config cfg = {
		.max_domains = MAX_DOMAINS,
		.max_maps_per_domain = MAX_MAPS,
		.max_total_maps = MAX_TOTAL,
		.domain_end = DOMAIN_END,
		.bypass = bypass,
		.vcpu_requests = setup_vcpu,
		.poll_ns = setup_poll_ns,
	};
	struct err e;

	assert_non_null(c);
	c->img_fd = -1;
	fake_init(&c->f);
	assert_int_equal(viommu_create(&cfg, &c->f.mem, &c->iommu, &e), 0);
	for (int i = 0; i < NR_EP; i++)
		assert_int_equal(viommu_add_endpoint(c->iommu, (uint32_t)i + 1,
						     &c->dma[i], &e),
				 0);
	fake_attach(&c->f, c->iommu, ~0ULL, QSIZE);
	*state = c;
	return 0;
}

static int setup(void **state)
{
	return setup_cfg(state, false);
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	if (c->have_blk)
		fake_destroy(&c->bf);
	fake_destroy(&c->f);
	if (c->img_fd >= 0) {
		close(c->img_fd);
		unlink(c->path);
	}
	free(c);
	return 0;
}

/* Sends one request: rlen readable bytes, wlen writable ones; returns the
 * status byte (the writable part's last 4 bytes hold the tail), or -1 when
 * the device gave the chain back with 0 bytes. The writable part is
 * copied to wout if given. */
static int send(struct ctx *c, const uint8_t *req, uint32_t rlen, uint32_t wlen,
		uint8_t *wout)
{
	uint64_t rg = fake_alloc(&c->f, rlen ? rlen : 1);
	uint64_t wg = fake_alloc(&c->f, wlen ? wlen : 1);
	struct fake_buf b[2];
	int n = 0;
	uint32_t id, len;
	uint8_t *w;

	if (rlen) {
		memcpy(fake_ptr(&c->f, rg, rlen), req, rlen);
		b[n++] = (struct fake_buf){ rg, rlen, false };
	}
	if (wlen)
		b[n++] = (struct fake_buf){ wg, wlen, true };
	fake_add_chain(&c->f, 0, b, n);
	fake_kick(&c->f, 0);
	assert_true(fake_get_used(&c->f, 0, &id, &len));
	assert_false(fake_broken(&c->f));
	if (len == 0)
		return -1;
	assert_int_equal(len, wlen);
	w = fake_ptr(&c->f, wg, wlen);
	if (wout)
		memcpy(wout, w, wlen);
	return w[wlen - 4];
}

static int attach(struct ctx *c, uint32_t dom, uint32_t ep, uint32_t flags)
{
	uint8_t r[VIOMMU_ATTACH_LEN] = { VIRTIO_IOMMU_T_ATTACH };

	put32(r + 4, dom);
	put32(r + 8, ep);
	put32(r + 12, flags);
	return send(c, r, sizeof(r), 4, NULL);
}

static int detach(struct ctx *c, uint32_t dom, uint32_t ep)
{
	uint8_t r[VIOMMU_DETACH_LEN] = { VIRTIO_IOMMU_T_DETACH };

	put32(r + 4, dom);
	put32(r + 8, ep);
	return send(c, r, sizeof(r), 4, NULL);
}

static int map(struct ctx *c, uint32_t dom, uint64_t start, uint64_t last,
	       uint64_t phys, uint32_t flags)
{
	uint8_t r[VIOMMU_MAP_LEN] = { VIRTIO_IOMMU_T_MAP };

	put32(r + 4, dom);
	put64(r + 8, start);
	put64(r + 16, last);
	put64(r + 24, phys);
	put32(r + 32, flags);
	return send(c, r, sizeof(r), 4, NULL);
}

static int unmap(struct ctx *c, uint32_t dom, uint64_t start, uint64_t last)
{
	uint8_t r[VIOMMU_UNMAP_LEN] = { VIRTIO_IOMMU_T_UNMAP };

	put32(r + 4, dom);
	put64(r + 8, start);
	put64(r + 16, last);
	return send(c, r, sizeof(r), 4, NULL);
}

/* Endpoint 1's translation for the request with token tok. */
static int xtok(struct ctx *c, int tok, uint64_t iova, uint64_t len)
{
	const struct virtq_dma *d = c->dma[0];
	uint64_t g, n;

	return d->translate(d->opaque, tok, iova, len, true, &g, &n);
}

/* Translation as endpoint ep's device sees it. */
static int xlate(struct ctx *c, uint32_t ep, uint64_t iova, uint64_t len,
		 bool write, uint64_t *gpa, uint64_t *plen)
{
	const struct virtq_dma *d = c->dma[ep - 1];
	uint64_t g = 0, n = 0;
	int ret = d->translate(d->opaque, 0, iova, len, write, &g, &n);

	if (gpa)
		*gpa = g;
	if (plen)
		*plen = n;
	return ret;
}

static struct viommu_stats stats(struct ctx *c)
{
	struct viommu_stats st;

	viommu_get_stats(c->iommu, &st);
	return st;
}

/* Offers an eventq buffer; returns its GPA. */
static uint64_t event_buf(struct ctx *c)
{
	uint64_t g = fake_alloc(&c->f, VIOMMU_FAULT_LEN);
	struct fake_buf b = { g, VIOMMU_FAULT_LEN, true };

	fake_add_chain(&c->f, 1, &b, 1);
	fake_kick(&c->f, 1);
	return g;
}

/* The next fault record on the eventq (false: none). */
static bool next_fault(struct ctx *c, uint64_t g, uint8_t *reason,
		       uint32_t *flags, uint32_t *ep, uint64_t *addr)
{
	uint32_t id, len;
	const uint8_t *p;

	if (!fake_get_used(&c->f, 1, &id, &len))
		return false;
	assert_int_equal(len, VIOMMU_FAULT_LEN);
	p = fake_ptr(&c->f, g, VIOMMU_FAULT_LEN);
	*reason = p[0];
	*flags = get32(p + 4);
	*ep = get32(p + 8);
	*addr = get64(p + 16);
	return true;
}

/* ---- config ---------------------------------------------------------- */

static void test_config(void **state)
{
	struct ctx *c = *state;
	struct virtio_dev *d = c->iommu;
	uint8_t cfg[VIOMMU_CONFIG_SIZE];
	uint64_t f = d->ops->features(d);

	for (int b = 0; b <= 6; b++)
		if (b != VIRTIO_IOMMU_F_BYPASS)
			assert_true(f & (1ULL << b));
	assert_int_equal(d->device_id, 23);
	assert_int_equal(d->config_size, VIOMMU_CONFIG_SIZE);
	for (uint32_t off = 0; off < sizeof(cfg); off += 4)
		d->ops->config_read(d, off, cfg + off, 4);
	assert_int_equal(get64(cfg), ~0xfffULL);
	assert_int_equal(get64(cfg + 8), 0);
	assert_int_equal(get64(cfg + 16), VIOMMU_INPUT_END);
	assert_int_equal(get32(cfg + 24), 0);
	assert_int_equal(get32(cfg + 28), DOMAIN_END);
	assert_int_equal(get32(cfg + 32), VIOMMU_PROBE_SIZE);
	assert_int_equal(cfg[36], 0);
	/* bypass is the one writable field. */
	d->ops->config_write(d, 36, (const uint8_t[]){ 1 }, 1);
	d->ops->config_read(d, 36, cfg, 1);
	assert_int_equal(cfg[0], 1);
	d->ops->config_write(d, 0, (const uint8_t[]){ 0, 0, 0, 0 }, 4);
	d->ops->config_read(d, 0, cfg, 4);
	assert_int_equal(get32(cfg), 0xfffff000u);
}

/* ---- ATTACH / DETACH ------------------------------------------------- */

static void test_attach(void **state)
{
	struct ctx *c = *state;
	uint8_t r[VIOMMU_ATTACH_LEN] = { VIRTIO_IOMMU_T_ATTACH };

	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).domains, 1);
	/* Again: nothing changes. */
	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).domains, 1);
	assert_int_equal(attach(c, 1, 99, 0), VIRTIO_IOMMU_S_NOENT);
	assert_int_equal(attach(c, DOMAIN_END + 1, 2, 0), VIRTIO_IOMMU_S_RANGE);
	assert_int_equal(attach(c, UINT32_MAX, 2, 0), VIRTIO_IOMMU_S_RANGE);
	assert_int_equal(attach(c, 2, 2, 0x2), VIRTIO_IOMMU_S_INVAL);
	/* Reserved bytes must be zero. */
	put32(r + 4, 2);
	put32(r + 8, 2);
	r[19] = 1;
	assert_int_equal(send(c, r, sizeof(r), 4, NULL), VIRTIO_IOMMU_S_INVAL);
	/* Domain 1 is translated: attaching in bypass mode is refused. */
	assert_int_equal(attach(c, 1, 2, VIRTIO_IOMMU_ATTACH_F_BYPASS),
			 VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(attach(c, 2, 2, VIRTIO_IOMMU_ATTACH_F_BYPASS),
			 VIRTIO_IOMMU_S_OK);
	/* Moving endpoint 1 to domain 3 frees domain 1 (last endpoint). */
	assert_int_equal(attach(c, 3, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).domains, 2);
	assert_int_equal(map(c, 1, 0, 0xfff, 0, R), VIRTIO_IOMMU_S_NOENT);
}

static void test_domain_quota(void **state)
{
	struct ctx *c = *state;

	for (uint32_t i = 0; i < MAX_DOMAINS; i++)
		assert_int_equal(attach(c, i, i + 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(attach(c, MAX_DOMAINS, MAX_DOMAINS + 1, 0),
			 VIRTIO_IOMMU_S_NOMEM);
	assert_int_equal(stats(c).domains, MAX_DOMAINS);
	/* Freeing one makes room. */
	assert_int_equal(detach(c, 0, 1), VIRTIO_IOMMU_S_OK);
	assert_int_equal(attach(c, MAX_DOMAINS, MAX_DOMAINS + 1, 0),
			 VIRTIO_IOMMU_S_OK);
}

static void test_detach(void **state)
{
	struct ctx *c = *state;
	uint8_t r[VIOMMU_DETACH_LEN] = { VIRTIO_IOMMU_T_DETACH };

	assert_int_equal(attach(c, 5, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(attach(c, 5, 2, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(detach(c, 5, 99), VIRTIO_IOMMU_S_NOENT);
	assert_int_equal(detach(c, 6, 1), VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(detach(c, 5, 3), VIRTIO_IOMMU_S_INVAL);
	put32(r + 4, 5);
	put32(r + 8, 1);
	r[12] = 1;
	assert_int_equal(send(c, r, sizeof(r), 4, NULL), VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(detach(c, 5, 1), VIRTIO_IOMMU_S_OK);
	assert_int_equal(detach(c, 5, 1), VIRTIO_IOMMU_S_INVAL);
	/* Endpoint 2 still holds domain 5 and its mappings. */
	assert_int_equal(map(c, 5, 0x1000, 0x1fff, 0x1000, R),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(detach(c, 5, 2), VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).domains, 0);
	assert_int_equal(stats(c).mappings, 0);
	assert_int_equal(map(c, 5, 0x1000, 0x1fff, 0x1000, R),
			 VIRTIO_IOMMU_S_NOENT);
}

/* ---- MAP / UNMAP ----------------------------------------------------- */

static void test_map_hostile(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, 0x10000, 0x1ffff, 0x200000, RW),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 7, 0, 0xfff, 0, R), VIRTIO_IOMMU_S_NOENT);
	assert_int_equal(map(c, 1, 0x3000, 0x2fff, 0, R), VIRTIO_IOMMU_S_INVAL);
	/* Not aligned to the 4 KiB granule: start, end + 1, phys. */
	assert_int_equal(map(c, 1, 0x40800, 0x40fff, 0, R),
			 VIRTIO_IOMMU_S_RANGE);
	assert_int_equal(map(c, 1, 0x40000, 0x40ffe, 0, R),
			 VIRTIO_IOMMU_S_RANGE);
	assert_int_equal(map(c, 1, 0x40000, 0x40fff, 0x10, R),
			 VIRTIO_IOMMU_S_RANGE);
	/* Outside input_range, and up to the top of the 64-bit space. */
	assert_int_equal(map(c, 1, VIOMMU_INPUT_END + 1,
			     VIOMMU_INPUT_END + 0x1000, 0, R),
			 VIRTIO_IOMMU_S_RANGE);
	assert_int_equal(map(c, 1, 0xfffffffffffff000ULL, UINT64_MAX, 0, R),
			 VIRTIO_IOMMU_S_RANGE);
	/* phys + size wraps. */
	assert_int_equal(map(c, 1, 0x100000, 0x101fff, 0xfffffffffffff000ULL,
			     R),
			 VIRTIO_IOMMU_S_RANGE);
	/* Overlaps: exact, inside, straddling either end. */
	assert_int_equal(map(c, 1, 0x10000, 0x1ffff, 0, R),
			 VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(map(c, 1, 0x12000, 0x12fff, 0, R),
			 VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(map(c, 1, 0xf000, 0x10fff, 0, R),
			 VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(map(c, 1, 0x1f000, 0x20fff, 0, R),
			 VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(map(c, 1, 0x40000, 0x40fff, 0, 0x8),
			 VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(stats(c).mappings, 1);
	/* Adjacent on both sides is fine. */
	assert_int_equal(map(c, 1, 0xf000, 0xffff, 0, R), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, 0x20000, 0x20fff, 0, R), VIRTIO_IOMMU_S_OK);
	/* A bypass domain has no mappings. */
	assert_int_equal(attach(c, 2, 2, VIRTIO_IOMMU_ATTACH_F_BYPASS),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 2, 0, 0xfff, 0, R), VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(unmap(c, 2, 0, 0xfff), VIRTIO_IOMMU_S_INVAL);
}

static void test_map_quota(void **state)
{
	struct ctx *c = *state;
	uint64_t i;

	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(attach(c, 2, 2, 0), VIRTIO_IOMMU_S_OK);
	for (i = 0; i < MAX_MAPS; i++)
		assert_int_equal(map(c, 1, i << 12, (i << 12) + 0xfff, 0, R),
				 VIRTIO_IOMMU_S_OK);
	/* Per domain. */
	assert_int_equal(map(c, 1, i << 12, (i << 12) + 0xfff, 0, R),
			 VIRTIO_IOMMU_S_NOMEM);
	/* Total over the VM: MAX_TOTAL - MAX_MAPS more in domain 2. */
	for (i = 0; i < MAX_TOTAL - MAX_MAPS; i++)
		assert_int_equal(map(c, 2, i << 12, (i << 12) + 0xfff, 0, R),
				 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 2, i << 12, (i << 12) + 0xfff, 0, R),
			 VIRTIO_IOMMU_S_NOMEM);
	assert_int_equal(stats(c).mappings, MAX_TOTAL);
	/* Unmapping gives the entries back. */
	assert_int_equal(unmap(c, 1, 0, 0x1fff), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 2, i << 12, (i << 12) + 0xfff, 0, R),
			 VIRTIO_IOMMU_S_OK);
	/* A detached domain's mappings go back too. */
	assert_int_equal(detach(c, 1, 1), VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).mappings, MAX_TOTAL - MAX_MAPS + 1);
}

static void test_unmap_split(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	/* A domain that never had a mapping (found by the fuzzer: a
	 * memmove on the space's NULL storage). */
	assert_int_equal(unmap(c, 1, 0, UINT64_MAX), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, 0x10000, 0x13fff, 0x100000, R),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, 0x20000, 0x20fff, 0x200000, R),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, 0x21000, 0x21fff, 0x300000, R),
			 VIRTIO_IOMMU_S_OK);
	/* Would split [0x10000, 0x13fff] at either end or in the middle:
	 * RANGE and nothing removed. */
	assert_int_equal(unmap(c, 1, 0x11000, 0x11fff), VIRTIO_IOMMU_S_RANGE);
	assert_int_equal(unmap(c, 1, 0x0, 0x10fff), VIRTIO_IOMMU_S_RANGE);
	assert_int_equal(unmap(c, 1, 0x12000, 0x20fff), VIRTIO_IOMMU_S_RANGE);
	assert_int_equal(stats(c).mappings, 3);
	assert_int_equal(xlate(c, 1, 0x11000, 1, false, NULL, NULL), 0);
	assert_int_equal(xlate(c, 1, 0x20000, 1, false, NULL, NULL), 0);
	assert_int_equal(unmap(c, 1, 0x3000, 0x2fff), VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(unmap(c, 9, 0, 0xfff), VIRTIO_IOMMU_S_NOENT);
	/* No mapping in the range is not an error. */
	assert_int_equal(unmap(c, 1, 0x50000, 0x5ffff), VIRTIO_IOMMU_S_OK);
	/* One range over two whole mappings and a hole removes both. */
	assert_int_equal(unmap(c, 1, 0x14000, 0x21fff), VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).mappings, 1);
	assert_int_equal(xlate(c, 1, 0x20000, 1, false, NULL, NULL), -EFAULT);
	assert_int_equal(xlate(c, 1, 0x21000, 1, false, NULL, NULL), -EFAULT);
	/* The whole space. */
	assert_int_equal(unmap(c, 1, 0, UINT64_MAX), VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).mappings, 0);
}

/* ---- PROBE and malformed requests ------------------------------------ */

static void test_probe(void **state)
{
	struct ctx *c = *state;
	uint8_t r[VIOMMU_PROBE_LEN] = { VIRTIO_IOMMU_T_PROBE };
	uint8_t w[VIOMMU_PROBE_SIZE + 4];

	memset(w, 0xaa, sizeof(w));
	put32(r + 4, 3);
	assert_int_equal(send(c, r, sizeof(r), sizeof(w), w),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(w[0] | w[1] << 8, VIRTIO_IOMMU_PROBE_T_RESV_MEM);
	assert_int_equal(w[2] | w[3] << 8, 20);
	assert_int_equal(w[4], VIRTIO_IOMMU_RESV_MEM_T_MSI);
	assert_int_equal(get64(w + 8), 0xfee00000ULL);
	assert_int_equal(get64(w + 16), 0xfeefffffULL);
	/* Then a NONE property. */
	assert_int_equal(w[24] | w[25] << 8, VIRTIO_IOMMU_PROBE_T_NONE);
	put32(r + 4, 77);
	assert_int_equal(send(c, r, sizeof(r), sizeof(w), NULL),
			 VIRTIO_IOMMU_S_NOENT);
	put32(r + 4, 3);
	assert_int_equal(send(c, r, sizeof(r), 16, NULL), VIRTIO_IOMMU_S_INVAL);
	r[40] = 1;
	assert_int_equal(send(c, r, sizeof(r), sizeof(w), NULL),
			 VIRTIO_IOMMU_S_INVAL);
}

static void test_truncated(void **state)
{
	struct ctx *c = *state;
	static const struct {
		uint8_t type;
		uint32_t len;
	} t[] = {
		{ VIRTIO_IOMMU_T_ATTACH, VIOMMU_ATTACH_LEN },
		{ VIRTIO_IOMMU_T_DETACH, VIOMMU_DETACH_LEN },
		{ VIRTIO_IOMMU_T_MAP, VIOMMU_MAP_LEN },
		{ VIRTIO_IOMMU_T_UNMAP, VIOMMU_UNMAP_LEN },
		{ VIRTIO_IOMMU_T_PROBE, VIOMMU_PROBE_LEN },
	};
	uint8_t r[128] = { 0 };

	/* Fields that would be valid, one byte short: INVAL, no effect. */
	put32(r + 8, 1);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		r[0] = t[i].type;
		assert_int_equal(send(c, r, t[i].len - 1, 4 + VIOMMU_PROBE_SIZE,
				      NULL),
				 VIRTIO_IOMMU_S_INVAL);
	}
	assert_int_equal(stats(c).domains, 0);
	assert_int_equal(send(c, r, 3, 4, NULL), VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(send(c, r, 0, 4, NULL), VIRTIO_IOMMU_S_INVAL);
	r[0] = 0;
	assert_int_equal(send(c, r, 64, 4, NULL), VIRTIO_IOMMU_S_UNSUPP);
	r[0] = 0xff;
	assert_int_equal(send(c, r, 64, 4, NULL), VIRTIO_IOMMU_S_UNSUPP);
	/* No room for the tail: given back with nothing written. */
	r[0] = VIRTIO_IOMMU_T_ATTACH;
	assert_int_equal(send(c, r, VIOMMU_ATTACH_LEN, 3, NULL), -1);
	assert_int_equal(send(c, r, VIOMMU_ATTACH_LEN, 0, NULL), -1);
	assert_int_equal(stats(c).domains, 0);
	/* The device still works. */
	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
}

/* ---- Translation ----------------------------------------------------- */

static void test_translate(void **state)
{
	struct ctx *c = *state;
	uint64_t gpa, n, ev;
	uint8_t reason;
	uint32_t flags, ep;
	uint64_t addr;

	ev = event_buf(c);
	/* Not attached, no bypass: a DOMAIN fault. */
	assert_int_equal(xlate(c, 2, 0x1000, 8, false, NULL, NULL), -EFAULT);
	assert_true(next_fault(c, ev, &reason, &flags, &ep, &addr));
	assert_int_equal(reason, VIRTIO_IOMMU_FAULT_R_DOMAIN);
	assert_int_equal(ep, 2);
	assert_int_equal(flags, VIRTIO_IOMMU_FAULT_F_READ);

	assert_int_equal(attach(c, 1, 2, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, 0x40000, 0x40fff, 0x300000, R),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, 0x41000, 0x41fff, 0x500000, RW),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(xlate(c, 2, 0x40010, 16, false, &gpa, &n), 0);
	assert_int_equal(gpa, 0x300010);
	assert_int_equal(n, 16);
	/* Across two adjacent mappings: the first piece, then the next. */
	assert_int_equal(xlate(c, 2, 0x40ff0, 0x20, false, &gpa, &n), 0);
	assert_int_equal(gpa, 0x300ff0);
	assert_int_equal(n, 0x10);
	assert_int_equal(xlate(c, 2, 0x41000, 0x10, false, &gpa, &n), 0);
	assert_int_equal(gpa, 0x500000);
	/* The read-only one refuses a write, with the address. */
	ev = event_buf(c);
	assert_int_equal(xlate(c, 2, 0x40100, 4, true, NULL, NULL), -EFAULT);
	assert_true(next_fault(c, ev, &reason, &flags, &ep, &addr));
	assert_int_equal(reason, VIRTIO_IOMMU_FAULT_R_MAPPING);
	assert_int_equal(flags, VIRTIO_IOMMU_FAULT_F_WRITE |
					VIRTIO_IOMMU_FAULT_F_ADDRESS);
	assert_int_equal(addr, 0x40100);
	assert_int_equal(xlate(c, 2, 0x41100, 4, true, &gpa, NULL), 0);
	/* Another endpoint in no domain sees nothing. */
	assert_int_equal(xlate(c, 3, 0x40010, 16, false, NULL, NULL), -EFAULT);

	/* The translation was cached; UNMAP must drop it before it
	 * completes. */
	assert_int_equal(unmap(c, 1, 0x40000, 0x40fff), VIRTIO_IOMMU_S_OK);
	assert_int_equal(xlate(c, 2, 0x40010, 16, false, NULL, NULL), -EFAULT);
	/* So must ATTACH to another domain ... */
	assert_int_equal(xlate(c, 2, 0x41000, 16, false, NULL, NULL), 0);
	assert_int_equal(attach(c, 2, 3, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(attach(c, 2, 2, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(xlate(c, 2, 0x41000, 16, false, NULL, NULL), -EFAULT);
	/* ... and DETACH. */
	assert_int_equal(map(c, 2, 0x41000, 0x41fff, 0x500000, RW),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(xlate(c, 2, 0x41000, 16, false, NULL, NULL), 0);
	assert_int_equal(detach(c, 2, 2), VIRTIO_IOMMU_S_OK);
	assert_int_equal(xlate(c, 2, 0x41000, 16, false, NULL, NULL), -EFAULT);
	/* A bypass domain is the identity. */
	assert_int_equal(attach(c, 4, 2, VIRTIO_IOMMU_ATTACH_F_BYPASS),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(xlate(c, 2, 0x41000, 16, true, &gpa, &n), 0);
	assert_int_equal(gpa, 0x41000);
	assert_int_equal(n, 16);
}

static void test_translate_top(void **state)
{
	struct ctx *c = *state;
	uint64_t gpa, n;

	/* A mapping that ends at the top of the input range: lengths up to
	 * its end, never wrapping. */
	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, VIOMMU_INPUT_END - 0xfff, VIOMMU_INPUT_END,
			     0x1000, R),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(
		xlate(c, 1, VIOMMU_INPUT_END, UINT64_MAX, false, &gpa, &n), 0);
	assert_int_equal(gpa, 0x1fff);
	assert_int_equal(n, 1);
	assert_int_equal(xlate(c, 1, VIOMMU_INPUT_END + 1, 1, false, NULL,
			       NULL),
			 -EFAULT);
	assert_int_equal(xlate(c, 1, VIOMMU_INPUT_END, 0, false, NULL, NULL),
			 -EFAULT);
}

static void test_bypass_config(void **state)
{
	struct ctx *c = *state;
	struct virtio_dev *d = c->iommu;

	/* Default (strict): unattached endpoints are blocked. */
	assert_int_equal(xlate(c, 1, 0x1000, 8, false, NULL, NULL), -EFAULT);
	d->ops->config_write(d, 36, (const uint8_t[]){ 1 }, 1);
	assert_int_equal(xlate(c, 1, 0x1000, 8, false, NULL, NULL), 0);
	/* Attached endpoints are translated whatever bypass says. */
	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(xlate(c, 1, 0x1000, 8, false, NULL, NULL), -EFAULT);
	d->ops->config_write(d, 36, (const uint8_t[]){ 0 }, 1);
	assert_int_equal(xlate(c, 5, 0x1000, 8, false, NULL, NULL), -EFAULT);
}

static void test_fault_queue(void **state)
{
	struct ctx *c = *state;
	uint8_t reason;
	uint32_t flags, ep;
	uint64_t addr, ev;
	int i;

	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	/* No eventq buffer: faults wait, bounded. */
	for (i = 0; i < VIOMMU_MAX_PENDING_FAULTS + 10; i++)
		assert_int_equal(xlate(c, 1, 0x1000ULL * (uint64_t)i, 1, false,
				       NULL, NULL),
				 -EFAULT);
	assert_int_equal(stats(c).faults, VIOMMU_MAX_PENDING_FAULTS + 10);
	assert_int_equal(stats(c).faults_dropped, 10);
	/* A buffer offered later gets the oldest waiting record. */
	ev = event_buf(c);
	assert_true(next_fault(c, ev, &reason, &flags, &ep, &addr));
	assert_int_equal(addr, 0);
	assert_int_equal(ep, 1);
	ev = event_buf(c);
	assert_true(next_fault(c, ev, &reason, &flags, &ep, &addr));
	assert_int_equal(addr, 0x1000);
	/* A device reset drops everything. */
	c->iommu->ops->reset(c->iommu);
	assert_int_equal(stats(c).domains, 0);
}

/* ---- A virtio-blk behind the IOMMU ----------------------------------- */

#define BUF_IOVA 0x40000000ULL
#define BUF_GPA (4ULL << 20)

static void blk_behind(struct ctx *c)
{
	struct blk_config cfg = { 0 };
	struct virtio_dev *d;
	struct err e;

	c->img_fd = fake_make_image(c->path, IMG_SIZE);
	cfg.path = c->path;
	assert_int_equal(blk_create(&cfg, &c->f.mem, &d, &e), 0);
	virtio_dev_set_dma(d, c->dma[0]);
	/* The rings are mapped at IOVA = GPA (the fake driver's addresses
	 * are both), requests and data elsewhere. */
	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, EP_QUEUES, EP_QUEUES + 0xffff, EP_QUEUES,
			     RW),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, EP_HEAP, EP_HEAP + 0xfffff, EP_HEAP, RW),
			 VIRTIO_IOMMU_S_OK);
	fake_init_shared(&c->bf, &c->f, EP_QUEUES, EP_HEAP);
	fake_attach(&c->bf, d, ~0ULL, QSIZE);
	c->have_blk = true;
}

/* A read of one sector into data (an IOVA); returns the status byte and
 * the used length. */
static uint8_t blk_read(struct ctx *c, uint64_t data, uint32_t *used_len)
{
	uint64_t hdr = fake_alloc(&c->bf, 16), st = fake_alloc(&c->bf, 1);
	uint8_t *h = fake_ptr(&c->bf, hdr, 16);
	struct fake_buf b[3] = {
		{ hdr, 16, false },
		{ data, 512, true },
		{ st, 1, true },
	};
	uint32_t id;

	put32(h, 0); /* VIRTIO_BLK_T_IN */
	put64(h + 8, 1); /* sector 1 */
	*(uint8_t *)fake_ptr(&c->bf, st, 1) = 0xee;
	fake_add_chain(&c->bf, 0, b, 3);
	fake_kick(&c->bf, 0);
	assert_true(fake_get_used(&c->bf, 0, &id, used_len));
	return *(uint8_t *)fake_ptr(&c->bf, st, 1);
}

static void test_blk_dma(void **state)
{
	struct ctx *c = *state;
	uint8_t reason, *buf;
	uint32_t flags, ep, len;
	uint64_t addr, ev;

	blk_behind(c);
	assert_true(c->bf.d->dma == c->dma[0]);
	/* Mapped: the data lands at the GPA behind the IOVA. */
	assert_int_equal(map(c, 1, BUF_IOVA, BUF_IOVA + 0xfff, BUF_GPA, W),
			 VIRTIO_IOMMU_S_OK);
	buf = fake_ptr(&c->f, BUF_GPA, 512);
	memset(buf, 0, 512);
	assert_int_equal(blk_read(c, BUF_IOVA, &len), 0);
	assert_int_equal(len, 513);
	for (int i = 0; i < 512; i++)
		assert_int_equal(buf[i], fake_pattern(512 + (uint64_t)i));
	/* Unmapped IOVA: IOERR, a fault record, nothing written. */
	ev = event_buf(c);
	memset(buf, 0, 512);
	assert_int_equal(blk_read(c, BUF_IOVA + 0x10000, &len),
			 1 /* VIRTIO_BLK_S_IOERR */);
	assert_int_equal(len, 1);
	assert_true(next_fault(c, ev, &reason, &flags, &ep, &addr));
	assert_int_equal(reason, VIRTIO_IOMMU_FAULT_R_MAPPING);
	assert_int_equal(ep, 1);
	assert_int_equal(addr, BUF_IOVA + 0x10000);
	assert_int_equal(flags, VIRTIO_IOMMU_FAULT_F_WRITE |
					VIRTIO_IOMMU_FAULT_F_ADDRESS);
	/* A data buffer spanning two mappings that are not contiguous in
	 * GPA works (two segments). */
	assert_int_equal(map(c, 1, BUF_IOVA + 0x1000, BUF_IOVA + 0x1fff,
			     BUF_GPA + 0x8000, W),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(blk_read(c, BUF_IOVA + 0xf00, &len), 0);
	assert_int_equal(buf[0xf00], fake_pattern(512));
	assert_int_equal(*(uint8_t *)fake_ptr(&c->f, BUF_GPA + 0x8000, 1),
			 fake_pattern(512 + 0x100));
	/* Read-only mapping: the device may not write it. */
	assert_int_equal(unmap(c, 1, BUF_IOVA, BUF_IOVA + 0x1fff),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, BUF_IOVA, BUF_IOVA + 0xfff, BUF_GPA, R),
			 VIRTIO_IOMMU_S_OK);
	memset(buf, 0, 512);
	assert_int_equal(blk_read(c, BUF_IOVA, &len), 1);
	assert_int_equal(buf[0], 0);
	/* Unmapped: the old IOVA no longer works. */
	assert_int_equal(unmap(c, 1, BUF_IOVA, BUF_IOVA + 0xfff),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(blk_read(c, BUF_IOVA, &len), 1);
	assert_int_equal(buf[0], 0);
	assert_false(fake_broken(&c->bf));
	assert_true(stats(c).faults >= 3);
}

static void test_blk_ring_unmapped(void **state)
{
	struct ctx *c = *state;
	uint32_t len;

	blk_behind(c);
	assert_int_equal(map(c, 1, BUF_IOVA, BUF_IOVA + 0xfff, BUF_GPA, W),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(blk_read(c, BUF_IOVA, &len), 0);
	/* The driver takes the rings away: the next chain finds them
	 * unmapped and the device needs a reset. */
	assert_int_equal(unmap(c, 1, EP_QUEUES, EP_QUEUES + 0xffff),
			 VIRTIO_IOMMU_S_OK);
	fake_kick(&c->bf, 0);
	assert_true(fake_broken(&c->bf));
}

static void test_blk_request_unmapped(void **state)
{
	struct ctx *c = *state;
	uint64_t hdr = 0, st;
	uint32_t len;

	blk_behind(c);
	/* The request header itself in an unmapped IOVA: IOERR with the
	 * status byte (mapped) written, the image untouched. */
	st = fake_alloc(&c->bf, 1);
	hdr = 0x70000000ULL;
	{
		struct fake_buf b[2] = { { hdr, 16, false }, { st, 1, true } };
		uint32_t id;

		fake_add_chain(&c->bf, 0, b, 2);
		fake_kick(&c->bf, 0);
		assert_true(fake_get_used(&c->bf, 0, &id, &len));
	}
	assert_int_equal(*(uint8_t *)fake_ptr(&c->bf, st, 1), 1);
	assert_false(fake_broken(&c->bf));
}

/* A device that uses every segment's host pointer, as rng and console
 * do, and does not say it handles DMA faults: it must never see a chain
 * with a refused buffer. */
struct toucher {
	struct virtio_dev dev;
	struct virtq_chain chain;
	int chains;
};

static uint64_t t_features(struct virtio_dev *d)
{
	return 0;
}

static void t_notify(struct virtio_dev *d, int q)
{
	struct toucher *t = d->priv;

	while (virtio_dev_pop(d, q, &t->chain) > 0) {
		for (int i = 0; i < t->chain.nr_read + t->chain.nr_write; i++)
			memset(t->chain.seg[i].host, 0x5a, t->chain.seg[i].len);
		t->chains++;
		virtq_push(&d->vq[q], t->chain.head, t->chain.write_len);
	}
	virtio_dev_notify_queue(d, q);
}

static int t_activate(struct virtio_dev *d)
{
	return 0;
}

static void t_destroy(struct virtio_dev *d)
{
	virtio_dev_fini(d);
	free(d->priv);
}

static const struct virtio_dev_ops toucher_ops = {
	.features = t_features,
	.activate = t_activate,
	.queue_notify = t_notify,
	.destroy = t_destroy,
};

static void test_unaware_device(void **state)
{
	struct ctx *c = *state;
	struct toucher *t = calloc(1, sizeof(*t));
	uint32_t id, len;
	struct fake_buf b[2] = { { BUF_IOVA, 64, true },
				 { BUF_IOVA + 0x10000, 64, true } };

	assert_non_null(t);
	virtio_dev_init(&t->dev, "toucher", 99, &toucher_ops, t, &c->f.mem, 1,
			QSIZE, 0);
	virtio_dev_set_dma(&t->dev, c->dma[2]);
	assert_int_equal(attach(c, 3, 3, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 3, EP_QUEUES, EP_QUEUES + 0xffff, EP_QUEUES,
			     RW),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 3, BUF_IOVA, BUF_IOVA + 0xfff, BUF_GPA, W),
			 VIRTIO_IOMMU_S_OK);
	fake_init_shared(&c->bf, &c->f, EP_QUEUES, EP_HEAP);
	fake_attach(&c->bf, &t->dev, ~0ULL, QSIZE);
	c->have_blk = true;
	/* Mapped then unmapped buffer: given back with 0 bytes, the device
	 * never sees it, nothing written. */
	memset(fake_ptr(&c->f, BUF_GPA, 64), 0, 64);
	fake_add_chain(&c->bf, 0, b, 2);
	fake_kick(&c->bf, 0);
	assert_true(fake_get_used(&c->bf, 0, &id, &len));
	assert_int_equal(len, 0);
	assert_int_equal(t->chains, 0);
	assert_false(fake_broken(&c->bf));
	/* The next, all mapped, is the device's. */
	fake_add_chain(&c->bf, 0, b, 1);
	fake_kick(&c->bf, 0);
	assert_true(fake_get_used(&c->bf, 0, &id, &len));
	assert_int_equal(len, 64);
	assert_int_equal(t->chains, 1);
	assert_int_equal(*(uint8_t *)fake_ptr(&c->f, BUF_GPA, 1), 0x5a);
}

/* rng behind the IOMMU: a buffer the IOMMU refuses comes back with 0
 * bytes and the device goes on; a mapped one is filled. */
static void test_rng_fault(void **state)
{
	struct ctx *c = *state;
	struct virtio_dev *d;
	struct err e;
	uint32_t id, len;
	struct fake_buf b = { BUF_IOVA, 64, true };

	assert_int_equal(rng_create(NULL, &c->f.mem, &d, &e), 0);
	virtio_dev_set_dma(d, c->dma[1]);
	assert_int_equal(attach(c, 2, 2, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 2, EP_QUEUES, EP_QUEUES + 0xffff, EP_QUEUES,
			     RW),
			 VIRTIO_IOMMU_S_OK);
	fake_init_shared(&c->bf, &c->f, EP_QUEUES, EP_HEAP);
	fake_attach(&c->bf, d, ~0ULL, QSIZE);
	c->have_blk = true;
	fake_add_chain(&c->bf, 0, &b, 1);
	fake_kick(&c->bf, 0);
	assert_true(fake_get_used(&c->bf, 0, &id, &len));
	assert_int_equal(len, 0);
	assert_false(fake_broken(&c->bf));
	assert_int_equal(stats(c).faults, 1);
	assert_int_equal(map(c, 2, BUF_IOVA, BUF_IOVA + 0xfff, BUF_GPA, W),
			 VIRTIO_IOMMU_S_OK);
	fake_add_chain(&c->bf, 0, &b, 1);
	fake_kick(&c->bf, 0);
	assert_true(fake_get_used(&c->bf, 0, &id, &len));
	assert_int_equal(len, 64);
}

/* ---- Requests in flight ---------------------------------------------- */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

#include "iommu/registry.h"
#include "util/time.h"

struct bg_req {
	struct ctx *c;
	int kind; /* 0 UNMAP, 1 DETACH, 2 ATTACH elsewhere */
	int status;
	atomic_bool done;
};

static void *bg_thread(void *arg)
{
	struct bg_req *r = arg;

	if (r->kind == 0)
		r->status = unmap(r->c, 1, 0x40000, 0x40fff);
	else if (r->kind == 1)
		r->status = detach(r->c, 1, 1);
	else
		r->status = attach(r->c, 2, 1, 0);
	atomic_store(&r->done, true);
	return NULL;
}

/* A kick from another thread (a vCPU, or the I/O thread's doorbell). */
struct bg_kick {
	struct ctx *c;
	atomic_bool done;
};

static void *bg_kick_thread(void *arg)
{
	struct bg_kick *k = arg;

	fake_kick(&k->c->f, 0);
	atomic_store(&k->done, true);
	return NULL;
}

/* Waits (at most 60 s) for what get reads of the requestq (its used
 * index, or the avail_event the device writes) to be v. */
static bool reaches(struct ctx *c, uint16_t (*get)(struct fake_driver *, int),
		    uint16_t v)
{
	uint64_t end = now_ns() + 60000000000ull;

	while (get(&c->f, 0) != v)
		if (now_ns() > end)
			return false;
	return true;
}

/* After answering, the device looks for the driver's next request itself
 * with kicks held back (avail_event one behind): a MAP added without a
 * kick is answered; once the look ends, kicks are on again. */
static void test_poll_next_request(void **state)
{
	struct ctx *c = *state;
	uint8_t a[VIOMMU_ATTACH_LEN] = { VIRTIO_IOMMU_T_ATTACH };
	uint8_t m[VIOMMU_MAP_LEN] = { VIRTIO_IOMMU_T_MAP };
	struct bg_kick k = { c, false };
	uint64_t ag = fake_alloc(&c->f, sizeof(a)), mg = fake_alloc(&c->f, 64);
	uint64_t as = fake_alloc(&c->f, 4), ms = fake_alloc(&c->f, 4);
	struct fake_buf b[2];
	struct viommu_stats st;
	uint16_t used0 = fake_used_idx(&c->f, 0);
	pthread_t th;

	put32(a + 4, 1);
	put32(a + 8, 1);
	memcpy(fake_ptr(&c->f, ag, sizeof(a)), a, sizeof(a));
	put32(m + 4, 1);
	put64(m + 8, 0x1000);
	put64(m + 16, 0x1fff);
	put64(m + 24, 0x100000);
	put32(m + 32, RW);
	memcpy(fake_ptr(&c->f, mg, sizeof(m)), m, sizeof(m));
	b[0] = (struct fake_buf){ ag, sizeof(a), false };
	b[1] = (struct fake_buf){ as, 4, true };
	fake_add_chain(&c->f, 0, b, 2);
	/* A value the device never writes here, so the hold is seen only
	 * once the device wrote it (the ring starts out with 0, which is
	 * what the hold writes). */
	memset(fake_ptr(&c->f, c->f.q[0].used + 4 + 8ull * QSIZE, 2), 0xee, 2);
	assert_int_equal(pthread_create(&th, NULL, bg_kick_thread, &k), 0);
	assert_true(reaches(c, fake_used_idx, used0 + 1));
	/* The device answered, published avail_event (kicks on) when the
	 * queue was empty, then held kicks back: looking for more (a 30 s
	 * window). A request added before that would be the first look's. */
	assert_true(reaches(c, fake_avail_event, (uint16_t)used0));
	assert_false(atomic_load(&k.done));
	b[0] = (struct fake_buf){ mg, sizeof(m), false };
	b[1] = (struct fake_buf){ ms, 4, true };
	fake_add_chain(&c->f, 0, b, 2); /* no kick */
	assert_true(reaches(c, fake_used_idx, used0 + 2));
	pthread_join(th, NULL);
	assert_int_equal(*(uint8_t *)fake_ptr(&c->f, as, 1), VIRTIO_IOMMU_S_OK);
	assert_int_equal(*(uint8_t *)fake_ptr(&c->f, ms, 1), VIRTIO_IOMMU_S_OK);
	assert_int_equal(fake_avail_event(&c->f, 0), (uint16_t)(used0 + 2));
	st = stats(c);
	assert_int_equal(st.polls, 1);
	assert_int_equal(st.poll_hits, 1);
	assert_int_equal(st.mappings, 1);
}

static int setup_poll(void **state)
{
	int r;

	/* 30 s: the test's thread has time even on a loaded machine; the
	 * device stops looking soon after the hit, 2 ms after the kick at
	 * most. */
	setup_poll_ns = 30000000000;
	r = setup_cfg(state, false);
	setup_poll_ns = 0;
	return r;
}

/* poll_ns < 0: no look, every request needs its kick. */
static void test_poll_off(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).polls, 0);
	assert_int_equal(fake_avail_event(&c->f, 0), fake_used_idx(&c->f, 0));
}

static int setup_no_poll(void **state)
{
	int r;

	setup_poll_ns = -1;
	r = setup_cfg(state, false);
	setup_poll_ns = 0;
	return r;
}

static int setup_vcpu_requests(void **state)
{
	int r;

	setup_vcpu = true;
	r = setup_cfg(state, false);
	setup_vcpu = false;
	return r;
}

/* With vcpu_requests the requestq is served in the kicking vCPU's
 * thread, with no polling after it (poll_ns is ignored). */
static void test_requests_in_vcpu(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(c->iommu->exit_queues, 1u << 0);
	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).polls, 0);
	/* Kicks stay on: every request comes with its exit. */
	assert_int_equal(fake_avail_event(&c->f, 0), fake_used_idx(&c->f, 0));
}

/* One kick in a vCPU runs a ring's worth of requests at most, however
 * many the driver adds meanwhile (from another vCPU), and hands the rest
 * to the I/O thread's doorbell. The driver adds them while the device
 * waits in an UNMAP for a request in flight, so the count is exact. */
static void test_exit_kick_bounded(void **state)
{
	struct ctx *c = *state;
	const struct virtq_dma *d = c->dma[0];
	uint8_t u[VIOMMU_UNMAP_LEN] = { VIRTIO_IOMMU_T_UNMAP };
	uint64_t junk = fake_alloc(&c->f, 4), ug = fake_alloc(&c->f, sizeof(u));
	uint64_t us = fake_alloc(&c->f, 4), cnt = 0;
	struct fake_buf f = { junk, 4, false }, b[2];
	struct bg_kick k = { c, false };
	uint16_t used0;
	pthread_t th;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), tok;

	assert_true(efd >= 0);
	c->iommu->kick_fds[0] = efd;
	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, 0x40000, 0x40fff, 0x300000, RW),
			 VIRTIO_IOMMU_S_OK);
	tok = d->begin(d->opaque);
	assert_int_equal(xtok(c, tok, 0x40000, 16), 0);
	used0 = fake_used_idx(&c->f, 0);
	/* 14 chains of one readable buffer (no room for a status: each
	 * comes back with 0 bytes), then the UNMAP: every descriptor. */
	for (int i = 0; i < QSIZE - 2; i++)
		fake_add_chain(&c->f, 0, &f, 1);
	put32(u + 4, 1);
	put64(u + 8, 0x40000);
	put64(u + 16, 0x40fff);
	memcpy(fake_ptr(&c->f, ug, sizeof(u)), u, sizeof(u));
	b[0] = (struct fake_buf){ ug, sizeof(u), false };
	b[1] = (struct fake_buf){ us, 4, true };
	fake_add_chain(&c->f, 0, b, 2);
	assert_int_equal(pthread_create(&th, NULL, bg_kick_thread, &k), 0);
	assert_true(reaches(c, fake_used_idx, used0 + QSIZE - 2));
	/* The UNMAP waits for tok: reuse the answered descriptors. */
	for (int i = 0; i < QSIZE - 2; i++)
		fake_add_chain(&c->f, 0, &f, 1);
	assert_false(atomic_load(&k.done));
	d->end(d->opaque, tok);
	pthread_join(th, NULL);
	/* 14 fillers, the UNMAP, one more filler: a ring's worth. */
	assert_int_equal(fake_used_idx(&c->f, 0), (uint16_t)(used0 + QSIZE));
	assert_int_equal(*(uint8_t *)fake_ptr(&c->f, us, 1), VIRTIO_IOMMU_S_OK);
	assert_int_equal(read(efd, &cnt, sizeof(cnt)), (ssize_t)sizeof(cnt));
	assert_int_equal(cnt, 1);
	/* The I/O thread's kick takes the other 13. */
	virtio_dev_kick(c->iommu, 0);
	assert_int_equal(fake_used_idx(&c->f, 0),
			 (uint16_t)(used0 + 2 * QSIZE - 3));
	assert_false(fake_broken(&c->f));
	c->iommu->kick_fds[0] = -1;
	close(efd);
}

/* A device request that took its translations before the UNMAP (begin()
 * at virtq_pop) holds the UNMAP until it completes (end() at virtq_push):
 * the guest may reuse the memory only when no DMA can still reach it.
 * The same for DETACH and for an ATTACH that moves the endpoint. */
static void inflight_case(struct ctx *c, int kind)
{
	const struct virtq_dma *d = c->dma[0];
	struct bg_req r = { .c = c, .kind = kind };
	pthread_t th;
	int tok, other;

	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, 0x40000, 0x40fff, 0x300000, RW),
			 VIRTIO_IOMMU_S_OK);
	/* A request that translated into the mapping, and one that
	 * translated elsewhere (an unmapped IOVA: it recorded nothing). */
	tok = d->begin(d->opaque);
	other = d->begin(d->opaque);
	assert_int_equal(xtok(c, tok, 0x40000, 16), 0);
	assert_int_equal(xtok(c, other, 0x90000, 16), -EFAULT);
	assert_int_equal(pthread_create(&th, NULL, bg_thread, &r), 0);
	/* The table changes first (the request can no longer translate
	 * through what goes), then the removal waits for it. */
	for (int i = 0;
	     i < 500 && xlate(c, 1, 0x40000, 16, true, NULL, NULL) == 0; i++)
		usleep(2000);
	assert_int_equal(xlate(c, 1, 0x40000, 16, true, NULL, NULL), -EFAULT);
	usleep(100000);
	/* A request that begins now does not hold the removal, nor does
	 * the one that never used the mapping ... */
	d->end(d->opaque, d->begin(d->opaque));
	usleep(50000);
	/* ... the one that used it does. */
	assert_false(atomic_load(&r.done));
	d->end(d->opaque, tok);
	pthread_join(th, NULL);
	d->end(d->opaque, other);
	assert_int_equal(r.status, VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).drain_timeouts, 0);
}

static void test_unmap_waits_inflight(void **state)
{
	inflight_case(*state, 0);
}

static void test_detach_waits_inflight(void **state)
{
	inflight_case(*state, 1);
}

static void test_attach_waits_inflight(void **state)
{
	inflight_case(*state, 2);
}

/* An UNMAP waits only for the requests that use its range: a strict-mode
 * guest unmaps each finished request's buffer while others are in
 * flight, and must not wait for them. A request that used more ranges
 * than a slot holds counts as using everything. */
static void test_unmap_waits_only_for_users(void **state)
{
	struct ctx *c = *state;
	const struct virtq_dma *d = c->dma[0];
	uint64_t t0;
	int a, b, big;

	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(map(c, 1, 0x40000 + 0x2000 * i,
				     0x40fff + 0x2000 * i,
				     0x300000 + 0x1000 * i, RW),
				 VIRTIO_IOMMU_S_OK);
	a = d->begin(d->opaque);
	b = d->begin(d->opaque);
	assert_int_equal(xtok(c, a, 0x40000, 16), 0);
	assert_int_equal(xtok(c, b, 0x42000, 16), 0);
	t0 = now_ns();
	assert_int_equal(unmap(c, 1, 0x44000, 0x44fff), VIRTIO_IOMMU_S_OK);
	assert_true(now_ns() - t0 < 500000000ull);
	d->end(d->opaque, a);
	assert_int_equal(unmap(c, 1, 0x40000, 0x40fff), VIRTIO_IOMMU_S_OK);
	/* b still holds 0x42000: that UNMAP times out. */
	assert_int_equal(unmap(c, 1, 0x42000, 0x42fff), VIRTIO_IOMMU_S_DEVERR);
	d->end(d->opaque, b);
	/* Five separate ranges in one request: more than a slot keeps. */
	big = d->begin(d->opaque);
	for (uint64_t i = 3; i < 8; i++)
		assert_int_equal(xtok(c, big, 0x40000 + 0x2000 * i, 16), 0);
	assert_int_equal(unmap(c, 1, 0x46000, 0x46fff), VIRTIO_IOMMU_S_DEVERR);
	d->end(d->opaque, big);
	assert_int_equal(unmap(c, 1, 0x48000, 0x48fff), VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).drain_timeouts, 2);
}

/* A request that never completes: the UNMAP gives up after its bound and
 * fails (DEVERR: the guest must not reuse the memory), the mapping is
 * gone from the table anyway, and the next removal is not held by the
 * stuck request forever. */
static void test_unmap_inflight_timeout(void **state)
{
	struct ctx *c = *state;
	const struct virtq_dma *d = c->dma[0];
	uint64_t t0;
	int tok;

	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, 0x40000, 0x40fff, 0x300000, RW),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, 0x50000, 0x50fff, 0x310000, RW),
			 VIRTIO_IOMMU_S_OK);
	tok = d->begin(d->opaque);
	assert_int_equal(xtok(c, tok, 0x40000, 16), 0);
	assert_int_equal(xtok(c, tok, 0x50000, 16), 0);
	t0 = now_ns();
	assert_int_equal(unmap(c, 1, 0x40000, 0x40fff), VIRTIO_IOMMU_S_DEVERR);
	assert_true(now_ns() - t0 >= 900000000ull);
	assert_true(now_ns() - t0 < 3000000000ull);
	assert_int_equal(stats(c).drain_timeouts, 1);
	assert_int_equal(xlate(c, 1, 0x40000, 16, false, NULL, NULL), -EFAULT);
	/* Unmapping nothing waits for nothing. */
	assert_int_equal(unmap(c, 1, 0x60000, 0x60fff), VIRTIO_IOMMU_S_OK);
	d->end(d->opaque, tok);
	assert_int_equal(unmap(c, 1, 0x50000, 0x50fff), VIRTIO_IOMMU_S_OK);
	assert_int_equal(stats(c).drain_timeouts, 1);
	/* Tokens that were never handed out are ignored. */
	d->end(d->opaque, 0);
	d->end(d->opaque, 7);
}

/* virtq_pop/virtq_push bracket each chain with begin/end: a blk read
 * behind the IOMMU leaves nothing in flight, and a reset ends what was
 * never pushed. */
struct count_dma {
	struct virtq_dma dma;
	const struct virtq_dma *inner;
	int begins, ends, open;
};

static struct count_dma counter;

static int cnt_translate(void *o, int tok, uint64_t iova, uint64_t len, bool w,
			 uint64_t *gpa, uint64_t *plen)
{
	return counter.inner->translate(counter.inner->opaque, tok, iova, len,
					w, gpa, plen);
}

static int cnt_begin(void *o)
{
	counter.begins++;
	counter.open++;
	return counter.inner->begin(counter.inner->opaque);
}

static void cnt_end(void *o, int tok)
{
	counter.ends++;
	counter.open--;
	counter.inner->end(counter.inner->opaque, tok);
}

static void test_virtq_brackets_chains(void **state)
{
	struct ctx *c = *state;
	struct blk_config cfg = { 0 };
	struct virtio_dev *d;
	struct err e;
	uint32_t used;

	counter = (struct count_dma){
		{ cnt_translate, cnt_begin, cnt_end, NULL }, c->dma[0], 0, 0, 0
	};
	c->img_fd = fake_make_image(c->path, IMG_SIZE);
	cfg.path = c->path;
	assert_int_equal(blk_create(&cfg, &c->f.mem, &d, &e), 0);
	assert_int_equal(virtio_dev_set_dma(d, &counter.dma), 0);
	assert_int_equal(attach(c, 1, 1, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, EP_QUEUES, EP_QUEUES + 0xffff, EP_QUEUES,
			     RW),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, EP_HEAP, EP_HEAP + 0xfffff, EP_HEAP, RW),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 1, BUF_IOVA, BUF_IOVA + 0xfff, BUF_GPA, RW),
			 VIRTIO_IOMMU_S_OK);
	fake_init_shared(&c->bf, &c->f, EP_QUEUES, EP_HEAP);
	fake_attach(&c->bf, d, ~0ULL, QSIZE);
	c->have_blk = true;
	assert_int_equal(blk_read(c, BUF_IOVA, &used), 0);
	assert_true(counter.begins >= 1);
	assert_int_equal(counter.open, 0);
	/* A chain taken and not pushed (virtq_pop by hand), then a device
	 * reset: the reset ends it. */
	{
		struct virtq_chain *ch = calloc(1, sizeof(*ch));
		const char *why;
		uint64_t hdr = fake_alloc(&c->bf, 16);
		struct fake_buf b = { hdr, 16, false };

		assert_non_null(ch);
		fake_add_chain(&c->bf, 0, &b, 1);
		pthread_mutex_lock(&d->lock);
		assert_int_equal(virtq_pop(&d->vq[0], ch, &why), 1);
		pthread_mutex_unlock(&d->lock);
		assert_int_equal(counter.open, 1);
		pthread_mutex_lock(&d->lock);
		virtq_reset(&d->vq[0]);
		pthread_mutex_unlock(&d->lock);
		assert_int_equal(counter.open, 0);
		free(ch);
	}
}

/* ---- A remote endpoint (a device server keeps its own table) ---------- */

#define REMOTE_EP 10

struct remote_call {
	char op; /* 'm', 'u', 'r' */
	uint64_t seq, start, last, gpa;
	uint32_t perm_or_mode;
};

static struct {
	struct remote_call calls[64];
	int n;
	int fail_map, fail_unmap; /* next call returns this */
} rem;

static void rec(char op, uint64_t seq, uint64_t a, uint64_t b, uint64_t g,
		uint32_t x)
{
	assert_true(rem.n < 64);
	rem.calls[rem.n++] = (struct remote_call){ op, seq, a, b, g, x };
}

static int rm_map(void *o, uint64_t seq, uint64_t start, uint64_t last,
		  uint64_t gpa, uint32_t perm)
{
	int r = rem.fail_map;

	assert_ptr_equal(o, &rem);
	rem.fail_map = 0;
	rec('m', seq, start, last, gpa, perm);
	return r;
}

static int rm_unmap(void *o, uint64_t seq, uint64_t start, uint64_t last)
{
	int r = rem.fail_unmap;

	rem.fail_unmap = 0;
	rec('u', seq, start, last, 0, 0);
	return r;
}

static int rm_reset(void *o, uint64_t seq, uint32_t mode)
{
	rec('r', seq, 0, 0, 0, mode);
	return 0;
}

static const struct viommu_remote_ops rm_ops = { rm_map, rm_unmap, rm_reset };

static int setup_remote(void **state)
{
	struct ctx *c;
	struct err e;

	setup(state);
	c = *state;
	memset(&rem, 0, sizeof(rem));
	assert_int_equal(viommu_add_remote_endpoint(c->iommu, REMOTE_EP,
						    &rm_ops, &rem, &e),
			 0);
	assert_int_equal(viommu_add_remote_endpoint(c->iommu, REMOTE_EP,
						    &rm_ops, &rem, &e),
			 -EEXIST);
	return 0;
}

static void test_remote_endpoint(void **state)
{
	struct ctx *c = *state;
	struct iova_map *maps;
	uint32_t mode, nr, flags, ep;
	uint64_t seq, addr, ev;
	uint8_t reason;

	/* Not attached: blocked, nothing mapped, no change yet. */
	assert_int_equal(viommu_snapshot(c->iommu, REMOTE_EP, &mode, &maps, &nr,
					 &seq),
			 0);
	assert_int_equal(mode, VIOMMU_EP_BLOCK);
	assert_int_equal(nr, 0);
	assert_null(maps);
	assert_int_equal(viommu_snapshot(c->iommu, 99, &mode, &maps, &nr, &seq),
			 -ENOENT);

	/* ATTACH: the server resets to an empty translated table. */
	assert_int_equal(attach(c, 1, REMOTE_EP, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(rem.n, 1);
	assert_int_equal(rem.calls[0].op, 'r');
	assert_int_equal(rem.calls[0].perm_or_mode, VIOMMU_EP_TRANSLATE);
	/* MAP and UNMAP go through, numbered in order. */
	assert_int_equal(map(c, 1, 0x40000, 0x41fff, 0x300000, RW),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(rem.calls[1].op, 'm');
	assert_int_equal(rem.calls[1].start, 0x40000);
	assert_int_equal(rem.calls[1].last, 0x41fff);
	assert_int_equal(rem.calls[1].gpa, 0x300000);
	assert_int_equal(rem.calls[1].perm_or_mode,
			 IOVA_PERM_READ | IOVA_PERM_WRITE);
	assert_true(rem.calls[1].seq > rem.calls[0].seq);
	assert_int_equal(map(c, 1, 0x50000, 0x50fff, 0x310000, R),
			 VIRTIO_IOMMU_S_OK);
	/* The snapshot a reconnecting server starts from. */
	assert_int_equal(viommu_snapshot(c->iommu, REMOTE_EP, &mode, &maps, &nr,
					 &seq),
			 0);
	assert_int_equal(mode, VIOMMU_EP_TRANSLATE);
	assert_int_equal(nr, 2);
	assert_int_equal(maps[1].start, 0x50000);
	assert_int_equal(maps[1].perm, IOVA_PERM_READ);
	assert_int_equal(seq, rem.calls[2].seq);
	free(maps);
	assert_int_equal(unmap(c, 1, 0x50000, 0x50fff), VIRTIO_IOMMU_S_OK);
	assert_int_equal(rem.calls[3].op, 'u');
	assert_int_equal(rem.calls[3].start, 0x50000);
	/* An UNMAP of nothing has nothing to confirm. */
	assert_int_equal(unmap(c, 1, 0x90000, 0x90fff), VIRTIO_IOMMU_S_OK);
	assert_int_equal(rem.n, 4);

	/* The server refuses a MAP (its table is full): NOMEM, and the
	 * mapping is withdrawn everywhere, the server included. */
	rem.fail_map = -ENOSPC;
	assert_int_equal(map(c, 1, 0x60000, 0x60fff, 0x320000, RW),
			 VIRTIO_IOMMU_S_NOMEM);
	assert_int_equal(rem.calls[5].op, 'u');
	assert_int_equal(rem.calls[5].start, 0x60000);
	assert_int_equal(viommu_snapshot(c->iommu, REMOTE_EP, &mode, &maps, &nr,
					 &seq),
			 0);
	assert_int_equal(nr, 1);
	free(maps);
	/* It does not answer an UNMAP: DEVERR (it cannot vouch that its
	 * device is done with the memory), the mapping is gone here. */
	rem.fail_unmap = -ETIMEDOUT;
	assert_int_equal(unmap(c, 1, 0x40000, 0x41fff), VIRTIO_IOMMU_S_DEVERR);
	assert_int_equal(stats(c).remote_errors, 2);
	assert_int_equal(stats(c).mappings, 0);

	/* Moving to a domain that has mappings replays them after the
	 * reset; a bypass domain and a DETACH are resets. */
	assert_int_equal(attach(c, 2, 2, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(c, 2, 0x70000, 0x70fff, 0x330000, W),
			 VIRTIO_IOMMU_S_OK);
	rem.n = 0;
	assert_int_equal(attach(c, 2, REMOTE_EP, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(rem.n, 2);
	assert_int_equal(rem.calls[0].op, 'r');
	assert_int_equal(rem.calls[1].op, 'm');
	assert_int_equal(rem.calls[1].start, 0x70000);
	assert_int_equal(rem.calls[1].perm_or_mode, IOVA_PERM_WRITE);
	/* ... and the MAPs of another endpoint's domain reach it too. */
	assert_int_equal(map(c, 2, 0x80000, 0x80fff, 0x340000, RW),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(rem.calls[2].op, 'm');
	assert_int_equal(detach(c, 2, REMOTE_EP), VIRTIO_IOMMU_S_OK);
	assert_int_equal(rem.calls[3].op, 'r');
	assert_int_equal(rem.calls[3].perm_or_mode, VIOMMU_EP_BLOCK);
	assert_int_equal(attach(c, 5, REMOTE_EP, VIRTIO_IOMMU_ATTACH_F_BYPASS),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(rem.calls[4].op, 'r');
	assert_int_equal(rem.calls[4].perm_or_mode, VIOMMU_EP_BYPASS);
	/* Unattached endpoints follow the bypass field. */
	assert_int_equal(detach(c, 5, REMOTE_EP), VIRTIO_IOMMU_S_OK);
	c->iommu->ops->config_write(c->iommu, 36, (const uint8_t[]){ 1 }, 1);
	assert_int_equal(rem.calls[6].op, 'r');
	assert_int_equal(rem.calls[6].perm_or_mode, VIOMMU_EP_BYPASS);
	c->iommu->ops->config_write(c->iommu, 36, (const uint8_t[]){ 0 }, 1);
	assert_int_equal(rem.calls[7].perm_or_mode, VIOMMU_EP_BLOCK);

	/* Its server's faults become fault records like a local one's. */
	assert_int_equal(attach(c, 2, REMOTE_EP, 0), VIRTIO_IOMMU_S_OK);
	ev = event_buf(c);
	viommu_report_fault(c->iommu, REMOTE_EP, 0xdead000, true);
	assert_true(next_fault(c, ev, &reason, &flags, &ep, &addr));
	assert_int_equal(reason, VIRTIO_IOMMU_FAULT_R_MAPPING);
	assert_int_equal(ep, REMOTE_EP);
	assert_int_equal(addr, 0xdead000);
	assert_int_equal(flags, VIRTIO_IOMMU_FAULT_F_WRITE |
					VIRTIO_IOMMU_FAULT_F_ADDRESS);
	/* Not a remote endpoint, or none at all: ignored. */
	viommu_report_fault(c->iommu, 1, 0x1000, false);
	viommu_report_fault(c->iommu, 77, 0x1000, false);
	assert_int_equal(stats(c).faults, 1);

	/* A device reset puts it back to blocked. */
	rem.n = 0;
	c->iommu->ops->reset(c->iommu);
	assert_int_equal(rem.n, 1);
	assert_int_equal(rem.calls[0].op, 'r');
	assert_int_equal(rem.calls[0].perm_or_mode, VIOMMU_EP_BLOCK);
}

/* ---- Global IDs from the host-wide registry --------------------------- */

static char reg_path[PATH_MAX];

/* One VM's IOMMU on the shared registry, endpoints 1..4 each attached to
 * its own domain 0..3; their global IDs in g. */
static struct ctx *registry_vm(uint32_t g[4])
{
	struct viommu_config cfg = { .host_registry = true,
				     .registry_path = reg_path };
	struct ctx *x = calloc(1, sizeof(*x));
	struct err e;

	if (!x)
		return NULL;
	x->img_fd = -1;
	fake_init(&x->f);
	if (viommu_create(&cfg, &x->f.mem, &x->iommu, &e))
		return NULL;
	for (uint32_t i = 0; i < 4; i++)
		if (viommu_add_endpoint(x->iommu, i + 1, &x->dma[i], &e))
			return NULL;
	fake_attach(&x->f, x->iommu, ~0ULL, QSIZE);
	for (uint32_t i = 0; i < 4; i++)
		if (attach(x, i, i + 1, 0) != VIRTIO_IOMMU_S_OK ||
		    viommu_domain_global(x->iommu, i, &g[i]))
			return NULL;
	return x;
}

static void registry_vm_free(struct ctx *x)
{
	fake_destroy(&x->f);
	free(x);
}

/* Two VMs (two IOMMUs on one registry, as two wisp processes would be)
 * never get the same global ID for their domains, even for the same
 * guest domain ID; another process holding IDs keeps them until it
 * dies, and then they are free again (SIGKILL: no cleanup ran). */
static void test_registry_two_vms(void **state)
{
	struct ctx *a, *b;
	struct ioasid_registry probe;
	uint32_t g1[4], g2[4], gchild[4];
	int pfd[2];
	struct err e;
	pid_t pid;

	snprintf(reg_path, sizeof(reg_path), "/tmp/wisp-viommu-reg-%d",
		 (int)getpid());
	unlink(reg_path);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Another wisp process with its VM. */
		uint32_t g[4];

		if (!registry_vm(g) || write(pfd[1], g, sizeof(g)) != sizeof(g))
			_exit(2);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], gchild, sizeof(gchild)),
			 (ssize_t)sizeof(gchild));
	close(pfd[0]);
	a = registry_vm(g1);
	b = registry_vm(g2);
	assert_non_null(a);
	assert_non_null(b);
	for (int i = 0; i < 4; i++) {
		/* Global IDs live above the guest's domain range. */
		assert_true(g1[i] > 1023 && g2[i] > 1023 && gchild[i] > 1023);
		for (int k = 0; k < 4; k++) {
			assert_true(g1[i] != g2[k]);
			assert_true(g1[i] != gchild[k]);
			assert_true(g2[i] != gchild[k]);
		}
	}
	/* The child's IDs are held while it lives ... */
	assert_int_equal(ioasid_registry_open(&probe, reg_path, &e), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ioasid_registry_claim(&probe, gchild[i]),
				 -EBUSY);
	/* ... and free once it is killed. */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ioasid_registry_claim(&probe, gchild[i]), 0);
	ioasid_registry_close(&probe);
	/* A VM that goes away releases its IDs too. */
	registry_vm_free(a);
	assert_int_equal(ioasid_registry_open(&probe, reg_path, &e), 0);
	assert_int_equal(ioasid_registry_claim(&probe, g1[0]), 0);
	assert_int_equal(ioasid_registry_claim(&probe, g2[0]), -EBUSY);
	ioasid_registry_close(&probe);
	registry_vm_free(b);
	unlink(reg_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_next_request,
						setup_poll, teardown),
		cmocka_unit_test_setup_teardown(test_requests_in_vcpu,
						setup_vcpu_requests, teardown),
		cmocka_unit_test_setup_teardown(test_exit_kick_bounded,
						setup_vcpu_requests, teardown),
		cmocka_unit_test_setup_teardown(test_poll_off, setup_no_poll,
						teardown),
		cmocka_unit_test_setup_teardown(test_domain_quota, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_detach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_hostile, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_map_quota, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unmap_split, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_translate, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_translate_top, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bypass_config, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_queue, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_blk_dma, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_ring_unmapped, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_blk_request_unmapped,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rng_fault, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unaware_device, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unmap_waits_inflight,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_waits_inflight,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_waits_inflight,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmap_inflight_timeout,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmap_waits_only_for_users,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtq_brackets_chains,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_remote_endpoint,
						setup_remote, teardown),
		cmocka_unit_test_setup_teardown(test_registry_two_vms, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
