// SPDX-License-Identifier: MIT
#include "arch/x86/acpi/aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_METHOD_OP 0x14
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP 0x82 /* after the ext prefix */
#define AML_ROOT_CHAR '\\'
#define AML_PARENT_CHAR '^'
#define AML_ARG0_OP 0x68
#define AML_NOTIFY_OP 0x86
#define AML_LEQUAL_OP 0x93
#define AML_IF_OP 0xa0
#define AML_RETURN_OP 0xa4

#define RES_END_TAG 0x79
#define RES_IRQ_NOFLAGS 0x22 /* small item 0x04, length 2 */
#define RES_IO 0x47 /* small item 0x08, length 7 */
#define RES_MEMORY32_FIXED 0x86
#define RES_EXT_INTERRUPT 0x89

/* A PkgLength is at most 4 bytes and encodes up to 2^28 - 1. */
#define PKG_MAX ((1u << 28) - 1)

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_release(struct aml *a)
{
	free(a->buf);
	aml_init(a);
}

int aml_finish(const struct aml *a)
{
	if (a->err)
		return a->err;
	return a->depth ? -EINVAL : 0;
}

static bool reserve(struct aml *a, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (a->err)
		return false;
	if (a->len + n <= a->cap)
		return true;
	cap = a->cap ? a->cap : 256;
	while (cap < a->len + n)
		cap *= 2;
	p = realloc(a->buf, cap);
	if (!p) {
		a->err = -ENOMEM;
		return false;
	}
	a->buf = p;
	a->cap = cap;
	return true;
}

void aml_raw(struct aml *a, const void *p, size_t n)
{
	if (!reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t v)
{
	aml_raw(a, &v, 1);
}

static void put_le(struct aml *a, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

static bool seg_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

void aml_namestring(struct aml *a, const char *path)
{
	char segs[255][4];
	int n = 0;
	const char *p = path;

	if (a->err)
		return;
	if (*p == AML_ROOT_CHAR) {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == AML_PARENT_CHAR) {
			aml_byte(a, AML_PARENT_CHAR);
			p++;
		}
	}
	while (*p) {
		int k = 0;

		if (n == 255)
			goto bad;
		while (*p && *p != '.') {
			if (k == 4 || !seg_char(*p, k == 0))
				goto bad;
			segs[n][k++] = *p++;
		}
		if (!k)
			goto bad;
		for (; k < 4; k++)
			segs[n][k] = '_';
		n++;
		if (*p == '.' && !*++p)
			goto bad;
	}
	if (n == 0) {
		aml_byte(a, 0); /* NullName */
		return;
	}
	if (n == 2)
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	else if (n > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)n);
	}
	aml_raw(a, segs, (size_t)n * 4);
	return;
bad:
	a->err = -EINVAL;
}

void aml_int(struct aml *a, uint64_t v)
{
	if (v == 0 || v == 1) {
		aml_byte(a, (uint8_t)v); /* ZeroOp, OneOp */
	} else if (v <= UINT8_MAX) {
		aml_byte(a, AML_BYTE_PREFIX);
		put_le(a, v, 1);
	} else if (v <= UINT16_MAX) {
		aml_byte(a, AML_WORD_PREFIX);
		put_le(a, v, 2);
	} else if (v <= UINT32_MAX) {
		aml_byte(a, AML_DWORD_PREFIX);
		put_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		put_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p > 0x7f) {
			if (!a->err)
				a->err = -EINVAL;
			return;
		}
	aml_byte(a, AML_STRING_PREFIX);
	aml_raw(a, s, strlen(s) + 1);
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, path);
}

void aml_name_int(struct aml *a, const char *path, uint64_t v)
{
	aml_name(a, path);
	aml_int(a, v);
}

void aml_name_string(struct aml *a, const char *path, const char *s)
{
	aml_name(a, path);
	aml_string(a, s);
}

static void open_body(struct aml *a)
{
	if (a->err)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		a->err = -EINVAL;
		return;
	}
	a->open[a->depth++] = a->len;
}

/* Inserts the PkgLength of everything written since the matching open
 * in front of it. The length counts its own bytes (20.2.4). */
void aml_close(struct aml *a)
{
	size_t start, body, total;
	uint8_t enc[4];
	int n;

	if (a->err)
		return;
	if (!a->depth) {
		a->err = -EINVAL;
		return;
	}
	start = a->open[--a->depth];
	body = a->len - start;
	if (body + 1 <= 0x3f) {
		n = 1;
		total = body + 1;
		enc[0] = (uint8_t)total;
	} else {
		for (n = 2; n <= 4; n++)
			if (body + (size_t)n < (1u << (4 + 8 * (n - 1))))
				break;
		total = body + (size_t)n;
		if (n > 4 || total > PKG_MAX) {
			a->err = -E2BIG;
			return;
		}
		enc[0] = (uint8_t)((n - 1) << 6 | (total & 0x0f));
		for (int i = 1; i < n; i++)
			enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	if (!reserve(a, (size_t)n))
		return;
	memmove(a->buf + start + n, a->buf + start, body);
	memcpy(a->buf + start, enc, (size_t)n);
	a->len += (size_t)n;
}

void aml_scope(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE_OP);
	open_body(a);
	aml_namestring(a, path);
}

void aml_device(struct aml *a, const char *path)
{
	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	open_body(a);
	aml_namestring(a, path);
}

void aml_method(struct aml *a, const char *path, int nargs, bool serialized)
{
	if (nargs < 0 || nargs > 7) {
		if (!a->err)
			a->err = -EINVAL;
		return;
	}
	aml_byte(a, AML_METHOD_OP);
	open_body(a);
	aml_namestring(a, path);
	aml_byte(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
}

void aml_package(struct aml *a, uint8_t nelems)
{
	aml_byte(a, AML_PACKAGE_OP);
	open_body(a);
	aml_byte(a, nelems);
}

void aml_if(struct aml *a)
{
	aml_byte(a, AML_IF_OP);
	open_body(a);
}

void aml_buffer(struct aml *a, const void *p, size_t n)
{
	aml_byte(a, AML_BUFFER_OP);
	open_body(a);
	aml_int(a, n);
	aml_raw(a, p, n);
	aml_close(a);
}

void aml_lequal(struct aml *a)
{
	aml_byte(a, AML_LEQUAL_OP);
}

void aml_notify(struct aml *a, const char *path, uint64_t value)
{
	aml_byte(a, AML_NOTIFY_OP);
	aml_namestring(a, path);
	aml_int(a, value);
}

void aml_arg(struct aml *a, int n)
{
	if (n < 0 || n > 6) {
		if (!a->err)
			a->err = -EINVAL;
		return;
	}
	aml_byte(a, (uint8_t)(AML_ARG0_OP + n));
}

void aml_return(struct aml *a)
{
	aml_byte(a, AML_RETURN_OP);
}

void aml_res_init(struct aml_res *r)
{
	memset(r, 0, sizeof(*r));
}

static void res_put(struct aml_res *r, const uint8_t *p, size_t n)
{
	/* Two bytes stay free for the end tag. */
	if (r->overflow || r->len + n + 2 > sizeof(r->b)) {
		r->overflow = true;
		return;
	}
	memcpy(r->b + r->len, p, n);
	r->len += n;
}

static void le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
	le16(p, (uint16_t)v);
	le16(p + 2, (uint16_t)(v >> 16));
}

void aml_res_memory32_fixed(struct aml_res *r, uint32_t base, uint32_t len,
			    bool writable)
{
	uint8_t d[12] = { RES_MEMORY32_FIXED };

	le16(d + 1, sizeof(d) - 3);
	d[3] = writable ? 1 : 0;
	le32(d + 4, base);
	le32(d + 8, len);
	res_put(r, d, sizeof(d));
}

void aml_res_interrupt(struct aml_res *r, uint32_t gsi, bool edge,
		       bool active_low, bool shared)
{
	uint8_t d[9] = { RES_EXT_INTERRUPT };

	le16(d + 1, sizeof(d) - 3);
	/* bit 0 consumer, 1 edge, 2 active low, 3 shared */
	d[3] = (uint8_t)(1 | (edge ? 2 : 0) | (active_low ? 4 : 0) |
			 (shared ? 8 : 0));
	d[4] = 1; /* one interrupt number */
	le32(d + 5, gsi);
	res_put(r, d, sizeof(d));
}

void aml_res_irq_noflags(struct aml_res *r, unsigned int irq)
{
	uint8_t d[3] = { RES_IRQ_NOFLAGS };

	if (irq > 15) {
		r->overflow = true; /* reported as an error by aml_res_emit */
		return;
	}
	le16(d + 1, (uint16_t)(1u << irq));
	res_put(r, d, sizeof(d));
}

void aml_res_io(struct aml_res *r, uint16_t min, uint16_t max, uint8_t align,
		uint8_t len)
{
	uint8_t d[8] = { RES_IO, 1 /* 16-bit decode */ };

	le16(d + 2, min);
	le16(d + 4, max);
	d[6] = align;
	d[7] = len;
	res_put(r, d, sizeof(d));
}

void aml_res_emit(struct aml *a, struct aml_res *r)
{
	if (r->overflow) {
		if (!a->err)
			a->err = -E2BIG;
		return;
	}
	/* End tag; a zero checksum means "treat as valid" (6.4.2.9). */
	r->b[r->len++] = RES_END_TAG;
	r->b[r->len++] = 0;
	aml_buffer(a, r->b, r->len);
}
