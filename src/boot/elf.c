// SPDX-License-Identifier: MIT
/*
 * ELF64 x86-64 kernels (vmlinux and PVH-capable ELF images). Every field
 * of the file is hostile: offsets and sizes are checked against the file
 * and against guest RAM with overflow-safe arithmetic before anything is
 * used, and headers are copied out with memcpy (no unaligned casts).
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "boot/boot_priv.h"
#include "boot/start_info.h"

/* No segment is larger than the largest guest wisp can create. */
#define ELF_MAX_SEGMENT (1ULL << 46)

bool elf_probe(const uint8_t *buf, size_t size)
{
	return size >= SELFMAG && memcmp(buf, ELFMAG, SELFMAG) == 0;
}

/* True if [off, off + len) lies inside a file of the given size. */
static bool in_file(uint64_t off, uint64_t len, size_t size)
{
	return off <= size && len <= size - off;
}

/*
 * Scans the notes in file range [off, off + len) (already checked to be
 * inside the file) for XEN_ELFNOTE_PHYS32_ENTRY. Returns 1 and sets *entry
 * if found, 0 if not, -EINVAL for a malformed note.
 */
static int scan_notes(const struct boot_ctx *c, const char *what, int idx,
		      uint64_t off, uint64_t len, uint64_t align,
		      uint64_t *entry)
{
	const uint8_t *p = c->cfg->kernel + off;
	uint64_t pos = 0;

	if (align != 8)
		align = 4;
	while (len - pos >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name_len, desc_len;
		const uint8_t *name, *desc;

		memcpy(&nh, p + pos, sizeof(nh));
		pos += sizeof(nh);
		name_len = ((uint64_t)nh.n_namesz + align - 1) & ~(align - 1);
		desc_len = ((uint64_t)nh.n_descsz + align - 1) & ~(align - 1);
		if (name_len > len - pos || desc_len > len - pos - name_len)
			return err_config(
				c->e, -EINVAL,
				"kernel '%s': %s %d: note at file offset 0x%llx is truncated (name %u, desc %u bytes)",
				c->kname, what, idx,
				(unsigned long long)(off + pos - sizeof(nh)),
				nh.n_namesz, nh.n_descsz);
		name = p + pos;
		desc = p + pos + name_len;
		pos += name_len + desc_len;

		if (nh.n_type != XEN_ELFNOTE_PHYS32_ENTRY ||
		    nh.n_namesz != sizeof(XEN_ELFNOTE_NAME) ||
		    memcmp(name, XEN_ELFNOTE_NAME, sizeof(XEN_ELFNOTE_NAME)))
			continue;
		if (nh.n_descsz == 4) {
			*entry = boot_le32(desc);
		} else if (nh.n_descsz == 8) {
			*entry = boot_le32(desc) |
				 ((uint64_t)boot_le32(desc + 4) << 32);
			if (*entry > UINT32_MAX)
				return err_config(
					c->e, -EINVAL,
					"kernel '%s': PVH entry point 0x%llx is above 4 GiB",
					c->kname, (unsigned long long)*entry);
		} else {
			return err_config(
				c->e, -EINVAL,
				"kernel '%s': PVH entry note has a %u-byte descriptor (expected 4 or 8)",
				c->kname, nh.n_descsz);
		}
		return 1;
	}
	return 0;
}

/* PVH entry from PT_NOTE segments, else from SHT_NOTE sections. */
static int find_pvh_entry(const struct boot_ctx *c, const Elf64_Ehdr *eh,
			  uint64_t *entry)
{
	const uint8_t *buf = c->cfg->kernel;
	size_t size = c->cfg->kernel_size;
	int ret;

	for (int i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, buf + eh->e_phoff + (uint64_t)i * sizeof(ph),
		       sizeof(ph));
		if (ph.p_type != PT_NOTE)
			continue;
		if (!in_file(ph.p_offset, ph.p_filesz, size))
			return err_config(
				c->e, -EINVAL,
				"kernel '%s': note segment %d [0x%llx, +0x%llx) is past the end of the file (%zu bytes)",
				c->kname, i, (unsigned long long)ph.p_offset,
				(unsigned long long)ph.p_filesz, size);
		ret = scan_notes(c, "segment", i, ph.p_offset, ph.p_filesz,
				 ph.p_align, entry);
		if (ret)
			return ret;
	}

	/* Section headers are optional for loading: an absent or broken
	 * section table just means no notes there. */
	if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    !in_file(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr),
		     size))
		return 0;
	for (int i = 0; i < eh->e_shnum; i++) {
		Elf64_Shdr sh;

		memcpy(&sh, buf + eh->e_shoff + (uint64_t)i * sizeof(sh),
		       sizeof(sh));
		if (sh.sh_type != SHT_NOTE ||
		    !in_file(sh.sh_offset, sh.sh_size, size))
			continue;
		ret = scan_notes(c, "section", i, sh.sh_offset, sh.sh_size,
				 sh.sh_addralign, entry);
		if (ret)
			return ret;
	}
	return 0;
}

static int check_segment(const struct boot_ctx *c, int i, const Elf64_Phdr *ph)
{
	size_t size = c->cfg->kernel_size;
	uint64_t low_end = guest_mem_low_end(c->m);

	if (ph->p_filesz > ph->p_memsz)
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': segment %d: file size 0x%llx exceeds its memory size 0x%llx",
			c->kname, i, (unsigned long long)ph->p_filesz,
			(unsigned long long)ph->p_memsz);
	if (!in_file(ph->p_offset, ph->p_filesz, size))
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': segment %d: file range [0x%llx, +0x%llx) is past the end of the file (%zu bytes)",
			c->kname, i, (unsigned long long)ph->p_offset,
			(unsigned long long)ph->p_filesz, size);
	if (ph->p_memsz > ELF_MAX_SEGMENT ||
	    ph->p_paddr > UINT64_MAX - ph->p_memsz)
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': segment %d: absurd size 0x%llx at address 0x%llx",
			c->kname, i, (unsigned long long)ph->p_memsz,
			(unsigned long long)ph->p_paddr);
	if (ph->p_paddr < LAYOUT_HIGH_MEMORY)
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': segment %d at 0x%llx is below 1 MiB (reserved for boot data)",
			c->kname, i, (unsigned long long)ph->p_paddr);
	/* Low RAM only: the boot page tables map the first 4 GiB and a PVH
	 * kernel starts with paging off. */
	if (ph->p_paddr + ph->p_memsz > low_end ||
	    !guest_mem_ptr(c->m, ph->p_paddr, ph->p_memsz))
		return err_config(
			c->e, -ENOMEM,
			"kernel '%s': segment %d [0x%llx, 0x%llx) is outside guest RAM (low RAM ends at 0x%llx)",
			c->kname, i, (unsigned long long)ph->p_paddr,
			(unsigned long long)(ph->p_paddr + ph->p_memsz),
			(unsigned long long)low_end);
	return 0;
}

static int collect_segments(const struct boot_ctx *c, const Elf64_Ehdr *eh,
			    struct boot_image *img)
{
	const uint8_t *buf = c->cfg->kernel;
	int ret;

	img->nr_segments = 0;
	img->kernel_start = UINT64_MAX;
	img->kernel_end = 0;
	for (int i = 0; i < eh->e_phnum; i++) {
		struct boot_segment *s;
		Elf64_Phdr ph;

		memcpy(&ph, buf + eh->e_phoff + (uint64_t)i * sizeof(ph),
		       sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		ret = check_segment(c, i, &ph);
		if (ret < 0)
			return ret;
		if (ph.p_memsz == 0)
			continue;
		if (img->nr_segments == BOOT_MAX_SEGMENTS)
			return err_config(
				c->e, -EINVAL,
				"kernel '%s': more than %d loadable segments",
				c->kname, BOOT_MAX_SEGMENTS);
		for (int j = 0; j < img->nr_segments; j++) {
			const struct boot_segment *o = &img->seg[j];

			if (ph.p_paddr < o->paddr + o->memsz &&
			    o->paddr < ph.p_paddr + ph.p_memsz)
				return err_config(
					c->e, -EINVAL,
					"kernel '%s': segments %d and %d overlap ([0x%llx, 0x%llx) and [0x%llx, 0x%llx))",
					c->kname, o->index, i,
					(unsigned long long)o->paddr,
					(unsigned long long)(o->paddr +
							     o->memsz),
					(unsigned long long)ph.p_paddr,
					(unsigned long long)(ph.p_paddr +
							     ph.p_memsz));
		}
		s = &img->seg[img->nr_segments++];
		*s = (struct boot_segment){ .paddr = ph.p_paddr,
					    .memsz = ph.p_memsz,
					    .offset = ph.p_offset,
					    .filesz = ph.p_filesz,
					    .index = i };
		if (s->paddr < img->kernel_start)
			img->kernel_start = s->paddr;
		if (s->paddr + s->memsz > img->kernel_end)
			img->kernel_end = s->paddr + s->memsz;
	}
	if (img->nr_segments == 0)
		return err_config(c->e, -EINVAL,
				  "kernel '%s': ELF has no loadable segments",
				  c->kname);
	return 0;
}

static bool in_segments(const struct boot_image *img, uint64_t addr)
{
	for (int i = 0; i < img->nr_segments; i++)
		if (addr >= img->seg[i].paddr &&
		    addr - img->seg[i].paddr < img->seg[i].memsz)
			return true;
	return false;
}

int elf_parse(const struct boot_ctx *c, struct boot_image *img)
{
	const uint8_t *buf = c->cfg->kernel;
	size_t size = c->cfg->kernel_size;
	uint64_t pvh_entry = 0;
	Elf64_Ehdr eh;
	int ret;

	if (size < sizeof(eh))
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': truncated ELF header (%zu bytes, need %zu)",
			c->kname, size, sizeof(eh));
	memcpy(&eh, buf, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64)
		return err_config(c->e, -EINVAL,
				  "kernel '%s': not a 64-bit ELF (class %u)",
				  c->kname, eh.e_ident[EI_CLASS]);
	if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': not a little-endian ELF (data encoding %u)",
			c->kname, eh.e_ident[EI_DATA]);
	if (eh.e_machine != EM_X86_64)
		return err_config(c->e, -EINVAL,
				  "kernel '%s': ELF machine %u is not x86-64",
				  c->kname, eh.e_machine);
	if (eh.e_type != ET_EXEC)
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': ELF type %u is not an executable (ET_EXEC)",
			c->kname, eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr))
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': ELF program header size %u (expected %zu)",
			c->kname, eh.e_phentsize, sizeof(Elf64_Phdr));
	if (eh.e_phnum == 0)
		return err_config(c->e, -EINVAL,
				  "kernel '%s': ELF has no program headers",
				  c->kname);
	if (!in_file(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr),
		     size))
		return err_config(
			c->e, -EINVAL,
			"kernel '%s': program headers at offset 0x%llx (%u x %zu bytes) are past the end of the file (%zu bytes)",
			c->kname, (unsigned long long)eh.e_phoff, eh.e_phnum,
			sizeof(Elf64_Phdr), size);

	ret = collect_segments(c, &eh, img);
	if (ret < 0)
		return ret;
	ret = find_pvh_entry(c, &eh, &pvh_entry);
	if (ret < 0)
		return ret;

	if (ret > 0) {
		img->format = BOOT_FORMAT_PVH_ELF;
		img->entry = pvh_entry;
		if (!in_segments(img, pvh_entry))
			return err_config(
				c->e, -EINVAL,
				"kernel '%s': PVH entry point 0x%llx is not inside a loaded segment",
				c->kname, (unsigned long long)pvh_entry);
	} else {
		img->format = BOOT_FORMAT_ELF64;
		img->entry = eh.e_entry;
		if (!in_segments(img, eh.e_entry))
			return err_config(
				c->e, -EINVAL,
				"kernel '%s': entry point 0x%llx is not inside a loaded segment",
				c->kname, (unsigned long long)eh.e_entry);
	}
	img->initrd_limit = 1ULL << 32;
	img->cmdline_max = BOOT_CMDLINE_MAX;
	return 0;
}
