// SPDX-License-Identifier: MIT
/* virtio-net with its rings run by the kernel's vhost-net (net.h,
 * net_create with cfg->vhost): wisp keeps the transport, the config
 * space and the tap's offloads; /dev/vhost-net reads and writes the
 * rings and the tap itself. The doorbells are the transport's ioeventfd
 * lanes, handed to vhost as its kick fds; vhost's call fds go through
 * virtio/remote.c, which sets InterruptStatus before the irqfd (a
 * virtio-mmio driver reads it first). The rings' addresses are wisp's
 * own mapping of guest RAM, checked at QueueReady; vhost checks every
 * descriptor against the memory table it was given. */
#include "devices/net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/remote.h"

#define TRANSPORT_FEATURES                       \
	((1ull << VIRTIO_F_RING_INDIRECT_DESC) | \
	 (1ull << VIRTIO_F_RING_EVENT_IDX) | (1ull << VIRTIO_F_VERSION_1))
/* Of the net features wisp offers, those vhost-net itself must know
 * about (the others are the tap's or the config space's). */
#define VHOST_RING_FEATURES (1ull << VIRTIO_NET_F_MRG_RXBUF)

struct vnet {
	struct virtio_dev vdev;
	struct virtio_remote rem;
	int vhost, tap;
	uint64_t vhost_features, offered;
	uint8_t mac[6];
	bool started;
	char name[48];
};

static struct vnet *to_vnet(struct virtio_dev *d)
{
	return d->priv;
}

static uint64_t vnet_features(struct virtio_dev *d)
{
	return to_vnet(d)->offered;
}

static void vnet_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data,
			     uint32_t len)
{
	struct vnet *v = to_vnet(d);

	net_config_bytes(v->mac, off, data, len);
}

static void vnet_config_write(struct virtio_dev *d, uint32_t off,
			      const uint8_t *data, uint32_t len)
{
	/* With VERSION_1 the MAC is read-only (5.1.4.1). */
}

/* Takes the tap away from vhost and stops every ring (its state is
 * dropped: a reset follows, or the device is going away). */
static void stop(struct vnet *v)
{
	for (int q = 0; q < v->vdev.nr_queues; q++) {
		struct vhost_vring_file f = { .index = (unsigned int)q,
					      .fd = -1 };
		struct vhost_vring_state s = { .index = (unsigned int)q };

		ioctl(v->vhost, VHOST_NET_SET_BACKEND, &f);
		ioctl(v->vhost, VHOST_GET_VRING_BASE, &s);
	}
	v->started = false;
}

static int set_mem(struct vnet *v, struct err *e)
{
	const struct guest_mem *m = v->vdev.mem;
	struct vhost_memory *t = calloc(
		1, sizeof(*t) + (size_t)m->nr_regions *
					sizeof(struct vhost_memory_region));
	int ret = 0;

	if (!t)
		return err_set(e, -ENOMEM, "%s: out of memory", v->name);
	t->nregions = (unsigned int)m->nr_regions;
	for (int i = 0; i < m->nr_regions; i++)
		t->regions[i] = (struct vhost_memory_region){
			.guest_phys_addr = m->regions[i].gpa,
			.memory_size = m->regions[i].size,
			.userspace_addr =
				(uintptr_t)(m->host + m->regions[i].offset),
		};
	if (ioctl(v->vhost, VHOST_SET_MEM_TABLE, t) < 0)
		ret = err_set(e, -errno, "%s: VHOST_SET_MEM_TABLE: %s", v->name,
			      strerror(errno));
	free(t);
	return ret;
}

static int start_ring(struct vnet *v, int q, struct err *e)
{
	struct virtio_dev *d = &v->vdev;
	struct virtq *vq = &d->vq[q];
	struct vhost_vring_state num = { (unsigned int)q, vq->size };
	struct vhost_vring_state base = { (unsigned int)q, vq->last_avail };
	/* The rings were checked against guest RAM at QueueReady. */
	struct vhost_vring_addr a = {
		.index = (unsigned int)q,
		.desc_user_addr = (uintptr_t)guest_mem_ptr(d->mem, vq->desc_gpa,
							   16ull * vq->size),
		.avail_user_addr = (uintptr_t)guest_mem_ptr(
			d->mem, vq->avail_gpa, 6 + 2ull * vq->size),
		.used_user_addr = (uintptr_t)guest_mem_ptr(d->mem, vq->used_gpa,
							   6 + 8ull * vq->size),
	};
	struct vhost_vring_file kick = { (unsigned int)q, d->kick_fds[q] };
	struct vhost_vring_file call = { (unsigned int)q, d->irq_fd };
	struct vhost_vring_file err = { (unsigned int)q, v->rem.err[q] };
	struct vhost_vring_file be = { (unsigned int)q, v->tap };
	const struct {
		unsigned long req;
		const char *what;
		void *arg;
	} steps[] = {
		{ VHOST_SET_VRING_NUM, "VHOST_SET_VRING_NUM", &num },
		{ VHOST_SET_VRING_ADDR, "VHOST_SET_VRING_ADDR", &a },
		{ VHOST_SET_VRING_BASE, "VHOST_SET_VRING_BASE", &base },
		{ VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK", &kick },
		{ VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL", &call },
		{ VHOST_SET_VRING_ERR, "VHOST_SET_VRING_ERR", &err },
		/* Last: from here on vhost moves frames. */
		{ VHOST_NET_SET_BACKEND, "VHOST_NET_SET_BACKEND", &be },
	};

	if (!a.desc_user_addr || !a.avail_user_addr || !a.used_user_addr)
		return err_set(e, -EFAULT, "%s: queue %d: rings outside RAM",
			       v->name, q);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (ioctl(v->vhost, steps[i].req, steps[i].arg) < 0)
			return err_set(e, -errno, "%s: queue %d: %s: %s",
				       v->name, q, steps[i].what,
				       strerror(errno));
	return 0;
}

static int vnet_activate(struct virtio_dev *d)
{
	struct vnet *v = to_vnet(d);
	/* The tap writes and reads the 12-byte header itself, so vhost
	 * gets the ring features only, never VHOST_NET_F_VIRTIO_NET_HDR. */
	uint64_t f = d->features & (TRANSPORT_FEATURES | VHOST_RING_FEATURES);
	struct err e = { 0 };
	int ret = 0;

	if (ioctl(v->tap, TUNSETOFFLOAD,
		  (unsigned long)net_tap_offloads(d->features)) < 0)
		ret = err_set(&e, -errno, "%s: TUNSETOFFLOAD: %s", v->name,
			      strerror(errno));
	if (!ret && ioctl(v->vhost, VHOST_SET_FEATURES, &f) < 0)
		ret = err_set(&e, -errno, "%s: VHOST_SET_FEATURES: %s", v->name,
			      strerror(errno));
	if (!ret)
		ret = set_mem(v, &e);
	for (int q = 0; q < d->nr_queues && !ret; q++)
		if (d->vq[q].ready)
			ret = start_ring(v, q, &e);
	if (ret) {
		log_warn("%s", e.msg);
		stop(v);
		return ret;
	}
	v->started = true;
	return 0;
}

static void vnet_reset(struct virtio_dev *d)
{
	struct vnet *v = to_vnet(d);

	if (v->started)
		stop(v);
}

/* vhost found a ring it cannot use (a descriptor outside the memory
 * table, a loop): the device needs a reset, as wisp's own would. */
static void vnet_ring_error(struct virtio_dev *d, int q)
{
	struct vnet *v = to_vnet(d);

	log_warn("%s: vhost-net stopped queue %d on a bad ring", v->name, q);
	stop(v);
	if (d->status & VIRTIO_STATUS_DRIVER_OK) {
		d->status |= VIRTIO_STATUS_NEEDS_RESET;
		virtio_dev_notify_config(d);
	}
}

static const struct virtio_remote_ops remote_ops = {
	.ring_error = vnet_ring_error,
};

static void vnet_fd_ready(struct virtio_dev *d, int fd)
{
	virtio_remote_fd_ready(&to_vnet(d)->rem);
}

static void vnet_destroy(struct virtio_dev *d)
{
	struct vnet *v = to_vnet(d);

	if (v->started)
		stop(v);
	close(v->vhost);
	close(v->tap);
	virtio_remote_fini(&v->rem);
	virtio_dev_fini(d);
	free(v);
}

static const struct virtio_dev_ops vnet_ops = {
	.features = vnet_features,
	.config_read = vnet_config_read,
	.config_write = vnet_config_write,
	.activate = vnet_activate,
	.reset = vnet_reset,
	.fd_ready = vnet_fd_ready,
	.destroy = vnet_destroy,
};

int net_vhost_open(const char *label, int *fd, uint64_t *features,
		   struct err *e)
{
	*fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return err_config(e, -errno,
				  "virtio-net %s: /dev/vhost-net: %s", label,
				  strerror(errno));
	if (ioctl(*fd, VHOST_SET_OWNER) < 0 ||
	    ioctl(*fd, VHOST_GET_FEATURES, features) < 0) {
		int ret = err_set(e, -errno, "virtio-net %s: vhost-net: %s",
				  label, strerror(errno));

		close(*fd);
		*fd = -1;
		return ret;
	}
	return 0;
}

int net_vhost_create(const struct net_config *cfg, int tap, int vhost,
		     uint64_t vhost_features, struct guest_mem *mem,
		     struct virtio_dev **out, struct err *e)
{
	const char *label = cfg->id ? cfg->id : cfg->tap;
	struct vnet *v = calloc(1, sizeof(*v));
	int ret;

	*out = NULL;
	if (!v) {
		close(tap);
		close(vhost);
		return err_set(e, -ENOMEM, "virtio-net %s: out of memory",
			       label);
	}
	v->tap = tap;
	v->vhost = vhost;
	v->vhost_features = vhost_features;
	snprintf(v->name, sizeof(v->name), "virtio-net %s (vhost)", label);
	ret = net_pick_mac(cfg, v->mac, e);
	if (ret) {
		close(tap);
		close(vhost);
		free(v);
		return ret;
	}
	/* What wisp's own device offers, less what this vhost cannot do. */
	v->offered = (net_device_features() &
		      ~(VHOST_RING_FEATURES & ~vhost_features)) |
		     (TRANSPORT_FEATURES & vhost_features);
	virtio_dev_init(&v->vdev, v->name, VIRTIO_ID_NET, &vnet_ops, v, mem, 2,
			NET_QUEUE_SIZE, NET_CONFIG_SIZE);
	ret = virtio_remote_init(&v->rem, &v->vdev, &remote_ops, e);
	if (ret) {
		virtio_dev_fini(&v->vdev);
		close(tap);
		close(vhost);
		free(v);
		return ret;
	}
	log_info("%s: vhost-net features 0x%llx, offered 0x%llx", v->name,
		 (unsigned long long)vhost_features,
		 (unsigned long long)v->offered);
	*out = &v->vdev;
	return 0;
}
