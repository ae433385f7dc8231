// SPDX-License-Identifier: MIT
/*
 * bzImage (Linux x86 boot protocol >= 2.06, 64-bit entry). Only the
 * protected-mode part is loaded (at 1 MiB); the real-mode setup code is not
 * run, wisp enters at load address + 0x200 in long mode with rsi pointing at
 * a zero page that carries a copy of the image's setup header.
 */
#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "boot/boot_priv.h"

/* Header bytes a given protocol version must have (end offsets in the
 * file): cmdline_size (2.06) ends at 0x23c; init_size (2.10) at 0x264. */
#define BZ_HDR_END_206 0x23c
#define BZ_HDR_END_210 0x264

bool bzimage_probe(const uint8_t *buf, size_t size)
{
	return size >= BZ_MAGIC_OFFSET + 4 &&
	       boot_le32(buf + BZ_MAGIC_OFFSET) == BZ_MAGIC;
}

int bzimage_parse(const struct boot_ctx *c, struct boot_image *img)
{
	const uint8_t *buf = c->cfg->kernel;
	size_t size = c->cfg->kernel_size;
	uint64_t low_end = guest_mem_low_end(c->m);
	uint64_t pm_off, pm_size, setup_sects, need_end, hdr_end, copy_end;
	struct setup_header *h = &img->hdr;
	uint16_t version;

	if (size < BZ_MAGIC_OFFSET + 6)
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': truncated bzImage (%zu bytes, no protocol version)",
			c->kname, size);
	version = boot_le16(buf + BZ_MAGIC_OFFSET + 4);
	if (version < 0x206)
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': boot protocol %u.%02u is too old (need 2.06 or later)",
			c->kname, version >> 8, version & 0xff);

	/* Byte 0x201 is the jump offset: the header ends there. */
	hdr_end = BZ_MAGIC_OFFSET + (uint64_t)buf[BZ_JUMP_OFFSET + 1];
	need_end = version >= 0x20a ? BZ_HDR_END_210 : BZ_HDR_END_206;
	if (size < need_end)
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': truncated bzImage (%zu bytes, the protocol %u.%02u setup header needs 0x%llx)",
			c->kname, size, version >> 8, version & 0xff,
			(unsigned long long)need_end);
	if (hdr_end < need_end)
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': setup header ends at 0x%llx, protocol %u.%02u needs 0x%llx",
			c->kname, (unsigned long long)hdr_end, version >> 8,
			version & 0xff, (unsigned long long)need_end);
	copy_end = hdr_end;
	if (copy_end > BZ_HDR_OFFSET + BZ_HDR_MAX)
		copy_end = BZ_HDR_OFFSET + BZ_HDR_MAX;
	if (copy_end > size)
		copy_end = size;
	img->hdr_len = copy_end - BZ_HDR_OFFSET;
	memset(img->hdr_raw, 0, sizeof(img->hdr_raw));
	memcpy(img->hdr_raw, buf + BZ_HDR_OFFSET, img->hdr_len);
	memcpy(h, img->hdr_raw, sizeof(*h));

	if (!(h->loadflags & BZ_LOADED_HIGH))
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': bzImage is not loaded high (loadflags 0x%02x lack LOADED_HIGH)",
			c->kname, h->loadflags);
	if (version < 0x20c || !(h->xloadflags & BZ_XLF_KERNEL_64))
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': bzImage has no 64-bit entry (protocol %u.%02u, xloadflags 0x%x lack XLF_KERNEL_64)",
			c->kname, version >> 8, version & 0xff, h->xloadflags);

	setup_sects = h->setup_sects ? h->setup_sects : BZ_DEFAULT_SETUP_SECTS;
	pm_off = (setup_sects + 1) * BZ_SECTOR;
	if (pm_off >= size)
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': setup_sects %llu puts the kernel at offset 0x%llx, beyond the end of the file (%zu bytes)",
			c->kname, (unsigned long long)setup_sects,
			(unsigned long long)pm_off, size);
	pm_size = size - pm_off;
	if (pm_size <= BZ_ENTRY64_OFFSET)
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': protected-mode part is only %llu bytes, too small for the 64-bit entry at 0x%x",
			c->kname, (unsigned long long)pm_size,
			BZ_ENTRY64_OFFSET);
	if (!guest_mem_ptr(c->m, LAYOUT_KERNEL_LOAD, pm_size))
		return err_config(
			c->e, -ENOMEM,
			"kernel '%s': %llu KiB at 1 MiB do not fit in guest RAM (low RAM ends at 0x%llx)",
			c->kname, (unsigned long long)(pm_size >> 10),
			(unsigned long long)low_end);

	img->format = BOOT_FORMAT_BZIMAGE;
	img->nr_segments = 1;
	img->seg[0] = (struct boot_segment){ .paddr = LAYOUT_KERNEL_LOAD,
					     .memsz = pm_size,
					     .offset = pm_off,
					     .filesz = pm_size,
					     .index = 0 };
	img->kernel_start = LAYOUT_KERNEL_LOAD;
	img->kernel_end = LAYOUT_KERNEL_LOAD + pm_size;
	img->entry = LAYOUT_KERNEL_LOAD + BZ_ENTRY64_OFFSET;

	/*
	 * The decompressor runs in [runtime start, + init_size): the load
	 * address, or pref_address (LOAD_PHYSICAL_ADDR) if higher, since
	 * startup_64 never decompresses below it. That range must be RAM and
	 * must not hold the initrd.
	 */
	if (version >= 0x20a && h->init_size) {
		uint64_t rt = LAYOUT_KERNEL_LOAD;

		if (h->pref_address > rt)
			rt = h->pref_address;
		if (rt > UINT64_MAX - h->init_size ||
		    rt + h->init_size > low_end ||
		    !guest_mem_ptr(c->m, rt, h->init_size))
			return err_config(
				c->e, -ENOMEM,
				"kernel '%s': needs [0x%llx, +0x%x) to decompress (init_size) but low RAM ends at 0x%llx",
				c->kname, (unsigned long long)rt, h->init_size,
				(unsigned long long)low_end);
		if (rt + h->init_size > img->kernel_end)
			img->kernel_end = rt + h->init_size;
	}

	img->cmdline_max = (uint64_t)h->cmdline_size + 1;
	if (img->cmdline_max > BOOT_CMDLINE_MAX)
		img->cmdline_max = BOOT_CMDLINE_MAX;
	img->initrd_limit = (uint64_t)(h->initrd_addr_max ?
					       h->initrd_addr_max :
					       BZ_DEFAULT_INITRD_ADDR_MAX) +
			    1;
	return 0;
}
