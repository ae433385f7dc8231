// SPDX-License-Identifier: MIT
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *what, const char *arg, int ret)
{
	fprintf(stderr, "jail-probe: %s%s%s: %s\n", what, arg ? " " : "",
		arg ? arg : "", ret < 0 ? strerrorname_np(errno) : "ok");
}

static void probe_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	say("open", path, fd);
	if (fd >= 0)
		close(fd);
}

static void probe_tcp(const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)atoi(port)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ret = fd;

	if (fd >= 0)
		ret = connect(fd, (struct sockaddr *)&a, sizeof(a));
	say("tcp 127.0.0.1", port, ret);
	if (fd >= 0)
		close(fd);
}

static void probe_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ret = fd;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd >= 0)
		ret = connect(fd, (struct sockaddr *)&a, sizeof(a));
	say("unix", path, ret);
	if (fd >= 0)
		close(fd);
}

static void probe_pid(const char *s)
{
	pid_t pid = (pid_t)atoi(s);
	long ret = ptrace(PTRACE_ATTACH, pid, NULL, NULL);

	say("ptrace", s, (int)ret);
	if (ret == 0) {
		waitpid(pid, NULL, __WALL);
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
	}
	say("kill", s, kill(pid, 0));
}

static void probe_privileges(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { 0 };
	int bounding = 0, ambient = 0;
	char buf[64];

	int ret;

	say("setuid", "0", setuid(0));
	/* Unjailed (the tests' control run) the mount must not touch the
	 * host: it goes into a private mount namespace of the probe's own
	 * when the unshare works. Jailed, both fail. */
	ret = unshare(CLONE_NEWNS);
	say("unshare", "CLONE_NEWNS", ret);
	if (ret == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fprintf(stderr, "jail-probe: make mounts private: %s\n",
			strerrorname_np(errno));
	else
		say("mount", "tmpfs", mount("none", "/", "tmpfs", 0, NULL));
	say("chroot", ".", chroot("."));
	/* Reported, not judged by the tests: the jail does not stop a new
	 * user namespace (docs/jail.md); seccomp does. */
	if (fork() == 0)
		_exit(unshare(CLONE_NEWUSER) < 0 ? errno : 0);
	else {
		int st = 0;

		wait(&st);
		errno = WIFEXITED(st) ? WEXITSTATUS(st) : EINTR;
		say("unshare", "CLONE_NEWUSER (in a child)", errno ? -1 : 0);
	}
	for (int c = 0; c < 64; c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) > 0)
			bounding++;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) > 0)
			ambient++;
	}
	syscall(SYS_capget, &h, d);
	snprintf(buf, sizeof(buf), "%x/%x/%x/%x/%x/%x", d[0].effective,
		 d[1].effective, d[0].permitted, d[1].permitted,
		 d[0].inheritable, d[1].inheritable);
	fprintf(stderr, "jail-probe: caps eff/prm/inh: %s\n", buf);
	fprintf(stderr, "jail-probe: caps bounding: %d ambient: %d\n", bounding,
		ambient);
	fprintf(stderr, "jail-probe: no_new_privs: %d\n",
		prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	{
		struct rlimit f, m;

		getrlimit(RLIMIT_NOFILE, &f);
		getrlimit(RLIMIT_AS, &m);
		fprintf(stderr, "jail-probe: rlimit files: %llu memory: %llu\n",
			(unsigned long long)f.rlim_max,
			(unsigned long long)m.rlim_max);
	}
	fprintf(stderr, "jail-probe: uid: %u gid: %u groups: %d\n",
		(unsigned)geteuid(), (unsigned)getegid(), getgroups(0, NULL));
}

int jail_probe_run(const char *spec)
{
	char *copy = strdup(spec ? spec : ""), *save = NULL;
	unsigned sleep_at_end = 0;

	if (!copy)
		return -1;
	for (char *kv = strtok_r(copy, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');

		if (!v) {
			free(copy);
			return -1;
		}
		*v++ = 0;
		if (!strcmp(kv, "file"))
			probe_file(v);
		else if (!strcmp(kv, "tcp"))
			probe_tcp(v);
		else if (!strcmp(kv, "unix"))
			probe_unix(v);
		else if (!strcmp(kv, "pid"))
			probe_pid(v);
		else if (!strcmp(kv, "sleep"))
			sleep_at_end = (unsigned)atoi(v);
		else {
			free(copy);
			return -1;
		}
	}
	probe_privileges();
	fprintf(stderr, "jail-probe: end\n");
	free(copy);
	if (sleep_at_end)
		sleep(sleep_at_end);
	return 0;
}
