/* SPDX-License-Identifier: MIT */
#ifndef WISP_CLI_API_MAIN_H
#define WISP_CLI_API_MAIN_H

/* wisp --api-sock PATH [--config-file FILE] [--no-api] ...: argv as
 * main's. Returns the process exit code. */
int api_main(int argc, char **argv);

#endif
