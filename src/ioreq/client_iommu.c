// SPDX-License-Identifier: MIT
/*
 * The IOMMU channel (IOREQ_F_IOMMU, protocol version 2): the server of a
 * device behind the VM's virtio-iommu keeps its own copy of the
 * endpoint's translation table. A new attachment is brought to the
 * endpoint's state (RESET to its mode, then one MAP per mapping) before
 * it is published; afterwards every change is sent as it happens and the
 * caller (the IOMMU's request thread) waits for the server's IOMMU_DONE,
 * so the guest's UNMAP completes only once the server confirmed that no
 * request of its device still uses the mapping (docs/ioreq.md).
 *
 * One message is outstanding at a time: a DONE must carry the seq of the
 * message it answers. A server that does not answer within timeout_ms,
 * sends anything else or hangs up is cut off.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ioreq/client_priv.h"
#include "ioreq/msg.h"
#include "util/time.h"

static int ms_left(uint64_t deadline)
{
	uint64_t now = now_ns();

	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* Sends one IOMMU_* and waits for its DONE. Returns the server's status,
 * or a transport error as -EPIPE (send), -ETIMEDOUT, -ECONNRESET or
 * -EPROTO, with *broken set. */
static int rpc(struct ioreq_attachment *a, struct ioreq_hdr *h, size_t len,
	       uint64_t deadline, bool *broken)
{
	union {
		struct ioreq_hdr hdr;
		struct ioreq_iommu_done done;
		uint8_t raw[IOREQ_MAX_MSG];
	} m;
	int fds[IOREQ_MAX_FDS], nfds, n, ret;

	*broken = true;
	h->len = (uint32_t)len;
	h->seq = ++a->iommu_msg;
	h->reserved = 0;
	ret = ioreq_send_by(a->iommu_sock, h, len, NULL, 0, deadline);
	if (ret)
		return ret;
	n = ioreq_recv(a->iommu_sock, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds,
		       ms_left(deadline));
	if (n <= 0)
		return n ? n : -ECONNRESET;
	ioreq_close_fds(fds, nfds);
	if (m.hdr.type != IOREQ_MSG_IOMMU_DONE || n != sizeof(m.done) || nfds ||
	    m.hdr.seq != h->seq || m.done.reserved)
		return -EPROTO;
	/* Only 0 or a negative errno is a status. */
	if (m.done.status > 0 || m.done.status < -4095)
		return -EPROTO;
	*broken = false;
	return m.done.status;
}

int ioreq_client_iommu_replay(struct ioreq_client *c,
			      struct ioreq_attachment *a, uint64_t deadline,
			      struct err *e)
{
	struct ioreq_iommu_reset r = { { IOREQ_MSG_IOMMU_RESET, 0, 0, 0 },
				       0,
				       0 };
	struct ioreq_iommu_map *maps = NULL;
	uint32_t nr = 0;
	bool broken;
	int ret;

	ret = c->cfg.iommu.snapshot(c->cfg.iommu.opaque, &r.mode, &maps, &nr,
				    &a->iommu_seq);
	if (ret)
		return err_set(e, ret, "%s: IOMMU state: %s", c->name,
			       strerror(-ret));
	ret = rpc(a, &r.hdr, sizeof(r), deadline, &broken);
	for (uint32_t i = 0; !ret && i < nr; i++) {
		maps[i].hdr.type = IOREQ_MSG_IOMMU_MAP;
		maps[i].reserved = 0;
		ret = rpc(a, &maps[i].hdr, sizeof(maps[i]), deadline, &broken);
	}
	free(maps);
	if (ret)
		return err_set(
			e, ret,
			"%s: server '%s': IOMMU state (%u mappings): %s%s",
			c->name, a->server_name, nr,
			broken ? "no valid answer: " : "refused: ",
			strerror(-ret));
	return 0;
}

static int iommu_op(struct ioreq_client *c, uint64_t seq, struct ioreq_hdr *h,
		    size_t len)
{
	struct ioreq_attachment *a;
	bool broken = false;
	int ret = 0;

	pthread_mutex_lock(&c->iommu_lock);
	pthread_rwlock_rdlock(&c->lock);
	a = c->att;
	/* Nobody to tell (the next server starts from a snapshot), or the
	 * snapshot it started from has this change already. */
	if (a && !atomic_load(&c->dead) && (a->features & IOREQ_F_IOMMU) &&
	    seq > a->iommu_seq) {
		ret = rpc(a, h, len,
			  now_ns() + (uint64_t)c->cfg.timeout_ms * 1000000ull,
			  &broken);
		if (broken)
			ioreq_client_cut_off(c, a);
	}
	pthread_rwlock_unlock(&c->lock);
	pthread_mutex_unlock(&c->iommu_lock);
	return ret;
}

int ioreq_client_iommu_map(struct ioreq_client *c, uint64_t seq, uint64_t iova,
			   uint64_t last, uint64_t gpa, uint32_t perm)
{
	struct ioreq_iommu_map m = {
		{ IOREQ_MSG_IOMMU_MAP, 0, 0, 0 }, iova, last, gpa, perm, 0
	};

	return iommu_op(c, seq, &m.hdr, sizeof(m));
}

int ioreq_client_iommu_unmap(struct ioreq_client *c, uint64_t seq,
			     uint64_t iova, uint64_t last)
{
	struct ioreq_iommu_unmap m = { { IOREQ_MSG_IOMMU_UNMAP, 0, 0, 0 },
				       iova,
				       last };

	return iommu_op(c, seq, &m.hdr, sizeof(m));
}

int ioreq_client_iommu_reset(struct ioreq_client *c, uint64_t seq,
			     uint32_t mode)
{
	struct ioreq_iommu_reset m = { { IOREQ_MSG_IOMMU_RESET, 0, 0, 0 },
				       mode,
				       0 };

	return iommu_op(c, seq, &m.hdr, sizeof(m));
}

int ioreq_client_iommu_fault(struct ioreq_client *c, const void *msg, int n)
{
	struct ioreq_iommu_fault f;

	if (n != sizeof(f) || !c->att || !(c->att->features & IOREQ_F_IOMMU))
		return -EPROTO;
	memcpy(&f, msg, sizeof(f));
	if ((f.flags != IOREQ_IOMMU_READ && f.flags != IOREQ_IOMMU_WRITE) ||
	    f.reserved)
		return -EPROTO;
	if (c->cfg.iommu.fault)
		c->cfg.iommu.fault(c->cfg.iommu.opaque, f.iova, f.flags);
	return 0;
}
