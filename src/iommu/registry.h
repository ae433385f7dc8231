/* SPDX-License-Identifier: MIT */
/*
 * The host-wide registry of global IOASIDs: every wisp process on a host
 * that opens the same registry file holds its global IDs as open-file-
 * description (OFD) byte locks on it, byte N for ID N. Two processes
 * therefore never hold the same ID, and the kernel drops a process's
 * locks when it dies, so a crashed VM's IDs are reclaimed without any
 * cleanup pass or stale state.
 *
 * The file holds no data (it stays empty; locks beyond EOF are valid).
 * Default path: /run/wisp/ioasid for root, else
 * $XDG_RUNTIME_DIR/wisp/ioasid or /tmp/wisp-UID/ioasid (the directory is
 * created 0700; the file must be a regular file of the caller's uid).
 * IDs are unique among the processes of one user (and root's); the
 * users' ranges are separate, which is all an emulated IOMMU needs.
 *
 * Owns: the registry fd. Thread-safe (OFD locks are per open file
 * description; callers serialize through struct ioasid_sys).
 */
#ifndef WISP_IOMMU_REGISTRY_H
#define WISP_IOMMU_REGISTRY_H

#include <stdint.h>

#include "util/err.h"

struct ioasid_registry {
	int fd;
};

/* Opens (creating) the registry file at path (NULL: the default). On
 * failure r->fd is -1 and nothing is left open. */
int ioasid_registry_open(struct ioasid_registry *r, const char *path,
			 struct err *e);
void ioasid_registry_close(struct ioasid_registry *r);
/* 0 when this registry now holds id; -EBUSY when another process does. */
int ioasid_registry_claim(struct ioasid_registry *r, uint32_t id);
void ioasid_registry_release(struct ioasid_registry *r, uint32_t id);

#endif
