// SPDX-License-Identifier: MIT
/*
 * libwisp-ioreq against a hostile VMM: a fake VMM in this process speaks
 * handcrafted WELCOME / MEM_MAP messages and scribbles on the shared
 * page while the server library runs in a forked child. Every case must
 * end with the child returning an error with a message (or serving
 * correctly); a signal or a hang of the child fails the test.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ioreq/msg.h"
#include "ioreq/server.h"

#define WIN 0xd0000000ull
#define CHILD_BOUND_MS 12000 /* the library's own bounds are 5 s */

static char sock_path[108];

/* What the fake VMM announces and what it really hands over. */
struct scenario {
	uint32_t nr_vcpus;
	int nr_resp_fds; /* resp eventfds actually passed */
	uint64_t shared_size, shm_file_size;
	uint64_t ring_offset;
	uint32_t ring_entries;
	uint32_t features;
	int shm_kind; /* 0 memfd, 1 pipe, 2 eventfd */
	bool unsealed; /* memfds without the seals wisp puts on them */
	bool wake_is_pipe; /* a pipe where the wake eventfd belongs */
	uint64_t ram_size, ram_file_size;
	uint32_t nr_regions;
	/* After the handshake, with the shared page mapped at v->shm. */
	void (*poke)(struct scenario *sc);
	/* Filled in for poke. */
	int sock, wake, resp[IOREQ_MAX_VCPUS];
	uint8_t *shm;
	uint64_t shm_map;
};

struct outcome {
	int accept_ret, serve_ret;
	char msg[640];
};

struct result {
	bool signaled, hung, exited;
	int sig;
	struct outcome o;
};

static int ring_writes;

static void r_write(void *o, int cpu, uint64_t off, const uint8_t *d,
		    uint32_t len)
{
	ring_writes++;
}

static void r_read(void *o, int cpu, uint64_t off, uint8_t *d, uint32_t len)
{
	memset(d, 0x5a, len);
}

static const struct bus_ops ops = { r_read, r_write };

/* The server: accept, then serve; reports through the pipe. */
static void child(int lfd, int out)
{
	struct wisp_ioreq_server *s = NULL;
	struct outcome o = { 0 };
	struct err e = { 0 };

	/* cmocka's handlers would longjmp into the parent's test runner
	 * inside this child: a fault must kill the child instead. */
	signal(SIGSEGV, SIG_DFL);
	signal(SIGBUS, SIG_DFL);
	signal(SIGILL, SIG_DFL);
	signal(SIGFPE, SIG_DFL);
	o.accept_ret =
		wisp_ioreq_accept(lfd, "unit",
				  IOREQ_F_BUFFERED_RING | IOREQ_F_VIRTIO_MMIO |
					  IOREQ_F_SHARED_ISR,
				  &s, &e);
	if (!o.accept_ret) {
		/* A range so ring entries and slots reach a callback; no
		 * MAP_RANGE message (the fake VMM does not ACK). */
		s->ranges[0] = (struct wisp_ioreq_range){ WIN, 0x1000,
							  IOREQ_RANGE_POSTED,
							  &ops, NULL };
		s->nr_ranges = 1;
		o.serve_ret = wisp_ioreq_serve(s, &e);
		if (!o.serve_ret)
			e.msg[0] = 0;
		wisp_ioreq_close(s);
	}
	snprintf(o.msg, sizeof(o.msg), "%s (ring writes %d)", e.msg,
		 ring_writes);
	if (write(out, &o, sizeof(o)) < 0)
		_exit(99);
	_exit(0);
}

/* What wisp does to every memfd it hands a server (docs/ioreq.md). */
static void seal_size(const struct scenario *sc, int fd)
{
	if (!sc->unsealed)
		assert_int_equal(
			fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
}

static int make_shm(struct scenario *sc)
{
	int fd, p[2];

	if (sc->shm_kind == 1) {
		if (pipe(p) < 0)
			return -1;
		close(p[1]);
		return p[0];
	}
	if (sc->shm_kind == 2)
		return eventfd(0, EFD_CLOEXEC);
	fd = memfd_create("fake-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)sc->shm_file_size), 0);
	seal_size(sc, fd);
	return fd;
}

/* The fake VMM's half of the handshake; then poke; then BYE. */
static void fake_vmm(struct scenario *sc)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ioreq_welcome w = { 0 };
	struct ioreq_mem_map m = { 0 };
	struct ioreq_hello h;
	int fds[IOREQ_MAX_FDS], nfds, n, ram, shm, s;

	strcpy(sa.sun_path, sock_path);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = ioreq_recv(s, &h, sizeof(h), fds, IOREQ_MAX_FDS, &nfds, 5000);
	assert_int_equal(n, sizeof(h));
	ioreq_close_fds(fds, nfds);

	shm = make_shm(sc);
	ram = memfd_create("fake-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(ram >= 0);
	assert_int_equal(ftruncate(ram, (off_t)sc->ram_file_size), 0);
	seal_size(sc, ram);
	w.hdr = (struct ioreq_hdr){ IOREQ_MSG_WELCOME, sizeof(w), 0, 0 };
	w.magic = IOREQ_MAGIC;
	w.version = IOREQ_VERSION;
	w.features = sc->features;
	w.nr_vcpus = sc->nr_vcpus;
	w.shared_size = sc->shared_size;
	w.ring_offset = sc->ring_offset;
	w.ring_entries = sc->ring_entries;
	w.gsi = 5;
	w.window_base = WIN;
	w.window_size = 0x1000;
	fds[0] = shm;
	fds[1] = eventfd(0, EFD_CLOEXEC);
	sc->wake = fds[2] = eventfd(0, EFD_CLOEXEC);
	if (sc->wake_is_pipe) {
		int p[2];

		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		close(sc->wake);
		sc->wake = fds[2] = p[0];
		close(p[1]);
	}
	for (int i = 0; i < sc->nr_resp_fds; i++)
		sc->resp[i] = fds[3 + i] = eventfd(0, EFD_CLOEXEC);
	ioreq_send(s, &w, sizeof(w), fds, 3 + sc->nr_resp_fds);
	close(fds[1]);

	m.hdr = (struct ioreq_hdr){ IOREQ_MSG_MEM_MAP, sizeof(m), 0, 0 };
	m.generation = 1;
	m.nr_regions = sc->nr_regions;
	m.regions[0] = (struct ioreq_mem_region){ 0, sc->ram_size, 0 };
	ioreq_send(s, &m, sizeof(m), &ram, 1);
	close(ram);

	sc->sock = s;
	sc->shm = NULL;
	if (sc->shm_kind == 0 && sc->shm_file_size) {
		sc->shm_map = sc->shm_file_size;
		sc->shm = mmap(NULL, sc->shm_map, PROT_READ | PROT_WRITE,
			       MAP_SHARED, shm, 0);
		assert_true(sc->shm != MAP_FAILED);
	}
	close(shm);
	/* Give the server time to get into wisp_ioreq_serve(). */
	usleep(100000);
	if (sc->poke)
		sc->poke(sc);
	usleep(100000);
	{
		struct ioreq_hdr bye = { IOREQ_MSG_BYE, sizeof(bye), 0, 0 };

		ioreq_send(s, &bye, sizeof(bye), NULL, 0);
	}
}

static struct result run_scenario(struct scenario *sc)
{
	struct result r = { 0 };
	struct pollfd p;
	struct err e;
	int pp[2], lfd, st, n;
	pid_t pid;

	lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(lfd >= 0);
	fflush(NULL); /* no buffered output duplicated into the child */
	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pp[0]);
		child(lfd, pp[1]);
	}
	close(pp[1]);
	close(lfd);
	fake_vmm(sc);
	p = (struct pollfd){ pp[0], POLLIN, 0 };
	if (poll(&p, 1, CHILD_BOUND_MS) <= 0) {
		r.hung = true;
		kill(pid, SIGKILL);
	} else {
		n = (int)read(pp[0], &r.o, sizeof(r.o));
		(void)n;
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st) && !r.hung) {
		r.signaled = true;
		r.sig = WTERMSIG(st);
	}
	r.exited = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	close(pp[0]);
	for (int i = 0; i < sc->nr_resp_fds; i++)
		close(sc->resp[i]);
	close(sc->wake);
	close(sc->sock);
	if (sc->shm)
		munmap(sc->shm, sc->shm_map);
	unlink(sock_path);
	print_message("    child: %s%s%s accept %d serve %d: %s\n",
		      r.signaled ? "killed by " : "",
		      r.signaled ? strsignal(r.sig) : "", r.hung ? "HUNG" : "",
		      r.o.accept_ret, r.o.serve_ret, r.o.msg);
	return r;
}

static struct scenario good(void)
{
	return (struct scenario){
		.nr_vcpus = 2,
		.nr_resp_fds = 2,
		.shared_size = 4096,
		.shm_file_size = 4096,
		.ring_offset = 2048,
		.ring_entries = 8,
		.features = IOREQ_F_BUFFERED_RING,
		.ram_size = 1 << 20,
		.ram_file_size = 1 << 20,
		.nr_regions = 1,
	};
}

/* The child must not die of a signal or hang, and must report want from
 * the handshake with a message naming the cause. */
static void expect_refused(struct scenario *sc, int want, const char *word)
{
	struct result r = run_scenario(sc);

	assert_false(r.signaled);
	assert_false(r.hung);
	assert_true(r.exited);
	assert_int_equal(r.o.accept_ret, want);
	assert_non_null(strstr(r.o.msg, word));
}

/* Handshake accepted; serving must end with want (0 after BYE). */
static void expect_served(struct scenario *sc, int want)
{
	struct result r = run_scenario(sc);

	assert_false(r.signaled);
	assert_false(r.hung);
	assert_true(r.exited);
	assert_int_equal(r.o.accept_ret, 0);
	assert_int_equal(r.o.serve_ret, want);
	if (want)
		assert_non_null(strstr(r.o.msg, "ioreq: "));
}

static void test_good_layout(void **state)
{
	struct scenario sc = good();

	expect_served(&sc, 0);
}

/* The shared InterruptStatus granted where it cannot be: it lives in
 * the ring's header and belongs to a virtio-mmio window. */
static void test_shared_isr_without_ring(void **state)
{
	struct scenario sc = good();

	sc.features = IOREQ_F_VIRTIO_MMIO | IOREQ_F_SHARED_ISR;
	sc.ring_offset = 0;
	sc.ring_entries = 0;
	expect_refused(&sc, -EPROTO, "InterruptStatus");
	sc = good();
	sc.features |= IOREQ_F_SHARED_ISR;
	expect_refused(&sc, -EPROTO, "InterruptStatus");
	sc = good();
	sc.features |= IOREQ_F_SHARED_ISR | IOREQ_F_VIRTIO_MMIO;
	expect_served(&sc, 0);
}

/* ring_offset + header + entries wraps to a small number. */
static void test_ring_offset_wraps(void **state)
{
	struct scenario sc = good();

	sc.ring_offset = (uint64_t)-128;
	expect_refused(&sc, -EPROTO, "ring");
}

static void test_ring_entries_overflow(void **state)
{
	struct scenario sc = good();

	sc.ring_entries = 1u << 31;
	sc.ring_offset = 128;
	expect_refused(&sc, -EPROTO, "ring");
}

static void test_ring_misaligned(void **state)
{
	struct scenario sc = good();

	sc.ring_offset = 2049;
	expect_refused(&sc, -EPROTO, "ring");
}

/* The memfd is smaller than the announced shared page: the first touch
 * of a slot would be a SIGBUS. */
static void test_shm_smaller_than_announced(void **state)
{
	struct scenario sc = good();

	sc.shm_file_size = 0;
	expect_refused(&sc, -EPROTO, "shared page");
}

static void test_shm_not_a_file(void **state)
{
	struct scenario sc = good();

	sc.shm_kind = 1;
	expect_refused(&sc, -EPROTO, "shared page");
	sc.shm_kind = 2;
	expect_refused(&sc, -EPROTO, "shared page");
}

/* An unsealed memfd could be shrunk under the server after its checks. */
static void test_memfd_unsealed(void **state)
{
	struct scenario sc = good();

	sc.unsealed = true;
	expect_refused(&sc, -EPROTO, "not sealed against shrinking");
}

static void test_wake_not_an_eventfd(void **state)
{
	struct scenario sc = good();

	sc.wake_is_pipe = true;
	expect_refused(&sc, -EPROTO, "not an eventfd");
}

static void test_nr_vcpus(void **state)
{
	struct scenario sc = good();

	sc.nr_vcpus = 0;
	sc.nr_resp_fds = 0;
	expect_refused(&sc, -EPROTO, "WELCOME");
	sc = good();
	sc.nr_vcpus = IOREQ_MAX_VCPUS + 1;
	sc.nr_resp_fds = 2;
	expect_refused(&sc, -EPROTO, "WELCOME");
	sc = good();
	sc.nr_resp_fds = 1; /* announces 2 */
	expect_refused(&sc, -EPROTO, "WELCOME");
	sc = good();
	sc.nr_vcpus = 32;
	sc.nr_resp_fds = 32;
	sc.shared_size = 32 * 64; /* no room for the ring at 2048 */
	sc.shm_file_size = 4096;
	expect_refused(&sc, -EPROTO, "ring");
}

static void test_ram_smaller_than_layout(void **state)
{
	struct scenario sc = good();

	sc.ram_file_size = 4096;
	expect_refused(&sc, -EPROTO, "guest memory");
	sc = good();
	sc.nr_regions = 0;
	expect_refused(&sc, -EPROTO, "MEM_MAP");
}

static struct ioreq_ring *ring_of(struct scenario *sc)
{
	return (struct ioreq_ring *)(void *)(sc->shm + sc->ring_offset);
}

static void wake(struct scenario *sc)
{
	uint64_t one = 1;

	assert_int_equal(write(sc->wake, &one, 8), 8);
}

/* head far ahead of tail: more entries than the ring holds. */
static void poke_head_far(struct scenario *sc)
{
	__atomic_store_n(&ring_of(sc)->head, 1000, __ATOMIC_RELEASE);
	wake(sc);
}

static void test_ring_head_beyond(void **state)
{
	struct scenario sc = good();

	sc.poke = poke_head_far;
	expect_served(&sc, -EPROTO);
}

/* The VMM rewrites tail (the server's counter) to garbage and publishes
 * one entry relative to the server's real position. */
static void poke_tail(struct scenario *sc)
{
	struct ioreq_ring *r = ring_of(sc);

	r->entries[0] = (struct ioreq_ring_entry){ WIN, 1, 4, 0, { 0 }, 0 };
	__atomic_store_n(&r->tail, 0x7ffffff0u, __ATOMIC_RELEASE);
	__atomic_store_n(&r->head, 1, __ATOMIC_RELEASE);
	wake(sc);
	usleep(50000);
	/* Garbage entry sizes and addresses are ignored, not indexed. */
	r->entries[1] = (struct ioreq_ring_entry){ ~0ull, 1, 3, 9, { 0 }, 0 };
	__atomic_store_n(&r->head, 2, __ATOMIC_RELEASE);
	wake(sc);
}

static void test_ring_tail_rewritten(void **state)
{
	struct scenario sc = good();
	struct result r;

	sc.poke = poke_tail;
	r = run_scenario(&sc);
	assert_false(r.signaled);
	assert_false(r.hung);
	assert_int_equal(r.o.accept_ret, 0);
	assert_int_equal(r.o.serve_ret, 0);
	assert_non_null(strstr(r.o.msg, "ring writes 1)"));
}

/* Slot fields of any value: answered with all-ones, never a crash. */
static void poke_bad_slot(struct scenario *sc)
{
	struct ioreq_slot *sl = (struct ioreq_slot *)(void *)sc->shm;

	sl[1].addr = ~0ull - 2;
	sl[1].size = 0x80000000u;
	sl[1].dir = 7;
	sl[1].space = 9;
	__atomic_store_n(&sl[1].state, IOREQ_STATE_READY, __ATOMIC_RELEASE);
	__atomic_store_n(&sl[0].state, 0x77, __ATOMIC_RELEASE);
	wake(sc);
	usleep(50000);
	assert_int_equal(__atomic_load_n(&sl[1].state, __ATOMIC_ACQUIRE),
			 IOREQ_STATE_IORESP_READY);
	assert_int_equal(sl[1].data, ~0ull);
}

static void test_bad_slot_fields(void **state)
{
	struct scenario sc = good();

	sc.poke = poke_bad_slot;
	expect_served(&sc, 0);
}

/* The VMM fills slot 0's response eventfd to its maximum and makes it
 * blocking: the server's answer must not block forever. */
static void poke_resp_full(struct scenario *sc)
{
	struct ioreq_slot *sl = (struct ioreq_slot *)(void *)sc->shm;
	uint64_t big = 0xfffffffffffffffeull;

	assert_int_equal(write(sc->resp[0], &big, 8), 8);
	fcntl(sc->resp[0], F_SETFL, 0);
	sl[0].addr = WIN;
	sl[0].size = 4;
	sl[0].dir = IOREQ_DIR_READ;
	__atomic_store_n(&sl[0].state, IOREQ_STATE_READY, __ATOMIC_RELEASE);
	wake(sc);
}

static void test_resp_eventfd_full(void **state)
{
	struct scenario sc = good();

	sc.poke = poke_resp_full;
	expect_served(&sc, -ETIMEDOUT);
}

/* Control messages of the wrong type or length end serving with
 * -EPROTO. */
static int ctrl_kind;

static void poke_ctrl(struct scenario *sc)
{
	uint8_t buf[64] = { 0 };
	struct ioreq_hdr *h = (struct ioreq_hdr *)buf;
	size_t len = sizeof(*h);

	h->type = ctrl_kind == 0 ? 99 :
		  ctrl_kind == 1 ? IOREQ_MSG_MEM_INVALIDATE :
		  ctrl_kind == 2 ? IOREQ_MSG_ACK :
				   IOREQ_MSG_BYE;
	if (ctrl_kind == 3)
		len = 40; /* BYE with a payload */
	h->len = (uint32_t)len;
	ioreq_send(sc->sock, buf, len, NULL, 0);
}

static void test_bad_control(void **state)
{
	for (ctrl_kind = 0; ctrl_kind < 4; ctrl_kind++) {
		struct scenario sc = good();

		sc.poke = poke_ctrl;
		expect_served(&sc, -EPROTO);
	}
}

static int setup(void **state)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/wisp-unit-srv-%d.sock",
		 (int)getpid());
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_layout),
		cmocka_unit_test(test_shared_isr_without_ring),
		cmocka_unit_test(test_ring_offset_wraps),
		cmocka_unit_test(test_ring_entries_overflow),
		cmocka_unit_test(test_ring_misaligned),
		cmocka_unit_test(test_shm_smaller_than_announced),
		cmocka_unit_test(test_shm_not_a_file),
		cmocka_unit_test(test_wake_not_an_eventfd),
		cmocka_unit_test(test_memfd_unsealed),
		cmocka_unit_test(test_nr_vcpus),
		cmocka_unit_test(test_ram_smaller_than_layout),
		cmocka_unit_test(test_ring_head_beyond),
		cmocka_unit_test(test_ring_tail_rewritten),
		cmocka_unit_test(test_bad_slot_fields),
		cmocka_unit_test(test_resp_eventfd_full),
		cmocka_unit_test(test_bad_control),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
