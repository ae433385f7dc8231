// SPDX-License-Identifier: MIT
#include "vmm/servers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devices/iommu/viommu.h"
#include "sandbox/jail.h"
#include "util/log.h"
#include "virtio/mmio.h"

#define RETRY_PERIOD_NS 200000000ULL

void servers_init(struct servers *ss, struct kvm *kvm, struct guest_mem *mem,
		  struct ioeventfd_registry *ioev, struct posted *posted,
		  struct event_loop *loop, int nr_vcpus)
{
	memset(ss, 0, sizeof(*ss));
	ss->kvm = kvm;
	ss->mem = mem;
	ss->ioev = ioev;
	ss->posted = posted;
	ss->loop = loop;
	ss->nr_vcpus = nr_vcpus;
	ss->retry_tfd = -1;
	pthread_mutex_init(&ss->iommu_lock, NULL);
}

/* ---- Behind the IOMMU: the remote endpoint's ops -------------------- */

static uint32_t wire_perm(uint32_t perm)
{
	return (perm & IOVA_PERM_READ ? IOREQ_IOMMU_READ : 0) |
	       (perm & IOVA_PERM_WRITE ? IOREQ_IOMMU_WRITE : 0);
}

static uint32_t wire_mode(uint32_t mode)
{
	return mode == VIOMMU_EP_BYPASS	   ? IOREQ_IOMMU_BYPASS :
	       mode == VIOMMU_EP_TRANSLATE ? IOREQ_IOMMU_TRANSLATE :
					     IOREQ_IOMMU_BLOCK;
}

static int ep_map(void *opaque, uint64_t seq, uint64_t start, uint64_t last,
		  uint64_t gpa, uint32_t perm)
{
	struct vm_server *sv = opaque;
	int ret = 0;

	pthread_mutex_lock(&sv->set->iommu_lock);
	if (sv->client)
		ret = ioreq_client_iommu_map(sv->client, seq, start, last, gpa,
					     wire_perm(perm));
	pthread_mutex_unlock(&sv->set->iommu_lock);
	return ret;
}

static int ep_unmap(void *opaque, uint64_t seq, uint64_t start, uint64_t last)
{
	struct vm_server *sv = opaque;
	int ret = 0;

	pthread_mutex_lock(&sv->set->iommu_lock);
	if (sv->client)
		ret = ioreq_client_iommu_unmap(sv->client, seq, start, last);
	pthread_mutex_unlock(&sv->set->iommu_lock);
	return ret;
}

static int ep_reset(void *opaque, uint64_t seq, uint32_t mode)
{
	struct vm_server *sv = opaque;
	int ret = 0;

	pthread_mutex_lock(&sv->set->iommu_lock);
	if (sv->client)
		ret = ioreq_client_iommu_reset(sv->client, seq,
					       wire_mode(mode));
	pthread_mutex_unlock(&sv->set->iommu_lock);
	return ret;
}

static const struct viommu_remote_ops remote_ops = { ep_map, ep_unmap,
						     ep_reset };

/* The client's attach (main thread): where the new server starts. */
static int ep_snapshot(void *opaque, uint32_t *mode,
		       struct ioreq_iommu_map **out, uint32_t *nr,
		       uint64_t *seq)
{
	struct vm_server *sv = opaque;
	struct iova_map *maps;
	uint32_t m;
	int ret = viommu_snapshot(sv->set->iommu, sv->endpoint, &m, &maps, nr,
				  seq);

	*out = NULL;
	if (ret)
		return ret;
	*mode = wire_mode(m);
	if (*nr) {
		*out = calloc(*nr, sizeof(**out));
		if (!*out) {
			free(maps);
			return -ENOMEM;
		}
	}
	for (uint32_t i = 0; i < *nr; i++) {
		(*out)[i].iova = maps[i].start;
		(*out)[i].last = maps[i].last;
		(*out)[i].gpa = maps[i].phys;
		(*out)[i].perm = wire_perm(maps[i].perm);
	}
	free(maps);
	return 0;
}

static void ep_fault(void *opaque, uint64_t iova, uint32_t flags)
{
	struct vm_server *sv = opaque;

	viommu_report_fault(sv->set->iommu, sv->endpoint, iova,
			    flags & IOREQ_IOMMU_WRITE);
}

int servers_split_cmd(const char *cmd, char **copy, char **argv, struct err *e)
{
	char *save = NULL;
	int argc = 0;

	*copy = strdup(cmd);
	if (!*copy)
		return err_set(e, -ENOMEM, "out of memory");
	for (char *t = strtok_r(*copy, " ", &save); t;
	     t = strtok_r(NULL, " ", &save)) {
		if (argc == SPAWN_MAX_ARGS)
			return err_config(e, -E2BIG,
					  "--spawn-server '%s': more than %d "
					  "words",
					  cmd, SPAWN_MAX_ARGS);
		argv[argc++] = t;
	}
	if (!argc)
		return err_config(e, -EINVAL, "--spawn-server: empty command");
	return argc;
}

/* In the child, in its new user namespace, before exec: the namespace's
 * capabilities made ambient, so the server still holds them to build its
 * jail when its ids could not be mapped (a jailed wisp has no /proc):
 * exec keeps ambient capabilities for any uid. The server drops them
 * all in jail_server_enter. */
static void keep_caps_across_exec(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return;
	d[0].inheritable = d[0].permitted;
	d[1].inheritable = d[1].permitted;
	if (syscall(SYS_capset, &h, d) < 0)
		return;
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) <
			    0 &&
		    errno == EINVAL && cap > 0 &&
		    prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
			break;
}

static int write_file(pid_t pid, const char *name, const char *text,
		      struct err *e)
{
	char path[64];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		ret = err_set(e, -errno, "--spawn-server: jail: %s: %s", path,
			      strerror(errno));
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The server is root of its user namespace as us, outside it: our uid
 * and gid, nothing else, and no setgroups (the rule for an unprivileged
 * gid_map). */
static int map_ids(pid_t pid, struct err *e)
{
	char m[32];
	int ret;

	snprintf(m, sizeof(m), "0 %u 1\n", (unsigned)geteuid());
	ret = write_file(pid, "uid_map", m, e);
	if (!ret)
		ret = write_file(pid, "setgroups", "deny", e);
	snprintf(m, sizeof(m), "0 %u 1\n", (unsigned)getegid());
	if (!ret)
		ret = write_file(pid, "gid_map", m, e);
	return ret;
}

/* Starts "cmd --socket path" as a child that dies with us. The child
 * never prints: an exec failure travels back through a close-on-exec
 * pipe as an errno, and the parent reports it.
 *
 * Jailed (the default, docs/jail.md): the child starts as PID 1 of a new
 * PID namespace (in a new user namespace too when we are not root, so it
 * may make the rest of its namespaces) and gets "--jail SPEC": the
 * server confines itself once it has opened its device's file and bound
 * its socket, which it could not do from inside an empty root. */
static int spawn(const char *cmd, const char *path, const struct vm_config *cfg,
		 pid_t *pid, struct err *e)
{
	char *copy = NULL, *argv[SPAWN_MAX_ARGS + 5], spec[64];
	int argc, pfd[2], gofd[2], child_errno = 0, ret, flags = 0;
	pid_t p;
	ssize_t n;

	argc = servers_split_cmd(cmd, &copy, argv, e);
	if (argc < 0) {
		free(copy);
		return argc;
	}
	argv[argc++] = "--socket";
	argv[argc++] = (char *)path;
	if (!cfg->jail_off) {
		struct jail_server js = { 0 };

		if (geteuid() == 0) {
			js.set_ids = true;
			js.uid = cfg->jail_uid;
			js.gid = cfg->jail_gid;
			flags = CLONE_NEWPID;
		} else {
			js.userns = true;
			flags = CLONE_NEWUSER | CLONE_NEWPID;
		}
		jail_server_format(&js, spec, sizeof(spec));
		argv[argc++] = "--jail";
		argv[argc++] = spec;
	}
	argv[argc] = NULL;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		ret = err_set(e, -errno, "--spawn-server '%s': pipe: %s", cmd,
			      strerror(errno));
		free(copy);
		return ret;
	}
	if ((flags & CLONE_NEWUSER) && pipe2(gofd, O_CLOEXEC) < 0) {
		ret = err_set(e, -errno, "--spawn-server '%s': pipe: %s", cmd,
			      strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		free(copy);
		return ret;
	}
	/* clone without a stack returns twice, like fork. */
	p = flags ? (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL,
				   NULL) :
		    fork();
	if (p < 0) {
		ret = err_set(e, -errno, "--spawn-server '%s': %s: %s%s", cmd,
			      flags ? "clone into new namespaces" : "fork",
			      strerror(errno),
			      flags ? " (--no-jail runs servers unjailed)" :
				      "");
		close(pfd[0]);
		close(pfd[1]);
		if (flags & CLONE_NEWUSER) {
			close(gofd[0]);
			close(gofd[1]);
		}
		free(copy);
		return ret;
	}
	if (p == 0) {
		sigset_t none;
		char go;
		int err;

		close(pfd[0]);
		/* In a user namespace: wait until our ids are mapped, or
		 * exec would take the namespace's capabilities away. */
		if (flags & CLONE_NEWUSER) {
			close(gofd[1]);
			if (read(gofd[0], &go, 1) != 1)
				_exit(127);
			keep_caps_across_exec();
		}
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* A PID namespace's init gets an ancestor's SIGTERM only with
		 * a handler installed; SIGKILL always. */
		prctl(PR_SET_PDEATHSIG, flags ? SIGKILL : SIGTERM);
		execvp(argv[0], argv);
		err = errno;
		if (write(pfd[1], &err, sizeof(err)) < 0) {
			/* Nothing else to tell: the parent sees EOF and then
			 * the exit status. */
		}
		_exit(127);
	}
	close(pfd[1]);
	if (flags & CLONE_NEWUSER) {
		close(gofd[0]);
		/* No /proc (a jailed wisp): the server keeps the
		 * namespace's capabilities as ambient ones instead. */
		ret = map_ids(p, e);
		if (ret == -ENOENT)
			ret = 0;
		if (!ret && write(gofd[1], "g", 1) != 1)
			ret = err_set(e, -errno, "--spawn-server: %s",
				      strerror(errno));
		close(gofd[1]);
		if (ret) {
			close(pfd[0]);
			kill(p, SIGKILL);
			waitpid(p, NULL, 0);
			free(copy);
			return ret;
		}
	}
	do
		n = read(pfd[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == sizeof(child_errno)) {
		waitpid(p, NULL, 0);
		ret = err_config(e, -child_errno, "--spawn-server: %s: %s",
				 argv[0], strerror(child_errno));
		free(copy);
		return ret;
	}
	free(copy);
	*pid = p;
	return 0;
}

/* A directory only we can enter, for the sockets of spawned servers. */
static int make_private_dir(struct servers *ss, struct err *e)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	struct stat st;

	if (ss->dir[0])
		return 0;
	if (!base || !*base || stat(base, &st) || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077))
		base = "/tmp";
	if (snprintf(ss->dir, sizeof(ss->dir), "%s/wisp-XXXXXX", base) >=
	    (int)sizeof(ss->dir))
		snprintf(ss->dir, sizeof(ss->dir), "/tmp/wisp-XXXXXX");
	if (!mkdtemp(ss->dir)) {
		int ret = err_set(e, -errno, "server socket directory '%s': %s",
				  ss->dir, strerror(errno));

		ss->dir[0] = 0;
		return ret;
	}
	return 0;
}

static int add_posted(void *opaque, uint64_t addr, uint64_t len)
{
	struct servers *ss = opaque;

	return posted_add_zone(ss->posted, addr, len);
}

static int del_posted(void *opaque, uint64_t addr, uint64_t len)
{
	struct servers *ss = opaque;

	return posted_del_zone(ss->posted, addr, len);
}

static int create_one(struct servers *ss, int i, const struct vm_config *cfg,
		      struct layout *layout, struct bus *mmio, struct err *e)
{
	const struct server_config *sc = &cfg->servers[i];
	struct vm_server *sv = &ss->s[i];
	struct ioreq_client_config cc = { 0 };
	struct window *w = NULL;
	char name[160];
	int ret;

	if (sc->spawn) {
		ret = make_private_dir(ss, e);
		if (ret)
			return ret;
		snprintf(sv->socket_path, sizeof(sv->socket_path),
			 "%s/server%d.sock", ss->dir, i);
		ret = spawn(sc->spawn, sv->socket_path, cfg, &sv->child, e);
		if (ret)
			return ret;
	} else {
		if (strlen(sc->socket) >= sizeof(sv->socket_path))
			return err_config(e, -ENAMETOOLONG,
					  "--server '%s': path longer than "
					  "%zu bytes",
					  sc->socket,
					  sizeof(sv->socket_path) - 1);
		snprintf(sv->socket_path, sizeof(sv->socket_path), "%s",
			 sc->socket);
	}
	ret = layout_alloc_window(layout, &w, e);
	if (ret)
		return ret;
	/* Left out (--server-iommu off): no endpoint, no VIOT node, and the
	 * client grants no IOREQ_F_IOMMU, so the server gets no table and its
	 * device offers no ACCESS_PLATFORM. */
	if (ss->iommu && !sc->no_iommu) {
		/* The endpoint ID is the window's index, as the VIOT says. */
		sv->endpoint = (uint32_t)(w - layout->windows);
		ret = viommu_add_remote_endpoint(ss->iommu, sv->endpoint,
						 &remote_ops, sv, e);
		if (ret)
			return ret;
		w->translated = true;
		cc.iommu =
			(struct ioreq_iommu_host){ ep_snapshot, ep_fault, sv };
	}
	sv->gsi = w->gsi;
	sv->irq_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sv->irq_efd < 0)
		return err_set(e, -errno, "server '%s': eventfd: %s",
			       sv->socket_path, strerror(errno));
	ret = kvm_irqfd(ss->kvm, sv->irq_efd, w->gsi, false);
	if (ret)
		return err_set(e, ret, "server '%s': irqfd: %s",
			       sv->socket_path, strerror(-ret));
	snprintf(name, sizeof(name), "server '%s'", sv->socket_path);
	cc.name = name;
	cc.socket_path = sv->socket_path;
	/* One slot per vCPU, plus one for the posted-write drain. */
	cc.nr_vcpus = ss->nr_vcpus + 1;
	cc.mem = ss->mem;
	cc.window_base = w->base;
	cc.window_size = VIRTIO_MMIO_SIZE;
	cc.gsi = w->gsi;
	cc.irq_efd = sv->irq_efd;
	cc.doorbells = ss->ioev;
	cc.posted = (struct ioreq_posted_host){ add_posted, del_posted, ss };
	pthread_mutex_lock(&ss->iommu_lock);
	ret = ioreq_client_create(&cc, &sv->client, e);
	pthread_mutex_unlock(&ss->iommu_lock);
	if (ret)
		return ret;
	w->announce = ioreq_client_is_virtio(sv->client);
	ret = bus_register(mmio, w->base, VIRTIO_MMIO_SIZE, &ioreq_window_ops,
			   sv->client, "ioreq");
	if (ret)
		return err_set(e, ret, "server '%s': MMIO window: %s",
			       sv->socket_path, strerror(-ret));
	return 0;
}

int servers_create(struct servers *ss, const struct vm_config *cfg,
		   struct layout *layout, struct bus *mmio, struct err *e)
{
	for (int i = 0; i < cfg->nr_servers; i++) {
		struct vm_server *sv = &ss->s[i];
		int ret;

		sv->irq_efd = -1;
		sv->watch.fd = -1;
		sv->set = ss;
		ss->nr++;
		ret = create_one(ss, i, cfg, layout, mmio, e);
		if (ret)
			return ret;
	}
	return 0;
}

static void arm_retry(struct servers *ss, bool on)
{
	loop_timer_arm(ss->retry_tfd, on ? RETRY_PERIOD_NS : 0);
}

static void on_socket(void *opaque);

static int watch(struct vm_server *sv)
{
	int fd = ioreq_client_fd(sv->client);

	if (fd < 0)
		return -ENOTCONN;
	return loop_add(sv->set->loop, &sv->watch, fd, on_socket, sv);
}

static void on_socket(void *opaque)
{
	struct vm_server *sv = opaque;
	struct servers *ss = sv->set;
	int fd = sv->watch.fd;

	ioreq_client_handle_event(sv->client);
	if (ioreq_client_attached(sv->client))
		return;
	/* The detach closed the socket, which left the epoll set; forget
	 * the stale fd number so a later loop_del cannot hit a reused one. */
	if (fd >= 0 && ioreq_client_fd(sv->client) != fd)
		sv->watch.fd = -1;
	/* Reap a spawned server that died, then wait for it (or a
	 * replacement) to bind the socket again. */
	if (sv->child > 0 && waitpid(sv->child, NULL, WNOHANG) == sv->child)
		sv->child = 0;
	arm_retry(ss, true);
}

static void on_retry(void *opaque)
{
	struct servers *ss = opaque;
	bool waiting = false;

	if (!loop_timer_ack(ss->retry_tfd))
		return;
	for (int i = 0; i < ss->nr; i++) {
		struct vm_server *sv = &ss->s[i];

		if (ioreq_client_attached(sv->client))
			continue;
		/* Before the new server takes the rings: requests posted to
		 * the broken device fail every retry period, as the in-flight
		 * ones did at the detach, instead of waiting forever. */
		ioreq_client_fail_pending(sv->client);
		if (ioreq_client_try_attach(sv->client) == 0) {
			log_warn("server '%s' attached again", sv->socket_path);
			if (watch(sv))
				log_warn("server '%s': cannot watch its socket",
					 sv->socket_path);
		} else {
			waiting = true;
		}
	}
	if (!waiting)
		arm_retry(ss, false);
}

int servers_start(struct servers *ss, struct err *e)
{
	int tfd;

	if (!ss->nr)
		return 0;
	tfd = loop_timer_add(ss->loop, &ss->retry_watch, on_retry, ss);
	if (tfd < 0)
		return err_set(e, tfd, "servers: retry timer: %s",
			       strerror(-tfd));
	ss->retry_tfd = tfd;
	for (int i = 0; i < ss->nr; i++) {
		int ret = watch(&ss->s[i]);

		if (ret)
			return err_set(e, ret, "server '%s': epoll: %s",
				       ss->s[i].socket_path, strerror(-ret));
	}
	return 0;
}

/* A spawned server gets SIGTERM and 2 s to go, then SIGKILL. */
static void reap_child(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		struct timespec ts = { 0, 10000000 };

		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

void servers_destroy(struct servers *ss)
{
	if (ss->retry_tfd >= 0) {
		loop_del(ss->loop, &ss->retry_watch);
		close(ss->retry_tfd);
		ss->retry_tfd = -1;
	}
	for (int i = 0; i < ss->nr; i++) {
		struct vm_server *sv = &ss->s[i];
		struct ioreq_client *c;

		/* The IOMMU's thread may be telling this client about a
		 * change: it finishes first, and then finds no client. */
		pthread_mutex_lock(&ss->iommu_lock);
		c = sv->client;
		sv->client = NULL;
		pthread_mutex_unlock(&ss->iommu_lock);
		ioreq_client_destroy(c);
		if (sv->irq_efd >= 0) {
			kvm_irqfd(ss->kvm, sv->irq_efd, sv->gsi, true);
			close(sv->irq_efd);
			sv->irq_efd = -1;
		}
		if (sv->child > 0)
			reap_child(sv->child);
		sv->child = 0;
		/* The socket in our private directory is ours to remove; a
		 * --server socket belongs to whoever started that server. */
		if (ss->dir[0] &&
		    !strncmp(sv->socket_path, ss->dir, strlen(ss->dir)))
			unlink(sv->socket_path);
	}
	ss->nr = 0;
	if (ss->dir[0]) {
		rmdir(ss->dir);
		ss->dir[0] = 0;
	}
}
