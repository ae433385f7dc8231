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
#                         [--runtime S] [--rounds N] [--cpus N] [--memory MiB]
#                         [--keep] [--verbose]
#   --vmms LIST   from wisp,wisp-vhost,qemu,qemu-vhost (default all four)
#   --jobs LIST   from g2h-1,g2h-4,h2g-1,h2g-4,rtt (default all)
#   --runtime S   seconds per iperf3 job (default 5)
#   --rounds N    boots of each VMM, interleaved (wisp, wisp-vhost, qemu,
#                 qemu-vhost, wisp, ...); figures are the medians over the
#                 rounds, with the range of Mbit/s (default 2)
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
# Per MB also: L1's KVM counters over the job (debugfs, exits, userspace
# MMIO exits, halts, injected interrupts; one VM runs at a time) and the
# guest's virtio-net interrupts (its /proc/interrupts line, asked for on
# the console before and after the job).
# Ratios: wisp/qemu (own device vs QEMU's vhost=off) and
# wisp-vhost/qemu-vhost. Figures come from an emulated L1 (QEMU TCG):
# compare ratios, not absolute values against bare metal.
set -uo pipefail
export RIG_PROG=net-rig
# shellcheck source=bench/lib-rig.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-rig.sh"

WISP_ARG='' VMMS=wisp,wisp-vhost,qemu,qemu-vhost RUNTIME=5 ROUNDS=2 CPUS=2 MEM=256 KEEP=0
JOBS=g2h-1,g2h-4,h2g-1,h2g-4,rtt
bench_args "--wisp=WISP_ARG --vmms=VMMS --jobs=JOBS --runtime=RUNTIME --rounds=ROUNDS
    --cpus=CPUS --memory=MEM --keep --verbose" "$@"
for v in RUNTIME ROUNDS CPUS MEM; do
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
bench_find_wisp
bench_work net l1 l1.cpio l2

# ---- L2 initramfs: busybox, iperf3 with its libraries
bench_l2 net-rig
rig_copy_bin "$L2" "$IPERF3" /usr/bin/iperf3
rig_pack "$L2" "$WORK/initrd.gz" gzip
rig_log "L2 kernel: $L2_BZIMAGE; initramfs with iperf3: $(du -k "$WORK/initrd.gz" | cut -f1) kB"

# ---- L1 initramfs: iperf3, the tap and vhost-net modules, the VMMs
bench_l1 net-rig
rig_copy_bin "$L1" "$IPERF3" /usr/bin/iperf3
cp "$L1_MODDIR/kernel/drivers/net/tun.ko" "$L1/lib/tun.ko"
for m in net/tap vhost/vhost_iotlb vhost/vhost vhost/vhost_net; do
    cp "$L1_MODDIR/kernel/drivers/$m.ko" "$L1/lib/$(basename $m).ko"
done
[[ ",$VMMS," == *,qemu* ]] && rig_l1_add_qemu "$L1"
[ -n "${WISP:-}" ] && rig_copy_bin "$L1" "$WISP" /bin/wisp
bench_l1_guest "$L2_BZIMAGE" "$WORK/initrd.gz"
NJOBS=$(echo "${JOBS//,/ }" | wc -w)
NVMM=$(echo "${VMMS//,/ }" | wc -w)
# shellcheck disable=SC2034 # bench_conf reads it by name
PINGS=$((RUNTIME * 100))
TMO=$((120 + NJOBS * (RUNTIME * 3 + 30)))
bench_conf net.conf "VMMS=${VMMS//,/ }" CPUS MEM RUNTIME ROUNDS PINGS JOBS TMO

bench_boot $((180 + NVMM * ROUNDS * TMO)) \
    "$NJOBS jobs x ${RUNTIME}s, VMMs: ${VMMS//,/ }, $ROUNDS round(s); $CPUS vCPUs, $MEM MiB; per-VMM timeout ${TMO}s" 120
bench_l1_done
echo "$R" | awk '$1 == "RIG-N-CMD" {sub(/^RIG-N-CMD /, ""); print "command " $0}'
echo "$R" | awk '$1 == "RIG-N-GUEST" && ($3 ~ /^WISP-NET-(READY|CMDLINE|STATS|ERR|IPERF3)/) {sub(/^RIG-N-GUEST /, ""); print "guest " $0}'
echo "$R" | awk '$1 == "RIG-N-FAIL" || $1 == "RIG-N-TAIL" || $1 == "RIG-N-V"' | sed 's/^/  | /' >&2
grep -q '^RIG-N-FAIL' <<< "$R" && rc=1

echo "$R" | python3 -c '
import sys, json, collections, statistics
vmms = sys.argv[1].split(","); jobs = sys.argv[2].split(","); rounds = int(sys.argv[3])
lines = sys.stdin.read().splitlines()
hz = [l.split()[1] for l in lines if l.startswith("RIG-N-HZ ")]
HZ = float(hz[0]) if hz and hz[0].isdigit() and int(hz[0]) > 0 else None
if HZ is None:
    print("net-rig: L1 did not report its clock tick (RIG-N-HZ): CPU times not computed", file=sys.stderr)
# keys: (tag, job), tag = vmm@round
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
            res[(f[1], f[2])] = dict(bytes=rcv["bytes"], mbit=rcv["bits_per_second"] / 1e6)
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
KVMN = ("exits", "mmio_exits", "halt_exits", "irq_injections", "irq_exits")
# the figures of one round, normalised: per MB moved (per round trip for rtt)
def one(tag, j):
    r = res.get((tag, j)) if j != "rtt" else rtt.get((tag, j))
    if r is None:
        return None
    out = {k: r[k] for k in ("mbit", "mean", "p50", "p99") if k in r}
    units = r["bytes"] / 1e6 if j != "rtt" else r["n"]
    if not units:
        return None
    c = cpu.get((tag, j), {}); b, e = c.get("begin", {}), c.get("end", {})
    t = ts.get((tag, j), {})
    wall = (t["end"] - t["begin"]) / 1e9 if "begin" in t and "end" in t else None
    procs = [k for k in e if k[0] in ("proc", "vhost") and k in b]
    if HZ and procs and set(k for k in b if k[0] == "proc") == set(k for k in e if k[0] == "proc"):
        d = sum(e[k][0] - b[k][0] for k in procs) / HZ
        g = sum(e[k][1] - b[k][1] for k in procs) / HZ
        out["cpu"], out["host"] = d / units * 1e6, (d - g) / units * 1e6
        out["vhost"] = sum(e[k][0] - b[k][0] for k in procs if k[0] == "vhost") / HZ / units * 1e6
        if wall:
            busy = [((e[k][0] - b[k][0] - e[k][1] + b[k][1]) / HZ / wall * 100, k[2]) for k in e
                    if k[0] in ("thr", "vhost") and k in b]
            if busy:
                out["busy"], out["busy_name"] = max(busy)
    k = kvm.get((tag, j), {}); kb, ke = k.get("begin", {}), k.get("end", {})
    for n in KVMN:
        if n in kb and n in ke:
            out[n] = (int(ke[n]) - int(kb[n])) / units
    q = irq.get((tag, j), {})
    if "begin" in q and "end" in q:
        out["girq"] = (q["end"] - q["begin"]) / units
    return out
per_round = {(v, j): [x for x in (one("%s@%d" % (v, i), j) for i in range(1, rounds + 1)) if x]
             for v in vmms for j in jobs}
def med(v, j, k):
    xs = [x[k] for x in per_round[(v, j)] if x.get(k) is not None]
    return statistics.median(xs) if xs else None
def span(v, j, k, p="%.0f"):
    xs = [x[k] for x in per_round[(v, j)] if x.get(k) is not None]
    return (p + "-" + p) % (min(xs), max(xs)) if len(xs) > 1 else "-"
def fmt(x, p="%.1f"): return p % x if x is not None else "-"
print("medians over %d round(s); cpu, host: CPU us per MB moved (per round trip for rtt);" % rounds)
print("vhost: the vhost workers part of cpu; rtt in ms; busiest: the thread with the most host CPU")
print("%-6s %-11s %8s %11s %8s %8s %8s %9s %9s %8s %-22s" % ("job", "vmm", "Mbit/s", "range", "rtt_p50",
      "rtt_mean", "rtt_p99", "cpu", "host", "vhost", "busiest"))
for j in jobs:
    for v in vmms:
        rs = per_round[(v, j)]
        if not rs:
            print("%-6s %-11s %8s" % (j, v, "(no result)")); continue
        b = max((x for x in rs if x.get("busy") is not None), key=lambda x: x["busy"], default=None)
        print("%-6s %-11s %8s %11s %8s %8s %8s %9s %9s %8s %-22s" % (j, v,
              fmt(med(v, j, "mbit")), span(v, j, "mbit") if j != "rtt" else span(v, j, "p50", "%.2f"),
              fmt(med(v, j, "p50"), "%.3f"), fmt(med(v, j, "mean"), "%.3f"), fmt(med(v, j, "p99"), "%.3f"),
              fmt(med(v, j, "cpu"), "%.0f"), fmt(med(v, j, "host"), "%.0f"),
              fmt(med(v, j, "vhost"), "%.0f") if v.endswith("-vhost") else "-",
              ("%.0f%% %s" % (b["busy"], b["busy_name"]))[:22] if b else "-"))
print()
print("events per MB moved (per round trip for rtt), medians: L1 KVM counters over the job")
print("(debugfs; only this VM runs in L1), and the guest virtio-net interrupts (/proc/interrupts)")
print("%-6s %-11s %9s %9s %9s %9s %9s %9s" % ("job", "vmm", "exits", "mmio", "halt", "irq_inj", "irq_exit", "guest_irq"))
for j in jobs:
    for v in vmms:
        if not per_round[(v, j)]: continue
        print("%-6s %-11s %9s %9s %9s %9s %9s %9s" % ((j, v) + tuple(fmt(med(v, j, n)) for n in KVMN + ("girq",))))
pairs = [(a, b) for a, b in (("wisp", "qemu"), ("wisp-vhost", "qemu-vhost")) if a in vmms and b in vmms]
if pairs:
    print()
    print("ratios of the medians (Mbit/s: >1 = wisp faster; rtt and CPU per unit: <1 = wisp better)")
    print("%-6s %-22s %9s %9s %9s %10s %10s" % ("job", "pair", "Mbit/s", "rtt_p50", "rtt_mean", "cpu/unit", "host/unit"))
    def rat(x, y): return "%.3f" % (x / y) if x is not None and y else "-"
    for j in jobs:
        for a, b in pairs:
            if not per_round[(a, j)] or not per_round[(b, j)]: continue
            print("%-6s %-22s %9s %9s %9s %10s %10s" % (j, a + "/" + b,
                  rat(med(a, j, "mbit"), med(b, j, "mbit")), rat(med(a, j, "p50"), med(b, j, "p50")),
                  rat(med(a, j, "mean"), med(b, j, "mean")), rat(med(a, j, "cpu"), med(b, j, "cpu")),
                  rat(med(a, j, "host"), med(b, j, "host"))))
missing = [k for k, r in per_round.items() if len(r) < rounds]
if missing:
    print("net-rig: missing results: " + ", ".join("%s %s (%d of %d rounds)" % (v, j, len(per_round[(v, j)]), rounds)
          for v, j in missing), file=sys.stderr)
sys.exit(1 if missing or HZ is None else 0)
' "$VMMS" "$JOBS" "$ROUNDS" || rc=1
[ "$KEEP" = 1 ] && rig_log "work directory kept: $WORK"
exit $rc
