/* SPDX-License-Identifier: MIT */
/*
 * IOREQ servers of a VM: start the ones given as --spawn-server, attach
 * to each (src/ioreq client), give each an MMIO window, an interrupt line
 * (irqfd) and its doorbell lanes and posted ranges, watch each control
 * socket in the event loop, and re-attach a lost server every 200 ms.
 *
 * Spawned servers listen in a private directory (mode 0700, created for
 * this VM, removed with it), so no other local user can bind the socket
 * first; every connection additionally checks the peer's credentials
 * (the client does, SO_PEERCRED). A spawned server is stopped with the
 * VM: SIGTERM, 2 s, then SIGKILL.
 *
 * With --iommu every server's window is an endpoint of the virtio-iommu
 * (a remote one: the server translates, fed over the IOREQ protocol's
 * IOMMU channel); a server without IOREQ_F_IOMMU is refused. One with
 * --server-iommu off is left out: no endpoint, no IOMMU channel.
 *
 * Owns: the clients, the irq eventfds, the children, the private
 * directory, the retry timer. Main thread only (vCPUs reach the clients
 * through the bus, the IOMMU's thread through the remote-endpoint ops
 * under iommu_lock).
 */
#ifndef WISP_VMM_SERVERS_H
#define WISP_VMM_SERVERS_H

#include <pthread.h>
#include <sys/types.h>

#include "bus/bus.h"
#include "bus/ioeventfd.h"
#include "ioreq/client.h"
#include "kvm/kvm.h"
#include "mem/guest_mem.h"
#include "virtio/virtio.h"
#include "vmm/config.h"
#include "vmm/layout.h"
#include "vmm/loop.h"
#include "vmm/posted.h"

#define SPAWN_MAX_ARGS 32

struct vm_server {
	struct ioreq_client *client;
	uint32_t endpoint; /* behind the IOMMU: its endpoint ID */
	int irq_efd;
	unsigned int gsi;
	pid_t child; /* spawned by us, else 0 */
	char socket_path[108];
	struct loop_watch watch;
	struct servers *set;
};

struct servers {
	struct kvm *kvm;
	struct guest_mem *mem;
	struct ioeventfd_registry *ioev;
	struct posted *posted;
	struct event_loop *loop;
	int nr_vcpus;
	struct vm_server s[VM_MAX_SERVERS];
	int nr;
	char dir[64]; /* private socket directory, "" when none */
	int retry_tfd;
	struct loop_watch retry_watch;
	/* The VM's virtio-iommu (set before servers_create; NULL: none):
	 * every server's device goes behind it (but --server-iommu off). iommu_lock keeps a client
	 * from being destroyed under the IOMMU's thread telling it about a
	 * change. */
	struct virtio_dev *iommu;
	pthread_mutex_t iommu_lock;
};

void servers_init(struct servers *ss, struct kvm *kvm, struct guest_mem *mem,
		  struct ioeventfd_registry *ioev, struct posted *posted,
		  struct event_loop *loop, int nr_vcpus);
/* Starts and attaches every configured server, each in a window from
 * layout registered on mmio. On failure what was set up stays in ss
 * for servers_destroy. */
int servers_create(struct servers *ss, const struct vm_config *cfg,
		   struct layout *layout, struct bus *mmio, struct err *e);
/* Watches the control sockets and arms re-attach (after loop_init). */
int servers_start(struct servers *ss, struct err *e);
void servers_destroy(struct servers *ss);

/* Splits cmd at spaces (no quoting) into argv (at most SPAWN_MAX_ARGS
 * words plus "--socket PATH" and NULL); copy holds the words and is
 * freed by the caller. -E2BIG (config) when there are more words. */
int servers_split_cmd(const char *cmd, char **copy, char **argv, struct err *e);

#endif
