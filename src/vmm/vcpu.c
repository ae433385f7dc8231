// SPDX-License-Identifier: MIT
#include "vmm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "arch/x86/cpu.h"
#include "sandbox/seccomp.h"
#include "util/log.h"
#include "util/time.h"
#include "vmm/term.h"
#include "vmm/vm_priv.h"

/* How long vcpus_stop waits for a thread before it abandons it. */
#define STOP_BOUND_MS 10000
/* How often it re-kicks a thread that has not returned yet. */
#define KICK_EVERY_NS 1000000ull

static void crash(struct vcpu *vc, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void crash(struct vcpu *vc, int code, const char *fmt, ...)
{
	struct vm *vm = vc->vm;
	char msg[512];
	va_list ap;

	if (vm_is_stopping(vm))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	term_restore();
	log_error("vCPU %d: %s", vc->kv.id, msg);
	cpu_dump_regs(&vc->kv, LOG_ERROR);
	vm_request_stop(vm, code);
}

static void handle_io(struct vm *vm, int cpu, struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t size = run->io.size;

	/* String I/O (rep outsb etc.) arrives as count back-to-back items. */
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			uint64_t v = 0;

			memcpy(&v, data, size <= 8 ? size : 8);
			if (!ioevr_write(&vm->ioev, true, run->io.port, size,
					 v))
				bus_write(&vm->pio, cpu, run->io.port, data,
					  size);
		} else
			bus_read(&vm->pio, cpu, run->io.port, data, size);
	}
}

static void handle_mmio(struct vm *vm, int cpu, struct kvm_run *run)
{
	uint32_t len = run->mmio.len;

	if (len == 0 || len > sizeof(run->mmio.data))
		return;
	if (run->mmio.is_write) {
		uint64_t v = 0;

		memcpy(&v, run->mmio.data, len);
		if (!ioevr_write(&vm->ioev, false, run->mmio.phys_addr, len, v))
			bus_write(&vm->mmio, cpu, run->mmio.phys_addr,
				  run->mmio.data, len);
	} else
		bus_read(&vm->mmio, cpu, run->mmio.phys_addr, run->mmio.data,
			 len);
}

static void internal_error(struct vcpu *vc)
{
	struct kvm_run *run = vc->kv.run;
	uint32_t sub = run->internal.suberror;

	if (vc->vm->kvm.pvm) {
		crash(vc, WISP_EXIT_PVM,
		      "KVM internal error (suberror %u). This host's /dev/kvm "
		      "is PVM (kvm_pvm, no VT-x/AMD-V): the guest took an "
		      "exception or interrupt that only a PVM-aware guest "
		      "kernel can handle there, so an unmodified Linux stops "
		      "at its first one. Boot Linux guests on a host with "
		      "hardware virtualization, or in the nested rig: "
		      "tests/rig/run.sh (see README).",
		      sub);
		return;
	}
	crash(vc, WISP_EXIT_GUEST_CRASH, "KVM internal error (suberror %u%s)",
	      sub,
	      sub == KVM_INTERNAL_ERROR_EMULATION ? ": emulation failed" : "");
}

/* Handles one exit (a crash stops the VM, which ends the loop). */
static void handle_exit(struct vcpu *vc)
{
	struct vm *vm = vc->vm;
	struct kvm_run *run = vc->kv.run;

	vcpu_count_exit(vc, run);
	posted_drain(&vm->posted);
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vm, vc->kv.id, run);
		break;
	case KVM_EXIT_MMIO:
		handle_mmio(vm, vc->kv.id, run);
		break;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT: /* only without an in-kernel LAPIC: idle */
		break;
	case KVM_EXIT_SHUTDOWN:
		crash(vc, WISP_EXIT_GUEST_CRASH,
		      "guest triple fault (KVM_EXIT_SHUTDOWN)");
		break;
	case KVM_EXIT_FAIL_ENTRY:
		crash(vc, WISP_EXIT_GUEST_CRASH,
		      "VM entry failed (hardware reason 0x%llx)",
		      (unsigned long long)
			      run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		internal_error(vc);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH)
			crash(vc, WISP_EXIT_GUEST_CRASH,
			      "guest reported a crash");
		else
			vm_request_stop(vm, WISP_EXIT_OK);
		break;
	default:
		crash(vc, WISP_EXIT_GUEST_CRASH, "unhandled KVM exit reason %u",
		      run->exit_reason);
		break;
	}
}

/* false: KVM_RUN failed (reported); EINTR/EAGAIN count as success with
 * no exit to handle (*exited false). */
static bool run_once(struct vcpu *vc, bool *exited)
{
	*exited = false;
	if (ioctl(vc->kv.fd, KVM_RUN, 0) == 0) {
		*exited = true;
		return true;
	}
	if (errno == EINTR || errno == EAGAIN)
		return true;
	crash(vc, WISP_EXIT_HOST, "KVM_RUN: %s", strerror(errno));
	return false;
}

static void *vcpu_main(void *arg)
{
	struct vcpu *vc = arg;
	struct vm *vm = vc->vm;
	sigset_t kick;
	bool exited;

	/* Before the guest's first instruction (docs/sandbox.md). */
	sb_seccomp_enter(SB_VCPU);
	sigemptyset(&kick);
	sigaddset(&kick, SIG_KICK);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	/* The first run stands apart so the start-up stamp costs the hot
	 * loop nothing. */
	if (vm_is_stopping(vm) || !run_once(vc, &exited))
		return NULL;
	if (exited) {
		if (vc->kv.id == 0)
			vc->first_exit_ns = now_ns();
		handle_exit(vc);
	}
	while (!vm_is_stopping(vm)) {
		if (!run_once(vc, &exited))
			break;
		if (exited) {
			handle_exit(vc);
		} else {
			vcpu_count_exit(vc, NULL);
			/* What this vCPU posted before the kick is handed
			 * over before it parks: a paused VM (a snapshot) has
			 * an empty ring. */
			posted_drain(&vm->posted);
			vcpu_park(vc);
		}
	}
	return NULL;
}

static void kick_handler(int sig)
{
	(void)sig;
}

void vcpus_install_kick(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigaction(SIG_KICK, &sa, NULL);
}

int vcpus_create(struct vcpus *vs, struct vm *vm, int n,
		 const struct boot_entry *entry, struct err *e)
{
	int ret;

	/* sizeof is a multiple of the alignment, as aligned_alloc wants. */
	vs->v = aligned_alloc(_Alignof(struct vcpu),
			      (size_t)n * sizeof(*vs->v));
	if (!vs->v)
		return err_set(e, -ENOMEM, "vCPUs: out of memory");
	memset(vs->v, 0, (size_t)n * sizeof(*vs->v));
	vcpu_pause_init(&vs->pause);
	vs->n = n;
	for (int i = 0; i < n; i++)
		vs->v[i].kv.fd = -1;
	for (int i = 0; i < n; i++) {
		struct vcpu *vc = &vs->v[i];

		vc->vm = vm;
		ret = kvm_create_vcpu(&vm->kvm, i, &vc->kv, e);
		if (ret)
			return ret;
		ret = cpu_setup_vcpu(&vm->kvm, &vc->kv, n, vm->cfg.async_pf, e);
		if (ret)
			return ret;
	}
	return entry ? cpu_setup_boot_regs(&vs->v[0].kv, entry, e) : 0;
}

static void mark_started(struct vcpus *vs);

int vcpus_start(struct vcpus *vs, struct err *e)
{
	for (int i = 0; i < vs->n; i++) {
		struct vcpu *vc = &vs->v[i];
		int ret = pthread_create(&vc->thread, NULL, vcpu_main, vc);

		if (ret)
			return err_set(e, -ret, "vCPU %d: thread: %s", i,
				       strerror(ret));
		vc->started = true;
	}
	mark_started(vs);
	return 0;
}

void vcpus_stop(struct vcpus *vs)
{
	uint64_t deadline_ns = now_ns() + STOP_BOUND_MS * 1000000ull;

	for (int i = 0; i < vs->n; i++) {
		struct vcpu *vc = &vs->v[i];

		if (!vc->started)
			continue;
		vc->kv.run->immediate_exit = 1;
		pthread_kill(vc->thread, SIG_KICK);
	}
	for (int i = 0; i < vs->n; i++) {
		struct vcpu *vc = &vs->v[i];

		if (!vc->started)
			continue;
		/* A kick can land just before the thread re-enters KVM_RUN
		 * and is then lost; immediate_exit covers KVM_RUN itself,
		 * re-kicking every millisecond covers the rest. The join
		 * returns as soon as the thread ends (a try-join and a 1 ms
		 * sleep cost every exit a millisecond). One bound for all
		 * threads. */
		for (;;) {
			uint64_t now = now_ns(), until = now + KICK_EVERY_NS;
			struct timespec ts;
			int ret;

			if (until > deadline_ns)
				until = deadline_ns;
			ts.tv_sec = (time_t)(until / 1000000000u);
			ts.tv_nsec = (long)(until % 1000000000u);
			ret = pthread_clockjoin_np(vc->thread, NULL,
						   CLOCK_MONOTONIC, &ts);
			if (ret != ETIMEDOUT)
				break;
			if (now_ns() >= deadline_ns) {
				log_error("vCPU %d: did not stop within %d s; "
					  "leaving its state allocated",
					  i, STOP_BOUND_MS / 1000);
				pthread_detach(vc->thread);
				vc->leaked = true;
				break;
			}
			pthread_kill(vc->thread, SIG_KICK);
		}
		vc->started = false;
	}
}

void vcpus_destroy(struct vcpus *vs, struct kvm *kvm)
{
	bool leaked = false;

	if (!vs->v)
		return;
	vcpus_stop(vs);
	for (int i = 0; i < vs->n; i++)
		leaked |= vs->v[i].leaked;
	/* A thread that never returned may still read its kvm_run and the
	 * VM: keep all of it (the process is about to exit). */
	if (leaked)
		return;
	for (int i = 0; i < vs->n; i++)
		if (vs->v[i].kv.fd >= 0)
			kvm_destroy_vcpu(kvm, &vs->v[i].kv);
	vcpu_pause_destroy(&vs->pause);
	free(vs->v);
	vs->v = NULL;
}

void vcpu_pause_init(struct vcpu_pause *p)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
}

/* vcpus_start is done: from here on started[] and thread are stable for
 * a pauser that saw this under the lock. */
static void mark_started(struct vcpus *vs)
{
	pthread_mutex_lock(&vs->pause.lock);
	vs->pause.threads_up = true;
	pthread_cond_broadcast(&vs->pause.cond);
	pthread_mutex_unlock(&vs->pause.lock);
}

void vcpu_pause_destroy(struct vcpu_pause *p)
{
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

static int cond_wait_ms(struct vcpu_pause *p, long ms)
{
	struct timespec ts;

	mono_deadline_ms(&ts, (uint64_t)ms);
	return pthread_cond_timedwait(&p->cond, &p->lock, &ts);
}

void vcpu_park(struct vcpu *vc)
{
	struct vcpu_pause *p = &vc->vm->vcpus.pause;

	pthread_mutex_lock(&p->lock);
	if (!p->want) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	/* Tells a kvmclock guest it was stopped on purpose, so its soft
	 * lockup watchdog does not fire on resume; EINVAL when the guest
	 * has no kvmclock. */
	ioctl(vc->kv.fd, KVM_KVMCLOCK_CTRL, 0);
	p->parked++;
	pthread_cond_broadcast(&p->cond);
	/* A stop does not go through the pause state: look at it now and
	 * then (it also kicks, which does not reach a parked thread). */
	while (p->want && !vm_is_stopping(vc->vm))
		cond_wait_ms(p, 50);
	p->parked--;
	/* Under the lock: a new pause sets immediate_exit only after it
	 * set want, so it cannot be cleared behind its back. A stop racing
	 * with this is re-kicked by vcpus_stop every 1 ms. */
	if (!vm_is_stopping(vc->vm))
		vc->kv.run->immediate_exit = 0;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

int vcpus_pause(struct vcpus *vs, int bound_ms, struct err *e)
{
	struct vcpu_pause *p = &vs->pause;
	uint64_t deadline = now_ms() + (uint64_t)bound_ms;
	int want = vs->n, ret = 0;

	/* InstanceStart returns before vm_run starts the threads. */
	pthread_mutex_lock(&p->lock);
	while (!p->threads_up && !vm_is_stopping(vs->v[0].vm) &&
	       now_ms() < deadline)
		cond_wait_ms(p, 5);
	p->want = true;
	pthread_mutex_unlock(&p->lock);
	/* immediate_exit makes the next (or current, once kicked) KVM_RUN
	 * complete what the last exit left pending and return EINTR at an
	 * instruction boundary; the vCPU then parks itself. */
	for (int i = 0; i < vs->n; i++)
		if (vs->v[i].started) {
			vs->v[i].kv.run->immediate_exit = 1;
			pthread_kill(vs->v[i].thread, SIG_KICK);
		}
	pthread_mutex_lock(&p->lock);
	while (p->parked < want) {
		if (vm_is_stopping(vs->v[0].vm)) {
			ret = err_set(e, -ESHUTDOWN,
				      "pause: the VM is stopping");
			break;
		}
		if (now_ms() >= deadline) {
			ret = err_set(e, -ETIMEDOUT,
				      "pause: %d of %d vCPUs stopped within "
				      "%d ms (one is busy in a device)",
				      p->parked, want, bound_ms);
			break;
		}
		cond_wait_ms(p, 5);
	}
	if (ret) {
		p->want = false;
		pthread_cond_broadcast(&p->cond);
	} else {
		p->since_ns = now_ns();
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void vcpus_start_parked(struct vcpus *vs)
{
	struct vcpu_pause *p = &vs->pause;

	pthread_mutex_lock(&p->lock);
	p->want = true;
	p->since_ns = now_ns();
	pthread_mutex_unlock(&p->lock);
	/* The first KVM_RUN returns at once; the loop then parks. */
	for (int i = 0; i < vs->n; i++)
		vs->v[i].kv.run->immediate_exit = 1;
}

void vcpus_resume(struct vcpus *vs)
{
	struct vcpu_pause *p = &vs->pause;

	pthread_mutex_lock(&p->lock);
	if (p->want)
		p->total_ns += now_ns() - p->since_ns;
	p->want = false;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void vcpu_count_exit(struct vcpu *vc, const struct kvm_run *run)
{
	enum vcpu_exit_kind k = VCPU_EXIT_OTHER;
	uint64_t *c;

	if (!run)
		k = VCPU_EXIT_INTR;
	else if (run->exit_reason == KVM_EXIT_IO)
		k = run->io.direction == KVM_EXIT_IO_OUT ? VCPU_EXIT_IO_OUT :
							   VCPU_EXIT_IO_IN;
	else if (run->exit_reason == KVM_EXIT_MMIO)
		k = run->mmio.is_write ? VCPU_EXIT_MMIO_WRITE :
					 VCPU_EXIT_MMIO_READ;
	else if (run->exit_reason == KVM_EXIT_INTR)
		k = VCPU_EXIT_INTR;
	c = &vc->exits[k];
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}
