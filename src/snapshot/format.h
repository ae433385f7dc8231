/* SPDX-License-Identifier: MIT */
/*
 * The snapshot state file (docs/snapshot.md): a header (magic, format
 * version, section count) and sections, each a type, a length and a
 * CRC-32 of its payload, ending with an END section. snap_parse checks
 * every header, length and CRC of the whole file before a caller looks
 * at any payload, so a truncated, corrupt or foreign file is refused
 * before anything is restored. What is inside a section is decoded
 * (with its own checks) by the code that owns that state.
 *
 * Owns nothing but the writer's buffer; pure (no KVM, no VM).
 */
#ifndef WISP_SNAPSHOT_FORMAT_H
#define WISP_SNAPSHOT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/ser.h"

#define SNAP_MAGIC "WISPSNAP"
#define SNAP_MAGIC_LEN 8
/* Bumped on any change to a section's layout: an older or newer wisp
 * refuses the file rather than misreading it. */
#define SNAP_VERSION 3
#define SNAP_HEADER_LEN 16 /* magic, u32 version, u32 sections */
#define SNAP_SECTION_HEADER_LEN 16 /* u32 type, u32 crc32, u64 length */
#define SNAP_MAX_SECTIONS 256
/* A state file holds registers and device state, never guest RAM. */
#define SNAP_MAX_FILE (64u << 20)

enum snap_section_type {
	SNAP_SEC_END = 0,
	SNAP_SEC_CONFIG = 1, /* the struct vm_config to rebuild the VM from */
	SNAP_SEC_VM = 2, /* irqchip, PIT, kvmclock */
	SNAP_SEC_VCPU = 3, /* one per vCPU, in order */
	SNAP_SEC_DEVICE = 4, /* one per device */
	SNAP_SEC_MEMORY = 5, /* guest RAM layout of the memory file */
	/* Only in a Diff snapshot: which pages its memory file holds
	 * (snapshot/merge.h); a restore refuses such a file until it was
	 * merged onto its base. */
	SNAP_SEC_DIFF = 6,
	/* One per IOREQ server, in order: its index and the device state
	 * the server gave (opaque here; the server checks it on load). */
	SNAP_SEC_SERVER = 7,
	SNAP_SEC_NR
};

struct snap_section {
	uint32_t type;
	const uint8_t *data; /* inside the parsed buffer */
	uint64_t len;
};

struct snap_file {
	uint32_t version;
	int nr; /* sections before END */
	struct snap_section sec[SNAP_MAX_SECTIONS];
};

/* Checks the whole buffer: magic, version, every section header (known
 * type, length inside the buffer), every CRC, the count, END last and
 * nothing after it. 0 with f filled (pointing into buf, which must
 * outlive f), or -EINVAL with e (config class) saying what is wrong. */
int snap_parse(struct snap_file *f, const uint8_t *buf, size_t len,
	       struct err *e);

/* Reads a state file of at most SNAP_MAX_FILE bytes into a new buffer
 * (*buf, the caller frees it). Config class errors: the file is the
 * user's. */
int snap_read_file(const char *path, uint8_t **buf, size_t *len, struct err *e);

/* Builds a state file in memory. */
struct snap_writer {
	struct ser_w w;
	size_t sec_start; /* offset of the open section's header */
	bool open;
	uint32_t nr;
};

void snap_writer_init(struct snap_writer *sw);
/* Opens a section: what follows (sw->w) is its payload. */
void snap_section_begin(struct snap_writer *sw, uint32_t type);
void snap_section_end(struct snap_writer *sw);
/* Adds END and fixes the count; -ENOMEM if any write failed. The
 * bytes are sw->w.p, sw->w.len. */
int snap_writer_finish(struct snap_writer *sw, struct err *e);
void snap_writer_free(struct snap_writer *sw);

/* Writes the bytes to path through a temporary file in the same
 * directory renamed over it, so a failed write leaves no half file. */
int snap_write_file(const char *path, const void *buf, size_t len,
		    struct err *e);

/* The first section of a type at or after *pos (advanced past it), or
 * NULL. */
const struct snap_section *snap_next(const struct snap_file *f, int *pos,
				     uint32_t type);

#endif
