/* SPDX-License-Identifier: MIT */
/* wisp snapshot --api-sock PATH --snapshot FILE --mem FILE [--resume]:
 * pause, snapshot and optionally resume a VM through its API socket.
 * Returns the process exit code. */
#ifndef WISP_CLI_SNAPSHOT_CLIENT_H
#define WISP_CLI_SNAPSHOT_CLIENT_H

int snapshot_client_main(int argc, char **argv);

#endif
