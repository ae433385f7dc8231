// SPDX-License-Identifier: MIT
/*
 * L2 helper of bench/fs-rig.sh (static, in the guest's initramfs): one
 * timed file-system job on the virtio-fs mount per run, timed with the
 * guest's CLOCK_MONOTONIC around the job's system calls only (not the
 * program's start). Prints "FS-OPS job ns ops bytes" on success; on the
 * first failing call "FS-OPS-ERR job what: strerror" and exit status 1.
 *   fs-ops create DIR N SIZE  create N files DIR/fNNNNN of SIZE bytes
 *                             (open O_CREAT|O_EXCL, one write, close),
 *                             then sync(): ops = N
 *   fs-ops stat DIR           readdir DIR and lstat every entry (not . and
 *                             ..): ops = entries stat'ed
 *   fs-ops read FILE BS       read FILE to its end in BS-byte read()s:
 *                             ops = reads, bytes = bytes read
 *   fs-ops write FILE MIB BS  write MIB MiB to a new FILE in BS-byte
 *                             write()s, then fsync and close: ops =
 *                             writes, bytes = bytes written
 * The files are only created, never removed: each VMM gets a fresh share.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *job = "?";

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int fail(const char *what, const char *obj)
{
	printf("FS-OPS-ERR %s %s %s: %s\n", job, what, obj, strerror(errno));
	return 1;
}

/* A positive number from argv, or 0 (the caller refuses it). */
static unsigned long num(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	return errno || *end || end == s ? 0 : v;
}

/* write() all of buf: FUSE may return short writes. */
static int write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

static int do_create(const char *dir, unsigned long n, unsigned long size)
{
	char path[4096], *buf;
	uint64_t t0, t1;

	buf = malloc(size);
	if (!buf)
		return fail("malloc", "buffer");
	memset(buf, 'c', size);
	t0 = now_ns();
	for (unsigned long i = 0; i < n; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/f%05lu", dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			return fail("open", path);
		if (write_all(fd, buf, size))
			return fail("write", path);
		if (close(fd))
			return fail("close", path);
	}
	sync();
	t1 = now_ns();
	printf("FS-OPS create %llu %lu %llu\n", (unsigned long long)(t1 - t0),
	       n, (unsigned long long)n * size);
	free(buf);
	return 0;
}

static int do_stat(const char *dir)
{
	char path[4096];
	struct dirent *e;
	struct stat st;
	unsigned long n = 0;
	uint64_t t0, t1;
	DIR *d;

	t0 = now_ns();
	d = opendir(dir);
	if (!d)
		return fail("opendir", dir);
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (!e)
			break;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st))
			return fail("lstat", path);
		n++;
	}
	if (errno)
		return fail("readdir", dir);
	closedir(d);
	t1 = now_ns();
	printf("FS-OPS stat %llu %lu 0\n", (unsigned long long)(t1 - t0), n);
	return 0;
}

static int do_read(const char *file, unsigned long bs)
{
	unsigned long long bytes = 0;
	unsigned long ops = 0;
	uint64_t t0, t1;
	char *buf;
	int fd;

	buf = malloc(bs);
	if (!buf)
		return fail("malloc", "buffer");
	t0 = now_ns();
	fd = open(file, O_RDONLY);
	if (fd < 0)
		return fail("open", file);
	for (;;) {
		ssize_t r = read(fd, buf, bs);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail("read", file);
		if (r == 0)
			break;
		bytes += (unsigned long long)r;
		ops++;
	}
	close(fd);
	t1 = now_ns();
	printf("FS-OPS read %llu %lu %llu\n", (unsigned long long)(t1 - t0),
	       ops, bytes);
	free(buf);
	return 0;
}

static int do_write(const char *file, unsigned long mib, unsigned long bs)
{
	unsigned long long total = (unsigned long long)mib << 20, bytes = 0;
	unsigned long ops = 0;
	uint64_t t0, t1;
	char *buf;
	int fd;

	buf = malloc(bs);
	if (!buf)
		return fail("malloc", "buffer");
	memset(buf, 'w', bs);
	t0 = now_ns();
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return fail("open", file);
	while (bytes < total) {
		size_t n = total - bytes < bs ? (size_t)(total - bytes) : bs;

		if (write_all(fd, buf, n))
			return fail("write", file);
		bytes += n;
		ops++;
	}
	if (fsync(fd))
		return fail("fsync", file);
	if (close(fd))
		return fail("close", file);
	t1 = now_ns();
	printf("FS-OPS write %llu %lu %llu\n", (unsigned long long)(t1 - t0),
	       ops, bytes);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long a, b;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3)
		goto usage;
	job = argv[1];
	if (!strcmp(job, "create") && argc == 5) {
		a = num(argv[3]);
		b = num(argv[4]);
		if (a && b)
			return do_create(argv[2], a, b);
	} else if (!strcmp(job, "stat") && argc == 3) {
		return do_stat(argv[2]);
	} else if (!strcmp(job, "read") && argc == 4) {
		a = num(argv[3]);
		if (a)
			return do_read(argv[2], a);
	} else if (!strcmp(job, "write") && argc == 5) {
		a = num(argv[3]);
		b = num(argv[4]);
		if (a && b)
			return do_write(argv[2], a, b);
	}
usage:
	fprintf(stderr, "usage: fs-ops create DIR N SIZE | stat DIR | "
			"read FILE BS | write FILE MIB BS\n");
	return 2;
}
