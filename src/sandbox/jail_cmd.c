// SPDX-License-Identifier: MIT
/* wisp jail (jail_cmd.h). */
#include "sandbox/jail_cmd.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/devopts.h"
#include "sandbox/jail.h"

/* The device nodes a VM may need, made inside the root with the host's
 * numbers; those the jailed user must open are given to it. */
static const struct {
	const char *path;
	bool owned; /* chown to --uid/--gid, mode 0600 */
} devices[] = {
	{ "/dev/kvm", true },	      { "/dev/net/tun", true },
	{ "/dev/userfaultfd", true }, { "/dev/null", false },
	{ "/dev/urandom", false },
};

/* The environment the jailed process keeps: nothing that names a host
 * path (LD_PRELOAD, HOME, ...), only the sanitizers' options. */
static const char *const env_keep[] = { "ASAN_OPTIONS=", "UBSAN_OPTIONS=",
					"LSAN_OPTIONS=", "TERM=" };

static volatile pid_t child;

static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wisp jail --id ID --chroot-base DIR --uid U --gid G\n"
		"                 [--exec-file PATH] [--netns PATH | --no-netns]\n"
		"                 [--cgroup-parent PATH] [--cgroup KEY=VALUE]...\n"
		"                 [--rlimit files=N,memory=BYTES] -- ARGS...\n"
		"Runs PATH (default: this wisp) with ARGS in DIR/NAME/ID/root\n"
		"(NAME: PATH's file name), in new mount, PID, IPC, UTS and\n"
		"network namespaces, as U:G, with no capabilities and\n"
		"no_new_privs. Files given in ARGS are relative to that root.\n");
}

static bool id_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_'))
			return false;
	return true;
}

static int parse_rlimit(char *arg, struct jail_cmd *c, struct err *e)
{
	char *save = NULL;

	for (char *kv = strtok_r(arg, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		int ret;

		if (!v)
			return err_config(e, -EINVAL,
					  "--rlimit: '%s' is not KEY=VALUE",
					  kv);
		*v++ = 0;
		if (!strcmp(kv, "files"))
			ret = devopts_parse_u64("--rlimit files", v, 1, 1 << 20,
						&c->nofile, e);
		else if (!strcmp(kv, "memory"))
			ret = devopts_parse_u64("--rlimit memory", v, 1 << 24,
						UINT64_MAX >> 1, &c->memory, e);
		else
			return err_config(e, -EINVAL,
					  "--rlimit: unknown key '%s' (files, "
					  "memory)",
					  kv);
		if (ret)
			return ret;
	}
	return 0;
}

enum {
	OPT_ID = 256,
	OPT_BASE,
	OPT_EXEC,
	OPT_UID,
	OPT_GID,
	OPT_NETNS,
	OPT_NO_NETNS,
	OPT_CG_PARENT,
	OPT_CGROUP,
	OPT_RLIMIT,
};

/* Returns 0, 1 after --help, or -errno. */
static int parse(int argc, char **argv, struct jail_cmd *c, struct err *e)
{
	static const struct option lo[] = {
		{ "id", required_argument, NULL, OPT_ID },
		{ "chroot-base", required_argument, NULL, OPT_BASE },
		{ "exec-file", required_argument, NULL, OPT_EXEC },
		{ "uid", required_argument, NULL, OPT_UID },
		{ "gid", required_argument, NULL, OPT_GID },
		{ "netns", required_argument, NULL, OPT_NETNS },
		{ "no-netns", no_argument, NULL, OPT_NO_NETNS },
		{ "cgroup-parent", required_argument, NULL, OPT_CG_PARENT },
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		{ "rlimit", required_argument, NULL, OPT_RLIMIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_uid = false, have_gid = false;
	uint64_t v;
	int o, ret;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+:h", lo, NULL)) != -1) {
		switch (o) {
		case OPT_ID:
			if (!id_ok(optarg))
				return err_config(e, -EINVAL,
						  "--id '%s': 1 to 64 of "
						  "A-Z a-z 0-9 - _",
						  optarg);
			c->id = optarg;
			break;
		case OPT_BASE:
			c->chroot_base = optarg;
			break;
		case OPT_EXEC:
			c->exec_file = optarg;
			break;
		case OPT_UID:
		case OPT_GID:
			ret = devopts_parse_u64(o == OPT_UID ? "--uid" :
							       "--gid",
						optarg, 0, 0xfffffffeU, &v, e);
			if (ret)
				return ret;
			if (o == OPT_UID) {
				c->uid = (uid_t)v;
				have_uid = true;
			} else {
				c->gid = (gid_t)v;
				have_gid = true;
			}
			break;
		case OPT_NETNS:
			c->netns = optarg;
			break;
		case OPT_NO_NETNS:
			c->no_netns = true;
			break;
		case OPT_CG_PARENT:
			c->cgroup_parent = optarg;
			break;
		case OPT_CGROUP: {
			char *eq = strchr(optarg, '=');

			if (c->nr_cgroup == JAIL_MAX_CGROUP || !eq ||
			    eq == optarg || strchr(optarg, '/'))
				return err_config(e, -EINVAL,
						  "--cgroup '%s': KEY=VALUE, "
						  "at most %d",
						  optarg, JAIL_MAX_CGROUP);
			*eq = 0;
			c->cgroup_key[c->nr_cgroup] = optarg;
			c->cgroup_value[c->nr_cgroup++] = eq + 1;
			break;
		}
		case OPT_RLIMIT:
			ret = parse_rlimit(optarg, c, e);
			if (ret)
				return ret;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			return err_config(e, -EINVAL,
					  "jail: bad option '%s' (see wisp "
					  "jail --help)",
					  argv[optind - 1]);
		}
	}
	if (!c->id || !c->chroot_base || !have_uid || !have_gid)
		return err_config(e, -EINVAL,
				  "jail: --id, --chroot-base, --uid and --gid "
				  "are required");
	if (c->netns && c->no_netns)
		return err_config(e, -EINVAL,
				  "jail: --netns and --no-netns exclude each "
				  "other");
	if (optind >= argc || strcmp(argv[optind - 1], "--"))
		return err_config(e, -EINVAL,
				  "jail: the arguments for the jailed "
				  "program come after --");
	c->args = argv + optind;
	return 0;
}

/* A dynamically linked executable names its loader in PT_INTERP. */
static int is_dynamic(const char *path, bool *dyn, struct err *e)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	*dyn = false;
	if (fd < 0)
		return err_config(e, -errno, "jail: '%s': %s", path,
				  strerror(errno));
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr)) {
		ret = err_config(e, -ENOEXEC, "jail: '%s': not a 64-bit ELF",
				 path);
		goto out;
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		if (pread(fd, &ph, sizeof(ph),
			  (off_t)(eh.e_phoff + i * sizeof(ph))) != sizeof(ph)) {
			ret = err_config(e, -ENOEXEC,
					 "jail: '%s': short program header",
					 path);
			goto out;
		}
		if (ph.p_type == PT_INTERP)
			*dyn = true;
	}
out:
	close(fd);
	return ret;
}

/* A hard link where the file systems allow one, else a copy. */
static int place_exec(const char *src, const char *dst, struct err *e)
{
	struct stat st;
	int in, out, ret = 0;

	if (unlink(dst) < 0 && errno != ENOENT)
		return err_set(e, -errno, "jail: unlink '%s': %s", dst,
			       strerror(errno));
	if (link(src, dst) == 0)
		return chmod(dst, 0755) < 0 ?
			       err_set(e, -errno, "jail: chmod '%s': %s", dst,
				       strerror(errno)) :
			       0;
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0) {
		ret = err_config(e, -errno, "jail: '%s': %s", src,
				 strerror(errno));
		if (in >= 0)
			close(in);
		return ret;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	if (out < 0) {
		ret = err_set(e, -errno, "jail: create '%s': %s", dst,
			      strerror(errno));
		close(in);
		return ret;
	}
	for (off_t done = 0; done < st.st_size;) {
		ssize_t n =
			sendfile(out, in, NULL, (size_t)(st.st_size - done));

		if (n <= 0) {
			ret = err_set(e, n < 0 ? -errno : -EIO,
				      "jail: copy '%s' to '%s': %s", src, dst,
				      n < 0 ? strerror(errno) : "short");
			break;
		}
		done += n;
	}
	close(in);
	close(out);
	return ret;
}

static int make_devices(const char *root, const struct jail_cmd *c,
			struct err *e)
{
	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
		char p[PATH_MAX], dir[PATH_MAX];
		struct stat st;
		int ret;

		/* A host without the device: the VM that needs it fails
		 * with wisp's own message about it. */
		if (stat(devices[i].path, &st) < 0 || !S_ISCHR(st.st_mode))
			continue;
		if (snprintf(p, sizeof(p), "%s%s", root, devices[i].path) >=
		    (int)sizeof(p))
			return err_config(e, -ENAMETOOLONG,
					  "jail: '%s': too long", root);
		memcpy(dir, p, sizeof(dir));
		ret = jail_mkdir_p(dirname(dir), 0755);
		if (ret)
			return err_set(e, ret, "jail: mkdir for '%s': %s", p,
				       strerror(-ret));
		if (unlink(p) < 0 && errno != ENOENT)
			return err_set(e, -errno, "jail: unlink '%s': %s", p,
				       strerror(errno));
		if (mknod(p, S_IFCHR | (devices[i].owned ? 0600 : 0666),
			  st.st_rdev) < 0 ||
		    chmod(p, devices[i].owned ? 0600 : 0666) < 0 ||
		    (devices[i].owned && chown(p, c->uid, c->gid) < 0))
			return err_set(e, -errno, "jail: device '%s': %s", p,
				       strerror(errno));
	}
	return 0;
}

/* DIR/NAME/ID/root with the executable, the devices and a /tmp of the
 * jailed user's (wisp's private directory for server sockets). */
static int build_root(const struct jail_cmd *c, const char *exe,
		      const char *name, char *root, size_t size, struct err *e)
{
	char p[PATH_MAX];
	int ret;

	if (snprintf(root, size, "%s/%s/%s/root", c->chroot_base, name,
		     c->id) >= (int)size)
		return err_config(e, -ENAMETOOLONG,
				  "jail: --chroot-base '%s': "
				  "too long",
				  c->chroot_base);
	ret = jail_mkdir_p(root, 0755);
	if (ret)
		return err_config(e, ret, "jail: mkdir '%s': %s", root,
				  strerror(-ret));
	if (snprintf(p, sizeof(p), "%s/%s", root, name) >= (int)sizeof(p))
		return err_config(e, -ENAMETOOLONG, "jail: '%s': too long",
				  root);
	ret = place_exec(exe, p, e);
	if (ret)
		return ret;
	ret = make_devices(root, c, e);
	if (ret)
		return ret;
	if (snprintf(p, sizeof(p), "%s/tmp", root) >= (int)sizeof(p))
		return err_config(e, -ENAMETOOLONG, "jail: '%s': too long",
				  root);
	if ((mkdir(p, 0700) < 0 && errno != EEXIST) || chmod(p, 0700) < 0 ||
	    chown(p, c->uid, c->gid) < 0)
		return err_set(e, -errno, "jail: '%s': %s", p, strerror(errno));
	return 0;
}

static char **kept_env(void)
{
	extern char **environ;
	static char *out[sizeof(env_keep) / sizeof(env_keep[0]) + 1];
	size_t n = 0;

	for (char **v = environ; v && *v; v++)
		for (size_t i = 0; i < sizeof(env_keep) / sizeof(env_keep[0]);
		     i++)
			if (!strncmp(*v, env_keep[i], strlen(env_keep[i])) &&
			    n < sizeof(env_keep) / sizeof(env_keep[0]))
				out[n++] = *v;
	out[n] = NULL;
	return out;
}

/* PID 1 of the new PID namespace: jail, then become the program. */
static void run_child(const struct jail_cmd *c, const char *root,
		      const char *name, bool dyn)
{
	const struct jail_cfg jc = {
		.root = root,
		.proc = dyn,
		.host_libs = dyn,
		.set_ids = true,
		.uid = c->uid,
		.gid = c->gid,
		.nofile = c->nofile,
		.as_bytes = c->memory,
		.hostname = c->id,
	};
	char path[PATH_MAX], **argv;
	struct err e;
	int n = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (c->netns) {
		int fd = open(c->netns, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
			fprintf(stderr, "wisp jail: --netns '%s': %s\n",
				c->netns, strerror(errno));
			_exit(1);
		}
		close(fd);
	}
	if (jail_enter(&jc, &e)) {
		fprintf(stderr, "wisp jail: %s\n", e.msg);
		_exit(2);
	}
	while (c->args[n])
		n++;
	argv = calloc((size_t)n + 2, sizeof(*argv));
	if (!argv)
		_exit(2);
	snprintf(path, sizeof(path), "/%s", name);
	argv[0] = path;
	memcpy(argv + 1, c->args, (size_t)n * sizeof(*argv));
	execve(path, argv, kept_env());
	fprintf(stderr, "wisp jail: exec '%s' in the jail: %s\n", path,
		strerror(errno));
	_exit(errno == ENOENT ? 1 : 2);
}

int jail_cmd_main(int argc, char **argv)
{
	struct jail_cmd c = { 0 };
	char exe[PATH_MAX], root[PATH_MAX], base[PATH_MAX];
	const char *name;
	struct err e = { 0 };
	int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
	int status, ret;
	bool dyn;
	pid_t p;

	ret = parse(argc, argv, &c, &e);
	if (ret > 0)
		return 0; /* --help */
	if (ret)
		goto fail;
	if (geteuid() != 0) {
		err_config(&e, -EPERM,
			   "jail: must run as root (it makes "
			   "namespaces, device nodes and cgroups)");
		goto fail;
	}
	if (!realpath(c.exec_file ? c.exec_file : "/proc/self/exe", exe)) {
		err_config(&e, -errno, "jail: --exec-file '%s': %s",
			   c.exec_file ? c.exec_file : "/proc/self/exe",
			   strerror(errno));
		goto fail;
	}
	snprintf(base, sizeof(base), "%s", exe);
	name = basename(base);
	if (is_dynamic(exe, &dyn, &e) ||
	    build_root(&c, exe, name, root, sizeof(root), &e) ||
	    jail_cgroup_place(&c, getpid(), &e))
		goto fail;
	if (!c.netns && !c.no_netns)
		flags |= CLONE_NEWNET;
	{
		struct sigaction sa = { .sa_handler = forward };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		sigaction(SIGUSR1, &sa, NULL); /* wisp's state dump */
	}
	/* The namespaces by clone, not unshare: after unshare(CLONE_NEWPID)
	 * every later fork of ours would land in the new PID namespace (and
	 * fail once its init is gone), and the child's pivot_root would move
	 * our root too if we shared its mount namespace. */
	p = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
	if (p < 0) {
		err_set(&e, -errno, "jail: clone a new PID namespace: %s",
			strerror(errno));
		goto fail;
	}
	if (p == 0)
		run_child(&c, root, name, dyn);
	child = p;
	do
		ret = waitpid(p, &status, 0);
	while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		err_set(&e, -errno, "jail: waitpid: %s", strerror(errno));
		goto fail;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
fail:
	fprintf(stderr, "wisp %s%s\n",
		strncmp(e.msg, "jail", 4) ? "jail: " : "", e.msg);
	return e.cls == ERR_CONFIG ? 1 : 2;
}
