// SPDX-License-Identifier: MIT
/* The snapshot state file and memory file: a round trip, and every kind
 * of damage (magic, version, CRC, truncation at every byte, lengths that
 * overflow, counts that lie, trailing bytes) refused with a config-class
 * error; the config and vCPU section decoders refuse malformed payloads;
 * MSRs come out in the order KVM needs; the sparse memory file round
 * trips through the File backend. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/config_state.h"
#include "snapshot/format.h"
#include "snapshot/kvm_state.h"
#include "snapshot/mem_dump.h"
#include "util/le.h"

#include "snapshot/mem_restore.h"

/* A file with three sections: CONFIG "abc", VCPU 1000 bytes, DEVICE
 * empty. *out is malloc'd. */
static size_t build(uint8_t **out)
{
	struct snap_writer sw;
	struct err e = { 0 };
	size_t len;

	snap_writer_init(&sw);
	snap_section_begin(&sw, SNAP_SEC_CONFIG);
	ser_bytes(&sw.w, "abc", 3);
	snap_section_end(&sw);
	snap_section_begin(&sw, SNAP_SEC_VCPU);
	for (int i = 0; i < 1000; i++)
		ser_u8(&sw.w, (uint8_t)i);
	snap_section_end(&sw);
	snap_section_begin(&sw, SNAP_SEC_DEVICE);
	snap_section_end(&sw);
	assert_int_equal(snap_writer_finish(&sw, &e), 0);
	*out = sw.w.p;
	len = sw.w.len;
	return len;
}

static void refused(const uint8_t *buf, size_t len, const char *want)
{
	struct snap_file *f = malloc(sizeof(*f));
	struct err e = { 0 };

	assert_non_null(f);
	assert_int_equal(snap_parse(f, buf, len, &e), -EINVAL);
	assert_int_equal(e.cls, ERR_CONFIG);
	if (want && !strstr(e.msg, want))
		fail_msg("message '%s' lacks '%s'", e.msg, want);
	free(f);
}

static void test_round_trip(void **state)
{
	struct snap_file *f = malloc(sizeof(*f));
	struct err e = { 0 };
	uint8_t *buf;
	size_t len = build(&buf);
	int pos = 0;

	assert_int_equal(snap_parse(f, buf, len, &e), 0);
	assert_int_equal(f->nr, 3);
	assert_int_equal(f->version, SNAP_VERSION);
	assert_int_equal(f->sec[0].type, SNAP_SEC_CONFIG);
	assert_int_equal(f->sec[0].len, 3);
	assert_memory_equal(f->sec[0].data, "abc", 3);
	assert_int_equal(f->sec[1].len, 1000);
	assert_int_equal(f->sec[1].data[999], (uint8_t)999);
	assert_int_equal(f->sec[2].len, 0);
	assert_ptr_equal(snap_next(f, &pos, SNAP_SEC_VCPU), &f->sec[1]);
	assert_null(snap_next(f, &pos, SNAP_SEC_VCPU));
	free(buf);
	free(f);
}

static void test_bad_magic_version(void **state)
{
	uint8_t *buf;
	size_t len = build(&buf);

	buf[0] ^= 1;
	refused(buf, len, "magic");
	buf[0] ^= 1;
	put32(buf + 8, SNAP_VERSION + 1);
	refused(buf, len, "version");
	put32(buf + 8, 0);
	refused(buf, len, "version");
	free(buf);
}

static void test_crc(void **state)
{
	uint8_t *buf;
	size_t len = build(&buf);

	/* Every payload byte of the VCPU section, one flip at a time. */
	for (size_t off = SNAP_HEADER_LEN + SNAP_SECTION_HEADER_LEN + 3 +
			  SNAP_SECTION_HEADER_LEN;
	     off < SNAP_HEADER_LEN + 2 * SNAP_SECTION_HEADER_LEN + 1003;
	     off++) {
		buf[off] ^= 0x40;
		refused(buf, len, "CRC");
		buf[off] ^= 0x40;
	}
	/* The stored CRC itself. */
	buf[SNAP_HEADER_LEN + 4] ^= 1;
	refused(buf, len, "CRC");
	free(buf);
}

static void test_truncated_everywhere(void **state)
{
	uint8_t *buf;
	size_t len = build(&buf);

	for (size_t l = 0; l < len; l++) {
		uint8_t *copy = malloc(l ? l : 1);

		memcpy(copy, buf, l);
		refused(copy, l, NULL);
		free(copy);
	}
	free(buf);
}

static void test_lengths_overflow(void **state)
{
	uint8_t *buf;
	size_t len = build(&buf);
	uint8_t *h = buf + SNAP_HEADER_LEN;

	put64(h + 8, UINT64_MAX);
	refused(buf, len, "remain");
	put64(h + 8, UINT64_MAX - SNAP_SECTION_HEADER_LEN + 1);
	refused(buf, len, "remain");
	put64(h + 8, len);
	refused(buf, len, "remain");
	put64(h + 8, 3);
	/* The count in the header lies either way, or is huge. */
	put32(buf + 12, 2);
	refused(buf, len, "more sections");
	put32(buf + 12, 4);
	refused(buf, len, "header says");
	put32(buf + 12, 0xffffffff);
	refused(buf, len, "at most");
	put32(buf + 12, 3);
	/* Unknown section type. */
	put32(h, SNAP_SEC_NR);
	refused(buf, len, "unknown type");
	put32(h, SNAP_SEC_CONFIG);
	free(buf);
}

static void test_trailing_and_end(void **state)
{
	uint8_t *buf;
	size_t len = build(&buf);
	uint8_t *big = calloc(1, len + 1);

	memcpy(big, buf, len);
	refused(big, len + 1, "after the END");
	free(big);
	free(buf);
}

/* What of a --spawn-server a state file may carry: wisp's own servers
 * with their device options, nothing that chooses another program or
 * weakens the server's confinement. */
static void test_spawn_check(void **state)
{
	static const char *const ok[] = {
		"wisp-blk --disk path=/img",
		"/usr/lib/wisp/wisp-blk  --disk path=/img,readonly=on",
		"build/src/servers/wisp-rng",
		"wisp-rng --rate 1000",
		"wisp-console",
		"wisp-net --net tap=tap0",
	};
	static const char *const bad[] = {
		"",
		"   ",
		"sh -c reboot",
		"/bin/wisp-blkx --disk path=/img",
		"wisp-blk/ --disk path=/img",
		"wisp-blk --disk",
		"wisp-blk --disk path=/img --seccomp off",
		"wisp-blk --disk path=/img --persist",
		"wisp-blk --jail x --disk path=/img",
		"wisp-blk --rate 5",
		"wisp-blk --disk=path=/img",
		"wisp-blk --disk --seccomp",
		"wisp-rng --vhost-user /s",
		"wisp-console --socket /s",
	};
	struct err e = { 0 };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(snap_spawn_check(ok[i], &e), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = (struct err){ 0 };
		assert_int_equal(snap_spawn_check(bad[i], &e), -EINVAL);
		assert_int_equal(e.cls, ERR_CONFIG);
		assert_non_null(strstr(e.msg, "snapshot"));
	}
	assert_int_equal(snap_spawn_check(NULL, &e), -EINVAL);
}

static void test_config_round_trip(void **state)
{
	struct vm_config c, d;
	struct ser_w w = { 0 };
	struct err e = { 0 };

	memset(&c, 0, sizeof(c));
	c.kernel = "/k";
	c.cpus = 2;
	c.memory_mib = 256;
	c.serial = SERIAL_FILE;
	c.serial_path = "/tmp/s";
	c.nr_disks = 1;
	c.disks[0].path = "/img";
	c.disks[0].readonly = true;
	c.nr_servers = 2;
	c.servers[0].spawn = "wisp-rng";
	c.servers[1].socket = "/run/s.sock";
	c.servers[1].no_iommu = true;
	c.acpi = true;
	c.rng = true;
	c.rng_rate = 100;
	c.shutdown_timeout_s = 5;
	c.disks[0].rl.bw = (struct tb_config){ 1048576, 4096, 500 };
	c.disks[0].rl.ops = (struct tb_config){ 100, 0, 1000 };
	c.async_pf = true;
	c.watchdog_s = 30;
	snap_config_save(&c, &w);
	assert_false(w.fail);
	assert_int_equal(snap_config_decode(&d, w.p, w.len, &e), 0);
	assert_string_equal(d.kernel, "/k");
	assert_null(d.initrd);
	assert_int_equal(d.cpus, 2);
	assert_int_equal(d.memory_mib, 256);
	assert_string_equal(d.serial_path, "/tmp/s");
	assert_string_equal(d.disks[0].path, "/img");
	assert_true(d.disks[0].readonly);
	assert_null(d.servers[0].socket);
	assert_string_equal(d.servers[0].spawn, "wisp-rng");
	assert_false(d.servers[0].no_iommu);
	assert_string_equal(d.servers[1].socket, "/run/s.sock");
	assert_null(d.servers[1].spawn);
	assert_true(d.servers[1].no_iommu);
	assert_true(d.rng);
	assert_int_equal(d.rng_rate, 100);
	/* A restored disk keeps its limiter, the vCPUs their async PF. */
	assert_int_equal(d.disks[0].rl.bw.size, 1048576);
	assert_int_equal(d.disks[0].rl.bw.one_time_burst, 4096);
	assert_int_equal(d.disks[0].rl.bw.refill_ms, 500);
	assert_int_equal(d.disks[0].rl.ops.size, 100);
	assert_true(d.async_pf);
	assert_int_equal(d.watchdog_s, 30);
	/* Every truncation, and one byte too many. */
	for (size_t l = 0; l < w.len; l++)
		assert_int_equal(snap_config_decode(&d, w.p, l, &e), -EINVAL);
	ser_u8(&w, 0);
	assert_int_equal(snap_config_decode(&d, w.p, w.len, &e), -EINVAL);
	free(w.p);
	/* Out-of-range values. */
	c.cpus = 0;
	w = (struct ser_w){ 0 };
	snap_config_save(&c, &w);
	assert_int_equal(snap_config_decode(&d, w.p, w.len, &e), -EINVAL);
	assert_int_equal(e.cls, ERR_CONFIG);
	free(w.p);
	c.cpus = 1;
	c.serial_path = NULL; /* SERIAL_FILE without a path */
	w = (struct ser_w){ 0 };
	snap_config_save(&c, &w);
	assert_int_equal(snap_config_decode(&d, w.p, w.len, &e), -EINVAL);
	free(w.p);
}

static void test_strings(void **state)
{
	static const uint8_t nul_inside[] = { 3, 0, 0, 0, 'a', 0, 'b', 0 };
	static const uint8_t no_nul[] = { 2, 0, 0, 0, 'a', 'b', 'c' };
	static const uint8_t huge[] = { 0xfe, 0xff, 0xff, 0xff, 'a' };
	struct ser_r r = { nul_inside, sizeof(nul_inside), 0, false };

	assert_null(deser_str(&r, 100));
	assert_true(r.fail);
	r = (struct ser_r){ no_nul, sizeof(no_nul), 0, false };
	assert_null(deser_str(&r, 100));
	assert_true(r.fail);
	r = (struct ser_r){ huge, sizeof(huge), 0, false };
	assert_null(deser_str(&r, UINT32_MAX));
	assert_true(r.fail);
}

static void test_msr_order(void **state)
{
	struct kvm_msr_entry m[] = {
		{ .index = MSR_KVM_ASYNC_PF_EN_ },
		{ .index = MSR_IA32_TSC_DEADLINE_ },
		{ .index = 0x174 },
		{ .index = MSR_KVM_ASYNC_PF_INT_ },
		{ .index = 0xc0000080 },
		{ .index = MSR_IA32_TSC_ },
	};
	uint32_t want[] = { MSR_IA32_TSC_,	  0x174,
			    0xc0000080,		  MSR_KVM_ASYNC_PF_INT_,
			    MSR_KVM_ASYNC_PF_EN_, MSR_IA32_TSC_DEADLINE_ };

	snap_msr_order(m, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(m[i].index, want[i]);
}

static void test_vcpu_decode_malformed(void **state)
{
	struct snap_vcpu_state *s = calloc(1, sizeof(*s));
	uint8_t *junk = calloc(1, 20000);
	struct err e = { 0 };

	for (size_t l = 0; l < 20000; l += 997)
		assert_int_equal(snap_vcpu_decode(s, junk, l, &e), -EINVAL);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_null(s->xsave);
	free(junk);
	free(s);
}

static void test_mem_file_round_trip(void **state)
{
	const size_t size = 4u << 20;
	char path[] = "/tmp/wisp-test-mem-XXXXXX";
	int memfd = memfd_create("t", 0), fd;
	uint8_t *src, *dst;
	struct snap_mem_restore *r = NULL;
	struct err e = { 0 };
	uint64_t written;
	struct stat st;

	assert_true(memfd >= 0);
	assert_int_equal(ftruncate(memfd, (off_t)size), 0);
	src = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	assert_true(src != MAP_FAILED);
	memset(src + 4096, 0xab, 4096);
	memset(src + 3 * (1u << 20), 0x5c, 8192);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(snap_mem_dump(memfd, src, size, path, &written, &e),
			 0);
	/* Only what was touched (tmpfs may round to its own pages). */
	assert_true(written >= 12288 && written < size / 4);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, size);
	assert_true((uint64_t)st.st_blocks * 512 < size / 4);

	/* Restored into guest RAM as wisp has it: a memfd mapped shared. */
	int dmemfd = memfd_create("d", 0);

	assert_true(dmemfd >= 0);
	assert_int_equal(ftruncate(dmemfd, (off_t)size), 0);
	dst = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, dmemfd, 0);
	assert_true(dst != MAP_FAILED);
	assert_int_equal(snap_mem_restore_start(&r, SNAP_MEM_FILE, path, dmemfd,
						dst, size, false, &e),
			 0);
	assert_non_null(r);
	assert_memory_equal(dst, src, size);
	snap_mem_restore_stop(r);
	/* A memory file of the wrong size, and a Uffd "socket" that is
	 * the memory file. */
	assert_int_equal(snap_mem_restore_start(&r, SNAP_MEM_FILE, path, dmemfd,
						dst, size / 2, false, &e),
			 -EINVAL);
	assert_null(r);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_true(snap_mem_restore_start(&r, SNAP_MEM_UFFD, path, dmemfd, dst,
					   size, false, &e) < 0);
	assert_null(r);
	/* dst is the File backend's private mapping now: not shmem. */
	assert_true(strstr(e.msg, "uffd") || strstr(e.msg, "userfaultfd"));
	unlink(path);
	munmap(src, size);
	munmap(dst, size);
	close(dmemfd);
	close(memfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad_magic_version),
		cmocka_unit_test(test_crc),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_lengths_overflow),
		cmocka_unit_test(test_trailing_and_end),
		cmocka_unit_test(test_config_round_trip),
		cmocka_unit_test(test_spawn_check),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_msr_order),
		cmocka_unit_test(test_vcpu_decode_malformed),
		cmocka_unit_test(test_mem_file_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
