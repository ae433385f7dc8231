/* SPDX-License-Identifier: MIT */
/* How a device raises an interrupt without knowing who delivers it: the
 * VMM gives it an irq_line bound to KVM_IRQ_LINE (or an irqfd, or an
 * IOREQ message when the device runs in another process). */
#ifndef WISP_DEVICES_IRQ_H
#define WISP_DEVICES_IRQ_H

struct irq_line {
	void (*set_level)(void *opaque, unsigned int gsi, int level);
	void *opaque;
	unsigned int gsi;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
	if (l->set_level)
		l->set_level(l->opaque, l->gsi, level);
}

#endif
