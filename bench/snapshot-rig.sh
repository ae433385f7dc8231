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
. "$(dirname "${BASH_SOURCE[0]}")/../tests/rig/lib.sh"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

WISP_ARG='' API_ARG='' UFFD_ARG='' RUNS=5 CPUS=1 MEM=256 KEEP=0 TMO=60
while [ $# -gt 0 ]; do
    case "$1" in
        --wisp) WISP_ARG=${2:?}; shift 2 ;;
        --wisp-api) API_ARG=${2:?}; shift 2 ;;
        --wisp-uffd) UFFD_ARG=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --cpus) CPUS=${2:?}; shift 2 ;;
        --memory) MEM=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) rig_die "unknown argument: $1 (see --help)" ;;
    esac
done
for v in RUNS CPUS MEM; do [[ ${!v} =~ ^[0-9]+$ ]] || rig_die "--${v,,} must be a number"; done

rig_setup
WISP=$(rig_find_wisp "$WISP_ARG") || exit 2
API=${API_ARG:-$(dirname "$WISP")/wisp-api}
UFFD=${UFFD_ARG:-$(dirname "$WISP")/../servers/wisp-uffd}
[ -x "$API" ] || rig_die "wisp-api not found: $API (--wisp-api: a dynamic build's src/cli/wisp-api)"
[ -x "$UFFD" ] || rig_die "wisp-uffd not found: $UFFD (--wisp-uffd)"
WORK=${RIG_WORK:-$(mktemp -d /tmp/wisp-snaprig.XXXXXX)}
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT
L1=$WORK/l1
rig_l1_root "$L1"
install -m 755 "$BENCH_DIR/snapshot-rig-l1-init.sh" "$L1/init"
rig_copy_bin "$L1" "$WISP" /bin/wisp
rig_copy_bin "$L1" "$(readlink -f "$API")" /bin/wisp-api
rig_copy_bin "$L1" "$(readlink -f "$UFFD")" /bin/wisp-uffd
mkdir -p "$L1/l2"
cp "$L2_BZIMAGE" "$L1/l2/bzImage"
rig_l2_initrd "$L1/l2/initrd.gz" "$BENCH_DIR/snapshot-rig-guest-init.sh"
cat > "$L1/rig/bench.conf" <<CONF
RUNS=$RUNS
CPUS=$CPUS
MEM=$MEM
TMO=$TMO
CONF
rig_pack "$L1" "$WORK/l1.cpio"
CONSOLE=$WORK/l1-console.log
rig_log "$RUNS rounds, guest $CPUS vCPU(s), $MEM MiB"
rig_boot_l1 "$WORK/l1.cpio" "$CONSOLE" $((180 + 4 * TMO * RUNS))
L1_RC=$?
R=$(tr -d '\r' < "$CONSOLE" | grep -ao 'RIG-.*')
echo "$R" | grep -E '^RIG-S(-FAIL)? ' | sed 's/^RIG-S //'
echo "$R" | grep -q '^RIG-L1-DONE' || { rig_log "L1 did not finish (status $L1_RC); console: $CONSOLE"; KEEP=1; exit 1; }
echo "$R" | grep -q '^RIG-S-FAIL' && KEEP=1
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
