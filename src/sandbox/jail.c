// SPDX-License-Identifier: MIT
#include "sandbox/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A credential change makes a process non-dumpable, so not even its own
 * threads may ptrace it: wanted, except that the leak checker of sanitizer
 * builds stops the process's threads with ptrace at exit. Those builds
 * (tests only) stay dumpable. */
#if defined(__SANITIZE_ADDRESS__)
#define KEEP_DUMPABLE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KEEP_DUMPABLE 1
#endif
#endif

/* Where an empty root is built: a mount point every system has, covered
 * only in our own mount namespace (the host's /tmp is not touched). */
#define EMPTY_ROOT_AT "/tmp"

/* What a dynamically linked executable needs from the host: its loader
 * and libraries, read-only (Debian's merged /usr makes /lib and /lib64
 * symlinks, which are copied as symlinks). */
static const char *const host_lib_dirs[] = { "/lib", "/lib64", "/usr/lib",
					     "/usr/lib64" };

int jail_mkdir_p(char *path, mode_t mode)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, mode) < 0 && errno != EEXIST) {
			*p = '/';
			return -errno;
		}
		*p = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int bind_ro(const char *src, const char *dst, struct err *e)
{
	char p[PATH_MAX];
	int ret;

	if (snprintf(p, sizeof(p), "%s%s", dst, src) >= (int)sizeof(p))
		return err_config(e, -ENAMETOOLONG, "jail: '%s%s': too long",
				  dst, src);
	ret = jail_mkdir_p(p, 0755);
	if (ret)
		return err_set(e, ret, "jail: mkdir '%s': %s", p,
			       strerror(-ret));
	if (mount(src, p, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount(NULL, p, NULL,
		  MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
		  NULL) < 0)
		return err_set(e, -errno, "jail: bind '%s' read-only: %s", src,
			       strerror(errno));
	return 0;
}

static int add_host_libs(const char *root, struct err *e)
{
	for (size_t i = 0; i < sizeof(host_lib_dirs) / sizeof(host_lib_dirs[0]);
	     i++) {
		const char *d = host_lib_dirs[i];
		char link[PATH_MAX], at[PATH_MAX];
		struct stat st;
		ssize_t n;
		int ret;

		if (lstat(d, &st) < 0)
			continue;
		if (!S_ISLNK(st.st_mode)) {
			ret = bind_ro(d, root, e);
			if (ret)
				return ret;
			continue;
		}
		n = readlink(d, link, sizeof(link) - 1);
		if (n < 0)
			return err_set(e, -errno, "jail: readlink '%s': %s", d,
				       strerror(errno));
		link[n] = 0;
		snprintf(at, sizeof(at), "%s%s", root, d);
		if (symlink(link, at) < 0 && errno != EEXIST)
			return err_set(e, -errno, "jail: symlink '%s': %s", at,
				       strerror(errno));
	}
	return 0;
}

static int set_limit(int res, const char *name, uint64_t v, struct err *e)
{
	struct rlimit rl = { (rlim_t)v, (rlim_t)v };

	if (setrlimit(res, &rl) < 0)
		return err_set(e, -errno, "jail: %s %llu: %s", name,
			       (unsigned long long)v, strerror(errno));
	return 0;
}

/* Dropping from the bounding set needs CAP_SETPCAP, which capset and a
 * uid switch take away: it goes first. The kernel says EINVAL past its
 * last capability (no /proc needed to know how many there are). */
static int drop_bounding(struct err *e)
{
	for (int cap = 0;; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

		if (r < 0 && errno == EINVAL && cap > 0)
			return 0;
		if (r < 0 ||
		    (r > 0 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0))
			return err_set(e, -errno,
				       "jail: drop capability %d from the "
				       "bounding set: %s",
				       cap, strerror(errno));
	}
}

int jail_drop_caps(struct err *e)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	int ret = drop_bounding(e);

	if (ret)
		return ret;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)
		return err_set(e, -errno,
			       "jail: clear ambient capabilities: %s",
			       strerror(errno));
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0)
		return err_set(e, -errno, "jail: capset: %s", strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_set(e, -errno, "jail: no_new_privs: %s",
			       strerror(errno));
	return 0;
}

/* Makes dir the root of our mount namespace, the old root unreachable. */
static int pivot(const char *dir, struct err *e)
{
	if (chdir(dir) < 0)
		return err_set(e, -errno, "jail: chdir '%s': %s", dir,
			       strerror(errno));
	/* pivot_root(".", "."): the old root ends up stacked on the new one
	 * and is detached at once, with no directory needed for it. */
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		if (errno != EINVAL)
			return err_set(e, -errno, "jail: pivot_root '%s': %s",
				       dir, strerror(errno));
		/* The root is the initramfs (rootfs), which cannot be
		 * pivoted away (an L1 of the rig, a host booted without a
		 * root file system): move the new root over it and chroot,
		 * as switch_root does. Without CAP_SYS_CHROOT, gone before
		 * the jailed program runs, there is no way back up. */
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0)
			return err_set(e, -errno,
				       "jail: move '%s' over the initramfs "
				       "root: %s",
				       dir, strerror(errno));
		return chdir("/") < 0 ? err_set(e, -errno, "jail: chdir /: %s",
						strerror(errno)) :
					0;
	}
	if (umount2(".", MNT_DETACH) < 0)
		return err_set(e, -errno, "jail: detach the old root: %s",
			       strerror(errno));
	if (chdir("/") < 0)
		return err_set(e, -errno, "jail: chdir /: %s", strerror(errno));
	return 0;
}

int jail_enter(const struct jail_cfg *cfg, struct err *e)
{
	const char *dir = cfg->root ? cfg->root : EMPTY_ROOT_AT;
	int pdeath = 0, ret;

	prctl(PR_GET_PDEATHSIG, &pdeath, 0, 0, 0);
	/* Nothing we mount may propagate back to the host's namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return err_set(e, -errno, "jail: make mounts private: %s",
			       strerror(errno));
	if (cfg->root) {
		/* pivot_root wants a mount point. */
		if (mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
			return err_set(e, -errno, "jail: bind '%s': %s", dir,
				       strerror(errno));
	} else if (mount("tmpfs", dir, "tmpfs",
			 MS_NOSUID | MS_NODEV | MS_NOEXEC,
			 "size=64k,nr_inodes=64,mode=0555") < 0) {
		return err_set(e, -errno, "jail: tmpfs for an empty root: %s",
			       strerror(errno));
	}
	if (cfg->host_libs) {
		ret = add_host_libs(dir, e);
		if (ret)
			return ret;
	}
	if (cfg->proc) {
		char p[PATH_MAX];

		/* A proc of our own PID namespace: it lists our processes
		 * only. Mounted before the pivot: in a user namespace the
		 * kernel allows a new proc only while a full one is
		 * visible. */
		snprintf(p, sizeof(p), "%s/proc", dir);
		if (mkdir(p, 0555) < 0 && errno != EEXIST)
			return err_set(e, -errno, "jail: mkdir '%s': %s", p,
				       strerror(errno));
		if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) < 0)
			return err_set(e, -errno, "jail: mount /proc: %s",
				       strerror(errno));
	}
	ret = pivot(dir, e);
	if (ret)
		return ret;
	if (!cfg->root && mount(NULL, "/", NULL,
				MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID |
					MS_NODEV | MS_NOEXEC,
				NULL) < 0)
		return err_set(e, -errno, "jail: empty root read-only: %s",
			       strerror(errno));
	if (cfg->hostname &&
	    sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
		return err_set(e, -errno, "jail: hostname: %s",
			       strerror(errno));
	ret = set_limit(RLIMIT_CORE, "RLIMIT_CORE", 0, e);
	if (!ret && cfg->nofile)
		ret = set_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", cfg->nofile, e);
	if (!ret && cfg->as_bytes)
		ret = set_limit(RLIMIT_AS, "RLIMIT_AS", cfg->as_bytes, e);
	if (ret)
		return ret;
	if (cfg->set_ids) {
		/* The bounding set goes while we still hold CAP_SETPCAP; the
		 * uid switch then clears the other sets, jail_drop_caps
		 * makes sure (a target uid of 0 keeps them otherwise). */
		ret = drop_bounding(e);
		if (ret)
			return ret;
		if (setgroups(0, NULL) < 0)
			return err_set(e, -errno, "jail: setgroups: %s",
				       strerror(errno));
		if (setresgid(cfg->gid, cfg->gid, cfg->gid) < 0)
			return err_set(e, -errno, "jail: setresgid %u: %s",
				       (unsigned)cfg->gid, strerror(errno));
		if (setresuid(cfg->uid, cfg->uid, cfg->uid) < 0)
			return err_set(e, -errno, "jail: setresuid %u: %s",
				       (unsigned)cfg->uid, strerror(errno));
	}
	ret = jail_drop_caps(e);
	if (ret)
		return ret;
#ifdef KEEP_DUMPABLE
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	/* A credential change cleared it: the jailed process must still
	 * die with its parent. */
	if (pdeath && prctl(PR_SET_PDEATHSIG, pdeath, 0, 0, 0) < 0)
		return err_set(e, -errno, "jail: parent-death signal: %s",
			       strerror(errno));
	return 0;
}
