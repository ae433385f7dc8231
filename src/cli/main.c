// SPDX-License-Identifier: MIT
/* The wisp command line: parses arguments into a struct vm_config and
 * hands it to the VMM. The only place that prints a fatal error and picks
 * the process exit code. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/snapshot_client.h"
#include "config/devopts.h"
#include "sandbox/jail_cmd.h"
#include "sandbox/seccomp.h"
#include "util/log.h"
#include "vmm/snapshot.h"
#include "vmm/vmm.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wisp run --kernel PATH [options]\n"
		"       wisp --api-sock PATH [--config-file FILE] (wisp --api-sock PATH --help)\n"
		"       wisp restore --snapshot FILE --mem FILE|SOCKET\n"
		"                    [--mem-backend file|uffd] [--uffd-fallback FILE]\n"
		"       wisp --seccomp-dump   (each thread kind's allowed calls)\n"
		"       wisp snapshot --api-sock PATH --snapshot FILE --mem FILE [--diff]\n"
		"                     [--resume]\n"
		"       wisp snapshot-merge --snapshot DIFF.state --mem DIFF.mem\n"
		"                     --base-mem BASE.mem --out-snapshot OUT.state\n"
		"       wisp jail --id ID --chroot-base DIR --uid U --gid G ... -- ARGS\n"
		"                 (wisp jail --help; docs/jail.md)\n"
		"       wisp --help | --version\n"
		"\n"
		"Run a VM that boots a Linux kernel (ELF vmlinux with a PVH note,\n"
		"bzImage, or 64-bit ELF) with an 8250 serial console.\n"
		"\n"
		"options for 'run':\n"
		"  --kernel PATH          kernel image (required)\n"
		"  --initrd PATH          initial ramdisk\n"
		"  --cmdline STR          appended to the default command line:\n"
		"                         console=, the virtio-mmio devices (with\n"
		"                         --acpi off), then\n"
		"                         \"%s\"\n"
		"  --no-default-cmdline   use only --cmdline as the command line\n"
		"  --cpus N               vCPUs (default %d; up to 64, 32 with\n"
		"                         --acpi off)\n"
		"  --memory MiB           guest RAM in MiB (default %d)\n"
		"  --serial stdio|none|file:PATH\n"
		"                         where the COM1 console goes (default stdio;\n"
		"                         with stdio, stdin is the guest's input and a\n"
		"                         terminal is put in raw mode: Ctrl-A x quits)\n"
		"  --serial-posted on|off console bytes the guest writes with the THR\n"
		"                         interrupt off queue without a VM exit where\n"
		"                         KVM has coalesced PIO (default on)\n"
		"  --disk path=FILE[,readonly=on|off][,id=NAME][,direct=on|off]\n"
		"         [,engine=sync|uring]\n"
		"         [,iommu=on|off]\n"
		"                         virtio-blk disk from a raw image (repeatable,\n"
		"                         up to %d; writable images are locked; NAME:\n"
		"                         up to 20 printable characters)\n"
		"  --net tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,id=NAME][,rx-rate=BYTES]\n"
		"        [,tx-rate=BYTES][,vhost=on]\n"
		"                         virtio-net on the existing tap NAME\n"
		"                         (repeatable, up to %d; default mac: random;\n"
		"                         rates in bytes per second; vhost=on: the\n"
		"                         kernel's vhost-net runs the queues)\n"
		"  --vsock cid=N,uds=PATH virtio-vsock with guest CID N (3 and up);\n"
		"                         the host's port P is the unix socket\n"
		"                         PATH_P, and PATH takes \"CONNECT P\\n\" to\n"
		"                         reach the guest's port P\n"
		"  --vhost-user-blk socket=PATH[,id=NAME]\n"
		"                         virtio-blk served by a vhost-user back-end\n"
		"                         (e.g. qemu-storage-daemon) listening at PATH\n"
		"  --fs socket=PATH,tag=NAME\n"
		"                         virtio-fs from a vhost-user back-end (e.g.\n"
		"                         virtiofsd); the guest mounts -t virtiofs NAME\n"
		"  --vhost-user type=ID,socket=PATH[,queues=N][,config=BYTES]\n"
		"                         any virtio device ID served by a vhost-user\n"
		"                         back-end (up to %d vhost-user devices)\n"
		"  --rng                  virtio-rng entropy device (getrandom)\n"
		"  --rng-rate BYTES       limit it to BYTES per second\n"
		"  --console serial|virtio\n"
		"                         guest console: the 8250 (ttyS0, default) or\n"
		"                         virtio-console (hvc0) on wisp's stdio\n"
		"  --server PATH          attach the IOREQ device server listening at\n"
		"                         PATH (e.g. wisp-blk --socket PATH ...)\n"
		"  --spawn-server CMD     start CMD --socket PATH and attach to it\n"
		"                         (CMD split at spaces; up to %d servers),\n"
		"                         jailed (docs/jail.md)\n"
		"  --server-iommu on|off  off: the server given just before stays\n"
		"                         outside --iommu (default on)\n"
		"  --jail-uid U, --jail-gid G\n"
		"                         ids of jailed spawned servers when wisp\n"
		"                         runs as root (default 65534)\n"
		"  --no-jail              spawned servers are not jailed (debugging)\n"
		"  --iommu                a virtio-iommu (ACPI VIOT) with every other\n"
		"                         virtio device behind it (a disk with\n"
		"                         iommu=off or a server with --server-iommu\n"
		"                         off stays outside)\n"
		"  --iommu-requests thread|vcpu\n"
		"                         where the virtio-iommu answers: on its own\n"
		"                         I/O thread, kicked through an ioeventfd\n"
		"                         (default), or in the vCPU that sent them\n"
		"  --iommu-poll US        after answering, the I/O thread looks for the\n"
		"                         next request itself, kicks held back, for up\n"
		"                         to US µs (default 200 when wisp may use more\n"
		"                         than one CPU, else 0: off)\n"
		"  --acpi on|off          describe the machine by ACPI tables (default\n"
		"                         on) or by the MP table and virtio_mmio.device=\n"
		"                         on the command line (off)\n"
		"  --async-pf on|off      offer KVM's asynchronous page faults in\n"
		"                         CPUID 0x40000001 (default on)\n"
		"  --shutdown-timeout S   SIGTERM presses the ACPI power button and\n"
		"                         waits S seconds for the guest to power off\n"
		"                         (default %d; 0: stop at once)\n"
		"  --watchdog S           log a state dump (vCPU exits, virtio queue\n"
		"                         indices, interrupt status, I/O threads)\n"
		"                         when nothing moved for S seconds; SIGUSR1\n"
		"                         dumps at any time\n"
		"  --debug-exit           enable the test-guest exit port (0x%x)\n"
		"  --seccomp kill|log|off a call outside its thread's seccomp table\n"
		"                         kills wisp (default), is logged by the\n"
		"                         kernel (log), or no filter (off); also\n"
		"                         for 'restore' and the API (docs/sandbox.md)\n"
		"  --seccomp-test KIND    test only: that thread kind makes a\n"
		"                         forbidden call once its filter is in\n"
		"  -v, --verbose          more diagnostics (twice: debug)\n"
		"\n"
		"exit status: 0 guest shut down or rebooted; 1 bad arguments or\n"
		"guest images; 2 host or KVM failure; 3 guest crashed; 4 guest\n"
		"needs hardware virtualization (PVM host); 128+N stopped by signal N\n"
		"(a SIGTERM the guest answers by powering off: 0).\n",
		VM_DEFAULT_CMDLINE, VM_DEFAULT_CPUS, VM_DEFAULT_MEMORY_MIB,
		VM_MAX_DISKS, VM_MAX_NETS, VM_MAX_VHOST_USER, VM_MAX_SERVERS,
		VM_DEFAULT_SHUTDOWN_TIMEOUT_S, 0xf4);
}

/* Prints a parse error the way main() prints any other. */
static int bad_arg(const struct err *e)
{
	fprintf(stderr, "wisp: %s\n", e->msg);
	return -EINVAL;
}

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_NO_DEFAULT_CMDLINE,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_SERIAL,
	OPT_DEBUG_EXIT,
	OPT_DISK,
	OPT_RNG,
	OPT_RNG_RATE,
	OPT_CONSOLE,
	OPT_SERVER,
	OPT_SPAWN_SERVER,
	OPT_SERVER_IOMMU,
	OPT_NO_JAIL,
	OPT_JAIL_UID,
	OPT_JAIL_GID,
	OPT_ACPI,
	OPT_SERIAL_POSTED,
	OPT_ASYNC_PF,
	OPT_SHUTDOWN_TIMEOUT,
	OPT_WATCHDOG,
	OPT_IOMMU,
	OPT_IOMMU_POLL,
	OPT_IOMMU_REQUESTS,
	OPT_NET,
	OPT_VSOCK,
	OPT_VHOST_USER_BLK,
	OPT_FS,
	OPT_VHOST_USER,
	OPT_SECCOMP,
	OPT_SECCOMP_TEST,
};

/* --seccomp and --seccomp-test of run and restore (docs/sandbox.md). */
static const char *seccomp_opt, *seccomp_test_opt;

/* The option string is split in place: the strings point into argv. */
static int parse_disk(char *arg, struct vm_config *cfg)
{
	struct devopts_disk d;
	struct err e = { 0 };

	if (cfg->nr_disks == VM_MAX_DISKS) {
		fprintf(stderr, "wisp: --disk: at most %d disks\n",
			VM_MAX_DISKS);
		return -EINVAL;
	}
	if (devopts_parse_disk("--disk", arg, &d, &e))
		return bad_arg(&e);
	cfg->disks[cfg->nr_disks++] = (struct disk_config){
		.path = d.path,
		.readonly = d.readonly,
		.id = d.id,
		.direct = d.direct,
		.engine = d.engine,
		.no_iommu = d.no_iommu,
		.rl = d.rl,
	};
	return 0;
}

static int parse_net(char *arg, struct vm_config *cfg)
{
	struct devopts_net n;
	struct err e = { 0 };

	if (cfg->nr_nets == VM_MAX_NETS) {
		fprintf(stderr, "wisp: --net: at most %d network devices\n",
			VM_MAX_NETS);
		return -EINVAL;
	}
	if (devopts_parse_net("--net", arg, &n, &e))
		return bad_arg(&e);
	cfg->nets[cfg->nr_nets].tap = n.tap;
	cfg->nets[cfg->nr_nets].id = n.id;
	memcpy(cfg->nets[cfg->nr_nets].mac, n.mac, 6);
	cfg->nets[cfg->nr_nets].has_mac = n.has_mac;
	cfg->nets[cfg->nr_nets].rx_rate = n.rx_rate;
	cfg->nets[cfg->nr_nets].tx_rate = n.tx_rate;
	cfg->nets[cfg->nr_nets].rx_rl = n.rx_rl;
	cfg->nets[cfg->nr_nets].tx_rl = n.tx_rl;
	cfg->nets[cfg->nr_nets].vhost = n.vhost;
	cfg->nr_nets++;
	return 0;
}

static int parse_vhost_user(const char *opt, enum devopts_vhu_kind kind,
			    char *arg, struct vm_config *cfg)
{
	static const uint32_t ids[] = {
		[DEVOPTS_VHU_BLK] = 2, [DEVOPTS_VHU_FS] = 26
	};
	struct devopts_vhost_user d;
	struct err e = { 0 };

	if (cfg->nr_vhost_user == VM_MAX_VHOST_USER) {
		fprintf(stderr, "wisp: %s: at most %d vhost-user devices\n",
			opt, VM_MAX_VHOST_USER);
		return -EINVAL;
	}
	if (devopts_parse_vhost_user(opt, kind, arg, &d, &e))
		return bad_arg(&e);
	cfg->vhost_user[cfg->nr_vhost_user++] = (struct vm_vhu_config){
		.device_id = kind == DEVOPTS_VHU_ANY ? d.type : ids[kind],
		.socket = d.socket,
		.id = d.id,
		.tag = d.tag,
		.queues = d.queues,
		.config_size = d.config_size,
	};
	return 0;
}

static int parse_run(int argc, char **argv, struct vm_config *cfg,
		     int *verbosity)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "no-default-cmdline", no_argument, NULL,
		  OPT_NO_DEFAULT_CMDLINE },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "serial", required_argument, NULL, OPT_SERIAL },
		{ "serial-posted", required_argument, NULL, OPT_SERIAL_POSTED },
		{ "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "net", required_argument, NULL, OPT_NET },
		{ "vsock", required_argument, NULL, OPT_VSOCK },
		{ "vhost-user-blk", required_argument, NULL,
		  OPT_VHOST_USER_BLK },
		{ "fs", required_argument, NULL, OPT_FS },
		{ "vhost-user", required_argument, NULL, OPT_VHOST_USER },
		{ "rng", no_argument, NULL, OPT_RNG },
		{ "rng-rate", required_argument, NULL, OPT_RNG_RATE },
		{ "console", required_argument, NULL, OPT_CONSOLE },
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "spawn-server", required_argument, NULL, OPT_SPAWN_SERVER },
		{ "server-iommu", required_argument, NULL, OPT_SERVER_IOMMU },
		{ "no-jail", no_argument, NULL, OPT_NO_JAIL },
		{ "jail-uid", required_argument, NULL, OPT_JAIL_UID },
		{ "jail-gid", required_argument, NULL, OPT_JAIL_GID },
		{ "acpi", required_argument, NULL, OPT_ACPI },
		{ "async-pf", required_argument, NULL, OPT_ASYNC_PF },
		{ "iommu", no_argument, NULL, OPT_IOMMU },
		{ "iommu-poll", required_argument, NULL, OPT_IOMMU_POLL },
		{ "iommu-requests", required_argument, NULL,
		  OPT_IOMMU_REQUESTS },
		{ "shutdown-timeout", required_argument, NULL,
		  OPT_SHUTDOWN_TIMEOUT },
		{ "watchdog", required_argument, NULL, OPT_WATCHDOG },
		{ "seccomp", required_argument, NULL, OPT_SECCOMP },
		{ "seccomp-test", required_argument, NULL, OPT_SECCOMP_TEST },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct err e = { 0 };
	uint64_t v;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL:
			cfg->kernel = optarg;
			break;
		case OPT_INITRD:
			cfg->initrd = optarg;
			break;
		case OPT_CMDLINE:
			cfg->cmdline_extra = optarg;
			break;
		case OPT_NO_DEFAULT_CMDLINE:
			cfg->no_default_cmdline = true;
			break;
		case OPT_CPUS:
			if (devopts_parse_u64("--cpus", optarg, 1, 4096, &v,
					      &e))
				return bad_arg(&e);
			cfg->cpus = (int)v;
			break;
		case OPT_MEMORY:
			/* 64 TiB: far above any host; real limits are checked
			 * against the host when memory is created. */
			if (devopts_parse_u64("--memory", optarg, 1, 1ull << 26,
					      &v, &e))
				return bad_arg(&e);
			cfg->memory_mib = v;
			break;
		case OPT_SERIAL:
			if (!strcmp(optarg, "stdio")) {
				cfg->serial = SERIAL_STDIO;
			} else if (!strcmp(optarg, "none")) {
				cfg->serial = SERIAL_NONE;
			} else if (!strncmp(optarg, "file:", 5) && optarg[5]) {
				cfg->serial = SERIAL_FILE;
				cfg->serial_path = optarg + 5;
			} else {
				fprintf(stderr,
					"wisp: --serial '%s': expected stdio, none or file:PATH\n",
					optarg);
				return -EINVAL;
			}
			break;
		case OPT_SERIAL_POSTED: {
			bool on;

			if (devopts_parse_onoff("--serial-posted", optarg, &on,
						&e))
				return bad_arg(&e);
			cfg->serial_post_on = on;
			break;
		}
		case OPT_DEBUG_EXIT:
			cfg->debug_exit = true;
			break;
		case OPT_DISK:
			if (parse_disk(optarg, cfg))
				return -EINVAL;
			break;
		case OPT_NET:
			if (parse_net(optarg, cfg))
				return -EINVAL;
			break;
		case OPT_VSOCK: {
			struct devopts_vsock vs;

			if (cfg->vsock_uds) {
				fprintf(stderr, "wisp: --vsock: at most one "
						"vsock device\n");
				return -EINVAL;
			}
			if (devopts_parse_vsock("--vsock", optarg, &vs, &e))
				return bad_arg(&e);
			cfg->vsock_uds = vs.uds;
			cfg->vsock_cid = vs.cid;
			break;
		}
		case OPT_VHOST_USER_BLK:
			if (parse_vhost_user("--vhost-user-blk",
					     DEVOPTS_VHU_BLK, optarg, cfg))
				return -EINVAL;
			break;
		case OPT_FS:
			if (parse_vhost_user("--fs", DEVOPTS_VHU_FS, optarg,
					     cfg))
				return -EINVAL;
			break;
		case OPT_VHOST_USER:
			if (parse_vhost_user("--vhost-user", DEVOPTS_VHU_ANY,
					     optarg, cfg))
				return -EINVAL;
			break;
		case OPT_RNG:
			cfg->rng = true;
			break;
		case OPT_RNG_RATE:
			if (devopts_parse_rng_rate("--rng-rate", optarg, &v,
						   &e))
				return bad_arg(&e);
			cfg->rng = true;
			cfg->rng_rate = v;
			break;
		case OPT_SERVER:
		case OPT_SPAWN_SERVER:
			if (cfg->nr_servers == VM_MAX_SERVERS) {
				fprintf(stderr,
					"wisp: at most %d device servers\n",
					VM_MAX_SERVERS);
				return -EINVAL;
			}
			if (!*optarg) {
				fprintf(stderr, "wisp: %s: empty argument\n",
					argv[optind - 1]);
				return -EINVAL;
			}
			cfg->servers[cfg->nr_servers].socket =
				c == OPT_SERVER ? optarg : NULL;
			cfg->servers[cfg->nr_servers].spawn =
				c == OPT_SPAWN_SERVER ? optarg : NULL;
			cfg->nr_servers++;
			break;
		case OPT_SERVER_IOMMU: {
			/* A separate option: a server's PATH or CMD has no
			 * room for key=value (a CMD's own options carry
			 * commas). */
			bool on;

			if (!cfg->nr_servers) {
				fprintf(stderr,
					"wisp: --server-iommu: give it after "
					"the --server or --spawn-server it "
					"applies to\n");
				return -EINVAL;
			}
			if (devopts_parse_onoff("--server-iommu", optarg, &on,
						&e))
				return bad_arg(&e);
			cfg->servers[cfg->nr_servers - 1].no_iommu = !on;
			break;
		}
		case OPT_NO_JAIL:
			cfg->jail_off = true;
			break;
		case OPT_JAIL_UID:
		case OPT_JAIL_GID:
			if (devopts_parse_u64(argv[optind - 1], optarg, 0,
					      0xfffffffeU, &v, &e))
				return bad_arg(&e);
			if (c == OPT_JAIL_UID)
				cfg->jail_uid = (unsigned)v;
			else
				cfg->jail_gid = (unsigned)v;
			break;
		case OPT_CONSOLE:
			if (!strcmp(optarg, "serial")) {
				cfg->console = CONSOLE_SERIAL;
			} else if (!strcmp(optarg, "virtio")) {
				cfg->console = CONSOLE_VIRTIO;
			} else {
				fprintf(stderr,
					"wisp: --console '%s': expected serial or virtio\n",
					optarg);
				return -EINVAL;
			}
			break;
		case OPT_ACPI:
			if (devopts_parse_onoff("--acpi", optarg, &cfg->acpi,
						&e))
				return bad_arg(&e);
			break;
		case OPT_ASYNC_PF:
			if (devopts_parse_onoff("--async-pf", optarg,
						&cfg->async_pf, &e))
				return bad_arg(&e);
			break;
		case OPT_IOMMU:
			cfg->iommu = true;
			break;
		case OPT_IOMMU_POLL: {
			uint64_t v;

			if (devopts_parse_u64("--iommu-poll", optarg, 0,
					      VM_MAX_IOMMU_POLL_US, &v, &e))
				return bad_arg(&e);
			/* 0 is "never" to the user, "default" below. */
			cfg->iommu_poll_ns = v ? (int64_t)v * 1000 : -1;
			break;
		}
		case OPT_IOMMU_REQUESTS:
			if (!strcmp(optarg, "vcpu") ||
			    !strcmp(optarg, "thread")) {
				cfg->iommu_vcpu = optarg[0] == 'v';
				break;
			}
			fprintf(stderr,
				"wisp: --iommu-requests: '%s' is neither thread "
				"nor vcpu\n",
				optarg);
			return -EINVAL;
		case OPT_SHUTDOWN_TIMEOUT:
			/* 0 is allowed: SIGTERM stops at once. */
			if (devopts_parse_u64("--shutdown-timeout", optarg, 0,
					      VM_MAX_SHUTDOWN_TIMEOUT_S, &v,
					      &e))
				return bad_arg(&e);
			cfg->shutdown_timeout_s = (unsigned int)v;
			break;
		case OPT_WATCHDOG:
			if (devopts_parse_u64("--watchdog", optarg, 1,
					      VM_MAX_WATCHDOG_S, &v, &e))
				return bad_arg(&e);
			cfg->watchdog_s = (unsigned int)v;
			break;
		case OPT_SECCOMP:
			seccomp_opt = optarg;
			break;
		case OPT_SECCOMP_TEST:
			seccomp_test_opt = optarg;
			break;
		case 'v':
			(*verbosity)++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			fprintf(stderr, "wisp: %s: missing argument\n",
				argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr,
				"wisp: unknown option '%s' (see wisp --help)\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wisp: unexpected argument '%s'\n",
			argv[optind]);
		return -EINVAL;
	}
	if (!cfg->kernel) {
		fprintf(stderr, "wisp: run: --kernel PATH is required\n");
		return -EINVAL;
	}
	return 0;
}

/* The API front end is its own binary, wisp-api, next to this one: its
 * HTTP and JSON libraries (and theirs) would otherwise be mapped into
 * every `wisp run` and cost each VM about 2.5 MiB of resident memory.
 * Returns only on failure. */
static int exec_api(char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0) {
		fprintf(stderr, "wisp: %s: /proc/self/exe: %s\n", argv[1],
			strerror(errno));
		return WISP_EXIT_HOST;
	}
	self[n] = 0;
	slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	snprintf(path, sizeof(path), "%s/wisp-api", self);
	execv(path, argv);
	fprintf(stderr,
		"wisp: %s: cannot run the API front end %s: %s (a build "
		"without the API: meson -Dapi=enabled)\n",
		argv[1], path, strerror(errno));
	return WISP_EXIT_CONFIG;
}

/* wisp restore: the VM's configuration is in the state file. */
static int parse_restore(int argc, char **argv, struct vm_restore_req *r,
			 int *verbosity)
{
	enum {
		OPT_SNAP = 256,
		OPT_MEM,
		OPT_BACKEND,
		OPT_UFFD_FALLBACK,
		OPT_R_SECCOMP,
		OPT_R_SECCOMP_TEST,
	};
	static const struct option opts[] = {
		{ "snapshot", required_argument, NULL, OPT_SNAP },
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "mem-backend", required_argument, NULL, OPT_BACKEND },
		{ "uffd-fallback", required_argument, NULL, OPT_UFFD_FALLBACK },
		{ "seccomp", required_argument, NULL, OPT_R_SECCOMP },
		{ "seccomp-test", required_argument, NULL, OPT_R_SECCOMP_TEST },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":v", opts, NULL)) != -1) {
		switch (c) {
		case OPT_SNAP:
			r->snapshot_path = optarg;
			break;
		case OPT_MEM:
			r->mem_path = optarg;
			break;
		case OPT_UFFD_FALLBACK:
			r->uffd_fallback = optarg;
			break;
		case OPT_R_SECCOMP:
			seccomp_opt = optarg;
			break;
		case OPT_R_SECCOMP_TEST:
			seccomp_test_opt = optarg;
			break;
		case OPT_BACKEND:
			if (!strcmp(optarg, "file")) {
				r->backend = VM_MEM_FILE;
			} else if (!strcmp(optarg, "uffd")) {
				r->backend = VM_MEM_UFFD;
			} else {
				fprintf(stderr,
					"wisp: --mem-backend '%s': file or "
					"uffd\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'v':
			(*verbosity)++;
			break;
		case ':':
			fprintf(stderr, "wisp: %s: missing argument\n",
				argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr,
				"wisp: restore: unknown option '%s' (see wisp "
				"--help)\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wisp: unexpected argument '%s'\n",
			argv[optind]);
		return -EINVAL;
	}
	if (!r->snapshot_path || !r->mem_path) {
		fprintf(stderr,
			"wisp: restore needs --snapshot FILE and --mem FILE\n");
		return -EINVAL;
	}
	return 0;
}

static int restore_main(int argc, char **argv)
{
	struct vm_restore_req r = { 0 };
	struct vm *vm = NULL;
	struct err e = { 0 };
	int verbosity = 0, code;

	if (parse_restore(argc, argv, &r, &verbosity))
		return WISP_EXIT_CONFIG;
	log_set_level(verbosity >= 2 ? LOG_DEBUG :
		      verbosity == 1 ? LOG_INFO :
				       LOG_WARN);
	if (sb_seccomp_setup(seccomp_opt, seccomp_test_opt, SB_WISP_KINDS,
			     &e)) {
		fprintf(stderr, "wisp: %s\n", e.msg);
		return vm_exit_code(&e);
	}
	if (vm_restore(&r, &vm, &e)) {
		fprintf(stderr, "wisp: %s\n", e.msg);
		vm_destroy(vm);
		return vm_exit_code(&e);
	}
	code = vm_run(vm);
	vm_destroy(vm);
	return code;
}

int main(int argc, char **argv)
{
	struct vm_config cfg;
	struct vm *vm = NULL;
	struct err e = { 0 };
	int verbosity = 0, code, ret;

	if (argc < 2) {
		usage(stderr);
		return WISP_EXIT_CONFIG;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("wisp %s\n", WISP_VERSION);
		return 0;
	}
	if (!strncmp(argv[1], "--api-sock", 10) ||
	    !strncmp(argv[1], "--config-file", 13) ||
	    !strcmp(argv[1], "--no-api"))
		return exec_api(argv);
	if (!strcmp(argv[1], "--seccomp-dump")) {
		sb_seccomp_dump(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "restore"))
		return restore_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "snapshot"))
		return snapshot_client_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "snapshot-merge"))
		return snapshot_merge_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "jail"))
		return jail_cmd_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "run")) {
		fprintf(stderr,
			"wisp: unknown command '%s' (see wisp --help)\n",
			argv[1]);
		return WISP_EXIT_CONFIG;
	}
	vm_config_defaults(&cfg);
	if (parse_run(argc - 1, argv + 1, &cfg, &verbosity))
		return WISP_EXIT_CONFIG;
	log_set_level(verbosity >= 2 ? LOG_DEBUG :
		      verbosity == 1 ? LOG_INFO :
				       LOG_WARN);
	/* Before the first thread: each one installs its kind's filter. */
	if (sb_seccomp_setup(seccomp_opt, seccomp_test_opt, SB_WISP_KINDS,
			     &e)) {
		fprintf(stderr, "wisp: %s\n", e.msg);
		return vm_exit_code(&e);
	}
	ret = vm_create(&cfg, &vm, &e);
	if (ret) {
		fprintf(stderr, "wisp: %s\n", e.msg);
		vm_destroy(vm);
		return vm_exit_code(&e);
	}
	code = vm_run(vm);
	vm_destroy(vm);
	return code;
}
