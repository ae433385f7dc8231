// SPDX-License-Identifier: MIT
/*
 * boot_load(): probe the kernel format, validate the whole image, then copy
 * it into guest memory with the command line, the initrd and the boot
 * tables (zero page or PVH start info). Nothing is written to guest memory
 * before the image, the command line and the initrd placement have been
 * validated.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "boot/boot_priv.h"
#include "util/log.h"

#define PAGE_MASK_4K (~0xfffULL)
#define MIB(x) ((unsigned long long)(((x) + (1ULL << 20) - 1) >> 20))

static const char *const format_names[] = {
	[BOOT_FORMAT_PVH_ELF] = "PVH ELF",
	[BOOT_FORMAT_BZIMAGE] = "bzImage",
	[BOOT_FORMAT_ELF64] = "ELF64",
};

static int bad_magic(const struct boot_ctx *c)
{
	const uint8_t *b = c->cfg->kernel;
	size_t n = c->cfg->kernel_size;
	uint32_t magic = 0;

	for (size_t i = 0; i < 4 && i < n; i++)
		magic |= (uint32_t)b[i] << (8 * i);
	return err_config(
		c->e, -EINVAL,
		"kernel '%s': not an ELF or bzImage (bad magic 0x%08x)",
		c->kname, magic);
}

static void load_segments(const struct boot_ctx *c,
			  const struct boot_image *img)
{
	for (int i = 0; i < img->nr_segments; i++) {
		const struct boot_segment *s = &img->seg[i];
		/* Checked by the parser: inside RAM and inside the file. */
		uint8_t *p = guest_mem_ptr(c->m, s->paddr, s->memsz);

		memcpy(p, c->cfg->kernel + s->offset, s->filesz);
		memset(p + s->filesz, 0, s->memsz - s->filesz);
	}
}

/* Highest 4 KiB-aligned start such that the initrd ends at or below
 * min(end of low RAM, the format's limit) and starts above the kernel. */
static int place_initrd(const struct boot_ctx *c, const struct boot_image *img,
			uint64_t *start_out)
{
	const struct boot_config *cfg = c->cfg;
	const char *iname = cfg->initrd_name ? cfg->initrd_name : "initrd";
	uint64_t limit = guest_mem_low_end(c->m);
	uint64_t floor = img->kernel_end, start;

	if (img->initrd_limit < limit)
		limit = img->initrd_limit;
	if (floor < LAYOUT_HIGH_MEMORY)
		floor = LAYOUT_HIGH_MEMORY;
	if (cfg->initrd_size > limit ||
	    ((limit - cfg->initrd_size) & PAGE_MASK_4K) < floor)
		return err_config(
			c->e, -ENOMEM,
			"initrd '%s' (%llu MiB) does not fit below 0x%llx (kernel ends at 0x%llx)",
			iname, MIB((uint64_t)cfg->initrd_size),
			(unsigned long long)limit,
			(unsigned long long)img->kernel_end);
	start = (limit - cfg->initrd_size) & PAGE_MASK_4K;
	if (!guest_mem_ptr(c->m, start, cfg->initrd_size))
		return err_config(
			c->e, -EFAULT,
			"initrd '%s': [0x%llx, +0x%zx) is outside guest RAM",
			iname, (unsigned long long)start, cfg->initrd_size);
	*start_out = start;
	return 0;
}

int boot_load(struct guest_mem *m, const struct boot_config *cfg,
	      struct boot_entry *entry, struct err *e)
{
	struct boot_ctx c = {
		.m = m,
		.cfg = cfg,
		.kname = cfg->kernel_name ? cfg->kernel_name : "kernel",
		.e = e,
	};
	const char *cmdline = cfg->cmdline ? cfg->cmdline : "";
	struct e820_entry map[E820_MAX_ENTRIES];
	struct boot_image img;
	uint64_t initrd_start = 0;
	size_t clen;
	int nr_map, ret;

	memset(entry, 0, sizeof(*entry));
	memset(&img, 0, sizeof(img));
	if (!cfg->kernel || cfg->kernel_size == 0)
		return err_config(e, -EINVAL, "kernel '%s': empty file",
				  c.kname);
	if (cfg->initrd && cfg->initrd_size == 0)
		return err_config(e, -EINVAL, "initrd '%s': empty file",
				  cfg->initrd_name ? cfg->initrd_name :
						     "initrd");

	nr_map = e820_build(m, map, E820_MAX_ENTRIES);
	if (nr_map == -EINVAL)
		return err_config(
			e, -EINVAL,
			"guest memory: %llu KiB of low RAM is too small to boot a kernel (need at least 2 MiB)",
			(unsigned long long)(guest_mem_low_end(m) >> 10));
	if (nr_map < 0)
		return err_config(e, nr_map,
				  "guest memory: cannot build the e820 map");

	if (elf_probe(cfg->kernel, cfg->kernel_size))
		ret = elf_parse(&c, &img);
	else if (bzimage_probe(cfg->kernel, cfg->kernel_size))
		ret = bzimage_parse(&c, &img);
	else
		ret = bad_magic(&c);
	if (ret < 0)
		return ret;

	clen = strlen(cmdline);
	if (clen + 1 > img.cmdline_max)
		return err_config(
			e, -E2BIG,
			"kernel '%s': command line is %zu bytes, the kernel accepts at most %llu",
			c.kname, clen,
			(unsigned long long)(img.cmdline_max - 1));

	if (!guest_mem_ptr(m, LAYOUT_CMDLINE, clen + 1))
		return err_config(
			e, -EFAULT,
			"kernel '%s': command line at 0x%llx is outside guest RAM",
			c.kname, (unsigned long long)LAYOUT_CMDLINE);
	if (cfg->initrd) {
		ret = place_initrd(&c, &img, &initrd_start);
		if (ret < 0)
			return ret;
	}

	/* Everything validated: write. */
	load_segments(&c, &img);
	guest_mem_write(m, LAYOUT_CMDLINE, cmdline, clen + 1);
	entry->cmdline_gpa = LAYOUT_CMDLINE;
	if (cfg->initrd) {
		guest_mem_write(m, initrd_start, cfg->initrd, cfg->initrd_size);
		entry->initrd_start = initrd_start;
		entry->initrd_size = cfg->initrd_size;
	}

	entry->format = img.format;
	entry->linux_kernel =
		img.format == BOOT_FORMAT_BZIMAGE ||
		memmem(cfg->kernel, cfg->kernel_size, "Linux version ", 14);
	entry->rip = img.entry;
	entry->rsp = LAYOUT_STACK_TOP;
	entry->kernel_start = img.kernel_start;
	entry->kernel_end = img.kernel_end;
	if (img.format == BOOT_FORMAT_PVH_ELF) {
		entry->mode = BOOT_ENTRY_PVH32;
		entry->rbx = LAYOUT_PVH_START_INFO;
		ret = pvh_write(&c, entry, map, nr_map);
	} else {
		entry->mode = BOOT_ENTRY_LONG64;
		entry->rsi = LAYOUT_ZERO_PAGE;
		ret = zeropage_write(&c, &img, entry, map, nr_map);
	}
	if (ret < 0)
		return ret;

	log_debug("kernel '%s': %s, [0x%llx, 0x%llx), entry 0x%llx", c.kname,
		  format_names[img.format],
		  (unsigned long long)img.kernel_start,
		  (unsigned long long)img.kernel_end,
		  (unsigned long long)img.entry);
	if (entry->initrd_size)
		log_debug("initrd: [0x%llx, 0x%llx)",
			  (unsigned long long)entry->initrd_start,
			  (unsigned long long)(entry->initrd_start +
					       entry->initrd_size));
	return 0;
}

/* Reads a whole regular file of at most max bytes into a malloc'd
 * buffer. */
static int read_file(const char *what, const char *path, uint64_t max,
		     uint8_t **out, size_t *size, struct err *e)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd, ret;

	*out = NULL;
	*size = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_config(e, -errno, "%s '%s': %s", what, path,
				  strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = err_config(e, -errno, "%s '%s': stat: %s", what, path,
				 strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = err_config(e, -EINVAL, "%s '%s': not a regular file",
				 what, path);
		goto out_close;
	}
	if (st.st_size == 0) {
		ret = err_config(e, -EINVAL, "%s '%s': empty file", what, path);
		goto out_close;
	}
	if ((uint64_t)st.st_size > max) {
		ret = err_config(
			e, -EFBIG,
			"%s '%s': %llu MiB is larger than guest memory (%llu MiB)",
			what, path, MIB((uint64_t)st.st_size), MIB(max));
		goto out_close;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		ret = err_config(e, -ENOMEM,
				 "%s '%s': cannot allocate %llu MiB", what,
				 path, MIB((uint64_t)st.st_size));
		goto out_close;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = err_config(e, n < 0 ? -errno : -EIO,
					 "%s '%s': read: %s", what, path,
					 n < 0 ? strerror(errno) :
						 "file shrank while reading");
			free(buf);
			goto out_close;
		}
		done += (size_t)n;
	}
	close(fd);
	*out = buf;
	*size = done;
	return 0;

out_close:
	close(fd);
	return ret;
}

int boot_load_files(struct guest_mem *m, const char *kernel_path,
		    const char *initrd_path, const char *cmdline,
		    struct boot_entry *entry, struct err *e)
{
	struct boot_config cfg = {
		.kernel_name = kernel_path,
		.initrd_name = initrd_path,
		.cmdline = cmdline,
	};
	uint8_t *kernel = NULL, *initrd = NULL;
	int ret;

	ret = read_file("kernel", kernel_path, m->size, &kernel,
			&cfg.kernel_size, e);
	if (ret < 0)
		return ret;
	if (initrd_path) {
		ret = read_file("initrd", initrd_path, m->size, &initrd,
				&cfg.initrd_size, e);
		if (ret < 0)
			goto out;
	}
	cfg.kernel = kernel;
	cfg.initrd = initrd;
	ret = boot_load(m, &cfg, entry, e);
out:
	free(kernel);
	free(initrd);
	return ret;
}
