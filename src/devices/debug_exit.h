/* SPDX-License-Identifier: MIT */
/* A one-byte "test finished" port for freestanding test guests (enabled
 * with --debug-exit). Writing value V to port DEBUG_EXIT_PORT stops the VM
 * and makes wisp exit with status V. Test guests end this way rather than
 * with HLT, which on a PVM host blocks in the kernel forever. */
#ifndef WISP_DEVICES_DEBUG_EXIT_H
#define WISP_DEVICES_DEBUG_EXIT_H

#include <stdint.h>

#include "bus/bus.h"

#define DEBUG_EXIT_PORT 0xf4

struct debug_exit {
	void (*exit)(void *opaque, uint8_t code);
	void *opaque;
};

extern const struct bus_ops debug_exit_ops;

#endif
