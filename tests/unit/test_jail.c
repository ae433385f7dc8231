// SPDX-License-Identifier: MIT
/* The server jail's SPEC (what wisp passes, what a server accepts) and
 * jail_server_enter itself, in a forked child. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox/jail.h"

static void test_spec_round_trip(void **state)
{
	const struct jail_server in[] = {
		{ .set_ids = true, .uid = 65534, .gid = 65534 },
		{ .set_ids = true, .uid = 0, .gid = 7, .keep_net = true },
		{ .userns = true },
		{ .userns = true, .keep_net = true },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct jail_server out;
		struct err e;

		assert_int_equal(jail_server_format(&in[i], buf, sizeof(buf)),
				 0);
		assert_int_equal(jail_server_parse(buf, &out, &e), 0);
		assert_int_equal(out.set_ids, in[i].set_ids);
		assert_int_equal(out.uid, in[i].uid);
		assert_int_equal(out.gid, in[i].gid);
		assert_int_equal(out.userns, in[i].userns);
		assert_int_equal(out.keep_net, in[i].keep_net);
	}
	assert_int_equal(jail_server_format(&in[0], buf, 8), -ENAMETOOLONG);
}

static void test_spec_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"uid=1",
		"gid=1",
		"uid=1,gid=1,userns=on",
		"uid=1,uid=2,gid=1",
		"uid=-1,gid=1",
		"uid=1x,gid=1",
		"uid=4294967295,gid=1",
		"uid=,gid=1",
		"userns=off",
		"userns=on,net=maybe",
		"userns=on,net=on,net=off",
		"userns=on,colour=blue",
		"uid",
		"uid=1,gid=1,",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct jail_server out = { .uid = 99 };
		struct err e = { 0 };
		int ret = jail_server_parse(bad[i], &out, &e);

		/* A trailing comma only ends the list; the others are
		 * errors, each with a message. */
		if (!strcmp(bad[i], "uid=1,gid=1,")) {
			assert_int_equal(ret, 0);
			continue;
		}
		if (ret != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(e.cls, ERR_CONFIG);
		assert_true(strstr(e.msg, "--jail") != NULL);
		assert_int_equal(out.uid, 99); /* untouched */
	}
}

/* In a child: enter the server jail as root and report what is left,
 * one bit per escape that worked. */
static int jailed_child(void)
{
	const struct jail_server js = { .set_ids = true,
					.uid = 65534,
					.gid = 65534 };
	struct err e;
	int bits = 0;

	if (jail_server_enter(&js, &e))
		return 100;
	if (open("/etc/passwd", O_RDONLY) >= 0 || errno != ENOENT)
		bits |= 1;
	if (getuid() != 65534 || getgid() != 65534 || getgroups(0, NULL))
		bits |= 2;
	if (setuid(0) == 0 || errno != EPERM)
		bits |= 4;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		bits |= 8;
	if (prctl(PR_CAPBSET_READ, 21 /* CAP_SYS_ADMIN */, 0, 0, 0) != 0)
		bits |= 16;
	/* The empty root is read-only. */
	if (open("/x", O_CREAT | O_WRONLY, 0600) >= 0 || errno != EROFS)
		bits |= 32;
	return bits;
}

static void test_enter(void **state)
{
	int st;
	pid_t p;

	if (geteuid() != 0)
		skip(); /* the id switch needs root */
	p = fork();
	assert_true(p >= 0);
	if (p == 0)
		_exit(jailed_child());
	assert_int_equal(waitpid(p, &st, 0), p);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st))
		fail_msg("jailed child: status %d (100: the jail failed; "
			 "else bits of escapes that worked)",
			 WEXITSTATUS(st));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_round_trip),
		cmocka_unit_test(test_spec_refused),
		cmocka_unit_test(test_enter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
