// SPDX-License-Identifier: MIT
#include "virtio/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/time.h"

void virtio_dev_init(struct virtio_dev *d, const char *name, uint32_t device_id,
		     const struct virtio_dev_ops *ops, void *priv,
		     struct guest_mem *mem, int nr_queues, uint16_t queue_max,
		     uint32_t config_size)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	d->device_id = device_id;
	d->ops = ops;
	d->priv = priv;
	d->mem = mem;
	pthread_mutex_init(&d->lock, NULL);
	d->config_size = config_size;
	d->nr_queues = nr_queues > VIRTIO_MAX_QUEUES ? VIRTIO_MAX_QUEUES :
						       nr_queues;
	for (int i = 0; i < d->nr_queues; i++) {
		d->queue_max[i] = queue_max;
		d->vq[i].mem = mem;
	}
	d->watch_fds[0] = d->watch_fds[1] = -1;
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		d->kick_fds[i] = -1;
	d->irq_fd = -1;
}

static void free_tokens(struct virtio_dev *d)
{
	for (int i = 0; i < d->nr_queues; i++) {
		free(d->vq[i].dma_tok);
		d->vq[i].dma_tok = NULL;
		d->vq[i].dma_tok_n = 0;
	}
}

int virtio_dev_set_dma(struct virtio_dev *d, const struct virtq_dma *dma)
{
	free_tokens(d);
	d->dma = dma;
	for (int i = 0; i < d->nr_queues; i++) {
		d->vq[i].dma = dma;
		if (!dma || !dma->begin || !dma->end)
			continue;
		d->vq[i].dma_tok =
			calloc(d->queue_max[i], sizeof(*d->vq[i].dma_tok));
		if (!d->vq[i].dma_tok) {
			free_tokens(d);
			d->dma = NULL;
			for (int k = 0; k < d->nr_queues; k++)
				d->vq[k].dma = NULL;
			return -ENOMEM;
		}
		d->vq[i].dma_tok_n = d->queue_max[i];
	}
	return 0;
}

void virtio_dev_fini(struct virtio_dev *d)
{
	free_tokens(d);
	pthread_mutex_destroy(&d->lock);
}

static void raise(struct virtio_dev *d, bool config)
{
	if (d->tops && d->tops->raise)
		d->tops->raise(d->transport, config);
}

void virtio_dev_notify_queue(struct virtio_dev *d, int q)
{
	if (q < 0 || q >= d->nr_queues)
		return;
	if (virtq_should_notify(&d->vq[q]))
		raise(d, false);
}

void virtio_dev_raise_vring(struct virtio_dev *d)
{
	raise(d, false);
}

void virtio_dev_notify_config(struct virtio_dev *d)
{
	d->config_generation++;
	raise(d, true);
}

void virtio_dev_set_broken(struct virtio_dev *d, const char *why)
{
	uint64_t now = now_ns();

	if (!d->broken &&
	    (d->last_warn_ns == 0 || now - d->last_warn_ns >= 5000000000ull)) {
		d->last_warn_ns = now;
		log_warn("%s: %s; device needs reset", d->name, why);
	}
	if (d->broken)
		return;
	d->broken = true;
	/* NEEDS_RESET is only meaningful once the driver is running the
	 * device; before DRIVER_OK the driver sees a failed negotiation. */
	d->status |= VIRTIO_STATUS_NEEDS_RESET;
	virtio_dev_notify_config(d);
}

int virtio_dev_pop(struct virtio_dev *d, int q, struct virtq_chain *c)
{
	struct virtq *vq = &d->vq[q];
	const char *why = NULL;

	for (bool rechecked = false;;) {
		int r = virtq_pop(vq, c, &why);

		if (r < 0) {
			virtio_dev_set_broken(d, why ? why : "bad chain");
			return -EINVAL;
		}
		if (r > 0 && c->dma_fault && !d->dma_fault_aware) {
			/* The request fails: no byte moved, the fault is on
			 * the IOMMU's event queue. */
			virtq_push(vq, c->head, 0);
			virtio_dev_notify_queue(d, q);
			continue;
		}
		if (r > 0)
			return 1;
		if (rechecked || !vq->event_idx)
			return 0;
		virtq_update_avail_event(vq);
		rechecked = true;
	}
}

static void kick(struct virtio_dev *d, int q,
		 void (*fn)(struct virtio_dev *d, int q))
{
	pthread_mutex_lock(&d->lock);
	if (q >= 0 && q < d->nr_queues && !d->broken &&
	    (d->status & VIRTIO_STATUS_DRIVER_OK) && d->vq[q].ready && fn)
		fn(d, q);
	pthread_mutex_unlock(&d->lock);
}

void virtio_dev_kick(struct virtio_dev *d, int q)
{
	kick(d, q, d->ops->queue_notify);
}

void virtio_dev_kick_exit(struct virtio_dev *d, int q)
{
	kick(d, q, d->ops->queue_notify_exit);
}
