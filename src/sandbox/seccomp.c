// SPDX-License-Identifier: MIT
#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/efd.h"
#include "util/log.h"

static const struct sb_table *const tables[SB_NKINDS] = {
	[SB_VCPU] = &sb_table_vcpu,
	[SB_IOTHREAD] = &sb_table_iothread,
	[SB_LOOP] = &sb_table_loop,
	[SB_API] = &sb_table_api,
	[SB_METRICS] = &sb_table_metrics,
	[SB_SERVER] = &sb_table_server,
	[SB_UFFD] = &sb_table_uffd,
	[SB_UFFD_MONITOR] = &sb_table_uffd_monitor,
};

/* Written by sb_seccomp_prepare before any thread exists, read-only
 * afterwards (pthread_create orders the accesses). */
static enum sb_mode mode = SB_OFF;
static struct sock_fprog progs[SB_NKINDS];
static int test_kind = -1;

const struct sb_table *sb_kind_table(enum sb_kind k)
{
	return (unsigned int)k < SB_NKINDS ? tables[k] : NULL;
}

const char *sb_kind_name(enum sb_kind k)
{
	return (unsigned int)k < SB_NKINDS ? tables[k]->name : "?";
}

int sb_kind_parse(const char *s)
{
	for (int k = 0; k < SB_NKINDS; k++)
		if (s && !strcmp(s, tables[k]->name))
			return k;
	return -1;
}

int sb_mode_parse(const char *opt, const char *s, enum sb_mode *out,
		  struct err *e)
{
	static const char *const names[] = { "kill", "log", "off" };

	for (int m = 0; m < 3; m++)
		if (!strcmp(s, names[m])) {
			*out = (enum sb_mode)m;
			return 0;
		}
	return err_config(e, -EINVAL, "%s '%s': not kill, log or off", opt, s);
}

const char *sb_mode_name(enum sb_mode m)
{
	return m == SB_KILL ? "kill" : m == SB_LOG ? "log" : "off";
}

enum sb_mode sb_seccomp_mode(void)
{
	return mode;
}

static const struct sb_table *extra_tables[] = {
	&sb_table_common,
#if defined(WISP_SANITIZER)
	&sb_table_sanitizer,
#endif
};

static int add_table(scmp_filter_ctx ctx, const struct sb_table *t,
		     struct err *e)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct sb_rule *r = &t->rules[i];
		struct scmp_arg_cmp arg[3];
		unsigned int argc = r->argc;
		int ret;

		memcpy(arg, r->arg, sizeof(r->arg));
		if (r->self_pid)
			arg[argc++] =
				SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid());
		/* SIGRTMIN is glibc's to say, at run time. */
		if (r->efd_signal)
			arg[argc++] =
				SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)EFD_SIGNAL);
		ret = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, argc,
					     arg);
		if (ret < 0)
			return err_set(e, ret,
				       "seccomp: table %s, rule %zu (call %d, "
				       "%s): %s",
				       t->name, i, r->nr, r->why,
				       strerror(-ret));
	}
	return 0;
}

int sb_seccomp_build(enum sb_kind k, enum sb_mode m, scmp_filter_ctx *out,
		     struct err *e)
{
	scmp_filter_ctx ctx;
	int ret;

	*out = NULL;
	if ((unsigned int)k >= SB_NKINDS || m == SB_OFF)
		return err_set(e, -EINVAL, "seccomp: no filter to build");
	ctx = seccomp_init(m == SB_KILL ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_LOG);
	if (!ctx)
		return err_set(e, -ENOMEM, "seccomp: out of memory");
	/* The process sets no_new_privs itself, once (prepare). */
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (ret < 0)
		goto fail;
	/* glibc's pthread_create tries clone3 first, whose flags live in
	 * memory a filter cannot read: ENOSYS sends it to clone, whose
	 * flags the tables check. */
	ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
			       0);
	if (ret < 0)
		goto fail;
	for (size_t i = 0; i < sizeof(extra_tables) / sizeof(extra_tables[0]);
	     i++) {
		ret = add_table(ctx, extra_tables[i], e);
		if (ret)
			goto out;
	}
	ret = add_table(ctx, tables[k], e);
	if (ret)
		goto out;
	*out = ctx;
	return 0;
fail:
	err_set(e, ret, "seccomp: %s filter: %s", tables[k]->name,
		strerror(-ret));
out:
	seccomp_release(ctx);
	return ret;
}

void sb_seccomp_count(enum sb_kind k, unsigned int *calls, unsigned int *rules)
{
	const struct sb_table *all[4];
	size_t na = 0;
	int seen[1024];
	unsigned int nseen = 0;

	*calls = *rules = 0;
	for (size_t i = 0; i < sizeof(extra_tables) / sizeof(extra_tables[0]);
	     i++)
		all[na++] = extra_tables[i];
	all[na++] = tables[k];
	for (size_t t = 0; t < na; t++)
		for (size_t i = 0; i < all[t]->n; i++) {
			int nr = all[t]->rules[i].nr;
			unsigned int j;

			(*rules)++;
			for (j = 0; j < nseen && seen[j] != nr; j++)
				;
			if (j == nseen && nseen < 1024)
				seen[nseen++] = nr;
		}
	*calls = nseen;
}

void sb_seccomp_dump(FILE *out)
{
	fprintf(out, "| thread kind | allowed calls | rules |\n");
	fprintf(out, "| --- | --- | --- |\n");
	for (int k = 0; k < SB_NKINDS; k++) {
		unsigned int calls, rules;

		sb_seccomp_count((enum sb_kind)k, &calls, &rules);
		fprintf(out, "| %s | %u | %u |\n", tables[k]->name, calls,
			rules);
	}
#if defined(WISP_SANITIZER)
	fprintf(out,
		"(sanitizer build: the sanitizer table's %zu rules "
		"included)\n",
		sb_table_sanitizer.n);
#endif
}

/* libseccomp 2.5 exports a program only to a file descriptor. */
static int export(scmp_filter_ctx ctx, struct sock_fprog *p, struct err *e)
{
	int fd = memfd_create("wisp-seccomp", MFD_CLOEXEC);
	off_t len;
	int ret;

	if (fd < 0)
		return err_set(e, -errno, "seccomp: memfd: %s",
			       strerror(errno));
	ret = seccomp_export_bpf(ctx, fd);
	if (ret < 0) {
		err_set(e, ret, "seccomp: export: %s", strerror(-ret));
		goto out;
	}
	len = lseek(fd, 0, SEEK_END);
	if (len <= 0 || len % (off_t)sizeof(struct sock_filter) ||
	    len / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
		ret = err_set(e, -E2BIG, "seccomp: program of %lld bytes",
			      (long long)len);
		goto out;
	}
	p->filter = malloc((size_t)len);
	if (!p->filter) {
		ret = err_set(e, -ENOMEM, "seccomp: out of memory");
		goto out;
	}
	if (pread(fd, p->filter, (size_t)len, 0) != len) {
		ret = err_set(e, -EIO, "seccomp: reading the program back");
		free(p->filter);
		p->filter = NULL;
		goto out;
	}
	p->len = (unsigned short)(len / (off_t)sizeof(struct sock_filter));
	ret = 0;
out:
	close(fd);
	return ret;
}

int sb_seccomp_prepare(enum sb_mode m, unsigned int mask, const char *test,
		       struct err *e)
{
	int ret;

	if (test && *test) {
		test_kind = sb_kind_parse(test);
		if (test_kind < 0)
			return err_config(e, -EINVAL,
					  "--seccomp-test '%s': no such "
					  "thread kind",
					  test);
	}
	mode = m;
	if (m == SB_OFF)
		return 0;
	for (int k = 0; k < SB_NKINDS; k++) {
		scmp_filter_ctx ctx;

		if (!(mask & (1u << k)))
			continue;
		ret = sb_seccomp_build((enum sb_kind)k, m, &ctx, e);
		if (ret)
			return ret;
		ret = export(ctx, &progs[k], e);
		seccomp_release(ctx);
		if (ret)
			return ret;
	}
	/* Needed to install a filter without CAP_SYS_ADMIN; it also keeps
	 * an exec'd server from gaining privileges through set-id bits. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return err_set(e, -errno, "seccomp: no_new_privs: %s",
			       strerror(errno));
	return 0;
}

/* The test hook's forbidden call: no table allows uselib, and without a
 * filter it fails harmlessly (ENOSYS, or EFAULT for the NULL path). */
static void forbidden_call(enum sb_kind k)
{
	long r;

	log_warn("seccomp test: %s thread calls uselib", tables[k]->name);
	r = syscall(SYS_uselib, NULL);
	/* Only reached in log mode (or with no filter). */
	log_warn("seccomp test: %s thread survived (uselib returned %ld)",
		 tables[k]->name, r);
}

void sb_seccomp_enter(enum sb_kind k)
{
	if ((unsigned int)k >= SB_NKINDS)
		return;
	/* The kernel's log line (comm=) and ps -L then name the kind; the
	 * main thread keeps the program's name. */
	if (syscall(SYS_gettid) != getpid())
		prctl(PR_SET_NAME, tables[k]->name, 0, 0, 0);
	if (mode != SB_OFF && progs[k].filter &&
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &progs[k])) {
		log_error("seccomp: cannot install the %s filter: %s",
			  tables[k]->name, strerror(errno));
		abort();
	}
	/* With --seccomp off too: the call then shows there is no filter. */
	if (test_kind == (int)k)
		forbidden_call(k);
}

int sb_seccomp_server_mode(const char *opt, enum sb_mode *out, struct err *e)
{
	const char *env = getenv(SB_MODE_ENV);

	*out = SB_KILL;
	if (opt)
		return sb_mode_parse("--seccomp", opt, out, e);
	if (env && *env)
		return sb_mode_parse(SB_MODE_ENV, env, out, e);
	return 0;
}

int sb_seccomp_setup(const char *mode_opt, const char *test_opt,
		     unsigned int mask, struct err *e)
{
	enum sb_mode m = SB_KILL;
	int ret;

	if (mode_opt) {
		ret = sb_mode_parse("--seccomp", mode_opt, &m, e);
		if (ret)
			return ret;
	}
	ret = sb_seccomp_prepare(m, mask, test_opt, e);
	if (ret)
		return ret;
	/* Spawned servers inherit the environment, not our options. */
	if (setenv(SB_MODE_ENV, sb_mode_name(m), 1) ||
	    (test_opt ? setenv(SB_TEST_ENV, test_opt, 1) :
			unsetenv(SB_TEST_ENV)))
		return err_set(e, -errno, "seccomp: environment: %s",
			       strerror(errno));
	return 0;
}

int sb_seccomp_server_setup(const char *mode_opt, enum sb_kind k, struct err *e)
{
	enum sb_mode m;
	int ret = sb_seccomp_server_mode(mode_opt, &m, e);

	if (ret)
		return ret;
	return sb_seccomp_prepare(m, 1u << k, getenv(SB_TEST_ENV), e);
}
