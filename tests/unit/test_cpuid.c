// SPDX-License-Identifier: MIT
/* The CPUID table built from KVM's supported set: topology consistent
 * with the vCPU count, TSC-deadline, brand string, the PV feature filter,
 * the timing leaf, and the XSAVE leaf left as KVM gave it. Inputs are synthetic supported sets shaped like
 * KVM's (Intel and AMD). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/cpu.h"

#define SIG KVM_CPUID_FLAG_SIGNIFCANT_INDEX

/* Shaped like this host's KVM_GET_SUPPORTED_CPUID, with the TSC-deadline
 * bit clear as KVMs that leave it to the VMM report it. */
static const struct kvm_cpuid_entry2 intel_set[] = {
	{ .function = 0,
	  .eax = 0x24,
	  .ebx = 0x756e6547,
	  .ecx = 0x6c65746e,
	  .edx = 0x49656e69 },
	{ .function = 1,
	  .eax = 0xa0671,
	  .ebx = 0x01020800,
	  .ecx = 0x80202000,
	  .edx = 0x0f8bfbff },
	{ .function = 4,
	  .index = 0,
	  .flags = SIG,
	  .eax = 0x04000121,
	  .ebx = 0x02c0003f,
	  .ecx = 0x3f },
	{ .function = 4, .index = 2, .flags = SIG, .eax = 0x04000143 },
	{ .function = 4, .index = 3, .flags = SIG, .eax = 0x04004163 },
	{ .function = 4, .index = 4, .flags = SIG },
	{ .function = 0xb, .index = 0, .flags = SIG, .edx = 1 },
	{ .function = 0x1f, .index = 0, .flags = SIG, .edx = 1 },
	{ .function = 0x80000000, .eax = 0x80000008 },
	{ .function = 0x80000002 },
	{ .function = 0x80000003 },
	{ .function = 0x80000004 },
	{ .function = 0x80000008, .eax = 0x3930, .ecx = 0x1234 },
	{ .function = 0x40000000,
	  .eax = 0x40000001,
	  .ebx = 0x4b4d564b,
	  .ecx = 0x564b4d56,
	  .edx = 0x4d },
	{ .function = 0x40000001, .eax = 0x0101fffb, .edx = 1 },
};

static const struct kvm_cpuid_entry2 amd_set[] = {
	{ .function = 0,
	  .eax = 0x10,
	  .ebx = 0x68747541,
	  .ecx = 0x444d4163,
	  .edx = 0x69746e65 },
	{ .function = 1, .eax = 0x800f12, .ebx = 0x00000800, .ecx = 0x80200000 },
	{ .function = 0xb, .index = 0, .flags = SIG },
	{ .function = 0x80000000, .eax = 0x8000001f },
	{ .function = 0x80000008, .ecx = 0x7007 },
	{ .function = 0x8000001d, .index = 0, .flags = SIG, .eax = 0x00004121 },
	{ .function = 0x8000001d, .index = 3, .flags = SIG, .eax = 0x0003c163 },
	{ .function = 0x8000001e, .eax = 7, .ebx = 0x105, .ecx = 0x302 },
};

static struct kvm_cpuid2 *table(const struct kvm_cpuid_entry2 *e, uint32_t n)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(*e));

	assert_non_null(c);
	c->nent = n;
	memcpy(c->entries, e, n * sizeof(*e));
	return c;
}

static const struct kvm_cpuid_entry2 *get(const struct kvm_cpuid2 *c,
					  uint32_t fn, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn &&
		    c->entries[i].index == index)
			return &c->entries[i];
	return NULL;
}

static struct kvm_cpuid2 *build_intel(const struct cpuid_host *h, int id, int n)
{
	struct kvm_cpuid2 *s =
		table(intel_set, sizeof(intel_set) / sizeof(intel_set[0]));
	struct kvm_cpuid2 *c = cpuid_build(s, h, id, n);

	free(s);
	assert_non_null(c);
	return c;
}

static void test_tsc_deadline_only_with_cap(void **state)
{
	struct cpuid_host h = { 0 };
	struct kvm_cpuid2 *c = build_intel(&h, 0, 1);

	assert_int_equal(get(c, 1, 0)->ecx & (1u << 24), 0);
	assert_int_not_equal(get(c, 1, 0)->ecx & (1u << 31), 0);
	free(c);
	h.tsc_deadline = true;
	c = build_intel(&h, 0, 1);
	assert_int_not_equal(get(c, 1, 0)->ecx & (1u << 24), 0);
	free(c);
}

static void test_topology_matches_cpus(void **state)
{
	struct cpuid_host h = { 0 };
	struct kvm_cpuid2 *c = build_intel(&h, 2, 3);
	const struct kvm_cpuid_entry2 *en;

	en = get(c, 1, 0);
	assert_int_equal(en->ebx >> 24, 2); /* initial APIC ID */
	assert_int_equal((en->ebx >> 16) & 0xff, 3);
	assert_int_not_equal(en->edx & (1u << 28), 0);
	/* SMT level: 1 thread; core level: 3 cores, shift 2; terminator. */
	en = get(c, 0xb, 0);
	assert_non_null(en);
	assert_int_equal(en->eax, 0);
	assert_int_equal(en->ebx, 1);
	assert_int_equal(en->ecx, 0x100);
	assert_int_equal(en->edx, 2);
	en = get(c, 0xb, 1);
	assert_non_null(en);
	assert_int_equal(en->eax, 2);
	assert_int_equal(en->ebx, 3);
	assert_int_equal(en->ecx, 0x201);
	assert_int_equal(en->edx, 2);
	assert_true(en->flags & SIG);
	en = get(c, 0xb, 2);
	assert_non_null(en);
	assert_int_equal(en->ecx & 0xff00, 0); /* invalid level ends it */
	assert_null(get(c, 0x1f, 0));
	/* Leaf 4: cores per package from the ID width; L1 private, L3
	 * shared by all four IDs. */
	assert_int_equal(get(c, 4, 0)->eax >> 26, 3);
	assert_int_equal((get(c, 4, 0)->eax >> 14) & 0xfff, 0);
	assert_int_equal((get(c, 4, 3)->eax >> 14) & 0xfff, 3);
	assert_int_equal(get(c, 4, 3)->eax & 0x3fff, 0x0163);
	assert_int_equal(get(c, 4, 4)->eax, 0);
	/* Intel: 0x80000008 ECX is not AMD's core count. */
	assert_int_equal(get(c, 0x80000008, 0)->ecx, 0x1234);
	free(c);

	c = build_intel(&h, 0, 1);
	assert_int_equal(get(c, 1, 0)->edx & (1u << 28), 0);
	assert_int_equal(get(c, 0xb, 1)->eax, 0);
	assert_int_equal(get(c, 0xb, 1)->ebx, 1);
	assert_int_equal(get(c, 4, 3)->eax >> 14, 0);
	free(c);
}

static void test_amd_topology(void **state)
{
	struct cpuid_host h = { 0 };
	struct kvm_cpuid2 *s =
		table(amd_set, sizeof(amd_set) / sizeof(amd_set[0]));
	struct kvm_cpuid2 *c = cpuid_build(s, &h, 1, 2);

	assert_non_null(c);
	assert_int_equal(get(c, 0x80000008, 0)->ecx & 0xf0ff, (1u << 12) | 1);
	assert_int_equal((get(c, 0x8000001d, 0)->eax >> 14) & 0xfff, 0);
	assert_int_equal((get(c, 0x8000001d, 3)->eax >> 14) & 0xfff, 1);
	assert_int_equal(get(c, 0x8000001e, 0)->eax, 1);
	assert_int_equal(get(c, 0x8000001e, 0)->ebx, 1);
	assert_int_equal(get(c, 0x8000001e, 0)->ecx, 0);
	assert_int_equal(get(c, 0xb, 1)->ebx, 2);
	free(c);
	free(s);
}

static void test_brand_string(void **state)
{
	struct cpuid_host h = { 0 };
	const char *name = "wisp test CPU @ 1.00GHz";
	struct kvm_cpuid2 *c;
	char got[49] = { 0 };

	memcpy(h.brand, name, strlen(name) + 1);
	c = build_intel(&h, 0, 1);
	for (uint32_t f = 0; f < 3; f++) {
		const struct kvm_cpuid_entry2 *en = get(c, 0x80000002 + f, 0);

		assert_non_null(en);
		memcpy(got + f * 16, &en->eax, 4);
		memcpy(got + f * 16 + 4, &en->ebx, 4);
		memcpy(got + f * 16 + 8, &en->ecx, 4);
		memcpy(got + f * 16 + 12, &en->edx, 4);
	}
	assert_string_equal(got, name);
	free(c);
	/* No host brand: KVM's (zeroed) leaves stay. */
	memset(&h, 0, sizeof(h));
	c = build_intel(&h, 0, 1);
	assert_int_equal(get(c, 0x80000002, 0)->eax, 0);
	free(c);
}

static void test_pv_features_and_timing(void **state)
{
	struct cpuid_host h = { 0 };
	struct kvm_cpuid2 *c = build_intel(&h, 0, 1);
	uint32_t pv = get(c, 0x40000001, 0)->eax;

	/* clocksource2, PV EOI, PV unhalt, stable bit kept; MSI_EXT_DEST_ID
	 * (15), HC_MAP_GPA_RANGE (16) dropped; no realtime hint. */
	assert_int_not_equal(pv & (1u << 3), 0);
	assert_int_not_equal(pv & (1u << 6), 0);
	assert_int_not_equal(pv & (1u << 7), 0);
	assert_int_not_equal(pv & (1u << 24), 0);
	assert_int_equal(pv & (1u << 15), 0);
	assert_int_equal(pv & (1u << 16), 0);
	assert_int_equal(get(c, 0x40000001, 0)->edx, 0);
	assert_int_equal(get(c, 0x40000000, 0)->eax, 0x40000001);
	assert_null(get(c, 0x40000010, 0));
	free(c);

	h.tsc_khz = 2100000;
	c = build_intel(&h, 0, 1);
	assert_int_equal(get(c, 0x40000000, 0)->eax, 0x40000010);
	assert_int_equal(get(c, 0x40000000, 0)->ebx, 0x4b4d564b);
	assert_non_null(get(c, 0x40000010, 0));
	assert_int_equal(get(c, 0x40000010, 0)->eax, 2100000);
	assert_int_equal(get(c, 0x40000010, 0)->ebx, 1000000);
	free(c);
}

/* Async PF (4), its nested delivery (10) and the page-ready interrupt
 * (14) are offered by default; no_async_pf drops exactly those three. */
static void test_async_pf_switch(void **state)
{
	struct cpuid_host h = { 0 };
	struct kvm_cpuid2 *c = build_intel(&h, 0, 1);
	uint32_t on = get(c, 0x40000001, 0)->eax, off;
	const uint32_t apf = (1u << 4) | (1u << 10) | (1u << 14);

	free(c);
	assert_int_equal(on & apf, apf);
	h.no_async_pf = true;
	c = build_intel(&h, 0, 1);
	off = get(c, 0x40000001, 0)->eax;
	free(c);
	assert_int_equal(off & apf, 0);
	assert_int_equal(off, on & ~apf);
}

/* Leaf 0xd as the rig's L1 KVM reports it (x87, SSE, AVX; XSAVEOPT and
 * XGETBV1, no XSAVEC/XSAVES). KVM itself rewrites EBX of sub-leaves 0 and
 * 1 from the guest's XCR0 and XSS whenever they change, and Linux checks
 * them against the sizes and offsets of the sub-leaves; any edit of ours
 * would be stale after the guest's XSETBV. So every sub-leaf must come
 * out exactly as KVM gave it, for every vCPU. */
static void test_xsave_leaf_untouched(void **state)
{
	static const struct kvm_cpuid_entry2 xsave[] = {
		{ .function = 0xd,
		  .index = 0,
		  .flags = SIG,
		  .eax = 7,
		  .ebx = 0x340,
		  .ecx = 0x340 },
		{ .function = 0xd, .index = 1, .flags = SIG, .eax = 5 },
		{ .function = 0xd,
		  .index = 2,
		  .flags = SIG,
		  .eax = 0x100,
		  .ebx = 0x240 },
	};
	const uint32_t nx = sizeof(xsave) / sizeof(xsave[0]);
	const uint32_t na = sizeof(amd_set) / sizeof(amd_set[0]);
	struct kvm_cpuid_entry2 set[sizeof(amd_set) / sizeof(amd_set[0]) +
				    sizeof(xsave) / sizeof(xsave[0])];
	struct cpuid_host h = { .tsc_deadline = true, .tsc_khz = 2000000 };
	struct kvm_cpuid2 *s, *c;

	memcpy(set, amd_set, sizeof(amd_set));
	memcpy(set + na, xsave, sizeof(xsave));
	/* a leaf 0 that reaches 0xd */
	set[0].eax = 0xd;
	s = table(set, na + nx);
	for (int n = 1; n <= 8; n *= 2) {
		for (int id = 0; id < n; id++) {
			c = cpuid_build(s, &h, id, n);
			assert_non_null(c);
			for (uint32_t i = 0; i < nx; i++) {
				const struct kvm_cpuid_entry2 *en =
					get(c, 0xd, xsave[i].index);

				assert_non_null(en);
				assert_memory_equal(en, &xsave[i], sizeof(*en));
			}
			free(c);
		}
	}
	free(s);
}

static void test_bad_ids_refused(void **state)
{
	struct cpuid_host h = { 0 };
	struct kvm_cpuid2 *s =
		table(intel_set, sizeof(intel_set) / sizeof(intel_set[0]));

	assert_null(cpuid_build(s, &h, 2, 2));
	assert_null(cpuid_build(s, &h, -1, 2));
	assert_null(cpuid_build(s, &h, 0, 0));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tsc_deadline_only_with_cap),
		cmocka_unit_test(test_topology_matches_cpus),
		cmocka_unit_test(test_amd_topology),
		cmocka_unit_test(test_brand_string),
		cmocka_unit_test(test_pv_features_and_timing),
		cmocka_unit_test(test_async_pf_switch),
		cmocka_unit_test(test_xsave_leaf_untouched),
		cmocka_unit_test(test_bad_ids_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
