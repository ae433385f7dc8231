// SPDX-License-Identifier: MIT
/* The i8042's snapshot state: configuration byte, a command waiting for
 * its data byte, the output buffer. */
#include <errno.h>
#include <string.h>

#include "devices/i8042.h"

#define STATE_VERSION 1

void i8042_save(struct i8042 *k, struct ser_w *w)
{
	pthread_mutex_lock(&k->lock);
	ser_u32(w, STATE_VERSION);
	ser_u8(w, k->ctr);
	ser_u8(w, k->pending_cmd);
	ser_u32(w, (uint32_t)k->out_count);
	ser_bytes(w, k->out, (size_t)k->out_count);
	pthread_mutex_unlock(&k->lock);
}

int i8042_load(struct i8042 *k, const uint8_t *p, uint64_t len, struct err *e)
{
	struct ser_r r = { p, (size_t)len, 0, false };
	uint8_t ctr, cmd;
	uint32_t n;
	const uint8_t *out;

	if (deser_u32(&r) != STATE_VERSION)
		r.fail = true;
	ctr = deser_u8(&r);
	cmd = deser_u8(&r);
	n = deser_u32(&r);
	if (n > sizeof(k->out))
		r.fail = true;
	out = ser_r_take(&r, r.fail ? 0 : n);
	if (!deser_done(&r))
		return err_config(e, -EINVAL,
				  "snapshot: i8042 state malformed");
	pthread_mutex_lock(&k->lock);
	k->ctr = ctr;
	k->pending_cmd = cmd;
	if (n && out)
		memcpy(k->out, out, n);
	k->out_count = (int)n;
	pthread_mutex_unlock(&k->lock);
	return 0;
}
