// SPDX-License-Identifier: MIT
/* wisp-api: `wisp --api-sock/--config-file/--no-api` execs this binary,
 * so only API-driven VMs map the HTTP and JSON libraries. */
#include "cli/api_main.h"

int main(int argc, char **argv)
{
	return api_main(argc, argv);
}
