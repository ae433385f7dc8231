// SPDX-License-Identifier: MIT
/*
 * The state channel (IOREQ_F_STATE): a snapshot asks the server for its
 * device's state (STATE_SAVE, which leaves the device held, quiesced,
 * until STATE_RESUME) and a restore gives it back (STATE_LOAD). One
 * message is outstanding at a time; the answer must carry its seq. The
 * server controls the answer: its size is bounded (IOREQ_MAX_STATE), its
 * status must be 0 or an errno, a failure's message must be a short
 * NUL-terminated string, and the wait is bounded. A server that breaks
 * these rules is cut off, as on the other channels.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ioreq/client_priv.h"
#include "ioreq/msg.h"
#include "util/time.h"

/* Quiescing a disk waits for its requests in flight: five times what an
 * ordinary answer may take (10 s by default). */
#define STATE_TIMEOUT_FACTOR 5

static int ms_left(uint64_t deadline)
{
	uint64_t now = now_ns();

	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* One request and its answer, with c->state_lock and c->lock (shared)
 * held. Returns the server's status (0 or -errno, *why its message) or
 * a transport error with *broken set. buf (IOREQ_MAX_STATE_MSG bytes)
 * holds the request on entry and the answer on return. */
static int rpc(struct ioreq_client *c, struct ioreq_attachment *a, uint8_t *buf,
	       size_t len, bool *broken, const char **why)
{
	struct ioreq_state_msg *m = (struct ioreq_state_msg *)(void *)buf;
	uint64_t deadline = now_ns() + (uint64_t)c->cfg.timeout_ms *
					       STATE_TIMEOUT_FACTOR *
					       1000000ull;
	int fds[IOREQ_MAX_FDS], nfds, n, ret;
	uint32_t seq = ++a->state_msg;

	*broken = true;
	*why = NULL;
	m->hdr.len = (uint32_t)len;
	m->hdr.seq = seq;
	m->hdr.reserved = 0;
	m->status = 0;
	m->len = (uint32_t)(len - sizeof(*m));
	ret = ioreq_send_by(a->state_sock, buf, len, NULL, 0, deadline);
	if (ret)
		return ret;
	n = ioreq_recv(a->state_sock, buf, IOREQ_MAX_STATE_MSG, fds,
		       IOREQ_MAX_FDS, &nfds, ms_left(deadline));
	if (n <= 0)
		return n ? n : -ECONNRESET;
	ioreq_close_fds(fds, nfds);
	if (m->hdr.type != IOREQ_MSG_STATE || nfds || m->hdr.seq != seq ||
	    m->hdr.reserved || (size_t)n < sizeof(*m) ||
	    m->len != (size_t)n - sizeof(*m) || m->status > 0 ||
	    m->status < -4095)
		return -EPROTO;
	if (m->status) {
		const char *t = (const char *)(m + 1);

		/* A message of a line, ending in its NUL. */
		if (!m->len || m->len > IOREQ_MAX_STATE_ERR || t[m->len - 1] ||
		    strlen(t) != m->len - 1)
			return -EPROTO;
		*why = t;
	}
	*broken = false;
	return m->status;
}

/* Runs one request on the attached server: 0, or -errno with e. */
static int state_op(struct ioreq_client *c, const char *what, uint8_t *buf,
		    size_t len, struct err *e)
{
	struct ioreq_attachment *a;
	bool broken = false;
	const char *why = NULL;
	int ret;

	pthread_rwlock_rdlock(&c->lock);
	a = c->att;
	if (!a || atomic_load(&c->dead)) {
		pthread_rwlock_unlock(&c->lock);
		return err_config(e, -ENOTCONN,
				  "%s: %s: no server attached (it went away)",
				  c->name, what);
	}
	if (!(a->features & IOREQ_F_STATE)) {
		ret = err_config(e, -ENOTSUP,
				 "%s: %s: server '%s' does not save or load "
				 "its device's state (no IOREQ_F_STATE)",
				 c->name, what, a->server_name);
		pthread_rwlock_unlock(&c->lock);
		return ret;
	}
	ret = rpc(c, a, buf, len, &broken, &why);
	if (broken) {
		ret = err_set(e, ret, "%s: %s: server '%s' %s: %s", c->name,
			      what, a->server_name,
			      ret == -EPROTO ? "broke the protocol" :
					       "gave no answer",
			      strerror(-ret));
		ioreq_client_cut_off(c, a);
	} else if (ret) {
		ret = err_config(e, ret, "%s: %s: server '%s' refused: %s",
				 c->name, what, a->server_name,
				 why ? why : strerror(-ret));
	}
	pthread_rwlock_unlock(&c->lock);
	return ret;
}

bool ioreq_client_has_state(struct ioreq_client *c)
{
	bool ok;

	pthread_rwlock_rdlock(&c->lock);
	ok = c->att && !atomic_load(&c->dead) &&
	     (c->att->features & IOREQ_F_STATE);
	pthread_rwlock_unlock(&c->lock);
	return ok;
}

int ioreq_client_state_save(struct ioreq_client *c, uint8_t **out, size_t *len,
			    struct err *e)
{
	uint8_t *buf = malloc(IOREQ_MAX_STATE_MSG);
	struct ioreq_state_msg *m = (struct ioreq_state_msg *)(void *)buf;
	int ret;

	*out = NULL;
	*len = 0;
	if (!buf)
		return err_set(e, -ENOMEM, "%s: out of memory", c->name);
	m->hdr.type = IOREQ_MSG_STATE_SAVE;
	pthread_mutex_lock(&c->state_lock);
	ret = state_op(c, "saving the device state", buf, sizeof(*m), e);
	pthread_mutex_unlock(&c->state_lock);
	if (ret) {
		free(buf);
		return ret;
	}
	*len = m->len;
	memmove(buf, m + 1, m->len);
	*out = buf;
	return 0;
}

int ioreq_client_state_resume(struct ioreq_client *c, struct err *e)
{
	uint8_t *buf = malloc(IOREQ_MAX_STATE_MSG);
	int ret;

	if (!buf)
		return err_set(e, -ENOMEM, "%s: out of memory", c->name);
	((struct ioreq_state_msg *)(void *)buf)->hdr.type =
		IOREQ_MSG_STATE_RESUME;
	pthread_mutex_lock(&c->state_lock);
	ret = state_op(c, "resuming the device", buf,
		       sizeof(struct ioreq_state_msg), e);
	pthread_mutex_unlock(&c->state_lock);
	free(buf);
	return ret;
}

int ioreq_client_state_load(struct ioreq_client *c, const uint8_t *state,
			    size_t len, struct err *e)
{
	uint8_t *buf;
	struct ioreq_state_msg *m;
	int ret;

	if (len > IOREQ_MAX_STATE)
		return err_config(e, -E2BIG,
				  "%s: device state of %zu bytes (at most %d)",
				  c->name, len, IOREQ_MAX_STATE);
	buf = malloc(IOREQ_MAX_STATE_MSG);
	if (!buf)
		return err_set(e, -ENOMEM, "%s: out of memory", c->name);
	m = (struct ioreq_state_msg *)(void *)buf;
	m->hdr.type = IOREQ_MSG_STATE_LOAD;
	if (len)
		memcpy(m + 1, state, len);
	pthread_mutex_lock(&c->state_lock);
	ret = state_op(c, "loading the device state", buf, sizeof(*m) + len, e);
	pthread_mutex_unlock(&c->state_lock);
	free(buf);
	return ret;
}
