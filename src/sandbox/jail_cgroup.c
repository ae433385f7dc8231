// SPDX-License-Identifier: MIT
/* wisp jail's cgroup v2 placement (jail_cmd.h). */
#include "sandbox/jail_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where cgroup v2 is mounted: /sys/fs/cgroup on a unified host,
 * /sys/fs/cgroup/unified on a hybrid one. */
static int cgroup2_root(char *out, size_t size, struct err *e)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	int ret = err_config(e, -ENOENT,
			     "cgroup: no cgroup2 file system "
			     "mounted (mount -t cgroup2 none "
			     "/sys/fs/cgroup)");

	if (!f)
		return err_set(e, -errno, "cgroup: /proc/self/mountinfo: %s",
			       strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char mnt[512], *sep = strstr(line, " - ");

		if (!sep || strncmp(sep, " - cgroup2 ", 11) ||
		    sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
		    strlen(mnt) >= size)
			continue;
		snprintf(out, size, "%s", mnt);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

static int write_str(const char *dir, const char *file, const char *v,
		     struct err *e)
{
	char p[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_config(e, -errno, "cgroup: '%s': %s", p,
				  strerror(errno));
	n = write(fd, v, strlen(v));
	if (n != (ssize_t)strlen(v)) {
		int ret = n < 0 ? -errno : -EIO;

		close(fd);
		return err_config(e, ret, "cgroup: write '%s' to '%s': %s", v,
				  p, strerror(-ret));
	}
	close(fd);
	return 0;
}

/* The controller a setting belongs to: "memory" for "memory.max". */
static int controller_of(const char *key, char *out, size_t size)
{
	const char *dot = strchr(key, '.');

	if (!dot || dot == key || (size_t)(dot - key) >= size)
		return -EINVAL;
	memcpy(out, key, (size_t)(dot - key));
	out[dot - key] = 0;
	return 0;
}

int jail_cgroup_place(const struct jail_cmd *c, pid_t pid, struct err *e)
{
	char root[PATH_MAX / 2], dir[PATH_MAX], path[PATH_MAX], pidbuf[24];
	const char *parent = c->cgroup_parent ? c->cgroup_parent : "wisp";
	size_t len;
	int ret;

	if (!c->nr_cgroup && !c->cgroup_parent)
		return 0;
	ret = cgroup2_root(root, sizeof(root), e);
	if (ret)
		return ret;
	while (parent[0] == '/')
		parent++;
	if (strstr(parent, "..") || snprintf(dir, sizeof(dir), "%s/%s/%s", root,
					     parent, c->id) >= (int)sizeof(dir))
		return err_config(e, -EINVAL, "--cgroup-parent '%s': bad path",
				  c->cgroup_parent);
	/* Each level down to the parent delegates the controllers our
	 * settings use; then the jail's own group, its limits, and us. */
	len = strlen(root);
	for (;;) {
		char *slash = strchr(dir + len + 1, '/');

		snprintf(path, sizeof(path), "%.*s", (int)len, dir);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return err_config(e, -errno, "cgroup: mkdir '%s': %s",
					  path, strerror(errno));
		for (int i = 0; i < c->nr_cgroup; i++) {
			char ctl[32], plus[40];

			if (controller_of(c->cgroup_key[i], ctl, sizeof(ctl)))
				return err_config(e, -EINVAL,
						  "--cgroup '%s': not "
						  "CONTROLLER.FILE",
						  c->cgroup_key[i]);
			if (!strcmp(ctl, "cgroup"))
				continue;
			snprintf(plus, sizeof(plus), "+%s", ctl);
			ret = write_str(path, "cgroup.subtree_control", plus,
					e);
			if (ret)
				return ret;
		}
		if (!slash)
			break;
		len = (size_t)(slash - dir);
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return err_config(e, -errno, "cgroup: mkdir '%s': %s", dir,
				  strerror(errno));
	for (int i = 0; i < c->nr_cgroup; i++) {
		ret = write_str(dir, c->cgroup_key[i], c->cgroup_value[i], e);
		if (ret)
			return ret;
	}
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
	return write_str(dir, "cgroup.procs", pidbuf, e);
}
