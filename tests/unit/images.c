// SPDX-License-Identifier: MIT
#include "images.h"

#include <stdlib.h>
#include <string.h>
#include "util/le.h"

void bz_default(struct bz_opts *o)
{
	*o = (struct bz_opts){
		.version = 0x20f,
		.setup_sects = 4,
		.loadflags = 0x01,
		.xloadflags = 0x0001,
		.hdr_len_byte = 0x6a, /* header ends at 0x26c */
		.cmdline_size = 2047,
		.initrd_addr_max = 0x7fffffff,
		.init_size = 1 << 20,
		.pref_address = 16 << 20,
		.pm_size = 8192,
	};
}

uint8_t *make_bzimage(const struct bz_opts *o, size_t *size)
{
	size_t sects = o->setup_sects ? o->setup_sects : 4;
	size_t pm_off = (sects + 1) * 512;
	size_t n = pm_off + o->pm_size;
	uint8_t *b;

	if (n < 0x300)
		n = 0x300;
	b = calloc(1, n);
	if (!b)
		abort();
	b[0x1f1] = o->setup_sects;
	put16(b + 0x1fe, 0xaa55);
	b[0x200] = 0xeb;
	b[0x201] = o->hdr_len_byte;
	memcpy(b + 0x202, "HdrS", 4);
	put16(b + 0x206, o->version);
	b[0x211] = o->loadflags;
	put32(b + 0x214, 0x100000);
	put32(b + 0x22c, o->initrd_addr_max);
	put32(b + 0x230, 0x200000);
	b[0x234] = 1;
	put16(b + 0x236, o->xloadflags);
	put32(b + 0x238, o->cmdline_size);
	put64(b + 0x258, o->pref_address);
	put32(b + 0x260, o->init_size);
	for (size_t i = 0; i < o->pm_size; i++)
		b[pm_off + i] = bz_pm_byte(i);
	*size = n;
	return b;
}

void elf_default(struct elf_spec *s, bool pvh)
{
	*s = (struct elf_spec){
		.entry = (16 << 20) + 0x40,
		.nseg = 1,
		.seg = { { PT_LOAD, 16 << 20, 64 << 10, 128 << 10 } },
		.pvh = pvh,
		.pvh_descsz = 4,
		.pvh_entry = 16 << 20,
	};
}

#define NOTE_SIZE (12 + 4 + 8)

uint8_t *make_elf(const struct elf_spec *s, size_t *size)
{
	int nph = s->nseg + (s->pvh ? 1 : 0);
	size_t ph_off = sizeof(Elf64_Ehdr);
	size_t note_off = ph_off + (size_t)nph * sizeof(Elf64_Phdr);
	size_t data_off = note_off + (s->pvh ? NOTE_SIZE : 0);
	size_t n = data_off, off;
	uint32_t descsz = s->pvh_descsz ? s->pvh_descsz : 4;
	Elf64_Ehdr eh = { 0 };
	uint8_t *b;

	for (int i = 0; i < s->nseg; i++)
		n += s->seg[i].filesz;
	b = calloc(1, n);
	if (!b)
		abort();

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_entry = s->entry;
	eh.e_phoff = ph_off;
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = (uint16_t)nph;
	memcpy(b, &eh, sizeof(eh));

	off = data_off;
	for (int i = 0; i < s->nseg; i++) {
		Elf64_Phdr ph = {
			.p_type = s->seg[i].type ? s->seg[i].type : PT_LOAD,
			.p_flags = PF_R | PF_W | PF_X,
			.p_offset = off,
			.p_vaddr = s->seg[i].paddr + 0xffffffff80000000ULL,
			.p_paddr = s->seg[i].paddr,
			.p_filesz = s->seg[i].filesz,
			.p_memsz = s->seg[i].memsz,
			.p_align = 0x1000,
		};
		elf_put_phdr(b, i, &ph);
		for (size_t j = 0; j < s->seg[i].filesz; j++)
			b[off + j] = elf_seg_byte(i, j);
		off += s->seg[i].filesz;
	}
	if (s->pvh) {
		Elf64_Phdr ph = {
			.p_type = PT_NOTE,
			.p_offset = note_off,
			.p_filesz = 12 + 4 + (descsz == 8 ? 8 : 4),
			.p_align = 4,
		};
		uint8_t *p = b + note_off;

		elf_put_phdr(b, s->nseg, &ph);
		put32(p, 4);
		put32(p + 4, descsz);
		put32(p + 8, 18);
		memcpy(p + 12, "Xen", 4);
		if (descsz == 8)
			put64(p + 16, s->pvh_entry);
		else
			put32(p + 16, (uint32_t)s->pvh_entry);
	}
	*size = n;
	return b;
}

Elf64_Phdr elf_get_phdr(const uint8_t *img, int i)
{
	Elf64_Phdr ph;

	memcpy(&ph, img + sizeof(Elf64_Ehdr) + (size_t)i * sizeof(ph),
	       sizeof(ph));
	return ph;
}

void elf_put_phdr(uint8_t *img, int i, const Elf64_Phdr *ph)
{
	memcpy((uint8_t *)img + sizeof(Elf64_Ehdr) + (size_t)i * sizeof(*ph),
	       ph, sizeof(*ph));
}
