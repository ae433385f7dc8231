// SPDX-License-Identifier: MIT
/* The VMM side of IOREQ against servers that attack it: each case is a
 * server doing what a compromised device model could do (resize shared
 * memory, clear O_NONBLOCK on shared eventfds, flood the handshake, never
 * read, run as another user, make a guest's huge queue expensive to fail)
 * and asserts that the client survives within a stated time bound. A
 * case that would hang runs in a thread and is given up on by deadline,
 * so the test fails instead of hanging. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ioreq/client.h"
#include "ioreq/msg.h"
#include "ioreq/server.h"
#include "util/time.h"

#define WIN 0xd0000000ull
#define EFD_FULL 0xfffffffffffffffeull

static char sock_path[108];
static struct guest_mem gmem;

static int setup(void **state)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/wisp-hostile-%d.sock",
		 (int)getpid());
	assert_int_equal(guest_mem_init(&gmem, 8 << 20, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	guest_mem_destroy(&gmem);
	unlink(sock_path);
	return 0;
}

static struct ioreq_client_config client_cfg(int irq)
{
	struct ioreq_client_config c = { 0 };

	c.name = "hostile";
	c.socket_path = sock_path;
	c.nr_vcpus = 2;
	c.mem = &gmem;
	c.window_base = WIN;
	c.window_size = 0x1000;
	c.gsi = 5;
	c.irq_efd = irq;
	c.timeout_ms = 500;
	c.connect_timeout_ms = 500;
	return c;
}

static uint64_t ms_since(uint64_t t0)
{
	return (now_ns() - t0) / 1000000;
}

/* Runs fn(arg) in a thread and waits at most limit_ms for it. Returns
 * true if it finished (joined); false if it is still stuck (left behind:
 * the test has failed anyway). */
static bool run_bounded(void *(*fn)(void *), void *arg, int limit_ms)
{
	struct timespec ts;
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, fn, arg), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += limit_ms / 1000;
	ts.tv_nsec += (long)(limit_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	if (pthread_timedjoin_np(th, NULL, &ts) == 0)
		return true;
	pthread_detach(th);
	return false;
}

/* --- a server on the real library, with a hook between accept and
 * serving where it misbehaves --- */

struct lib_server {
	int lfd;
	void (*hook)(struct wisp_ioreq_server *s, struct lib_server *ls);
	bool virtio; /* announce a virtio-mmio window */
	bool serve; /* run wisp_ioreq_serve after the hook */
	struct wisp_ioreq_server *s;
	int truncate_ret[8];
	int nr_truncated;
	volatile bool release; /* the test is done with it */
};

static uint32_t queue_num_max = 256; /* what the device announces */

static uint32_t virtio_reg(uint64_t off)
{
	switch (off) {
	case 0x000:
		return 0x74726976;
	case 0x004:
		return 2;
	case 0x008:
		return 2; /* a block device */
	case 0x00c:
		return 0x50534957;
	case 0x034:
		return queue_num_max;
	default:
		return 0;
	}
}

static void ls_read(void *o, int cpu, uint64_t off, uint8_t *d, uint32_t len)
{
	uint64_t v = virtio_reg(off);

	memcpy(d, &v, len);
}

static void ls_write(void *o, int cpu, uint64_t off, const uint8_t *d,
		     uint32_t len)
{
}

static const struct bus_ops ls_ops = { ls_read, ls_write };

static void *lib_server_thread(void *arg)
{
	struct lib_server *ls = arg;
	struct wisp_ioreq_server *s;
	struct err e;

	if (wisp_ioreq_accept(ls->lfd, "hostile",
			      ls->virtio ?
				      IOREQ_F_ALL :
				      IOREQ_F_BUFFERED_RING | IOREQ_F_DOORBELLS,
			      &s, &e))
		return NULL;
	ls->s = s;
	if (wisp_ioreq_map_range(s, WIN, 0x1000, IOREQ_RANGE_SYNC, &ls_ops, s,
				 &e) ||
	    wisp_ioreq_ready(s, &e)) {
		wisp_ioreq_close(s);
		return NULL;
	}
	if (ls->hook)
		ls->hook(s, ls);
	if (ls->serve)
		wisp_ioreq_serve(s, NULL);
	else
		while (!ls->release)
			usleep(10000);
	return NULL;
}

static void lib_server_start(struct lib_server *ls, pthread_t *th)
{
	struct err e;

	ls->lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(ls->lfd >= 0);
	assert_int_equal(pthread_create(th, NULL, lib_server_thread, ls), 0);
}

static void lib_server_stop(struct lib_server *ls, pthread_t th)
{
	ls->release = true;
	pthread_join(th, NULL);
	if (ls->s)
		wisp_ioreq_close(ls->s);
	close(ls->lfd);
}

static uint32_t win_read(struct ioreq_client *c, int cpu, uint64_t off)
{
	uint32_t v = 0;

	ioreq_window_ops.read(c, cpu, off, (uint8_t *)&v, 4);
	return v;
}

static void win_write(struct ioreq_client *c, int cpu, uint64_t off, uint32_t v)
{
	ioreq_window_ops.write(c, cpu, off, (const uint8_t *)&v, 4);
}

/* --- D1: a server resizes the memfds it was given --- */

static void truncate_all(struct wisp_ioreq_server *s, struct lib_server *ls)
{
	int fds[] = { s->shm_fd, s->mem.memfd };

	for (int i = 0; i < 2; i++)
		ls->truncate_ret[ls->nr_truncated++] =
			ftruncate(fds[i], 1ll << 40) < 0 ? -errno : 0;
	for (int i = 0; i < 2; i++)
		ls->truncate_ret[ls->nr_truncated++] =
			ftruncate(fds[i], 0) < 0 ? -errno : 0;
}

static void test_server_truncates_memfds(void **state)
{
	struct lib_server ls = { .hook = truncate_all, .serve = true };
	struct ioreq_client_config cfg;
	struct ioreq_client *c;
	uint64_t v = 0x1122334455667788ull, back = 0;
	struct err e;
	pthread_t th;
	int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	lib_server_start(&ls, &th);
	cfg = client_cfg(irq);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	/* The hook ran before the server serves: wait for its answer. */
	assert_int_equal(win_read(c, 0, 0x000), 0x74726976);
	/* The VMM's own views of both still work. */
	assert_int_equal(win_read(c, 1, 0x008), 2);
	assert_int_equal(guest_mem_write(&gmem, 0x7ff000, &v, 8), 0);
	assert_int_equal(guest_mem_read(&gmem, 0x7ff000, &back, 8), 0);
	assert_true(back == v);
	assert_int_equal(ls.nr_truncated, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ls.truncate_ret[i], -EPERM);
	ioreq_client_destroy(c);
	lib_server_stop(&ls, th);
	close(irq);
}

/* --- D3: a server makes the shared eventfds blocking and full --- */

static void block_and_fill(struct wisp_ioreq_server *s, struct lib_server *ls)
{
	uint64_t full = EFD_FULL, v;
	int fds[2 + IOREQ_MAX_VCPUS], n = 0;

	fds[n++] = s->wake_efd;
	fds[n++] = s->irq_efd;
	for (int i = 0; i < s->nr_vcpus; i++)
		fds[n++] = s->resp_efd[i];
	for (int i = 0; i < n; i++) {
		int fl = fcntl(fds[i], F_GETFL);

		/* Empty first (nothing for the VMM to drain), then full
		 * where the VMM writes (its signal would block). */
		while (read(fds[i], &v, sizeof(v)) == sizeof(v))
			;
		fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK);
	}
	(void)!write(s->wake_efd, &full, sizeof(full));
	(void)!write(s->irq_efd, &full, sizeof(full));
}

struct access {
	struct ioreq_client *c;
	uint32_t v;
	uint64_t ms;
};

static void *read_thread(void *arg)
{
	struct access *a = arg;
	uint64_t t0 = now_ns();

	a->v = win_read(a->c, 0, 0x008);
	a->ms = ms_since(t0);
	return NULL;
}

static void *detach_thread(void *arg)
{
	struct access *a = arg;
	uint64_t t0 = now_ns();

	ioreq_client_handle_event(a->c);
	a->ms = ms_since(t0);
	return NULL;
}

static void test_server_blocks_eventfds(void **state)
{
	struct lib_server ls = { .hook = block_and_fill, .virtio = true };
	struct ioreq_client_config cfg;
	struct access a = { 0 };
	struct err e;
	pthread_t th;
	int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	lib_server_start(&ls, &th);
	cfg = client_cfg(irq);
	assert_int_equal(ioreq_client_create(&cfg, &a.c, &e), 0);
	while (!ls.s)
		usleep(1000);
	usleep(50000); /* the hook has run */
	/* The server never answers: the read gives up at the 500 ms bound,
	 * although the wake eventfd is full and blocking. */
	assert_true(run_bounded(read_thread, &a, 3000));
	print_message("read gave up after %llu ms\n", (unsigned long long)a.ms);
	assert_int_equal(a.v, 0xffffffff);
	assert_true(a.ms >= 400 && a.ms < 1200);
	/* Detaching signals the (full, blocking) interrupt eventfd. */
	assert_true(run_bounded(detach_thread, &a, 3000));
	print_message("detach took %llu ms\n", (unsigned long long)a.ms);
	assert_true(a.ms < 500);
	assert_false(ioreq_client_attached(a.c));
	ioreq_client_destroy(a.c);
	lib_server_stop(&ls, th);
	close(irq);
}

/* --- D4: the handshake deadline and the BYE --- */

struct raw {
	int lfd, s;
	int sent, acks_read;
	int mode;
	volatile bool release;
};

enum { RAW_FLOOD, RAW_READY_DEAF };

static int raw_hello(struct raw *r, uint32_t features)
{
	struct ioreq_hello h = { { IOREQ_MSG_HELLO, sizeof(h), 0, 0 },
				 IOREQ_MAGIC,
				 IOREQ_VERSION,
				 features,
				 0,
				 "raw" };
	uint8_t buf[IOREQ_MAX_MSG];
	int fds[IOREQ_MAX_FDS], nfds;

	r->s = accept(r->lfd, NULL, NULL);
	if (r->s < 0)
		return -1;
	ioreq_send(r->s, &h, sizeof(h), NULL, 0);
	for (int i = 0; i < 2; i++) { /* WELCOME, MEM_MAP */
		if (ioreq_recv(r->s, buf, sizeof(buf), fds, IOREQ_MAX_FDS,
			       &nfds, 2000) <= 0)
			return -1;
		ioreq_close_fds(fds, nfds);
	}
	return 0;
}

static void *raw_thread(void *arg)
{
	struct raw *r = arg;
	struct ioreq_map_range m = { { IOREQ_MSG_MAP_RANGE, sizeof(m), 0, 0 },
				     IOREQ_SPACE_MMIO,
				     IOREQ_RANGE_SYNC,
				     WIN,
				     0x10 };
	uint64_t t0;

	if (raw_hello(r, IOREQ_F_BUFFERED_RING))
		return NULL;
	if (r->mode == RAW_FLOOD) {
		/* MAP_RANGE after MAP_RANGE, never reading an ACK, for
		 * far longer than the VMM's 500 ms handshake bound. */
		t0 = now_ns();
		while (ms_since(t0) < 3000) {
			m.hdr.seq++;
			if (send(r->s, &m, sizeof(m),
				 MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(m))
				r->sent++;
			else if (errno == EAGAIN)
				usleep(100);
			else
				break;
		}
	} else {
		struct ioreq_hdr rd = { IOREQ_MSG_READY, sizeof(rd), 0, 0 };

		ioreq_send(r->s, &rd, sizeof(rd), NULL, 0);
		while (!r->release) /* and never reads again */
			usleep(10000);
	}
	close(r->s);
	return NULL;
}

static void test_handshake_flood_deadline(void **state)
{
	struct raw r = { .mode = RAW_FLOOD };
	struct ioreq_client_config cfg;
	struct ioreq_client *c = NULL;
	struct err e;
	pthread_t th;
	int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), ret;
	uint64_t t0, ms;

	r.lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(r.lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, raw_thread, &r), 0);
	cfg = client_cfg(irq);
	t0 = now_ns();
	ret = ioreq_client_create(&cfg, &c, &e);
	ms = ms_since(t0);
	print_message("create returned %d after %llu ms: %s\n", ret,
		      (unsigned long long)ms, e.msg);
	assert_int_equal(ret, -ETIMEDOUT);
	assert_null(c);
	/* The handshake is bounded by 500 ms (the connect was immediate). */
	assert_true(ms < 1000);
	pthread_join(th, NULL);
	close(r.lfd);
	close(irq);
}

struct destroy_arg {
	struct ioreq_client *c;
	uint64_t ms;
};

static void *destroy_thread(void *arg)
{
	struct destroy_arg *d = arg;
	uint64_t t0 = now_ns();

	ioreq_client_destroy(d->c);
	d->ms = ms_since(t0);
	return NULL;
}

static void test_bye_to_deaf_server(void **state)
{
	struct raw r = { .mode = RAW_READY_DEAF };
	struct ioreq_client_config cfg;
	struct destroy_arg d = { 0 };
	struct ioreq_hdr junk = { IOREQ_MSG_MEM_UNMAPPED, sizeof(junk), 0, 0 };
	struct err e;
	pthread_t th;
	int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), n = 0;

	r.lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(r.lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, raw_thread, &r), 0);
	cfg = client_cfg(irq);
	assert_int_equal(ioreq_client_create(&cfg, &d.c, &e), 0);
	/* Fill the server's receive queue, as a server that stopped
	 * reading would find it: the BYE has no room. */
	while (send(ioreq_client_fd(d.c), &junk, sizeof(junk),
		    MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(junk))
		n++;
	assert_true(n > 0);
	assert_true(run_bounded(destroy_thread, &d, 3000));
	print_message("destroy took %llu ms\n", (unsigned long long)d.ms);
	assert_true(d.ms < 500);
	r.release = true;
	pthread_join(th, NULL);
	close(r.lfd);
	close(irq);
}

/* A re-attach runs on the main loop: a slow server's handshake must not
 * hold the lock every window access takes. */
struct slow {
	int lfd;
	volatile bool release;
};

static void *slow_thread(void *arg)
{
	struct slow *sl = arg;
	struct raw r = { .lfd = sl->lfd };
	struct ioreq_hdr rd = { IOREQ_MSG_READY, sizeof(rd), 0, 0 };

	if (raw_hello(&r, IOREQ_F_BUFFERED_RING))
		return NULL;
	usleep(400000);
	ioreq_send(r.s, &rd, sizeof(rd), NULL, 0);
	while (!sl->release)
		usleep(10000);
	close(r.s);
	return NULL;
}

static void *try_attach_thread(void *arg)
{
	ioreq_client_try_attach(arg);
	return NULL;
}

static void test_reattach_does_not_block_vcpus(void **state)
{
	struct lib_server ls = { .virtio = true, .serve = true };
	struct ioreq_client_config cfg;
	struct ioreq_client *c;
	struct slow sl = { 0 };
	struct err e;
	pthread_t th, ta;
	int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t t0, worst = 0;

	lib_server_start(&ls, &th);
	cfg = client_cfg(irq);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	assert_int_equal(win_read(c, 0, 0x008), 2);
	/* The server goes away; the client sees it and detaches. */
	shutdown(ls.s->sock, SHUT_RDWR);
	pthread_join(th, NULL);
	wisp_ioreq_close(ls.s);
	close(ls.lfd);
	ioreq_client_handle_event(c);
	assert_false(ioreq_client_attached(c));

	sl.lfd = wisp_ioreq_listen(sock_path, &e);
	assert_true(sl.lfd >= 0);
	assert_int_equal(pthread_create(&th, NULL, slow_thread, &sl), 0);
	assert_int_equal(pthread_create(&ta, NULL, try_attach_thread, c), 0);
	usleep(50000); /* the handshake is under way */
	for (int i = 0; i < 5; i++) {
		uint64_t dt;

		uint32_t id;

		t0 = now_ns();
		/* The stand-in answers while the new server handshakes. */
		id = win_read(c, 0, 0x008);
		dt = ms_since(t0);
		assert_true(dt < 150);
		assert_int_equal(id, 2);
		worst = dt > worst ? dt : worst;
		usleep(20000);
	}
	print_message("worst stand-in read during re-attach: %llu ms\n",
		      (unsigned long long)worst);
	assert_true(worst < 150);
	pthread_join(ta, NULL);
	assert_true(ioreq_client_attached(c));
	sl.release = true;
	ioreq_client_destroy(c);
	pthread_join(th, NULL);
	close(sl.lfd);
	close(irq);
}

/* --- D6: a guest's huge queue, failed on a server disconnect --- */

#define Q_DESC 0x100000ull /* shared by the queues */
#define Q_AVAIL(q) (0x180000ull + (q)*0x20000ull)
#define Q_USED(q) (0x280000ull + (q)*0x41000ull)
#define Q_BUF 0x600000ull
#define Q_SIZE 32768

static void build_long_chains(void)
{
	uint8_t *m = gmem.host;

	/* Descriptor i -> i + 1 within blocks of VIRTQ_MAX_SEGS: every
	 * head starts a valid chain of up to that many writable buffers,
	 * all of them in flight. */
	for (uint32_t i = 0; i < Q_SIZE; i++) {
		uint64_t addr = Q_BUF + (i % 4096);
		uint32_t len = 1;
		uint16_t flags = 2 | ((i + 1) % 1024 ? 1 : 0);
		uint16_t next = (uint16_t)(i + 1);
		uint8_t *d = m + Q_DESC + 16 * i;

		memcpy(d, &addr, 8);
		memcpy(d + 8, &len, 4);
		memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
	}
	for (uint64_t q = 0; q < 8; q++) {
		for (uint32_t i = 0; i < Q_SIZE; i++) {
			uint16_t head = (uint16_t)i;

			memcpy(m + Q_AVAIL(q) + 4 + 2 * i, &head, 2);
		}
		memset(m + Q_AVAIL(q), 0, 2);
		memcpy(m + Q_AVAIL(q) + 2, &(uint16_t){ (uint16_t)Q_SIZE }, 2);
		memset(m + Q_USED(q), 0, 4);
	}
}

/* Sets up queues 0..nq-1 of size num through the window (as a driver
 * would, reading QueueNumMax first), with the rings of build_*(). */
static void setup_queues(struct ioreq_client *c, int nq, uint32_t num)
{
	assert_int_equal(win_read(c, 0, 0x008), 2);
	for (uint32_t q = 0; q < (uint32_t)nq; q++) {
		win_write(c, 0, 0x030, q);
		assert_int_equal(win_read(c, 0, 0x034), queue_num_max);
		win_write(c, 0, 0x038, num);
		win_write(c, 0, 0x080, (uint32_t)Q_DESC);
		win_write(c, 0, 0x090, (uint32_t)Q_AVAIL(q));
		win_write(c, 0, 0x0a0, (uint32_t)Q_USED(q));
		win_write(c, 0, 0x044, 1);
	}
}

static uint16_t used_idx(int q)
{
	uint16_t v;

	memcpy(&v, gmem.host + Q_USED(q) + 2, 2);
	return v;
}

/* The server goes away; returns how long the client took to handle it
 * (the test fails if it takes longer than 20 s). */
static uint64_t disconnect(struct lib_server *ls, pthread_t th,
			   struct ioreq_client *c)
{
	struct access a = { .c = c };

	shutdown(ls->s->sock, SHUT_RDWR);
	pthread_join(th, NULL);
	assert_true(run_bounded(detach_thread, &a, 20000));
	print_message("disconnect handled in %llu ms\n",
		      (unsigned long long)a.ms);
	assert_false(ioreq_client_attached(c));
	wisp_ioreq_close(ls->s);
	close(ls->lfd);
	return a.ms;
}

static void test_disconnect_with_huge_queue(void **state)
{
	struct lib_server ls = { .virtio = true, .serve = true };
	struct ioreq_client_config cfg;
	struct ioreq_client *c;
	struct err e;
	pthread_t th;
	int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	queue_num_max = 256;
	lib_server_start(&ls, &th);
	cfg = client_cfg(irq);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	build_long_chains();
	/* A driver that asks for 32768 entries where the device offers
	 * 256, on every queue the client shadows. */
	setup_queues(c, 8, Q_SIZE);
	assert_true(disconnect(&ls, th, c) < 500);
	/* Nothing was completed on a queue the device never accepted. */
	for (int q = 0; q < 8; q++)
		assert_int_equal(used_idx(q), 0);
	/* The stand-in still answers for the device. */
	assert_int_equal(win_read(c, 0, 0x070) & 0x40, 0x40);
	ioreq_client_destroy(c);
	close(irq);
}

/* A device that does offer 32768 entries: the walk stops at its budget. */
static void test_disconnect_budget(void **state)
{
	struct lib_server ls = { .virtio = true, .serve = true };
	struct ioreq_client_config cfg;
	struct ioreq_client *c;
	struct err e;
	pthread_t th;
	int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), failed = 0;

	queue_num_max = Q_SIZE;
	lib_server_start(&ls, &th);
	cfg = client_cfg(irq);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	build_long_chains();
	setup_queues(c, 8, Q_SIZE);
	assert_true(disconnect(&ls, th, c) < 500);
	for (int q = 0; q < 8; q++)
		failed += used_idx(q);
	print_message("%d requests failed\n", failed);
	assert_true(failed > 0 && failed < 8 * Q_SIZE);
	ioreq_client_destroy(c);
	queue_num_max = 256;
	close(irq);
}

/* The ordinary case: a blk server dies with three requests in flight;
 * each completes with VIRTIO_BLK_S_IOERR in its status byte. */
static void test_disconnect_fails_inflight(void **state)
{
	struct lib_server ls = { .virtio = true, .serve = true };
	struct ioreq_client_config cfg;
	struct ioreq_client *c;
	struct err e;
	pthread_t th;
	uint8_t *m = gmem.host;
	int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	queue_num_max = 256;
	lib_server_start(&ls, &th);
	cfg = client_cfg(irq);
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), 0);
	memset(m + Q_DESC, 0, 16 * 16);
	for (int r = 0; r < 5; r++) {
		/* header (device-readable) -> status (device-writable) */
		uint64_t hdr = Q_BUF + 64 * r, st = Q_BUF + 64 * r + 16;
		uint32_t hl = 16, sl = 1;
		uint16_t f0 = 1, f1 = 2, next = (uint16_t)(2 * r + 1);
		uint8_t *d = m + Q_DESC + 32 * r;

		memcpy(d, &hdr, 8);
		memcpy(d + 8, &hl, 4);
		memcpy(d + 12, &f0, 2);
		memcpy(d + 14, &next, 2);
		memcpy(d + 16, &st, 8);
		memcpy(d + 24, &sl, 4);
		memcpy(d + 28, &f1, 2);
		m[st] = 0xff;
		memcpy(m + Q_AVAIL(0) + 4 + 2 * r, &(uint16_t){ 2 * r }, 2);
	}
	memset(m + Q_AVAIL(0), 0, 2);
	memcpy(m + Q_AVAIL(0) + 2, &(uint16_t){ 3 }, 2);
	memset(m + Q_USED(0), 0, 4);
	setup_queues(c, 1, 16);
	disconnect(&ls, th, c);
	assert_int_equal(used_idx(0), 3);
	for (int r = 0; r < 3; r++)
		assert_int_equal(m[Q_BUF + 64 * r + 16], 1);
	/* Used buffers and a configuration change are pending. */
	assert_int_equal(win_read(c, 0, 0x060), 3);
	/* Two requests posted after the detach: their doorbell goes to the
	 * dead server's eventfd, so only the retry path can fail them. */
	win_write(c, 0, 0x064, 3);
	memcpy(m + Q_AVAIL(0) + 2, &(uint16_t){ 5 }, 2);
	assert_int_equal(used_idx(0), 3);
	assert_int_equal(ioreq_client_fail_pending(c), 2);
	assert_int_equal(used_idx(0), 5);
	for (int r = 3; r < 5; r++)
		assert_int_equal(m[Q_BUF + 64 * r + 16], 1);
	assert_int_equal(win_read(c, 0, 0x060) & 1, 1);
	assert_int_equal(ioreq_client_fail_pending(c), 0);
	ioreq_client_destroy(c);
	close(irq);
}

/* --- D9: a socket path that does not fit sun_path --- */

static void test_long_socket_path(void **state)
{
	struct ioreq_client_config cfg = client_cfg(0);
	struct ioreq_client *c = NULL;
	struct err e = { 0 };
	char path[200];

	memset(path, 'a', sizeof(path) - 1);
	memcpy(path, "/tmp/", 5);
	path[sizeof(path) - 1] = 0;
	cfg.socket_path = path;
	assert_int_equal(ioreq_client_create(&cfg, &c, &e), -ENAMETOOLONG);
	assert_null(c);
	assert_int_equal(e.cls, ERR_CONFIG);
	print_message("%s\n", e.msg);
	assert_non_null(strstr(e.msg, "199 bytes"));
}

/* --- SO_PEERCRED: a server run by another user is refused --- */

static void peer_uid_not_expected(void)
{
	struct lib_server ls = { .serve = true };
	struct ioreq_client_config cfg;
	struct ioreq_client *c = NULL;
	struct err e = { 0 };
	pthread_t th;
	char want[64];
	int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), ret;

	lib_server_start(&ls, &th);
	cfg = client_cfg(irq);
	cfg.server_uid = geteuid() + 1;
	ret = ioreq_client_create(&cfg, &c, &e);
	print_message("%s\n", e.msg);
	assert_int_equal(ret, -EACCES);
	snprintf(want, sizeof(want), "uid %u (pid %d)", (unsigned)geteuid(),
		 (int)getpid());
	assert_non_null(strstr(e.msg, want));
	/* The server thread waits in accept's handshake: let it fail. */
	pthread_join(th, NULL);
	close(ls.lfd);
	close(irq);
}

static void test_peer_of_other_uid(void **state)
{
	struct ioreq_client_config cfg;
	struct ioreq_client *c = NULL;
	struct err e = { 0 };
	int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), ret, st;
	int go[2];
	pid_t pid;
	char want[64];

	if (geteuid() != 0) {
		/* Without root no server can run as another uid; expect
		 * another uid instead: our own server is then the stranger. */
		peer_uid_not_expected();
		close(irq);
		return;
	}
	assert_int_equal(pipe(go), 0);
	unlink(sock_path);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct wisp_ioreq_server *s;
		int lfd;

		if (setgid(65534) || setuid(65534))
			_exit(2);
		lfd = wisp_ioreq_listen(sock_path, &e);
		if (lfd < 0)
			_exit(3);
		(void)!write(go[1], "x", 1);
		if (wisp_ioreq_accept(lfd, "other", IOREQ_F_BUFFERED_RING, &s,
				      &e) == 0 &&
		    wisp_ioreq_ready(s, &e) == 0)
			wisp_ioreq_serve(s, NULL);
		_exit(0);
	}
	close(go[1]);
	assert_int_equal(read(go[0], &(char){ 0 }, 1), 1);
	close(go[0]);
	cfg = client_cfg(irq);
	ret = ioreq_client_create(&cfg, &c, &e);
	print_message("%s\n", e.msg);
	if (ret == 0)
		ioreq_client_destroy(c);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	assert_int_equal(ret, -EACCES);
	snprintf(want, sizeof(want), "uid 65534 (pid %d)", (int)pid);
	assert_non_null(strstr(e.msg, want));
	assert_non_null(strstr(e.msg, sock_path));
	close(irq);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_truncates_memfds),
		cmocka_unit_test(test_server_blocks_eventfds),
		cmocka_unit_test(test_handshake_flood_deadline),
		cmocka_unit_test(test_bye_to_deaf_server),
		cmocka_unit_test(test_reattach_does_not_block_vcpus),
		cmocka_unit_test(test_disconnect_with_huge_queue),
		cmocka_unit_test(test_disconnect_budget),
		cmocka_unit_test(test_disconnect_fails_inflight),
		cmocka_unit_test(test_long_socket_path),
		cmocka_unit_test(test_peer_of_other_uid),
	};

	signal(SIGPIPE, SIG_IGN);
	if (argc > 1) /* one case: a crash in one must not hide the others */
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, setup, teardown);
}
