/* SPDX-License-Identifier: MIT */
/*
 * A small builder for ACPI Machine Language (ACPI 6.x, chapter 20): the
 * encodings wisp's DSDT needs and nothing more. Terms are appended to a
 * growing byte buffer; constructs with a PkgLength (scopes, devices,
 * methods, packages, buffers, If) are opened, filled and closed, and the
 * close inserts the length in front of the contents.
 *
 * Errors latch: after the first failure (out of memory, a bad name, an
 * unbalanced close) every call is a no-op and aml_finish() returns the
 * error, so a table is built without checking each call.
 *
 * Owns: buf (malloc'd); aml_release() frees it.
 */
#ifndef WISP_ARCH_X86_ACPI_AML_H
#define WISP_ARCH_X86_ACPI_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 8

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int err; /* first error, -errno */
	int depth;
	size_t open[AML_MAX_DEPTH]; /* where each open construct's body starts */
};

void aml_init(struct aml *a);
void aml_release(struct aml *a);
/* 0, or the first error (-ENOMEM, -EINVAL for a bad name or an
 * unbalanced open/close). */
int aml_finish(const struct aml *a);

void aml_byte(struct aml *a, uint8_t v);
void aml_raw(struct aml *a, const void *p, size_t n);

/* NameString: optional leading '\' (root) or '^'s (parent), then
 * dot-separated segments of 1..4 characters [A-Z0-9_] (the first not a
 * digit), padded with '_'. */
void aml_namestring(struct aml *a, const char *path);
/* The shortest integer encoding (ZeroOp, OneOp, Byte/Word/DWord/QWord
 * prefix). */
void aml_int(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* Name(path, <the next term>) */
void aml_name(struct aml *a, const char *path);
/* Name(path, integer) / Name(path, string) in one call. */
void aml_name_int(struct aml *a, const char *path, uint64_t v);
void aml_name_string(struct aml *a, const char *path, const char *s);

/* Constructs closed by aml_close(). */
void aml_scope(struct aml *a, const char *path);
void aml_device(struct aml *a, const char *path);
void aml_method(struct aml *a, const char *path, int nargs, bool serialized);
void aml_package(struct aml *a, uint8_t nelems);
void aml_if(struct aml *a);
void aml_close(struct aml *a);

/* Buffer(n){bytes} in one call. */
void aml_buffer(struct aml *a, const void *p, size_t n);

/* Operators used by the DSDT's methods. */
void aml_lequal(struct aml *a); /* LEqual(<next>, <next>) */
void aml_notify(struct aml *a, const char *path, uint64_t value);
void aml_arg(struct aml *a, int n); /* Arg0..Arg6 */
void aml_return(struct aml *a); /* Return(<next>) */

/* A resource template (ACPI 6.x 6.4): small and large descriptors
 * appended to a fixed buffer, closed by an end tag. */
#define AML_RES_MAX 256
struct aml_res {
	uint8_t b[AML_RES_MAX];
	size_t len;
	bool overflow;
};

void aml_res_init(struct aml_res *r);
void aml_res_memory32_fixed(struct aml_res *r, uint32_t base, uint32_t len,
			    bool writable);
/* Extended interrupt descriptor, one GSI, resource consumer. */
void aml_res_interrupt(struct aml_res *r, uint32_t gsi, bool edge,
		       bool active_low, bool shared);
/* IRQNoFlags(){irq}: the small ISA descriptor (edge, active high,
 * exclusive), irq 0..15. */
void aml_res_irq_noflags(struct aml_res *r, unsigned int irq);
/* IO descriptor with 16-bit decode. */
void aml_res_io(struct aml_res *r, uint16_t min, uint16_t max, uint8_t align,
		uint8_t len);
/* Appends the end tag and the template as Buffer() to a; an overflowed
 * template sets a's error (-E2BIG). */
void aml_res_emit(struct aml *a, struct aml_res *r);

#endif
