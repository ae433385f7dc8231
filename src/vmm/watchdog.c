// SPDX-License-Identifier: MIT
#include "vmm/watchdog.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/log.h"
#include "util/time.h"
#include "virtio/dump.h"
#include "vmm/vm_priv.h"

bool stall_check(struct stall *s, uint64_t progress, uint64_t now_ns,
		 uint64_t limit_ns)
{
	if (!s->started || progress != s->last) {
		s->started = true;
		s->last = progress;
		s->since_ns = now_ns;
		s->reported = false;
		return false;
	}
	if (s->reported || now_ns - s->since_ns < limit_ns)
		return false;
	s->reported = true;
	return true;
}

void stall_reset(struct stall *s)
{
	s->started = false;
}

/* kvm_run is shared with the kernel and written by the vCPU's own
 * thread: a racy read, good enough to say where a vCPU last was. */
static void vcpu_lines(struct vm *vm)
{
	static const char *const kinds[VCPU_EXIT_NR] = {
		"io_in",      "io_out",	     "mmio_read",
		"mmio_write", "interrupted", "other",
	};

	for (int i = 0; i < vm->vcpus.n; i++) {
		struct vcpu *vc = &vm->vcpus.v[i];
		volatile struct kvm_run *run = vc->kv.run;
		char buf[256];
		size_t n = 0;

		for (int k = 0; k < VCPU_EXIT_NR; k++) {
			int r = snprintf(
				buf + n, sizeof(buf) - n, " %s %llu", kinds[k],
				(unsigned long long)__atomic_load_n(
					&vc->exits[k], __ATOMIC_RELAXED));

			if (r > 0 && (size_t)r < sizeof(buf) - n)
				n += (size_t)r;
		}
		if (!run)
			log_warn("vCPU %d: exits%s", i, buf);
		else if (run->exit_reason == KVM_EXIT_IO)
			log_warn("vCPU %d: exits%s; last exit: port %s %#x", i,
				 buf,
				 run->io.direction == KVM_EXIT_IO_OUT ? "out" :
									"in",
				 run->io.port);
		else if (run->exit_reason == KVM_EXIT_MMIO)
			log_warn("vCPU %d: exits%s; last exit: mmio %s %#llx",
				 i, buf, run->mmio.is_write ? "write" : "read",
				 (unsigned long long)run->mmio.phys_addr);
		else
			/* 0 (KVM_EXIT_UNKNOWN): no exit yet, or back in
			 * KVM_RUN, which resets it on entry. */
			log_warn("vCPU %d: exits%s; kvm_run.exit_reason %u", i,
				 buf, run->exit_reason);
	}
}

static void server_lines(struct vm *vm)
{
	for (int i = 0; i < vm->servers.nr; i++) {
		const struct vm_server *sv = &vm->servers.s[i];
		struct ioreq_stats st;

		if (!sv->client) {
			log_warn("server %s: not attached", sv->socket_path);
			continue;
		}
		ioreq_client_stats(sv->client, &st);
		log_warn("server %s: round trips %llu posted %llu timeouts "
			 "%llu ring_full %llu shared-isr %llu",
			 sv->socket_path, (unsigned long long)st.sync,
			 (unsigned long long)st.posted,
			 (unsigned long long)st.timeouts,
			 (unsigned long long)st.ring_full,
			 (unsigned long long)st.shared_isr);
	}
}

static bool paused(struct vm *vm)
{
	struct vcpu_pause *p = &vm->vcpus.pause;
	bool want;

	pthread_mutex_lock(&p->lock);
	want = p->want;
	pthread_mutex_unlock(&p->lock);
	return want;
}

/* The vectors set in one of the LAPIC's 256-bit registers (ISR at 0x100,
 * IRR at 0x200: eight 32-bit words, 16 bytes apart), as " 0x31 0xec". */
static void lapic_vectors(const struct kvm_lapic_state *l, unsigned int reg,
			  char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = 0;
	for (unsigned int w = 0; w < 8; w++) {
		uint32_t v;

		memcpy(&v, l->regs + reg + 16 * w, 4);
		for (unsigned int b = 0; b < 32 && v; b++, v >>= 1) {
			int r;

			if (!(v & 1))
				continue;
			r = snprintf(buf + n, size - n, " 0x%x", w * 32 + b);
			if (r < 0 || (size_t)r >= size - n)
				return;
			n += (size_t)r;
		}
	}
	if (!n)
		snprintf(buf, size, " none");
}

/* Where an interrupt the guest never took is stuck: each vCPU's LAPIC
 * (in service, requested, priority), whether it can take one (RFLAGS.IF,
 * an injection in progress, halted), read with the vCPUs parked for at
 * most 500 ms (a vCPU ioctl waits for KVM_RUN to return). */
static void lapic_lines(struct vm *vm)
{
	bool was_paused = paused(vm);
	struct err e;

	if (!was_paused && vcpus_pause(&vm->vcpus, 500, &e)) {
		log_warn("vCPU LAPICs: not read (%s)", e.msg);
		return;
	}
	for (int i = 0; i < vm->vcpus.n; i++) {
		int fd = vm->vcpus.v[i].kv.fd;
		struct kvm_lapic_state l;
		struct kvm_vcpu_events ev;
		struct kvm_mp_state mp;
		struct kvm_regs r;
		char isr[128], irr[128];
		uint32_t tpr = 0, ppr = 0;

		if (ioctl(fd, KVM_GET_LAPIC, &l) < 0 ||
		    ioctl(fd, KVM_GET_VCPU_EVENTS, &ev) < 0 ||
		    ioctl(fd, KVM_GET_MP_STATE, &mp) < 0 ||
		    ioctl(fd, KVM_GET_REGS, &r) < 0) {
			log_warn("vCPU %d: LAPIC/events/registers: %s", i,
				 strerror(errno));
			continue;
		}
		memcpy(&tpr, l.regs + 0x80, 4);
		memcpy(&ppr, l.regs + 0xa0, 4);
		lapic_vectors(&l, 0x100, isr, sizeof(isr));
		lapic_vectors(&l, 0x200, irr, sizeof(irr));
		log_warn(
			"vCPU %d: LAPIC in service%s, requested%s, TPR 0x%x "
			"PPR 0x%x; RFLAGS.IF %d, interrupt injected %d "
			"(vector 0x%x), NMI pending %d, mp_state %u, rip 0x%llx",
			i, isr, irr, tpr & 0xff, ppr & 0xff,
			!!(r.rflags & (1u << 9)), ev.interrupt.injected,
			ev.interrupt.nr, ev.nmi.pending, mp.mp_state,
			(unsigned long long)r.rip);
	}
	if (!was_paused)
		vcpus_resume(&vm->vcpus);
}

/* Each virtio device's IOAPIC pin: masked, its vector and destination
 * (a guest that disabled the line, or one that never EOIs it). */
static void ioapic_lines(struct vm *vm)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
	const struct kvm_ioapic_state *io = &chip.chip.ioapic;

	if (ioctl(vm->kvm.vm_fd, KVM_GET_IRQCHIP, &chip) < 0) {
		log_warn("IOAPIC: KVM_GET_IRQCHIP: %s", strerror(errno));
		return;
	}
	for (int i = 0; i < vm->dev.nr_virtio; i++) {
		unsigned int g = vm->dev.virtio[i]->gsi;
		uint64_t b;

		if (g >= KVM_IOAPIC_NUM_PINS)
			continue;
		b = io->redirtbl[g].bits;
		log_warn("%s: IOAPIC pin %u: vector 0x%x dest %u %s%s%s%s, "
			 "pin request %d",
			 vm->dev.virtio[i]->dev->name, g,
			 (unsigned int)(b & 0xff), (unsigned int)(b >> 56),
			 (b >> 15) & 1 ? "level" : "edge",
			 (b >> 16) & 1 ? " MASKED" : "",
			 (b >> 14) & 1 ? " remote-IRR" : "",
			 (b >> 12) & 1 ? " delivery-pending" : "",
			 (io->irr >> g) & 1);
	}
}

void vm_dump_state(struct vm *vm, const char *why)
{
	log_warn("state dump (%s): %d vCPUs%s, %d virtio devices, %d IOREQ "
		 "servers",
		 why, vm->vcpus.n, paused(vm) ? " (paused)" : "",
		 vm->dev.nr_virtio, vm->servers.nr);
	vcpu_lines(vm);
	lapic_lines(vm);
	if (vm->dev.serial_ready) {
		char line[512];

		serial_describe(&vm->dev.serial, line, sizeof(line));
		log_warn("serial: %s", line);
	}
	for (int i = 0; i < vm->dev.nr_virtio; i++)
		virtio_mmio_dump(vm->dev.virtio[i], LOG_WARN);
	ioapic_lines(vm);
	server_lines(vm);
	log_warn("state dump end");
}

static uint64_t progress(struct vm *vm)
{
	uint64_t p = 0;

	for (int i = 0; i < vm->vcpus.n; i++)
		for (int k = 0; k < VCPU_EXIT_NR; k++)
			/* A kick (the dump's own pause) is not the guest's. */
			if (k != VCPU_EXIT_INTR)
				p += __atomic_load_n(&vm->vcpus.v[i].exits[k],
						     __ATOMIC_RELAXED);
	for (int i = 0; i < vm->dev.nr_virtio; i++)
		p += virtio_mmio_progress(vm->dev.virtio[i]);
	return p;
}

static void on_tick(void *opaque)
{
	struct vm *vm = opaque;
	struct watchdog *w = &vm->wd;
	char why[64];

	if (!loop_timer_ack(w->tfd))
		return;
	if (paused(vm)) {
		stall_reset(&w->st);
		return;
	}
	if (!stall_check(&w->st, progress(vm), now_ns(), w->limit_ns))
		return;
	snprintf(why, sizeof(why), "watchdog: nothing moved for %u s",
		 vm->cfg.watchdog_s);
	vm_dump_state(vm, why);
}

static void on_irq_tick(void *opaque)
{
	struct vm *vm = opaque;
	struct watchdog *w = &vm->wd;
	uint64_t now = now_ns();
	bool stopped;

	if (!loop_timer_ack(w->irq_tfd))
		return;
	/* A paused guest reads nothing on purpose. */
	stopped = paused(vm);
	if (!stopped && vm->dev.serial_ready)
		serial_tx_retry(&vm->dev.serial);
	if (stopped) {
		w->serial_irq.since_ns = 0;
	} else if (vm->dev.serial_ready &&
		   serial_irq_check(&vm->dev.serial, &w->serial_irq, now,
				    WATCHDOG_IRQ_LIMIT_MS * 1000000ULL) &&
		   w->serial_irq.reraised == 1) {
		log_warn("serial: the guest has not taken the interrupt it was "
			 "sent %d ms ago; raised it again (said once)",
			 WATCHDOG_IRQ_LIMIT_MS);
	}
	for (int i = 0; i < vm->dev.nr_virtio && i < LAYOUT_MAX_WINDOWS; i++) {
		struct virtio_irq_watch *s = &w->irq[i];

		if (stopped) {
			s->since_ns = 0;
			continue;
		}
		if (virtio_mmio_irq_check(vm->dev.virtio[i], s, now,
					  WATCHDOG_IRQ_LIMIT_MS * 1000000ULL) &&
		    s->reraised == 1)
			log_warn("%s: the guest has not read the interrupt it "
				 "was sent %d ms ago; raised it again (said "
				 "once per device)",
				 vm->dev.virtio[i]->dev->name,
				 WATCHDOG_IRQ_LIMIT_MS);
	}
}

void watchdog_preinit(struct watchdog *w)
{
	memset(w, 0, sizeof(*w));
	w->tfd = -1;
	w->irq_tfd = -1;
}

int watchdog_start(struct vm *vm, struct err *e)
{
	struct watchdog *w = &vm->wd;
	uint64_t period;

	if (vm->dev.nr_virtio || vm->dev.serial_ready) {
		w->irq_tfd = loop_timer_add(&vm->loop, &w->irq_watch,
					    on_irq_tick, vm);
		if (w->irq_tfd < 0) {
			int ret = w->irq_tfd;

			w->irq_tfd = -1;
			return err_set(e, ret, "interrupt check: timerfd: %s",
				       strerror(-ret));
		}
		loop_timer_arm(w->irq_tfd, WATCHDOG_IRQ_MS * 1000000ULL);
	}
	if (!vm->cfg.watchdog_s)
		return 0;
	w->limit_ns = vm->cfg.watchdog_s * 1000000000ULL;
	w->tfd = loop_timer_add(&vm->loop, &w->watch, on_tick, vm);
	if (w->tfd < 0) {
		int ret = w->tfd;

		w->tfd = -1;
		return err_set(e, ret, "watchdog: timerfd: %s", strerror(-ret));
	}
	/* Samples four times per period: a stall is reported between S and
	 * 1.25 S after the last movement. */
	period = w->limit_ns / 4;
	loop_timer_arm(w->tfd, period);
	return 0;
}

void watchdog_destroy(struct watchdog *w)
{
	if (w->tfd >= 0)
		close(w->tfd);
	if (w->irq_tfd >= 0)
		close(w->irq_tfd);
	w->tfd = w->irq_tfd = -1;
}
