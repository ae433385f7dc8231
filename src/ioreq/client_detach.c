// SPDX-License-Identifier: MIT
/*
 * Losing a server and going away: control-socket events on the main
 * loop, detaching (unpublish the attachment under the exclusive lock,
 * then, without it, unregister and close everything and let the virtio
 * stand-in take over, failing the dead server's in-flight requests), and
 * destroying the client with a BYE that never waits for the server.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ioreq/client_priv.h"
#include "ioreq/msg.h"
#include "util/efd.h"
#include "util/log.h"
#include "util/time.h"
#include "virtio/standin.h"

void ioreq_attachment_free(struct ioreq_client *c, struct ioreq_attachment *a)
{
	if (!a)
		return;
	for (int i = 0; i < a->nr_dbs; i++) {
		struct doorbell *d = &a->dbs[i];

		/* Returns once no exit-path signal of efd is in flight. */
		ioevr_deassign(c->cfg.doorbells, d->addr, d->len, d->flags,
			       d->value, d->efd);
		close(d->efd);
	}
	for (int i = 0; i < a->nr_ranges; i++)
		if (a->ranges[i].coalesced && c->cfg.posted.del_posted)
			c->cfg.posted.del_posted(c->cfg.posted.opaque,
						 c->cfg.window_base +
							 a->ranges[i].off,
						 a->ranges[i].len);
	if (a->shm)
		munmap(a->shm, a->shm_size);
	if (a->shm_fd >= 0)
		close(a->shm_fd);
	if (a->wake_efd >= 0)
		close(a->wake_efd);
	for (int i = 0; i < IOREQ_MAX_VCPUS; i++)
		if (a->resp_efd[i] >= 0)
			close(a->resp_efd[i]);
	if (a->sock >= 0)
		close(a->sock);
	if (a->iommu_sock >= 0)
		close(a->iommu_sock);
	if (a->state_sock >= 0)
		close(a->state_sock);
	free(a);
}

void ioreq_client_detach(struct ioreq_client *c, const char *why, bool gone)
{
	struct ioreq_attachment *a = c->att; /* only this thread swaps it */
	bool virtio;
	int ret;

	if (!a)
		return;
	if (atomic_load(&c->cut_off)) {
		gone = false;
		why = "cut off: it stopped answering or corrupted shared state";
	}
	atomic_store(&c->dead, true);
	/* Wake vCPUs waiting for an answer; they see dead and give up. */
	for (int i = 0; i < c->cfg.nr_vcpus; i++)
		efd_signal(a->resp_efd[i]);
	pthread_rwlock_wrlock(&c->lock);
	c->att = NULL;
	virtio = c->virtio;
	pthread_rwlock_unlock(&c->lock);
	/* From here on vCPUs see the stand-in; nothing below holds the
	 * client lock, guest-memory walks included. */
	ioreq_attachment_free(c, a);
	if (virtio)
		virtio_standin_detached(&c->standin, c->cfg.mem, gone, c->name);
	log_warn("%s: server detached (%s); device marked broken%s", c->name,
		 why, virtio ? " (NEEDS_RESET)" : "");
	/* The server shares this eventfd: it may have filled it. */
	ret = efd_signal(c->irq_efd);
	if (ret)
		log_warn("%s: interrupt eventfd: %s", c->name,
			 ret == -EAGAIN ?
				 "full or made blocking by the server" :
				 strerror(-ret));
}

int ioreq_client_fail_pending(struct ioreq_client *c)
{
	bool virtio;
	int n, ret;

	/* A server that was cut off may still be working on the rings:
	 * completing for it could complete twice. */
	if (!atomic_load(&c->dead) || atomic_load(&c->cut_off))
		return 0;
	pthread_rwlock_rdlock(&c->lock);
	virtio = c->virtio && !c->att;
	pthread_rwlock_unlock(&c->lock);
	if (!virtio)
		return 0;
	n = virtio_standin_fail_new(&c->standin, c->cfg.mem, c->name);
	if (n > 0) {
		ret = efd_signal(c->irq_efd);
		if (ret)
			log_warn("%s: interrupt eventfd: %s", c->name,
				 strerror(-ret));
	}
	return n;
}

bool ioreq_client_attached(const struct ioreq_client *c)
{
	return !atomic_load(&c->dead);
}

bool ioreq_client_is_virtio(const struct ioreq_client *c)
{
	return c->virtio;
}

int ioreq_client_fd(const struct ioreq_client *c)
{
	return atomic_load(&c->dead) || !c->att ? -1 : c->att->sock;
}

void ioreq_client_handle_event(struct ioreq_client *c)
{
	union ioreq_msg m;
	int fds[IOREQ_MAX_FDS], nfds, n;

	if (!c->att)
		return;
	n = ioreq_recv(c->att->sock, &m, sizeof(m), fds, IOREQ_MAX_FDS, &nfds,
		       0);
	if (n == -ETIMEDOUT || n == -EAGAIN)
		return;
	ioreq_close_fds(fds, nfds);
	if (n == 0 || n == -ECONNRESET) {
		ioreq_client_detach(c, "disconnected", true);
		return;
	}
	if (n < 0) {
		ioreq_client_detach(c, strerror(-n), false);
		return;
	}
	if (m.hdr.type == IOREQ_MSG_MEM_UNMAPPED && n == sizeof(m.gen))
		return; /* late answer to an invalidation we gave up on */
	if (m.hdr.type == IOREQ_MSG_IOMMU_FAULT && !nfds &&
	    ioreq_client_iommu_fault(c, &m, n) == 0)
		return;
	ioreq_client_detach(c, "protocol violation", false);
}

void ioreq_client_destroy(struct ioreq_client *c)
{
	if (!c)
		return;
	/* Cut off by a vCPU just before the VM stopped, before the main
	 * loop saw the hang-up: said here, or the user never learns why. */
	if (c->att && atomic_load(&c->cut_off))
		log_warn("%s: server detached (cut off: it stopped answering "
			 "or corrupted shared state) as the VM stopped",
			 c->name);
	if (c->att) {
		struct ioreq_hdr bye = { IOREQ_MSG_BYE, sizeof(bye), 0, 0 };

		/* Only if there is room now: a server that stopped reading
		 * must not keep wisp from exiting. It sees the hang-up. */
		ioreq_send_by(c->att->sock, &bye, sizeof(bye), NULL, 0, 0);
	}
	atomic_store(&c->dead, true);
	ioreq_attachment_free(c, c->att);
	c->att = NULL;
	if (c->irq_efd >= 0)
		close(c->irq_efd);
	virtio_standin_destroy(&c->standin);
	pthread_rwlock_destroy(&c->lock);
	pthread_mutex_destroy(&c->ring_lock);
	pthread_mutex_destroy(&c->iommu_lock);
	pthread_mutex_destroy(&c->state_lock);
	free(c);
}
