// SPDX-License-Identifier: MIT
#include "virtio/mmio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/efd.h"
#include "util/log.h"
#include "util/time.h"
#include "virtio/mmio_regs.h"

uint64_t virtio_mmio_offered_features(struct virtio_dev *d)
{
	if (d->remote_queues)
		return d->ops->features(d);
	return d->ops->features(d) | (1ull << VIRTIO_F_VERSION_1) |
	       (1ull << VIRTIO_F_RING_EVENT_IDX) |
	       (1ull << VIRTIO_F_RING_INDIRECT_DESC) |
	       (d->dma ? 1ull << VIRTIO_F_ACCESS_PLATFORM : 0);
}

/* How long a raise of a cause the guest has not acknowledged yet sends
 * no new edge (transport_raise). */
#define IRQ_COALESCE_NS 10000000ULL

static void transport_raise(void *opaque, bool config)
{
	struct virtio_mmio *t = opaque;
	uint32_t bit = config ? VIRTIO_MMIO_INT_CONFIG : VIRTIO_MMIO_INT_VRING;
	int ret;

	uint64_t now = now_ns();

	/* The line behaves as a level one: while the guest has not
	 * acknowledged this cause, another edge would only make it take one
	 * more interrupt for the same InterruptStatus. Its handler reads
	 * the used rings after the ACK, and the ACK comes after this
	 * fetch_or saw the bit (both RMW the same word), so what was pushed
	 * before it is seen. Only within IRQ_COALESCE_NS of the last edge,
	 * though: an edge lost on its way is then made good by the next
	 * completion, as before, also in an IOREQ server, which
	 * virtio_mmio_irq_check does not watch. A snapshot restore
	 * re-signals a set isr (virtio_mmio_resignal). */
	if ((atomic_fetch_or(t->isr, bit) & bit) &&
	    now - atomic_load_explicit(&t->last_edge_ns, memory_order_relaxed) <
		    IRQ_COALESCE_NS)
		return;
	atomic_store_explicit(&t->last_edge_ns, now, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->irq_gen, 1, memory_order_relaxed);
	/* Interrupts are the device's hot path: inside wisp the fd is
	 * private and one plain write does; in a server process it is the
	 * VMM's, which must not be able to block the device with it. */
	ret = t->irq.shared ? efd_signal(t->irq_efd) :
			      efd_signal_private(t->irq_efd);
	if (ret && ret != -EAGAIN)
		log_warn("%s: interrupt eventfd: %s", t->dev->name,
			 strerror(-ret));
}

bool virtio_mmio_irq_check(struct virtio_mmio *t, struct virtio_irq_watch *w,
			   uint64_t now_ns, uint64_t limit_ns)
{
	/* With a shared InterruptStatus the guest's reads are counted
	 * where the VMM serves them. */
	unsigned int reads =
		t->isr_reads ? atomic_load_explicit(t->isr_reads,
						    memory_order_relaxed) :
			       0;
	unsigned int gen =
		atomic_load_explicit(&t->irq_gen, memory_order_relaxed) + reads;
	bool used = atomic_load_explicit(&t->irq_used, memory_order_relaxed) ||
		    reads;
	int ret;

	if (!(atomic_load(t->isr) & VIRTIO_MMIO_INT_ALL) || gen != w->gen ||
	    !w->since_ns || !used) {
		w->gen = gen;
		w->since_ns = now_ns;
		return false;
	}
	if (now_ns - w->since_ns < limit_ns)
		return false;
	w->since_ns = now_ns;
	ret = t->irq.shared ? efd_signal(t->irq_efd) :
			      efd_signal_private(t->irq_efd);
	if (ret && ret != -EAGAIN)
		return false;
	w->reraised++;
	return true;
}

void virtio_mmio_share_isr(struct virtio_mmio *t, atomic_uint *isr,
			   atomic_uint *reads)
{
	atomic_store(isr, atomic_load(t->isr));
	t->isr = isr;
	t->isr_reads = reads;
}

static const struct virtio_transport_ops mmio_tops = {
	.raise = transport_raise,
};

/* Device reset (Status <- 0): everything back to its initial state. */
static void reset_locked(struct virtio_mmio *t)
{
	struct virtio_dev *d = t->dev;

	if (d->ops->reset)
		d->ops->reset(d);
	for (int q = 0; q < d->nr_queues; q++) {
		struct virtq *vq = &d->vq[q];

		vq->size = 0;
		vq->ready = false;
		vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
		virtq_reset(vq);
	}
	d->status = 0;
	d->features = 0;
	d->broken = false;
	t->driver_features = 0;
	t->dev_feat_sel = t->drv_feat_sel = t->queue_sel = 0;
	atomic_store(t->isr, 0);
	/* irq_used survives: a driver bound again after a reset may lose
	 * its very first edge, and one that never got an interrupt never
	 * reads InterruptStatus to arm the watch. */
}

/* The Status bits a driver may set (virtio 1.2, 2.1): NEEDS_RESET is the
 * device's to set, bits 4 and 5 are reserved. */
#define DRIVER_STATUS_BITS                                     \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |    \
	 VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK | \
	 VIRTIO_STATUS_FAILED)

static void write_status_locked(struct virtio_mmio *t, uint32_t v)
{
	struct virtio_dev *d = t->dev;
	uint32_t old = d->status;

	if (v == 0) {
		reset_locked(t);
		return;
	}
	/* A driver writing NEEDS_RESET would read back a device that
	 * claims to need a reset while it works (and a snapshot would
	 * keep the claim). */
	v &= DRIVER_STATUS_BITS;
	/* Only a reset clears Status bits (virtio 1.2, 2.1): a driver that
	 * drops FEATURES_OK does not reopen negotiation, so the features
	 * fixed at FEATURES_OK stay (3.1.1). FAILED sticks too: were it
	 * cleared, the DRIVER_OK of a failed start would come back on the
	 * next write and run queues of a device never activated. */
	v |= old;
	/* FEATURES_OK sticks only for a valid subset that includes
	 * VERSION_1; the driver reads Status back to find out. */
	if ((v & VIRTIO_STATUS_FEATURES_OK) &&
	    !(old & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t offered = virtio_mmio_offered_features(d);

		/* Behind an IOMMU the device can only use translated
		 * addresses, so a driver that would give it GPAs fails. */
		if ((t->driver_features & ~offered) ||
		    !(t->driver_features & (1ull << VIRTIO_F_VERSION_1)) ||
		    (d->dma && !(t->driver_features &
				 (1ull << VIRTIO_F_ACCESS_PLATFORM)))) {
			v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
		} else {
			d->features = t->driver_features;
		}
	}
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(v & VIRTIO_STATUS_FEATURES_OK)) {
			/* No DRIVER_OK: the queues of a device that was not
			 * activated must not run (virtio_dev_kick). */
			d->status = (v & ~(uint32_t)VIRTIO_STATUS_DRIVER_OK) |
				    VIRTIO_STATUS_FAILED;
			return;
		}
		for (int q = 0; q < d->nr_queues; q++) {
			d->vq[q].event_idx =
				virtio_has_feature(d, VIRTIO_F_RING_EVENT_IDX);
			d->vq[q].indirect = virtio_has_feature(
				d, VIRTIO_F_RING_INDIRECT_DESC);
		}
		d->status = v | (old & VIRTIO_STATUS_NEEDS_RESET);
		if (d->ops->activate && d->ops->activate(d) < 0)
			virtio_dev_set_broken(d, "activation failed");
		return;
	}
	/* Bits the driver may not clear stay set; NEEDS_RESET is ours. */
	d->status = v | (old & VIRTIO_STATUS_NEEDS_RESET);
}

static void queue_ready_locked(struct virtio_mmio *t, uint32_t v)
{
	struct virtio_dev *d = t->dev;
	struct virtq *vq = &d->vq[t->queue_sel];
	const char *why = NULL;

	if (!v) {
		if (vq->ready && d->ops->queue_disable)
			d->ops->queue_disable(d, (int)t->queue_sel);
		vq->ready = false;
		return;
	}
	if (vq->ready)
		return;
	if (vq->size == 0) {
		virtio_dev_set_broken(d, "queue size 0 (or above 65535)");
		return;
	}
	if (vq->size > d->queue_max[t->queue_sel]) {
		virtio_dev_set_broken(d, "queue size above QueueNumMax");
		return;
	}
	if (virtq_validate_rings(vq, &why) < 0) {
		virtio_dev_set_broken(d, why);
		return;
	}
	virtq_reset(vq);
	vq->ready = true;
}

static void set_addr(uint64_t *a, bool high, uint32_t v)
{
	if (high)
		*a = (*a & 0xffffffffull) | ((uint64_t)v << 32);
	else
		*a = (*a & ~0xffffffffull) | v;
}

static uint32_t reg_read_locked(struct virtio_mmio *t, uint64_t off)
{
	struct virtio_dev *d = t->dev;
	bool qvalid = t->queue_sel < (uint32_t)d->nr_queues;

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return d->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->dev_feat_sel > 1)
			return 0;
		return (uint32_t)(virtio_mmio_offered_features(d) >>
				  (32 * t->dev_feat_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return qvalid ? d->queue_max[t->queue_sel] : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return qvalid ? d->vq[t->queue_sel].ready : 0;
	case VIRTIO_MMIO_STATUS:
		return d->status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		return 0xffffffff; /* no shared memory regions */
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return 0xffffffff;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return d->config_generation;
	default:
		return 0;
	}
}

static void reg_write_locked(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtio_dev *d = t->dev;
	bool qvalid = t->queue_sel < (uint32_t)d->nr_queues;
	struct virtq *vq = qvalid ? &d->vq[t->queue_sel] : NULL;
	/* Queue layout registers are frozen while the queue is live, and
	 * everything but Status is frozen after FEATURES_OK for features. */
	bool qwritable = vq && !vq->ready;

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->dev_feat_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (d->status & VIRTIO_STATUS_FEATURES_OK)
			break;
		if (t->drv_feat_sel == 0)
			t->driver_features =
				(t->driver_features & ~0xffffffffull) | v;
		else if (t->drv_feat_sel == 1)
			t->driver_features =
				(t->driver_features & 0xffffffffull) |
				((uint64_t)v << 32);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->drv_feat_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		/* A size above QueueNumMax is kept as none: QueueReady fails
		 * it all the same, and the state stays one a snapshot of
		 * this VM restores. */
		if (qwritable)
			vq->size = v > d->queue_max[t->queue_sel] ? 0 :
								    (uint16_t)v;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (vq)
			queue_ready_locked(t, v);
		break;
	case VIRTIO_MMIO_STATUS:
		write_status_locked(t, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		if (qwritable)
			set_addr(&vq->desc_gpa,
				 off == VIRTIO_MMIO_QUEUE_DESC_HIGH, v);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		if (qwritable)
			set_addr(&vq->avail_gpa,
				 off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH, v);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		if (qwritable)
			set_addr(&vq->used_gpa,
				 off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, v);
		break;
	default: /* read-only or unknown: ignored */
		break;
	}
}

static void mmio_read(void *opaque, int cpu, uint64_t off, uint8_t *data,
		      uint32_t len)
{
	struct virtio_mmio *t = opaque;
	struct virtio_dev *d = t->dev;

	memset(data, 0, len);
	/* The interrupt handler's register needs no lock: a vCPU must not
	 * wait for the I/O thread's disk I/O to take an interrupt. */
	if (off == VIRTIO_MMIO_INTERRUPT_STATUS && len == 4) {
		uint32_t v = atomic_load(t->isr) |
			     (d->remote_queues ? VIRTIO_MMIO_INT_VRING : 0);

		atomic_fetch_add_explicit(&t->irq_gen, 1, memory_order_relaxed);
		atomic_store_explicit(&t->irq_used, true, memory_order_relaxed);
		memcpy(data, &v, 4);
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t c = off - VIRTIO_MMIO_CONFIG;

		if (c < d->config_size && len <= d->config_size - c &&
		    d->ops->config_read)
			d->ops->config_read(d, (uint32_t)c, data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v = reg_read_locked(t, off);

		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&d->lock);
}

static void mmio_write(void *opaque, int cpu, uint64_t off, const uint8_t *data,
		       uint32_t len)
{
	struct virtio_mmio *t = opaque;
	struct virtio_dev *d = t->dev;
	uint32_t v32 = 0;

	/* ACK and exit-path kicks touch only atomics and eventfds; a kick
	 * of a queue served in the vCPU takes the lock in its handler. */
	if (len == 4 && (off == VIRTIO_MMIO_INTERRUPT_ACK ||
			 off == VIRTIO_MMIO_QUEUE_NOTIFY)) {
		memcpy(&v32, data, 4);
		if (off == VIRTIO_MMIO_INTERRUPT_ACK) {
			atomic_fetch_and(t->isr, ~v32);
		} else if (v32 < (uint32_t)d->nr_queues &&
			   ((d->exit_queues >> v32) & 1)) {
			virtio_dev_kick_exit(d, (int)v32);
		} else if (v32 < (uint32_t)d->nr_queues) {
			int fd = t->notify_efd[v32];
			int ret = d->remote_queues ? efd_signal(fd) :
						     efd_signal_private(fd);

			if (ret && ret != -EAGAIN)
				log_warn("%s: notify eventfd: %s", d->name,
					 strerror(-ret));
		}
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t c = off - VIRTIO_MMIO_CONFIG;

		if (c < d->config_size && len <= d->config_size - c &&
		    d->ops->config_write)
			d->ops->config_write(d, (uint32_t)c, data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v;

		memcpy(&v, data, 4);
		reg_write_locked(t, off, v);
	}
	pthread_mutex_unlock(&d->lock);
}

const struct bus_ops virtio_mmio_bus_ops = {
	.read = mmio_read,
	.write = mmio_write,
};

int virtio_mmio_create(struct virtio_dev *dev, uint64_t base, unsigned int gsi,
		       struct ioeventfd_registry *doorbells,
		       const struct virtio_irq_host *irq,
		       struct virtio_mmio **out, struct err *e)
{
	struct virtio_mmio *t = calloc(1, sizeof(*t));
	int ret;

	*out = NULL;
	if (!t)
		return err_set(e, -ENOMEM, "%s: out of memory", dev->name);
	t->dev = dev;
	t->base = base;
	t->gsi = gsi;
	t->doorbells = doorbells;
	t->irq = *irq;
	/* A back-end holds the eventfd: it may make it blocking. */
	if (dev->remote_queues)
		t->irq.shared = true;
	t->irq_efd = -1;
	t->isr = &t->isr_own;
	t->io.epfd = t->io.stop_efd = -1;
	for (int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		t->notify_efd[q] = -1;
	dev->tops = &mmio_tops;
	dev->transport = t;
	*out = t;

	t->irq_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->irq_efd < 0)
		return err_set(e, -errno, "%s: eventfd: %s", dev->name,
			       strerror(errno));
	dev->irq_fd = t->irq_efd;
	ret = irq->add_irqfd(irq->opaque, t->irq_efd, gsi);
	if (ret)
		return err_set(e, ret, "%s: irqfd for GSI %u: %s", dev->name,
			       gsi, strerror(-ret));
	for (int q = 0; q < dev->nr_queues; q++) {
		t->notify_efd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->notify_efd[q] < 0)
			return err_set(e, -errno, "%s: eventfd: %s", dev->name,
				       strerror(errno));
		dev->kick_fds[q] = t->notify_efd[q];
		if ((dev->exit_queues >> q) & 1) {
			log_info("%s: queue %d served in the kicking vCPU",
				 dev->name, q);
			continue;
		}
		t->doorbell[q] = doorbells &&
				 ioevr_assign(doorbells,
					      base + VIRTIO_MMIO_QUEUE_NOTIFY,
					      4, IOEVR_F_DATAMATCH, (uint64_t)q,
					      t->notify_efd[q]) == 0;
		if (!t->doorbell[q])
			log_info("%s: queue %d doorbell on the exit path",
				 dev->name, q);
	}
	return virtio_iothread_start(&t->io, dev, t->notify_efd, e);
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	struct virtio_dev *d;

	if (!t)
		return;
	d = t->dev;
	virtio_iothread_stop(&t->io);
	for (int q = 0; q < d->nr_queues; q++) {
		if (t->notify_efd[q] < 0)
			continue;
		if (t->doorbell[q])
			ioevr_deassign(t->doorbells,
				       t->base + VIRTIO_MMIO_QUEUE_NOTIFY, 4,
				       IOEVR_F_DATAMATCH, (uint64_t)q,
				       t->notify_efd[q]);
		close(t->notify_efd[q]);
	}
	if (t->irq_efd >= 0) {
		if (t->irq.del_irqfd)
			t->irq.del_irqfd(t->irq.opaque, t->irq_efd, t->gsi);
		close(t->irq_efd);
	}
	if (d->ops->destroy)
		d->ops->destroy(d);
	free(t);
}

int virtio_mmio_cmdline(const struct virtio_mmio *t, char *buf, size_t len)
{
	return snprintf(buf, len, "virtio_mmio.device=4K@0x%llx:%u",
			(unsigned long long)t->base, t->gsi);
}
