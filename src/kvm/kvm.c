// SPDX-License-Identifier: MIT
#include "kvm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/layout.h"

struct kvm_cap_req {
	int cap;
	const char *name;
	const char *why;
};

/* Every capability wisp relies on, checked once up front so a host that
 * lacks one fails at start with its name rather than mid-boot. */
static const struct kvm_cap_req required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel PIC/IOAPIC/LAPIC" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "TSS placement" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR",
	  "identity map placement" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "CPUID setup" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT",
	  "race-free vCPU stop" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "doorbells" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "device interrupts" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "SMP start-up" },
};

bool kvm_host_is_pvm(void)
{
	char line[4096];
	bool hwvirt = false;
	FILE *f;

	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		return true;
	f = fopen("/proc/cpuinfo", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5))
			continue;
		hwvirt = strstr(line, " vmx") || strstr(line, " svm");
		break;
	}
	fclose(f);
	return !hwvirt;
}

static int read_supported_cpuid(struct kvm *k, struct err *e)
{
	int n = 128;

	for (;;) {
		struct kvm_cpuid2 *c =
			calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return err_set(e, -ENOMEM, "kvm: out of memory");
		c->nent = n;
		if (ioctl(k->sys_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			k->supported_cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG || n >= 4096)
			return err_set(e, -errno,
				       "kvm: KVM_GET_SUPPORTED_CPUID: %s",
				       strerror(errno));
		n *= 2;
	}
}

int kvm_open(struct kvm *k, struct err *e)
{
	int ret, ver;

	memset(k, 0, sizeof(*k));
	k->vm_fd = -1;
	k->sys_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->sys_fd < 0)
		return err_set(
			e, -errno, "/dev/kvm: %s%s", strerror(errno),
			errno == ENOENT ? " (is the kvm module loaded?)" :
			errno == EACCES ? " (is this user in the kvm group?)" :
					  "");
	ver = ioctl(k->sys_fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		ret = err_set(e, -ENOTSUP, "/dev/kvm: API version %d, need %d",
			      ver, KVM_API_VERSION);
		goto err;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(*required_caps);
	     i++) {
		const struct kvm_cap_req *c = &required_caps[i];

		if (ioctl(k->sys_fd, KVM_CHECK_EXTENSION, c->cap) <= 0) {
			ret = err_set(
				e, -ENOTSUP,
				"/dev/kvm: missing capability %s (needed for %s)",
				c->name, c->why);
			goto err;
		}
	}
	k->run_size = ioctl(k->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->run_size < (int)sizeof(struct kvm_run)) {
		ret = err_set(e, -EIO, "/dev/kvm: bad vCPU mmap size %d",
			      k->run_size);
		goto err;
	}
	k->max_vcpus = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (k->max_vcpus <= 0)
		k->max_vcpus =
			ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (k->max_vcpus <= 0)
		k->max_vcpus = 4;
	k->pvm = kvm_host_is_pvm();
	k->coalesced_page =
		ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);
	if (k->coalesced_page < 0 ||
	    (long)(k->coalesced_page + 1) * 4096 > k->run_size)
		k->coalesced_page = 0;
	k->coalesced_pio = k->coalesced_page &&
			   ioctl(k->sys_fd, KVM_CHECK_EXTENSION,
				 KVM_CAP_COALESCED_PIO) > 0;
	k->tsc_deadline = ioctl(k->sys_fd, KVM_CHECK_EXTENSION,
				KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	k->get_tsc_khz =
		ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) > 0;
	ret = read_supported_cpuid(k, e);
	if (ret)
		goto err;
	return 0;
err:
	close(k->sys_fd);
	k->sys_fd = -1;
	return ret;
}

int kvm_create_vm(struct kvm *k, struct err *e)
{
	uint64_t idmap = LAYOUT_KVM_IDENTITY_MAP;

	k->vm_fd = ioctl(k->sys_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0)
		return err_set(e, -errno, "kvm: KVM_CREATE_VM: %s",
			       strerror(errno));
	if (ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return err_set(e, -errno, "kvm: KVM_SET_IDENTITY_MAP_ADDR: %s",
			       strerror(errno));
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) <
	    0)
		return err_set(e, -errno, "kvm: KVM_SET_TSS_ADDR: %s",
			       strerror(errno));
	return 0;
}

/* The in-kernel irqchip and PIT, made on first need rather than with the
 * VM: once an irqchip exists, every memory slot added costs an SRCU grace
 * period (4-9 ms on a PVM host, against 0.05 ms before it), and wisp adds
 * guest RAM after creating the VM. Setup is single-threaded and creates
 * the vCPUs (which need the irqchip) before any other thread runs, so
 * the flag needs no lock. Returns 0 or -errno; *what names the ioctl. */
static int irqchip_ready(struct kvm *k, const char **what)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	if (k->irqchip)
		return 0;
	*what = "KVM_CREATE_IRQCHIP";
	if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	*what = "KVM_CREATE_PIT2";
	if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return -errno;
	k->irqchip = true;
	return 0;
}

int kvm_add_memory(struct kvm *k, uint64_t gpa, uint64_t size, void *hva,
		   struct err *e)
{
	struct kvm_userspace_memory_region r = {
		.slot = (uint32_t)k->nr_slots,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
		.flags = k->log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
	};

	if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return err_set(e, -errno,
			       "kvm: memory slot %d at 0x%llx (%llu MiB): %s",
			       k->nr_slots, (unsigned long long)gpa,
			       (unsigned long long)(size >> 20),
			       strerror(errno));
	k->nr_slots++;
	return 0;
}

int kvm_get_dirty_log(struct kvm *k, int slot, uint64_t *bitmap, uint64_t words,
		      struct err *e)
{
	uint64_t *log = calloc(words, sizeof(uint64_t));
	struct kvm_dirty_log d = { .slot = (uint32_t)slot };

	if (!log)
		return err_set(e, -ENOMEM,
			       "kvm: dirty log of slot %d: out of "
			       "memory",
			       slot);
	d.dirty_bitmap = log;
	if (ioctl(k->vm_fd, KVM_GET_DIRTY_LOG, &d) < 0) {
		int ret = err_set(e, -errno,
				  "kvm: KVM_GET_DIRTY_LOG slot %d: %s", slot,
				  strerror(errno));

		free(log);
		return ret;
	}
	for (uint64_t i = 0; i < words; i++)
		bitmap[i] |= log[i];
	free(log);
	return 0;
}

int kvm_create_vcpu(struct kvm *k, int id, struct kvm_vcpu *v, struct err *e)
{
	const char *what = "";
	int ret;

	v->id = id;
	v->run = NULL;
	v->fd = -1;
	ret = irqchip_ready(k, &what);
	if (ret)
		return err_set(e, ret, "kvm: %s: %s", what, strerror(-ret));
	v->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0)
		return err_set(e, -errno, "kvm: vCPU %d: KVM_CREATE_VCPU: %s",
			       id, strerror(errno));
	v->run = mmap(NULL, (size_t)k->run_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		int ret = -errno;

		v->run = NULL;
		close(v->fd);
		v->fd = -1;
		return err_set(e, ret, "kvm: vCPU %d: mmap kvm_run: %s", id,
			       strerror(-ret));
	}
	return 0;
}

void kvm_destroy_vcpu(struct kvm *k, struct kvm_vcpu *v)
{
	if (v->run)
		munmap(v->run, (size_t)k->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

int kvm_irq_line(struct kvm *k, uint32_t gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)level };
	const char *what;
	int ret = irqchip_ready(k, &what);

	if (ret)
		return ret;
	return ioctl(k->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

int kvm_ioeventfd(struct kvm *k, uint64_t addr, uint32_t len, bool pio,
		  bool datamatch, uint64_t value, int efd, bool deassign)
{
	struct kvm_ioeventfd io = {
		.datamatch = value,
		.addr = addr,
		.len = len,
		.fd = efd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
	};

	return ioctl(k->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

/* One zone of the coalesced ring, MMIO or port I/O: the ioctl is the same. */
static int coalesced_zone(struct kvm *k, struct kvm_coalesced_mmio_zone *z,
			  bool unregister)
{
	return ioctl(k->vm_fd,
		     unregister ? KVM_UNREGISTER_COALESCED_MMIO :
				  KVM_REGISTER_COALESCED_MMIO,
		     z) < 0 ?
		       -errno :
		       0;
}

int kvm_coalesced_mmio(struct kvm *k, uint64_t addr, uint32_t size,
		       bool unregister)
{
	struct kvm_coalesced_mmio_zone z = { .addr = addr, .size = size };

	if (!k->coalesced_page)
		return -EOPNOTSUPP;
	return coalesced_zone(k, &z, unregister);
}

int kvm_coalesced_pio(struct kvm *k, uint16_t port, uint32_t size,
		      bool unregister)
{
	struct kvm_coalesced_mmio_zone z = { .addr = port,
					     .size = size,
					     .pio = 1 };

	if (!k->coalesced_pio)
		return -EOPNOTSUPP;
	return coalesced_zone(k, &z, unregister);
}

struct kvm_coalesced_mmio_ring *kvm_coalesced_ring(struct kvm *k,
						   struct kvm_vcpu *v0)
{
	if (!k->coalesced_page || !v0->run)
		return NULL;
	return (struct kvm_coalesced_mmio_ring *)(void *)((char *)v0->run +
							  k->coalesced_page *
								  4096L);
}

int kvm_irqfd(struct kvm *k, int efd, uint32_t gsi, bool deassign)
{
	struct kvm_irqfd f = {
		.fd = (uint32_t)efd,
		.gsi = gsi,
		.flags = deassign ? KVM_IRQFD_FLAG_DEASSIGN : 0,
	};
	const char *what;
	int ret = irqchip_ready(k, &what);

	if (ret)
		return ret;
	return ioctl(k->vm_fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

/*
 * Releasing a VM with an in-kernel PIT takes the kernel four SRCU grace
 * periods and a kthread stop (3-20 ms on a PVM host, against 0.1 ms
 * without the PIT), and a process's exit waits for its files to be
 * released. Nothing of wisp's result depends on it, so a forked child
 * holds the last reference and drops it once wisp has exited: the child
 * keeps only the VM fd and a pipe whose write end wisp holds (and the
 * kernel closes at wisp's exit). Returns false if the child could not be
 * made; the caller then closes the fd itself.
 */
static bool release_after_exit(int vm_fd)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return false;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return false;
	}
	if (pid == 0) {
		/* Async-signal-safe calls only: another thread may have held
		 * a lock at fork time. Closing stdout and stderr first keeps
		 * wisp's readers from waiting for this child. */
		int lo = vm_fd < p[0] ? vm_fd : p[0];
		int hi = vm_fd < p[0] ? p[0] : vm_fd;

		if (lo > 0)
			close_range(0, (unsigned int)lo - 1, 0);
		if (hi > lo + 1)
			close_range((unsigned int)lo + 1, (unsigned int)hi - 1,
				    0);
		close_range((unsigned int)hi + 1, ~0u, 0);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		close(vm_fd);
		_exit(0);
	}
	/* p[1] stays open until the process exits: that EOF is the child's
	 * signal. */
	close(p[0]);
	close(vm_fd);
	return true;
}

void kvm_close(struct kvm *k)
{
	if (k->vm_fd >= 0 && !release_after_exit(k->vm_fd))
		close(k->vm_fd);
	if (k->sys_fd >= 0)
		close(k->sys_fd);
	free(k->supported_cpuid);
	k->supported_cpuid = NULL;
	k->vm_fd = k->sys_fd = -1;
}
