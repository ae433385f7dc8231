// SPDX-License-Identifier: MIT
/*
 * The floor for wisp's exit costs: the least a KVM program can do per
 * guest access, on the same KVM configuration as wisp (in-kernel irqchip
 * and PIT, KVM's supported CPUID, a long-mode vCPU).
 *
 * The guest times n 4-byte writes of 0 to addr with rdtsc, as wisp's test
 * guest does (test=bench op=write), and reports the cycles through a port
 * write. Modes:
 *   mmio       addr is unclaimed MMIO: every write is a KVM_EXIT_MMIO
 *              that this loop answers by re-entering at once
 *   ioeventfd  a KVM_IOEVENTFD lane at addr, drained by a consumer thread
 *              blocked in read(): no userspace exit per write
 *
 * usage: minkvm [--mode mmio|ioeventfd] [--n N] [--addr HEX] [--thread]
 *   --thread   run the vCPU on a second thread, as wisp does
 * prints: minkvm mode=M n=N cycles/op=C tsc_khz=K ns/op=T
 *                host-ns/exit=H (mmio: wall time of the KVM_RUN loop)
 * exit status: 0, or 1 with a message on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE (2u << 20)
#define CODE 0x1000
#define GDT 0x500
#define PML4 0x2000
#define PDPT 0x3000
#define PD 0x4000 /* four pages: 4 GiB of 2 MiB pages */
#define REPORT_PORT 0xf4

/* rdi = addr, rcx = n; the cycle count ends in rax at the port write. */
__asm__(".pushsection .rodata\n"
	".globl mk_guest\n"
	".globl mk_guest_end\n"
	"mk_guest:\n"
	"	lfence\n"
	"	rdtsc\n"
	"	shl $32, %rdx\n"
	"	or %rax, %rdx\n"
	"	mov %rdx, %r8\n"
	"1:	movl $0, (%rdi)\n"
	"	dec %rcx\n"
	"	jnz 1b\n"
	"	lfence\n"
	"	rdtsc\n"
	"	shl $32, %rdx\n"
	"	or %rdx, %rax\n"
	"	sub %r8, %rax\n"
	"	out %al, $0xf4\n"
	"2:	jmp 2b\n"
	"mk_guest_end:\n"
	".popsection\n");
extern const uint8_t mk_guest[], mk_guest_end[];

static int die(const char *what)
{
	fprintf(stderr, "minkvm: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *consumer(void *arg)
{
	int fd = *(int *)arg;
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == sizeof(v) || errno == EINTR)
		;
	return NULL;
}

static void setup_long_mode(int vcpu, uint8_t *mem, uint64_t addr, uint64_t n)
{
	uint64_t *gdt = (uint64_t *)(void *)(mem + GDT);
	uint64_t *pml4 = (uint64_t *)(void *)(mem + PML4);
	uint64_t *pdpt = (uint64_t *)(void *)(mem + PDPT);
	uint64_t *pd = (uint64_t *)(void *)(mem + PD);
	struct kvm_segment cs = { .base = 0,
				  .limit = 0xffffffff,
				  .selector = 0x8,
				  .type = 0xb,
				  .present = 1,
				  .s = 1,
				  .l = 1,
				  .g = 1 };
	struct kvm_segment ds = { .base = 0,
				  .limit = 0xffffffff,
				  .selector = 0x10,
				  .type = 0x3,
				  .present = 1,
				  .s = 1,
				  .db = 1,
				  .g = 1 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };

	gdt[1] = 0x00af9b000000ffffull;
	gdt[2] = 0x00cf93000000ffffull;
	pml4[0] = PDPT | 3;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (PD + i * 4096) | 3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83;
	memcpy(mem + CODE, mk_guest, (size_t)(mk_guest_end - mk_guest));

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.gdt.base = GDT;
	sregs.gdt.limit = 3 * 8 - 1;
	sregs.cs = cs;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = ds;
	sregs.cr3 = PML4;
	sregs.cr4 = 1u << 5; /* PAE */
	sregs.cr0 = (1u << 0) | (1u << 4) | (1u << 31); /* PE, ET, PG */
	sregs.efer = (1u << 8) | (1u << 10); /* LME, LMA */
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
	regs.rflags = 2;
	regs.rip = CODE;
	regs.rsp = 0x1000;
	regs.rdi = addr;
	regs.rcx = n;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");
}

static void set_cpuid(int sys, int vcpu)
{
	int n = 256;
	struct kvm_cpuid2 *c =
		calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

	if (!c)
		die("calloc");
	c->nent = (uint32_t)n;
	if (ioctl(sys, KVM_GET_SUPPORTED_CPUID, c) < 0)
		die("KVM_GET_SUPPORTED_CPUID");
	if (ioctl(vcpu, KVM_SET_CPUID2, c) < 0)
		die("KVM_SET_CPUID2");
	free(c);
}

struct loop {
	int vcpu;
	struct kvm_run *run;
	uint64_t exits, t0, t1;
	int ret;
};

/* KVM_RUN until the guest's report; counts the MMIO exits. */
static void *run_loop(void *arg)
{
	struct loop *l = arg;

	for (;;) {
		if (ioctl(l->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		if (l->run->exit_reason == KVM_EXIT_MMIO) {
			if (l->exits++ == 0)
				l->t0 = now_ns();
			continue;
		}
		if (l->run->exit_reason == KVM_EXIT_IO &&
		    l->run->io.port == REPORT_PORT)
			break;
		fprintf(stderr, "minkvm: unexpected exit reason %u\n",
			l->run->exit_reason);
		l->ret = 1;
		return NULL;
	}
	l->t1 = now_ns();
	return NULL;
}

int main(int argc, char **argv)
{
	const char *mode = "mmio";
	uint64_t n = 200000, addr = 0xd0100000, exits = 0, t0 = 0, t1;
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	struct kvm_userspace_memory_region region = { 0 };
	int sys, vm, vcpu, efd = -1, khz, run_size;
	struct kvm_run *run;
	struct kvm_regs regs;
	pthread_t thr;
	uint8_t *mem;
	struct loop lp = { 0 };
	bool ioev, threaded = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mode") && i + 1 < argc)
			mode = argv[++i];
		else if (!strcmp(argv[i], "--n") && i + 1 < argc)
			n = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--thread"))
			threaded = true;
		else if (!strcmp(argv[i], "--addr") && i + 1 < argc)
			addr = strtoull(argv[++i], NULL, 16);
		else {
			fprintf(stderr, "usage: minkvm [--mode mmio|ioeventfd] "
					"[--n N] [--addr HEX] [--thread]\n");
			return 1;
		}
	}
	ioev = !strcmp(mode, "ioeventfd");
	if ((!ioev && strcmp(mode, "mmio")) || n == 0 || addr < MEM_SIZE ||
	    addr >= (4ull << 30)) {
		fprintf(stderr, "minkvm: bad mode, n or addr (RAM is the first "
				"2 MiB, the page tables map 4 GiB)\n");
		return 1;
	}

	sys = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (sys < 0)
		die("/dev/kvm");
	vm = ioctl(sys, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0)
		die("KVM_SET_TSS_ADDR");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		die("KVM_CREATE_IRQCHIP");
	if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
		die("KVM_CREATE_PIT2");
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	region.memory_size = MEM_SIZE;
	region.userspace_addr = (uint64_t)(uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	run_size = ioctl(sys, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	set_cpuid(sys, vcpu);
	setup_long_mode(vcpu, mem, addr, n);
	khz = ioctl(vcpu, KVM_GET_TSC_KHZ, 0);

	if (ioev) {
		struct kvm_ioeventfd io = { .addr = addr, .len = 4 };

		efd = eventfd(0, EFD_CLOEXEC);
		if (efd < 0)
			die("eventfd");
		io.fd = efd;
		if (ioctl(vm, KVM_IOEVENTFD, &io) < 0)
			die("KVM_IOEVENTFD");
		if (pthread_create(&thr, NULL, consumer, &efd))
			die("pthread_create");
	}

	lp.vcpu = vcpu;
	lp.run = run;
	if (threaded) {
		/* As a VMM with a main loop runs it: on its own thread. */
		pthread_t vt;

		if (pthread_create(&vt, NULL, run_loop, &lp) ||
		    pthread_join(vt, NULL))
			die("vCPU thread");
	} else
		run_loop(&lp);
	if (lp.ret)
		return lp.ret;
	exits = lp.exits;
	t0 = lp.t0;
	t1 = lp.t1;
	if (ioctl(vcpu, KVM_GET_REGS, &regs) < 0)
		die("KVM_GET_REGS");
	if (!ioev && exits != n) {
		fprintf(stderr,
			"minkvm: %" PRIu64 " MMIO exits for %" PRIu64
			" writes\n",
			exits, n);
		return 1;
	}
	printf("minkvm mode=%s n=%" PRIu64 " cycles/op=%" PRIu64
	       " tsc_khz=%d ns/op=%.1f",
	       mode, n, (uint64_t)regs.rax / n, khz,
	       khz > 0 ? (double)regs.rax / n * 1e6 / khz : 0.0);
	if (!ioev && exits > 1)
		printf(" host-ns/exit=%.1f", (double)(t1 - t0) / (exits - 1));
	printf("\n");
	return 0;
}
