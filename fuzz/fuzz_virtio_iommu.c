// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the virtio-iommu request parser and the address
 * spaces behind it. The input is a sequence of records
 *   u8 len | len bytes: the driver-readable part of one request | u8 ctl
 * each sent as one chain on the requestq (type byte taken modulo 7, so
 * every request type and some unknown ones are reached); ctl bit 0 gives
 * the writable part room for PROBE's properties, bit 1 gives it less than
 * a tail (the device must answer with 0 bytes), bit 2 kicks as a vCPU
 * does with --iommu-requests vcpu (the exit path's handler), bits 4-7 pick
 * an endpoint that then translates the request's bytes 8-15 as an IOVA.
 *
 * Endpoint NR_EP is remote (an IOREQ server's device): its ops keep a
 * shadow table as a server would; ctl bit 3 makes the next of them fail
 * (-ENOSPC), as a server with a full table or a slow device would.
 *
 * Checks: every answered request has a status the spec defines (0-8) or
 * 0 bytes without a tail; the device never breaks (a well-formed chain
 * is never a ring error); the quotas hold (domains, mapped entries);
 * a translation returns 1..len bytes or -EFAULT; the remote endpoint's
 * changes come numbered in order, and while none failed its shadow
 * table and mode are exactly what the IOMMU's snapshot says; after a
 * device reset nothing is left (no domain, no mapping).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/iommu/viommu.h"
#include "iommu/iova.h"
#include "mem/guest_mem.h"
#include "util/log.h"
#include "virtio/virtio.h"

#define FUZZ_MEM (1ULL << 20)
#define QSIZE 16
#define DESC_GPA 0x0
#define AVAIL_GPA 0x1000
#define USED_GPA 0x2000
#define REQ_GPA 0x10000
#define RESP_GPA 0x20000
#define NR_EP 4
#define MAX_DOMAINS 8
#define MAX_MAPS 16
#define MAX_TOTAL 24
#define MAX_RECORDS 256

#define CHECK(cond)                                                      \
	do {                                                             \
		if (!(cond)) {                                           \
			fprintf(stderr,                                  \
				"fuzz_virtio_iommu: check failed: %s\n", \
				#cond);                                  \
			abort();                                         \
		}                                                        \
	} while (0)

static struct guest_mem mem;

/* The remote endpoint's "server". */
static struct {
	struct iova_space space;
	uint32_t mode;
	uint64_t last_seq;
	bool fail_next, diverged;
} srv;

static int srv_result(uint64_t seq)
{
	CHECK(seq >= srv.last_seq);
	srv.last_seq = seq;
	if (srv.fail_next) {
		srv.fail_next = false;
		srv.diverged = true;
		return -ENOSPC;
	}
	return 0;
}

static int srv_map(void *o, uint64_t seq, uint64_t start, uint64_t last,
		   uint64_t gpa, uint32_t perm)
{
	int r = srv_result(seq);

	if (r)
		return r;
	CHECK((perm & ~(IOVA_PERM_READ | IOVA_PERM_WRITE)) == 0);
	/* Only after a failed reset can the IOMMU think us translated when
	 * we are not; a server refuses the MAP then (the guest: DEVERR). */
	if (srv.mode != VIOMMU_EP_TRANSLATE) {
		CHECK(srv.diverged);
		return -EINVAL;
	}
	r = iova_space_map(&srv.space, start, last, gpa, perm);
	CHECK(r == 0 || srv.diverged);
	return r;
}

static int srv_unmap(void *o, uint64_t seq, uint64_t start, uint64_t last)
{
	int r = srv_result(seq);

	if (r)
		return r;
	r = iova_space_unmap(&srv.space, start, last, NULL);
	CHECK(r == 0 || srv.diverged);
	return r;
}

static int srv_reset(void *o, uint64_t seq, uint32_t mode)
{
	int r = srv_result(seq);

	if (r)
		return r;
	CHECK(mode <= VIOMMU_EP_TRANSLATE);
	iova_space_fini(&srv.space);
	iova_space_init(&srv.space, 1u << 16, NULL);
	srv.mode = mode;
	/* What follows (the domain's mappings) makes it whole again. */
	srv.diverged = false;
	return 0;
}

static const struct viommu_remote_ops srv_ops = { srv_map, srv_unmap,
						  srv_reset };

/* While nothing failed, the shadow is the IOMMU's view. */
static void check_remote(struct virtio_dev *d)
{
	struct iova_map *maps;
	uint32_t mode, nr;
	uint64_t seq;

	CHECK(viommu_snapshot(d, NR_EP, &mode, &maps, &nr, &seq) == 0);
	CHECK(seq >= srv.last_seq);
	if (!srv.diverged) {
		CHECK(mode == srv.mode);
		CHECK(nr == srv.space.nr);
		for (uint32_t i = 0; i < nr; i++)
			CHECK(maps[i].start == srv.space.maps[i].start &&
			      maps[i].last == srv.space.maps[i].last &&
			      maps[i].phys == srv.space.maps[i].phys &&
			      (maps[i].perm &
			       (IOVA_PERM_READ | IOVA_PERM_WRITE)) ==
				      srv.space.maps[i].perm);
	}
	free(maps);
}

static void no_raise(void *transport, bool config)
{
}

static const struct virtio_transport_ops tops = { .raise = no_raise };

static void put16(uint64_t gpa, uint16_t v)
{
	CHECK(guest_mem_write(&mem, gpa, &v, 2) == 0);
}

static void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t d[16];

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	CHECK(guest_mem_write(&mem, DESC_GPA + 16ULL * i, d, 16) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct viommu_config cfg = {
		.max_domains = MAX_DOMAINS,
		.max_maps_per_domain = MAX_MAPS,
		.max_total_maps = MAX_TOTAL,
		.domain_end = 31,
	};
	const struct virtq_dma *dma[NR_EP];
	struct viommu_stats st;
	struct virtio_dev *d;
	struct virtq *vq;
	struct err e;
	uint16_t avail = 0;
	size_t pos = 0;

	if (!mem.host) {
		log_set_level(LOG_ERROR);
		CHECK(guest_mem_init(&mem, FUZZ_MEM, &e) == 0);
	}
	memset(mem.host, 0, FUZZ_MEM);
	CHECK(viommu_create(&cfg, &mem, &d, &e) == 0);
	for (uint32_t i = 0; i < NR_EP; i++)
		CHECK(viommu_add_endpoint(d, i, &dma[i], &e) == 0);
	iova_space_fini(&srv.space);
	iova_space_init(&srv.space, 1u << 16, NULL);
	srv.mode = VIOMMU_EP_BLOCK;
	srv.last_seq = 0;
	srv.fail_next = srv.diverged = false;
	CHECK(viommu_add_remote_endpoint(d, NR_EP, &srv_ops, NULL, &e) == 0);
	d->tops = &tops;
	d->features = d->ops->features(d) | 1ULL << VIRTIO_F_VERSION_1;
	for (int q = 0; q < 2; q++) {
		vq = &d->vq[q];
		vq->size = QSIZE;
		/* The eventq gets no buffers: faults wait, bounded. */
		vq->desc_gpa = DESC_GPA + 0x4000ULL * (uint64_t)q;
		vq->avail_gpa = AVAIL_GPA + 0x4000ULL * (uint64_t)q;
		vq->used_gpa = USED_GPA + 0x4000ULL * (uint64_t)q;
		vq->mem = &mem;
		vq->ready = true;
	}
	CHECK(d->ops->activate(d) == 0);
	d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	vq = &d->vq[0];

	for (int rec = 0; rec < MAX_RECORDS && pos < size; rec++) {
		uint8_t len = data[pos++], ctl, req[256] = { 0 }, resp[128];
		uint32_t wlen, used_len;
		uint16_t used_before = vq->used_idx;

		if (size - pos < (size_t)len + 1)
			break;
		memcpy(req, data + pos, len);
		pos += len;
		ctl = data[pos++];
		if (len)
			req[0] %= 7;
		wlen = ctl & 2 ? ctl % 4 :
				 4 + (ctl & 1 ? VIOMMU_PROBE_SIZE : 0);
		memset(resp, 0xaa, sizeof(resp));
		CHECK(guest_mem_write(&mem, REQ_GPA, req, sizeof(req)) == 0);
		CHECK(guest_mem_write(&mem, RESP_GPA, resp, sizeof(resp)) == 0);
		/* readable, then writable (either may be empty) */
		set_desc(0, REQ_GPA, len, wlen ? VIRTQ_DESC_F_NEXT : 0, 1);
		set_desc(1, RESP_GPA, wlen, VIRTQ_DESC_F_WRITE, 0);
		srv.fail_next = ctl & 8;
		put16(AVAIL_GPA + 4 + 2ULL * (avail % QSIZE), len ? 0 : 1);
		avail++;
		put16(AVAIL_GPA + 2, avail);
		if (ctl & 4)
			virtio_dev_kick_exit(d, 0);
		else
			virtio_dev_kick(d, 0);

		CHECK(!d->broken);
		CHECK((uint16_t)(vq->used_idx - used_before) == 1);
		CHECK(guest_mem_read(&mem,
				     USED_GPA + 4 +
					     8ULL * (used_before % QSIZE) + 4,
				     &used_len, 4) == 0);
		CHECK(guest_mem_read(&mem, RESP_GPA, resp, sizeof(resp)) == 0);
		if (wlen < 4) {
			CHECK(used_len == 0);
		} else {
			CHECK(used_len == wlen);
			CHECK(resp[wlen - 4] <= VIRTIO_IOMMU_S_NOMEM);
		}
		viommu_get_stats(d, &st);
		CHECK(st.domains <= MAX_DOMAINS);
		CHECK(st.mappings <= MAX_TOTAL);
		srv.fail_next = false;
		check_remote(d);

		{
			const struct virtq_dma *x = dma[(ctl >> 4) % NR_EP];
			uint64_t iova, tlen, gpa = 0, plen = 0;
			int r;

			memcpy(&iova, req + 8, 8);
			memcpy(&tlen, req + 16, 8);
			tlen = tlen % 0x10000 + 1;
			r = x->translate(x->opaque, 0, iova, tlen, ctl & 4,
					 &gpa, &plen);
			CHECK(r == 0 || r == -EFAULT);
			if (r == 0)
				CHECK(plen >= 1 && plen <= tlen);
		}
	}
	d->ops->reset(d);
	viommu_get_stats(d, &st);
	CHECK(st.domains == 0 && st.mappings == 0);
	check_remote(d);
	CHECK(srv.diverged || srv.space.nr == 0);
	d->ops->destroy(d);
	return 0;
}
