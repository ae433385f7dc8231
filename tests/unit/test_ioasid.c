// SPDX-License-Identifier: MIT
/* The IOASID allocator: ranges, quotas, capacity, set isolation, local to
 * global binding, refcounts and notifiers, and the host-wide registry
 * across threads and processes (including a holder killed with SIGKILL). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "iommu/ioasid.h"
#include "iommu/registry.h"

static struct ioasid_sys sys_with(uint32_t min, uint32_t split, uint32_t max,
				  uint32_t cap, struct ioasid_registry *r)
{
	struct ioasid_sys_config c = { min, split, max, cap, r };
	struct ioasid_sys s;
	struct err e = { 0 };

	assert_int_equal(ioasid_sys_init(&s, &c, &e), 0);
	return s;
}

static void test_config_refused(void **state)
{
	struct ioasid_sys s;
	struct err e = { 0 };
	const struct ioasid_sys_config bad[] = {
		{ 10, 5, 20, 4, NULL }, /* split below min */
		{ 1, 30, 20, 4, NULL }, /* split above max */
		{ 1, 5, 20, 0, NULL }, /* no capacity */
		{ 1, 5, IOASID_INVALID, 4, NULL }, /* reserved max */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ioasid_sys_init(&s, &bad[i], &e), -EINVAL);
		assert_int_equal(e.cls, ERR_CONFIG);
	}
}

static void test_alloc_range_quota_capacity(void **state)
{
	struct ioasid_sys s = sys_with(1, 100, 109, 8, NULL);
	struct ioasid_set *a, *b;
	struct err e = { 0 };
	uint32_t id, got[10];

	assert_int_equal(ioasid_set_create(&s, 5, 1, 0, &a, &e), 0);
	assert_int_equal(ioasid_set_create(&s, 5, 1, 0, &b, &e), 0);
	/* The range is clamped to the global part; empty ranges refused. */
	assert_int_equal(ioasid_alloc(a, 50, 40, NULL, &id), -EINVAL);
	assert_int_equal(ioasid_alloc(a, 1, 99, NULL, &id), -EINVAL);
	assert_int_equal(ioasid_alloc(a, 200, 300, NULL, &id), -EINVAL);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(ioasid_alloc(a, 0, 1000, NULL, &got[i]), 0);
		assert_true(got[i] >= 100 && got[i] <= 109);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(got[i], got[j]);
	}
	/* The set's quota, then the system's capacity (8), then the end. */
	assert_int_equal(ioasid_alloc(a, 0, 1000, NULL, &id), -EDQUOT);
	assert_int_equal(id, IOASID_INVALID);
	for (int i = 5; i < 8; i++)
		assert_int_equal(ioasid_alloc(b, 0, 1000, NULL, &got[i]), 0);
	assert_int_equal(ioasid_alloc(b, 0, 1000, NULL, &id), -ENOSPC);
	assert_int_equal(ioasid_set_used(a), 5);
	assert_int_equal(ioasid_set_used(b), 3);
	/* A one-ID range that is taken. */
	assert_int_equal(ioasid_put(b, got[5]), 0);
	assert_int_equal(ioasid_alloc(b, got[0], got[0], NULL, &id), -ENOSPC);
	assert_int_equal(ioasid_alloc(b, got[5], got[5], NULL, &id), 0);
	assert_int_equal(id, got[5]);
	ioasid_sys_destroy(&s);
}

static void test_set_isolation(void **state)
{
	struct ioasid_sys s = sys_with(1, 100, 199, 50, NULL);
	struct ioasid_set *a, *b;
	struct err e = { 0 };
	int tag = 7;
	void *priv = NULL;
	uint32_t id;

	assert_int_equal(ioasid_set_create(&s, 5, 1, 0, &a, &e), 0);
	assert_int_equal(ioasid_set_create(&s, 5, 1, 0, &b, &e), 0);
	assert_int_equal(ioasid_alloc(a, 0, 1000, &tag, &id), 0);
	assert_int_equal(ioasid_find(b, id, &priv), -ENOENT);
	assert_int_equal(ioasid_get(b, id), -ENOENT);
	assert_int_equal(ioasid_put(b, id), -ENOENT);
	assert_int_equal(ioasid_find(a, id, &priv), 0);
	assert_ptr_equal(priv, &tag);
	/* b's failed put did not free a's ID. */
	assert_int_equal(ioasid_set_used(a), 1);
	ioasid_sys_destroy(&s);
}

static void test_local_binding(void **state)
{
	struct ioasid_sys s = sys_with(1, 100, 199, 50, NULL);
	struct ioasid_set *a, *b;
	struct err e = { 0 };
	uint32_t ga, gb, g, l;

	assert_int_equal(ioasid_set_create(&s, 4, 1, 0, &a, &e), 0);
	ioasid_set_destroy(a);
	/* A local range must lie below the split. */
	assert_int_equal(ioasid_set_create(&s, 4, 50, 100, &a, &e), -ERANGE);
	assert_null(a);
	assert_int_equal(ioasid_set_create(&s, 4, 1, 20, &a, &e), 0);
	assert_int_equal(ioasid_set_create(&s, 4, 1, 20, &b, &e), 0);
	/* The same guest-chosen value in two sets: two host IDs. */
	assert_int_equal(ioasid_bind_local(a, 5, NULL, &ga), 0);
	assert_int_equal(ioasid_bind_local(b, 5, NULL, &gb), 0);
	assert_int_not_equal(ga, gb);
	assert_true(ga >= 100 && gb >= 100);
	assert_int_equal(ioasid_bind_local(a, 5, NULL, &g), -EEXIST);
	assert_int_equal(ioasid_bind_local(a, 21, NULL, &g), -ERANGE);
	assert_int_equal(ioasid_bind_local(a, 0, NULL, &g), -ERANGE);
	assert_int_equal(ioasid_local_to_global(a, 5, &g), 0);
	assert_int_equal(g, ga);
	assert_int_equal(ioasid_global_to_local(a, ga, &l), 0);
	assert_int_equal(l, 5);
	assert_int_equal(ioasid_global_to_local(a, gb, &l), -ENOENT);
	assert_int_equal(ioasid_local_to_global(a, 6, &g), -ENOENT);
	/* Bound IDs count against the quota. */
	for (uint32_t i = 6; i < 9; i++)
		assert_int_equal(ioasid_bind_local(a, i, NULL, &g), 0);
	assert_int_equal(ioasid_bind_local(a, 9, NULL, &g), -EDQUOT);
	/* Freed, the local value can be bound again. */
	assert_int_equal(ioasid_put(a, ga), 0);
	assert_int_equal(ioasid_local_to_global(a, 5, &g), -ENOENT);
	assert_int_equal(ioasid_bind_local(a, 5, NULL, &g), 0);
	ioasid_sys_destroy(&s);
}

struct freed {
	uint32_t ids[16];
	void *privs[16];
	int n;
};

static void on_free(void *opaque, uint32_t id, void *priv)
{
	struct freed *f = opaque;

	f->ids[f->n] = id;
	f->privs[f->n] = priv;
	f->n++;
}

static void test_refcount_notifiers(void **state)
{
	struct ioasid_sys s = sys_with(0, 10, 20, 11, NULL);
	struct ioasid_set *a;
	struct err e = { 0 };
	struct freed f = { 0 };
	int tag;
	uint32_t id, id2;

	assert_int_equal(ioasid_set_create(&s, 4, 1, 0, &a, &e), 0);
	assert_int_equal(ioasid_set_notify(a, on_free, &f), 0);
	assert_int_equal(ioasid_alloc(a, 0, 100, &tag, &id), 0);
	assert_int_equal(ioasid_get(a, id), 0);
	assert_int_equal(ioasid_put(a, id), 0);
	assert_int_equal(f.n, 0); /* one reference left */
	assert_int_equal(ioasid_put(a, id), 0);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.ids[0], id);
	assert_ptr_equal(f.privs[0], &tag);
	assert_int_equal(ioasid_put(a, id), -ENOENT);
	assert_int_equal(ioasid_set_used(a), 0);
	/* Destroying the set frees what it still holds, refcount or not. */
	assert_int_equal(ioasid_alloc(a, 0, 100, NULL, &id), 0);
	assert_int_equal(ioasid_alloc(a, 0, 100, NULL, &id2), 0);
	assert_int_equal(ioasid_get(a, id2), 0);
	ioasid_set_destroy(a);
	assert_int_equal(f.n, 3);
	assert_int_equal(s.used, 0);
	/* At most four notifiers per set. */
	assert_int_equal(ioasid_set_create(&s, 4, 1, 0, &a, &e), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ioasid_set_notify(a, on_free, &f), 0);
	assert_int_equal(ioasid_set_notify(a, on_free, &f), -ENOSPC);
	ioasid_sys_destroy(&s);
}

#define NTHREADS 4

struct tharg {
	struct ioasid_set *set;
	uint32_t ids[64];
	int n;
};

static void *alloc_thread(void *p)
{
	struct tharg *t = p;
	uint32_t id;

	while (t->n < 64 && ioasid_alloc(t->set, 0, 100000, NULL, &id) == 0)
		t->ids[t->n++] = id;
	return NULL;
}

static void test_concurrent_threads(void **state)
{
	struct ioasid_sys s = sys_with(0, 1, 1000, 100, NULL);
	struct tharg t[NTHREADS];
	pthread_t th[NTHREADS];
	struct err e = { 0 };
	static uint8_t seen[1001];
	int total = 0;

	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < NTHREADS; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		assert_int_equal(ioasid_set_create(&s, 64, 1, 0, &t[i].set, &e),
				 0);
		assert_int_equal(
			pthread_create(&th[i], NULL, alloc_thread, &t[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		for (int j = 0; j < t[i].n; j++) {
			assert_int_equal(seen[t[i].ids[j]], 0);
			seen[t[i].ids[j]] = 1;
		}
		total += t[i].n;
	}
	assert_int_equal(total, 100); /* exactly the capacity */
	ioasid_sys_destroy(&s);
}

static char reg_path[64];

static int setup_reg(void **state)
{
	int fd;

	snprintf(reg_path, sizeof(reg_path), "/tmp/wisp-ioasid-test.XXXXXX");
	fd = mkstemp(reg_path);
	assert_true(fd >= 0);
	close(fd);
	return 0;
}

static int teardown_reg(void **state)
{
	unlink(reg_path);
	return 0;
}

/* Two registry opens are two holders, as two wisp processes would be. */
static void test_registry_two_holders(void **state)
{
	struct ioasid_registry r1, r2;
	struct err e = { 0 };
	struct ioasid_sys s1, s2;
	struct ioasid_set *a, *b;
	uint32_t ids1[5], ids2[5], id;

	assert_int_equal(ioasid_registry_open(&r1, reg_path, &e), 0);
	assert_int_equal(ioasid_registry_open(&r2, reg_path, &e), 0);
	s1 = sys_with(0, 10, 19, 10, &r1);
	s2 = sys_with(0, 10, 19, 10, &r2);
	assert_int_equal(ioasid_set_create(&s1, 10, 1, 0, &a, &e), 0);
	assert_int_equal(ioasid_set_create(&s2, 10, 1, 0, &b, &e), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(ioasid_alloc(a, 0, 100, NULL, &ids1[i]), 0);
		assert_int_equal(ioasid_alloc(b, 0, 100, NULL, &ids2[i]), 0);
	}
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 5; j++)
			assert_int_not_equal(ids1[i], ids2[j]);
	/* All ten global IDs are held between the two. */
	assert_int_equal(ioasid_alloc(a, 0, 100, NULL, &id), -ENOSPC);
	/* A released ID becomes available to the other holder. */
	assert_int_equal(ioasid_put(a, ids1[2]), 0);
	assert_int_equal(ioasid_alloc(b, 0, 100, NULL, &id), 0);
	assert_int_equal(id, ids1[2]);
	ioasid_sys_destroy(&s1);
	ioasid_sys_destroy(&s2);
	ioasid_registry_close(&r1);
	ioasid_registry_close(&r2);
}

/* A holder killed with SIGKILL leaves no IDs behind. */
static void test_registry_reclaim_after_crash(void **state)
{
	struct ioasid_registry r;
	struct err e = { 0 };
	struct ioasid_sys s;
	struct ioasid_set *a;
	int pfd[2], st;
	uint32_t id;
	char c;
	pid_t p;

	assert_int_equal(pipe(pfd), 0);
	p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		struct ioasid_registry cr;
		struct ioasid_sys cs;
		struct ioasid_set *ca;
		struct ioasid_sys_config cc = { 0, 10, 13, 4, &cr };

		if (ioasid_registry_open(&cr, reg_path, NULL) ||
		    ioasid_sys_init(&cs, &cc, NULL) ||
		    ioasid_set_create(&cs, 4, 1, 0, &ca, NULL))
			_exit(1);
		for (int i = 0; i < 4; i++)
			if (ioasid_alloc(ca, 0, 100, NULL, &id))
				_exit(2);
		if (write(pfd[1], "k", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	assert_int_equal(ioasid_registry_open(&r, reg_path, &e), 0);
	s = sys_with(0, 10, 13, 4, &r);
	assert_int_equal(ioasid_set_create(&s, 4, 1, 0, &a, &e), 0);
	/* The child holds all four. */
	assert_int_equal(ioasid_alloc(a, 0, 100, NULL, &id), -ENOSPC);
	kill(p, SIGKILL);
	assert_int_equal(waitpid(p, &st, 0), p);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ioasid_alloc(a, 0, 100, NULL, &id), 0);
	ioasid_sys_destroy(&s);
	ioasid_registry_close(&r);
}

/* Several processes allocating at once never share an ID. */
static void test_registry_concurrent_processes(void **state)
{
	enum { NPROC = 4, EACH = 40, RANGE = 170 };
	int pfd[2], n = 0, st;
	uint32_t ids[NPROC * EACH], got;
	static uint8_t seen[RANGE + 1];
	pid_t pids[NPROC];

	memset(seen, 0, sizeof(seen));
	assert_int_equal(pipe(pfd), 0);
	for (int i = 0; i < NPROC; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct ioasid_registry cr;
			struct ioasid_sys cs;
			struct ioasid_set *ca;
			struct ioasid_sys_config cc = { 0, 1, RANGE, EACH,
							&cr };
			uint32_t id;

			close(pfd[0]);
			if (ioasid_registry_open(&cr, reg_path, NULL) ||
			    ioasid_sys_init(&cs, &cc, NULL) ||
			    ioasid_set_create(&cs, EACH, 1, 0, &ca, NULL))
				_exit(1);
			for (int k = 0; k < EACH; k++) {
				if (ioasid_alloc(ca, 0, RANGE, NULL, &id))
					_exit(2);
				if (write(pfd[1], &id, sizeof(id)) !=
				    sizeof(id))
					_exit(3);
			}
			/* Hold them until every process has reported. */
			pause();
			_exit(0);
		}
	}
	close(pfd[1]);
	/* Bounded: a child that failed leaves the others holding the pipe
	 * open, so wait with a deadline rather than for EOF. */
	while (n < NPROC * EACH) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };

		if (poll(&p, 1, 10000) != 1 ||
		    read(pfd[0], &got, sizeof(got)) != sizeof(got))
			break;
		ids[n++] = got;
	}
	for (int i = 0; i < NPROC; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], &st, 0);
	}
	close(pfd[0]);
	assert_int_equal(n, NPROC * EACH);
	for (int i = 0; i < n; i++) {
		assert_true(ids[i] >= 1 && ids[i] <= RANGE);
		assert_int_equal(seen[ids[i]], 0);
		seen[ids[i]] = 1;
	}
}

static void test_registry_refuses_non_regular(void **state)
{
	struct ioasid_registry r;
	struct err e = { 0 };

	assert_int_equal(ioasid_registry_open(&r, "/tmp", &e) < 0, 1);
	assert_int_equal(r.fd, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_refused),
		cmocka_unit_test(test_alloc_range_quota_capacity),
		cmocka_unit_test(test_set_isolation),
		cmocka_unit_test(test_local_binding),
		cmocka_unit_test(test_refcount_notifiers),
		cmocka_unit_test(test_concurrent_threads),
		cmocka_unit_test_setup_teardown(test_registry_two_holders,
						setup_reg, teardown_reg),
		cmocka_unit_test_setup_teardown(
			test_registry_reclaim_after_crash, setup_reg,
			teardown_reg),
		cmocka_unit_test_setup_teardown(
			test_registry_concurrent_processes, setup_reg,
			teardown_reg),
		cmocka_unit_test(test_registry_refuses_non_regular),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
