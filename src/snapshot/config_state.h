/* SPDX-License-Identifier: MIT */
/*
 * The VM's configuration inside its snapshot (SNAP_SEC_CONFIG), so a
 * restore needs nothing but the two files: CPUs, RAM, devices and their
 * backends (disk images, servers), console and serial, ACPI. Decoding
 * checks every field's range; the strings of the decoded config point
 * into the section's buffer, which must outlive it.
 */
#ifndef WISP_SNAPSHOT_CONFIG_STATE_H
#define WISP_SNAPSHOT_CONFIG_STATE_H

#include <stdint.h>

#include "util/err.h"
#include "util/ser.h"
#include "vmm/config.h"

void snap_config_save(const struct vm_config *c, struct ser_w *w);
int snap_config_decode(struct vm_config *c, const uint8_t *p, uint64_t len,
		       struct err *e);

/* Whether a --spawn-server command may be kept in a state file: a state
 * file is data, so only the description of one of wisp's own servers
 * (wisp-blk, wisp-rng, wisp-console, wisp-net by that file name, with
 * nothing but their device options --disk, --rate, --net, each with one
 * value) is; a restore starts it again as wisp would (its socket and
 * jail added by wisp). 0, or -EINVAL with a config-class e naming what
 * is not allowed. */
int snap_spawn_check(const char *cmd, struct err *e);

#endif
