// SPDX-License-Identifier: MIT
#include "vmm/term.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Written by term_raw_enter() on the main thread before any other thread
 * starts; read by term_restore(), which may run in a signal handler. */
static struct termios saved;
static int saved_fd = -1;
static volatile sig_atomic_t raw;

void term_restore(void)
{
	if (raw && saved_fd >= 0) {
		tcsetattr(saved_fd, TCSANOW, &saved);
		raw = 0;
	}
}

bool term_is_raw(void)
{
	return raw;
}

static void fatal_handler(int sig)
{
	term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

int term_raw_enter(int fd)
{
	static const int fatal[] = { SIGSEGV, SIGBUS,  SIGABRT, SIGFPE,
				     SIGILL,  SIGQUIT, SIGHUP };
	struct termios t;

	if (!isatty(fd))
		return -ENOTTY;
	if (tcgetattr(fd, &saved) < 0)
		return -errno;
	t = saved;
	/* No line editing, no signals from ^C (it belongs to the guest),
	 * no CR/NL translation; output processing kept so the guest's
	 * "\r\n" reaches the screen unchanged either way. */
	t.c_iflag &= ~(unsigned)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR |
				 IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(unsigned)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= ~(unsigned)(CSIZE | PARENB);
	t.c_cflag |= CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return -errno;
	saved_fd = fd;
	raw = 1;
	atexit(term_restore);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = fatal_handler;
		sigaction(fatal[i], &sa, NULL);
	}
	return 0;
}
