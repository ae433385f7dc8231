// SPDX-License-Identifier: MIT
/*
 * Link test: a minimal IOREQ server built against libwisp-ioreq alone
 * (meson: dependencies : [ioreq_server_dep], nothing else), so a server
 * library that reached into the VMM, KVM or the device layer would fail
 * to link here. It runs one handshake against a peer thread that answers
 * HELLO with a WELCOME for zero vCPUs, which must be refused with a
 * message, and checks the over-long socket path refusal.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ioreq/msg.h"
#include "ioreq/server.h"

static void *vmm(void *arg)
{
	int s = *(int *)arg, fds[IOREQ_MAX_FDS], nfds;
	struct ioreq_hello h;
	struct ioreq_welcome w = { 0 };

	w.hdr = (struct ioreq_hdr){ IOREQ_MSG_WELCOME, sizeof(w), 0, 0 };
	w.magic = IOREQ_MAGIC;
	w.version = IOREQ_VERSION;
	if (ioreq_recv(s, &h, sizeof(h), fds, IOREQ_MAX_FDS, &nfds, 5000) ==
		    sizeof(h) &&
	    h.magic == IOREQ_MAGIC)
		ioreq_send(s, &w, sizeof(w), NULL, 0);
	return NULL;
}

int main(void)
{
	struct wisp_ioreq_server *srv = (void *)1;
	char path[200];
	struct err e = { 0 };
	pthread_t th;
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pthread_create(&th, NULL, vmm, &sv[1])) {
		perror("test_ioreq_link: setup");
		return 1;
	}
	ret = wisp_ioreq_handshake(sv[0], "link", IOREQ_F_BUFFERED_RING, &srv,
				   &e);
	pthread_join(th, NULL);
	close(sv[1]);
	if (ret != -EPROTO || srv || !strstr(e.msg, "WELCOME")) {
		fprintf(stderr, "test_ioreq_link: handshake %d (%s)\n", ret,
			e.msg);
		return 1;
	}
	memset(path, 'x', sizeof(path) - 1);
	path[sizeof(path) - 1] = 0;
	ret = wisp_ioreq_listen(path, &e);
	if (ret != -ENAMETOOLONG) {
		fprintf(stderr, "test_ioreq_link: listen %d\n", ret);
		return 1;
	}
	printf("test_ioreq_link: ok (%s)\n", e.msg);
	return 0;
}
