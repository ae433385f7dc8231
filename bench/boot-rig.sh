#!/bin/bash
# bench/boot-rig.sh - boot-time and memory-overhead benchmark, wisp vs
# qemu-system-x86_64 -M microvm, both as the L2 VMM inside the nested rig's
# L1 (see docs/rig.md). One L1 boot; rounds alternate wisp and QEMU.
#
# usage: bench/boot-rig.sh [--wisp PATH] [--runs N] [--warmup N] [--cpus N]
#                          [--memory MiB] [--cmdline EXTRA] [--only-qemu]
#                          [--vmlinux] [--wisp-b ARGS]
#                          [--rows acpi,noacpi,rootfs] [--keep] [--verbose]
#
# Rows (default all three), each a pair of boots per round:
#   acpi    the rig's bzImage + busybox initrd to init; wisp with its ACPI
#           tables (the default) against -M microvm,acpi=on
#   noacpi  the same with wisp --acpi off (MP table) against
#           -M microvm,acpi=off: the acpi/noacpi ratio is the guest's cost
#           of ACPI
#   rootfs  Debian's cloud kernel booting the Debian root filesystem
#           (tests/rig/rootfs.sh) from a virtio disk through its initramfs to
#           multi-user.target (the marker unit's WISP-MULTI-USER), both with
#           ACPI; the guest then runs `systemctl poweroff`
#
# Boot time = from just before fork/exec of the VMM (vmrun in L1) to the
# moment the guest init's first line "WISP-BENCH-INIT" arrives on the VMM's
# stdout. Same bzImage (the rig's L2 kernel), initrd, memory and vCPUs for
# both VMMs, and the same kernel command line (printed as "cmdline ..."):
# wisp's defaults ("console=ttyS0 panic=-1 pci=off i8042.noaux i8042.nomux
# i8042.nopnp i8042.dumbkbd", given with --no-default-cmdline) plus
# --cmdline EXTRA (e.g. --cmdline quiet), for QEMU with -append. The one
# difference is reboot=, which each VMM needs to end the VM: wisp reboot=k
# (i8042 reset), QEMU microvm reboot=t (triple fault, -no-reboot); neither
# VMM adds a device description (no virtio devices in this benchmark).
#
# Memory overhead = VmRSS minus the resident size of the VMM's memfd
# mappings (guest RAM: a memfd in wisp; QEMU is given
# -object memory-backend-memfd), sampled when the init marker arrives.
# (Not VmRSS - RssShmem: the binaries live on L1's tmpfs initramfs, so their
# code pages count as shmem too.)
#
# --vmlinux: the acpi/noacpi rows boot the same kernel's uncompressed
# vmlinux through its PVH entry (CONFIG_PVH) under both VMMs, instead of
# the XZ bzImage: the difference to a bzImage run is the decompressor's
# time, which neither VMM controls.
#
# --wisp-b ARGS: a third VMM, "wispb": the same wisp binary with ARGS
# added to its run command (e.g. --wisp-b '--serial-posted on'), in
# the same rounds, so an option's effect is measured within one L1 boot
# (wisp/wispb ratios) instead of across two with different noise.
#
# Figures are from an emulated L1 (QEMU TCG): compare ratios, not absolute
# times against bare metal.
set -uo pipefail
export RIG_PROG=boot-rig
. "$(dirname "${BASH_SOURCE[0]}")/../tests/rig/lib.sh"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

L2_IMAGE_KIND=bzImage WISP_ARG='' WISPB_ARGS='' RUNS=5 WARMUP=1 CPUS=2 MEM=256 EXTRA='' KEEP=0 VMMS="wisp qemu" TMO=120
ROWS="acpi noacpi rootfs"
while [ $# -gt 0 ]; do
    case "$1" in
        --wisp) WISP_ARG=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --warmup) WARMUP=${2:?}; shift 2 ;;
        --cpus) CPUS=${2:?}; shift 2 ;;
        --memory) MEM=${2:?}; shift 2 ;;
        --cmdline) EXTRA=${2?}; shift 2 ;;
        --only-qemu) VMMS=qemu; shift ;;
        --vmlinux) L2_IMAGE_KIND=vmlinux; shift ;;
        --wisp-b) WISPB_ARGS=${2:?--wisp-b needs wisp options}; VMMS="wisp wispb qemu"; shift 2 ;;
        --rows) ROWS=${2:?--rows needs a list}; ROWS=${ROWS//,/ }; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --verbose|-v) export RIG_VERBOSE=1; shift ;;
        -h|--help) sed -n '2,50p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) rig_die "unknown argument: $1 (see --help)" ;;
    esac
done
for v in RUNS WARMUP CPUS MEM; do
    [[ ${!v} =~ ^[0-9]+$ ]] || rig_die "--${v,,} must be a number"
done
[ "$RUNS" -ge 1 ] || rig_die "--runs must be >= 1"
for r in $ROWS; do
    case "$r" in acpi|noacpi|rootfs) ;; *) rig_die "--rows: unknown row '$r' (acpi, noacpi, rootfs)" ;; esac
done
[[ "$EXTRA" != *\'* && "$EXTRA" != *\"* ]] || rig_die "--cmdline must not contain quotes"
[[ "$WISPB_ARGS" != *\'* && "$WISPB_ARGS" != *\"* ]] || rig_die "--wisp-b must not contain quotes"

rig_setup
if [[ " $VMMS " == *" wisp "* ]]; then
    WISP=$(rig_find_wisp "$WISP_ARG") || exit 2
    rig_log "wisp binary: $WISP"
fi

WORK=${RIG_WORK:-$(mktemp -d /tmp/wisp-bench.XXXXXX)}
mkdir -p "$WORK"
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$WORK/l1" "$WORK/l1.cpio"; }
trap cleanup EXIT
L1=$WORK/l1
rm -rf "$L1"
rig_l1_root "$L1"
install -m 755 "$BENCH_DIR/boot-rig-l1-init.sh" "$L1/init"
rig_l1_add_qemu "$L1"
[ -n "${WISP:-}" ] && rig_copy_bin "$L1" "$WISP" /bin/wisp
mkdir -p "$L1/l2"
# (named bzImage in L1 either way: the L1 init does not care which)
if [ "$L2_IMAGE_KIND" = vmlinux ]; then L2_IMAGE=$L2_VMLINUX; else L2_IMAGE=$L2_BZIMAGE; fi
cp "$L2_IMAGE" "$L1/l2/bzImage"
rig_l2_initrd "$L1/l2/initrd.gz" "$BENCH_DIR/boot-rig-guest-init.sh"
if [[ " $ROWS " == *" rootfs "* ]]; then
    # the same image, kernel and initramfs as the debian-rootfs scenario
    [ -f "${ROOTFS_IMG:-}" ] && [ -f "${ROOTFS_MODS:-}" ] ||
        rig_die "rig.env names no Debian root filesystem: run tests/rig/setup.sh"
    cp "$CLOUD_KERNEL" "$L1/l2/cloud-vmlinuz"
    rig_l2_initrd "$WORK/initrd-rootfs-base.gz" "$RIG_DIR/rootfs-init.sh"
    cat "$WORK/initrd-rootfs-base.gz" "$ROOTFS_MODS" > "$L1/l2/initrd-rootfs.gz"
    rm -f "$WORK/initrd-rootfs-base.gz"
    cp "$ROOTFS_IMG" "$L1/l2/rootfs.ext4"
fi
CMDLINE="console=ttyS0 panic=-1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd${EXTRA:+ $EXTRA}"
cat > "$L1/rig/bench.conf" <<EOF
RUNS=$RUNS
WARMUP=$WARMUP
CPUS=$CPUS
MEM=$MEM
TMO=$TMO
EXTRA='$EXTRA'
VMMS='$VMMS'
WISPB_ARGS='$WISPB_ARGS'
ROWS='$ROWS'
CMDLINE='$CMDLINE'
EOF
rig_pack "$L1" "$WORK/l1.cpio"

NVMM=$(echo $VMMS | wc -w)
ROW_TMO=0
for r in $ROWS; do
    if [ "$r" = rootfs ]; then ROW_TMO=$((ROW_TMO + 300)); else ROW_TMO=$((ROW_TMO + TMO)); fi
done
TOTAL_TMO=$(( 180 + (RUNS + WARMUP) * NVMM * ROW_TMO ))
KEYS=$(for r in $ROWS; do for v in $VMMS; do printf '%s-%s ' "$v" "$r"; done; done)
CONSOLE=$WORK/l1-console.log
rig_log "rows $ROWS: $CPUS vCPUs, $MEM MiB, $RUNS runs (+$WARMUP warm-up) per VMM: $VMMS"
t0=$(date +%s.%N)
rig_boot_l1 "$WORK/l1.cpio" "$CONSOLE" "$TOTAL_TMO" 120
L1_RC=$?
rig_log "L1 finished (QEMU status $L1_RC) after $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-6) s; console log: $CONSOLE"

R=$(tr -d '\r' < "$CONSOLE" | grep -ao 'RIG-.*')
if ! grep -q '^RIG-L1-DONE' <<< "$R"; then
    trouble=$(rig_l1_trouble "$CONSOLE")
    rig_log "L1 did not complete the benchmark (no RIG-L1-DONE; QEMU status $L1_RC)${trouble:+: $trouble}; L1 console tail:"
    tr -d '\r' < "$CONSOLE" | grep -av "TCG doesn't support" | tail -n 60 | sed 's/^/  | /' >&2
    [ "$L1_RC" = 0 ] && L1_RC=1
fi
if grep -q '^RIG-L1-ERROR' <<< "$R"; then
    rig_die "L1: $(grep -m 1 '^RIG-L1-ERROR' <<< "$R")"
fi
echo "cmdline (both VMMs): $CMDLINE (rootfs row: plus root=/dev/vda quiet); plus reboot=k for wisp, reboot=t for qemu (how each ends the VM)"
echo "kernels: acpi/noacpi rows $L2_IMAGE; rootfs row $CLOUD_KERNEL with ${ROOTFS_IMG:-}"
# The guest's boot lines of each VMM's first measured run, side by side.
echo "$R" | awk '$1 == "RIG-B-D" && $3 == "1" {l = $0; sub(/^RIG-B-D [^ ]+ 1 /, "", l); print "dmesg " $2 ": " l}' 
echo "$R" | awk '$1 == "RIG-B-CMD" && !seen[$2]++ {sub(/^RIG-B-CMD /, ""); print "command " $0}'

# Per-run table and medians (awk does the arithmetic).
echo "$R" | awk -v vmms="$KEYS" -v rows="$ROWS" -v runs="$RUNS" '
function median(arr, n,    i, j, t) {
    for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
    return (n % 2) ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}
$1 == "RIG-B" && $4 == "mark" { boot[$2, $3] = $6 / 1e6 }
$1 == "RIG-B" && $4 == "mem" {
    for (i = 6; i <= NF; i++) { split($i, kv, "="); mem[$2, $3, kv[1]] = kv[2] }
}
$1 == "RIG-B" && $4 == "exit" { st[$2, $3] = $5; total[$2, $3] = $6 / 1e6 }
$1 == "RIG-B" && $4 == "uptime" { up[$2, $3] = $5 * 1000 }
$1 == "RIG-B-FAIL" { failed[$2, $3] = 1 }
$1 == "RIG-B-T" { tl = $0; sub(/^RIG-B-T /, "", tl); tails[$2, $3] = tails[$2, $3] "  | " tl "\n" }
END {
    nv = split(vmms, V, " "); bad = 0
    printf "%-12s %-5s %12s %12s %10s %10s %10s %10s %6s\n", "vmm-row", "run", "boot_ms", "exit_ms", "rss_kB", "shmem_kB", "memfd_kB", "own_kB", "status"
    for (v = 1; v <= nv; v++) {
        n = 0; nm = 0
        for (r = 1; r <= runs; r++) {
            k = V[v] SUBSEP r
            guest = ((V[v], r, "MemfdRss") in mem && mem[V[v], r, "MemfdRss"] >= 0) ? mem[V[v], r, "MemfdRss"] : mem[V[v], r, "RssShmem"]
            own = ((V[v], r, "VmRSS") in mem) ? mem[V[v], r, "VmRSS"] - guest : -1
            printf "%-12s %-5s %12s %12s %10s %10s %10s %10s %6s\n", V[v], r,
                (k in boot) ? sprintf("%.1f", boot[k]) : "-",
                (k in total) ? sprintf("%.1f", total[k]) : "-",
                ((V[v], r, "VmRSS") in mem) ? mem[V[v], r, "VmRSS"] : "-",
                ((V[v], r, "RssShmem") in mem) ? mem[V[v], r, "RssShmem"] : "-",
                ((V[v], r, "MemfdRss") in mem) ? mem[V[v], r, "MemfdRss"] : "-",
                (own >= 0) ? own : "-", (k in st) ? st[k] : "?"
            if (k in failed) { bad++; printf "%s", tails[k] > "/dev/stderr" }
            else if (!(k in st)) bad++
            else if (k in boot) { b[++n] = boot[k]; if (own >= 0) o[++nm] = own }
        }
        nu = 0
        for (r = 1; r <= runs; r++) if ((V[v], r) in up && !((V[v], r) in failed)) u[++nu] = up[V[v], r]
        if (nu) { mu[V[v]] = median(u, nu); printf "median %-12s guest uptime at init %.0f ms over %d runs\n", V[v], mu[V[v]], nu }
        delete u
        if (n) { mb[V[v]] = median(b, n); printf "median %-12s boot %.1f ms over %d runs", V[v], mb[V[v]], n }
        else printf "median %-12s boot - (no successful run)", V[v]
        if (nm) { mo[V[v]] = median(o, nm); printf ", VMM own memory (VmRSS - guest memfd RSS) %d kB\n", mo[V[v]] }
        else printf "\n"
        delete b; delete o
    }
    # per row: wisp against QEMU (boot = to init; rootfs: to multi-user.target)
    nr = split(rows, RW, " ")
    for (i = 1; i <= nr; i++) {
        w = "wisp-" RW[i]; q = "qemu-" RW[i]
        if ((w in mb) && (q in mb) && mb[q] > 0)
            printf "ratio %-6s wisp/qemu boot %.3f (%.1f / %.1f ms)\n", RW[i], mb[w] / mb[q], mb[w], mb[q]
        if ((w in mu) && (q in mu) && mu[q] > 0)
            printf "ratio %-6s wisp/qemu guest uptime at init %.3f\n", RW[i], mu[w] / mu[q]
        if ((w in mo) && (q in mo) && mo[q] > 0)
            printf "ratio %-6s wisp/qemu memory %.3f\n", RW[i], mo[w] / mo[q]
        wb = "wispb-" RW[i]
        if ((wb in mb) && (q in mb) && mb[q] > 0)
            printf "ratio %-6s wispb/qemu boot %.3f (%.1f / %.1f ms)\n", RW[i], mb[wb] / mb[q], mb[wb], mb[q]
        if ((wb in mu) && (q in mu) && mu[q] > 0)
            printf "ratio %-6s wispb/qemu guest uptime at init %.3f\n", RW[i], mu[wb] / mu[q]
        if ((w in mb) && (wb in mb) && mb[wb] > 0)
            printf "ratio %-6s wisp/wispb boot %.3f (%.1f / %.1f ms)\n", RW[i], mb[w] / mb[wb], mb[w], mb[wb]
        if ((w in mu) && (wb in mu) && mu[wb] > 0)
            printf "ratio %-6s wisp/wispb guest uptime at init %.3f\n", RW[i], mu[w] / mu[wb]
    }
    # the guest cost of ACPI: each VMM with ACPI against without
    split("wisp qemu", VV, " ")
    for (i = 1; i <= 2; i++) {
        ka = VV[i] "-acpi"; kn = VV[i] "-noacpi"
        if ((ka in mb) && (kn in mb) && mb[kn] > 0)
            printf "ratio acpi/noacpi %s boot %.3f (%.1f / %.1f ms)\n", VV[i], mb[ka] / mb[kn], mb[ka], mb[kn]
    }
    if (bad) { printf "boot-rig: %d run(s) failed or did not run\n", bad; exit 1 }
}'
rc=$?
[ "$L1_RC" = 0 ] || { rig_log "L1 did not finish cleanly (status $L1_RC)"; rc=1; }
[ "$KEEP" = 1 ] && rig_log "work directory kept: $WORK"
exit $rc
