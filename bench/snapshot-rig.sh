#!/bin/bash
# bench/snapshot-rig.sh - restore versus a cold boot of the same Linux
# guest, in the nested rig (docs/snapshot.md "Figures"). One L1 boot; each
# round boots the rig's L2 guest (bzImage + busybox initrd) cold through
# wisp's API, snapshots it once its init answered, and restores it in a
# new wisp process with the File backend and then through wisp-uffd.
# Each figure is from just before the VMM's fork (vmrun in L1) to the
# guest's first "pong" on the console, answering a "ping" that is sent
# when init printed SNAP-READY (cold boot) or is already waiting on the
# restored VMM's stdin (restores). Prints each round, then the median of
# each and the restores' ratios to the cold boot.
#
# usage: bench/snapshot-rig.sh [--wisp PATH] [--wisp-api PATH]
#            [--wisp-uffd PATH] [--runs N] [--cpus N] [--memory MiB]
#            [--keep]
# Run it under the rig lock: flock /tmp/wisp-rig.lock bench/snapshot-rig.sh
# The L1 is QEMU TCG: compare the ratios, not absolute times.
set -uo pipefail
export RIG_PROG=snapshot-rig
# shellcheck source=bench/lib-rig.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-rig.sh"

WISP_ARG='' API_ARG='' UFFD_ARG='' RUNS=5 CPUS=1 MEM=256 KEEP=0 TMO=60
bench_args "--wisp=WISP_ARG --wisp-api=API_ARG --wisp-uffd=UFFD_ARG --runs=RUNS --cpus=CPUS
    --memory=MEM --keep" "$@"
for v in RUNS CPUS MEM; do [[ ${!v} =~ ^[0-9]+$ ]] || rig_die "--${v,,} must be a number"; done

rig_setup
bench_snapshot_bins
bench_work snaprig
bench_snapshot_l1 snapshot-rig
bench_conf bench.conf RUNS CPUS MEM TMO
bench_boot $((180 + 4 * TMO * RUNS)) \
    "$RUNS rounds, guest $CPUS vCPU(s), $MEM MiB" 120
echo "$R" | grep -E '^RIG-S(-FAIL)? ' | sed 's/^RIG-S //'
grep -q '^RIG-L1-DONE' <<< "$R" || { rig_log "L1 did not finish (status $L1_RC); console: $CONSOLE"; KEEP=1; exit 1; }
grep -q '^RIG-S-FAIL' <<< "$R" && KEEP=1
echo "$R" | awk '$1 == "RIG-S" && $3 ~ /^(cold|create|file|uffd)$/ { v[$3] = v[$3] " " $4; n[$3]++ }
    function med(s,   a, k, i, j, t) {
        k = split(s, a, " ")
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
    END {
        if (!n["cold"]) { print "no cold boot finished"; exit 1 }
        c = med(v["cold"])
        printf "median of %d: cold boot -> pong %.1f ms", n["cold"], c / 1e6
        if (n["create"]) printf ", snapshot create %.1f ms", med(v["create"]) / 1e6
        printf "\n"
        for (k = 0; k < 2; k++) { b = k ? "uffd" : "file"
            if (n[b]) printf "  restore (%s) -> pong %.1f ms (%d runs), %.3f of the cold boot (%.1fx faster)\n",
                b, med(v[b]) / 1e6, n[b], med(v[b]) / c, c / med(v[b]) }
    }'
exit 0
