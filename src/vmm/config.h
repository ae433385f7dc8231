/* SPDX-License-Identifier: MIT */
/* One struct describes a VM. Front ends (the CLI now; an API and a config
 * file later) only fill it in; vm_create() is the single builder. */
#ifndef WISP_VMM_CONFIG_H
#define WISP_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "util/ratelimit.h"

enum serial_mode { SERIAL_STDIO, SERIAL_NONE, SERIAL_FILE };

#define VM_DEFAULT_CPUS 1
#define VM_DEFAULT_MEMORY_MIB 128
/* Below the 10 s Docker gives between SIGTERM and SIGKILL (Kubernetes 30 s),
 * so wisp still tears the VM down itself; a small guest powers off in
 * well under a second. */
#define VM_DEFAULT_SHUTDOWN_TIMEOUT_S 5
#define VM_MAX_SHUTDOWN_TIMEOUT_S 3600
#define VM_MAX_WATCHDOG_S 3600
/* Appended to by --cmdline unless --no-default-cmdline, after the
 * console= for the selected console and the virtio-mmio device list.
 * reboot=k makes a guest reboot go through the i8042 reset that ends the
 * VM; pci=off and the i8042 options skip probes for hardware wisp does
 * not have. */
#define VM_DEFAULT_CMDLINE                                              \
	"reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.nopnp " \
	"i8042.dumbkbd"

#define VM_MAX_DISKS 8
#define VM_MAX_SERVERS 4
#define VM_MAX_NETS 4
#define VM_MAX_VHOST_USER 8

enum console_mode { CONSOLE_SERIAL, CONSOLE_VIRTIO };

struct disk_config {
	const char *path;
	bool readonly;
	const char *id; /* NULL: derived from the image */
	bool direct; /* O_DIRECT */
	int engine; /* enum devopts_engine */
	bool no_iommu; /* iommu=off: not behind --iommu */
	struct rl_config rl; /* bandwidth and ops buckets; zero: none */
};

struct vm_config {
	const char *kernel;
	const char *initrd; /* NULL: none */
	const char *cmdline_extra; /* NULL: none */
	bool no_default_cmdline;
	int cpus;
	uint64_t memory_mib;
	enum serial_mode serial;
	const char *serial_path; /* SERIAL_FILE */
	bool serial_post_on; /* --serial-posted on: THR writes may queue without an exit */
	bool debug_exit; /* enable the test-guest exit port */
	enum console_mode console; /* which device is the guest's console */
	int nr_disks;
	struct disk_config disks[VM_MAX_DISKS];
	/* IOREQ servers: attach to a running one at socket, or (spawn set)
	 * start "spawn --socket PATH" and attach to it. */
	int nr_servers;
	struct server_config {
		const char *socket;
		const char *spawn;
		bool no_iommu; /* --server-iommu off: not behind --iommu */
	} servers[VM_MAX_SERVERS];
	/* Spawned servers are jailed (docs/jail.md) unless jail_off; as
	 * root they switch to jail_uid/jail_gid (65534 by default),
	 * otherwise they keep wisp's ids in a user namespace. */
	bool jail_off;
	unsigned jail_uid, jail_gid;
	/* virtio-net devices on existing taps (--net). */
	int nr_nets;
	struct vm_net_config {
		const char *tap;
		const char *id; /* NULL: the tap name */
		uint8_t mac[6];
		bool has_mac; /* false: random */
		uint64_t rx_rate, tx_rate; /* bytes/s, 0: unlimited */
		/* Firecracker's rx/tx rate limiters (a bandwidth bucket
		 * here replaces rx_rate / tx_rate). */
		struct rl_config rx_rl, tx_rl;
		bool vhost; /* vhost=on: the kernel's vhost-net */
	} nets[VM_MAX_NETS];
	/* virtio-vsock (--vsock, PUT /vsock): the guest's CID and the
	 * host side's unix socket path; NULL: no vsock device. */
	const char *vsock_uds;
	uint64_t vsock_cid;
	/* vhost-user devices (--vhost-user-blk, --fs, --vhost-user): the
	 * queues run in a back-end listening at socket. */
	int nr_vhost_user;
	struct vm_vhu_config {
		uint32_t device_id; /* VIRTIO_ID_*: 2 blk, 26 fs, any */
		const char *socket;
		const char *id; /* blk: NULL if not given */
		const char *tag; /* fs */
		int queues; /* other types */
		uint32_t config_size; /* other types */
	} vhost_user[VM_MAX_VHOST_USER];
	bool rng; /* virtio-rng */
	uint64_t rng_rate; /* bytes per second, 0: unlimited */
	/* ACPI tables describe the machine (default); off: the MP table
	 * and virtio_mmio.device= on the command line. */
	bool acpi;
	/* KVM's asynchronous page faults offered in CPUID 0x40000001
	 * (default); off leaves ASYNC_PF, ASYNC_PF_VMEXIT, ASYNC_PF_INT out. */
	bool async_pf;
	/* A virtio-iommu (needs ACPI: the VIOT) with every other in-process
	 * virtio device behind it, except disks with iommu=off and servers
	 * with --server-iommu off. */
	bool iommu;
	/* --iommu-requests vcpu: viommu_config.vcpu_requests. */
	bool iommu_vcpu;
	/* --iommu-poll, as viommu_config.poll_ns takes it: how long the
	 * virtio-iommu looks for the driver's next request after answering
	 * one; 0 for the default, negative for never. */
	int64_t iommu_poll_ns;
/* The most --iommu-poll takes (the device lock is held meanwhile). */
#define VM_MAX_IOMMU_POLL_US 2000
	/* SIGTERM presses the ACPI power button and waits this long for
	 * the guest to power off; 0 stops at once. */
	unsigned int shutdown_timeout_s;
	/* Log a state dump when no vCPU exited and no I/O thread woke for
	 * this long (vmm/watchdog.h); 0: off (SIGUSR1 dumps either way). */
	unsigned int watchdog_s;
	/* Track the pages written since the last snapshot, in KVM's dirty
	 * log and wisp's own (mem/dirty.h), so a Diff snapshot can be
	 * taken (machine-config track_dirty_pages, enable_diff_snapshots
	 * on load). */
	bool track_dirty_pages;
};

void vm_config_defaults(struct vm_config *c);

#endif
