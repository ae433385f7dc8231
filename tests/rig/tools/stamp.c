/* stamp - print CLOCK_MONOTONIC in nanoseconds (or milliseconds with -m).
 *
 * Used inside the nested rig's L1, whose busybox `date` has no %N.
 * Built statically by tests/rig/setup.sh.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (argc > 1 && strcmp(argv[1], "-m") == 0)
		printf("%lld\n",
		       (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	else
		printf("%lld\n",
		       (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	return 0;
}
