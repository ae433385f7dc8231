// SPDX-License-Identifier: MIT
#include "vmm/console_in.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <unistd.h>

#include "devices/console/console.h"
#include "util/log.h"
#include "vmm/term.h"

static void handle_stdin(void *opaque);

void console_in_init(struct console_in *c, struct event_loop *loop,
		     struct serial *serial, struct virtio_dev *vconsole,
		     void (*on_escape)(void *), void *opaque)
{
	c->loop = loop;
	c->serial = serial;
	c->vconsole = vconsole;
	c->on_escape = on_escape;
	c->opaque = opaque;
	c->attached = true;
	c->watch.fd = -1;
	pthread_mutex_init(&c->lock, NULL);
}

void console_in_start(struct console_in *c)
{
	if (!c->attached)
		return;
	pthread_mutex_lock(&c->lock);
	if (loop_add(c->loop, &c->watch, STDIN_FILENO, handle_stdin, c) == 0)
		c->polled = true;
	else
		c->attached = false;
	pthread_mutex_unlock(&c->lock);
}

void console_in_space(void *opaque)
{
	struct console_in *c = opaque;

	pthread_mutex_lock(&c->lock);
	c->space_seen = true;
	if (c->attached && !c->polled &&
	    loop_add(c->loop, &c->watch, STDIN_FILENO, handle_stdin, c) == 0)
		c->polled = true;
	pthread_mutex_unlock(&c->lock);
}

static bool rx_paused(struct console_in *c)
{
	return c->vconsole ? vconsole_rx_paused(c->vconsole) :
			     serial_rx_paused(c->serial);
}

/* force: EOF, stop reading whatever the device said. */
static void pause_stdin(struct console_in *c, bool force)
{
	pthread_mutex_lock(&c->lock);
	if (force)
		c->attached = false;
	if (c->polled && (force || !c->space_seen)) {
		loop_del(c->loop, &c->watch);
		c->polled = false;
	}
	pthread_mutex_unlock(&c->lock);
	/* The device owes an rx-space callback only while it is paused; if
	 * it made room in between, resume here instead of waiting for a
	 * callback that already ran. */
	if (!force && !rx_paused(c))
		console_in_space(c);
}

/* Returns false when the console could not take everything. */
static bool forward_input(struct console_in *c, const uint8_t *buf, size_t n)
{
	uint8_t out[512];
	size_t o = 0, taken;
	bool tty = term_is_raw();

	for (size_t i = 0; i < n && o < sizeof(out); i++) {
		uint8_t ch = buf[i];

		if (tty && c->escape_pending) {
			c->escape_pending = false;
			if (ch == 'x' || ch == 'X') {
				log_info("console escape: stopping the VM");
				c->on_escape(c->opaque);
				return true;
			}
			if (ch != CONSOLE_ESCAPE)
				continue;
		} else if (tty && ch == CONSOLE_ESCAPE) {
			c->escape_pending = true;
			continue;
		}
		out[o++] = ch;
	}
	if (c->vconsole)
		taken = vconsole_push_input(c->vconsole, out, o);
	else
		taken = serial_push_input(c->serial, out, o);
	if (taken < o)
		log_warn("console input: guest not reading, dropped %zu bytes",
			 o - taken);
	return taken == o;
}

static void handle_stdin(void *opaque)
{
	struct console_in *c = opaque;
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	uint8_t buf[512];
	ssize_t n;

	/* stdin may be blocking (it is shared with the shell): read only
	 * what is there, a stale event must not stall the loop. */
	if (poll(&p, 1, 0) != 1)
		return;
	n = read(STDIN_FILENO, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* EOF or error: the guest keeps running without input. */
		pause_stdin(c, true);
		return;
	}
	pthread_mutex_lock(&c->lock);
	c->space_seen = false;
	pthread_mutex_unlock(&c->lock);
	/* Stop reading while the guest has no room; the console's rx-space
	 * callback re-arms stdin. */
	if (!forward_input(c, buf, (size_t)n) || rx_paused(c))
		pause_stdin(c, false);
}

void console_in_destroy(struct console_in *c)
{
	pthread_mutex_destroy(&c->lock);
}
