// SPDX-License-Identifier: MIT
#include "vhost_user/memtab.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096ull

void vhu_memtab_init(struct vhu_memtab *t)
{
	memset(t, 0, sizeof(*t));
}

void vhu_memtab_clear(struct vhu_memtab *t)
{
	for (int i = 0; i < t->n; i++)
		if (t->reg[i].map)
			munmap(t->reg[i].map, t->reg[i].map_len);
	vhu_memtab_init(t);
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int check_region(const struct vhu_memtab *t, const struct vhu_region *r,
			int fd, int idx, struct err *e)
{
	struct stat st;

	if (!r->size)
		return err_set(e, -EINVAL, "memory region %d: empty", idx);
	if (r->gpa + r->size < r->gpa || r->ua + r->size < r->ua ||
	    r->offset + r->size < r->offset)
		return err_set(e, -EINVAL,
			       "memory region %d: address + size overflows",
			       idx);
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_set(e, -EINVAL,
			       "memory region %d: no usable descriptor", idx);
	if (st.st_size < 0 || r->offset + r->size > (uint64_t)st.st_size)
		return err_set(e, -EINVAL,
			       "memory region %d: [0x%llx, +0x%llx) is outside "
			       "its file of 0x%llx bytes",
			       idx, (unsigned long long)r->offset,
			       (unsigned long long)r->size,
			       (unsigned long long)st.st_size);
	for (int i = 0; i < t->n; i++) {
		const struct vhu_region *o = &t->reg[i].r;

		if (overlap(r->gpa, r->size, o->gpa, o->size) ||
		    overlap(r->ua, r->size, o->ua, o->size))
			return err_set(e, -EINVAL,
				       "memory region %d overlaps region %d",
				       idx, i);
	}
	return 0;
}

int vhu_memtab_add(struct vhu_memtab *t, const struct vhu_region *r, int fd,
		   struct err *e)
{
	struct vhu_mapped *m;
	void *p;
	int ret;

	if (t->n == VHU_MAX_REGIONS)
		return err_set(e, -EINVAL, "more than %d memory regions",
			       VHU_MAX_REGIONS);
	ret = check_region(t, r, fd, t->n, e);
	if (ret)
		return ret;
	m = &t->reg[t->n];
	m->map_off = r->offset & ~(PAGE - 1);
	m->map_len = r->offset - m->map_off + r->size;
	p = mmap(NULL, m->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)m->map_off);
	if (p == MAP_FAILED)
		return err_set(e, -errno, "memory region %d: mmap: %s", t->n,
			       strerror(errno));
	m->map = p;
	m->r = *r;
	t->n++;
	return 0;
}

int vhu_memtab_set(struct vhu_memtab *t, const struct vhu_region *regs, int n,
		   const int *fds, struct err *e)
{
	vhu_memtab_clear(t);
	if (n < 1 || n > VHU_MAX_REGIONS)
		return err_set(e, -EINVAL,
			       "%d memory regions (1 to %d allowed)", n,
			       VHU_MAX_REGIONS);
	for (int i = 0; i < n; i++) {
		int ret = vhu_memtab_add(t, &regs[i], fds[i], e);

		if (ret) {
			vhu_memtab_clear(t);
			return ret;
		}
	}
	return 0;
}

static void *lookup(const struct vhu_memtab *t, uint64_t addr, uint64_t len,
		    bool user)
{
	if (addr + len < addr)
		return NULL;
	for (int i = 0; i < t->n; i++) {
		const struct vhu_mapped *m = &t->reg[i];
		uint64_t base = user ? m->r.ua : m->r.gpa;

		if (addr >= base && addr - base <= m->r.size &&
		    len <= m->r.size - (addr - base))
			return m->map + (m->r.offset - m->map_off) +
			       (addr - base);
	}
	return NULL;
}

void *vhu_memtab_ua(const struct vhu_memtab *t, uint64_t ua, uint64_t len)
{
	return lookup(t, ua, len, true);
}

void *vhu_memtab_gpa(const struct vhu_memtab *t, uint64_t gpa, uint64_t len)
{
	return lookup(t, gpa, len, false);
}

int vhu_check_vring(const struct vhu_memtab *t, const struct vhu_vring_addr *a,
		    uint32_t num, const char **why)
{
	if (!num || num > 32768 || (num & (num - 1))) {
		*why = "ring size not a power of two up to 32768";
		return -EINVAL;
	}
	if ((a->desc_ua & 15) || (a->avail_ua & 1) || (a->used_ua & 3)) {
		*why = "misaligned ring";
		return -EINVAL;
	}
	if (!vhu_memtab_ua(t, a->desc_ua, 16ull * num) ||
	    !vhu_memtab_ua(t, a->avail_ua, 6 + 2ull * num) ||
	    !vhu_memtab_ua(t, a->used_ua, 6 + 8ull * num)) {
		*why = "ring outside the memory regions";
		return -EINVAL;
	}
	return 0;
}
