// SPDX-License-Identifier: MIT
#include "virtio/iothread.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/seccomp.h"
#include "util/log.h"
#include "util/time.h"

/* epoll data: queue index, or these for the control and watch fds. */
#define EV_STOP IOT_TAG_STOP
#define EV_PAUSE IOT_TAG_PAUSE
#define EV_WATCH_BASE IOT_TAG_WATCH_BASE

static void park(struct virtio_iothread *t)
{
	struct virtio_dev *d = t->dev;
	uint64_t cnt;

	if (read(t->pause_efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("%s: I/O thread pause: %s", d->name, strerror(errno));
	pthread_mutex_lock(&d->lock);
	if (d->ops->quiesce)
		d->ops->quiesce(d);
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_lock(&t->pm);
	if (t->pause_req) {
		t->parked = true;
		pthread_cond_broadcast(&t->pc);
		while (t->pause_req && !t->stopping)
			pthread_cond_wait(&t->pc, &t->pm);
		t->parked = false;
	}
	pthread_mutex_unlock(&t->pm);
}

static void *iothread_main(void *arg)
{
	struct virtio_iothread *t = arg;
	struct virtio_dev *d = t->dev;

	/* Before the first doorbell (docs/sandbox.md); in a server the
	 * server's filter, inherited, is what applies. */
	sb_seccomp_enter(SB_IOTHREAD);
	for (;;) {
		struct epoll_event evs[VIRTIO_MAX_QUEUES + 3];
		int n;

		__atomic_store_n(&t->busy_ns, 0, __ATOMIC_RELAXED);
		n = epoll_wait(t->epfd, evs,
			       (int)(sizeof(evs) / sizeof(evs[0])), -1);
		__atomic_store_n(&t->busy_ns, now_ns(), __ATOMIC_RELAXED);
		__atomic_store_n(&t->wakeups, t->wakeups + 1, __ATOMIC_RELAXED);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("%s: I/O thread: epoll_wait: %s", d->name,
				  strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64, cnt;

			__atomic_store_n(&t->busy_tag, (uint32_t)tag,
					 __ATOMIC_RELAXED);
			if (tag == EV_STOP)
				return NULL;
			if (tag == EV_PAUSE) {
				park(t);
				continue;
			}
			if (tag >= EV_WATCH_BASE) {
				int fd = d->watch_fds[tag - EV_WATCH_BASE];

				pthread_mutex_lock(&d->lock);
				if (d->ops->fd_ready)
					d->ops->fd_ready(d, fd);
				pthread_mutex_unlock(&d->lock);
				continue;
			}
			/* Drain the counter first: a kick that lands while
			 * the handler runs re-arms the fd. */
			if (read(t->kick_efd[tag], &cnt, sizeof(cnt)) < 0 &&
			    errno != EAGAIN)
				continue;
			virtio_dev_kick(d, (int)tag);
		}
	}
}

int virtio_iothread_start(struct virtio_iothread *t, struct virtio_dev *d,
			  const int *kick_efds, struct err *e)
{
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t all, old;
	int ret;

	memset(t, 0, sizeof(*t));
	t->dev = d;
	t->stop_efd = t->pause_efd = -1;
	pthread_mutex_init(&t->pm, NULL);
	pthread_cond_init(&t->pc, NULL);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd < 0)
		return err_set(e, -errno, "%s: epoll: %s", d->name,
			       strerror(errno));
	t->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->stop_efd < 0)
		return err_set(e, -errno, "%s: eventfd: %s", d->name,
			       strerror(errno));
	ev.data.u64 = EV_STOP;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->stop_efd, &ev) < 0)
		return err_set(e, -errno, "%s: epoll_ctl: %s", d->name,
			       strerror(errno));
	t->pause_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->pause_efd < 0)
		return err_set(e, -errno, "%s: eventfd: %s", d->name,
			       strerror(errno));
	ev.data.u64 = EV_PAUSE;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->pause_efd, &ev) < 0)
		return err_set(e, -errno, "%s: epoll_ctl: %s", d->name,
			       strerror(errno));
	/* Queues run elsewhere: their doorbells are the back-end's. */
	for (int q = 0; q < d->nr_queues && !d->remote_queues; q++) {
		t->kick_efd[q] = kick_efds[q];
		ev.data.u64 = (uint64_t)q;
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, kick_efds[q], &ev) < 0)
			return err_set(e, -errno, "%s: epoll_ctl: %s", d->name,
				       strerror(errno));
	}
	for (int i = 0; i < d->nr_watch_fds; i++) {
		ev.data.u64 = EV_WATCH_BASE + (uint64_t)i;
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, d->watch_fds[i], &ev) < 0)
			return err_set(e, -errno, "%s: epoll_ctl: %s", d->name,
				       strerror(errno));
	}
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = pthread_create(&t->thread, NULL, iothread_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return err_set(e, -ret, "%s: I/O thread: %s", d->name,
			       strerror(ret));
	t->started = true;
	return 0;
}

void virtio_iothread_stop(struct virtio_iothread *t)
{
	uint64_t one = 1;

	if (t->started) {
		/* A parked thread waits on the condition, not on epoll. */
		pthread_mutex_lock(&t->pm);
		t->stopping = true;
		pthread_cond_broadcast(&t->pc);
		pthread_mutex_unlock(&t->pm);
		if (write(t->stop_efd, &one, sizeof(one)) < 0)
			log_warn("%s: I/O thread stop: %s", t->dev->name,
				 strerror(errno));
		pthread_join(t->thread, NULL);
		t->started = false;
	}
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->stop_efd >= 0)
		close(t->stop_efd);
	if (t->pause_efd >= 0)
		close(t->pause_efd);
	if (t->dev) {
		pthread_mutex_destroy(&t->pm);
		pthread_cond_destroy(&t->pc);
	}
	t->epfd = t->stop_efd = t->pause_efd = -1;
	t->dev = NULL;
}

int virtio_iothread_pause(struct virtio_iothread *t, int timeout_ms)
{
	uint64_t one = 1, deadline;
	int ret = 0;

	if (!t->started)
		return 0;
	pthread_mutex_lock(&t->pm);
	t->pause_req = true;
	pthread_mutex_unlock(&t->pm);
	if (write(t->pause_efd, &one, sizeof(one)) < 0)
		log_warn("%s: I/O thread pause: %s", t->dev->name,
			 strerror(errno));
	deadline = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	pthread_mutex_lock(&t->pm);
	while (!t->parked && ret == 0) {
		struct timespec ts;
		uint64_t left = deadline > now_ns() ? deadline - now_ns() : 0;

		if (!left) {
			ret = -ETIMEDOUT;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(left / 1000000000ULL);
		ts.tv_nsec += (long)(left % 1000000000ULL);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&t->pc, &t->pm, &ts);
	}
	if (ret)
		t->pause_req = false;
	pthread_mutex_unlock(&t->pm);
	return ret;
}

void virtio_iothread_resume(struct virtio_iothread *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(&t->pm);
	t->pause_req = false;
	pthread_cond_broadcast(&t->pc);
	pthread_mutex_unlock(&t->pm);
}
