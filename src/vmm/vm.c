// SPDX-License-Identifier: MIT
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/cpu.h"
#include "arch/x86/mptable.h"
#include "boot/boot.h"
#include "bus/bus.h"
#include "bus/ioeventfd.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "devices/blk/blk.h"
#include "devices/console/console.h"
#include "devices/rng/rng.h"
#include "ioreq/client.h"
#include "kvm/kvm.h"
#include "mem/guest_mem.h"
#include "util/log.h"
#include "virtio/mmio.h"
#include "vmm/term.h"

#define SIG_KICK SIGUSR1
/* linux/kvm.h sizes the coalesced ring with PAGE_SIZE. */
#define COALESCED_MAX                                      \
	((4096 - sizeof(struct kvm_coalesced_mmio_ring)) / \
	 sizeof(struct kvm_coalesced_mmio))

/* virtio-mmio windows: 4 KiB each from here, in the 32-bit MMIO hole. */
#define VIRTIO_MMIO_BASE 0xd0000000ULL
/* ISA lines free on wisp's machine (no RTC, FPU error, IDE or mouse),
 * edge-triggered per the MP table, one per virtio device. */
static const unsigned int virtio_gsis[] = { 5, 6, 7, 9, 10, 11, 12, 13, 14, 15 };
#define VM_MAX_VIRTIO (int)(sizeof(virtio_gsis) / sizeof(virtio_gsis[0]))
#define CONSOLE_ESCAPE 0x01 /* Ctrl-A, then 'x' quits */

struct vcpu {
	struct vm *vm;
	struct kvm_vcpu kv;
	pthread_t thread;
	bool started;
};

struct vm {
	struct vm_config cfg;
	struct kvm kvm;
	struct guest_mem mem;
	struct bus pio, mmio;
	struct serial serial;
	struct i8042 i8042;
	struct debug_exit dbg;
	struct boot_entry entry;
	struct virtio_mmio *virtio[VM_MAX_VIRTIO];
	int nr_virtio;
	/* MMIO windows handed out (in-process devices and servers), in
	 * order; those with announce set go on the command line. */
	struct window {
		uint64_t base;
		unsigned int gsi;
		bool announce;
	} windows[VM_MAX_VIRTIO];
	int nr_windows;
	struct virtio_dev *vconsole; /* when the console is virtio */
	/* Doorbell lanes: mirrored into KVM, else served on the exit path.
	 * Has its own lock (lanes change when a server re-attaches). */
	struct ioeventfd_registry ioev;
	struct server {
		struct ioreq_client *client;
		int irq_efd;
		pid_t child; /* spawned by us, else 0 */
		char socket_path[108];
	} servers[VM_MAX_SERVERS];
	int nr_servers;
	int retry_tfd; /* re-attach timer while a server is detached */
	/* KVM's coalesced-MMIO ring (posted writes to IOREQ servers): one
	 * per VM, drained by vCPU threads before each exit and by the main
	 * loop's flush timer, under coalesced_lock. */
	struct kvm_coalesced_mmio_ring *coalesced;
	pthread_mutex_t coalesced_lock;
	atomic_int nr_posted_zones;
	int flush_tfd;
	bool ioev_ready;
	int ncpus;
	struct vcpu *vcpus;

	int epfd, stop_efd, sig_fd;
	int serial_out_fd; /* owned when serial is a file */
	bool stdin_attached; /* stdin feeds the UART (event loop only) */
	bool stdin_polled; /* stdin in the epoll set (guarded by serial.lock
			    * for the re-arm from a vCPU thread) */
	bool escape_pending; /* saw Ctrl-A (event loop only) */

	/* The first stop request wins: stopping goes 0 -> 1 once, and the
	 * thread that flipped it wrote exit_code before. */
	atomic_int stopping;
	int exit_code;
	/* CLOCK_MONOTONIC ns of the first port/MMIO exit, for the start-up
	 * benchmark; written once by whichever vCPU sees it first. */
	atomic_ullong first_io_ns;
};

void vm_config_defaults(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cpus = VM_DEFAULT_CPUS;
	c->memory_mib = VM_DEFAULT_MEMORY_MIB;
	c->serial = SERIAL_STDIO;
}

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull +
	       (unsigned long long)ts.tv_nsec;
}

static void vm_request_stop(struct vm *vm, int code)
{
	int expected = 0;
	uint64_t one = 1;

	/* exit_code is published by the successful CAS (seq_cst), and read
	 * by the main thread only after it saw stopping set. */
	if (!atomic_compare_exchange_strong(&vm->stopping, &expected, -1))
		return;
	vm->exit_code = code;
	atomic_store(&vm->stopping, 1);
	if (write(vm->stop_efd, &one, sizeof(one)) < 0)
		log_warn("stop eventfd: %s", strerror(errno));
}

static bool vm_is_stopping(struct vm *vm)
{
	return atomic_load(&vm->stopping) != 0;
}

/* --- device glue: the only place devices meet KVM --- */

static void irq_kvm_set(void *opaque, unsigned int gsi, int level)
{
	struct vm *vm = opaque;
	int ret = kvm_irq_line(&vm->kvm, gsi, level);

	if (ret)
		log_warn("irq %u: KVM_IRQ_LINE: %s", gsi, strerror(-ret));
}

static void guest_reset(void *opaque)
{
	struct vm *vm = opaque;

	log_info("guest requested a reset: stopping the VM");
	vm_request_stop(vm, WISP_EXIT_OK);
}

static void guest_debug_exit(void *opaque, uint8_t code)
{
	struct vm *vm = opaque;

	log_info("guest wrote %u to the debug-exit port", code);
	vm_request_stop(vm, code);
}

/* rx_space callback of either console (8250 or virtio). */
static void console_has_space(void *opaque)
{
	struct vm *vm = opaque;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = STDIN_FILENO };

	/* Called on a vCPU thread after the guest drained input: put stdin
	 * back into the event loop (epoll_ctl is thread-safe). */
	pthread_mutex_lock(&vm->serial.lock);
	if (vm->stdin_attached && !vm->stdin_polled &&
	    epoll_ctl(vm->epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) == 0)
		vm->stdin_polled = true;
	pthread_mutex_unlock(&vm->serial.lock);
}

/* --- vCPU threads --- */

static void crash(struct vm *vm, struct vcpu *vc, int code, const char *fmt,
		  ...) __attribute__((format(printf, 4, 5)));
static void flush_coalesced(struct vm *vm);

static void crash(struct vm *vm, struct vcpu *vc, int code, const char *fmt,
		  ...)
{
	char msg[512];
	va_list ap;

	if (vm_is_stopping(vm))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	term_restore();
	log_error("vCPU %d: %s", vc->kv.id, msg);
	cpu_dump_regs(&vc->kv, stderr);
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

static void internal_error(struct vm *vm, struct vcpu *vc)
{
	struct kvm_run *run = vc->kv.run;
	uint32_t sub = run->internal.suberror;

	if (vm->kvm.pvm) {
		crash(vm, vc, WISP_EXIT_PVM,
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
	crash(vm, vc, WISP_EXIT_GUEST_CRASH,
	      "KVM internal error (suberror %u%s)", sub,
	      sub == KVM_INTERNAL_ERROR_EMULATION ? ": emulation failed" : "");
}

static void *vcpu_main(void *arg)
{
	struct vcpu *vc = arg;
	struct vm *vm = vc->vm;
	struct kvm_run *run = vc->kv.run;
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, SIG_KICK);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	while (!vm_is_stopping(vm)) {
		if (ioctl(vc->kv.fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			crash(vm, vc, WISP_EXIT_HOST, "KVM_RUN: %s",
			      strerror(errno));
			break;
		}
		flush_coalesced(vm);
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (!atomic_load_explicit(&vm->first_io_ns,
						  memory_order_relaxed)) {
				unsigned long long zero = 0;

				atomic_compare_exchange_strong(&vm->first_io_ns,
							       &zero, now_ns());
			}
			handle_io(vm, vc->kv.id, run);
			break;
		case KVM_EXIT_MMIO:
			handle_mmio(vm, vc->kv.id, run);
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_HLT:
			/* Only without an in-kernel LAPIC; treat as idle. */
			break;
		case KVM_EXIT_SHUTDOWN:
			crash(vm, vc, WISP_EXIT_GUEST_CRASH,
			      "guest triple fault (KVM_EXIT_SHUTDOWN)");
			break;
		case KVM_EXIT_FAIL_ENTRY:
			crash(vm, vc, WISP_EXIT_GUEST_CRASH,
			      "VM entry failed (hardware reason 0x%llx)",
			      (unsigned long long)run->fail_entry
				      .hardware_entry_failure_reason);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			internal_error(vm, vc);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH)
				crash(vm, vc, WISP_EXIT_GUEST_CRASH,
				      "guest reported a crash");
			else
				vm_request_stop(vm, WISP_EXIT_OK);
			break;
		default:
			crash(vm, vc, WISP_EXIT_GUEST_CRASH,
			      "unhandled KVM exit reason %u", run->exit_reason);
			break;
		}
	}
	return NULL;
}

static void kick_handler(int sig)
{
	(void)sig;
}

/* --- building the VM --- */

/* console=, the virtio-mmio device list, the defaults, then --cmdline. */
static int build_cmdline(const struct vm *vm, char **out, struct err *e)
{
	const struct vm_config *cfg = &vm->cfg;
	size_t cap = BOOT_CMDLINE_MAX * 2, n = 0;
	char *s = malloc(cap);

	if (!s)
		return err_set(e, -ENOMEM, "command line: out of memory");
	s[0] = 0;
	if (!cfg->no_default_cmdline) {
		n += (size_t)snprintf(s + n, cap - n, "console=%s ",
				      cfg->console == CONSOLE_VIRTIO ? "hvc0" :
								       "ttyS0");
		for (int i = 0; i < vm->nr_windows && n < cap; i++)
			if (vm->windows[i].announce)
				n += (size_t)snprintf(
					s + n, cap - n,
					"virtio_mmio.device=4K@0x%llx:%u ",
					(unsigned long long)vm->windows[i].base,
					vm->windows[i].gsi);
		if (n < cap)
			n += (size_t)snprintf(s + n, cap - n, "%s",
					      VM_DEFAULT_CMDLINE);
	}
	if (cfg->cmdline_extra && n < cap)
		n += (size_t)snprintf(s + n, cap - n, "%s%s", n ? " " : "",
				      cfg->cmdline_extra);
	if (n >= cap) {
		free(s);
		return err_set(e, -E2BIG, "command line: longer than %d bytes",
			       BOOT_CMDLINE_MAX);
	}
	*out = s;
	return 0;
}

/* --- virtio devices: the host glue between the transport and KVM --- */

/* The registry mirrors each lane into KVM when KVM takes it. */
static int kvm_lane_assign(void *opaque, uint64_t addr, uint32_t len,
			   uint32_t flags, uint64_t datamatch, int fd)
{
	struct vm *vm = opaque;

	return kvm_ioeventfd(&vm->kvm, addr, len, flags & IOEVR_F_PIO,
			     flags & IOEVR_F_DATAMATCH, datamatch, fd, false);
}

static int kvm_lane_deassign(void *opaque, uint64_t addr, uint32_t len,
			     uint32_t flags, uint64_t datamatch, int fd)
{
	struct vm *vm = opaque;

	return kvm_ioeventfd(&vm->kvm, addr, len, flags & IOEVR_F_PIO,
			     flags & IOEVR_F_DATAMATCH, datamatch, fd, true);
}

static int server_add_posted(void *opaque, uint64_t addr, uint64_t len)
{
	struct vm *vm = opaque;
	int ret;

	if (len > UINT32_MAX)
		return -EINVAL;
	ret = kvm_coalesced_mmio(&vm->kvm, addr, (uint32_t)len, false);
	if (!ret)
		atomic_fetch_add(&vm->nr_posted_zones, 1);
	return ret;
}

static int server_del_posted(void *opaque, uint64_t addr, uint64_t len)
{
	struct vm *vm = opaque;
	int ret = kvm_coalesced_mmio(&vm->kvm, addr, (uint32_t)len, true);

	if (!ret)
		atomic_fetch_sub(&vm->nr_posted_zones, 1);
	return ret;
}

/* Posted writes KVM queued: hand them to their windows in the order the
 * guest made them. Before any exit is handled, so a vCPU's later access
 * to the same server cannot overtake them. */
static void flush_coalesced(struct vm *vm)
{
	struct kvm_coalesced_mmio_ring *r = vm->coalesced;

	if (!r || __atomic_load_n(&r->first, __ATOMIC_RELAXED) ==
			  __atomic_load_n(&r->last, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&vm->coalesced_lock);
	for (;;) {
		uint32_t first = r->first;
		struct kvm_coalesced_mmio e;

		if (first == __atomic_load_n(&r->last, __ATOMIC_ACQUIRE))
			break;
		if (first >= COALESCED_MAX)
			break; /* KVM never does this; do not index past it */
		e = r->coalesced_mmio[first];
		__atomic_store_n(&r->first, (first + 1) % COALESCED_MAX,
				 __ATOMIC_RELEASE);
		if (e.len == 0 || e.len > sizeof(e.data))
			continue;
		if (e.pio)
			bus_write(&vm->pio, BUS_CPU_NONE, e.phys_addr, e.data,
				  e.len);
		else
			bus_write(&vm->mmio, BUS_CPU_NONE, e.phys_addr, e.data,
				  e.len);
	}
	pthread_mutex_unlock(&vm->coalesced_lock);
}

static int host_add_irqfd(void *opaque, int efd, unsigned int gsi)
{
	struct vm *vm = opaque;

	return kvm_irqfd(&vm->kvm, efd, gsi, false);
}

static int host_del_irqfd(void *opaque, int efd, unsigned int gsi)
{
	struct vm *vm = opaque;

	return kvm_irqfd(&vm->kvm, efd, gsi, true);
}

static int alloc_window(struct vm *vm, struct window **out, struct err *e)
{
	struct window *w;

	*out = NULL;
	if (vm->nr_windows == VM_MAX_VIRTIO)
		return err_set(e, -ENOSPC, "too many devices (at most %d)",
			       VM_MAX_VIRTIO);
	w = &vm->windows[vm->nr_windows];
	w->base =
		VIRTIO_MMIO_BASE + (uint64_t)vm->nr_windows * VIRTIO_MMIO_SIZE;
	w->gsi = virtio_gsis[vm->nr_windows];
	w->announce = true;
	vm->nr_windows++;
	*out = w;
	return 0;
}

static int attach_virtio(struct vm *vm, struct virtio_dev *d, struct err *e)
{
	const struct virtio_irq_host irq = { host_add_irqfd, host_del_irqfd,
					     vm };
	struct virtio_mmio *t = NULL;
	struct window *w = NULL;
	uint64_t base;
	int ret;

	ret = alloc_window(vm, &w, e);
	if (ret) {
		if (d->ops->destroy)
			d->ops->destroy(d);
		return ret;
	}
	base = w->base;
	ret = virtio_mmio_create(d, base, w->gsi, &vm->ioev, &irq, &t, e);
	if (ret) {
		virtio_mmio_destroy(t);
		return ret;
	}
	vm->virtio[vm->nr_virtio++] = t;
	ret = bus_register(&vm->mmio, base, VIRTIO_MMIO_SIZE,
			   &virtio_mmio_bus_ops, t, d->name);
	if (ret)
		return err_set(e, ret, "%s: MMIO window at 0x%llx: %s", d->name,
			       (unsigned long long)base, strerror(-ret));
	return 0;
}

/* Starts "cmd --socket path" (cmd split at spaces, no quoting) as a child
 * that dies with us. */
static int spawn_server(const char *cmd, const char *path, pid_t *pid,
			struct err *e)
{
	char *copy = strdup(cmd), *argv[34], *save = NULL;
	int argc = 0;
	pid_t p;

	if (!copy)
		return err_set(e, -ENOMEM, "out of memory");
	for (char *t = strtok_r(copy, " ", &save); t && argc < 31;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	if (!argc) {
		free(copy);
		return err_set(e, -EINVAL, "--spawn-server: empty command");
	}
	argv[argc++] = "--socket";
	argv[argc++] = (char *)path;
	argv[argc] = NULL;
	p = fork();
	if (p < 0) {
		free(copy);
		return err_set(e, -errno, "--spawn-server '%s': fork: %s", cmd,
			       strerror(errno));
	}
	if (p == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execvp(argv[0], argv);
		fprintf(stderr, "wisp: --spawn-server: %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	free(copy);
	*pid = p;
	return 0;
}

static int setup_servers(struct vm *vm, struct err *e)
{
	for (int i = 0; i < vm->cfg.nr_servers; i++) {
		const struct server_config *sc = &vm->cfg.servers[i];
		struct server *sv = &vm->servers[vm->nr_servers];
		struct ioreq_client_config cc = { 0 };
		struct window *w = NULL;
		char name[64];
		int ret;

		sv->irq_efd = -1;
		if (sc->spawn)
			snprintf(sv->socket_path, sizeof(sv->socket_path),
				 "/tmp/wisp-%d-server%d.sock", (int)getpid(),
				 i);
		else if (snprintf(sv->socket_path, sizeof(sv->socket_path),
				  "%s",
				  sc->socket) >= (int)sizeof(sv->socket_path))
			/* Cut, it would name another socket. */
			return err_config(e, -ENAMETOOLONG,
					  "--server '%s': %zu bytes, a unix "
					  "socket path has at most %zu",
					  sc->socket, strlen(sc->socket),
					  sizeof(sv->socket_path) - 1);
		vm->nr_servers++;
		if (sc->spawn) {
			ret = spawn_server(sc->spawn, sv->socket_path,
					   &sv->child, e);
			if (ret)
				return ret;
		}
		ret = alloc_window(vm, &w, e);
		if (ret)
			return ret;
		sv->irq_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (sv->irq_efd < 0)
			return err_set(e, -errno, "server %d: eventfd: %s", i,
				       strerror(errno));
		ret = kvm_irqfd(&vm->kvm, sv->irq_efd, w->gsi, false);
		if (ret)
			return err_set(e, ret, "server %d: irqfd: %s", i,
				       strerror(-ret));
		snprintf(name, sizeof(name), "server '%s'", sv->socket_path);
		cc.name = name;
		cc.socket_path = sv->socket_path;
		/* One slot per vCPU, plus one for the main thread's drain of
		 * posted writes. */
		cc.nr_vcpus = vm->ncpus + 1;
		cc.mem = &vm->mem;
		cc.window_base = w->base;
		cc.window_size = VIRTIO_MMIO_SIZE;
		cc.gsi = w->gsi;
		cc.irq_efd = sv->irq_efd;
		cc.doorbells = &vm->ioev;
		cc.posted = (struct ioreq_posted_host){ server_add_posted,
							server_del_posted, vm };
		ret = ioreq_client_create(&cc, &sv->client, e);
		if (ret)
			return ret;
		w->announce = ioreq_client_is_virtio(sv->client);
		ret = bus_register(&vm->mmio, w->base, VIRTIO_MMIO_SIZE,
				   &ioreq_window_ops, sv->client, "ioreq");
		if (ret)
			return err_set(e, ret, "server %d: MMIO window: %s", i,
				       strerror(-ret));
	}
	return 0;
}

static int setup_virtio(struct vm *vm, int *exit_code, struct err *e)
{
	struct virtio_dev *d;
	int ret;

	for (int i = 0; i < vm->cfg.nr_disks; i++) {
		const struct disk_config *dc = &vm->cfg.disks[i];
		struct blk_config bc = { dc->path, dc->readonly, dc->id,
					 dc->direct };

		*exit_code = WISP_EXIT_CONFIG;
		ret = blk_create(&bc, &vm->mem, &d, e);
		if (ret)
			return ret;
		*exit_code = WISP_EXIT_HOST;
		ret = attach_virtio(vm, d, e);
		if (ret)
			return ret;
	}
	if (vm->cfg.rng) {
		struct rng_config rc = { vm->cfg.rng_rate };

		ret = rng_create(&rc, &vm->mem, &d, e);
		if (!ret)
			ret = attach_virtio(vm, d, e);
		if (ret)
			return ret;
	}
	if (vm->cfg.console == CONSOLE_VIRTIO) {
		ret = vconsole_create(STDOUT_FILENO, &vm->mem, &d, e);
		if (!ret)
			ret = attach_virtio(vm, d, e);
		if (ret)
			return ret;
		vm->vconsole = d;
		vconsole_set_rx_space_cb(d, console_has_space, vm);
	}
	return 0;
}

static int setup_console(struct vm *vm, struct err *e)
{
	struct irq_line irq = { irq_kvm_set, vm, SERIAL_COM1_IRQ };
	int fd = -1;

	switch (vm->cfg.serial) {
	case SERIAL_STDIO:
		/* With a virtio console, stdio belongs to it; the 8250 stays
		 * for the guest to find but writes nowhere. */
		if (vm->cfg.console == CONSOLE_VIRTIO) {
			vm->stdin_attached = true;
			break;
		}
		fd = STDOUT_FILENO;
		vm->stdin_attached = true;
		break;
	case SERIAL_FILE:
		fd = open(vm->cfg.serial_path,
			  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return err_set(e, -errno, "serial file '%s': %s",
				       vm->cfg.serial_path, strerror(errno));
		vm->serial_out_fd = fd;
		break;
	case SERIAL_NONE:
		break;
	}
	serial_init(&vm->serial, fd, irq);
	vm->serial.rx_space = console_has_space;
	vm->serial.rx_space_opaque = vm;
	return 0;
}

static int register_devices(struct vm *vm, struct err *e)
{
	int ret;

	ret = bus_register(&vm->pio, SERIAL_COM1_BASE, 8, &serial_bus_ops,
			   &vm->serial, "serial0");
	if (!ret)
		ret = bus_register(&vm->pio, I8042_DATA_PORT, 1,
				   &i8042_data_ops, &vm->i8042, "i8042");
	if (!ret)
		ret = bus_register(&vm->pio, I8042_CMD_PORT, 1, &i8042_cmd_ops,
				   &vm->i8042, "i8042");
	if (!ret && vm->cfg.debug_exit)
		ret = bus_register(&vm->pio, DEBUG_EXIT_PORT, 1,
				   &debug_exit_ops, &vm->dbg, "debug-exit");
	if (ret)
		return err_set(e, ret, "device registration: %s",
			       strerror(-ret));
	return 0;
}

static int setup_memory(struct vm *vm, int *exit_code, struct err *e)
{
	int ret;

	*exit_code = WISP_EXIT_CONFIG;
	ret = guest_mem_init(&vm->mem, vm->cfg.memory_mib << 20, e);
	if (ret)
		return ret;
	*exit_code = WISP_EXIT_HOST;
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_mem_region *r = &vm->mem.regions[i];

		ret = kvm_add_memory(&vm->kvm, r->gpa, r->size,
				     vm->mem.host + r->offset, e);
		if (ret)
			return ret;
	}
	return 0;
}

static int load_guest(struct vm *vm, struct err *e)
{
	char *cmdline = NULL;
	int ret;

	ret = build_cmdline(vm, &cmdline, e);
	if (ret)
		return ret;
	ret = boot_load_files(&vm->mem, vm->cfg.kernel, vm->cfg.initrd, cmdline,
			      &vm->entry, e);
	free(cmdline);
	if (ret)
		return ret;
	ret = mptable_write(&vm->mem, vm->ncpus);
	if (ret)
		return err_set(e, ret, "MP table for %d vCPUs: %s", vm->ncpus,
			       strerror(-ret));
	return cpu_write_boot_tables(&vm->mem, &vm->entry, e);
}

static int setup_vcpus(struct vm *vm, struct err *e)
{
	int ret;

	vm->vcpus = calloc((size_t)vm->ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return err_set(e, -ENOMEM, "vCPUs: out of memory");
	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *vc = &vm->vcpus[i];

		vc->vm = vm;
		vc->kv.fd = -1;
		ret = kvm_create_vcpu(&vm->kvm, i, &vc->kv, e);
		if (ret)
			return ret;
		ret = cpu_setup_vcpu(&vm->kvm, &vc->kv, vm->ncpus, e);
		if (ret)
			return ret;
	}
	vm->coalesced = kvm_coalesced_ring(&vm->kvm, &vm->vcpus[0].kv);
	return cpu_setup_boot_regs(&vm->vcpus[0].kv, &vm->entry, e);
}

/* epoll tags beyond fd numbers */
#define TAG_SERVER (1ull << 32)
#define TAG_RETRY (2ull << 32)
#define TAG_FLUSH (3ull << 32)

/* Posted writes wait in KVM's ring at most this long when no exit
 * drains them first. */
static void arm_flush(struct vm *vm)
{
	struct itimerspec it = { { 0, 1000000 }, { 0, 1000000 } };

	if (vm->flush_tfd >= 0 && atomic_load(&vm->nr_posted_zones) > 0)
		timerfd_settime(vm->flush_tfd, 0, &it, NULL);
}

static int watch_server(struct vm *vm, int i)
{
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = TAG_SERVER + (uint64_t)i };
	int fd = ioreq_client_fd(vm->servers[i].client);

	if (fd < 0 || epoll_ctl(vm->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

static int setup_events(struct vm *vm, struct err *e)
{
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;

	vm->epfd = epoll_create1(EPOLL_CLOEXEC);
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	vm->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (vm->epfd < 0 || vm->stop_efd < 0 || vm->sig_fd < 0)
		return err_set(e, -errno, "event loop: %s", strerror(errno));
	ev.data.u64 = (uint64_t)vm->stop_efd;
	if (epoll_ctl(vm->epfd, EPOLL_CTL_ADD, vm->stop_efd, &ev) < 0)
		return err_set(e, -errno, "event loop: %s", strerror(errno));
	ev.data.u64 = (uint64_t)vm->sig_fd;
	if (epoll_ctl(vm->epfd, EPOLL_CTL_ADD, vm->sig_fd, &ev) < 0)
		return err_set(e, -errno, "event loop: %s", strerror(errno));
	vm->retry_tfd =
		timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (vm->retry_tfd < 0)
		return err_set(e, -errno, "event loop: %s", strerror(errno));
	ev.data.u64 = TAG_RETRY;
	if (epoll_ctl(vm->epfd, EPOLL_CTL_ADD, vm->retry_tfd, &ev) < 0)
		return err_set(e, -errno, "event loop: %s", strerror(errno));
	vm->flush_tfd =
		timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ev.data.u64 = TAG_FLUSH;
	if (vm->flush_tfd < 0 ||
	    epoll_ctl(vm->epfd, EPOLL_CTL_ADD, vm->flush_tfd, &ev) < 0)
		return err_set(e, -errno, "event loop: %s", strerror(errno));
	arm_flush(vm);
	for (int i = 0; i < vm->nr_servers; i++)
		if (watch_server(vm, i))
			return err_set(e, -errno, "event loop: %s",
				       strerror(errno));
	if (vm->stdin_attached) {
		ev.data.u64 = STDIN_FILENO;
		/* EPERM: stdin is a regular file or /dev/null, which epoll
		 * cannot watch; the guest then simply gets no input. */
		if (epoll_ctl(vm->epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) == 0)
			vm->stdin_polled = true;
		else
			vm->stdin_attached = false;
	}
	return 0;
}

/* On PVM an unmodified Linux stops at its first exception: as an
 * internal error (reported with exit 4), or, when the exception is the
 * bzImage decompressor's own page fault, as a silent hang. Say so before
 * it happens. Freestanding guests that take no exceptions run fine. */
static void warn_pvm(struct vm *vm)
{
	if (!vm->kvm.pvm || !vm->entry.linux_kernel)
		return;
	log_warn("/dev/kvm on this host is PVM (no VT-x/AMD-V): a Linux kernel "
		 "that is not PVM-aware stops at its first exception here "
		 "(an internal error, or a hang in the bzImage decompressor). "
		 "Boot Linux on a host with hardware virtualization, or in the "
		 "nested rig: tests/rig/run.sh (see README).");
}

int vm_create(const struct vm_config *cfg, struct vm **out, int *exit_code,
	      struct err *e)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int ret;

	*exit_code = WISP_EXIT_HOST;
	if (!vm)
		return err_set(e, -ENOMEM, "out of memory");
	vm->cfg = *cfg;
	vm->ncpus = cfg->cpus;
	vm->epfd = vm->stop_efd = vm->sig_fd = vm->serial_out_fd = -1;
	vm->retry_tfd = vm->flush_tfd = -1;
	pthread_mutex_init(&vm->coalesced_lock, NULL);
	vm->kvm.sys_fd = vm->kvm.vm_fd = -1;
	vm->mem.memfd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	i8042_init(&vm->i8042, guest_reset, vm);
	vm->dbg = (struct debug_exit){ guest_debug_exit, vm };
	*out = vm;

	if (vm->ncpus < 1 || vm->ncpus > MPTABLE_MAX_CPUS) {
		*exit_code = WISP_EXIT_CONFIG;
		return err_set(e, -EINVAL, "--cpus %d: must be 1..%d",
			       vm->ncpus, MPTABLE_MAX_CPUS);
	}
	ret = kvm_open(&vm->kvm, e);
	if (ret)
		return ret;
	if (vm->ncpus > vm->kvm.max_vcpus) {
		*exit_code = WISP_EXIT_CONFIG;
		return err_set(e, -EINVAL,
			       "--cpus %d: this host's KVM allows %d",
			       vm->ncpus, vm->kvm.max_vcpus);
	}
	ret = kvm_create_vm(&vm->kvm, e);
	if (ret)
		return ret;
	{
		const struct ioevr_host lanes = { kvm_lane_assign,
						  kvm_lane_deassign, vm };

		ret = ioevr_init(&vm->ioev, &lanes);
		if (ret)
			return err_set(e, ret, "ioeventfd registry: %s",
				       strerror(-ret));
		vm->ioev_ready = true;
	}
	ret = setup_memory(vm, exit_code, e);
	if (ret)
		return ret;
	ret = setup_virtio(vm, exit_code, e);
	if (ret)
		return ret;
	*exit_code = WISP_EXIT_CONFIG;
	ret = setup_servers(vm, e);
	if (ret)
		return ret;
	*exit_code = WISP_EXIT_CONFIG;
	ret = load_guest(vm, e);
	if (ret)
		return ret;
	warn_pvm(vm);
	ret = setup_console(vm, e);
	if (ret)
		return ret;
	*exit_code = WISP_EXIT_HOST;
	ret = register_devices(vm, e);
	if (!ret)
		ret = setup_vcpus(vm, e);
	if (!ret)
		ret = setup_events(vm, e);
	return ret;
}

/* --- the event loop --- */

static void arm_retry(struct vm *vm, bool on)
{
	struct itimerspec it = { { 0, 200000000 }, { 0, on ? 200000000 : 0 } };

	if (vm->retry_tfd >= 0)
		timerfd_settime(vm->retry_tfd, 0, &it, NULL);
}

static void handle_server(struct vm *vm, int i)
{
	struct server *sv = &vm->servers[i];

	ioreq_client_handle_event(sv->client);
	if (!ioreq_client_attached(sv->client)) {
		/* Reap a spawned server that died, then wait for it (or a
		 * replacement) to bind the socket again. */
		if (sv->child > 0 &&
		    waitpid(sv->child, NULL, WNOHANG) == sv->child)
			sv->child = 0;
		arm_retry(vm, true);
	}
}

static void handle_flush(struct vm *vm)
{
	uint64_t ticks;

	if (read(vm->flush_tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	flush_coalesced(vm);
}

static void retry_servers(struct vm *vm)
{
	uint64_t ticks;
	bool waiting = false;

	if (read(vm->retry_tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	for (int i = 0; i < vm->nr_servers; i++) {
		struct server *sv = &vm->servers[i];

		if (ioreq_client_attached(sv->client))
			continue;
		if (ioreq_client_try_attach(sv->client) == 0) {
			log_warn("server '%s' attached again", sv->socket_path);
			watch_server(vm, i);
		} else {
			waiting = true;
		}
	}
	if (!waiting)
		arm_retry(vm, false);
}

/* Console input with the escape sequence: Ctrl-A x stops the VM, Ctrl-A
 * Ctrl-A sends one Ctrl-A. Only when the console is an interactive
 * terminal; piped input passes through untouched. */
/* Returns false when the console could not take everything. */
static bool forward_input(struct vm *vm, const uint8_t *buf, size_t n)
{
	uint8_t out[512];
	size_t o = 0, taken;
	bool tty = term_is_raw();

	for (size_t i = 0; i < n && o < sizeof(out); i++) {
		uint8_t c = buf[i];

		if (tty && vm->escape_pending) {
			vm->escape_pending = false;
			if (c == 'x' || c == 'X') {
				log_info("console escape: stopping the VM");
				vm_request_stop(vm,
						WISP_EXIT_SIGNAL_BASE + SIGINT);
				return true;
			}
			if (c != CONSOLE_ESCAPE)
				continue;
		} else if (tty && c == CONSOLE_ESCAPE) {
			vm->escape_pending = true;
			continue;
		}
		out[o++] = c;
	}
	if (vm->vconsole)
		taken = vconsole_push_input(vm->vconsole, out, o);
	else
		taken = serial_push_input(&vm->serial, out, o);
	if (taken < o)
		log_warn("console input: guest not reading, dropped %zu bytes",
			 o - taken);
	return taken == o;
}

static void pause_stdin(struct vm *vm)
{
	pthread_mutex_lock(&vm->serial.lock);
	if (vm->stdin_polled) {
		epoll_ctl(vm->epfd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
		vm->stdin_polled = false;
	}
	pthread_mutex_unlock(&vm->serial.lock);
}

static void handle_stdin(struct vm *vm)
{
	uint8_t buf[512];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* EOF or error: the guest keeps running without input. */
		pause_stdin(vm);
		pthread_mutex_lock(&vm->serial.lock);
		vm->stdin_attached = false;
		pthread_mutex_unlock(&vm->serial.lock);
		return;
	}
	/* Stop reading while the guest has no room; the console's rx_space
	 * callback re-arms stdin. */
	if (!forward_input(vm, buf, (size_t)n) ||
	    (!vm->vconsole && serial_rx_full(&vm->serial)))
		pause_stdin(vm);
}

static void handle_signal(struct vm *vm)
{
	struct signalfd_siginfo si;

	while (read(vm->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		log_info("signal %u: stopping the VM", si.ssi_signo);
		vm_request_stop(vm, WISP_EXIT_SIGNAL_BASE + (int)si.ssi_signo);
	}
}

static void stop_vcpus(struct vm *vm)
{
	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *vc = &vm->vcpus[i];

		if (!vc->started)
			continue;
		vc->kv.run->immediate_exit = 1;
		pthread_kill(vc->thread, SIG_KICK);
	}
	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *vc = &vm->vcpus[i];

		if (!vc->started)
			continue;
		/* A kick can land just before the thread re-enters KVM_RUN
		 * and is then lost; immediate_exit covers KVM_RUN itself,
		 * re-kicking covers the rest. Bounded: a thread stuck in a
		 * blocking console write for 10 s is abandoned (the process
		 * is about to exit) rather than hanging the stop. */
		for (int tries = 0;
		     pthread_tryjoin_np(vc->thread, NULL) == EBUSY; tries++) {
			struct timespec ts = { 0, 1000000 };

			if (tries == 10000) {
				log_error("vCPU %d: did not stop within 10 s",
					  i);
				pthread_detach(vc->thread);
				break;
			}
			pthread_kill(vc->thread, SIG_KICK);
			nanosleep(&ts, NULL);
		}
		vc->started = false;
	}
}

int vm_run(struct vm *vm)
{
	struct sigaction sa;
	sigset_t block;
	int ret;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigaction(SIG_KICK, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Threads inherit this mask: SIGINT/SIGTERM only via signalfd, the
	 * kick only on vCPU threads (they unblock it themselves). */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIG_KICK);
	pthread_sigmask(SIG_BLOCK, &block, NULL);

	if (vm->stdin_attached && term_raw_enter(STDIN_FILENO) == 0)
		log_info("console: raw mode; Ctrl-A x quits");

	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *vc = &vm->vcpus[i];

		ret = pthread_create(&vc->thread, NULL, vcpu_main, vc);
		if (ret) {
			log_error("vCPU %d: thread: %s", i, strerror(ret));
			vm_request_stop(vm, WISP_EXIT_HOST);
			break;
		}
		vc->started = true;
	}

	while (!vm_is_stopping(vm)) {
		struct epoll_event evs[4];
		int n = epoll_wait(vm->epfd, evs, 4, -1);

		if (n < 0 && errno != EINTR) {
			log_error("event loop: %s", strerror(errno));
			vm_request_stop(vm, WISP_EXIT_HOST);
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag == (uint64_t)vm->sig_fd)
				handle_signal(vm);
			else if (tag == STDIN_FILENO)
				handle_stdin(vm);
			else if (tag == TAG_RETRY)
				retry_servers(vm);
			else if (tag == TAG_FLUSH)
				handle_flush(vm);
			else if (tag >= TAG_SERVER &&
				 tag < TAG_SERVER + VM_MAX_SERVERS)
				handle_server(vm, (int)(tag - TAG_SERVER));
		}
	}
	/* Wait until the stopper has published exit_code. */
	while (atomic_load(&vm->stopping) < 0)
		sched_yield();
	stop_vcpus(vm);
	term_restore();
	/* Where was the guest when it was stopped from outside? Cheap to
	 * print, and the first question when a guest seems hung. */
	if (vm->exit_code >= WISP_EXIT_SIGNAL_BASE && log_enabled(LOG_DEBUG))
		for (int i = 0; i < vm->ncpus; i++)
			cpu_dump_regs(&vm->vcpus[i].kv, stderr);
	if (atomic_load(&vm->first_io_ns))
		log_debug("first guest I/O exit at CLOCK_MONOTONIC %llu ns",
			  (unsigned long long)atomic_load(&vm->first_io_ns));
	return vm->exit_code;
}

/* A spawned server gets SIGTERM and 2 s to go, then SIGKILL. */
static void reap_child(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		struct timespec ts = { 0, 10000000 };

		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	if (vm->vcpus) {
		stop_vcpus(vm);
		for (int i = 0; i < vm->ncpus; i++)
			if (vm->vcpus[i].kv.fd >= 0)
				kvm_destroy_vcpu(&vm->kvm, &vm->vcpus[i].kv);
		free(vm->vcpus);
	}
	for (int i = 0; i < vm->nr_servers; i++) {
		struct server *sv = &vm->servers[i];

		ioreq_client_destroy(sv->client);
		if (sv->irq_efd >= 0) {
			kvm_irqfd(&vm->kvm, sv->irq_efd, 0, true);
			close(sv->irq_efd);
		}
		if (sv->child > 0)
			reap_child(sv->child);
		if (sv->child > 0 || !vm->cfg.servers[i].socket)
			unlink(sv->socket_path);
	}
	for (int i = 0; i < vm->nr_virtio; i++)
		virtio_mmio_destroy(vm->virtio[i]);
	if (vm->ioev_ready)
		ioevr_destroy(&vm->ioev);
	if (vm->retry_tfd >= 0)
		close(vm->retry_tfd);
	if (vm->flush_tfd >= 0)
		close(vm->flush_tfd);
	pthread_mutex_destroy(&vm->coalesced_lock);
	if (vm->epfd >= 0)
		close(vm->epfd);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	if (vm->sig_fd >= 0)
		close(vm->sig_fd);
	if (vm->serial_out_fd >= 0)
		close(vm->serial_out_fd);
	serial_destroy(&vm->serial);
	i8042_destroy(&vm->i8042);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	guest_mem_destroy(&vm->mem);
	kvm_close(&vm->kvm);
	term_restore();
	free(vm);
}
