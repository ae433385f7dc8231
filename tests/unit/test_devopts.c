// SPDX-License-Identifier: MIT
/* The shared device-option parser: well-formed options in every accepted
 * shape, and malformed ones refused with an ERR_CONFIG message that names
 * the option and the bad part. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/devopts.h"
#include "devices/blk/blk.h"

_Static_assert(DEVOPTS_DISK_ID_MAX == VIRTIO_BLK_ID_BYTES,
	       "the parser's id limit is the device's");

static int disk(const char *s, struct devopts_disk *d, struct err *e)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s", s);
	memset(e, 0, sizeof(*e));
	return devopts_parse_disk("--disk", buf, d, e);
}

static void test_disk_ok(void **state)
{
	struct devopts_disk d;
	struct err e;

	(void)state;
	assert_int_equal(disk("path=a.img", &d, &e), 0);
	assert_string_equal(d.path, "a.img");
	assert_null(d.id);
	assert_false(d.readonly);
	assert_false(d.direct);

	assert_int_equal(
		disk("readonly=on,id=disk-1,path=/x/y=z,direct=on", &d, &e), 0);
	assert_string_equal(d.path, "/x/y=z");
	assert_string_equal(d.id, "disk-1");
	assert_true(d.readonly);
	assert_true(d.direct);

	assert_int_equal(disk("path=b,readonly=off,direct=off", &d, &e), 0);
	assert_false(d.readonly);
	assert_false(d.direct);

	assert_int_equal(disk("path=c,id=12345678901234567890", &d, &e), 0);
	assert_string_equal(d.id, "12345678901234567890");
}

/* engine=: omitted means automatic; the values are the device's. */
static void test_disk_engine(void **state)
{
	struct devopts_disk d;
	struct err e;

	(void)state;
	assert_int_equal(disk("path=a", &d, &e), 0);
	assert_int_equal(d.engine, DEVOPTS_ENGINE_AUTO);
	assert_int_equal(d.engine, BLK_ENGINE_AUTO);
	assert_int_equal(disk("engine=sync,path=a", &d, &e), 0);
	assert_int_equal(d.engine, DEVOPTS_ENGINE_SYNC);
	assert_int_equal(d.engine, BLK_ENGINE_SYNC);
	assert_int_equal(disk("path=a,direct=on,engine=uring", &d, &e), 0);
	assert_int_equal(d.engine, DEVOPTS_ENGINE_URING);
	assert_int_equal(d.engine, BLK_ENGINE_URING);
	assert_true(d.direct);
}

/* Each malformed input is refused as a config error whose message
 * contains want. */
static void refused(const char *arg, const char *want)
{
	struct devopts_disk d = { .path = "untouched" };
	struct err e;

	if (disk(arg, &d, &e) != -EINVAL)
		fail_msg("'%s' was accepted", arg);
	assert_int_equal(e.cls, ERR_CONFIG);
	if (!strstr(e.msg, want) || strncmp(e.msg, "--disk", 6))
		fail_msg("'%s': message '%s' lacks '%s'", arg, e.msg, want);
	assert_string_equal(d.path, "untouched");
}

static void test_disk_refused(void **state)
{
	(void)state;
	/* The silent readonly=yes -> false of the old server parser. */
	refused("path=a,readonly=yes", "readonly='yes': expected on or off");
	refused("path=a,readonly=true", "readonly='true'");
	refused("path=a,readonly=1", "readonly='1'");
	refused("path=a,readonly=ON", "readonly='ON'");
	refused("path=a,readonly=", "readonly=''");
	refused("path=a,direct=no", "direct='no'");
	refused("path=a,cache=none", "unknown key 'cache'");
	refused("path=a,Path=b", "unknown key 'Path'");
	refused("path=a,path=b", "'path' given twice");
	refused("path=a,readonly=on,readonly=off", "'readonly' given twice");
	refused("path=a,id=x,id=y", "'id' given twice");
	refused("path=", "path= is empty");
	refused("", "empty item");
	refused("path=a,", "empty item");
	refused(",path=a", "empty item");
	refused("path=a,,id=x", "empty item");
	refused("readonly=on", "path=FILE is required");
	refused("a.img", "'a.img': expected key=value");
	refused("path=a,readonly", "'readonly': expected key=value");
	refused("path=a,id=", "id='': expected 1 to 20");
	refused("path=a,id=123456789012345678901", "expected 1 to 20");
	refused("path=a,id=tab\there", "printable ASCII");
	refused("path=a,=x", "unknown key ''");
	refused("path=a,engine=aio", "engine='aio': expected sync or uring");
	refused("path=a,engine=", "engine=''");
	refused("path=a,engine=URING", "engine='URING'");
	refused("path=a,engine=auto", "engine='auto'");
	refused("path=a,engine=sync,engine=uring", "'engine' given twice");
}

/* iommu=: on by default (behind the VM's IOMMU when it has one), off
 * leaves the disk out; strict like the other on/off keys. */
static void test_disk_iommu(void **state)
{
	struct devopts_disk d;
	struct err e;

	(void)state;
	assert_int_equal(disk("path=a", &d, &e), 0);
	assert_false(d.no_iommu);
	assert_int_equal(disk("path=a,iommu=off", &d, &e), 0);
	assert_true(d.no_iommu);
	assert_int_equal(disk("iommu=on,path=a", &d, &e), 0);
	assert_false(d.no_iommu);
	refused("path=a,iommu=no", "iommu='no': expected on or off");
	refused("path=a,iommu=", "iommu=''");
	refused("path=a,iommu=off,iommu=on", "'iommu' given twice");
}

static void test_uint(void **state)
{
	uint64_t v = 7;
	struct err e;

	(void)state;
	assert_int_equal(devopts_parse_u64("--n", "0", 0, 10, &v, &e), 0);
	assert_int_equal(v, 0);
	assert_int_equal(devopts_parse_u64("--n", "18446744073709551615", 0,
					   UINT64_MAX, &v, &e),
			 0);
	assert_true(v == UINT64_MAX);
	static const char *const bad[] = {
		"",
		" 1",
		"1 ",
		"+1",
		"-1",
		"0x10",
		"1k",
		"1.5",
		"abc",
		"18446744073709551616",
		"99999999999999999999999",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		memset(&e, 0, sizeof(e));
		if (devopts_parse_u64("--n", bad[i], 0, UINT64_MAX, &v, &e) !=
		    -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_int_equal(v, 7);
		assert_int_equal(e.cls, ERR_CONFIG);
		assert_non_null(strstr(e.msg, "--n '"));
	}
	assert_int_equal(devopts_parse_u64("--n", "11", 0, 10, &v, &e),
			 -EINVAL);
	assert_string_equal(e.msg, "--n '11': expected a number from 0 to 10");
	assert_int_equal(devopts_parse_u64("--n", "4", 5, 10, &v, &e), -EINVAL);
}

static void test_onoff(void **state)
{
	const char *bad[] = { "", "yes", "true", "1", "ON", "on ", "of" };
	struct err e = { 0 };
	bool v = false;

	assert_int_equal(devopts_parse_onoff("--acpi", "on", &v, &e), 0);
	assert_true(v);
	assert_int_equal(devopts_parse_onoff("--acpi", "off", &v, &e), 0);
	assert_false(v);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = true;
		assert_int_equal(devopts_parse_onoff("--acpi", bad[i], &v, &e),
				 -EINVAL);
		assert_true(v); /* untouched */
		assert_int_equal(e.cls, ERR_CONFIG);
		assert_non_null(strstr(e.msg, "--acpi"));
	}
}

static void test_rng_rate(void **state)
{
	uint64_t v = 0;
	struct err e;

	(void)state;
	assert_int_equal(devopts_parse_rng_rate("--rate", "1", &v, &e), 0);
	assert_int_equal(v, 1);
	assert_int_equal(
		devopts_parse_rng_rate("--rate", "1099511627776", &v, &e), 0);
	assert_true(v == DEVOPTS_RNG_RATE_MAX);
	/* 0 would mean "unlimited" inside the device: not a rate. */
	assert_int_equal(devopts_parse_rng_rate("--rate", "0", &v, &e),
			 -EINVAL);
	assert_int_equal(devopts_parse_rng_rate("--rate", "1099511627777", &v,
						&e),
			 -EINVAL);
	assert_int_equal(devopts_parse_rng_rate("--rate", "abc", &v, &e),
			 -EINVAL);
	assert_string_equal(e.msg, "--rate 'abc': expected a number from 1 to "
				   "1099511627776");
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_int_equal(devopts_parse_rng_rate("--rate", "-1", &v, &e),
			 -EINVAL);
}

/* --net: the tap name, mac and id, and everything that must be refused
 * with a message naming the option and the bad part. */
static int net(const char *s, struct devopts_net *d, struct err *e)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s", s);
	return devopts_parse_net("--net", buf, d, e);
}

static void test_net_ok(void **state)
{
	struct devopts_net d;
	struct err e;

	(void)state;
	assert_int_equal(net("tap=tap0", &d, &e), 0);
	assert_string_equal(d.tap, "tap0");
	assert_null(d.id);
	assert_false(d.has_mac);
	assert_int_equal(net("id=eth-a,mac=02:aB:cd:00:10:fe,tap=wisp-tap-15ch",
			     &d, &e),
			 0);
	assert_string_equal(d.tap, "wisp-tap-15ch");
	assert_string_equal(d.id, "eth-a");
	assert_true(d.has_mac);
	assert_memory_equal(d.mac,
			    ((uint8_t[]){ 2, 0xab, 0xcd, 0, 0x10, 0xfe }), 6);
	assert_int_equal(net("tap=123456789012345", &d, &e), 0);
	assert_int_equal(d.rx_rate, 0);
	assert_int_equal(
		net("tx-rate=1000,tap=t,rx-rate=1099511627776", &d, &e), 0);
	assert_int_equal(d.tx_rate, 1000);
	assert_int_equal(d.rx_rate, 1ULL << 40);
	assert_false(d.vhost);
	assert_int_equal(net("tap=t,vhost=on", &d, &e), 0);
	assert_true(d.vhost);
	assert_int_equal(net("vhost=off,tap=t", &d, &e), 0);
	assert_false(d.vhost);
}

static void net_refused(const char *arg, const char *want)
{
	struct devopts_net d = { .tap = "untouched" };
	struct err e;

	if (net(arg, &d, &e) != -EINVAL)
		fail_msg("'%s' was accepted", arg);
	assert_int_equal(e.cls, ERR_CONFIG);
	if (!strstr(e.msg, want) || strncmp(e.msg, "--net", 5))
		fail_msg("'%s': message '%s' lacks '%s'", arg, e.msg, want);
	assert_string_equal(d.tap, "untouched");
}

static void test_net_refused(void **state)
{
	(void)state;
	net_refused("", "empty item");
	net_refused("mac=02:00:00:00:00:01", "tap=NAME is required");
	net_refused("tap=", "1 to 15 characters");
	net_refused("tap=1234567890123456", "1 to 15 characters");
	net_refused("tap=..", "1 to 15 characters");
	net_refused("tap=a b", "no spaces");
	net_refused("tap=a/b", "no spaces");
	net_refused("tap=a:1", "no spaces");
	net_refused("tap=t0,tap=t1", "'tap' given twice");
	net_refused("tap=t0,", "empty item");
	net_refused("tap=t0,vhost=yes", "vhost");
	net_refused("tap=t0,vhost=on,rx-rate=1000", "vhost=on and rate");
	net_refused("tap=t0,tx-bw=1000,vhost=on", "vhost=on and rate");
	net_refused("tap=t0,bogus=1", "unknown key 'bogus'");
	net_refused("tap=t0,mac", "expected key=value");
	net_refused("tap=t0,mac=01:00:00:00:00:01", "multicast");
	net_refused("tap=t0,mac=00:00:00:00:00:00", "all zeroes");
	net_refused("tap=t0,mac=02:00:00:00:00", "six hex pairs");
	net_refused("tap=t0,mac=02:00:00:00:00:011", "six hex pairs");
	net_refused("tap=t0,mac=02-00-00-00-00-01", "six hex pairs");
	net_refused("tap=t0,mac=02:00:00:00:00:0g", "six hex pairs");
	net_refused("tap=t0,mac=2:00:00:00:00:01", "six hex pairs");
	net_refused("tap=t0,id=", "1 to 20 characters");
	net_refused("tap=t0,rx-rate=0",
		    "rx-rate '0': expected a number from 1");
	net_refused("tap=t0,tx-rate=1k", "tx-rate '1k': expected a number");
	net_refused("tap=t0,tx-rate=1099511627777", "expected a number");
	net_refused("tap=t0,rx-rate=1,rx-rate=2", "'rx-rate' given twice");
}

/* Rate-limit buckets: SIZE[:REFILL_MS[:BURST]] on --disk and --net. */
static void test_buckets(void **state)
{
	struct devopts_disk d;
	struct devopts_net n;
	struct tb_config t = { 7, 7, 7 };
	struct err e;
	char buf[128];

	(void)state;
	assert_int_equal(devopts_parse_bucket("bw", "1000", &t, &e), 0);
	assert_int_equal(t.size, 1000);
	assert_int_equal(t.refill_ms, 1000);
	assert_int_equal(t.one_time_burst, 0);
	assert_int_equal(devopts_parse_bucket("bw", "5:100:2000", &t, &e), 0);
	assert_int_equal(t.size, 5);
	assert_int_equal(t.refill_ms, 100);
	assert_int_equal(t.one_time_burst, 2000);
	static const char *const bad[] = { "",	 "0",	      "1:0",
					   "1:", ":1",	      "1:2:3:4",
					   "1x", "1:3600001", "1099511627777" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = (struct tb_config){ 7, 7, 7 };
		if (devopts_parse_bucket("--disk: bw", bad[i], &t, &e) !=
		    -EINVAL)
			fail_msg("bucket '%s' was accepted", bad[i]);
		assert_int_equal(e.cls, ERR_CONFIG);
		assert_non_null(strstr(e.msg, "--disk: bw"));
		assert_int_equal(t.size, 7);
	}
	snprintf(buf, sizeof(buf), "path=x,ops=100:1000,bw=1048576:500:4096");
	assert_int_equal(devopts_parse_disk("--disk", buf, &d, &e), 0);
	assert_int_equal(d.rl.ops.size, 100);
	assert_int_equal(d.rl.bw.size, 1048576);
	assert_int_equal(d.rl.bw.refill_ms, 500);
	assert_int_equal(d.rl.bw.one_time_burst, 4096);
	snprintf(buf, sizeof(buf), "path=x,bw=0");
	assert_int_equal(devopts_parse_disk("--disk", buf, &d, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "--disk: bw size '0'"));
	assert_int_equal(net("tap=t,rx-bw=1000:100,tx-ops=10,rx-ops=5", &n, &e),
			 0);
	assert_int_equal(n.rx_rl.bw.size, 1000);
	assert_int_equal(n.rx_rl.bw.refill_ms, 100);
	assert_int_equal(n.rx_rl.ops.size, 5);
	assert_int_equal(n.tx_rl.ops.size, 10);
	assert_int_equal(n.tx_rl.bw.size, 0);
	assert_int_equal(net("tap=t,rx-rate=10,rx-bw=10", &n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "give one"));
	assert_int_equal(net("tap=t,rx-rate=10,tx-bw=10", &n, &e), 0);
}

/* --vsock: cid and uds, both required, once each. */
static int vsock(const char *s, struct devopts_vsock *d, struct err *e)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s", s);
	return devopts_parse_vsock("--vsock", buf, d, e);
}

static void test_vsock(void **state)
{
	static const char *const bad[][2] = {
		{ "", "empty item" },
		{ "cid=3", "cid=N and uds=PATH are required" },
		{ "uds=/tmp/v", "cid=N and uds=PATH are required" },
		{ "cid=2,uds=/v", "cid '2': expected a number from 3" },
		{ "cid=4294967295,uds=/v", "expected a number from 3 to "
					   "4294967294" },
		{ "cid=-3,uds=/v", "expected a number" },
		{ "cid=3,uds=", "uds: empty path" },
		{ "cid=3,cid=4,uds=/v", "'cid' given twice" },
		{ "cid=3,uds=/v,port=1", "unknown key 'port'" },
	};
	struct devopts_vsock d;
	struct err e;

	(void)state;
	assert_int_equal(vsock("uds=/run/v.sock,cid=3", &d, &e), 0);
	assert_int_equal(d.cid, 3);
	assert_string_equal(d.uds, "/run/v.sock");
	assert_int_equal(vsock("cid=4294967294,uds=x", &d, &e), 0);
	assert_int_equal(d.cid, 4294967294u);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = (struct devopts_vsock){ 77, "untouched" };
		if (vsock(bad[i][0], &d, &e) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i][0]);
		assert_int_equal(e.cls, ERR_CONFIG);
		if (!strstr(e.msg, bad[i][1]) || strncmp(e.msg, "--vsock", 7))
			fail_msg("'%s': message '%s' lacks '%s'", bad[i][0],
				 e.msg, bad[i][1]);
		assert_int_equal(d.cid, 77);
	}
}

static int vhu(enum devopts_vhu_kind k, const char *s,
	       struct devopts_vhost_user *d, struct err *e)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s", s);
	return devopts_parse_vhost_user("--opt", k, buf, d, e);
}

static void vhu_refused(enum devopts_vhu_kind k, const char *s,
			const char *want)
{
	struct devopts_vhost_user d = { 0 };
	struct err e = { 0 };

	assert_int_equal(vhu(k, s, &d, &e), -EINVAL);
	assert_int_equal(e.cls, ERR_CONFIG);
	if (!strstr(e.msg, want))
		fail_msg("'%s': message '%s' lacks '%s'", s, e.msg, want);
	assert_null(d.socket);
}

static void test_vhost_user(void **state)
{
	struct devopts_vhost_user d;
	struct err e;

	(void)state;
	assert_int_equal(vhu(DEVOPTS_VHU_BLK, "socket=/tmp/a.sock", &d, &e), 0);
	assert_string_equal(d.socket, "/tmp/a.sock");
	assert_null(d.id);
	assert_int_equal(vhu(DEVOPTS_VHU_BLK, "id=disk1,socket=/run/b", &d, &e),
			 0);
	assert_string_equal(d.id, "disk1");
	assert_int_equal(vhu(DEVOPTS_VHU_FS, "tag=share,socket=/s", &d, &e), 0);
	assert_string_equal(d.tag, "share");
	assert_int_equal(vhu(DEVOPTS_VHU_ANY,
			     "type=18,socket=/s,queues=8,config=256", &d, &e),
			 0);
	assert_int_equal(d.type, 18);
	assert_int_equal(d.queues, 8);
	assert_int_equal(d.config_size, 256);
	assert_int_equal(vhu(DEVOPTS_VHU_ANY, "type=4,socket=/s", &d, &e), 0);
	assert_int_equal(d.queues, 1);
	assert_int_equal(d.config_size, 0);

	vhu_refused(DEVOPTS_VHU_BLK, "id=x", "socket=PATH is required");
	vhu_refused(DEVOPTS_VHU_BLK, "socket=", "must not be empty");
	vhu_refused(DEVOPTS_VHU_BLK, "socket=/a,tag=x", "unknown key 'tag'");
	vhu_refused(DEVOPTS_VHU_BLK, "socket=/a,socket=/b", "given twice");
	vhu_refused(DEVOPTS_VHU_BLK, "socket=/a,id=123456789012345678901",
		    "1 to 20");
	vhu_refused(DEVOPTS_VHU_FS, "socket=/a", "tag=NAME is required");
	vhu_refused(DEVOPTS_VHU_FS, "socket=/a,tag=a b", "printable");
	vhu_refused(DEVOPTS_VHU_FS,
		    "socket=/a,tag=1234567890123456789012345678901234567",
		    "1 to 36");
	vhu_refused(DEVOPTS_VHU_FS, "socket=/a,tag=x,id=y", "unknown key");
	vhu_refused(DEVOPTS_VHU_ANY, "socket=/a", "type=ID");
	vhu_refused(DEVOPTS_VHU_ANY, "type=0,socket=/a", "type");
	vhu_refused(DEVOPTS_VHU_ANY, "type=65536,socket=/a", "type");
	vhu_refused(DEVOPTS_VHU_ANY, "type=2,socket=/a,queues=9", "queues");
	vhu_refused(DEVOPTS_VHU_ANY, "type=2,socket=/a,config=257", "config");
	vhu_refused(DEVOPTS_VHU_ANY, "type=2,socket=/a,id=x", "unknown key");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disk_ok),
		cmocka_unit_test(test_disk_engine),
		cmocka_unit_test(test_disk_refused),
		cmocka_unit_test(test_disk_iommu),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_rng_rate),
		cmocka_unit_test(test_onoff),
		cmocka_unit_test(test_net_ok),
		cmocka_unit_test(test_net_refused),
		cmocka_unit_test(test_vsock),
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_vhost_user),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
