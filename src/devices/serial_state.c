// SPDX-License-Identifier: MIT
/* The 8250's snapshot state: its registers, the interrupt line's level,
 * input not read yet and output not written yet. */
#include <errno.h>
#include <string.h>

#include "devices/serial.h"

#define STATE_VERSION 1

void serial_save(struct serial *s, struct ser_w *w)
{
	pthread_mutex_lock(&s->lock);
	ser_u32(w, STATE_VERSION);
	ser_u8(w, s->ier);
	ser_u8(w, s->lcr);
	ser_u8(w, s->mcr);
	ser_u8(w, s->scr);
	ser_u8(w, s->fcr);
	ser_u8(w, s->dll);
	ser_u8(w, s->dlm);
	ser_u8(w, s->thr_ipending);
	ser_u8(w, s->irq_level ? 1 : 0);
	ser_u32(w, (uint32_t)s->rx_count);
	for (size_t i = 0; i < s->rx_count; i++)
		ser_u8(w, s->rx[(s->rx_head + i) % SERIAL_RX_SIZE]);
	ser_u32(w, (uint32_t)s->tx_count);
	for (size_t i = 0; i < s->tx_count; i++)
		ser_u8(w, s->tx[(s->tx_head + i) % SERIAL_TX_SIZE]);
	pthread_mutex_unlock(&s->lock);
}

int serial_load(struct serial *s, const uint8_t *p, uint64_t len, struct err *e)
{
	struct ser_r r = { p, (size_t)len, 0, false };
	bool stopped;
	uint8_t reg[7], rx[SERIAL_RX_SIZE], tx[SERIAL_TX_SIZE];
	const uint8_t *b;
	uint32_t nrx, ntx;
	bool thr, level;

	if (deser_u32(&r) != STATE_VERSION)
		r.fail = true;
	for (int i = 0; i < 7; i++)
		reg[i] = deser_u8(&r);
	thr = deser_bool(&r);
	level = deser_bool(&r);
	nrx = deser_u32(&r);
	if (nrx > SERIAL_RX_SIZE)
		r.fail = true;
	b = ser_r_take(&r, r.fail ? 0 : nrx);
	if (b)
		memcpy(rx, b, nrx);
	ntx = deser_u32(&r);
	if (ntx > SERIAL_TX_SIZE)
		r.fail = true;
	b = ser_r_take(&r, r.fail ? 0 : ntx);
	if (b)
		memcpy(tx, b, ntx);
	if (!deser_done(&r))
		return err_config(e, -EINVAL,
				  "snapshot: serial port state malformed");
	pthread_mutex_lock(&s->lock);
	s->ier = reg[0];
	s->lcr = reg[1];
	s->mcr = reg[2];
	s->scr = reg[3];
	s->fcr = reg[4];
	s->dll = reg[5];
	s->dlm = reg[6];
	s->thr_ipending = thr;
	memcpy(s->rx, rx, nrx);
	s->rx_head = 0;
	s->rx_count = nrx;
	memcpy(s->tx, tx, ntx);
	s->tx_head = 0;
	s->tx_count = ntx;
	s->irq_level = level;
	/* The irqchip came back with the line as it was; say it again so
	 * the line and the device agree. */
	irq_line_set(&s->irq, level);
	stopped = serial_post_recheck_locked(s);
	pthread_mutex_unlock(&s->lock);
	if (stopped && s->post.drain)
		s->post.drain(s->post.opaque);
	return 0;
}
