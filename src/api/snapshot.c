// SPDX-License-Identifier: MIT
/* PUT /snapshot/create and PUT /snapshot/load: Firecracker's bodies and
 * rules (create only while Paused; load only before InstanceStart and
 * before any boot resource was configured). The work is the front
 * end's (struct api_ops). */
#include "api/api.h"

#include <errno.h>
#include <string.h>

/* Strict: every key known, of its type, strings without NULs. */
static int str_field(json_t *o, const char *what, const char *key,
		     bool required, const char **out, struct err *e)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return err_config(e, -EINVAL,
					  "%s: field '%s' is required", what,
					  key);
		return 0;
	}
	if (!json_is_string(v) || !json_string_length(v) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return err_config(e, -EINVAL,
				  "%s: field '%s': expected a non-empty string",
				  what, key);
	*out = json_string_value(v);
	return 0;
}

static int bool_field(json_t *o, const char *what, const char *key, bool *out,
		      struct err *e)
{
	json_t *v = json_object_get(o, key);

	*out = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return err_config(e, -EINVAL,
				  "%s: field '%s': expected a boolean", what,
				  key);
	*out = json_is_true(v);
	return 0;
}

static int only_keys(json_t *o, const char *what, const char *const *keys,
		     struct err *e)
{
	const char *key;
	json_t *v;

	if (!json_is_object(o))
		return err_config(e, -EINVAL, "%s: expected a JSON object",
				  what);
	json_object_foreach(o, key, v)
	{
		const char *const *k;

		(void)v;
		for (k = keys; *k; k++)
			if (!strcmp(*k, key))
				break;
		if (!*k)
			return err_config(e, -EINVAL, "%s: unknown field '%s'",
					  what, key);
	}
	return 0;
}

int api_parse_snapshot_create(json_t *body, struct api_snapshot_create *r,
			      struct err *e)
{
	static const char *const keys[] = { "snapshot_type", "snapshot_path",
					    "mem_file_path", "version", NULL };
	const char *type, *ver;
	int ret = only_keys(body, "snapshot/create", keys, e);

	memset(r, 0, sizeof(*r));
	if (!ret)
		ret = str_field(body, "snapshot/create", "snapshot_type", false,
				&type, e);
	if (!ret)
		ret = str_field(body, "snapshot/create", "snapshot_path", true,
				&r->snapshot_path, e);
	if (!ret)
		ret = str_field(body, "snapshot/create", "mem_file_path", true,
				&r->mem_path, e);
	/* Older Firecracker clients send a target version; one format. */
	if (!ret)
		ret = str_field(body, "snapshot/create", "version", false, &ver,
				e);
	if (ret)
		return ret;
	if (!type || !strcmp(type, "Full"))
		r->diff = false;
	else if (!strcmp(type, "Diff"))
		r->diff = true;
	else
		return err_config(e, -EINVAL,
				  "snapshot/create: field 'snapshot_type': "
				  "'%s' is not Full or Diff",
				  type);
	return 0;
}

int api_parse_snapshot_load(json_t *body, struct api_snapshot_load *r,
			    struct err *e)
{
	static const char *const keys[] = {
		"snapshot_path",	 "mem_backend", "mem_file_path",
		"enable_diff_snapshots", "resume_vm",	NULL
	};
	static const char *const bkeys[] = { "backend_type", "backend_path",
					     NULL };
	const char *what = "snapshot/load", *type = NULL, *legacy = NULL;
	json_t *mb;
	int ret = only_keys(body, what, keys, e);

	memset(r, 0, sizeof(*r));
	if (!ret)
		ret = str_field(body, what, "snapshot_path", true,
				&r->snapshot_path, e);
	if (!ret)
		ret = str_field(body, what, "mem_file_path", false, &legacy, e);
	if (!ret)
		ret = bool_field(body, what, "enable_diff_snapshots",
				 &r->enable_diff, e);
	if (!ret)
		ret = bool_field(body, what, "resume_vm", &r->resume, e);
	if (ret)
		return ret;
	mb = json_object_get(body, "mem_backend");
	if (mb && !json_is_null(mb)) {
		ret = only_keys(mb, "snapshot/load: mem_backend", bkeys, e);
		if (!ret)
			ret = str_field(mb, "snapshot/load: mem_backend",
					"backend_type", true, &type, e);
		if (!ret)
			ret = str_field(mb, "snapshot/load: mem_backend",
					"backend_path", true, &r->mem_path, e);
		if (ret)
			return ret;
		if (!strcmp(type, "Uffd"))
			r->uffd = true;
		else if (strcmp(type, "File"))
			return err_config(e, -EINVAL,
					  "snapshot/load: mem_backend: field "
					  "'backend_type': '%s' is not File or "
					  "Uffd",
					  type);
	}
	/* Firecracker: exactly one of mem_backend and mem_file_path. */
	if (legacy && r->mem_path)
		return err_config(e, -EINVAL,
				  "snapshot/load: mem_backend and "
				  "mem_file_path exclude each other");
	if (legacy)
		r->mem_path = legacy;
	if (!r->mem_path)
		return err_config(e, -EINVAL,
				  "snapshot/load: mem_backend (or "
				  "mem_file_path) is required");
	return 0;
}
