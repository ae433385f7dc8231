// SPDX-License-Identifier: MIT
#include "virtio/remote.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util/efd.h"
#include "util/log.h"

/* epoll data: kind in the high bits, queue in the low ones. */
#define TAG_ERR 0x200
#define TAG_SOCK 0x300
#define TAG_TIMER 0x400

static int add(struct virtio_remote *r, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void virtio_remote_fini(struct virtio_remote *r)
{
	for (int q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		if (r->err[q] >= 0)
			close(r->err[q]);
		r->err[q] = -1;
	}
	if (r->timer >= 0)
		close(r->timer);
	if (r->epfd >= 0)
		close(r->epfd);
	r->timer = r->epfd = -1;
	r->sock = -1;
}

int virtio_remote_init(struct virtio_remote *r, struct virtio_dev *d,
		       const struct virtio_remote_ops *ops, struct err *e)
{
	int ret = 0;

	memset(r, 0, sizeof(*r));
	r->dev = d;
	r->ops = ops;
	r->sock = -1;
	r->timer = -1;
	for (int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		r->err[q] = -1;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		ret = err_set(e, -errno, "%s: epoll: %s", d->name,
			      strerror(errno));
		goto fail;
	}
	for (int q = 0; q < d->nr_queues && !ret; q++) {
		r->err[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (r->err[q] < 0)
			ret = err_set(e, -errno, "%s: eventfd: %s", d->name,
				      strerror(errno));
		else if (add(r, r->err[q], TAG_ERR | (uint64_t)q))
			ret = err_set(e, -errno, "%s: epoll_ctl: %s", d->name,
				      strerror(errno));
	}
	if (ret)
		goto fail;
	r->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (r->timer < 0 || add(r, r->timer, TAG_TIMER)) {
		ret = err_set(e, -errno, "%s: timerfd: %s", d->name,
			      strerror(errno));
		goto fail;
	}
	d->remote_queues = true;
	d->watch_fds[0] = r->epfd;
	d->nr_watch_fds = 1;
	return 0;
fail:
	virtio_remote_fini(r);
	return ret;
}

int virtio_remote_watch(struct virtio_remote *r, int sock)
{
	if (r->sock >= 0)
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->sock, NULL);
	r->sock = -1;
	if (sock < 0)
		return 0;
	if (add(r, sock, TAG_SOCK))
		return -errno;
	r->sock = sock;
	return 0;
}

int virtio_remote_timer(struct virtio_remote *r, unsigned int interval_ms)
{
	struct itimerspec its = { 0 };

	its.it_interval.tv_sec = interval_ms / 1000;
	its.it_interval.tv_nsec = (long)(interval_ms % 1000) * 1000000L;
	its.it_value = its.it_interval;
	return timerfd_settime(r->timer, 0, &its, NULL) < 0 ? -errno : 0;
}

void virtio_remote_fd_ready(struct virtio_remote *r)
{
	struct epoll_event evs[VIRTIO_MAX_QUEUES + 2];
	int n = epoll_wait(r->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])),
			   0);

	for (int i = 0; i < n; i++) {
		uint64_t tag = evs[i].data.u64, cnt;
		int q = (int)(tag & 0xff);

		switch (tag & ~0xffull) {
		case TAG_ERR:
			if (efd_drain(r->err[q]) > 0 && r->ops->ring_error)
				r->ops->ring_error(r->dev, q);
			break;
		case TAG_SOCK:
			if (r->ops->sock_ready)
				r->ops->sock_ready(r->dev);
			break;
		case TAG_TIMER:
			if (read(r->timer, &cnt, sizeof(cnt)) == sizeof(cnt) &&
			    r->ops->timer)
				r->ops->timer(r->dev);
			break;
		}
	}
}

int virtio_remote_fail_pending(struct virtio_dev *d, int q,
			       virtio_fail_chain_fn fail, int budget)
{
	struct virtq vq = d->vq[q];
	struct virtq_chain *c;
	const char *why = NULL;
	int n = 0;

	if (!vq.ready || !vq.size)
		return 0;
	c = malloc(sizeof(*c));
	if (!c)
		return 0;
	vq.last_avail = vq.used_idx = virtq_used_idx_in_ring(&vq);
	while (n < budget && n < vq.size && virtq_pop(&vq, c, &why) == 1) {
		if (!fail(c))
			break;
		virtq_push(&vq, c->head, 1);
		n++;
	}
	free(c);
	/* The driver kicks only past avail_event (EVENT_IDX): a back-end
	 * that died left it where it stopped, so publish where the ring
	 * really is, or the next back-end would never hear of new buffers. */
	virtq_update_avail_event(&vq);
	if (n)
		virtio_dev_raise_vring(d);
	return n;
}
