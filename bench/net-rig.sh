#!/bin/bash
# bench/net-rig.sh - network benchmark inside the nested rig (docs/rig.md):
# iperf3 (Debian's) and ping between L1 and the L2 guest over one tap in
# L1 (L1 has no network device: nothing leaves it), all VMMs in ONE L1
# boot, the same guest kernel, command line, memory, vCPUs and tap:
#   wisp        wisp run --net tap=wtap0,mac=..   (wisp's own virtio-net)
#   wisp-vhost  wisp run --net tap=wtap0,mac=..,vhost=on   (vhost-net)
#   qemu        qemu-system-x86_64 -M microvm -netdev tap,ifname=wtap0,
#               vhost=off -device virtio-net-device (modern virtio-mmio:
#               -global virtio-mmio.force-legacy=false, like wisp's)
#   qemu-vhost  the same with vhost=on
# Jobs (iperf3 client in L1, server in the guest; -t RUNTIME):
#   g2h-1 g2h-4  guest -> L1 (iperf3 -R), 1 and 4 TCP streams (-P 4)
#   h2g-1 h2g-4  L1 -> guest, 1 and 4 TCP streams
#   rtt          ping -i 0.01 from L1, RUNTIME*100 echo round trips:
#                mean, p50, p99
#
# usage: bench/net-rig.sh [--wisp PATH] [--vmms LIST] [--jobs LIST]
#                         [--runtime S] [--cpus N] [--memory MiB] [--keep]
#                         [--verbose]
#   --vmms LIST   from wisp,wisp-vhost,qemu,qemu-vhost (default all four)
#   --jobs LIST   from g2h-1,g2h-4,h2g-1,h2g-4,rtt (default all)
#   --runtime S   seconds per iperf3 job (default 6)
#
# Per job and VMM: Mbit/s (iperf3's receiver side), and the CPU time per
# byte moved (per round trip for rtt): the delta of utime+stime over the
# job of the VMM process (/proc/PID/stat, all threads) plus, for the vhost
# rows, the vhost-net worker kernel threads ("vhost-<VMM pid>", found by
# their comm in /proc; their own utime+stime). "cpu" counts everything,
# including the vCPU threads' time in guest mode (the guest's own TCP
# stack); "host" subtracts guest_time (field 43), leaving the VMM-side
# cost (exits, device emulation, the I/O thread, vhost, kernel work).
# "busiest" is the single VMM thread (or vhost worker) with the most host
# CPU time (utime+stime-guest_time) in percent of the job's wall time:
# near 100 means one thread (the queue's worker) is the limit.
# Ratios: wisp/qemu (own device vs QEMU's vhost=off) and
# wisp-vhost/qemu-vhost. Figures come from an emulated L1 (QEMU TCG):
# compare ratios, not absolute values against bare metal.
set -uo pipefail
export RIG_PROG=net-rig
. "$(dirname "${BASH_SOURCE[0]}")/../tests/rig/lib.sh"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

WISP_ARG='' VMMS=wisp,wisp-vhost,qemu,qemu-vhost RUNTIME=6 CPUS=2 MEM=256 KEEP=0
JOBS=g2h-1,g2h-4,h2g-1,h2g-4,rtt
while [ $# -gt 0 ]; do
    case "$1" in
        --wisp) WISP_ARG=${2:?}; shift 2 ;;
        --vmms) VMMS=${2:?}; shift 2 ;;
        --jobs) JOBS=${2:?}; shift 2 ;;
        --runtime) RUNTIME=${2:?}; shift 2 ;;
        --cpus) CPUS=${2:?}; shift 2 ;;
        --memory) MEM=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --verbose|-v) export RIG_VERBOSE=1; shift ;;
        -h|--help) sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) rig_die "unknown argument: $1 (see --help)" ;;
    esac
done
for v in RUNTIME CPUS MEM; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || rig_die "--${v,,} must be a positive number"
done
for v in ${VMMS//,/ }; do
    case "$v" in wisp|wisp-vhost|qemu|qemu-vhost) ;;
        *) rig_die "unknown VMM '$v' (wisp, wisp-vhost, qemu, qemu-vhost)" ;; esac
done
for j in ${JOBS//,/ }; do
    case "$j" in g2h-1|g2h-4|h2g-1|h2g-4|rtt) ;; *) rig_die "unknown job '$j'" ;; esac
done

rig_setup
IPERF3=$(command -v iperf3) || rig_die "iperf3 missing (tests/rig/setup.sh installs it)"
if [[ ",$VMMS," == *,wisp* ]]; then
    WISP=$(rig_find_wisp "$WISP_ARG") || exit 2
    rig_log "wisp binary: $WISP"
fi

WORK=${RIG_WORK:-$(mktemp -d /tmp/wisp-net.XXXXXX)}
mkdir -p "$WORK"
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$WORK/l1" "$WORK/l1.cpio" "$WORK/l2"; }
trap cleanup EXIT

# ---- L2 initramfs: busybox, iperf3 with its libraries
L2=$WORK/l2
rm -rf "$L2"
rig_busybox_root "$L2"
install -m 755 "$BENCH_DIR/net-rig-guest-init.sh" "$L2/init"
rig_copy_bin "$L2" "$IPERF3" /usr/bin/iperf3
rig_pack "$L2" "$WORK/initrd.gz" gzip
rig_log "L2 kernel: $L2_BZIMAGE; initramfs with iperf3: $(du -k "$WORK/initrd.gz" | cut -f1) kB"

# ---- L1 initramfs: iperf3, the tap and vhost-net modules, the VMMs
L1=$WORK/l1
rm -rf "$L1"
rig_l1_root "$L1"
install -m 755 "$BENCH_DIR/net-rig-l1-init.sh" "$L1/init"
rig_copy_bin "$L1" "$IPERF3" /usr/bin/iperf3
cp "$L1_MODDIR/kernel/drivers/net/tun.ko" "$L1/lib/tun.ko"
for m in net/tap vhost/vhost_iotlb vhost/vhost vhost/vhost_net; do
    cp "$L1_MODDIR/kernel/drivers/$m.ko" "$L1/lib/$(basename $m).ko"
done
[[ ",$VMMS," == *,qemu* ]] && rig_l1_add_qemu "$L1"
[ -n "${WISP:-}" ] && rig_copy_bin "$L1" "$WISP" /bin/wisp
mkdir -p "$L1/l2"
cp "$L2_BZIMAGE" "$L1/l2/bzImage"
cp "$WORK/initrd.gz" "$L1/l2/initrd.gz"
NJOBS=$(echo "${JOBS//,/ }" | wc -w)
NVMM=$(echo "${VMMS//,/ }" | wc -w)
PINGS=$((RUNTIME * 100))
TMO=$((120 + NJOBS * (RUNTIME * 3 + 30)))
cat > "$L1/rig/net.conf" <<CONF
VMMS='${VMMS//,/ }'
CPUS=$CPUS
MEM=$MEM
RUNTIME=$RUNTIME
PINGS=$PINGS
JOBS='$JOBS'
TMO=$TMO
CONF
rig_pack "$L1" "$WORK/l1.cpio"

TOTAL_TMO=$((180 + NVMM * TMO))
CONSOLE=$WORK/l1-console.log
rig_log "$NJOBS jobs x ${RUNTIME}s, VMMs: ${VMMS//,/ }; $CPUS vCPUs, $MEM MiB; per-VMM timeout ${TMO}s"
t0=$(date +%s.%N)
rig_boot_l1 "$WORK/l1.cpio" "$CONSOLE" "$TOTAL_TMO"
L1_RC=$?
rig_log "L1 finished (QEMU status $L1_RC) after $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-6) s; console log: $CONSOLE"

R=$(tr -d '\r' < "$CONSOLE" | grep -ao 'RIG-.*')
rc=0
if ! echo "$R" | grep -q '^RIG-L1-DONE'; then
    trouble=$(rig_l1_trouble "$CONSOLE")
    rig_log "L1 did not complete the benchmark (QEMU status $L1_RC)${trouble:+: $trouble}; L1 console tail:"
    tr -d '\r' < "$CONSOLE" | grep -av "TCG doesn't support" | tail -n 40 | sed 's/^/  | /' >&2
    rc=1
fi
echo "$R" | grep -q '^RIG-L1-ERROR' && rig_die "L1: $(echo "$R" | grep '^RIG-L1-ERROR' | head -1)"
echo "$R" | awk '$1 == "RIG-N-CMD" {sub(/^RIG-N-CMD /, ""); print "command " $0}'
echo "$R" | awk '$1 == "RIG-N-GUEST" && ($3 ~ /^WISP-NET-(READY|CMDLINE|STATS|ERR|IPERF3)/) {sub(/^RIG-N-GUEST /, ""); print "guest " $0}'
echo "$R" | awk '$1 == "RIG-N-FAIL" || $1 == "RIG-N-TAIL" || $1 == "RIG-N-V"' | sed 's/^/  | /' >&2
echo "$R" | grep -q '^RIG-N-FAIL' && rc=1

echo "$R" | python3 -c '
import sys, json, collections
vmms = sys.argv[1].split(","); jobs = sys.argv[2].split(",")
lines = sys.stdin.read().splitlines()
hz = [l.split()[1] for l in lines if l.startswith("RIG-N-HZ ")]
HZ = float(hz[0]) if hz and hz[0].isdigit() and int(hz[0]) > 0 else None
if HZ is None:
    print("net-rig: L1 did not report its clock tick (RIG-N-HZ): CPU times not computed", file=sys.stderr)
res, rtt, ts = {}, {}, collections.defaultdict(dict)
kvm, irq = collections.defaultdict(dict), collections.defaultdict(dict)
cpu = collections.defaultdict(lambda: collections.defaultdict(dict))
for line in lines:
    f = line.split(" ")
    if f[0] == "RIG-N-RES" and len(f) > 3:
        try:
            d = json.loads(" ".join(f[3:]))
        except ValueError:
            print("net-rig: %s %s: iperf3 output is not JSON" % (f[1], f[2]), file=sys.stderr); continue
        if "error" in d:
            print("net-rig: %s %s: iperf3: %s" % (f[1], f[2], d["error"]), file=sys.stderr); continue
        try:
            e = d["end"]; rcv = e["sum_received"]
            res[(f[1], f[2])] = dict(bytes=rcv["bytes"], secs=rcv["seconds"],
                                     mbit=rcv["bits_per_second"] / 1e6,
                                     retr=e.get("sum_sent", {}).get("retransmits"))
        except (KeyError, TypeError):
            print("net-rig: %s %s: iperf3 JSON without end.sum_received" % (f[1], f[2]), file=sys.stderr)
    elif f[0] == "RIG-N-RTT" and len(f) == 9:
        rtt[(f[1], f[2])] = dict(n=int(f[3]), mean=float(f[4]), p50=float(f[5]), p99=float(f[6]))
    elif f[0] == "RIG-N-KVM" and len(f) >= 4:
        kvm[(f[1], f[2])][f[3]] = dict(x.split("=", 1) for x in f[4:] if "=" in x)
    elif f[0] == "RIG-N-GUEST" and len(f) == 6 and f[2] == "WISP-NET-IRQ" and f[5].isdigit():
        irq[(f[1], f[3])][f[4]] = int(f[5])
    elif f[0] == "RIG-N-T" and len(f) == 5:
        ts[(f[1], f[2])][f[3]] = int(f[4])
    elif f[0] == "RIG-N-CPU" and len(f) == 10:
        v, j, when, kind, ident, comm = f[1:7]
        ut, st, gt = (int(x) for x in f[7:10])
        cpu[(v, j)][when][(kind, ident, comm)] = (ut + st, gt)
rows = {}
for v in vmms:
    for j in jobs:
        r = res.get((v, j)) if j != "rtt" else rtt.get((v, j))
        if r is None:
            rows[(v, j)] = None; continue
        r = dict(r)
        c = cpu.get((v, j), {}); b, e = c.get("begin", {}), c.get("end", {})
        t = ts.get((v, j), {})
        wall = (t["end"] - t["begin"]) / 1e9 if "begin" in t and "end" in t else None
        r["cpu"] = r["host"] = r["busy"] = None
        procs = [k for k in e if k[0] in ("proc", "vhost") and k in b]
        if HZ and procs and set(k for k in b if k[0] == "proc") == set(k for k in e if k[0] == "proc"):
            d = sum(e[k][0] - b[k][0] for k in procs) / HZ
            g = sum(e[k][1] - b[k][1] for k in procs) / HZ
            r["cpu"], r["host"] = d, d - g
            r["vhost"] = sum(e[k][0] - b[k][0] for k in procs if k[0] == "vhost") / HZ
            if wall:
                busy = [((e[k][0] - b[k][0] - e[k][1] + b[k][1]) / HZ / wall * 100, k[2]) for k in e
                        if k[0] in ("thr", "vhost") and k in b]
                if busy:
                    r["busy"] = max(busy)
        r["units"] = r["bytes"] if j != "rtt" else r["n"]
        k = kvm.get((v, j), {}); kb, ke = k.get("begin", {}), k.get("end", {})
        r["kvm"] = {n: int(ke[n]) - int(kb[n]) for n in ke if n in kb}
        q = irq.get((v, j), {})
        r["girq"] = q["end"] - q["begin"] if "begin" in q and "end" in q else None
        rows[(v, j)] = r
def per(r, k):
    if not r or r.get(k) is None or not r["units"]: return None
    return r[k] / r["units"] * (1e12 if "bytes" in r else 1e6)
def fmt(x, p="%.1f"): return p % x if x is not None else "-"
print("%-6s %-11s %9s %9s %9s %8s %9s %9s %22s" % ("job", "vmm", "Mbit/s", "rtt_p50", "rtt_mean",
      "cpu_s", "cpu/unit", "host/unit", "busiest"))
print("       (cpu/unit, host/unit: CPU us per MB moved, or per round trip for rtt; rtt in ms)")
for j in jobs:
    for v in vmms:
        r = rows[(v, j)]
        if r is None:
            print("%-6s %-11s %9s" % (j, v, "(no result)")); continue
        busy = "%.0f%% %s" % r["busy"] if r["busy"] else "-"
        print("%-6s %-11s %9s %9s %9s %8s %9s %9s %22s" % (j, v,
              fmt(r.get("mbit")), fmt(r.get("p50"), "%.3f"), fmt(r.get("mean"), "%.3f"),
              fmt(r["cpu"], "%.2f"), fmt(per(r, "cpu")), fmt(per(r, "host")), busy[:22]))
print()
print("events per MB moved (per round trip for rtt): L1 KVM counters over the job (debugfs, all")
print("of L1; only this VM runs), and the guest virtio-net interrupts (/proc/interrupts)")
names = ("exits", "mmio_exits", "io_exits", "halt_exits", "irq_injections", "irq_exits")
print("%-6s %-11s %9s %9s %9s %9s %9s %9s %9s" % ("job", "vmm", "exits", "mmio", "io", "halt", "irq_inj", "irq_exit", "guest_irq"))
for j in jobs:
    for v in vmms:
        r = rows[(v, j)]
        if r is None or not r["units"]: continue
        sc = 1e6 / r["units"] if j != "rtt" else 1.0 / r["units"]
        def ev(x): return "%.1f" % (x * sc) if x is not None else "-"
        print("%-6s %-11s %9s %9s %9s %9s %9s %9s %9s" % ((j, v) + tuple(ev(r["kvm"].get(n)) for n in names) + (ev(r["girq"]),)))
pairs = [(a, b) for a, b in (("wisp", "qemu"), ("wisp-vhost", "qemu-vhost")) if a in vmms and b in vmms]
if pairs:
    print()
    print("ratios wisp/qemu (Mbit/s: >1 = wisp faster; rtt and CPU per unit: <1 = wisp better)")
    print("%-6s %-22s %9s %9s %9s %10s %10s" % ("job", "pair", "Mbit/s", "rtt_p50", "rtt_mean", "cpu/unit", "host/unit"))
    def rat(x, y): return "%.3f" % (x / y) if x is not None and y else "-"
    for j in jobs:
        for a, b in pairs:
            x, y = rows[(a, j)], rows[(b, j)]
            if not x or not y: continue
            print("%-6s %-22s %9s %9s %9s %10s %10s" % (j, a + "/" + b,
                  rat(x.get("mbit"), y.get("mbit")), rat(x.get("p50"), y.get("p50")),
                  rat(x.get("mean"), y.get("mean")), rat(per(x, "cpu"), per(y, "cpu")),
                  rat(per(x, "host"), per(y, "host"))))
missing = [k for k, r in rows.items() if r is None]
sys.exit(1 if missing or HZ is None else 0)
' "$VMMS" "$JOBS" || rc=1
[ "$KEEP" = 1 ] && rig_log "work directory kept: $WORK"
exit $rc
