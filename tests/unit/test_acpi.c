// SPDX-License-Identifier: MIT
/*
 * The ACPI tables and the AML builder, checked by an external validator:
 * every table is disassembled by ACPICA's iasl (Debian acpica-tools), the
 * DSDT is compiled back and its methods run in acpiexec. Our own reading
 * of the bytes checks only what iasl cannot (checksums, the RSDP, which
 * this iasl cannot load on its own). Without iasl these tests FAIL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch/x86/acpi/acpi.h"
#include "arch/x86/acpi/aml.h"
#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "boot/boot.h"
#include "mem/guest_mem.h"
#include "virtio/mmio.h"
#include "vmm/layout.h"

#define GPA ACPI_TABLES_GPA

static char dir[64];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/wisp-acpi-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	return 0;
}

static int remove_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Runs cmd in dir; returns its exit status and (malloc'd) output. */
static int run(const char *cmd, char **out)
{
	char full[1024];
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	FILE *p;
	int st;

	assert_non_null(buf);
	snprintf(full, sizeof(full), "cd '%s' && %s 2>&1", dir, cmd);
	p = popen(full, "r");
	assert_non_null(p);
	for (;;) {
		size_t n;

		if (cap - len < 1024) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = fread(buf + len, 1, cap - len - 1, p);
		if (!n)
			break;
		len += n;
	}
	buf[len] = 0;
	st = pclose(p);
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void require_tool(const char *tool)
{
	char cmd[128], *out;

	snprintf(cmd, sizeof(cmd), "command -v %s", tool);
	if (run(cmd, &out) != 0) {
		free(out);
		fail_msg("%s not found: install Debian's acpica-tools "
			 "(scripts/deps.sh does)",
			 tool);
	}
	free(out);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static int count(const char *h, const char *n)
{
	int c = 0;

	for (const char *p = h; (p = strstr(p, n)); p += strlen(n))
		c++;
	return c;
}

static void write_file(const char *name, const void *p, size_t n)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/* Writes the table at off to NAME.dat, disassembles it with iasl -d and
 * returns NAME.dsl (malloc'd). */
static char *disassemble(const uint8_t *t, const char *name)
{
	char file[64], cmd[128], path[128], *out, *dsl;
	int rc;

	require_tool("iasl");
	snprintf(file, sizeof(file), "%s.dat", name);
	write_file(file, t, rd32(t + 4));
	snprintf(cmd, sizeof(cmd), "iasl -d %s", file);
	rc = run(cmd, &out);
	if (rc != 0 || strstr(out, "Error") || strstr(out, "Warning"))
		fail_msg("iasl -d %s: exit %d\n%s", file, rc, out);
	free(out);
	snprintf(path, sizeof(path), "%s/%s.dsl", dir, name);
	dsl = read_all(path);
	return dsl;
}

static void build(int ncpus, int ndev, struct acpi_blob *b)
{
	static struct acpi_mmio_dev devs[ACPI_MAX_DEVICES];
	static const unsigned int gsis[] = { 5,	 6,  7,	 9,  10, 11, 12, 13,
					     14, 15, 17, 18, 19, 20, 21, 22 };
	struct acpi_config c = { ncpus, ndev, devs, 16, NULL };
	struct err e = { 0 };

	for (int i = 0; i < ndev; i++)
		devs[i] = (struct acpi_mmio_dev){ 0xd0000000ULL + 0x1000ULL * i,
						  0x1000, gsis[i] };
	if (acpi_build(&c, GPA, b, &e))
		fail_msg("acpi_build(%d cpus, %d devices): %s", ncpus, ndev,
			 e.msg);
}

static void check_header(const uint8_t *t, const char *sig, uint8_t rev)
{
	assert_memory_equal(t, sig, 4);
	assert_int_equal(t[8], rev);
	assert_int_equal(sum(t, rd32(t + 4)), 0);
	assert_memory_equal(t + 10, "WISP  ", 6);
}

/* RSDP (which this iasl cannot read alone), checksums, lengths and
 * revisions of every table, and the pointers between them. */
static void test_structure(void **state)
{
	struct acpi_blob b;
	const uint8_t *r, *x, *f;

	(void)state;
	build(4, 3, &b);
	r = b.buf + b.rsdp;
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(r[15], 2);
	assert_int_equal(sum(r, 20), 0);
	assert_int_equal(rd32(r + 20), 36);
	assert_int_equal(sum(r, 36), 0);
	assert_int_equal(rd64(r + 24), GPA + b.xsdt);
	assert_int_equal(b.rsdp % 16, 0); /* the legacy scan's step */

	x = b.buf + b.xsdt;
	check_header(x, "XSDT", 1);
	assert_int_equal(rd32(x + 4), 36 + 2 * 8);
	assert_int_equal(rd64(x + 36), GPA + b.fadt);
	assert_int_equal(rd64(x + 44), GPA + b.madt);

	f = b.buf + b.fadt;
	check_header(f, "FACP", 6);
	assert_int_equal(rd32(f + 4), 276);
	assert_int_equal(rd32(f + 40), 0); /* 32-bit DSDT: X_DSDT used */
	assert_int_equal(rd64(f + 140), GPA + b.dsdt);

	check_header(b.buf + b.madt, "APIC", 5);
	assert_int_equal(rd32(b.buf + b.madt + 4), 44 + 4 * 8 + 12 + 10 + 6);
	check_header(b.buf + b.dsdt, "DSDT", 2);
	assert_int_equal(b.dsdt + rd32(b.buf + b.dsdt + 4), b.len);
	assert_true(b.len <= ACPI_TABLES_MAX);
	free(b.buf);
}

static void test_xsdt_iasl(void **state)
{
	struct acpi_blob b;
	char *d, want[96];

	(void)state;
	build(1, 0, &b);
	d = disassemble(b.buf + b.xsdt, "xsdt");
	snprintf(want, sizeof(want), "ACPI Table Address   0 : %016llX",
		 (unsigned long long)(GPA + b.fadt));
	assert_non_null(strstr(d, want));
	snprintf(want, sizeof(want), "ACPI Table Address   1 : %016llX",
		 (unsigned long long)(GPA + b.madt));
	assert_non_null(strstr(d, want));
	free(d);
	free(b.buf);
}

/* With an IOMMU: the XSDT's third entry and the VIOT's nodes, byte by
 * byte (this iasl, 20200925, predates the VIOT and only dumps it raw):
 * node count and offset, the virtio-mmio IOMMU node, then one MMIO
 * endpoint node per translated window whose output node is the IOMMU's
 * offset. */
static void test_viot_layout(void **state)
{
	static struct acpi_mmio_dev devs[3] = {
		{ 0xd0000000ULL, 0x1000, 5 },
		{ 0xd0001000ULL, 0x1000, 6 },
		{ 0xd0002000ULL, 0x1000, 7 },
	};
	static const struct acpi_viot_endpoint eps[2] = {
		{ 0xd0000000ULL, 0 },
		{ 0xd0001000ULL, 1 },
	};
	const struct acpi_viot v = { 0xd0002000ULL, 2, eps };
	struct acpi_config c = { 1, 3, devs, 16, &v };
	struct acpi_blob b;
	struct err e = { 0 };
	const uint8_t *x, *t, *n;

	(void)state;
	assert_int_equal(acpi_build(&c, GPA, &b, &e), 0);
	x = b.buf + b.xsdt;
	assert_int_equal(rd32(x + 4), 36 + 3 * 8);
	assert_int_equal(rd64(x + 52), GPA + b.viot);
	assert_int_equal(sum(x, rd32(x + 4)), 0);
	t = b.buf + b.viot;
	check_header(t, "VIOT", 0);
	assert_int_equal(rd32(t + 4), 48 + 16 + 2 * 24);
	assert_true(b.viot + rd32(t + 4) <= b.len);
	assert_int_equal(t[36] | t[37] << 8, 3); /* node count */
	assert_int_equal(t[38] | t[39] << 8, 48); /* first node */
	n = t + 48;
	assert_int_equal(n[0], 4); /* virtio-mmio IOMMU */
	assert_int_equal(n[2] | n[3] << 8, 16);
	assert_int_equal(rd64(n + 8), 0xd0002000ULL);
	for (int i = 0; i < 2; i++) {
		n = t + 64 + 24 * i;
		assert_int_equal(n[0], 2); /* MMIO endpoint */
		assert_int_equal(n[2] | n[3] << 8, 24);
		assert_int_equal(rd32(n + 4), (uint32_t)i);
		assert_int_equal(rd64(n + 8), 0xd0000000ULL + 0x1000ULL * i);
		assert_int_equal(n[16] | n[17] << 8, 48);
	}
	/* Without an IOMMU: two XSDT entries, no VIOT. */
	free(b.buf);
	c.viot = NULL;
	assert_int_equal(acpi_build(&c, GPA, &b, &e), 0);
	assert_int_equal(b.viot, 0);
	assert_int_equal(rd32(b.buf + b.xsdt + 4), 36 + 2 * 8);
	free(b.buf);
}

static void test_fadt_iasl(void **state)
{
	static const char *want[] = {
		"Revision : 06",
		"Hardware Reduced (V5) : 1",
		"Reset Register Supported (V2) : 1",
		"Control Method Power Button (V1) : 1",
		"CMOS RTC Not Present (V5) : 1",
		"8042 Present on ports 60/64 (V2) : 0",
		"Value to cause reset : 0F",
		"SCI Interrupt : 0000",
		"PM Timer Block Address : 00000000",
	};
	struct acpi_blob b;
	char *d, *p, line[96];

	(void)state;
	build(2, 1, &b);
	d = disassemble(b.buf + b.fadt, "facp");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(d, want[i]))
			fail_msg("FADT disassembly lacks '%s':\n%s", want[i],
				 d);
	snprintf(line, sizeof(line), "DSDT Address : %016llX",
		 (unsigned long long)(GPA + b.dsdt));
	assert_non_null(strstr(d, line));
	/* Each register: SystemIO, 8 bits, byte access, its port. */
	{
		static const struct {
			const char *reg;
			unsigned int port;
		} regs[] = { { "Reset Register :", 0x602 },
			     { "Sleep Control Register :", 0x600 },
			     { "Sleep Status Register :", 0x601 } };

		for (size_t i = 0; i < 3; i++) {
			p = strstr(d, regs[i].reg);
			assert_non_null(p);
			assert_non_null(strstr(p, "Space ID : 01 [SystemIO]"));
			assert_true(strstr(p, "Space ID : 01 [SystemIO]") <
				    strstr(p, "Bit Width : 08"));
			snprintf(line, sizeof(line), "Address : %016X",
				 regs[i].port);
			assert_non_null(strstr(p, line));
			assert_true(strstr(p, line) - p < 400);
		}
	}
	free(d);
	free(b.buf);
}

static void test_madt_per_cpu_count(void **state)
{
	static const int counts[] = { 1, 2, 4, 8, 32, 33, 64 };

	(void)state;
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		int n = counts[k];
		struct acpi_blob b;
		char *d, line[64], name[16];
		const uint8_t *m, *p;
		int lapics = 0;

		build(n, 2, &b);
		snprintf(name, sizeof(name), "apic%d", n);
		d = disassemble(b.buf + b.madt, name);
		assert_int_equal(count(d, "[Processor Local APIC]"), n);
		for (int i = 0; i < n; i++) {
			snprintf(line, sizeof(line), "Local Apic ID : %02X", i);
			assert_non_null(strstr(d, line));
		}
		assert_int_equal(count(d, "[I/O APIC]"), 1);
		assert_non_null(strstr(d, "Address : FEC00000"));
		assert_non_null(strstr(d, "Local Apic Address : FEE00000"));
		assert_int_equal(count(d, "[Interrupt Source Override]"), 1);
		assert_non_null(strstr(d, "Source : 00"));
		assert_non_null(strstr(d, "Interrupt : 00000000"));
		assert_int_equal(count(d, "[Local APIC NMI]"), 1);
		assert_non_null(strstr(d, "Interrupt Input LINT : 01"));
		/* Every processor enabled, APIC IDs 0..n-1 in order. */
		m = b.buf + b.madt;
		for (p = m + 44; p < m + rd32(m + 4); p += p[1]) {
			assert_true(p[1] >= 2);
			if (p[0] != 0)
				continue;
			assert_int_equal(p[3], lapics);
			assert_int_equal(rd32(p + 4), 1);
			lapics++;
		}
		assert_int_equal(lapics, n);
		free(d);
		free(b.buf);
	}
}

/* One LNRO0005 per device with its window and its edge interrupt, the
 * GED and the button, \_S5; iasl compiles the disassembly back. */
static void test_dsdt_devices(void **state)
{
	static const int counts[] = { 0, 1, 3, 10, ACPI_MAX_DEVICES };

	(void)state;
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		int n = counts[k];
		struct acpi_blob b;
		char *d, *out, name[16], cmd[64], want[160];
		const char *p;

		build(1, n, &b);
		snprintf(name, sizeof(name), "dsdt%d", n);
		d = disassemble(b.buf + b.dsdt, name);
		assert_int_equal(count(d, "\"LNRO0005\""), n);
		assert_int_equal(count(d, "Memory32Fixed (ReadWrite,"), n);
		/* The GED's interrupt plus one per device, all edge. */
		assert_int_equal(count(d, "Interrupt (ResourceConsumer, Edge, "
					  "ActiveHigh, Exclusive, ,, )"),
				 n + 1);
		p = d;
		for (int i = 0; i < n; i++) {
			const struct acpi_mmio_dev *dev;
			static const unsigned int gsis[] = { 5,	 6,  7,	 9,
							     10, 11, 12, 13,
							     14, 15, 17, 18,
							     19, 20, 21, 22 };

			(void)dev;
			snprintf(want, sizeof(want), "Device (V%03X)", i);
			p = strstr(p, want);
			assert_non_null(p);
			snprintf(want, sizeof(want),
				 "0x%08X,         // Address Base",
				 0xd0000000u + 0x1000u * (unsigned int)i);
			assert_non_null(strstr(p, want));
			assert_true(strstr(p, want) - p < 400);
			assert_non_null(strstr(p, "0x00001000,         // "
						  "Address Length"));
			snprintf(want, sizeof(want),
				 "{\n                    0x%08X,\n", gsis[i]);
			assert_non_null(strstr(p, want));
			assert_true(strstr(p, want) - p < 700);
		}
		assert_non_null(strstr(d, "\"ACPI0013\" /* Generic Event "
					  "Device */"));
		assert_non_null(strstr(d, "\"PNP0C0C\" /* Power Button "
					  "Device */"));
		/* COM1: a HW-reduced guest maps IRQ 4 only from here. */
		p = strstr(d, "Device (COM1)");
		assert_non_null(p);
		assert_non_null(strstr(p, "\"PNP0501\""));
		assert_non_null(
			strstr(p, "IO (Decode16,\n"
				  "                    0x03F8,             "
				  "// Range Minimum\n"
				  "                    0x03F8,"));
		assert_non_null(strstr(p, "0x08,               // Length"));
		assert_non_null(
			strstr(p, "IRQNoFlags ()\n                    {4}"));
		assert_true(strstr(p, "{4}") < strstr(p, "Device ("
							 "PWRB)"));
		assert_non_null(strstr(d, "Method (_EVT, 1, NotSerialized)"));
		assert_non_null(strstr(d, "Notify (\\_SB.PWRB, 0x80)"));
		assert_non_null(strstr(d, "Name (\\_S5, Package (0x02)"));
		snprintf(cmd, sizeof(cmd), "iasl %s.dsl", name);
		if (run(cmd, &out) != 0 || !strstr(out, " 0 Errors"))
			fail_msg("iasl %s.dsl does not compile:\n%s", name,
				 out);
		free(out);
		free(d);
		free(b.buf);
	}
}

/* acpiexec runs the DSDT's methods: _S5 gives SLP_TYP 5, _EVT with the
 * GED's GSI notifies the power button, with another GSI it does not. */
static void test_dsdt_acpiexec(void **state)
{
	struct acpi_blob b;
	char *out;
	int rc;

	(void)state;
	require_tool("acpiexec");
	build(2, 2, &b);
	write_file("x-dsdt.dat", b.buf + b.dsdt, rd32(b.buf + b.dsdt + 4));
	write_file("x-facp.dat", b.buf + b.fadt, rd32(b.buf + b.fadt + 4));
	write_file("x-apic.dat", b.buf + b.madt, rd32(b.buf + b.madt + 4));
	rc = run("acpiexec -b 'evaluate \\_S5; evaluate \\_SB.GED0._EVT 16' "
		 "x-dsdt.dat x-facp.dat x-apic.dat",
		 &out);
	if (rc != 0 || !strstr(out, "[Integer] = 0000000000000005") ||
	    !strstr(out, "Received a Device Notify on [PWRB]") ||
	    !strstr(out, "Value 0x80") || strstr(out, "Error"))
		fail_msg("acpiexec: exit %d\n%s", rc, out);
	free(out);
	rc = run("acpiexec -b 'evaluate \\_SB.GED0._EVT 5' x-dsdt.dat "
		 "x-facp.dat",
		 &out);
	if (rc != 0 || strstr(out, "Device Notify") || strstr(out, "Error"))
		fail_msg("acpiexec _EVT 5: exit %d\n%s", rc, out);
	free(out);
	free(b.buf);
}

static void expect_refused(const struct acpi_config *c, const char *msg)
{
	struct acpi_blob b;
	struct err e = { 0 };

	assert_true(acpi_build(c, GPA, &b, &e) < 0);
	assert_null(b.buf);
	assert_int_equal(e.cls, ERR_CONFIG);
	if (!strstr(e.msg, msg))
		fail_msg("message '%s' should mention '%s'", e.msg, msg);
}

static void test_hostile_configs(void **state)
{
	struct acpi_mmio_dev devs[ACPI_MAX_DEVICES + 1];
	struct acpi_config c = { 1, 0, devs, 16, NULL };

	(void)state;
	for (int i = 0; i <= ACPI_MAX_DEVICES; i++)
		devs[i] = (struct acpi_mmio_dev){ 0xd0000000ULL + 0x1000ULL * i,
						  0x1000, (unsigned int)i };
	c.ncpus = 65;
	expect_refused(&c, "65 vCPUs");
	c.ncpus = 0;
	expect_refused(&c, "0 vCPUs");
	c.ncpus = -1;
	expect_refused(&c, "-1 vCPUs");
	c.ncpus = 1;
	c.nr_devices = ACPI_MAX_DEVICES + 1;
	expect_refused(&c, "17 virtio-mmio devices");
	c.nr_devices = -1;
	expect_refused(&c, "virtio-mmio devices");

	c.nr_devices = 2;
	devs[0].gsi = 5;
	devs[1].gsi = 5;
	expect_refused(&c, "interrupt 5");
	devs[1].gsi = 24;
	expect_refused(&c, "interrupt 24");
	devs[1].gsi = 4; /* COM1's */
	expect_refused(&c, "interrupt 4");
	devs[1].gsi = 16; /* the GED's */
	expect_refused(&c, "interrupt 16");
	devs[1].gsi = 6;
	devs[1].base = devs[0].base + 0x800;
	expect_refused(&c, "overlaps device 0");
	devs[1].base = 0xfffff000ULL;
	devs[1].size = 0x2000;
	expect_refused(&c, "32-bit space");
	devs[1].size = 0;
	expect_refused(&c, "32-bit space");
	devs[1].base = UINT64_MAX - 0xfff;
	devs[1].size = 0x1000;
	expect_refused(&c, "32-bit space");
	devs[1] = (struct acpi_mmio_dev){ 0xd0001000ULL, 0x1000, 6 };
	c.ged_gsi = 24;
	expect_refused(&c, "GED interrupt 24");
	c.ged_gsi = 0;
	expect_refused(&c, "GED interrupt 0");
	c.ged_gsi = 16;
	{
		struct acpi_blob b;
		struct err e = { 0 };

		assert_int_equal(acpi_build(&c, GPA, &b, &e), 0);
		free(b.buf);
	}
}

static void test_viot_refused(void **state)
{
	static struct acpi_mmio_dev devs[2] = {
		{ 0xd0000000ULL, 0x1000, 5 },
		{ 0xd0001000ULL, 0x1000, 6 },
	};
	struct acpi_viot_endpoint eps[2] = {
		{ 0xd0000000ULL, 0 },
		{ 0xd0000000ULL, 1 },
	};
	struct acpi_viot v = { 0xd0005000ULL, 1, eps };
	struct acpi_config c = { 1, 2, devs, 16, &v };

	(void)state;
	expect_refused(&c, "IOMMU at 0xd0005000");
	v.iommu_base = 0xd0001000ULL;
	eps[0].base = 0xd0009000ULL;
	expect_refused(&c, "endpoint 0 at 0xd0009000");
	eps[0].base = 0xd0001000ULL; /* the IOMMU itself */
	expect_refused(&c, "not a translated window");
	eps[0].base = 0xd0000000ULL;
	v.nr_endpoints = 2;
	expect_refused(&c, "named twice");
	v.nr_endpoints = -1;
	expect_refused(&c, "-1 endpoints");
}

/* PkgLength encodings at each size boundary, read back by iasl from a
 * table whose buffers need 1-, 2- and 3-byte lengths. */
static void test_aml_pkglength(void **state)
{
	static const size_t sizes[] = { 1,   59,   60,	 61,   62,   63,
					200, 4086, 4087, 4090, 70000 };
	static uint8_t data[70000];
	struct aml a;
	char *d, want[64];

	(void)state;
	/* Package with k zero bytes of body after NumElements. */
	for (size_t body = 60; body <= 64; body++) {
		aml_init(&a);
		aml_package(&a, 0);
		for (size_t i = 1; i < body; i++)
			aml_byte(&a, 0);
		aml_close(&a);
		assert_int_equal(aml_finish(&a), 0);
		assert_int_equal(a.buf[0], 0x12);
		if (body + 1 <= 63) {
			assert_int_equal(a.buf[1], body + 1);
			assert_int_equal(a.len, 2 + body);
		} else {
			size_t total = body + 2;

			assert_int_equal(a.buf[1], 0x40 | (total & 0xf));
			assert_int_equal(a.buf[2], total >> 4);
			assert_int_equal(a.len, 3 + body);
		}
		aml_release(&a);
	}

	aml_init(&a);
	aml_raw(&a, (uint8_t[36]){ 0 }, 36);
	aml_scope(&a, "\\_SB");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char n[8];

		snprintf(n, sizeof(n), "B%03zu", i);
		aml_name(&a, n);
		aml_buffer(&a, data, sizes[i]);
	}
	aml_name(&a, "PKG0");
	aml_package(&a, 4);
	aml_int(&a, 0x1234);
	aml_int(&a, 0x12345678);
	aml_int(&a, 0x123456789aULL);
	aml_string(&a, "wisp");
	aml_close(&a);
	aml_close(&a);
	assert_int_equal(aml_finish(&a), 0);
	memcpy(a.buf, "SSDT", 4);
	a.buf[4] = (uint8_t)a.len;
	a.buf[5] = (uint8_t)(a.len >> 8);
	a.buf[6] = (uint8_t)(a.len >> 16);
	a.buf[8] = 2;
	a.buf[9] = (uint8_t)-sum(a.buf, a.len);
	d = disassemble(a.buf, "ssdt");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(want, sizeof(want), "Name (B%03zu, Buffer (0x%02zX)",
			 i, sizes[i]);
		if (sizes[i] > 0xff)
			snprintf(want, sizeof(want),
				 "Name (B%03zu, Buffer (0x%04zX)", i, sizes[i]);
		if (sizes[i] > 0xffff)
			snprintf(want, sizeof(want),
				 "Name (B%03zu, Buffer (0x%08zX)", i, sizes[i]);
		if (sizes[i] == 1) /* OneOp */
			snprintf(want, sizeof(want),
				 "Name (B%03zu, Buffer (One)", i);
		if (!strstr(d, want))
			fail_msg("disassembly lacks '%s':\n%.3000s", want, d);
	}
	assert_non_null(strstr(d, "0x1234"));
	assert_non_null(strstr(d, "0x12345678"));
	assert_non_null(strstr(d, "0x000000123456789A"));
	assert_non_null(strstr(d, "\"wisp\""));
	free(d);
	aml_release(&a);
}

static void test_aml_errors(void **state)
{
	struct aml a;
	struct aml_res r;

	(void)state;
	aml_init(&a);
	aml_name_int(&a, "lower", 1);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_release(&a);

	aml_init(&a);
	aml_name_int(&a, "TOOLONG", 1);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_release(&a);

	aml_init(&a);
	aml_name_int(&a, "1ABC", 1);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_release(&a);

	aml_init(&a);
	aml_name_int(&a, "\\_SB..X", 1);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_release(&a);

	aml_init(&a);
	aml_close(&a);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_release(&a);

	aml_init(&a);
	aml_scope(&a, "\\_SB");
	assert_int_equal(aml_finish(&a), -EINVAL); /* not closed */
	aml_release(&a);

	aml_init(&a);
	for (int i = 0; i <= AML_MAX_DEPTH; i++)
		aml_scope(&a, "\\_SB");
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_release(&a);

	aml_init(&a);
	aml_res_init(&r);
	for (int i = 0; i < 40; i++)
		aml_res_memory32_fixed(&r, 0, 0x1000, true);
	aml_res_emit(&a, &r);
	assert_int_equal(aml_finish(&a), -E2BIG);
	aml_release(&a);

	aml_init(&a);
	aml_res_init(&r);
	aml_res_irq_noflags(&r, 16);
	aml_res_emit(&a, &r);
	assert_int_equal(aml_finish(&a), -E2BIG);
	aml_release(&a);

	/* Multi-segment names: dual and multi prefixes. */
	aml_init(&a);
	aml_namestring(&a, "\\_SB.PWRB");
	assert_int_equal(aml_finish(&a), 0);
	assert_int_equal(a.len, 10);
	assert_memory_equal(a.buf, "\\\x2e_SB_PWRB", 10);
	aml_release(&a);
	aml_init(&a);
	aml_namestring(&a, "A.B.C");
	assert_int_equal(a.len, 14);
	assert_memory_equal(a.buf,
			    "\x2f\x03"
			    "A___B___C___",
			    14);
	aml_release(&a);
}

/* The layout: windows run out at LAYOUT_MAX_WINDOWS; with ACPI the
 * command line carries no device; the tables land where the zero page
 * and the PVH start info say. */
static void test_layout_limits_and_cmdline(void **state)
{
	struct layout l = { 0 };
	struct vm_config cfg;
	struct window *w;
	struct err e = { 0 };
	char *s;

	(void)state;
	for (int i = 0; i < LAYOUT_MAX_WINDOWS; i++)
		assert_int_equal(layout_alloc_window(&l, &w, &e), 0);
	assert_int_equal(layout_alloc_window(&l, &w, &e), -ENOSPC);
	assert_null(w);
	assert_int_equal(e.cls, ERR_CONFIG);
	assert_non_null(strstr(e.msg, "too many virtio devices"));

	vm_config_defaults(&cfg);
	assert_true(cfg.acpi);
	assert_int_equal(layout_max_cpus(&cfg), 64);
	assert_int_equal(layout_cmdline(&l, &cfg, &s, &e), 0);
	assert_null(strstr(s, "virtio_mmio"));
	free(s);
	cfg.acpi = false;
	assert_int_equal(layout_max_cpus(&cfg), MPTABLE_MAX_CPUS);
	assert_int_equal(layout_cmdline(&l, &cfg, &s, &e), 0);
	assert_int_equal(count(s, "virtio_mmio.device=4K@0x"),
			 LAYOUT_MAX_WINDOWS);
	free(s);
}

static void test_layout_writes_tables(void **state)
{
	static const enum boot_entry_mode modes[] = { BOOT_ENTRY_LONG64,
						      BOOT_ENTRY_PVH32 };
	static const int cpus[] = { 2, 33, 64 };

	(void)state;
	for (size_t k = 0; k < 2; k++)
		for (size_t c = 0; c < 3; c++) {
			struct guest_mem m;
			struct layout l = { 0 };
			struct vm_config cfg;
			struct boot_entry entry = { .mode = modes[k] };
			struct window *w;
			struct err e = { 0 };
			const uint8_t *p;
			uint64_t rsdp;

			assert_int_equal(guest_mem_init(&m, 16 << 20, &e), 0);
			vm_config_defaults(&cfg);
			cfg.cpus = cpus[c];
			assert_int_equal(layout_alloc_window(&l, &w, &e), 0);
			assert_int_equal(layout_alloc_window(&l, &w, &e), 0);
			w->announce = false; /* a server's plain window */
			assert_int_equal(layout_write_tables(&l, &m, &cfg,
							     &entry, &e),
					 0);
			p = guest_mem_ptr(&m, ACPI_TABLES_GPA, 36);
			assert_non_null(p);
			assert_memory_equal(p, "RSD PTR ", 8);
			if (modes[k] == BOOT_ENTRY_LONG64)
				p = guest_mem_ptr(&m, LAYOUT_ZERO_PAGE + 0x70,
						  8);
			else
				p = guest_mem_ptr(
					&m, LAYOUT_PVH_START_INFO + 32, 8);
			rsdp = rd64(p);
			assert_int_equal(rsdp, ACPI_TABLES_GPA);
			/* The MP table only while it holds every vCPU. */
			p = guest_mem_ptr(&m, LAYOUT_MPTABLE, 4);
			assert_int_equal(memcmp(p, "_MP_", 4) == 0,
					 cpus[c] <= MPTABLE_MAX_CPUS);
			/* One device announced, not the unannounced one. */
			{
				const uint8_t *x, *f, *d;
				uint32_t dl;
				int n = 0;

				x = guest_mem_ptr(
					&m,
					rd64(p = guest_mem_ptr(&m, rsdp + 24,
							       8)),
					52);
				f = guest_mem_ptr(&m, rd64(x + 36), 276);
				d = guest_mem_ptr(&m, rd64(f + 140), 36);
				dl = rd32(d + 4);
				d = guest_mem_ptr(&m, rd64(f + 140), dl);
				for (uint32_t i = 0; i + 8 <= dl; i++)
					if (!memcmp(d + i, "LNRO0005", 8))
						n++;
				assert_int_equal(n, 1);
			}
			guest_mem_destroy(&m);
		}
}

/* --iommu's layout: the IOMMU's window and the translated ones reach the
 * VIOT (endpoint ID = window index); an untranslated window does not. */
static void test_layout_viot(void **state)
{
	struct guest_mem m;
	struct layout l = { 0 };
	struct vm_config cfg;
	struct boot_entry entry = { .mode = BOOT_ENTRY_LONG64 };
	struct window *w;
	struct err e = { 0 };
	const uint8_t *x, *t;

	(void)state;
	assert_int_equal(guest_mem_init(&m, 16 << 20, &e), 0);
	vm_config_defaults(&cfg);
	assert_int_equal(layout_alloc_window(&l, &w, &e), 0);
	w->iommu = true;
	assert_int_equal(layout_alloc_window(&l, &w, &e), 0);
	w->translated = true;
	assert_int_equal(layout_alloc_window(&l, &w, &e), 0);
	assert_int_equal(layout_alloc_window(&l, &w, &e), 0);
	w->translated = true;
	assert_int_equal(layout_write_tables(&l, &m, &cfg, &entry, &e), 0);
	x = guest_mem_ptr(&m, rd64(guest_mem_ptr(&m, ACPI_TABLES_GPA + 24, 8)),
			  36 + 24);
	assert_int_equal(rd32(x + 4), 36 + 24);
	t = guest_mem_ptr(&m, rd64(x + 52), 48 + 16 + 2 * 24);
	assert_memory_equal(t, "VIOT", 4);
	assert_int_equal(t[36], 3);
	assert_int_equal(rd64(t + 48 + 8), 0xd0000000ULL);
	assert_int_equal(rd32(t + 64 + 4), 1);
	assert_int_equal(rd64(t + 64 + 8), 0xd0001000ULL);
	assert_int_equal(rd32(t + 88 + 4), 3);
	assert_int_equal(rd64(t + 88 + 8), 0xd0003000ULL);
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_xsdt_iasl),
		cmocka_unit_test(test_fadt_iasl),
		cmocka_unit_test(test_viot_layout),
		cmocka_unit_test(test_viot_refused),
		cmocka_unit_test(test_layout_viot),
		cmocka_unit_test(test_madt_per_cpu_count),
		cmocka_unit_test(test_dsdt_devices),
		cmocka_unit_test(test_dsdt_acpiexec),
		cmocka_unit_test(test_hostile_configs),
		cmocka_unit_test(test_aml_pkglength),
		cmocka_unit_test(test_aml_errors),
		cmocka_unit_test(test_layout_limits_and_cmdline),
		cmocka_unit_test(test_layout_writes_tables),
	};

	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
