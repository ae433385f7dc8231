// SPDX-License-Identifier: MIT
#include "snapshot/uffd_map.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

int uffd_map_encode(char *buf, size_t cap, const struct uffd_region *r, int n)
{
	json_t *arr;
	size_t need;
	int ret = -ENOMEM;

	if (n < 0 || n > UFFD_MAP_MAX_REGIONS)
		return -ENOSPC;
	arr = json_array();
	if (!arr)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		/* json_int_t is long long: every value is checked to fit. */
		if (r[i].base > INT64_MAX || r[i].size > INT64_MAX ||
		    r[i].offset > INT64_MAX || r[i].page_size > INT64_MAX) {
			ret = -ERANGE;
			goto out;
		}
		json_t *o = json_pack(
			"{s:I,s:I,s:I,s:I,s:I}", "base_host_virt_addr",
			(json_int_t)r[i].base, "size", (json_int_t)r[i].size,
			"offset", (json_int_t)r[i].offset, "page_size",
			(json_int_t)r[i].page_size, "page_size_kib",
			(json_int_t)r[i].page_size);
		if (!o || json_array_append_new(arr, o) < 0)
			goto out;
	}
	need = json_dumpb(arr, NULL, 0, JSON_COMPACT);
	if (need == 0)
		goto out;
	if (need > cap) {
		ret = -ENOSPC;
		goto out;
	}
	ret = (int)json_dumpb(arr, buf, cap, JSON_COMPACT);
out:
	json_decref(arr);
	return ret;
}

static int get_u64(json_t *o, int i, const char *key, bool required,
		   uint64_t *v, struct err *e)
{
	json_t *j = json_object_get(o, key);

	if (!j) {
		if (!required)
			return 1;
		return err_set(e, -EINVAL, "uffd mapping %d: no '%s'", i, key);
	}
	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return err_set(
			e, -EINVAL,
			"uffd mapping %d: '%s' is not an unsigned integer", i,
			key);
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

int uffd_map_parse(const char *buf, size_t len, struct uffd_region *out,
		   int max, struct err *e)
{
	json_error_t je;
	json_t *root;
	size_t n;
	int ret = -EINVAL;

	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return err_set(e, -EINVAL, "uffd mappings: bad JSON: %s",
			       je.text);
	if (!json_is_array(root)) {
		err_set(e, -EINVAL, "uffd mappings: not a JSON array");
		goto out;
	}
	n = json_array_size(root);
	if (n == 0 || n > (size_t)max) {
		err_set(e, -EINVAL, "uffd mappings: %zu regions (1..%d)", n,
			max);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(root, i);
		struct uffd_region *r = &out[i];
		int k;

		if (!json_is_object(o)) {
			err_set(e, -EINVAL, "uffd mapping %zu: not an object",
				i);
			goto out;
		}
		if (get_u64(o, (int)i, "base_host_virt_addr", true, &r->base,
			    e) ||
		    get_u64(o, (int)i, "size", true, &r->size, e) ||
		    get_u64(o, (int)i, "offset", true, &r->offset, e))
			goto out;
		k = get_u64(o, (int)i, "page_size", false, &r->page_size, e);
		if (k < 0)
			goto out;
		if (k == 1 &&
		    get_u64(o, (int)i, "page_size_kib", true, &r->page_size, e))
			goto out;
		if (r->page_size < 4096 ||
		    (r->page_size & (r->page_size - 1))) {
			err_set(e, -EINVAL,
				"uffd mapping %zu: page size %" PRIu64
				" is not a power of two >= 4096",
				i, r->page_size);
			goto out;
		}
		if (r->size == 0 ||
		    (r->base | r->size | r->offset) & (r->page_size - 1)) {
			err_set(e, -EINVAL,
				"uffd mapping %zu: base, size and offset must be non-zero multiples of the page size",
				i);
			goto out;
		}
		if (r->base + r->size < r->base ||
		    r->offset + r->size < r->offset) {
			err_set(e, -EINVAL, "uffd mapping %zu: wraps around",
				i);
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			if (r->base < out[j].base + out[j].size &&
			    out[j].base < r->base + r->size) {
				err_set(e, -EINVAL,
					"uffd mappings %zu and %zu overlap", j,
					i);
				goto out;
			}
		}
	}
	ret = (int)n;
out:
	json_decref(root);
	return ret;
}
