/* SPDX-License-Identifier: MIT */
/*
 * The event loop of the main thread: one epoll set whose entries are
 * watches (an fd and the function that handles it), SIGINT/SIGTERM through
 * a signalfd, periodic timers, and a wake eventfd any thread may signal
 * to make the loop look at the VM's stop state.
 *
 * Owns: the epoll fd, the signalfd, the wake eventfd and the timerfds it
 * created. Watches are owned by their subsystems (embedded in their
 * structs) and must stay valid until loop_del or loop_destroy.
 *
 * Threads: loop_run_once runs on the main thread only; loop_add/loop_del
 * (epoll_ctl) and loop_wake are safe from any thread.
 */
#ifndef WISP_VMM_LOOP_H
#define WISP_VMM_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

struct loop_watch {
	void (*fn)(void *opaque);
	void *opaque;
	int fd;
};

struct event_loop {
	int epfd, wake_efd, sig_fd;
	struct loop_watch wake_watch, sig_watch;
	/* Called on the main thread for each SIGINT/SIGTERM. */
	void (*on_signal)(void *opaque, int signo);
	void *signal_opaque;
};

/* Sets every fd to -1 so loop_destroy is safe on a partly built loop. */
void loop_preinit(struct event_loop *l);
/* SIGINT and SIGTERM must already be blocked in every thread (vm_run
 * does that before it starts threads). On failure the caller still calls
 * loop_destroy. */
int loop_init(struct event_loop *l, void (*on_signal)(void *, int),
	      void *opaque, struct err *e);
void loop_destroy(struct event_loop *l);

/* Watches fd for input (EPOLLIN); fn(opaque) runs when it is readable or
 * hung up. Returns 0 or -errno (EPERM: fd cannot be polled, e.g. a
 * regular file). */
int loop_add(struct event_loop *l, struct loop_watch *w, int fd,
	     void (*fn)(void *), void *opaque);
void loop_del(struct event_loop *l, struct loop_watch *w);

/* A periodic CLOCK_MONOTONIC timer watched by the loop; fn runs once per
 * expiry batch (the expiry count is drained before). Returns the timerfd
 * (owned by the caller, close it after loop_del) or -errno. */
int loop_timer_add(struct event_loop *l, struct loop_watch *w,
		   void (*fn)(void *), void *opaque);
/* period_ns 0 disarms. */
void loop_timer_arm(int tfd, uint64_t period_ns);
/* Reads a timerfd's expiry count (call at the top of a timer handler);
 * false when it had not expired (a spurious wake-up). */
bool loop_timer_ack(int tfd);

/* Wakes loop_run_once from any thread. */
void loop_wake(struct event_loop *l);

/* Waits up to timeout_ms (-1: forever) and dispatches what is ready.
 * Returns 0, or -errno when epoll itself failed. */
int loop_run_once(struct event_loop *l, int timeout_ms);

#endif
