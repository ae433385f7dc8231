// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the snapshot state file: snap_parse over
 * arbitrary bytes, then every section it accepts through its decoder
 * (configuration, VM, vCPU), as a restore does before it builds
 * anything. An input that does not parse as a file is also fed to the
 * decoders directly, so their payload checks see arbitrary bytes too.
 * Checks that every failure carries a config-class message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "snapshot/config_state.h"
#include "snapshot/format.h"
#include "snapshot/kvm_state.h"

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_snapshot: check failed: %s\n", \
				#cond);                                      \
			abort();                                             \
		}                                                            \
	} while (0)

static void decode(uint32_t type, const uint8_t *p, uint64_t len)
{
	struct err e = { 0 };
	int ret = 0;

	switch (type) {
	case SNAP_SEC_CONFIG: {
		struct vm_config c;

		ret = snap_config_decode(&c, p, len, &e);
		if (!ret)
			CHECK(c.cpus >= 1 && c.nr_disks <= VM_MAX_DISKS &&
			      c.nr_servers <= VM_MAX_SERVERS);
		/* A restore checks every server command it would run. */
		for (int i = 0; !ret && i < c.nr_servers; i++) {
			struct err se = { 0 };

			if (c.servers[i].spawn &&
			    snap_spawn_check(c.servers[i].spawn, &se))
				CHECK(se.cls == ERR_CONFIG && se.msg[0]);
		}
		break;
	}
	case SNAP_SEC_VM: {
		struct snap_vm_state s;

		ret = snap_vm_decode(&s, p, len, &e);
		break;
	}
	case SNAP_SEC_VCPU: {
		struct snap_vcpu_state s;

		ret = snap_vcpu_decode(&s, p, len, &e);
		if (!ret) {
			CHECK(s.nr_msrs <= SNAP_MAX_MSRS);
			snap_vcpu_state_free(&s);
		}
		break;
	}
	default:
		return;
	}
	if (ret)
		CHECK(e.cls == ERR_CONFIG && e.msg[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct snap_file f;
	struct err e = { 0 };

	if (snap_parse(&f, data, size, &e)) {
		CHECK(e.cls == ERR_CONFIG && e.msg[0]);
		if (size)
			decode(SNAP_SEC_CONFIG + data[0] % 3, data + 1,
			       size - 1);
		return 0;
	}
	for (int i = 0; i < f.nr; i++) {
		CHECK(f.sec[i].data >= data &&
		      f.sec[i].data + f.sec[i].len <= data + size);
		decode(f.sec[i].type, f.sec[i].data, f.sec[i].len);
	}
	return 0;
}
