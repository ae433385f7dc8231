// SPDX-License-Identifier: MIT
#include "vmm/loop.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util/log.h"

void loop_preinit(struct event_loop *l)
{
	memset(l, 0, sizeof(*l));
	l->epfd = l->wake_efd = l->sig_fd = -1;
}

static void drain_wake(void *opaque)
{
	struct event_loop *l = opaque;
	uint64_t v;

	/* The wake eventfd is ours alone and non-blocking. */
	if (read(l->wake_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("event loop: wake eventfd: %s", strerror(errno));
}

static void read_signals(void *opaque)
{
	struct event_loop *l = opaque;
	struct signalfd_siginfo si;

	while (read(l->sig_fd, &si, sizeof(si)) == sizeof(si))
		if (l->on_signal)
			l->on_signal(l->signal_opaque, (int)si.ssi_signo);
}

int loop_init(struct event_loop *l, void (*on_signal)(void *, int),
	      void *opaque, struct err *e)
{
	sigset_t mask;
	int ret;

	l->on_signal = on_signal;
	l->signal_opaque = opaque;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return err_set(e, -errno, "event loop: epoll: %s",
			       strerror(errno));
	l->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_efd < 0)
		return err_set(e, -errno, "event loop: eventfd: %s",
			       strerror(errno));
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1); /* the state dump (watchdog.h) */
	l->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (l->sig_fd < 0)
		return err_set(e, -errno, "event loop: signalfd: %s",
			       strerror(errno));
	ret = loop_add(l, &l->wake_watch, l->wake_efd, drain_wake, l);
	if (!ret)
		ret = loop_add(l, &l->sig_watch, l->sig_fd, read_signals, l);
	if (ret)
		return err_set(e, ret, "event loop: epoll_ctl: %s",
			       strerror(-ret));
	return 0;
}

void loop_destroy(struct event_loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wake_efd >= 0)
		close(l->wake_efd);
	if (l->sig_fd >= 0)
		close(l->sig_fd);
	l->epfd = l->wake_efd = l->sig_fd = -1;
}

int loop_add(struct event_loop *l, struct loop_watch *w, int fd,
	     void (*fn)(void *), void *opaque)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };

	w->fn = fn;
	w->opaque = opaque;
	w->fd = fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

void loop_del(struct event_loop *l, struct loop_watch *w)
{
	if (w->fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

int loop_timer_add(struct event_loop *l, struct loop_watch *w,
		   void (*fn)(void *), void *opaque)
{
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	int ret;

	if (tfd < 0)
		return -errno;
	ret = loop_add(l, w, tfd, fn, opaque);
	if (ret) {
		close(tfd);
		return ret;
	}
	return tfd;
}

void loop_timer_arm(int tfd, uint64_t period_ns)
{
	struct itimerspec it = {
		{ (time_t)(period_ns / 1000000000ULL),
		  (long)(period_ns % 1000000000ULL) },
		{ (time_t)(period_ns / 1000000000ULL),
		  (long)(period_ns % 1000000000ULL) },
	};

	if (tfd >= 0)
		timerfd_settime(tfd, 0, &it, NULL);
}

bool loop_timer_ack(int tfd)
{
	uint64_t ticks;

	return read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks);
}

void loop_wake(struct event_loop *l)
{
	uint64_t one = 1;

	if (write(l->wake_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("event loop: wake eventfd: %s", strerror(errno));
}

int loop_run_once(struct event_loop *l, int timeout_ms)
{
	struct epoll_event evs[8];
	int n = epoll_wait(l->epfd, evs, 8, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct loop_watch *w = evs[i].data.ptr;

		w->fn(w->opaque);
	}
	return 0;
}
