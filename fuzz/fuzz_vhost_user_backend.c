// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a hostile vhost-user front-end against the back-end
 * side of src/vhost_user: each record is a message (header and payload
 * verbatim, so sizes can lie) with 0 to 8 descriptors (all the same
 * 2 MiB memfd); what vhu_check_request accepts is applied the way a
 * back-end would (memory tables mapped and rings checked against them,
 * lookups by user and guest address). Nothing may crash, leak or map
 * outside the memfd.
 *
 * Input: records {u8 nfds, u16 len, len bytes (header + payload)}.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhost_user/memtab.h"
#include "vhost_user/msg.h"

#define MEMFD_SIZE (2u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct vhu_memtab t;
	struct vhu_msg m;
	uint32_t num = 0;
	size_t pos = 0;

	if (fd < 0) {
		fd = memfd_create("fuzz-vhu", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, MEMFD_SIZE) < 0)
			return 0;
	}
	vhu_memtab_init(&t);
	while (pos + 3 <= size) {
		int fds[VHU_MAX_FDS], nfds = data[pos] % (VHU_MAX_FDS + 1);
		size_t len = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;
		const char *why = NULL;
		struct err e;

		pos += 3;
		if (len > size - pos)
			len = size - pos;
		memset(&m, 0, sizeof(m));
		memcpy(&m, data + pos, len < sizeof(m) ? len : sizeof(m));
		pos += len;
		for (int i = 0; i < nfds; i++)
			fds[i] = fd;
		if (vhu_check_request(&m, nfds, 2, &why))
			continue;
		switch (m.hdr.request) {
		case VHU_SET_MEM_TABLE:
			vhu_memtab_set(&t, m.mem.regions, (int)m.mem.nregions,
				       fds, &e);
			break;
		case VHU_ADD_MEM_REG:
			vhu_memtab_add(&t, &m.mem1.region, fds[0], &e);
			break;
		case VHU_SET_VRING_NUM:
			num = m.state.num;
			break;
		case VHU_SET_VRING_ADDR:
			if (!vhu_check_vring(&t, &m.addr, num, &why)) {
				volatile uint8_t *p =
					vhu_memtab_ua(&t, m.addr.used_ua, 6);

				/* Touch what the check let through. */
				p[0] = p[5];
			}
			break;
		case VHU_SET_VRING_BASE: {
			volatile uint8_t *p =
				vhu_memtab_gpa(&t, m.state.num, 64);

			if (p)
				p[63] = p[0];
			break;
		}
		default:
			break;
		}
	}
	vhu_memtab_clear(&t);
	return 0;
}
