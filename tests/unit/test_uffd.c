// SPDX-License-Identifier: MIT
/*
 * Lazy guest memory (src/snapshot/mem_restore.h) on a real memfd and
 * mapping in this process, with the real wisp-uffd (WISP_UFFD) or a
 * Firecracker-style handler forked here as the page-fault handler:
 * the handshake message, the File backend both ways, the Uffd backend's
 * serving, delay, prefetch and EEXIST, its refusal with IOREQ servers,
 * the peer check, and what wisp does when the handler dies or stops.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem/guest_mem.h"
#include "snapshot/mem_restore.h"
#include "snapshot/uffd_map.h"
#include "util/time.h"

#define PG 4096ULL
#define MEM (4ULL << 20) /* 1024 pages */
#define NPAGES (MEM / PG)

static char dir[64];
static char mem_path[128], sock_path[128], log_path[128];

/* The byte pattern of page p of the memory file; pages 100..199 are a
 * hole (zero). */
static uint8_t pat(uint64_t p, uint64_t i)
{
	return (p >= 100 && p < 200) ? 0 : (uint8_t)(p * 7 + i / 512 + 1);
}

static void write_mem_file(void)
{
	uint8_t *buf = malloc(PG);
	int fd = open(mem_path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)MEM), 0);
	for (uint64_t p = 0; p < NPAGES; p++) {
		if (p >= 100 && p < 200)
			continue; /* sparse */
		for (uint64_t i = 0; i < PG; i++)
			buf[i] = pat(p, i);
		assert_int_equal(pwrite(fd, buf, PG, (off_t)(p * PG)),
				 (ssize_t)PG);
	}
	close(fd);
	free(buf);
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/wisp-uffd-XXXXXX");
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0755);
	snprintf(mem_path, sizeof(mem_path), "%s/mem", dir);
	snprintf(sock_path, sizeof(sock_path), "%s/uffd.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/handler.log", dir);
	write_mem_file();
	return 0;
}

static int teardown(void **state)
{
	unlink(mem_path);
	unlink(sock_path);
	unlink(log_path);
	rmdir(dir);
	return 0;
}

static bool page_ok(const uint8_t *g, uint64_t p)
{
	for (uint64_t i = 0; i < PG; i += 64)
		if (g[p * PG + i] != pat(p, i))
			return false;
	return true;
}

static bool uffd_usable(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Starts wisp-uffd with extra arguments and waits for its socket. */
static pid_t spawn_handler(const char *a1, const char *a2, const char *a3)
{
	const char *bin = getenv("WISP_UFFD");
	pid_t pid;
	struct stat st;

	assert_non_null(bin);
	unlink(sock_path);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int lf = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(lf, 2);
		execl(bin, bin, "--socket", sock_path, "--mem", mem_path,
		      "--accept-timeout-ms", "10000", a1, a2, a3, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && stat(sock_path, &st) < 0; i++)
		usleep(10000);
	assert_int_equal(stat(sock_path, &st), 0);
	return pid;
}

static int reap(pid_t pid, int timeout_ms)
{
	int status;

	for (int i = 0; i < timeout_ms; i += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static char *handler_log(void)
{
	static char buf[4096];
	int fd = open(log_path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : 0;

	buf[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
	return buf;
}

/* New guest RAM m, restored lazily into r by the handler on sock_path. */
static void uffd_restore(struct guest_mem *m, struct snap_mem_restore **r)
{
	struct err e = { 0 };

	assert_int_equal(guest_mem_init(m, MEM, &e), 0);
	assert_int_equal(snap_mem_restore_start(r, SNAP_MEM_UFFD, sock_path,
						m->memfd, m->host, MEM, false,
						&e),
			 0);
}

/* Starts wisp-uffd with the extra arguments, then uffd_restore through it;
 * returns the handler's pid. */
static pid_t uffd_start(struct guest_mem *m, struct snap_mem_restore **r,
			const char *a1, const char *a2, const char *a3)
{
	pid_t pid = spawn_handler(a1, a2, a3);

	uffd_restore(m, r);
	return pid;
}

/* Stops the restore: wisp hangs up, so the handler must end with 0 (in 5 s)
 * and its log must say what it served (want). */
static void stop_handler_done(struct snap_mem_restore *r, pid_t pid,
			      const char *want)
{
	int status;

	snap_mem_restore_stop(r);
	status = reap(pid, 5000);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("handler status %#x: %s", status, handler_log());
	assert_non_null(strstr(handler_log(), want));
}

/* Waits (10 s at most) until the prefetch alone has brought every data
 * page into guest RAM, which nobody touches (mincore sees the memfd's page
 * cache); the file's hole must have stayed out. */
static void wait_prefetched(const struct guest_mem *m)
{
	unsigned char vec[NPAGES];
	bool all = false;

	for (int i = 0; i < 1000 && !all; i++) {
		usleep(10000);
		assert_int_equal(mincore(m->host, MEM, vec), 0);
		all = true;
		for (uint64_t p = 0; p < NPAGES; p++)
			if ((p < 100 || p >= 200) && !(vec[p] & 1))
				all = false;
	}
	assert_true(all);
	for (uint64_t p = 100; p < 200; p++)
		assert_false(vec[p] & 1);
}

/* ---- the handshake message ---- */

static void test_map_roundtrip(void **state)
{
	struct uffd_region in[2] = { { 0x7f0000000000, 1 << 20, 0, 4096 },
				     { 0x7f0000200000, 2 << 20, 1 << 20,
				       4096 } },
			   out[4];
	char buf[UFFD_MAP_MSG_MAX];
	struct err e = { 0 };
	int n;

	n = uffd_map_encode(buf, sizeof(buf), in, 2);
	assert_true(n > 0);
	/* Both page size fields, in bytes, as Firecracker sends them. */
	buf[n] = 0;
	assert_non_null(strstr(buf, "\"page_size\":4096"));
	assert_non_null(strstr(buf, "\"page_size_kib\":4096"));
	assert_non_null(strstr(buf, "\"base_host_virt_addr\":139637976727552"));
	assert_int_equal(uffd_map_parse(buf, (size_t)n, out, 4, &e), 2);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(uffd_map_encode(buf, 10, in, 2), -ENOSPC);
}

static void test_map_parse_hostile(void **state)
{
	static const char *bad[] = {
		"",
		"{}",
		"[]",
		"[1]",
		"nonsense",
		"[{\"size\":4096,\"offset\":0,\"page_size\":4096}]",
		"[{\"base_host_virt_addr\":-4096,\"size\":4096,\"offset\":0,\"page_size\":4096}]",
		"[{\"base_host_virt_addr\":0,\"size\":0,\"offset\":0,\"page_size\":4096}]",
		"[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":3000}]",
		"[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":1024}]",
		"[{\"base_host_virt_addr\":1,\"size\":4096,\"offset\":0,\"page_size\":4096}]",
		"[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":\"4096\"}]",
		"[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0}]",
		"[{\"base_host_virt_addr\":0,\"size\":8192,\"offset\":0,\"page_size\":4096},"
		"{\"base_host_virt_addr\":4096,\"size\":4096,\"offset\":0,\"page_size\":4096}]",
		"[{\"base_host_virt_addr\":18446744073709547520,\"size\":4096,\"offset\":0,\"page_size\":4096}]",
		"[{\"base_host_virt_addr\":0,\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":4096}]",
		"[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":4096},1]",
	};
	struct uffd_region out[2];
	struct err e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = 0;
		if (uffd_map_parse(bad[i], strlen(bad[i]), out, 2, &e) !=
		    -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_true(e.msg[0] != 0);
	}
	/* Too many regions for the caller. */
	const char *three =
		"[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":4096},"
		"{\"base_host_virt_addr\":4096,\"size\":4096,\"offset\":0,\"page_size\":4096},"
		"{\"base_host_virt_addr\":8192,\"size\":4096,\"offset\":0,\"page_size\":4096}]";
	assert_int_equal(uffd_map_parse(three, strlen(three), out, 2, &e),
			 -EINVAL);
	/* Older VMMs: page_size_kib only (in bytes); unknown keys ignored. */
	const char *old =
		"[{\"base_host_virt_addr\":8192,\"size\":4096,\"offset\":4096,\"page_size_kib\":4096,\"future\":[1]}]";
	assert_int_equal(uffd_map_parse(old, strlen(old), out, 2, &e), 1);
	assert_int_equal(out[0].page_size, 4096);
	assert_int_equal(out[0].offset, 4096);
}

/* ---- the File backend ---- */

static void test_file_private(void **state)
{
	struct guest_mem m;
	struct snap_mem_restore *r;
	struct err e;
	uint8_t b;

	assert_int_equal(guest_mem_init(&m, MEM, &e), 0);
	memset(m.host, 0xee, PG); /* stale contents must go */
	assert_int_equal(snap_mem_restore_start(&r, SNAP_MEM_FILE, mem_path,
						m.memfd, m.host, MEM, false,
						&e),
			 0);
	for (uint64_t p = 0; p < NPAGES; p++)
		assert_true(page_ok(m.host, p));
	/* Writes stay private: the file keeps the snapshot (clones). */
	m.host[5 * PG] = 0x55;
	int fd = open(mem_path, O_RDONLY);
	assert_int_equal(pread(fd, &b, 1, 5 * PG), 1);
	close(fd);
	assert_int_equal(b, pat(5, 0));
	snap_mem_restore_stop(r);
	guest_mem_destroy(&m);
}

static void test_file_shared(void **state)
{
	struct guest_mem m;
	struct snap_mem_restore *r;
	struct err e;
	uint8_t *buf = malloc(PG);

	assert_int_equal(guest_mem_init(&m, MEM, &e), 0);
	memset(m.host + 150 * PG, 0xee, PG); /* inside the file's hole */
	assert_int_equal(snap_mem_restore_start(&r, SNAP_MEM_FILE, mem_path,
						m.memfd, m.host, MEM, true, &e),
			 0);
	/* The contents are in the memfd itself, as a server sees them. */
	for (uint64_t p = 0; p < NPAGES; p++) {
		assert_int_equal(pread(m.memfd, buf, PG, (off_t)(p * PG)),
				 (ssize_t)PG);
		for (uint64_t i = 0; i < PG; i += 64)
			assert_int_equal(buf[i], pat(p, i));
	}
	snap_mem_restore_stop(r);
	guest_mem_destroy(&m);
	free(buf);
}

static void test_file_wrong_size(void **state)
{
	struct guest_mem m;
	struct snap_mem_restore *r = (void *)1;
	struct err e = { 0 };

	assert_int_equal(guest_mem_init(&m, 2 * MEM, &e), 0);
	assert_int_equal(snap_mem_restore_start(&r, SNAP_MEM_FILE, mem_path,
						m.memfd, m.host, 2 * MEM, false,
						&e),
			 -EINVAL);
	assert_null(r);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_non_null(strstr(e.msg, "bytes, guest RAM has"));
	assert_int_equal(snap_mem_restore_start(&r, SNAP_MEM_FILE,
						"/nonexistent/mem", m.memfd,
						m.host, 2 * MEM, false, &e),
			 -ENOENT);
	guest_mem_destroy(&m);
}

/* ---- the Uffd backend ---- */

static void test_uffd_refused_with_servers(void **state)
{
	struct guest_mem m;
	struct snap_mem_restore *r = (void *)1;
	struct err e = { 0 };

	assert_int_equal(guest_mem_init(&m, MEM, &e), 0);
	assert_int_equal(snap_mem_restore_start(&r, SNAP_MEM_UFFD, sock_path,
						m.memfd, m.host, MEM, true, &e),
			 -EINVAL);
	assert_null(r);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_non_null(strstr(e.msg, "IOREQ servers"));
	/* Nothing registered: touching RAM does not wait for anyone. */
	m.host[0] = 1;
	guest_mem_destroy(&m);
}

static void test_uffd_serves(void **state)
{
	struct guest_mem m;
	struct snap_mem_restore *r;
	struct err e = { 0 };
	pid_t pid;
	uint64_t t0, t;

	if (!uffd_usable())
		skip();
	pid = spawn_handler("--no-prefetch", "--delay-us", "2000");
	assert_int_equal(guest_mem_init(&m, MEM, &e), 0);
	memset(m.host, 0xee, PG);
	assert_int_equal(snap_mem_restore_start(&r, SNAP_MEM_UFFD, sock_path,
						m.memfd, m.host, MEM, false,
						&e),
			 0);
	/* 20 pages at 2 ms each: the delay is per page. */
	t0 = now_ns();
	for (uint64_t p = 0; p < 20; p++)
		assert_true(page_ok(m.host, p));
	t = (now_ns() - t0) / 1000000;
	assert_true(t >= 40);
	/* Holes come in as zeros, and the rest is right. */
	for (uint64_t p = 20; p < NPAGES; p += 37)
		assert_true(page_ok(m.host, p));
	assert_true(page_ok(m.host, 150));
	stop_handler_done(r, pid, "0 pages prefetched");
	guest_mem_destroy(&m);
}

static void test_uffd_prefetch_eexist(void **state)
{
	struct guest_mem m;
	struct snap_mem_restore *r;
	uint8_t mine[PG];
	pid_t pid;

	if (!uffd_usable())
		skip();
	/* 1 ms a page: the last page is reached after about a second. */
	pid = uffd_start(&m, &r, "--delay-us", "1000", NULL);
	/* A page that appears behind the handler's back (written through
	 * the memfd, not the registered mapping): its copy meets EEXIST and
	 * the page keeps what was written. */
	memset(mine, 0x5a, sizeof(mine));
	assert_int_equal(pwrite(m.memfd, mine, PG, (off_t)(MEM - PG)),
			 (ssize_t)PG);
	wait_prefetched(&m);
	for (uint64_t p = 0; p < NPAGES - 1; p++)
		assert_true(page_ok(m.host, p));
	assert_int_equal(m.host[MEM - PG + 17], 0x5a);
	stop_handler_done(r, pid, "923 pages prefetched, 1 already present");
	guest_mem_destroy(&m);
}

/* Without a delay the prefetch copies whole runs at a time; a run stops
 * at the file's next hole, which stays out of guest RAM. */
static void test_uffd_prefetch_batch_skips_hole(void **state)
{
	struct guest_mem m;
	struct snap_mem_restore *r;
	pid_t pid;

	if (!uffd_usable())
		skip();
	pid = uffd_start(&m, &r, NULL, NULL, NULL);
	wait_prefetched(&m);
	stop_handler_done(r, pid, "924 pages prefetched");
	guest_mem_destroy(&m);
}

struct toucher {
	const uint8_t *g;
	atomic_int done; /* pages read */
	atomic_bool bad;
};

static void *touch_all(void *arg)
{
	struct toucher *t = arg;

	for (uint64_t p = 0; p < NPAGES; p++) {
		if (!page_ok(t->g, p))
			atomic_store(&t->bad, true);
		atomic_fetch_add(&t->done, 1);
	}
	return NULL;
}

static atomic_int fail_calls;
static char fail_msg_buf[400];
static void on_fail(void *ctx, const char *msg)
{
	snprintf(fail_msg_buf, sizeof(fail_msg_buf), "%s", msg);
	atomic_fetch_add(&fail_calls, 1);
}

/* kill -9 (or SIGSTOP) of the handler mid-restore: wisp copies the rest
 * in from the memory file and every page reads right. */
static void handler_fails(int sig, int bound_ms)
{
	struct guest_mem m;
	struct snap_mem_restore *r;
	struct snap_mem_restore_stats st;
	struct err e = { 0 };
	struct toucher t = { 0 };
	pthread_t th;
	pid_t pid;
	int before, status;

	pid = uffd_start(&m, &r, "--no-prefetch", "--delay-us", "3000");
	assert_int_equal(snap_mem_restore_set_fallback(r, mem_path, on_fail,
						       NULL, &e),
			 0);
	t.g = m.host;
	if (sig == SIGSTOP) {
		/* Stopped before the first fault, which stays unread (a
		 * handler that read a fault and sits on it is not seen,
		 * docs/uffd.md). */
		kill(pid, sig);
		usleep(50000);
	}
	pthread_create(&th, NULL, touch_all, &t);
	usleep(100000);
	before = atomic_load(&t.done);
	if (sig == SIGSTOP)
		assert_int_equal(before, 0);
	else
		assert_true(before > 5 && before < (int)NPAGES / 2);
	kill(pid, sig);
	for (int i = 0; i < bound_ms / 10 && atomic_load(&t.done) < (int)NPAGES;
	     i++)
		usleep(10000);
	assert_int_equal(atomic_load(&t.done), NPAGES);
	pthread_join(th, NULL);
	assert_false(atomic_load(&t.bad));
	snap_mem_restore_get_stats(r, &st);
	assert_true(st.handler_failed);
	assert_true(st.took_over);
	assert_true(st.pages_copied > 0);
	assert_int_equal(atomic_load(&fail_calls), 0);
	/* Guest RAM is ordinary memory again: a hole page reads as zeros. */
	assert_true(page_ok(m.host, 150));
	snap_mem_restore_stop(r);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	guest_mem_destroy(&m);
}

static void test_uffd_handler_killed(void **state)
{
	if (!uffd_usable())
		skip();
	handler_fails(SIGKILL, 2000);
}

static void test_uffd_handler_stopped(void **state)
{
	if (!uffd_usable())
		skip();
	/* SIGSTOP: alive, socket open, faults unread: the stall bound. */
	handler_fails(SIGSTOP, SNAP_UFFD_STALL_MS + 3000);
}

/* Without a memory file to fall back on, the caller is told once. */
static void test_uffd_handler_killed_no_file(void **state)
{
	struct guest_mem m;
	struct snap_mem_restore *r;
	struct err e = { 0 };
	struct toucher t = { 0 };
	pthread_t th;
	pid_t pid;
	int status;

	if (!uffd_usable())
		skip();
	atomic_store(&fail_calls, 0);
	pid = uffd_start(&m, &r, "--no-prefetch", "--delay-us", "3000");
	assert_int_equal(
		snap_mem_restore_set_fallback(r, NULL, on_fail, NULL, &e), 0);
	t.g = m.host;
	pthread_create(&th, NULL, touch_all, &t);
	usleep(50000);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	for (int i = 0; i < 200 && !atomic_load(&fail_calls); i++)
		usleep(10000);
	assert_int_equal(atomic_load(&fail_calls), 1);
	assert_non_null(strstr(fail_msg_buf, "uffd handler"));
	assert_true(atomic_load(&t.done) < (int)NPAGES);
	/* Stopping unregisters: the waiting thread goes on (with zeros). */
	snap_mem_restore_stop(r);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&fail_calls), 1);
	guest_mem_destroy(&m);
}

/* A handler bound by another uid: wisp refuses it, nothing stays
 * registered. */
static void test_uffd_peer_uid(void **state)
{
	struct guest_mem m;
	struct snap_mem_restore *r = (void *)1;
	struct err e = { 0 };
	int pfd[2];
	pid_t pid;
	char c;
	int status;

	if (geteuid() != 0 || !uffd_usable())
		skip();
	unlink(sock_path);
	chmod(dir, 0777); /* the other uid binds its socket here */
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	if (pid == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int s;

		if (setuid(65534) < 0)
			_exit(1);
		strcpy(sa.sun_path, sock_path);
		s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (bind(s, (void *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0)
			_exit(2);
		if (write(pfd[1], "r", 1) != 1)
			_exit(3);
		sleep(10);
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	assert_int_equal(guest_mem_init(&m, MEM, &e), 0);
	assert_int_equal(snap_mem_restore_start(&r, SNAP_MEM_UFFD, sock_path,
						m.memfd, m.host, MEM, false,
						&e),
			 -EPERM);
	assert_null(r);
	assert_non_null(strstr(e.msg, "uid 65534"));
	m.host[0] = 1; /* not registered any more */
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(pfd[0]);
	chmod(dir, 0755);
	/* And a socket nobody listens on. */
	assert_int_equal(snap_mem_restore_start(&r, SNAP_MEM_UFFD, sock_path,
						m.memfd, m.host, MEM, false,
						&e),
			 -ECONNREFUSED);
	guest_mem_destroy(&m);
}

/*
 * A handler written the way Firecracker's examples are: one recv into
 * 1024 bytes, serde's field names, the region sizes summing to the
 * memory file's size, the whole region copied in on the first fault.
 */
static void fc_handler(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char body[1024];
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr a;
	} cb;
	struct iovec iov = { body, sizeof(body) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cb.b,
			     .msg_controllen = sizeof(cb.b) };
	struct uffd_msg msg;
	json_t *root, *o;
	int ls, s, uffd, mfd;
	ssize_t n;
	uint64_t base, size;
	void *src;

	strcpy(sa.sun_path, sock_path);
	ls = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(ls, (void *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0)
		_exit(10);
	s = accept(ls, NULL, NULL);
	n = recvmsg(s, &mh, 0);
	if (n <= 0 || !CMSG_FIRSTHDR(&mh))
		_exit(11);
	memcpy(&uffd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
	root = json_loadb(body, (size_t)n, 0, NULL);
	if (!json_is_array(root) || json_array_size(root) != 1)
		_exit(12);
	o = json_array_get(root, 0);
	if (!json_is_integer(json_object_get(o, "base_host_virt_addr")) ||
	    !json_is_integer(json_object_get(o, "size")) ||
	    json_integer_value(json_object_get(o, "offset")) != 0 ||
	    json_integer_value(json_object_get(o, "page_size")) != 4096 ||
	    json_integer_value(json_object_get(o, "page_size_kib")) != 4096)
		_exit(13);
	base = (uint64_t)json_integer_value(
		json_object_get(o, "base_host_virt_addr"));
	size = (uint64_t)json_integer_value(json_object_get(o, "size"));
	if (size != MEM) /* Firecracker asserts memsize == file size */
		_exit(14);
	mfd = open(mem_path, O_RDONLY);
	src = mmap(NULL, size, PROT_READ, MAP_PRIVATE, mfd, 0);
	for (;;) {
		struct pollfd p = { uffd, POLLIN, 0 };

		if (poll(&p, 1, 5000) != 1)
			_exit(15);
		if (read(uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		struct uffdio_copy c = { base, (uintptr_t)src, size, 0, 0 };

		ioctl(uffd, UFFDIO_COPY, &c);
		/* fault_all: everything at once, then wait for the end */
		char x;
		if (read(s, &x, 1) <= 0)
			_exit(0);
	}
}

static void test_uffd_firecracker_style_handler(void **state)
{
	struct guest_mem m;
	struct snap_mem_restore *r;
	struct stat st;
	pid_t pid;
	int status;

	if (!uffd_usable())
		skip();
	unlink(sock_path);
	pid = fork();
	if (pid == 0)
		fc_handler();
	for (int i = 0; i < 500 && stat(sock_path, &st) < 0; i++)
		usleep(10000);
	uffd_restore(&m, &r);
	for (uint64_t p = 0; p < NPAGES; p++)
		assert_true(page_ok(m.host, p));
	snap_mem_restore_stop(r);
	status = reap(pid, 5000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_roundtrip),
		cmocka_unit_test(test_map_parse_hostile),
		cmocka_unit_test(test_file_private),
		cmocka_unit_test(test_file_shared),
		cmocka_unit_test(test_file_wrong_size),
		cmocka_unit_test(test_uffd_refused_with_servers),
		cmocka_unit_test(test_uffd_serves),
		cmocka_unit_test(test_uffd_prefetch_eexist),
		cmocka_unit_test(test_uffd_prefetch_batch_skips_hole),
		cmocka_unit_test(test_uffd_handler_killed),
		cmocka_unit_test(test_uffd_handler_stopped),
		cmocka_unit_test(test_uffd_handler_killed_no_file),
		cmocka_unit_test(test_uffd_peer_uid),
		cmocka_unit_test(test_uffd_firecracker_style_handler),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
