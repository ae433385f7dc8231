// SPDX-License-Identifier: MIT
#include "util/efd.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "util/time.h"

static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static pthread_key_t timer_key;
static int handler_err;

static void on_timer(int sig)
{
	(void)sig; /* only there to interrupt the blocked syscall */
}

static void free_timer(void *p)
{
	timer_t *t = p;

	timer_delete(*t);
	free(t);
}

static void install_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_timer;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the write must return EINTR */
	if (sigaction(EFD_SIGNAL, &sa, NULL) < 0)
		handler_err = -errno;
	else if (pthread_key_create(&timer_key, free_timer))
		handler_err = -EAGAIN;
}

/* This thread's one-shot timer (created on first use, deleted when the
 * thread exits). */
static int thread_timer(timer_t **out)
{
	timer_t *t;
	struct sigevent sev;
	sigset_t unblock;

	pthread_once(&handler_once, install_handler);
	if (handler_err)
		return handler_err;
	t = pthread_getspecific(timer_key);
	if (!t) {
		t = malloc(sizeof(*t));
		if (!t)
			return -ENOMEM;
		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_THREAD_ID;
		sev.sigev_signo = EFD_SIGNAL;
		sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
		if (timer_create(CLOCK_MONOTONIC, &sev, t) < 0) {
			int ret = -errno;

			free(t);
			return ret;
		}
		pthread_setspecific(timer_key, t);
		/* Only this thread's own timer sends it, and only while a
		 * read or write is armed: it can stay unblocked. */
		sigemptyset(&unblock);
		sigaddset(&unblock, EFD_SIGNAL);
		pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
	}
	*out = t;
	return 0;
}

/* read(2) or write(2) of 8 bytes that a blocking fd cannot hold longer
 * than EFD_BLOCK_BOUND_MS: an armed timer interrupts it. */
static ssize_t bounded_rw(int fd, uint64_t *v, int write_it)
{
	struct itimerspec arm = { .it_value = { 0, EFD_BLOCK_BOUND_MS *
							   1000000L } };
	struct itimerspec off = { 0 };
	timer_t *t = NULL;
	ssize_t n;
	int ret, err;

	ret = thread_timer(&t);
	if (ret)
		return ret;
	timer_settime(*t, 0, &arm, NULL);
	for (;;) {
		struct itimerspec left;

		n = write_it ? write(fd, v, sizeof(*v)) :
			       read(fd, v, sizeof(*v));
		err = errno;
		/* Another signal (a vCPU kick) is no reason to give up
		 * while the bound has time left. */
		if (n >= 0 || err != EINTR || timer_gettime(*t, &left) < 0 ||
		    (!left.it_value.tv_sec && !left.it_value.tv_nsec))
			break;
	}
	timer_settime(*t, 0, &off, NULL);
	if (n < 0)
		return err == EINTR ? -EAGAIN : -err;
	return n;
}

int efd_signal(int fd)
{
	uint64_t one = 1;
	ssize_t n;

	if (fd < 0)
		return 0;
	/* A non-blocking fd answers EAGAIN when full; a blocking one is
	 * interrupted by the timer, which reads as the same. */
	n = bounded_rw(fd, &one, 1);
	if (n < 0)
		return (int)n;
	return n == sizeof(one) ? 0 : -EIO;
}

int efd_signal_private(int fd)
{
	uint64_t one = 1;
	ssize_t n;

	if (fd < 0)
		return 0;
	do
		n = write(fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == sizeof(one) ? 0 : -EIO;
}

int64_t efd_drain(int fd)
{
	struct iovec iov;
	uint64_t v = 0;
	ssize_t n;

	iov.iov_base = &v;
	iov.iov_len = sizeof(v);
	do
		n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EOPNOTSUPP) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 0) == 0)
			return 0;
		n = bounded_rw(fd, &v, 0);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return n;
	} else if (n < 0) {
		return errno == EAGAIN ? 0 : -errno;
	}
	if (n != sizeof(v))
		return -EIO;
	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

int efd_wait(int fd, uint64_t deadline_ns)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (;;) {
		uint64_t now = now_ns();
		int ms, r;

		if (now >= deadline_ns)
			ms = 0;
		else
			ms = (int)((deadline_ns - now + 999999) / 1000000);
		r = poll(&p, 1, ms);
		if (r > 0)
			return 1;
		if (r == 0 && ms == 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}
