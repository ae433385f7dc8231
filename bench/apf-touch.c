// SPDX-License-Identifier: MIT
/*
 * L2 helper of bench/async-pf-rig.sh (static, in the guest's initramfs).
 *   apf-touch count FILE      count as fast as possible; every 2^16 steps
 *                             write the count into FILE (8 bytes, pwrite)
 *   apf-touch fill MiB CFILE GOFILE
 *                             fill MiB of private anonymous memory with a
 *                             pattern, print "APF-FILLED", wait until GOFILE
 *                             exists (polling every 10 ms), then read one
 *                             word per 4 KiB page checking the pattern,
 *                             and print "APF-RESULT touch_ms=T pages=P
 *                             bad=B count_during=N base_per_s=R", N being
 *                             what the counter in CFILE advanced while the
 *                             pages were touched and R its rate in the
 *                             second before GOFILE was waited for.
 * The toucher faults on every page from user mode, the only mode in which
 * KVM sends a Linux guest "page not present" (async PF); while it waits
 * the guest can run the counter on the same vCPU.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static uint64_t read_count(const char *f)
{
	uint64_t v = 0;
	int fd = open(f, O_RDONLY);

	if (fd >= 0) {
		if (pread(fd, &v, sizeof(v), 0) != sizeof(v))
			v = 0;
		close(fd);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "count")) {
		int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
		volatile uint64_t n = 0;

		if (fd < 0)
			return 1;
		for (;;) {
			uint64_t v = ++n;

			if (!(v & 0xffff) && pwrite(fd, &v, sizeof(v), 0) < 0)
				return 1;
		}
	}
	if (argc == 5 && !strcmp(argv[1], "fill")) {
		size_t len = (size_t)atoi(argv[2]) << 20, pages = len / 4096;
		uint64_t *p, c0, c1, b0, b1, t0, t1, bad = 0;

		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 1;
		for (size_t i = 0; i < pages; i++)
			for (size_t j = 0; j < 512; j++)
				p[i * 512 + j] = i * 0x9e3779b97f4a7c15ULL + j;
		printf("APF-FILLED %zu pages\n", pages);
		fflush(stdout);
		b0 = read_count(argv[3]);
		t0 = ms();
		sleep(1);
		b1 = read_count(argv[3]);
		t1 = ms();
		unsigned long long base =
			(b1 - b0) * 1000 / (t1 - t0 ? t1 - t0 : 1);
		while (access(argv[4], F_OK))
			usleep(10000);
		c0 = read_count(argv[3]);
		t0 = ms();
		for (size_t i = 0; i < pages; i++)
			if (p[i * 512 + (i % 512)] !=
			    i * 0x9e3779b97f4a7c15ULL + (i % 512))
				bad++;
		t1 = ms();
		c1 = read_count(argv[3]);
		printf("APF-RESULT touch_ms=%llu pages=%zu bad=%llu count_during=%llu base_per_s=%llu\n",
		       (unsigned long long)(t1 - t0), pages,
		       (unsigned long long)bad, (unsigned long long)(c1 - c0),
		       base);
		fflush(stdout);
		return bad ? 2 : 0;
	}
	fprintf(stderr,
		"usage: apf-touch count FILE | fill MiB CFILE GOFILE\n");
	return 1;
}
