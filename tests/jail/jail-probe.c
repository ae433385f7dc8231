// SPDX-License-Identifier: MIT
/* jail-probe SPEC: the probe alone, as the program `wisp jail
 * --exec-file` runs (tests/guest/test_direct.py, case_jail_*). */
#include <stdio.h>

#include "probe.h"

int main(int argc, char **argv)
{
	if (argc != 2 || jail_probe_run(argv[1])) {
		fprintf(stderr, "usage: jail-probe file=PATH,tcp=PORT,...\n");
		return 1;
	}
	return 0;
}
