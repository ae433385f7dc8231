/* stamp - print CLOCK_MONOTONIC in nanoseconds (or milliseconds with -m),
 * or with -t the clock tick of /proc/PID/stat times (sysconf(_SC_CLK_TCK),
 * what `getconf CLK_TCK` prints).
 *
 * Used inside the nested rig's L1, whose busybox has neither `date +%N`
 * nor getconf. Built statically by tests/rig/setup.sh.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec ts;

	if (argc > 1 && strcmp(argv[1], "-t") == 0) {
		long hz = sysconf(_SC_CLK_TCK);

		if (hz <= 0) {
			fprintf(stderr, "stamp: sysconf(_SC_CLK_TCK) failed\n");
			return 1;
		}
		printf("%ld\n", hz);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (argc > 1 && strcmp(argv[1], "-m") == 0)
		printf("%lld\n",
		       (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	else
		printf("%lld\n",
		       (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	return 0;
}
