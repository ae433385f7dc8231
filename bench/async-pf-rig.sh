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
. "$(dirname "${BASH_SOURCE[0]}")/../tests/rig/lib.sh"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

WISP_ARG='' API_ARG='' UFFD_ARG='' MIB=16 DELAY=500 MEM=256 MODES="apf noapf" KEEP=0 TMO=300
while [ $# -gt 0 ]; do
    case "$1" in
        --wisp) WISP_ARG=${2:?}; shift 2 ;;
        --wisp-api) API_ARG=${2:?}; shift 2 ;;
        --wisp-uffd) UFFD_ARG=${2:?}; shift 2 ;;
        --mib) MIB=${2:?}; shift 2 ;;
        --delay-us) DELAY=${2:?}; shift 2 ;;
        --memory) MEM=${2:?}; shift 2 ;;
        --modes) MODES=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) rig_die "unknown argument: $1 (see --help)" ;;
    esac
done
for v in MIB DELAY MEM; do [[ ${!v} =~ ^[0-9]+$ ]] || rig_die "--${v,,} must be a number"; done

rig_setup
WISP=$(rig_find_wisp "$WISP_ARG") || exit 2
API=${API_ARG:-$(dirname "$WISP")/wisp-api}
UFFD=${UFFD_ARG:-$(dirname "$WISP")/../servers/wisp-uffd}
[ -x "$API" ] || rig_die "wisp-api not found: $API (--wisp-api: a dynamic build's src/cli/wisp-api)"
[ -x "$UFFD" ] || rig_die "wisp-uffd not found: $UFFD (--wisp-uffd)"
WORK=${RIG_WORK:-$(mktemp -d /tmp/wisp-apf.XXXXXX)}
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT
gcc -O2 -static -Wall -Wextra -Werror -o "$WORK/apf-touch" "$BENCH_DIR/apf-touch.c" ||
    rig_die "cannot build apf-touch"
L1=$WORK/l1
rig_l1_root "$L1"
install -m 755 "$BENCH_DIR/async-pf-rig-l1-init.sh" "$L1/init"
rig_copy_bin "$L1" "$WISP" /bin/wisp
rig_copy_bin "$L1" "$(readlink -f "$API")" /bin/wisp-api
rig_copy_bin "$L1" "$(readlink -f "$UFFD")" /bin/wisp-uffd
mkdir -p "$L1/l2"
cp "$L2_BZIMAGE" "$L1/l2/bzImage"
rig_l2_initrd "$L1/l2/initrd.gz" "$BENCH_DIR/async-pf-rig-guest-init.sh" \
    --file "$WORK/apf-touch:/bin/apf-touch"
cat > "$L1/rig/bench.conf" <<CONF
MIB=$MIB
DELAY=$DELAY
MEM=$MEM
MODES='$MODES'
TMO=$TMO
CONF
rig_pack "$L1" "$WORK/l1.cpio"
CONSOLE=$WORK/l1-console.log
rig_log "buffer $MIB MiB, $DELAY us a page, guest $MEM MiB, modes: $MODES"
rig_boot_l1 "$WORK/l1.cpio" "$CONSOLE" $((180 + 2 * TMO * $(echo $MODES | wc -w)))
L1_RC=$?
R=$(tr -d '\r' < "$CONSOLE" | grep -ao 'RIG-.*')
echo "$R" | grep '^RIG-APF ' | sed 's/^RIG-APF //'
echo "$R" | grep -q '^RIG-L1-DONE' || { rig_log "L1 did not finish (status $L1_RC); console: $CONSOLE"; KEEP=1; exit 1; }
echo "$R" | awk '$1 == "RIG-APF" && $3 == "APF-RESULT" {
    for (i = 4; i <= NF; i++) { split($i, kv, "="); v[$2, kv[1]] = kv[2] } m[$2] = 1 }
    $1 == "RIG-APF" && $3 == "APF-HYP" { split($6, kv, "="); hyp[$2] = kv[2] }
    $1 == "RIG-APF" && $3 == "wisp-uffd:" && $5 == "faults" { f[$2] = $4 }
    END { printf "%-6s %10s %12s %14s %12s %8s %6s\n", "mode", "touch_ms", "count_during", "count_per_s", "base_per_s", "faults", "HYP"
      for (k in m) printf "%-6s %10s %12s %14.0f %12s %8s %6s\n", k, v[k, "touch_ms"], v[k, "count_during"],
          v[k, "touch_ms"] ? v[k, "count_during"] * 1000 / v[k, "touch_ms"] : 0, v[k, "base_per_s"], f[k], hyp[k] }'
exit 0
