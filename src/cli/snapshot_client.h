/* SPDX-License-Identifier: MIT */
/* wisp snapshot --api-sock PATH --snapshot FILE --mem FILE [--diff]
 * [--resume]:
 * pause, snapshot and optionally resume a VM through its API socket.
 * Returns the process exit code. */
#ifndef WISP_CLI_SNAPSHOT_CLIENT_H
#define WISP_CLI_SNAPSHOT_CLIENT_H

int snapshot_client_main(int argc, char **argv);

/* wisp snapshot-merge --snapshot DIFF.state --mem DIFF.mem --base-mem
 * BASE.mem --out-snapshot OUT.state: writes a Diff snapshot's pages onto
 * the memory file of the snapshot it follows (snapshot/diff.h). */
int snapshot_merge_main(int argc, char **argv);

#endif
