// SPDX-License-Identifier: MIT
#include "devices/serial.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "devices/outfd.h"

/* Register offsets and bits, per the 16550A data sheet. */
#define UART_RBR_THR 0
#define UART_IER 1
#define UART_IIR_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_MASK 0x0f
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_ENABLED 0xc0
#define FCR_ENABLE_FIFO 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void serial_init(struct serial *s, int out_fd, struct irq_line irq)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->out_chunk = outfd_chunk(out_fd);
	s->irq = irq;
	s->mcr = MCR_OUT2;
}

void serial_destroy(struct serial *s)
{
	pthread_mutex_destroy(&s->lock);
}

static uint8_t iir_locked(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE_FIFO) ? IIR_FIFO_ENABLED : 0;

	if ((s->ier & IER_RDI) && s->rx_count)
		return fifo | IIR_RDI;
	if ((s->ier & IER_THRI) && s->thr_ipending)
		return fifo | IIR_THRI;
	return fifo | IIR_NO_INT;
}

/* The ISA line follows "an interrupt is pending"; with the IOAPIC pin
 * edge-triggered, each idle→pending transition is one interrupt. */
static void update_irq_locked(struct serial *s)
{
	int level = !(iir_locked(s) & IIR_NO_INT);

	if (level != s->irq_level) {
		s->irq_level = level;
		s->irq_gen++;
		irq_line_set(&s->irq, level);
	}
}

static void rx_put_locked(struct serial *s, uint8_t b)
{
	if (s->rx_count == SERIAL_RX_SIZE) {
		s->rx_was_full = true;
		return;
	}
	s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_SIZE] = b;
	s->rx_count++;
}

/* Writes as much of the backlog as the fd takes without blocking. */
static void tx_flush_locked(struct serial *s)
{
	while (s->tx_count && s->out_fd >= 0) {
		size_t len = SERIAL_TX_SIZE - s->tx_head;
		ssize_t n;

		if (len > s->tx_count)
			len = s->tx_count;
		len = outfd_room(s->out_fd, s->out_chunk, len);
		if (!len)
			return;
		n = write(s->out_fd, s->tx + s->tx_head, len);
		if (n > 0) {
			s->out_written += (uint64_t)n;
			s->tx_head = (s->tx_head + (size_t)n) % SERIAL_TX_SIZE;
			s->tx_count -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* A closed or broken console must not stop the guest: drop
		 * the backlog and write nothing more. */
		s->out_dropped += s->tx_count;
		s->tx_count = 0;
		s->out_fd = -1;
		s->out_broken = true;
	}
}

static void tx_byte_locked(struct serial *s, uint8_t b)
{
	if (s->mcr & MCR_LOOP) {
		rx_put_locked(s, b);
		return;
	}
	if (s->out_fd < 0) {
		/* No console is not a loss; a broken one is. */
		s->out_dropped += s->out_broken;
		return;
	}
	tx_flush_locked(s);
	if (s->tx_count == SERIAL_TX_SIZE) {
		s->out_dropped++;
		s->thre_owed = true;
		return;
	}
	s->tx[(s->tx_head + s->tx_count) % SERIAL_TX_SIZE] = b;
	s->tx_count++;
	tx_flush_locked(s);
}

/* Lock held. True when posting stopped just now. */
static bool post_stop_locked(struct serial *s)
{
	s->post_run = 0;
	/* Should the zone refuse to go, later bytes are late (at the next
	 * drain), never lost; the next register write tries again. */
	if (s->posted && s->post.set(s->post.opaque, false) == 0) {
		s->posted = false;
		return true;
	}
	return false;
}

/* See serial.h: posting is safe while a THR write owes nothing before the
 * next exit. thr_exit: this call is a THR byte that exited. True when
 * posting stopped just now. */
static bool post_update_locked(struct serial *s, bool thr_exit)
{
	bool safe = !(s->ier & IER_THRI) && !(s->mcr & MCR_LOOP);

	if (!s->post.set)
		return false;
	if (!safe)
		return post_stop_locked(s);
	if (s->posted || s->post_failed || !thr_exit ||
	    ++s->post_run < SERIAL_POST_AFTER)
		return false;
	if (s->post.set(s->post.opaque, true) == 0)
		s->posted = true;
	else
		s->post_failed = true; /* no coalesced PIO here: as before */
	return false;
}

static void post_drain(struct serial *s, bool stopped)
{
	if (stopped && s->post.drain)
		s->post.drain(s->post.opaque);
}

static void serial_read(void *opaque, int cpu, uint64_t off, uint8_t *data,
			uint32_t len)
{
	struct serial *s = opaque;
	bool notify = false;
	uint8_t v = 0;

	pthread_mutex_lock(&s->lock);
	switch (off) {
	case UART_RBR_THR:
		if (s->lcr & LCR_DLAB) {
			v = s->dll;
		} else if (s->rx_count) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
			s->rx_count--;
			if (s->rx_was_full &&
			    s->rx_count <= SERIAL_RX_SIZE / 2) {
				s->rx_was_full = false;
				notify = true;
			}
		}
		break;
	case UART_IER:
		v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
		break;
	case UART_IIR_FCR:
		v = iir_locked(s);
		s->irq_gen++;
		/* Reading IIR acknowledges a THR-empty interrupt. */
		if ((v & 0x0f) == IIR_THRI)
			s->thr_ipending = false;
		break;
	case UART_LCR:
		v = s->lcr;
		break;
	case UART_MCR:
		v = s->mcr;
		break;
	case UART_LSR:
		/* Polling drivers read LSR while they wait for THRE: the
		 * moment to retry the backlog. TEMT follows THRE because the
		 * backlog is the host's buffering, not a busy shift
		 * register. */
		tx_flush_locked(s);
		if (s->tx_count < SERIAL_TX_SIZE)
			v |= LSR_THRE | LSR_TEMT;
		else
			s->thre_owed = true;
		if (s->rx_count)
			v |= LSR_DR;
		break;
	case UART_MSR:
		if (s->mcr & MCR_LOOP)
			v = ((s->mcr & MCR_RTS) ? MSR_CTS : 0) |
			    ((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
			    ((s->mcr & MCR_OUT1) ? MSR_RI : 0) |
			    ((s->mcr & MCR_OUT2) ? MSR_DCD : 0);
		else
			v = MSR_DCD | MSR_DSR | MSR_CTS;
		break;
	case UART_SCR:
		v = s->scr;
		break;
	}
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
	/* Only the first byte is a register; wider accesses read zeros. */
	memset(data, 0, len);
	data[0] = v;
	if (notify && s->rx_space)
		s->rx_space(s->rx_space_opaque);
}

static void serial_write(void *opaque, int cpu, uint64_t off,
			 const uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;
	bool notify = false, thr_exit = false, stopped;
	uint8_t v = data[0];

	pthread_mutex_lock(&s->lock);
	s->hist[s->hist_pos++ % SERIAL_HIST] = (uint16_t)(off << 8 | v);
	switch (off) {
	case UART_RBR_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
		} else {
			tx_byte_locked(s, v);
			s->thr_ipending = true;
			thr_exit = cpu != BUS_CPU_NONE;
			if (thr_exit)
				s->thr_exited++;
			else
				s->thr_drained++;
		}
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
		} else {
			/* Enabling THRI with an empty THR raises it at once,
			 * as on hardware; drivers rely on this to start
			 * transmission. */
			if (!(s->ier & IER_THRI) && (v & IER_THRI))
				s->thr_ipending = true;
			s->ier = v & IER_MASK;
		}
		break;
	case UART_IIR_FCR:
		if (v & FCR_CLEAR_RX) {
			s->rx_head = s->rx_count = 0;
			/* An emptied buffer is room like any other: whoever
			 * paused on it is owed the wake-up. */
			notify = s->rx_was_full;
			s->rx_was_full = false;
		}
		s->fcr = v & (FCR_ENABLE_FIFO | 0xc0);
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default: /* LSR, MSR: read-only */
		break;
	}
	stopped = post_update_locked(s, thr_exit);
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
	/* Not from the drain itself (BUS_CPU_NONE): it holds the drain's
	 * lock and goes on until the ring is empty anyway. */
	post_drain(s, stopped && cpu != BUS_CPU_NONE);
	if (notify && s->rx_space)
		s->rx_space(s->rx_space_opaque);
}

const struct bus_ops serial_bus_ops = {
	.read = serial_read,
	.write = serial_write,
};

size_t serial_push_input(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_count < SERIAL_RX_SIZE)
		rx_put_locked(s, buf[n++]);
	if (s->rx_count == SERIAL_RX_SIZE)
		s->rx_was_full = true;
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial_post_idle(struct serial *s)
{
	bool stopped;

	pthread_mutex_lock(&s->lock);
	stopped = post_stop_locked(s);
	pthread_mutex_unlock(&s->lock);
	post_drain(s, stopped);
}

bool serial_posting(struct serial *s)
{
	bool on;

	pthread_mutex_lock(&s->lock);
	on = s->posted;
	pthread_mutex_unlock(&s->lock);
	return on;
}

bool serial_post_recheck_locked(struct serial *s)
{
	return post_update_locked(s, false);
}

bool serial_rx_paused(struct serial *s)
{
	bool paused;

	pthread_mutex_lock(&s->lock);
	paused = s->rx_was_full;
	pthread_mutex_unlock(&s->lock);
	return paused;
}

uint64_t serial_out_dropped(struct serial *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->lock);
	n = s->out_dropped;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial_tx_retry(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->tx_count)
		tx_flush_locked(s);
	if (s->thre_owed && s->tx_count < SERIAL_TX_SIZE) {
		s->thre_owed = false;
		s->thr_ipending = true;
		update_irq_locked(s);
	}
	pthread_mutex_unlock(&s->lock);
}

bool serial_irq_check(struct serial *s, struct serial_irq_watch *w,
		      uint64_t now_ns, uint64_t limit_ns)
{
	bool pulse = false;

	pthread_mutex_lock(&s->lock);
	if (!s->irq_level || s->irq_gen != w->gen || !w->since_ns) {
		w->gen = s->irq_gen;
		w->since_ns = now_ns;
	} else if (now_ns - w->since_ns >= limit_ns) {
		w->since_ns = now_ns;
		irq_line_set(&s->irq, 0);
		irq_line_set(&s->irq, 1);
		w->reraised++;
		pulse = true;
	}
	pthread_mutex_unlock(&s->lock);
	return pulse;
}

void serial_describe(struct serial *s, char *buf, size_t len)
{
	size_t o;

	pthread_mutex_lock(&s->lock);
	o = (size_t)snprintf(
		buf, len,
		"IER 0x%02x IIR 0x%02x LCR 0x%02x MCR 0x%02x, THR-empty "
		"pending %d, line %d, rx %zu, tx backlog %zu, posting %d; THR "
		"bytes %llu by exit, %llu posted, %llu written, %llu dropped%s; "
		"last writes (reg:value)",
		s->ier, iir_locked(s), s->lcr, s->mcr, s->thr_ipending,
		s->irq_level, s->rx_count, s->tx_count, s->posted,
		(unsigned long long)s->thr_exited,
		(unsigned long long)s->thr_drained,
		(unsigned long long)s->out_written,
		(unsigned long long)s->out_dropped,
		s->out_broken ? " (output broken)" : "");
	for (unsigned i =
		     s->hist_pos > SERIAL_HIST ? s->hist_pos - SERIAL_HIST : 0;
	     i < s->hist_pos && o < len; i++) {
		uint16_t h = s->hist[i % SERIAL_HIST];

		o += (size_t)snprintf(buf + o, len - o, " %u:%02x", h >> 8,
				      h & 0xff);
	}
	pthread_mutex_unlock(&s->lock);
}
