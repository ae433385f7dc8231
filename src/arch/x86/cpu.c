// SPDX-License-Identifier: MIT
#include "arch/x86/cpu.h"

#include <cpuid.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/layout.h"
#include "util/log.h"

#define X86_CR0_PE (1ULL << 0)
#define X86_CR0_ET (1ULL << 4)
#define X86_CR0_PG (1ULL << 31)
#define X86_CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

/* Boot GDT selectors: the Linux boot protocol wants __BOOT_CS = 0x10 and
 * __BOOT_DS = 0x18; the PVH ABI only needs flat segments, so both modes
 * share the layout and differ in the code segment's L/D bits. */
#define GDT_CODE 2
#define GDT_DATA 3
#define GDT_TSS 4
#define GDT_ENTRIES 5

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) |
	       ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) |
	       ((uint64_t)(base & 0x00ffffffu) << 16) | (limit & 0xffffu);
}

static struct kvm_segment seg_from_gdt(uint64_t d, uint16_t index)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | (((d >> 48) & 0xf) << 16));

	/* KVM wants the limit in bytes: with G set the descriptor counts
	 * 4 KiB pages. (Long mode ignores it; a 32-bit PVH entry does not,
	 * and a 1 MiB limit faults on the first access to the kernel.) */
	if ((d >> 55) & 1)
		limit = (limit << 12) | 0xfff;
	return (struct kvm_segment){
		.base = (uint32_t)(((d >> 16) & 0xffffff) |
				   (((d >> 56) & 0xff) << 24)),
		.limit = limit,
		.selector = (uint16_t)(index * 8),
		.type = (uint8_t)((d >> 40) & 0xf),
		.present = (uint8_t)((d >> 47) & 1),
		.dpl = (uint8_t)((d >> 45) & 3),
		.db = (uint8_t)((d >> 54) & 1),
		.s = (uint8_t)((d >> 44) & 1),
		.l = (uint8_t)((d >> 53) & 1),
		.g = (uint8_t)((d >> 55) & 1),
	};
}

static void boot_gdt(const struct boot_entry *be, uint64_t gdt[GDT_ENTRIES])
{
	memset(gdt, 0, GDT_ENTRIES * sizeof(gdt[0]));
	if (be->mode == BOOT_ENTRY_LONG64)
		gdt[GDT_CODE] = gdt_entry(0xa09b, 0, 0xfffff);
	else
		gdt[GDT_CODE] = gdt_entry(0xc09b, 0, 0xfffff);
	gdt[GDT_DATA] = gdt_entry(0xc093, 0, 0xfffff);
	gdt[GDT_TSS] = gdt_entry(0x008b, 0, 0x67);
}

int cpu_write_boot_tables(struct guest_mem *m, const struct boot_entry *be,
			  struct err *e)
{
	uint64_t gdt[GDT_ENTRIES];
	uint64_t *pml4, *pdpt, *pd;

	boot_gdt(be, gdt);
	if (guest_mem_write(m, LAYOUT_GDT, gdt, sizeof(gdt)))
		return err_set(e, -EFAULT, "boot GDT: outside guest RAM");
	if (be->mode != BOOT_ENTRY_LONG64)
		return 0;

	/* Identity map of the first 4 GiB with 2 MiB pages: covers the
	 * kernel, zero page, command line and an initrd anywhere in low
	 * RAM, which is all the 64-bit boot protocol asks for. */
	pml4 = guest_mem_ptr(m, LAYOUT_PML4, 4096);
	pdpt = guest_mem_ptr(m, LAYOUT_PDPT, 4096);
	pd = guest_mem_ptr(m, LAYOUT_PD, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return err_set(e, -EFAULT,
			       "boot page tables: outside guest RAM");
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | 0x3;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83;
	return 0;
}

#define CPUID_VENDOR_AMD_EBX 0x68747541 /* "Auth" */
#define CPUID_VENDOR_HYGON_EBX 0x6f677948 /* "Hygo" */

#define CPUID1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID1_ECX_HYPERVISOR (1u << 31)
#define CPUID1_EDX_HTT (1u << 28)

/* KVM's paravirtual features whose MSRs and hypercalls the kernel
 * handles on its own with an in-kernel irqchip. Left out: MSI_EXT_DEST_ID
 * (needs a split irqchip; the in-kernel IOAPIC has 8-bit destinations),
 * HC_MAP_GPA_RANGE (exits to userspace, which wisp does not serve) and
 * MIGRATION_CONTROL (a userspace MSR). */
#define KVM_PV_IN_KERNEL                                                   \
	((1u << 0) /* CLOCKSOURCE */ | (1u << 1) /* NOP_IO_DELAY */ |      \
	 (1u << 3) /* CLOCKSOURCE2 */ | (1u << 4) /* ASYNC_PF */ |         \
	 (1u << 5) /* STEAL_TIME */ | (1u << 6) /* PV_EOI */ |             \
	 (1u << 7) /* PV_UNHALT */ | (1u << 9) /* PV_TLB_FLUSH */ |        \
	 (1u << 10) /* ASYNC_PF_VMEXIT */ | (1u << 11) /* PV_SEND_IPI */ | \
	 (1u << 12) /* POLL_CONTROL */ | (1u << 13) /* PV_SCHED_YIELD */ | \
	 (1u << 14) /* ASYNC_PF_INT */ | (1u << 24) /* CLOCKSOURCE_STABLE */)

/* Asynchronous page faults: the #PF-based "not present" notification,
 * its delivery to a nested guest, and the "page ready" interrupt. */
#define KVM_PV_ASYNC_PF ((1u << 4) | (1u << 10) | (1u << 14))

#define KVM_LEAF_SIGNATURE 0x40000000
#define KVM_LEAF_FEATURES 0x40000001
#define KVM_LEAF_TIMING 0x40000010
/* KVM's emulated LAPIC timer counts at 1 GHz (one bus cycle per ns). */
#define KVM_APIC_BUS_KHZ 1000000u

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn,
					   uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn &&
		    (!(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
		     c->entries[i].index == index))
			return &c->entries[i];
	return NULL;
}

/* The entry for (fn, index), appended if missing; the caller sized the
 * table for every append. */
static struct kvm_cpuid_entry2 *cpuid_get(struct kvm_cpuid2 *c, uint32_t fn,
					  uint32_t index, bool indexed)
{
	struct kvm_cpuid_entry2 *en = cpuid_find(c, fn, index);

	if (en)
		return en;
	en = &c->entries[c->nent++];
	memset(en, 0, sizeof(*en));
	en->function = fn;
	en->index = index;
	en->flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
	return en;
}

static void cpuid_remove(struct kvm_cpuid2 *c, uint32_t fn)
{
	uint32_t j = 0;

	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function != fn)
			c->entries[j++] = c->entries[i];
	c->nent = j;
}

/* Leaf 0xb, levels SMT (one thread per core), core (ncpus cores in one
 * package) and the invalid level that ends the enumeration. KVM reports
 * only subleaf 0, and a guest that finds no core level counts every vCPU
 * as its own package. */
static void cpuid_topology(struct kvm_cpuid2 *c, int id, int ncpus,
			   unsigned int shift)
{
	struct kvm_cpuid_entry2 *en;

	cpuid_remove(c, 0xb);
	en = cpuid_get(c, 0xb, 0, true);
	en->eax = 0;
	en->ebx = 1;
	en->ecx = (1u << 8) | 0;
	en->edx = (uint32_t)id;
	en = cpuid_get(c, 0xb, 1, true);
	en->eax = shift;
	en->ebx = (uint32_t)ncpus;
	en->ecx = (2u << 8) | 1;
	en->edx = (uint32_t)id;
	en = cpuid_get(c, 0xb, 2, true);
	en->eax = en->ebx = 0;
	en->ecx = 2;
	en->edx = (uint32_t)id;
	/* Leaf 0x1f would take precedence and adds nothing without dies. */
	cpuid_remove(c, 0x1f);
}

/* Cache sharing in a deterministic-cache leaf (0x4 Intel, 0x8000001d
 * AMD; both put the level in EAX[7:5] and "IDs sharing it - 1" in
 * EAX[25:14]): L1 and L2 private to a core, L3 shared by the package. */
static uint32_t cache_sharing(uint32_t eax, unsigned int shift)
{
	uint32_t level = (eax >> 5) & 7;
	uint32_t share = level >= 3 ? (1u << shift) - 1 : 0;

	return (eax & ~(0xfffu << 14)) | ((share & 0xfff) << 14);
}

struct kvm_cpuid2 *cpuid_build(const struct kvm_cpuid2 *supported,
			       const struct cpuid_host *host, int id, int ncpus)
{
	/* Appended at most: 0xb x3, brand x3, 0x40000010. */
	uint32_t cap = supported->nent + 8;
	struct kvm_cpuid2 *c;
	struct kvm_cpuid_entry2 *en, *l0, *ext;
	unsigned int shift = 0;
	bool amd;

	if (ncpus < 1 || id < 0 || id >= ncpus)
		return NULL;
	c = calloc(1, sizeof(*c) + cap * sizeof(c->entries[0]));
	if (!c)
		return NULL;
	c->nent = supported->nent;
	memcpy(c->entries, supported->entries,
	       supported->nent * sizeof(c->entries[0]));
	while ((1 << shift) < ncpus)
		shift++;
	l0 = cpuid_find(c, 0, 0);
	amd = l0 && (l0->ebx == CPUID_VENDOR_AMD_EBX ||
		     l0->ebx == CPUID_VENDOR_HYGON_EBX);

	for (uint32_t i = 0; i < c->nent; i++) {
		en = &c->entries[i];
		switch (en->function) {
		case 0x1:
			en->ebx = (en->ebx & 0x0000ffff) |
				  ((uint32_t)id << 24) |
				  ((uint32_t)(ncpus > 255 ? 255 : ncpus) << 16);
			en->ecx |= CPUID1_ECX_HYPERVISOR;
			/* KVM emulates the TSC-deadline mode in the
			 * in-kernel LAPIC but leaves the bit to the VMM;
			 * without it Linux calibrates the LAPIC timer. */
			if (host->tsc_deadline)
				en->ecx |= CPUID1_ECX_TSC_DEADLINE;
			if (ncpus > 1)
				en->edx |= CPUID1_EDX_HTT;
			else
				en->edx &= ~CPUID1_EDX_HTT;
			break;
		case 0x4:
			if (!(en->eax & 0x1f))
				break; /* no more caches */
			en->eax = (cache_sharing(en->eax, shift) & 0x03ffffff) |
				  ((((1u << shift) - 1) & 0x3f) << 26);
			break;
		case 0x8000001d:
			if (en->eax & 0x1f)
				en->eax = cache_sharing(en->eax, shift);
			break;
		case 0x80000008:
			/* AMD: NC = cores - 1, ApicIdCoreIdSize. */
			if (amd)
				en->ecx = (en->ecx & ~0xf0ffu) | (shift << 12) |
					  (uint32_t)(ncpus - 1);
			break;
		case 0x8000001e:
			en->eax = (uint32_t)id;
			en->ebx = (uint32_t)id & 0xff; /* core id, 1 thread */
			en->ecx = 0;
			break;
		case KVM_LEAF_FEATURES:
			en->eax &= KVM_PV_IN_KERNEL;
			if (host->no_async_pf)
				en->eax &= ~KVM_PV_ASYNC_PF;
			en->edx = 0; /* hints: no dedicated pCPUs promised */
			break;
		default:
			break;
		}
	}
	if (cpuid_find(c, 0xb, 0) && l0 && l0->eax >= 0xb)
		cpuid_topology(c, id, ncpus, shift);
	else
		cpuid_remove(c, 0x1f);

	/* KVM zeroes the brand string; QEMU's -cpu host passes the host's,
	 * and so does wisp (Linux names the CPU by it). */
	ext = cpuid_find(c, 0x80000000, 0);
	if (ext && ext->eax >= 0x80000004 && host->brand[0]) {
		for (uint32_t f = 0; f < 3; f++) {
			en = cpuid_get(c, 0x80000002 + f, 0, false);
			en->eax = host->brand[f * 4 + 0];
			en->ebx = host->brand[f * 4 + 1];
			en->ecx = host->brand[f * 4 + 2];
			en->edx = host->brand[f * 4 + 3];
		}
	}

	/* The TSC and LAPIC timer frequencies (the leaf VMware defined and
	 * KVM guests read where they trust it), so no guest has to
	 * calibrate either. */
	en = cpuid_find(c, KVM_LEAF_SIGNATURE, 0);
	if (en && host->tsc_khz) {
		if (en->eax < KVM_LEAF_TIMING)
			en->eax = KVM_LEAF_TIMING;
		en = cpuid_get(c, KVM_LEAF_TIMING, 0, false);
		en->eax = host->tsc_khz;
		en->ebx = KVM_APIC_BUS_KHZ;
		en->ecx = en->edx = 0;
	}
	return c;
}

void cpuid_host_read(struct cpuid_host *h)
{
	unsigned int a, b, c, d;

	memset(h, 0, sizeof(*h));
	if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000004)
		return;
	for (unsigned int f = 0; f < 3; f++) {
		__get_cpuid(0x80000002 + f, &a, &b, &c, &d);
		h->brand[f * 4 + 0] = a;
		h->brand[f * 4 + 1] = b;
		h->brand[f * 4 + 2] = c;
		h->brand[f * 4 + 3] = d;
	}
}

static int set_cpuid(struct kvm *k, struct kvm_vcpu *v, int ncpus,
		     bool async_pf, struct err *e)
{
	struct cpuid_host host;
	struct kvm_cpuid2 *c;
	int ret = 0, khz;

	cpuid_host_read(&host);
	host.tsc_deadline = k->tsc_deadline;
	host.no_async_pf = !async_pf;
	if (k->get_tsc_khz) {
		khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
		if (khz > 0)
			host.tsc_khz = (uint32_t)khz;
	}
	c = cpuid_build(k->supported_cpuid, &host, v->id, ncpus);
	if (!c)
		return err_set(e, -ENOMEM, "vCPU %d: CPUID: out of memory",
			       v->id);
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		ret = err_set(e, -errno, "vCPU %d: KVM_SET_CPUID2: %s", v->id,
			      strerror(errno));
	free(c);
	return ret;
}

static int set_msrs(struct kvm_vcpu *v, struct err *e)
{
	static const struct {
		uint32_t index;
		uint64_t data;
	} init[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },
		{ MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 },
		{ MSR_STAR, 0 },
		{ MSR_CSTAR, 0 },
		{ MSR_KERNEL_GS_BASE, 0 },
		{ MSR_SYSCALL_MASK, 0 },
		{ MSR_LSTAR, 0 },
		{ MSR_IA32_TSC, 0 },
		{ MSR_IA32_MISC_ENABLE, 1 }, /* fast strings */
		{ MSR_MTRR_DEF_TYPE, (1u << 11) | 6 }, /* MTRRs on, WB */
	};
	const unsigned int n = sizeof(init) / sizeof(init[0]);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[sizeof(init) / sizeof(init[0])];
	} msrs;
	int ret;

	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = n;
	for (unsigned int i = 0; i < n; i++) {
		msrs.entries[i].index = init[i].index;
		msrs.entries[i].data = init[i].data;
	}
	ret = ioctl(v->fd, KVM_SET_MSRS, &msrs);
	if (ret < 0)
		return err_set(e, -errno, "vCPU %d: KVM_SET_MSRS: %s", v->id,
			       strerror(errno));
	if ((unsigned int)ret != n)
		return err_set(e, -EINVAL, "vCPU %d: KVM rejected MSR 0x%x",
			       v->id, msrs.entries[ret].index);
	return 0;
}

static int set_fpu_lapic(struct kvm_vcpu *v, struct err *e)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	struct kvm_lapic_state lapic;
	uint32_t *lint0, *lint1;

	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return err_set(e, -errno, "vCPU %d: KVM_SET_FPU: %s", v->id,
			       strerror(errno));
	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return err_set(e, -errno, "vCPU %d: KVM_GET_LAPIC: %s", v->id,
			       strerror(errno));
	/* Virtual-wire mode, as a BIOS leaves it: the PIC's output on LINT0,
	 * NMI on LINT1. */
	lint0 = (uint32_t *)(void *)&lapic.regs[APIC_LVT_LINT0];
	lint1 = (uint32_t *)(void *)&lapic.regs[APIC_LVT_LINT1];
	*lint0 = (*lint0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
	*lint1 = (*lint1 & ~0x700u) | (APIC_MODE_NMI << 8);
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		return err_set(e, -errno, "vCPU %d: KVM_SET_LAPIC: %s", v->id,
			       strerror(errno));
	return 0;
}

int cpu_setup_vcpu(struct kvm *k, struct kvm_vcpu *v, int ncpus, bool async_pf,
		   struct err *e)
{
	int ret = set_cpuid(k, v, ncpus, async_pf, e);

	if (!ret)
		ret = set_msrs(v, e);
	if (!ret)
		ret = set_fpu_lapic(v, e);
	return ret;
}

int cpu_setup_boot_regs(struct kvm_vcpu *v, const struct boot_entry *be,
			struct err *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint64_t gdt[GDT_ENTRIES];
	struct kvm_segment data;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return err_set(e, -errno, "vCPU %d: KVM_GET_SREGS: %s", v->id,
			       strerror(errno));
	boot_gdt(be, gdt);
	sregs.gdt.base = LAYOUT_GDT;
	sregs.gdt.limit = sizeof(gdt) - 1;
	/* No IDT: the kernel installs its own before enabling interrupts;
	 * an exception before that is a triple fault, reported as a crash. */
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cs = seg_from_gdt(gdt[GDT_CODE], GDT_CODE);
	data = seg_from_gdt(gdt[GDT_DATA], GDT_DATA);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = seg_from_gdt(gdt[GDT_TSS], GDT_TSS);
	sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (be->mode == BOOT_ENTRY_LONG64) {
		sregs.cr3 = LAYOUT_PML4;
		sregs.cr4 |= X86_CR4_PAE;
		sregs.cr0 |= X86_CR0_PG;
		sregs.efer |= EFER_LME | EFER_LMA;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return err_set(e, -errno, "vCPU %d: KVM_SET_SREGS: %s", v->id,
			       strerror(errno));

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = be->rip;
	regs.rsp = be->rsp;
	regs.rbp = be->rsp;
	regs.rsi = be->rsi;
	regs.rbx = be->rbx;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return err_set(e, -errno, "vCPU %d: KVM_SET_REGS: %s", v->id,
			       strerror(errno));
	return 0;
}

/* One log line per row, so a log sink's lines each carry their stamp. */
void cpu_dump_regs(struct kvm_vcpu *v, enum log_level lvl)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 ||
	    ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		log_msg(lvl, "vCPU %d: registers unavailable: %s", v->id,
			strerror(errno));
		return;
	}
	log_msg(lvl,
		"vCPU %d registers: rip %016llx  rsp %016llx  "
		"rflags %016llx",
		v->id, r.rip, r.rsp, r.rflags);
	log_msg(lvl,
		"vCPU %d   rax %016llx  rbx %016llx  rcx %016llx  "
		"rdx %016llx",
		v->id, r.rax, r.rbx, r.rcx, r.rdx);
	log_msg(lvl, "vCPU %d   rsi %016llx  rdi %016llx  rbp %016llx", v->id,
		r.rsi, r.rdi, r.rbp);
	log_msg(lvl,
		"vCPU %d   r8  %016llx  r9  %016llx  r10 %016llx  "
		"r11 %016llx",
		v->id, r.r8, r.r9, r.r10, r.r11);
	log_msg(lvl,
		"vCPU %d   r12 %016llx  r13 %016llx  r14 %016llx  "
		"r15 %016llx",
		v->id, r.r12, r.r13, r.r14, r.r15);
	log_msg(lvl,
		"vCPU %d   cr0 %016llx  cr2 %016llx  cr3 %016llx  "
		"cr4 %016llx",
		v->id, s.cr0, s.cr2, s.cr3, s.cr4);
	log_msg(lvl,
		"vCPU %d   efer %016llx  cs %04x (base %llx)  ss %04x  "
		"gdt %llx/%x  idt %llx/%x",
		v->id, s.efer, s.cs.selector, s.cs.base, s.ss.selector,
		s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
}
