// SPDX-License-Identifier: MIT
#include "devices/debug_exit.h"

static void debug_exit_write(void *opaque, int cpu, uint64_t off,
			     const uint8_t *data, uint32_t len)
{
	struct debug_exit *d = opaque;

	d->exit(d->opaque, data[0]);
}

const struct bus_ops debug_exit_ops = { .write = debug_exit_write };
