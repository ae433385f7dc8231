// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the API's request handling and JSON mapping
 * (src/api/api.c, src/api/model.c) with no VM behind it. An input is up
 * to 16 requests separated by NUL bytes, each "METHOD PATH\n" followed by
 * its body; the method "CONFIG" feeds the body to the config-file loader
 * instead. One fresh api per input, so the requests of an input build on
 * each other (PUT then GET /vm/config, InstanceStart then PUT after
 * start, PATCH /vm on the fake running VM).
 *
 * Besides the sanitizers, checks: every status is one the API documents;
 * an error carries a JSON {"fault_message": string}; 204 has no body and
 * 200 a JSON body; a started configuration is one vm_create could be
 * given (kernel set, sizes in range, strings terminated).
 *
 * /logger and /metrics (and those config sections) are skipped: they
 * open host paths named by the input and would have the fuzzer append
 * to the host's files.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

#define CHECK(cond)                                                     \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "fuzz_api: check failed: %s\n", \
				#cond);                                 \
			abort();                                        \
		}                                                       \
	} while (0)

static int fake_start(void *opaque, const struct vm_config *c, struct err *e)
{
	(void)opaque;
	(void)e;
	CHECK(c->kernel && *c->kernel);
	CHECK(c->cpus >= 1 && c->cpus <= MODEL_MAX_VCPUS);
	CHECK(c->memory_mib >= 1 && c->memory_mib <= (1ull << 26));
	CHECK(c->nr_disks >= 0 && c->nr_disks <= VM_MAX_DISKS);
	for (int i = 0; i < c->nr_disks; i++) {
		CHECK(c->disks[i].path && c->disks[i].id);
		CHECK(strlen(c->disks[i].id) <= 20);
	}
	CHECK(c->nr_servers >= 0 && c->nr_servers <= VM_MAX_SERVERS);
	for (int i = 0; i < c->nr_servers; i++)
		CHECK(!c->servers[i].socket != !c->servers[i].spawn);
	if (c->cmdline_extra)
		CHECK(strlen(c->cmdline_extra) < (1u << 20));
	return 0;
}

static int fake_pause(void *opaque, bool pause, struct err *e)
{
	(void)opaque;
	(void)pause;
	(void)e;
	return 0;
}

static const struct api_ops ops = { fake_start, fake_pause, NULL, NULL, NULL };

static void check_response(int status, const char *resp)
{
	json_t *j;

	CHECK(status == 200 || status == 204 || status == 400 ||
	      status == 404 || status == 405 || status == 500);
	if (status == 204) {
		CHECK(!resp);
		return;
	}
	CHECK(resp);
	j = json_loads(resp, JSON_DECODE_ANY, NULL);
	CHECK(j);
	if (status >= 400)
		CHECK(json_is_string(json_object_get(j, "fault_message")));
	json_decref(j);
}

/* A record: "METHOD PATH\n" body. */
static void run_record(struct api *a, const uint8_t *p, size_t n)
{
	const uint8_t *nl = memchr(p, '\n', n), *sp;
	char method[16], path[256];
	const char *body;
	size_t blen;
	char *resp = NULL;
	int status;

	if (!nl)
		return;
	sp = memchr(p, ' ', (size_t)(nl - p));
	if (!sp || (size_t)(sp - p) >= sizeof(method) ||
	    (size_t)(nl - sp - 1) >= sizeof(path))
		return;
	memcpy(method, p, (size_t)(sp - p));
	method[sp - p] = 0;
	memcpy(path, sp + 1, (size_t)(nl - sp - 1));
	path[nl - sp - 1] = 0;
	body = (const char *)nl + 1;
	blen = n - (size_t)(nl + 1 - p);
	if (!strcmp(method, "CONFIG")) {
		struct err e = { 0 };

		if (memmem(body, blen, "logger", 6) ||
		    memmem(body, blen, "metrics", 7))
			return;
		if (api_load_config(a, body, blen, &e))
			CHECK(e.msg[0]);
		return;
	}
	if (!strncmp(path, "/logger", 7) || !strncmp(path, "/metrics", 8))
		return;
	status = api_handle(a, method, path, blen ? body : NULL, blen, &resp);
	check_response(status, resp);
	free(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api a;
	size_t off = 0;

	api_init(&a, &ops, NULL);
	for (int i = 0; i < 16 && off < size; i++) {
		const uint8_t *end = memchr(data + off, 0, size - off);
		size_t n = end ? (size_t)(end - (data + off)) : size - off;

		run_record(&a, data + off, n);
		off += n + 1;
	}
	api_destroy(&a);
	return 0;
}
