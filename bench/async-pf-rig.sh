#!/bin/bash
# bench/async-pf-rig.sh - asynchronous page faults, measured in the nested
# rig (docs/uffd.md): a 1-vCPU Linux L2 guest fills a buffer, is
# snapshotted and restored through wisp-uffd serving every page with a
# fixed delay and no prefetch; a process touches the buffer (one fault
# per page, from user mode) while a second one counts. Once as the guest
# is (async PF on), once booted with no-kvmapf (the control). Reported:
# the counter's progress while the buffer was touched (and its rate
# before the snapshot), the touch time, the pages wisp-uffd served and
# the guest's /proc/interrupts HYP delta (async PF "page ready").
#
# usage: bench/async-pf-rig.sh [--wisp PATH] [--wisp-api PATH]
#            [--wisp-uffd PATH] [--mib N] [--delay-us N] [--memory MiB]
#            [--modes "apf noapf"] [--keep]
# Run it under the rig lock: flock /tmp/wisp-rig.lock bench/async-pf-rig.sh
set -uo pipefail
export RIG_PROG=async-pf-rig
# shellcheck source=bench/lib-rig.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-rig.sh"

WISP_ARG='' API_ARG='' UFFD_ARG='' MIB=16 DELAY=500 MEM=256 MODES="apf noapf" KEEP=0 TMO=300
bench_args "--wisp=WISP_ARG --wisp-api=API_ARG --wisp-uffd=UFFD_ARG --mib=MIB --delay-us=DELAY
    --memory=MEM --modes=MODES --keep" "$@"
for v in MIB DELAY MEM; do [[ ${!v} =~ ^[0-9]+$ ]] || rig_die "--${v,,} must be a number"; done

rig_setup
bench_snapshot_bins
bench_work apf
gcc -O2 -static -Wall -Wextra -Werror -o "$WORK/apf-touch" "$BENCH_DIR/apf-touch.c" ||
    rig_die "cannot build apf-touch"
bench_snapshot_l1 async-pf-rig \
    --file "$WORK/apf-touch:/bin/apf-touch"
bench_conf bench.conf MIB DELAY MEM MODES TMO
bench_boot $((180 + 2 * TMO * $(echo $MODES | wc -w))) \
    "buffer $MIB MiB, $DELAY us a page, guest $MEM MiB, modes: $MODES" 120
echo "$R" | grep '^RIG-APF ' | sed 's/^RIG-APF //'
grep -q '^RIG-L1-DONE' <<< "$R" || { rig_log "L1 did not finish (status $L1_RC); console: $CONSOLE"; KEEP=1; exit 1; }
echo "$R" | awk '$1 == "RIG-APF" && $3 == "APF-RESULT" {
    for (i = 4; i <= NF; i++) { split($i, kv, "="); v[$2, kv[1]] = kv[2] } m[$2] = 1 }
    $1 == "RIG-APF" && $3 == "APF-HYP" { split($6, kv, "="); hyp[$2] = kv[2] }
    $1 == "RIG-APF" && $3 == "wisp-uffd:" && $5 == "faults" { f[$2] = $4 }
    END { printf "%-6s %10s %12s %14s %12s %8s %6s\n", "mode", "touch_ms", "count_during", "count_per_s", "base_per_s", "faults", "HYP"
      for (k in m) printf "%-6s %10s %12s %14.0f %12s %8s %6s\n", k, v[k, "touch_ms"], v[k, "count_during"],
          v[k, "touch_ms"] ? v[k, "count_during"] * 1000 / v[k, "touch_ms"] : 0, v[k, "base_per_s"], f[k], hyp[k] }'
exit 0
