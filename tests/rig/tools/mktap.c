// SPDX-License-Identifier: MIT
/* L1 helper: creates a persistent tap interface NAME (busybox ip has no
 * `tuntap`), owned by root, for a VMM to attach to with TUNSETIFF. The
 * interface stays after this exits, like `ip tuntap add NAME mode tap`.
 * usage: mktap NAME */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct ifreq ifr;
	int fd;

	if (argc != 2 || strlen(argv[1]) >= IFNAMSIZ) {
		fprintf(stderr, "usage: mktap NAME (at most %d characters)\n",
			IFNAMSIZ - 1);
		return 2;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror("mktap: /dev/net/tun");
		return 1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[1]);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		perror("mktap: TUNSETIFF");
		return 1;
	}
	if (ioctl(fd, TUNSETPERSIST, 1) < 0) {
		perror("mktap: TUNSETPERSIST");
		return 1;
	}
	close(fd);
	return 0;
}
