// SPDX-License-Identifier: MIT
/*
 * ucurl: the subset of curl that Firecracker's getting-started commands
 * use, for L1 (busybox has no curl, Debian's pulls in a dozen libraries):
 *
 *   curl --unix-socket PATH [-i] [-s] [-S] [-X METHOD] [-H 'K: V']...
 *        [-d|--data BODY] URL
 *
 * One HTTP/1.1 request over the unix socket, the response body (with -i
 * the status line and headers too) on stdout. Exit status as curl's:
 * 0 when a response arrived (whatever its status; curl needs -f to fail
 * on 4xx), 7 when the socket cannot be reached, 28 on a timeout (10 s
 * per read or write), 2 for bad usage, 8 for an unparsable response.
 * As curl, -d without a Content-Type header sends
 * application/x-www-form-urlencoded and makes the method POST unless -X
 * says otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_HEADERS 16
#define MAX_RESP (1 << 20)

static int usage(void)
{
	fprintf(stderr, "usage: curl --unix-socket PATH [-i] [-s] [-S] [-X "
			"METHOD] [-H HEADER]... [-d BODY] http://HOST/PATH\n");
	return 2;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *method = NULL, *data = NULL, *url = NULL;
	const char *hdr[MAX_HEADERS];
	int nhdr = 0, show_headers = 0, has_ctype = 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	const char *path, *host, *slash;
	char *req, *resp, *end, *body;
	size_t len = 0, hlen, want;
	long clen = -1;
	int fd, n;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--unix-socket") && i + 1 < argc)
			sock = argv[++i];
		else if (!strcmp(a, "-X") && i + 1 < argc)
			method = argv[++i];
		else if (!strcmp(a, "-H") && i + 1 < argc) {
			if (nhdr == MAX_HEADERS)
				return usage();
			if (!strncasecmp(argv[i + 1], "content-type:", 13))
				has_ctype = 1;
			hdr[nhdr++] = argv[++i];
		} else if ((!strcmp(a, "-d") || !strcmp(a, "--data")) &&
			   i + 1 < argc)
			data = argv[++i];
		else if (!strcmp(a, "-i"))
			show_headers = 1;
		else if (!strcmp(a, "-s") || !strcmp(a, "-S") ||
			 !strcmp(a, "-sS"))
			; /* no progress meter to silence */
		else if (a[0] != '-' && !url)
			url = a;
		else
			return usage();
	}
	if (!sock || !url || strncmp(url, "http://", 7) ||
	    strlen(sock) >= sizeof(sa.sun_path))
		return usage();
	host = url + 7;
	slash = strchr(host, '/');
	path = slash ? slash : "/";
	if (!method)
		method = data ? "POST" : "GET";

	n = snprintf(NULL, 0, "%s %s HTTP/1.1\r\nHost: %.*s\r\n", method, path,
		     (int)(slash ? slash - host : (long)strlen(host)), host);
	want = (size_t)n + (data ? strlen(data) : 0) + 256;
	for (int i = 0; i < nhdr; i++)
		want += strlen(hdr[i]) + 2;
	req = malloc(want);
	resp = malloc(MAX_RESP + 1);
	if (!req || !resp)
		return 2;
	len = (size_t)snprintf(req, want, "%s %s HTTP/1.1\r\nHost: %.*s\r\n",
			       method, path,
			       (int)(slash ? slash - host : (long)strlen(host)),
			       host);
	len += (size_t)snprintf(req + len, want - len,
				"User-Agent: ucurl\r\nAccept: */*\r\n");
	for (int i = 0; i < nhdr; i++)
		len += (size_t)snprintf(req + len, want - len, "%s\r\n",
					hdr[i]);
	if (data) {
		if (!has_ctype)
			len += (size_t)snprintf(
				req + len, want - len,
				"Content-Type: "
				"application/x-www-form-urlencoded\r\n");
		len += (size_t)snprintf(req + len, want - len,
					"Content-Length: %zu\r\n\r\n%s",
					strlen(data), data);
	} else {
		len += (size_t)snprintf(req + len, want - len, "\r\n");
	}

	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "curl: (7) Couldn't connect to %s: %s\n", sock,
			strerror(errno));
		return 7;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (write_all(fd, req, len) < 0) {
		fprintf(stderr, "curl: (55) send: %s\n", strerror(errno));
		return errno == EAGAIN ? 28 : 55;
	}

	/* The headers, then Content-Length bytes of body (a 204 has none);
	 * the server keeps the connection open, so EOF is not the end. */
	len = 0;
	end = NULL;
	for (;;) {
		ssize_t r;

		if (end) {
			hlen = (size_t)(end - resp) + 4;
			if (clen < 0 || len - hlen >= (size_t)clen)
				break;
		}
		if (len == MAX_RESP) {
			fprintf(stderr, "curl: (8) response too large\n");
			return 8;
		}
		r = read(fd, resp + len, MAX_RESP - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "curl: (28) read: %s\n",
				strerror(errno));
			return 28;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		resp[len] = 0;
		if (!end && (end = strstr(resp, "\r\n\r\n"))) {
			char *cl;

			*end = 0;
			cl = strcasestr(resp, "\r\nContent-Length:");
			clen = cl ? strtol(cl + 17, NULL, 10) : 0;
			*end = '\r';
		}
	}
	close(fd);
	if (!end || strncmp(resp, "HTTP/1.", 7)) {
		fprintf(stderr, "curl: (8) weird server reply\n");
		return 8;
	}
	hlen = (size_t)(end - resp) + 4;
	body = resp + hlen;
	if (show_headers)
		fwrite(resp, 1, hlen, stdout);
	fwrite(body, 1, len - hlen, stdout);
	fflush(stdout);
	free(req);
	free(resp);
	return 0;
}
