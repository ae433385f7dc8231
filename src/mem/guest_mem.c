// SPDX-License-Identifier: MIT
#include "mem/guest_mem.h"

#include "mem/dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

/* Refuse sizes the host could never back: RAM plus swap. Overcommit of a
 * fraction is fine (pages are touched lazily), a guest larger than the
 * machine is a configuration error better reported before boot than as a
 * SIGBUS or OOM kill mid-run. */
static int host_can_back(uint64_t size, struct err *e)
{
	struct sysinfo si;
	uint64_t total;

	if (sysinfo(&si) < 0)
		return 0;
	total = ((uint64_t)si.totalram + si.totalswap) * si.mem_unit;
	if (size > total)
		return err_config(
			e, -ENOMEM,
			"memory %llu MiB: the host has only %llu MiB of RAM and swap",
			(unsigned long long)(size >> 20),
			(unsigned long long)(total >> 20));
	return 0;
}

int guest_mem_init(struct guest_mem *m, uint64_t size, struct err *e)
{
	uint64_t low;
	int ret;

	memset(m, 0, sizeof(*m));
	m->memfd = -1;
	if (size == 0 || (size & 0xfff))
		return err_config(
			e, -EINVAL,
			"memory size %llu: not a non-zero multiple of 4 KiB",
			(unsigned long long)size);
	if (size > (1ULL << 46))
		return err_config(e, -EINVAL, "memory size %llu MiB: too large",
				  (unsigned long long)(size >> 20));

	ret = host_can_back(size, e);
	if (ret < 0)
		return ret;

	m->memfd =
		memfd_create("wisp-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (m->memfd < 0)
		return err_set(e, -errno, "guest memory: memfd_create: %s",
			       strerror(errno));
	if (ftruncate(m->memfd, (off_t)size) < 0) {
		ret = err_set(e, -errno,
			      "guest memory: %llu MiB: ftruncate: %s",
			      (unsigned long long)(size >> 20),
			      strerror(errno));
		goto err_close;
	}
	/* Device servers get this fd: one that shrank it would make every
	 * access of ours to the lost pages a SIGBUS. The size is final;
	 * the contents stay writable (servers DMA into guest RAM). */
	if (fcntl(m->memfd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = err_set(e, -errno, "guest memory: sealing the memfd: %s",
			      strerror(errno));
		goto err_close;
	}
	/* MAP_NORESERVE: pages are allocated on first touch, so a small guest
	 * costs only what it uses. The size was checked against the host's
	 * RAM+swap above, so an impossible size fails here, not later. */
	m->host = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, m->memfd, 0);
	if (m->host == MAP_FAILED) {
		m->host = NULL;
		ret = err_set(e, -errno, "guest memory: %llu MiB: mmap: %s",
			      (unsigned long long)(size >> 20),
			      strerror(errno));
		goto err_close;
	}
	m->size = size;

	low = size < GUEST_MMIO_HOLE_START ? size : GUEST_MMIO_HOLE_START;
	m->regions[0] = (struct guest_mem_region){ 0, low, 0 };
	m->nr_regions = 1;
	if (size > low) {
		m->regions[1] = (struct guest_mem_region){ GUEST_MMIO_HOLE_END,
							   size - low, low };
		m->nr_regions = 2;
	}
	return 0;

err_close:
	close(m->memfd);
	m->memfd = -1;
	return ret;
}

int guest_mem_attach(struct guest_mem *m, int memfd,
		     const struct guest_mem_region *regions, int nr,
		     struct err *e)
{
	struct stat st;
	uint64_t end = 0;

	memset(m, 0, sizeof(*m));
	m->memfd = -1;
	if (nr < 1 || nr > GUEST_MEM_MAX_REGIONS)
		return err_set(e, -EINVAL, "guest memory: %d regions", nr);
	if (fstat(memfd, &st) < 0)
		return err_set(e, -errno, "guest memory fd: %s",
			       strerror(errno));
	for (int i = 0; i < nr; i++) {
		const struct guest_mem_region *r = &regions[i];

		/* The regions tile the memfd from offset 0, in order, as
		 * guest_mem_init lays them out; anything else is refused. */
		if (r->size == 0 || (r->size & 0xfff) || (r->gpa & 0xfff) ||
		    r->offset != end || r->gpa + r->size < r->gpa ||
		    (i && r->gpa < regions[i - 1].gpa + regions[i - 1].size))
			return err_set(e, -EINVAL,
				       "guest memory: bad region %d", i);
		end += r->size;
		m->regions[i] = *r;
	}
	if (end > (uint64_t)st.st_size)
		return err_set(
			e, -EINVAL,
			"guest memory: layout (%llu bytes) beyond the memfd (%llu)",
			(unsigned long long)end,
			(unsigned long long)st.st_size);
	m->host = mmap(NULL, end, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (m->host == MAP_FAILED) {
		m->host = NULL;
		return err_set(e, -errno, "guest memory: mmap: %s",
			       strerror(errno));
	}
	m->size = end;
	m->nr_regions = nr;
	m->memfd = memfd;
	return 0;
}

void guest_mem_destroy(struct guest_mem *m)
{
	guest_mem_dirty_disable(m);
	if (m->host)
		munmap(m->host, m->size);
	if (m->memfd >= 0)
		close(m->memfd);
	m->host = NULL;
	m->memfd = -1;
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < m->nr_regions; i++) {
		const struct guest_mem_region *r = &m->regions[i];

		if (gpa < r->gpa)
			continue;
		if (gpa - r->gpa > r->size)
			continue;
		if (len > r->size - (gpa - r->gpa))
			return NULL;
		return m->host + r->offset + (gpa - r->gpa);
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src,
		    uint64_t len)
{
	void *p = guest_mem_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	guest_mem_mark_dirty(m, p, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst,
		   uint64_t len)
{
	void *p = guest_mem_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

uint64_t guest_mem_low_end(const struct guest_mem *m)
{
	return m->nr_regions ? m->regions[0].size : 0;
}
