/* SPDX-License-Identifier: MIT */
/* One struct describes a VM. Front ends (the CLI now; an API and a config
 * file later) only fill it in; vm_create() is the single builder. */
#ifndef WISP_VMM_CONFIG_H
#define WISP_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

enum serial_mode { SERIAL_STDIO, SERIAL_NONE, SERIAL_FILE };

#define VM_DEFAULT_CPUS 1
#define VM_DEFAULT_MEMORY_MIB 128
/* Appended to by --cmdline unless --no-default-cmdline. reboot=k makes a
 * guest reboot go through the i8042 reset that ends the VM; pci=off and
 * the i8042 options skip probes for hardware wisp does not have. */
#define VM_DEFAULT_CMDLINE                                                \
	"console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux " \
	"i8042.nopnp i8042.dumbkbd"

struct vm_config {
	const char *kernel;
	const char *initrd; /* NULL: none */
	const char *cmdline_extra; /* NULL: none */
	bool no_default_cmdline;
	int cpus;
	uint64_t memory_mib;
	enum serial_mode serial;
	const char *serial_path; /* SERIAL_FILE */
	bool debug_exit; /* enable the test-guest exit port */
};

void vm_config_defaults(struct vm_config *c);

#endif
