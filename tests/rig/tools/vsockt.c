// SPDX-License-Identifier: MIT
/* Rig helper for the vsock scenario, in L1 (unix sockets, the host side
 * of Firecracker's model) and in the L2 guest (AF_VSOCK):
 *   vsockt serve vsock PORT | serve unix PATH
 *       echo server, one process per connection: echoes until the peer
 *       half-closes, then half-closes too (runs until killed)
 *   vsockt echo vsock:CID:PORT|uds:PATH:PORT BYTES CONNS [SECONDS]
 *       CONNS connections at once (uds: "CONNECT PORT\n" and the "OK "
 *       line first), BYTES of a per-connection pattern sent on each,
 *       then a half-close; every byte echoed back is checked and the
 *       echo must end exactly after BYTES. Exit 0 and "ok ..." or exit 1
 *       and what went wrong; SECONDS (default 120) bounds the whole run.
 *       uds: the "ok" line ends with the host ports the OK lines named.
 *   vsockt refused vsock:CID:PORT   exit 0 if the connect is refused
 *   vsockt cid                      the guest's own CID
 *   vsockt hold vsock:CID:PORT|uds:PATH:PORT [SECONDS]
 *       one connection to an echo server: one byte out and back, then
 *       "open" on stdout (uds: "open port N", N from the OK line),
 *       then waits for the connection to end and
 *       prints how: "eof", "reset: ERROR", or "fail: timed out" after
 *       SECONDS (default 300); for the snapshot-net-vsock scenario,
 *       whose connections must not survive a snapshot
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static uint8_t pat(uint64_t off, unsigned int k)
{
	return (uint8_t)(off * 131 + k * 7 + (off >> 10));
}

static void on_alarm(int sig)
{
	static const char m[] = "fail: timed out\n";

	(void)sig;
	if (write(1, m, sizeof(m) - 1) < 0)
		_exit(1);
	_exit(1);
}

static int serve(int lfd)
{
	struct sigaction sa = { .sa_handler = SIG_IGN,
				.sa_flags = SA_NOCLDWAIT };

	sigaction(SIGCHLD, &sa, NULL);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		pid_t p;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("vsockt: accept");
			return 1;
		}
		p = fork();
		if (p == 0) {
			static char buf[65536];
			ssize_t r;

			close(lfd);
			while ((r = read(fd, buf, sizeof(buf))) > 0) {
				for (ssize_t o = 0; o < r;) {
					ssize_t w = write(fd, buf + o,
							  (size_t)(r - o));

					if (w <= 0)
						_exit(1);
					o += w;
				}
			}
			shutdown(fd, SHUT_WR);
			/* Until the peer closes, so nothing is reset. */
			while (read(fd, buf, sizeof(buf)) > 0)
				;
			_exit(0);
		}
		close(fd);
	}
}

static int vsock_socket(unsigned int cid, unsigned int port, int listen_too)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK,
				 .svm_cid = cid,
				 .svm_port = port };
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0)
		return -errno;
	if (listen_too) {
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    listen(fd, 128) < 0) {
			int e = errno;

			close(fd);
			return -e;
		}
		return fd;
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* The host port the last uds handshake's OK line named. */
static unsigned long ok_port;

/* uds:PATH:PORT: Firecracker's host-initiated handshake. */
static int uds_connect(const char *path, unsigned int port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char line[64], c;
	size_t n = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0 || strlen(path) >= sizeof(a.sun_path))
		return -EINVAL;
	strcpy(a.sun_path, path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	n = (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (write(fd, line, n) != (ssize_t)n) {
		close(fd);
		return -EIO;
	}
	for (n = 0; n < sizeof(line) - 1;) {
		if (read(fd, &c, 1) != 1) {
			close(fd);
			return -ECONNRESET;
		}
		line[n++] = c;
		if (c == '\n')
			break;
	}
	line[n] = 0;
	if (strncmp(line, "OK ", 3)) {
		fprintf(stderr, "vsockt: handshake answer '%s'\n", line);
		close(fd);
		return -EPROTO;
	}
	ok_port = strtoul(line + 3, NULL, 10);
	return fd;
}

static int dial(const char *addr)
{
	char path[128];
	unsigned int cid, port;
	const char *colon;

	if (sscanf(addr, "vsock:%u:%u", &cid, &port) == 2)
		return vsock_socket(cid, port, 0);
	colon = strrchr(addr, ':');
	if (!strncmp(addr, "uds:", 4) && colon &&
	    colon - addr - 4 < (long)sizeof(path) &&
	    sscanf(colon + 1, "%u", &port) == 1) {
		memcpy(path, addr + 4, (size_t)(colon - addr - 4));
		path[colon - addr - 4] = 0;
		return uds_connect(path, port);
	}
	fprintf(stderr, "vsockt: bad address '%s'\n", addr);
	exit(2);
}

struct conn {
	int fd;
	uint64_t sent, got;
	int eof;
};

static int echo(const char *addr, uint64_t bytes, unsigned int n)
{
	struct conn *c = calloc(n, sizeof(*c));
	struct pollfd *p = calloc(n, sizeof(*p));
	static uint8_t buf[65536];
	struct timespec t0, t1;
	unsigned int left = n;
	unsigned long lo = ~0ul, hi = 0;

	if (!c || !p)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned int k = 0; k < n; k++) {
		c[k].fd = dial(addr);
		if (c[k].fd < 0) {
			printf("fail: connection %u of %u: %s\n", k + 1, n,
			       strerror(-c[k].fd));
			return 1;
		}
		if (ok_port && ok_port < lo)
			lo = ok_port;
		if (ok_port > hi)
			hi = ok_port;
		fcntl(c[k].fd, F_SETFL, O_NONBLOCK);
		if (bytes == 0)
			shutdown(c[k].fd, SHUT_WR);
	}
	while (left) {
		for (unsigned int k = 0; k < n; k++) {
			p[k].fd = c[k].eof ? -1 : c[k].fd;
			p[k].events = POLLIN |
				      (c[k].sent < bytes ? POLLOUT : 0);
		}
		if (poll(p, n, -1) < 0 && errno != EINTR) {
			perror("vsockt: poll");
			return 1;
		}
		for (unsigned int k = 0; k < n; k++) {
			ssize_t r;

			if (c[k].eof || !p[k].revents)
				continue;
			if ((p[k].revents & POLLOUT) && c[k].sent < bytes) {
				uint64_t m = bytes - c[k].sent;

				if (m > sizeof(buf))
					m = sizeof(buf);
				for (uint64_t i = 0; i < m; i++)
					buf[i] = pat(c[k].sent + i, k);
				r = write(c[k].fd, buf, (size_t)m);
				if (r < 0 && errno != EAGAIN) {
					printf("fail: conn %u: write after %llu bytes: %s\n",
					       k, (unsigned long long)c[k].sent,
					       strerror(errno));
					return 1;
				}
				if (r > 0)
					c[k].sent += (uint64_t)r;
				if (c[k].sent == bytes)
					shutdown(c[k].fd, SHUT_WR);
			}
			if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(c[k].fd, buf, sizeof(buf));
			if (r < 0) {
				if (errno == EAGAIN)
					continue;
				printf("fail: conn %u: read after %llu bytes: %s\n",
				       k, (unsigned long long)c[k].got,
				       strerror(errno));
				return 1;
			}
			if (r == 0) {
				if (c[k].got != bytes) {
					printf("fail: conn %u: echo ended after %llu of %llu bytes\n",
					       k, (unsigned long long)c[k].got,
					       (unsigned long long)bytes);
					return 1;
				}
				c[k].eof = 1;
				close(c[k].fd);
				left--;
				continue;
			}
			for (ssize_t i = 0; i < r; i++) {
				if (c[k].got + (uint64_t)i >= bytes ||
				    buf[i] != pat(c[k].got + (uint64_t)i, k)) {
					printf("fail: conn %u: wrong byte at offset %llu\n",
					       k,
					       (unsigned long long)(c[k].got +
								    (uint64_t)
									    i));
					return 1;
				}
			}
			c[k].got += (uint64_t)r;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("ok %u conns x %llu bytes echoed and checked in %ld ms", n,
	       (unsigned long long)bytes,
	       (long)((t1.tv_sec - t0.tv_sec) * 1000 +
		      (t1.tv_nsec - t0.tv_nsec) / 1000000));
	if (hi)
		printf(", host ports %lu-%lu", lo, hi);
	printf("\n");
	return 0;
}

static int hold(const char *addr)
{
	int fd = dial(addr);
	char b = 'h';
	ssize_t r;

	if (fd < 0) {
		printf("fail: connect: %s\n", strerror(-fd));
		return 1;
	}
	if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1 || b != 'h') {
		printf("fail: no echo of the first byte\n");
		return 1;
	}
	if (ok_port)
		printf("open port %lu\n", ok_port);
	else
		printf("open\n");
	fflush(stdout);
	/* Anything echoed after the first byte would be a bug: only the
	 * end of the connection is expected. */
	r = read(fd, &b, 1);
	if (r == 0)
		printf("eof\n");
	else if (r < 0)
		printf("reset: %s\n", strerror(errno));
	else
		printf("fail: an unexpected byte\n");
	return r > 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "serve")) {
		int fd;

		if (!strcmp(argv[2], "vsock")) {
			fd = vsock_socket(VMADDR_CID_ANY,
					  (unsigned int)atoi(argv[3]), 1);
		} else {
			struct sockaddr_un a = { .sun_family = AF_UNIX };

			fd = socket(AF_UNIX, SOCK_STREAM, 0);
			snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[3]);
			if (fd < 0 ||
			    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
			    listen(fd, 128) < 0)
				fd = -errno;
		}
		if (fd < 0) {
			fprintf(stderr, "vsockt: listen %s: %s\n", argv[3],
				strerror(-fd));
			return 1;
		}
		return serve(fd);
	}
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "echo")) {
		signal(SIGALRM, on_alarm);
		signal(SIGPIPE, SIG_IGN);
		alarm(argc == 6 ? (unsigned int)atoi(argv[5]) : 120);
		return echo(argv[2], strtoull(argv[3], NULL, 10),
			    (unsigned int)atoi(argv[4]));
	}
	if (argc == 3 && !strcmp(argv[1], "refused")) {
		int fd;

		alarm(30);
		fd = dial(argv[2]);
		if (fd >= 0) {
			printf("fail: connected\n");
			return 1;
		}
		printf("ok refused: %s\n", strerror(-fd));
		return 0;
	}
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "hold")) {
		signal(SIGALRM, on_alarm);
		signal(SIGPIPE, SIG_IGN);
		alarm(argc == 4 ? (unsigned int)atoi(argv[3]) : 300);
		return hold(argv[2]);
	}
	if (argc == 2 && !strcmp(argv[1], "cid")) {
		unsigned int cid;
		int fd = open("/dev/vsock", O_RDONLY);

		if (fd < 0 ||
		    ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0) {
			perror("vsockt: /dev/vsock");
			return 1;
		}
		printf("%u\n", cid);
		return 0;
	}
	fprintf(stderr, "usage: see the comment in tests/rig/tools/vsockt.c\n");
	return 2;
}
