/* SPDX-License-Identifier: MIT */
/*
 * eventfd signal, drain and wait that stay bounded whatever a peer does
 * to the fd. A device server that was handed one of our eventfds shares
 * its open file description: it can clear O_NONBLOCK (making read and
 * write block) and fill the counter to its maximum (making a write block
 * until someone reads). Nothing here waits on that:
 *  - drain reads with preadv2(RWF_NOWAIT), which eventfds honour (Linux
 *    5.12 and later); where it is not supported it falls back to the
 *    bounded read below;
 *  - signal cannot use RWF_NOWAIT (eventfd writes do not take it), so it
 *    writes with a one-shot timer armed on the calling thread: if the
 *    write blocks, the timer's signal (EFD_SIGNAL, no SA_RESTART)
 *    interrupts it after EFD_BLOCK_BOUND_MS;
 *  - wait polls with a deadline.
 */
#ifndef WISP_UTIL_EFD_H
#define WISP_UTIL_EFD_H

#include <signal.h>
#include <stdint.h>

/* Longest a signal (or a fallback read) may block on a hostile fd. */
#define EFD_BLOCK_BOUND_MS 10
/* The timer's signal (its handler is installed on first use, from any
 * thread: the seccomp tables allow exactly this one): a real-time signal
 * nothing else in wisp uses; glibc's SIGRTMIN already skips the ones it
 * keeps for itself. */
#define EFD_SIGNAL (SIGRTMIN + 3)

/* Adds 1. Returns 0; -EAGAIN when the counter is full (a peer filled it:
 * nothing was added); or another -errno. fd < 0 is a no-op (0). */
int efd_signal(int fd);

/* For an eventfd this process created non-blocking and shares with no
 * other process (so its flags are its own): one plain write, as cheap as
 * it gets. Same returns as efd_signal(). */
int efd_signal_private(int fd);

/* Reads and resets the counter without blocking: returns its value (0 if
 * it was 0; a peer's value above INT64_MAX reads as INT64_MAX) or
 * -errno. */
int64_t efd_drain(int fd);

/* Waits until fd is readable or the CLOCK_MONOTONIC deadline (now_ns()
 * time) passes. Returns 1 readable, 0 deadline passed, -errno. */
int efd_wait(int fd, uint64_t deadline_ns);

#endif
