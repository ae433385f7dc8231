// SPDX-License-Identifier: MIT
/* The KVM boundary on the host's /dev/kvm: the irqchip is made on first
 * need (after memory slots), and kvm_close leaves the VM's release to a
 * child that outlives the process without holding its other files. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvm/kvm.h"
#include "util/time.h"

static void open_vm(struct kvm *k)
{
	struct err e = { 0 };

	if (access("/dev/kvm", R_OK | W_OK))
		skip();
	assert_int_equal(kvm_open(k, &e), 0);
	assert_int_equal(kvm_create_vm(k, &e), 0);
}

static bool has_irqchip(struct kvm *k)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };

	return ioctl(k->vm_fd, KVM_GET_IRQCHIP, &chip) == 0;
}

static void test_irqchip_after_memory(void **state)
{
	struct kvm k;
	struct kvm_vcpu v;
	struct err e = { 0 };
	size_t sz = 2 << 20;
	void *mem = mmap(NULL, sz, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(mem != MAP_FAILED);
	open_vm(&k);
	assert_false(has_irqchip(&k));
	assert_int_equal(kvm_add_memory(&k, 0, sz, mem, &e), 0);
	assert_false(has_irqchip(&k));
	assert_int_equal(kvm_create_vcpu(&k, 0, &v, &e), 0);
	assert_true(has_irqchip(&k));
	/* vCPUs exist: a second creation would fail; the flag stops it. */
	assert_int_equal(kvm_irq_line(&k, 4, 0), 0);
	kvm_destroy_vcpu(&k, &v);
	kvm_close(&k);
	munmap(mem, sz);
}

static void test_irqfd_makes_irqchip(void **state)
{
	struct kvm k;
	int efd = eventfd(0, EFD_CLOEXEC);

	assert_true(efd >= 0);
	open_vm(&k);
	assert_int_equal(kvm_irqfd(&k, efd, 5, false), 0);
	assert_true(has_irqchip(&k));
	assert_int_equal(kvm_irqfd(&k, efd, 5, true), 0);
	kvm_close(&k);
	close(efd);
}

/* A child makes a VM with stdout on a pipe, closes it and exits. The
 * pipe must see EOF when the child exits (the release child keeps none of
 * its files), and the release child must exit after it (this process is
 * a subreaper, so it is reaped here). */
static void test_release_after_exit(void **state)
{
	int p[2], status, reaped = 0;
	uint64_t t0;
	pid_t pid, w;
	char c;

	if (access("/dev/kvm", R_OK | W_OK))
		skip();
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct kvm k;
		struct err e = { 0 };

		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		if (kvm_open(&k, &e) || kvm_create_vm(&k, &e) ||
		    kvm_irqfd(&k, eventfd(0, 0), 5, false))
			_exit(2);
		kvm_close(&k);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	{
		struct pollfd pf = { .fd = p[0], .events = POLLIN };

		assert_int_equal(poll(&pf, 1, 2000), 1);
		assert_int_equal(read(p[0], &c, 1), 0);
	}
	close(p[0]);
	t0 = now_ns();
	while (now_ns() - t0 < 5000000000ull) {
		w = waitpid(-1, &status, WNOHANG);
		if (w > 0) {
			reaped++;
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
			continue;
		}
		if (w < 0 && errno == ECHILD)
			break;
		usleep(1000);
	}
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	assert_int_equal(reaped, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_irqchip_after_memory),
		cmocka_unit_test(test_irqfd_makes_irqchip),
		cmocka_unit_test(test_release_after_exit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
