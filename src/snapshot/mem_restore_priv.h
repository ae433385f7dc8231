/* SPDX-License-Identifier: MIT */
/* Shared by mem_restore.c (the File backend, the entry points) and uffd.c
 * (the Uffd backend). */
#ifndef WISP_SNAPSHOT_MEM_RESTORE_PRIV_H
#define WISP_SNAPSHOT_MEM_RESTORE_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "snapshot/mem_restore.h"

struct snap_mem_restore {
	enum snap_mem_backend backend;
	bool private_map; /* File backend, mapped MAP_PRIVATE over guest RAM */
	uint8_t *hva;
	size_t len;
	/* Uffd backend. */
	int uffd, sock, pidfd, stop_efd;
	bool registered, thread_started;
	pthread_t monitor;
	pthread_mutex_t lock; /* the fallback fields and failed */
	bool fallback_set, failed, failure_handled;
	char why[256];
	int fb_fd; /* the fallback memory file, -1: none */
	const uint8_t *fb_map; /* its read-only mapping (len bytes) */
	snap_mem_fail_fn fail;
	void *fail_ctx;
	atomic_bool st_failed, st_took_over;
	atomic_ullong st_pages;
};

/* Opens path read-only and checks that it has exactly len bytes. */
int snap_mem_open_file(const char *path, size_t len, int *fd, struct err *e);

int snap_uffd_start(struct snap_mem_restore *r, const char *sock_path,
		    struct err *e);
int snap_uffd_set_fallback(struct snap_mem_restore *r, const char *mem_path,
			   snap_mem_fail_fn fail, void *ctx, struct err *e);
void snap_uffd_stop(struct snap_mem_restore *r);

#endif
