// SPDX-License-Identifier: MIT
/* Alone in its file so the API's JSON mapping (and its fuzzer) can use
 * the defaults without linking the VMM. */
#include "vmm/config.h"

#include <string.h>

void vm_config_defaults(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cpus = VM_DEFAULT_CPUS;
	c->memory_mib = VM_DEFAULT_MEMORY_MIB;
	c->serial = SERIAL_STDIO;
	c->acpi = true;
	c->async_pf = true;
	c->serial_post_on = true; /* docs/performance.md, posted writes */
	c->shutdown_timeout_s = VM_DEFAULT_SHUTDOWN_TIMEOUT_S;
	c->jail_uid = 65534; /* nobody, nogroup: JAIL_DEFAULT_ID */
	c->jail_gid = 65534;
}
