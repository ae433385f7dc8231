// SPDX-License-Identifier: MIT
/* The API's JSON mapping (src/api/model.c, api.c) without a VM: what a
 * body turns into in struct vm_config, and that refused bodies change
 * nothing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"
#include "api/model.h"

static json_t *J(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

/* Runs fn's body and frees it. */
#define PUT(call, text)               \
	({                            \
		json_t *b_ = J(text); \
		int r_ = (call);      \
		json_decref(b_);      \
		r_;                   \
	})

static void test_root_drive_first_and_cmdline(void **state)
{
	struct model m;
	struct vm_config c;
	struct err e = { 0 };

	(void)state;
	model_init(&m);
	assert_int_equal(PUT(model_put_boot_source(&m, b_, &e),
			     "{\"kernel_image_path\": \"/k\", "
			     "\"boot_args\": \"console=ttyS0\"}"),
			 0);
	assert_int_equal(PUT(model_put_drive(&m, "data", b_, &e),
			     "{\"path_on_host\": \"/d\", "
			     "\"is_root_device\": false}"),
			 0);
	assert_int_equal(
		PUT(model_put_drive(&m, "a_very_long_root_drive_id", b_, &e),
		    "{\"path_on_host\": \"/r\", "
		    "\"is_root_device\": true, "
		    "\"is_read_only\": true}"),
		0);
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_string_equal(c.kernel, "/k");
	assert_int_equal(c.nr_disks, 2);
	/* The root device is vda whatever the order of the PUTs. */
	assert_string_equal(c.disks[0].path, "/r");
	assert_true(c.disks[0].readonly);
	/* The virtio-blk serial holds 20 bytes. */
	assert_string_equal(c.disks[0].id, "a_very_long_root_dri");
	assert_string_equal(c.disks[1].path, "/d");
	assert_string_equal(c.disks[1].id, "data");
	assert_string_equal(c.cmdline_extra, "console=ttyS0 root=/dev/vda ro");
	/* Replacing a drive keeps one entry; a second root is refused. */
	assert_int_equal(PUT(model_put_drive(&m, "data", b_, &e),
			     "{\"path_on_host\": \"/d2\", "
			     "\"is_root_device\": false, "
			     "\"partuuid\": \"x\"}"),
			 0);
	assert_int_equal(m.nr_drives, 2);
	assert_int_equal(PUT(model_put_drive(&m, "data", b_, &e),
			     "{\"path_on_host\": \"/d\", "
			     "\"is_root_device\": true}"),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "already the root device"));
	assert_string_equal(m.drives[0].path, "/d2");
	model_free(&m);
}

static void test_partuuid_root(void **state)
{
	struct model m;
	struct vm_config c;
	struct err e = { 0 };

	(void)state;
	model_init(&m);
	PUT(model_put_boot_source(&m, b_, &e),
	    "{\"kernel_image_path\": \"/k\"}");
	assert_int_equal(PUT(model_put_drive(&m, "r", b_, &e),
			     "{\"path_on_host\": \"/r\", "
			     "\"is_root_device\": true, "
			     "\"partuuid\": \"1234-ab\"}"),
			 0);
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_string_equal(c.cmdline_extra, "root=PARTUUID=1234-ab rw");
	model_free(&m);
}

/* PUT /drives with "socket" (Firecracker's vhost-user drives) and PUT
 * /fs/{id}: vhost-user devices in the config, after the file disks. */
static void test_vhost_user_drive_and_fs(void **state)
{
	struct model m;
	struct vm_config c;
	struct err e = { 0 };
	json_t *j;

	(void)state;
	model_init(&m);
	PUT(model_put_boot_source(&m, b_, &e),
	    "{\"kernel_image_path\": \"/k\"}");
	assert_int_equal(PUT(model_put_drive(&m, "r", b_, &e),
			     "{\"path_on_host\": \"/r\", "
			     "\"is_root_device\": true}"),
			 0);
	assert_int_equal(PUT(model_put_drive(&m, "vu", b_, &e),
			     "{\"socket\": \"/run/qsd.sock\", "
			     "\"is_root_device\": false}"),
			 0);
	/* A vhost-user drive has no image path and is not the root. */
	assert_int_equal(PUT(model_put_drive(&m, "bad", b_, &e),
			     "{\"socket\": \"/s\", \"path_on_host\": \"/x\", "
			     "\"is_root_device\": false}"),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "vhost-user drive"));
	assert_int_equal(PUT(model_put_drive(&m, "bad", b_, &e),
			     "{\"socket\": \"/s\", \"is_root_device\": true}"),
			 -EINVAL);
	assert_int_equal(PUT(model_put_drive(&m, "bad", b_, &e),
			     "{\"is_root_device\": false}"),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "missing field 'path_on_host'"));
	assert_int_equal(
		PUT(model_put_fs(&m, "share", b_, &e),
		    "{\"fs_id\": \"share\", \"socket\": \"/vfs.sock\", "
		    "\"tag\": \"hostdir\"}"),
		0);
	assert_int_equal(PUT(model_put_fs(&m, "x", b_, &e),
			     "{\"fs_id\": \"x\", \"socket\": \"/s\"}"),
			 -EINVAL);
	assert_int_equal(PUT(model_put_fs(&m, "x", b_, &e),
			     "{\"fs_id\": \"x\", \"socket\": \"/s\", "
			     "\"tag\": \"a b\"}"),
			 -EINVAL);
	assert_int_equal(PUT(model_put_fs(&m, "x", b_, &e),
			     "{\"fs_id\": \"y\", \"socket\": \"/s\", "
			     "\"tag\": \"t\"}"),
			 -EINVAL);
	assert_int_equal(m.nr_fs, 1);
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_int_equal(c.nr_disks, 1);
	assert_string_equal(c.disks[0].path, "/r");
	assert_int_equal(c.nr_vhost_user, 2);
	assert_int_equal(c.vhost_user[0].device_id, 2);
	assert_string_equal(c.vhost_user[0].socket, "/run/qsd.sock");
	assert_string_equal(c.vhost_user[0].id, "vu");
	assert_int_equal(c.vhost_user[1].device_id, 26);
	assert_string_equal(c.vhost_user[1].socket, "/vfs.sock");
	assert_string_equal(c.vhost_user[1].tag, "hostdir");
	j = model_json(&m);
	assert_non_null(j);
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(j, "fs"), 0), "tag")),
		"hostdir");
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(j, "drives"), 1),
			"socket")),
		"/run/qsd.sock");
	json_decref(j);
	model_free(&m);
}

static void test_machine_put_and_patch(void **state)
{
	struct model m;
	struct vm_config c;
	struct err e = { 0 };

	(void)state;
	model_init(&m);
	assert_int_equal(PUT(model_put_machine(&m, b_, false, &e),
			     "{\"vcpu_count\": 4, \"mem_size_mib\": 512}"),
			 0);
	assert_int_equal(PUT(model_put_machine(&m, b_, true, &e),
			     "{\"mem_size_mib\": 256}"),
			 0);
	assert_int_equal(m.vcpu_count, 4);
	assert_int_equal(m.mem_size_mib, 256);
	/* A bad field anywhere refuses the whole body. */
	assert_int_equal(PUT(model_put_machine(&m, b_, true, &e),
			     "{\"vcpu_count\": 2, \"mem_size_mib\": 0}"),
			 -EINVAL);
	assert_int_equal(m.vcpu_count, 4);
	assert_non_null(strstr(e.msg, "mem_size_mib"));
	/* PUT without a field resets it... and requires both. */
	assert_int_equal(PUT(model_put_machine(&m, b_, false, &e),
			     "{\"vcpu_count\": 2}"),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "missing field 'mem_size_mib'"));
	/* Without a boot source nothing boots. */
	assert_int_equal(model_to_vm_config(&m, &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "boot source"));
	model_free(&m);
}

static void test_entropy_rate(void **state)
{
	struct model m;
	struct vm_config c;
	struct err e = { 0 };

	(void)state;
	model_init(&m);
	PUT(model_put_boot_source(&m, b_, &e),
	    "{\"kernel_image_path\": \"/k\"}");
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_false(c.rng);
	/* 1000 bytes per 100 ms: 10000 B/s. */
	assert_int_equal(PUT(model_put_entropy(&m, b_, &e),
			     "{\"rate_limiter\": {\"bandwidth\": "
			     "{\"size\": 1000, \"refill_time\": 100}}}"),
			 0);
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_true(c.rng);
	assert_int_equal(c.rng_rate, 10000);
	/* Below 1 B/s is rounded up to the slowest rate, not to "none". */
	PUT(model_put_entropy(&m, b_, &e),
	    "{\"rate_limiter\": {\"bandwidth\": "
	    "{\"size\": 1, \"refill_time\": 5000}}}");
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_int_equal(c.rng_rate, 1);
	/* Zero size: unlimited, as in Firecracker. */
	PUT(model_put_entropy(&m, b_, &e),
	    "{\"rate_limiter\": {\"bandwidth\": "
	    "{\"size\": 0, \"refill_time\": 100}}}");
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_int_equal(c.rng_rate, 0);
	model_free(&m);
}

/* Network interfaces become virtio-net devices on their taps, MAC
 * parsed; PUT /iommu puts the devices behind a virtio-iommu. */
static void test_ifaces_and_iommu(void **state)
{
	struct model m;
	struct vm_config c;
	struct err e = { 0 };

	(void)state;
	model_init(&m);
	PUT(model_put_boot_source(&m, b_, &e),
	    "{\"kernel_image_path\": \"/k\"}");
	assert_int_equal(
		PUT(model_put_iface(&m, "eth0", b_, &e),
		    "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap7\", "
		    "\"guest_mac\": \"AA:fc:00:00:00:0b\"}"),
		0);
	assert_int_equal(PUT(model_put_iface(&m, "eth1", b_, &e),
			     "{\"iface_id\": \"eth1\", "
			     "\"host_dev_name\": \"tap8\"}"),
			 0);
	assert_int_equal(
		PUT(model_put_iommu(&m, b_, &e), "{\"enabled\": true}"), 0);
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_true(c.iommu);
	assert_int_equal(c.nr_nets, 2);
	assert_string_equal(c.nets[0].tap, "tap7");
	assert_string_equal(c.nets[0].id, "eth0");
	assert_true(c.nets[0].has_mac);
	assert_int_equal(c.nets[0].mac[0], 0xaa);
	assert_int_equal(c.nets[0].mac[1], 0xfc);
	assert_int_equal(c.nets[0].mac[5], 0x0b);
	assert_false(c.nets[1].has_mac);
	/* Wrong types and unknown fields of /iommu are refused. */
	assert_int_equal(PUT(model_put_iommu(&m, b_, &e), "{\"enabled\": 1}"),
			 -EINVAL);
	assert_int_equal(PUT(model_put_iommu(&m, b_, &e), "{\"on\": true}"),
			 -EINVAL);
	/* The request mode and polling, as --iommu-requests and
	 * --iommu-poll: 0 is never, which the VMM takes as -1. */
	assert_false(c.iommu_vcpu);
	assert_int_equal(c.iommu_poll_ns, 0);
	assert_int_equal(PUT(model_put_iommu(&m, b_, &e),
			     "{\"enabled\": true, \"requests\": \"vcpu\"}"),
			 0);
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_true(c.iommu_vcpu);
	assert_int_equal(PUT(model_put_iommu(&m, b_, &e),
			     "{\"enabled\": true, \"requests\": \"thread\", "
			     "\"poll_us\": 50}"),
			 0);
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_false(c.iommu_vcpu);
	assert_int_equal(c.iommu_poll_ns, 50000);
	assert_int_equal(PUT(model_put_iommu(&m, b_, &e),
			     "{\"enabled\": true, \"requests\": \"thread\", "
			     "\"poll_us\": 0}"),
			 0);
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_int_equal(c.iommu_poll_ns, -1);
	assert_int_equal(PUT(model_put_iommu(&m, b_, &e),
			     "{\"enabled\": true, \"requests\": \"both\"}"),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "'both'"));
	assert_int_equal(PUT(model_put_iommu(&m, b_, &e),
			     "{\"enabled\": true, \"poll_us\": 2001}"),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "poll_us"));
	assert_int_equal(PUT(model_put_iommu(&m, b_, &e),
			     "{\"enabled\": true, \"poll_us\": -1}"),
			 -EINVAL);
	assert_int_equal(
		PUT(model_put_iommu(&m, b_, &e), "{\"enabled\": true}"), 0);
	assert_int_equal(model_to_vm_config(&m, &c, &e), 0);
	assert_false(c.iommu_vcpu);
	assert_int_equal(c.iommu_poll_ns, 0);
	/* An MTU wisp cannot honour is refused at start, not ignored. */
	PUT(model_put_iface(&m, "eth1", b_, &e),
	    "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap8\", "
	    "\"mtu\": 1400}");
	assert_int_equal(model_to_vm_config(&m, &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "mtu"));
	model_free(&m);
}

static int no_start(void *o, const struct vm_config *c, struct err *e)
{
	(void)o;
	(void)c;
	return err_config(e, -EINVAL, "kernel '%s': no such file", c->kernel);
}

static const struct api_ops failing = { .start = no_start };

static void test_config_file_atomic_on_typo(void **state)
{
	struct api a;
	struct err e = { 0 };
	const char *bad = "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, "
			  "\"machine-confg\": {}}";
	const char *good = "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, "
			   "\"drives\": [{\"drive_id\": \"x\", "
			   "\"path_on_host\": \"/x\", "
			   "\"is_root_device\": false}]}";
	const char *start = "{\"action_type\": \"InstanceStart\"}";
	char *resp;

	(void)state;
	api_init(&a, &failing, NULL);
	assert_int_equal(api_load_config(&a, bad, strlen(bad), &e), -EINVAL);
	assert_non_null(strstr(e.msg, "machine-confg"));
	/* Nothing from a file with an unknown section is applied. */
	assert_null(a.m.kernel);
	assert_int_equal(api_load_config(&a, good, strlen(good), &e), 0);
	assert_string_equal(a.m.kernel, "/k");
	assert_int_equal(a.m.nr_drives, 1);
	/* A failing start is a 400 with the VMM's message, and the state
	 * stays "Not started". */
	assert_int_equal(api_handle(&a, "PUT", "/actions", start, strlen(start),
				    &resp),
			 400);
	assert_non_null(strstr(resp, "kernel '/k': no such file"));
	free(resp);
	assert_int_equal(a.state, API_NOT_STARTED);
	api_destroy(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_drive_first_and_cmdline),
		cmocka_unit_test(test_partuuid_root),
		cmocka_unit_test(test_vhost_user_drive_and_fs),
		cmocka_unit_test(test_machine_put_and_patch),
		cmocka_unit_test(test_entropy_rate),
		cmocka_unit_test(test_ifaces_and_iommu),
		cmocka_unit_test(test_config_file_atomic_on_typo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
