/* SPDX-License-Identifier: MIT */
/* --config-file: a Firecracker JSON config file, applied through the same
 * mapping as the API's bodies (api_load_config). */
#ifndef WISP_API_CONFIG_FILE_H
#define WISP_API_CONFIG_FILE_H

#include "api/api.h"
#include "util/err.h"

/* Larger files are refused rather than read. */
#define API_CONFIG_FILE_MAX (1 << 20)

/* 0, or -errno with e (class config) prefixed with the file's name. */
int api_config_file_load(struct api *a, const char *path, struct err *e);

#endif
