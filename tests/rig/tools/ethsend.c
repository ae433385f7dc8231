// SPDX-License-Identifier: MIT
/* L1 helper for hostile-net: puts a broadcast Ethernet frame on the
 * interface IFACE every MS milliseconds until killed, so the guest's
 * virtio-net device always has a frame to deliver to whatever receive
 * buffers the hostile driver (tools/hostile.c) gives it. On a tap the
 * frame goes to the VMM that holds the tap open, which passes it to the
 * guest. The frame carries the local experimental EtherType 0x88b5 and
 * the payload "WISP-HOSTILE-RX" and a 32-bit count, which is how hostile
 * tells them from anything else L1's stack sends.
 * usage: ethsend IFACE MS */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETHERTYPE_WISP 0x88b5
#define MAGIC "WISP-HOSTILE-RX"

int main(int argc, char **argv)
{
	struct sockaddr_ll to = { 0 };
	unsigned char frame[64] = { 0 };
	struct timespec gap;
	uint32_t n = 0;
	long ms;
	int fd;

	if (argc != 3 || (ms = strtol(argv[2], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: ethsend IFACE MS\n");
		return 2;
	}
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETHERTYPE_WISP));
	if (fd < 0) {
		perror("ethsend: socket(AF_PACKET)");
		return 1;
	}
	to.sll_family = AF_PACKET;
	to.sll_protocol = htons(ETHERTYPE_WISP);
	to.sll_ifindex = (int)if_nametoindex(argv[1]);
	to.sll_halen = ETH_ALEN;
	memset(to.sll_addr, 0xff, ETH_ALEN);
	if (!to.sll_ifindex) {
		perror("ethsend: if_nametoindex");
		return 1;
	}
	memset(frame, 0xff, ETH_ALEN); /* broadcast */
	frame[6] = 0x02; /* a locally administered source */
	frame[11] = 0x01;
	frame[12] = ETHERTYPE_WISP >> 8;
	frame[13] = ETHERTYPE_WISP & 0xff;
	memcpy(frame + 14, MAGIC, sizeof(MAGIC) - 1);
	gap.tv_sec = ms / 1000;
	gap.tv_nsec = (ms % 1000) * 1000000L;
	for (;;) {
		uint32_t be = htonl(n++);

		memcpy(frame + 14 + sizeof(MAGIC) - 1, &be, 4);
		/* ENOBUFS and the like while the tap's queue is full (no
		 * reader, no buffers): the next frame tries again */
		(void)sendto(fd, frame, sizeof(frame), 0,
			     (struct sockaddr *)&to, sizeof(to));
		nanosleep(&gap, NULL);
	}
}
