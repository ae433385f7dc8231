// SPDX-License-Identifier: MIT
/* The virtio-mmio transport's snapshot state: its registers, the
 * device's negotiated state and each queue's addresses and indices. The
 * device must be quiesced (no request in flight): what is in a ring and
 * not yet popped is in guest RAM, which the snapshot has. */
#include <errno.h>
#include <string.h>

#include "util/efd.h"
#include "util/le.h"
#include "util/log.h"
#include "virtio/mmio.h"

#define STATE_VERSION 1

/* A status the register file could have reached (write_status_locked):
 * a restored device runs its queues on it, so a file must not give it
 * features it does not offer or DRIVER_OK without a negotiation. NULL
 * when it could. */
static const char *status_why(struct virtio_dev *d, uint64_t feat,
			      uint32_t status, bool broken)
{
	if (feat & ~virtio_mmio_offered_features(d))
		return "features the device does not offer";
	if ((status & VIRTIO_STATUS_FEATURES_OK) &&
	    (!(feat & (1ull << VIRTIO_F_VERSION_1)) ||
	     (d->dma && !(feat & (1ull << VIRTIO_F_ACCESS_PLATFORM)))))
		return "FEATURES_OK with features the driver could not set";
	if ((status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(status & VIRTIO_STATUS_FEATURES_OK))
		return "DRIVER_OK without FEATURES_OK";
	if (broken && !(status & VIRTIO_STATUS_NEEDS_RESET))
		return "a broken device without NEEDS_RESET";
	return NULL;
}

void virtio_mmio_save(struct virtio_mmio *t, struct ser_w *w)
{
	struct virtio_dev *d = t->dev;

	pthread_mutex_lock(&d->lock);
	ser_u32(w, STATE_VERSION);
	ser_u32(w, d->device_id);
	ser_u32(w, (uint32_t)d->nr_queues);
	ser_u32(w, t->dev_feat_sel);
	ser_u32(w, t->drv_feat_sel);
	ser_u32(w, t->queue_sel);
	ser_u64(w, t->driver_features);
	/* The defined bits: a shared word may hold anything. */
	ser_u32(w, atomic_load(t->isr) & VIRTIO_MMIO_INT_ALL);
	ser_u64(w, d->features);
	ser_u32(w, d->status);
	ser_u32(w, d->config_generation);
	ser_u8(w, d->broken);
	for (int q = 0; q < d->nr_queues; q++) {
		const struct virtq *vq = &d->vq[q];

		ser_u16(w, vq->size);
		ser_u8(w, vq->ready);
		ser_u64(w, vq->desc_gpa);
		ser_u64(w, vq->avail_gpa);
		ser_u64(w, vq->used_gpa);
		ser_u8(w, vq->event_idx);
		ser_u8(w, vq->indirect);
		ser_u16(w, vq->last_avail);
		ser_u16(w, vq->used_idx);
		ser_u16(w, vq->signalled_used);
		ser_u8(w, vq->signalled_valid);
	}
	/* The device's own part, as a blob (empty without a save op). */
	{
		size_t at = w->len;

		ser_u32(w, 0);
		if (d->ops->save)
			d->ops->save(d, w);
		if (!w->fail)
			put32(w->p + at, (uint32_t)(w->len - at - 4));
	}
	pthread_mutex_unlock(&d->lock);
}

int virtio_mmio_load(struct virtio_mmio *t, const uint8_t *p, uint64_t len,
		     struct err *e)
{
	struct virtio_dev *d = t->dev;
	struct ser_r r = { p, (size_t)len, 0, false };
	struct virtq vq[VIRTIO_MAX_QUEUES], old_vq[VIRTIO_MAX_QUEUES];
	struct saved {
		uint32_t dfs, drfs, qs;
		uint64_t drv_feat;
		uint32_t isr;
		uint64_t feat;
		uint32_t status, gen;
		bool broken;
	} old;
	uint32_t id, nq, dfs, drfs, qs, isr, status, gen;
	uint64_t drv_feat, feat;
	bool broken;
	const char *why = "malformed";
	const uint8_t *dev_state;
	uint32_t dev_len;

	if (deser_u32(&r) != STATE_VERSION)
		r.fail = true;
	id = deser_u32(&r);
	nq = deser_u32(&r);
	if (r.fail || id != d->device_id || nq != (uint32_t)d->nr_queues)
		return err_config(e, -EINVAL,
				  "snapshot: %s: device %u with %u queues in "
				  "the file, %u with %d here",
				  d->name, id, nq, d->device_id, d->nr_queues);
	dfs = deser_u32(&r);
	drfs = deser_u32(&r);
	qs = deser_u32(&r);
	drv_feat = deser_u64(&r);
	isr = deser_u32(&r);
	feat = deser_u64(&r);
	status = deser_u32(&r);
	gen = deser_u32(&r);
	broken = deser_bool(&r);
	for (uint32_t q = 0; q < nq; q++) {
		vq[q] = d->vq[q];
		virtq_reset(&vq[q]);
		vq[q].size = deser_u16(&r);
		vq[q].ready = deser_bool(&r);
		vq[q].desc_gpa = deser_u64(&r);
		vq[q].avail_gpa = deser_u64(&r);
		vq[q].used_gpa = deser_u64(&r);
		vq[q].event_idx = deser_bool(&r);
		vq[q].indirect = deser_bool(&r);
		vq[q].last_avail = deser_u16(&r);
		vq[q].used_idx = deser_u16(&r);
		vq[q].signalled_used = deser_u16(&r);
		vq[q].signalled_valid = deser_bool(&r);
		if (vq[q].size > d->queue_max[q]) {
			r.fail = true;
			why = "queue size above its maximum";
		}
		/* The rings must be inside this VM's RAM, as when the
		 * driver set QueueReady. */
		if (!r.fail && vq[q].ready &&
		    (vq[q].size == 0 || virtq_validate_rings(&vq[q], &why)))
			r.fail = true;
	}
	dev_state = deser_blob_ref(&r, UINT32_MAX, &dev_len);
	if (!r.fail && dev_len && !d->ops->load) {
		r.fail = true;
		why = "device state for a device without any";
	}
	if (!r.fail && status <= 0xff && !(feat & ~drv_feat)) {
		const char *bad = status_why(d, feat, status, broken);

		if (bad) {
			r.fail = true;
			why = bad;
		}
	}
	if (!deser_done(&r) || (isr & ~VIRTIO_MMIO_INT_ALL) || status > 0xff ||
	    (feat & ~drv_feat))
		return err_config(e, -EINVAL,
				  "snapshot: %s: transport state %s", d->name,
				  why);
	pthread_mutex_lock(&d->lock);
	/* What a refused device payload puts back: the device checks its
	 * own payload against the restored features and queues. */
	memcpy(old_vq, d->vq, sizeof(old_vq[0]) * nq);
	old = (struct saved){
		t->dev_feat_sel,    t->drv_feat_sel,	  t->queue_sel,
		t->driver_features, atomic_load(t->isr),  d->features,
		d->status,	    d->config_generation, d->broken
	};
	t->dev_feat_sel = dfs;
	t->drv_feat_sel = drfs;
	t->queue_sel = qs;
	t->driver_features = drv_feat;
	atomic_store(t->isr, isr);
	d->features = feat;
	d->status = status;
	d->config_generation = gen;
	d->broken = broken;
	for (uint32_t q = 0; q < nq; q++)
		d->vq[q] = vq[q];
	if (d->ops->load && d->ops->load(d, dev_state, dev_len, &why) < 0) {
		t->dev_feat_sel = old.dfs;
		t->drv_feat_sel = old.drfs;
		t->queue_sel = old.qs;
		t->driver_features = old.drv_feat;
		atomic_store(t->isr, old.isr);
		d->features = old.feat;
		d->status = old.status;
		d->config_generation = old.gen;
		d->broken = old.broken;
		memcpy(d->vq, old_vq, sizeof(old_vq[0]) * nq);
		pthread_mutex_unlock(&d->lock);
		return err_config(e, -EINVAL, "snapshot: %s: device state: %s",
				  d->name, why);
	}
	/* The device sets up what DRIVER_OK means to it (as when the
	 * driver wrote it). */
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !broken && d->ops->activate &&
	    d->ops->activate(d) < 0)
		virtio_dev_set_broken(d, "activation after restore failed");
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void virtio_mmio_resignal(struct virtio_mmio *t)
{
	struct virtio_dev *d = t->dev;

	/* A kick the guest made just before the snapshot may not have
	 * been seen: the device looks at every live queue once. An extra
	 * look at an empty queue costs nothing. */
	for (int q = 0; q < d->nr_queues; q++) {
		bool ready;

		pthread_mutex_lock(&d->lock);
		ready = d->vq[q].ready;
		pthread_mutex_unlock(&d->lock);
		if (ready && t->notify_efd[q] >= 0) {
			int ret = efd_signal_private(t->notify_efd[q]);

			if (ret && ret != -EAGAIN)
				log_warn("%s: queue %d: re-signal: %s", d->name,
					 q, strerror(-ret));
		}
	}
	/* A raise coalesces into a set isr (transport_raise): an edge that
	 * was in flight to the irqchip when the snapshot was taken is not in
	 * the saved interrupt state, so a set isr gets its edge again. */
	if (atomic_load(t->isr)) {
		int ret = t->irq.shared ? efd_signal(t->irq_efd) :
					  efd_signal_private(t->irq_efd);

		if (ret && ret != -EAGAIN)
			log_warn("%s: interrupt re-signal: %s", d->name,
				 strerror(-ret));
	}
}
