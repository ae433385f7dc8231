// SPDX-License-Identifier: MIT
/* wisp snapshot: a client of a running wisp's API socket that pauses the
 * VM, has it write a Full (or --diff, Diff) snapshot, and (--resume)
 * resumes it; the
 * snapshot itself is written by the VMM (PUT /snapshot/create). Every
 * wait on the server is bounded, and the server must run as our user or
 * root (SO_PEERCRED). */
#include "cli/snapshot_client.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "snapshot/diff.h"
#include "vmm/vmm.h"

/* A snapshot of a large guest is written while we wait. */
#define IO_TIMEOUT_S 120
#define MAX_RESPONSE 65536

static int connect_api(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	struct ucred cr;
	socklen_t crl = sizeof(cr);
	int fd;

	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "wisp: snapshot: --api-sock '%s': too long\n",
			path);
		return -1;
	}
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "wisp: snapshot: API socket '%s': %s\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0 ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		fprintf(stderr,
			"wisp: snapshot: API socket '%s': its server runs as "
			"another user\n",
			path);
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* A JSON string literal of s (quotes and backslashes escaped, control
 * characters as \u00XX). */
static char *json_quote(const char *s)
{
	size_t n = strlen(s);
	char *o = malloc(n * 6 + 3), *p = o;

	if (!o)
		return NULL;
	*p++ = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20) {
			p += sprintf(p, "\\u%04x", c);
		} else {
			*p++ = (char)c;
		}
	}
	*p++ = '"';
	*p = 0;
	return o;
}

/* One request on its own connection; returns the HTTP status or -1, and
 * prints the server's message on an error status. */
static int request(const char *sock, const char *method, const char *path,
		   const char *body)
{
	char head[512], *resp = NULL;
	size_t got = 0, blen = strlen(body);
	int fd = connect_api(sock), status = -1, n;

	if (fd < 0)
		return -1;
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: localhost\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		     method, path, blen);
	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) != n ||
	    send(fd, body, blen, MSG_NOSIGNAL) != (ssize_t)blen) {
		fprintf(stderr, "wisp: snapshot: %s %s: send: %s\n", method,
			path, strerror(errno));
		goto out;
	}
	resp = malloc(MAX_RESPONSE + 1);
	if (!resp)
		goto out;
	while (got < MAX_RESPONSE) {
		ssize_t r = recv(fd, resp + got, MAX_RESPONSE - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "wisp: snapshot: %s %s: %s\n", method,
				path,
				errno == EAGAIN ?
					"no answer within the timeout" :
					strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	resp[got] = 0;
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
		fprintf(stderr, "wisp: snapshot: %s %s: not an HTTP answer\n",
			method, path);
		status = -1;
		goto out;
	}
	if (status >= 300) {
		const char *b = strstr(resp, "\r\n\r\n");

		fprintf(stderr, "wisp: snapshot: %s %s: %d %s\n", method, path,
			status, b ? b + 4 : "");
	}
out:
	free(resp);
	close(fd);
	return status;
}

/* Parses cmd's long options (each with val 256 + its slot) into slot[]:
 * an option's argument, or "" for a flag. Returns 0, or
 * WISP_EXIT_CONFIG after naming the option that is not cmd's. */
static int parse_opts(int argc, char **argv, const char *cmd,
		      const struct option *opts, const char **slot)
{
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c < 256) {
			fprintf(stderr,
				"wisp: %s: bad option '%s' (see wisp --help)\n",
				cmd, argv[optind - 1]);
			return WISP_EXIT_CONFIG;
		}
		slot[c - 256] = optarg ? optarg : "";
	}
	return 0;
}

int snapshot_client_main(int argc, char **argv)
{
	enum { SOCK, SNAP, MEM, RESUME, DIFF, NR };
	static const struct option opts[] = {
		{ "api-sock", required_argument, NULL, 256 + SOCK },
		{ "snapshot", required_argument, NULL, 256 + SNAP },
		{ "mem", required_argument, NULL, 256 + MEM },
		{ "resume", no_argument, NULL, 256 + RESUME },
		{ "diff", no_argument, NULL, 256 + DIFF },
		{ NULL, 0, NULL, 0 },
	};
	const char *o[NR] = { 0 };
	char *qs = NULL, *qm = NULL, *body = NULL;
	int st, code = WISP_EXIT_HOST;

	if (parse_opts(argc, argv, "snapshot", opts, o))
		return WISP_EXIT_CONFIG;
	if (!o[SOCK] || !o[SNAP] || !o[MEM] || optind < argc) {
		fprintf(stderr, "wisp: snapshot needs --api-sock PATH "
				"--snapshot FILE --mem FILE [--diff] "
				"[--resume]\n");
		return WISP_EXIT_CONFIG;
	}
	qs = json_quote(o[SNAP]);
	qm = json_quote(o[MEM]);
	if (qs && qm)
		body = malloc(strlen(qs) + strlen(qm) + 96);
	if (!body) {
		fprintf(stderr, "wisp: snapshot: out of memory\n");
		goto out;
	}
	sprintf(body,
		"{\"snapshot_type\": \"%s\", \"snapshot_path\": %s, "
		"\"mem_file_path\": %s}",
		o[DIFF] ? "Diff" : "Full", qs, qm);
	st = request(o[SOCK], "PATCH", "/vm", "{\"state\": \"Paused\"}");
	if (st != 204) {
		code = st < 0 ? WISP_EXIT_HOST : WISP_EXIT_CONFIG;
		goto out;
	}
	st = request(o[SOCK], "PUT", "/snapshot/create", body);
	code = st == 204 ? 0 : st < 0 ? WISP_EXIT_HOST : WISP_EXIT_CONFIG;
	/* Resumed also after a failed create, when asked: the VM goes on
	 * as before. */
	if (o[RESUME] &&
	    request(o[SOCK], "PATCH", "/vm", "{\"state\": \"Resumed\"}") !=
		    204 &&
	    !code)
		code = WISP_EXIT_HOST;
out:
	free(qs);
	free(qm);
	free(body);
	return code;
}

int snapshot_merge_main(int argc, char **argv)
{
	enum { SNAP, MEM, BASE, OUT, NR };
	static const struct option opts[] = {
		{ "snapshot", required_argument, NULL, 256 + SNAP },
		{ "mem", required_argument, NULL, 256 + MEM },
		{ "base-mem", required_argument, NULL, 256 + BASE },
		{ "out-snapshot", required_argument, NULL, 256 + OUT },
		{ NULL, 0, NULL, 0 },
	};
	const char *o[NR] = { 0 };
	struct err e = { 0 };

	if (parse_opts(argc, argv, "snapshot-merge", opts, o))
		return WISP_EXIT_CONFIG;
	if (!o[SNAP] || !o[MEM] || !o[BASE] || !o[OUT] || optind < argc) {
		fprintf(stderr, "wisp: snapshot-merge needs --snapshot FILE "
				"--mem FILE --base-mem FILE --out-snapshot "
				"FILE\n");
		return WISP_EXIT_CONFIG;
	}
	if (snap_diff_merge(o[SNAP], o[MEM], o[BASE], o[OUT], &e)) {
		fprintf(stderr, "wisp: snapshot-merge: %s\n", e.msg);
		return vm_exit_code(&e);
	}
	return 0;
}
