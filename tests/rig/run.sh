#!/bin/bash
# tests/rig/run.sh - boot real Linux L2 guests with wisp inside a nested L1
# (QEMU TCG + emulated AMD SVM + Debian's kvm-amd). See docs/rig.md.
#
# usage: tests/rig/run.sh [--wisp PATH] [--only NAME[,NAME...]]... [--vmm wisp|qemu]
#                         [--wisp-args ARGS] [--list] [--keep] [--verbose]
#
#   --wisp PATH   wisp binary (default: $WISP_BIN, else build-rig/src/cli/wisp)
#   --only NAMES  run only these scenarios (repeatable, comma-separated)
#   --wisp-args ARGS  extra arguments for `wisp run` (e.g. "-v -v"; split on
#                 spaces)
#   --vmm qemu    run the same scenarios with qemu-system-x86_64 -M microvm as
#                 the L2 VMM instead of wisp (validates the rig itself)
#   --list        list the scenarios and exit
#   --keep        keep the work directory (initramfs images, console log)
#   --verbose     copy L1's console to stderr while it runs
#
# Output (stdout): one line per scenario, "PASS <name>" or
# "FAIL <name>: <reason>", then "rig: N passed, N failed".
# Details (timings, console tails of failures) go to stderr.
# Exit status: 0 all passed, 1 some failed, 2 the rig could not run.
set -uo pipefail
export RIG_PROG=rig
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# name kernel(in L1) initrd(in L1) cpus memory(MiB) timeout(s)
SCENARIOS="\
pvh-1cpu     /l2/vmlinux       /l2/initrd.gz        1 256 90
pvh-4cpu     /l2/vmlinux       /l2/initrd.gz        4 256 120
bzimage-1cpu /l2/bzImage       /l2/initrd.gz        1 256 90
bzimage-4cpu /l2/bzImage       /l2/initrd.gz        4 256 120
stock-cloud  /l2/cloud-vmlinuz /l2/cloud-initrd.gz  1 256 180"
L1_BOOT_ALLOWANCE=180   # L1 kernel + initramfs unpack + insmod under TCG
TAIL_LINES=40

WISP_ARG='' WISP_ARGS='' VMM=wisp ONLY=() KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --wisp) WISP_ARG=${2:?--wisp needs a path}; shift 2 ;;
        --wisp=*) WISP_ARG=${1#*=}; shift ;;
        --only) IFS=, read -ra o <<< "${2:?--only needs a name}"; ONLY+=("${o[@]}"); shift 2 ;;
        --only=*) IFS=, read -ra o <<< "${1#*=}"; ONLY+=("${o[@]}"); shift ;;
        --wisp-args) WISP_ARGS=${2?}; shift 2 ;;
        --vmm) VMM=${2:?--vmm needs wisp or qemu}; shift 2 ;;
        --vmm=*) VMM=${1#*=}; shift ;;
        --list) echo "$SCENARIOS" | awk '{printf "%-13s kernel=%s cpus=%s memory=%sMiB timeout=%ss\n", $1, $2, $4, $5, $6}'; exit 0 ;;
        --keep) KEEP=1; shift ;;
        --verbose|-v) export RIG_VERBOSE=1; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) rig_die "unknown argument: $1 (see --help)" ;;
    esac
done
case "$VMM" in wisp|qemu) ;; *) rig_die "--vmm must be wisp or qemu" ;; esac

# Select scenarios.
SELECTED=$(echo "$SCENARIOS" | awk '{print $1}')
if [ ${#ONLY[@]} -gt 0 ]; then
    for n in "${ONLY[@]}"; do
        echo "$SELECTED" | grep -qx -- "$n" ||
            rig_die "unknown scenario '$n' (known: $(echo $SELECTED))"
    done
    SELECTED=$(printf '%s\n' "${ONLY[@]}" | awk '!seen[$0]++')
fi
TABLE=$(echo "$SCENARIOS" | awk -v sel="$(echo $SELECTED)" \
    'BEGIN {n = split(sel, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1} want[$1]')

rig_setup
if [ "$VMM" = wisp ]; then
    WISP=$(rig_find_wisp "$WISP_ARG") || exit 2
    rig_log "wisp binary: $WISP ($(file -b "$WISP" 2>/dev/null | cut -d, -f1-2))"
fi

WORK=${RIG_WORK:-$(mktemp -d /tmp/wisp-rig.XXXXXX)}
mkdir -p "$WORK"
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$WORK/l1" "$WORK/l1.cpio"; }
trap cleanup EXIT

# ---- L1 initramfs
t_build=$(date +%s.%N)
L1=$WORK/l1
rm -rf "$L1"
rig_l1_root "$L1"
mkdir -p "$L1/l2"
install -m 755 "$RIG_DIR/l1-init.sh" "$L1/init"
if [ "$VMM" = qemu ]; then
    rig_l1_add_qemu "$L1"
else
    rig_copy_bin "$L1" "$WISP" /bin/wisp
fi
cp "$L2_VMLINUX" "$L2_BZIMAGE" "$L1/l2/"
rig_l2_initrd "$L1/l2/initrd.gz" "$RIG_DIR/l2-init.sh"
if echo "$TABLE" | grep -q '^stock-cloud'; then
    cp "$CLOUD_KERNEL" "$L1/l2/cloud-vmlinuz"
    # virtio_mmio and its dependencies, in load order (the init script
    # insmods them and reports WISP-MODULE; not needed to reach init).
    mapfile -t CLOUD_MODS < <(rig_module_closure "$CLOUD_MODDIR" virtio_mmio)
    rig_l2_initrd "$L1/l2/cloud-initrd.gz" "$RIG_DIR/l2-init.sh" "${CLOUD_MODS[@]}"
fi
echo "$TABLE" > "$L1/rig/scenarios"
[[ "$WISP_ARGS" != *\'* ]] || rig_die "--wisp-args must not contain single quotes"
printf "VMM=%s\nTAIL_LINES=%s\nWISP_ARGS='%s'\n" "$VMM" "$TAIL_LINES" "$WISP_ARGS" > "$L1/rig/config"
rig_pack "$L1" "$WORK/l1.cpio"
rig_log "L1 initramfs: $WORK/l1.cpio ($(du -m "$WORK/l1.cpio" | cut -f1) MiB, built in $(echo "$(date +%s.%N) - $t_build" | bc | cut -c1-4) s)"
rig_log "scenarios ($VMM): $(echo $SELECTED)"

# ---- boot L1 once, run everything
TOTAL_TMO=$(echo "$TABLE" | awk -v b=$L1_BOOT_ALLOWANCE '{s += $6} END {print s + b + 30}')
CONSOLE=$WORK/l1-console.log
t0=$(date +%s.%N)
rig_boot_l1 "$WORK/l1.cpio" "$CONSOLE" "$TOTAL_TMO"
L1_RC=$?
t1=$(date +%s.%N)
rig_log "L1 QEMU exited with status $L1_RC after $(echo "$t1 - $t0" | bc | cut -c1-5) s; console log: $CONSOLE"

# ---- evaluate
R=$(tr -d '\r' < "$CONSOLE" | grep -ao 'RIG-.*')
l1up=$(echo "$R" | awk '$1 == "RIG-L1-UP" {print $2; exit}')
l1kvm=$(echo "$R" | awk '$1 == "RIG-L1-KVM" {print $2; exit}')
l1err=$(echo "$R" | awk '$1 == "RIG-L1-ERROR" {sub(/^RIG-L1-ERROR /, ""); print; exit}')
[ -n "$l1up" ] && rig_log "L1 reached init at uptime ${l1up}s, KVM ready at ${l1kvm:-?}s"
if [ -z "$l1up" ]; then
    rig_log "L1 never reached its init; console tail:"
    tail -n 30 "$CONSOLE" | tr -d '\r' | sed 's/^/  | /' >&2
fi

pass=0 fail=0
while read -r name kernel initrd cpus mem tmo; do
    [ -n "$name" ] || continue
    S=$(echo "$R" | awk -v n="$name" '$2 == n')
    # m KEY: value after a guest marker; has KEY: whether the marker was seen
    m() { echo "$S" | awk -v k="$1" '$1 == "RIG-M" && $3 == k {sub(/^RIG-M [^ ]+ [^ ]+ ?/, ""); print; exit}'; }
    has() { echo "$S" | awk -v k="$1" '$1 == "RIG-M" && $3 == k {f = 1; exit} END {exit !f}'; }
    reasons=() l1died=0
    if ! echo "$S" | grep -q '^RIG-BEGIN'; then
        if [ -n "$l1err" ]; then reasons+=("not run: L1 error: $l1err")
        elif [ "$L1_RC" = 124 ]; then reasons+=("not run: overall timeout (${TOTAL_TMO}s) expired first")
        else reasons+=("not run: L1 stopped before it (QEMU status $L1_RC)"); fi
    elif ! echo "$S" | grep -q '^RIG-EXIT'; then
        l1died=1
        trouble=$(rig_l1_trouble "$CONSOLE")
        if [ "$L1_RC" = 124 ]; then reasons+=("timeout: overall L1 timeout (${TOTAL_TMO}s) expired during this scenario${trouble:+; L1: $trouble}")
        else reasons+=("L1 died during this scenario (QEMU status $L1_RC)${trouble:+: $trouble}"); fi
    else
        rc=$(echo "$S" | awk '$1 == "RIG-EXIT" {print $3; exit}')
        ms=$(echo "$S" | awk '$1 == "RIG-EXIT" {print $4; exit}')
        last=$(echo "$S" | awk '$1 == "RIG-M" {l = $3} END {print l}')
        t_init=$(echo "$S" | awk '$1 == "RIG-V" && $4 == "mark" && $5 == "WISP-INIT-RAN" {printf "%.2f", $6 / 1e9}')
        if echo "$S" | grep -q '^RIG-V [^ ]* vmrun: timeout'; then
            reasons+=("timeout (${tmo}s; last marker: ${last:-none})")
        else
            [ "$rc" = 0 ] || reasons+=("VMM exit status $rc (want 0; last marker: ${last:-none})")
        fi
        if ! has WISP-INIT-RAN; then
            reasons+=("guest init did not run (no WISP-INIT-RAN)")
        else
            v=$(m WISP-CPUS)
            [ "$v" = "$cpus" ] || reasons+=("guest sees ${v:-no} CPUs (want $cpus)")
            v=$(m WISP-MEMTOTAL)
            if ! [[ "$v" =~ ^[0-9]+$ ]]; then reasons+=("no MemTotal reported")
            elif [ "$v" -gt $((mem * 1024)) ] || [ "$v" -lt $((mem * 1024 * 80 / 100)) ]; then
                reasons+=("MemTotal ${v} kB not within 80-100% of ${mem} MiB ($((mem * 1024)) kB)")
            fi
            v=$(m WISP-CMDLINE)
            [[ " $v " == *" rigtoken=$name-7f3a "* ]] ||
                reasons+=("token rigtoken=$name-7f3a missing from /proc/cmdline '${v}'")
            if ! has WISP-READY; then reasons+=("no WISP-READY")
            else
                v=$(m WISP-ECHO)
                [ "$v" = "<ping-$name>" ] || reasons+=("serial input: guest echoed '${v:-nothing}' (want '<ping-$name>')")
            fi
        fi
        rig_log "$name: ${ms:-?} ms in L1 (guest init at ${t_init:-?} s after VMM start), VMM status ${rc:-?}"
    fi
    if [ ${#reasons[@]} -eq 0 ]; then
        echo "PASS $name"
        pass=$((pass + 1))
    else
        reason=$(printf '%s; ' "${reasons[@]}")
        echo "FAIL $name: ${reason%; }"
        fail=$((fail + 1))
        if echo "$S" | grep -q '^RIG-L'; then
            rig_log "$name: L2 console tail:"
            echo "$S" | awk '$1 == "RIG-L"' | tail -n "$TAIL_LINES" | sed 's/^RIG-L [^ ]* \{0,1\}/  | /' >&2
        else
            echo "$S" | grep -q '^RIG-BEGIN' && rig_log "$name: no L2 console output"
        fi
        if [ "$l1died" = 1 ]; then
            rig_log "$name: L1 console tail (L1 kernel messages; panic backtrace if any):"
            tr -d '\r' < "$CONSOLE" | grep -av "TCG doesn't support" | grep -av '^RIG-L ' |
                tail -n 60 | sed 's/^/  | /' >&2
        fi
        # vmrun's diagnostics (timeout, thread states) help with hangs
        echo "$S" | awk '$1 == "RIG-V" && $3 == "vmrun:" && $4 != "mark"' | sed 's/^RIG-V [^ ]* /  vmrun> /' >&2
    fi
done <<< "$TABLE"
echo "rig: $pass passed, $fail failed"
[ "$KEEP" = 1 ] && rig_log "work directory kept: $WORK"
[ "$fail" = 0 ]
