// SPDX-License-Identifier: MIT
/* sandbox/seccomp: every table compiles in both modes, every entry has
 * its reason, the narrowed calls stay narrowed (no table lets an ioctl,
 * mmap, socket or clone through unchecked, none allows exec or ptrace),
 * and an installed filter kills a forked child at a forbidden call or a
 * forbidden argument while it lets the allowed ones through. Prints the
 * per-kind counts of docs/sandbox.md. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/seccomp.h"

static void test_every_kind_builds(void **state)
{
	for (int k = 0; k < SB_NKINDS; k++) {
		for (int m = SB_KILL; m <= SB_LOG; m++) {
			scmp_filter_ctx ctx = NULL;
			struct err e = { 0 };

			assert_int_equal(sb_seccomp_build((enum sb_kind)k,
							  (enum sb_mode)m, &ctx,
							  &e),
					 0);
			assert_non_null(ctx);
			seccomp_release(ctx);
		}
		assert_int_equal(sb_kind_parse(sb_kind_name((enum sb_kind)k)),
				 k);
	}
	assert_int_equal(sb_kind_parse("gpu"), -1);
}

static bool has_mask(const struct sb_rule *r, unsigned int arg,
		     scmp_datum_t mask)
{
	for (unsigned int i = 0; i < r->argc; i++)
		if (r->arg[i].arg == arg &&
		    r->arg[i].op == SCMP_CMP_MASKED_EQ &&
		    (r->arg[i].datum_a & mask) == mask &&
		    r->arg[i].datum_b == 0)
			return true;
	return false;
}

static void check_table(const struct sb_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct sb_rule *r = &t->rules[i];

		assert_non_null(r->why);
		assert_true(strlen(r->why) > 4);
		/* Never, in any kind. */
		assert_int_not_equal(r->nr, SCMP_SYS(execve));
		assert_int_not_equal(r->nr, SCMP_SYS(execveat));
		assert_int_not_equal(r->nr, SCMP_SYS(ptrace));
		assert_int_not_equal(r->nr, SCMP_SYS(uselib));
		assert_int_not_equal(r->nr, SCMP_SYS(process_vm_writev));
		assert_int_not_equal(r->nr, SCMP_SYS(mount));
		assert_int_not_equal(r->nr, SCMP_SYS(unshare));
		assert_int_not_equal(r->nr, SCMP_SYS(setns));
		assert_int_not_equal(r->nr, SCMP_SYS(bpf));
		assert_int_not_equal(r->nr, SCMP_SYS(init_module));
		/* Narrowed where it matters. */
		if (r->nr == SCMP_SYS(ioctl))
			assert_int_equal(r->argc, 1);
		if (r->nr == SCMP_SYS(mmap) || r->nr == SCMP_SYS(mprotect))
			assert_true(has_mask(r, 2, PROT_EXEC));
		if (r->nr == SCMP_SYS(socket))
			assert_true(r->argc == 1 && r->arg[0].arg == 0 &&
				    r->arg[0].op == SCMP_CMP_EQ &&
				    r->arg[0].datum_a == AF_UNIX);
		if (r->nr == SCMP_SYS(clone))
			assert_true(r->argc == 1 && r->arg[0].arg == 0 &&
				    r->arg[0].op == SCMP_CMP_MASKED_EQ);
		if (r->nr == SCMP_SYS(prctl))
			assert_int_equal(r->argc, 1);
		if (r->nr == SCMP_SYS(tgkill))
			assert_true(r->self_pid);
		/* No entry twice with the same arguments. */
		for (size_t j = 0; j < i; j++)
			assert_false(t->rules[j].nr == r->nr &&
				     t->rules[j].argc == r->argc &&
				     !memcmp(t->rules[j].arg, r->arg,
					     sizeof(r->arg)));
	}
}

static void test_tables_stay_narrow(void **state)
{
	check_table(&sb_table_common);
	for (int k = 0; k < SB_NKINDS; k++)
		check_table(sb_kind_table((enum sb_kind)k));
}

static void test_counts(void **state)
{
	unsigned int calls, rules, vcpu_calls, metrics_calls;

	for (int k = 0; k < SB_NKINDS; k++) {
		sb_seccomp_count((enum sb_kind)k, &calls, &rules);
		assert_true(calls > 0 && calls <= rules);
		assert_int_equal(rules,
				 sb_table_common.n +
					 sb_kind_table((enum sb_kind)k)->n
#if defined(WISP_SANITIZER)
					 + sb_table_sanitizer.n
#endif
		);
	}
	/* The vCPU thread's ioctls are alternatives of one call. */
	sb_seccomp_count(SB_VCPU, &vcpu_calls, &rules);
	assert_true(vcpu_calls < rules);
	sb_seccomp_count(SB_METRICS, &metrics_calls, &rules);
	assert_true(metrics_calls < vcpu_calls);
	printf("# seccomp counts (common table of %zu rules included):\n",
	       sb_table_common.n);
	sb_seccomp_dump(stdout);
}

/* Runs fn in a child under kind k's kill-mode filter; its wait status. */
static int in_child(enum sb_kind k, void (*fn)(void))
{
	struct err e = { 0 };
	int status = 0;
	pid_t p;

	fflush(stdout);
	fflush(stderr);
	p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		if (sb_seccomp_prepare(SB_KILL, 1u << k, NULL, &e))
			_exit(100);
		sb_seccomp_enter(k);
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(p, &status, 0), p);
	return status;
}

static bool killed_by_sigsys(int status)
{
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

static void allowed_calls(void)
{
	char c = 0;

	if (getpid() <= 0 || write(-1, &c, 1) != -1 ||
	    ioctl(-1, KVM_RUN, 0) != -1 || errno != EBADF)
		_exit(101);
}

static void forbidden_uselib(void)
{
	syscall(SYS_uselib, NULL);
}

static void forbidden_ioctl(void)
{
	/* Not a vCPU's ioctl, even on a bad fd. */
	ioctl(-1, KVM_CREATE_VM, 0);
}

static void forbidden_exec_mapping(void)
{
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1,
	     0);
}

static void writable_mapping(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		_exit(102);
}

static void forbidden_inet_socket(void)
{
	socket(AF_INET, SOCK_STREAM, 0);
}

static void unix_socket(void)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		_exit(103);
	close(s);
}

/* A virtio-iommu reset on a vCPU unlocks IOASIDs (OFD locks); no other
 * fcntl is a vCPU's. */
static void ofd_unlock(void)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	if (fcntl(-1, F_OFD_SETLK, &fl) != -1 || errno != EBADF)
		_exit(104);
}

static void forbidden_fcntl(void)
{
	fcntl(-1, F_SETFL, 0);
}

static void forbidden_thread_in_loop_kind(void)
{
	/* The event loop forks (the VM fd releaser) but never makes a
	 * thread: clone with CLONE_THREAD is outside its table. */
	syscall(SYS_clone, CLONE_VM | CLONE_THREAD | CLONE_SIGHAND, NULL, NULL,
		NULL, 0);
}

static void test_filters_kill(void **state)
{
	int st;

	st = in_child(SB_VCPU, allowed_calls);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(killed_by_sigsys(in_child(SB_VCPU, forbidden_uselib)));
	assert_true(killed_by_sigsys(in_child(SB_VCPU, forbidden_ioctl)));
	assert_true(
		killed_by_sigsys(in_child(SB_VCPU, forbidden_exec_mapping)));
	st = in_child(SB_VCPU, ofd_unlock);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(killed_by_sigsys(in_child(SB_VCPU, forbidden_fcntl)));
	st = in_child(SB_VCPU, writable_mapping);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(
		killed_by_sigsys(in_child(SB_IOTHREAD, forbidden_inet_socket)));
	st = in_child(SB_IOTHREAD, unix_socket);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The metrics thread opens no socket at all. */
	assert_true(killed_by_sigsys(in_child(SB_METRICS, unix_socket)));
	assert_true(killed_by_sigsys(
		in_child(SB_LOOP, forbidden_thread_in_loop_kind)));
}

static void test_mode_parse(void **state)
{
	enum sb_mode m;
	struct err e = { 0 };

	assert_int_equal(sb_mode_parse("--seccomp", "log", &m, &e), 0);
	assert_int_equal(m, SB_LOG);
	assert_int_equal(sb_mode_parse("--seccomp", "off", &m, &e), 0);
	assert_int_equal(m, SB_OFF);
	assert_int_equal(sb_mode_parse("--seccomp", "KILL", &m, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "KILL"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind_builds),
		cmocka_unit_test(test_tables_stay_narrow),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_filters_kill),
		cmocka_unit_test(test_mode_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
