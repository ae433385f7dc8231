/* SPDX-License-Identifier: MIT */
/*
 * Serialization into and out of byte buffers (the snapshot's sections):
 * a growing writer that remembers an allocation failure instead of
 * failing each call, and a bounded reader that never reads past its
 * buffer and remembers the first short read, so a decoder checks one
 * flag at the end instead of every field. Little-endian throughout.
 */
#ifndef WISP_UTIL_SER_H
#define WISP_UTIL_SER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/le.h"

struct ser_w {
	uint8_t *p; /* owned; free() it */
	size_t len, cap;
	bool fail; /* an allocation failed: the contents are incomplete */
};

static inline uint8_t *ser_w_room(struct ser_w *w, size_t n)
{
	if (w->fail)
		return NULL;
	if (n > SIZE_MAX / 2 - w->len) {
		w->fail = true;
		return NULL;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		uint8_t *np;

		while (cap < w->len + n)
			cap *= 2;
		np = realloc(w->p, cap);
		if (!np) {
			w->fail = true;
			return NULL;
		}
		w->p = np;
		w->cap = cap;
	}
	w->len += n;
	return w->p + w->len - n;
}

static inline void ser_bytes(struct ser_w *w, const void *src, size_t n)
{
	uint8_t *d = ser_w_room(w, n);

	if (d && n)
		memcpy(d, src, n);
}

static inline void ser_u8(struct ser_w *w, uint8_t v)
{
	ser_bytes(w, &v, 1);
}

static inline void ser_u16(struct ser_w *w, uint16_t v)
{
	uint8_t *d = ser_w_room(w, 2);

	if (d)
		put16(d, v);
}

static inline void ser_u32(struct ser_w *w, uint32_t v)
{
	uint8_t *d = ser_w_room(w, 4);

	if (d)
		put32(d, v);
}

static inline void ser_u64(struct ser_w *w, uint64_t v)
{
	uint8_t *d = ser_w_room(w, 8);

	if (d)
		put64(d, v);
}

/* A blob with its length in front (u32). */
static inline void ser_blob(struct ser_w *w, const void *src, uint32_t n)
{
	ser_u32(w, n);
	ser_bytes(w, src, n);
}

#define SER_NO_STR 0xffffffffu

/* A string with its length in front and a NUL behind; NULL is kept. */
static inline void ser_str(struct ser_w *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (s && n >= SER_NO_STR) {
		w->fail = true;
		return;
	}
	ser_u32(w, s ? (uint32_t)n : SER_NO_STR);
	if (s)
		ser_bytes(w, s, n + 1);
}

struct ser_r {
	const uint8_t *p;
	size_t len, off;
	bool fail; /* a read went past the end or a field was malformed */
};

static inline const uint8_t *ser_r_take(struct ser_r *r, size_t n)
{
	if (r->fail || n > r->len - r->off) {
		r->fail = true;
		return NULL;
	}
	r->off += n;
	return r->p + r->off - n;
}

static inline uint8_t deser_u8(struct ser_r *r)
{
	const uint8_t *s = ser_r_take(r, 1);

	return s ? s[0] : 0;
}

static inline uint16_t deser_u16(struct ser_r *r)
{
	const uint8_t *s = ser_r_take(r, 2);

	return s ? le16(s) : 0;
}

static inline uint32_t deser_u32(struct ser_r *r)
{
	const uint8_t *s = ser_r_take(r, 4);

	return s ? le32(s) : 0;
}

static inline uint64_t deser_u64(struct ser_r *r)
{
	const uint8_t *s = ser_r_take(r, 8);

	return s ? le64(s) : 0;
}

static inline bool deser_bool(struct ser_r *r)
{
	uint8_t v = deser_u8(r);

	if (v > 1)
		r->fail = true;
	return v == 1;
}

/* A blob of exactly n bytes (its length field must say n). */
static inline void deser_blob(struct ser_r *r, void *dst, size_t n)
{
	uint32_t len = deser_u32(r);
	const uint8_t *s;

	if (len != n) {
		r->fail = true;
		return;
	}
	s = ser_r_take(r, n);
	if (s && n)
		memcpy(dst, s, n);
}

/* A blob of any length up to max: its bytes inside the buffer. */
static inline const uint8_t *deser_blob_ref(struct ser_r *r, uint32_t max,
					    uint32_t *n)
{
	uint32_t len = deser_u32(r);

	*n = 0;
	if (len > max) {
		r->fail = true;
		return NULL;
	}
	*n = len;
	return ser_r_take(r, len);
}

/* A string inside the buffer (NUL-terminated there, no NUL inside), or
 * NULL for one written as NULL; max bounds its length. */
static inline const char *deser_str(struct ser_r *r, uint32_t max)
{
	uint32_t n = deser_u32(r);
	const uint8_t *s;

	if (r->fail || n == SER_NO_STR)
		return NULL;
	if (n > max) {
		r->fail = true;
		return NULL;
	}
	s = ser_r_take(r, (size_t)n + 1);
	if (!s || s[n] != 0 || memchr(s, 0, n)) {
		r->fail = true;
		return NULL;
	}
	return (const char *)s;
}

/* The whole buffer was consumed and nothing went wrong. */
static inline bool deser_done(const struct ser_r *r)
{
	return !r->fail && r->off == r->len;
}

#endif
