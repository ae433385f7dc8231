#!/bin/bash
# bench/fs-rig.sh - virtio-fs benchmark inside the nested rig (docs/rig.md):
# file create, stat, sequential read and write in the L2 guest on a
# virtio-fs mount served by virtiofsd (QEMU 7.2's C daemon from Debian's
# qemu-system-common, -o cache=none, sandbox=chroot) in L1, once per VMM
# and round, all in ONE L1 boot; a fresh daemon on a fresh directory
# (L1's tmpfs) for every boot of the guest:
#   wisp   wisp run --fs socket=S,tag=share   (wisp's vhost-user front-end)
#   qemu   qemu-system-x86_64 -M microvm,memory-backend=mem (memfd,
#          share=on) -device vhost-user-fs-device,chardev=fs0,tag=share
# Same kernel (the rig's L2 Linux 6.1, virtiofs built in), initramfs,
# command line, 2 vCPUs and 256 MiB for both (--cpus, --memory).
# Jobs (bench/fs-ops.c in the guest, timed on its CLOCK_MONOTONIC; before
# each, the guest drops its page cache, dentries and inodes):
#   create  --files N files of --size bytes (open O_CREAT|O_EXCL, write,
#           close), then sync: files/s
#   stat    readdir of that directory and lstat of every file: files/s
#   read    a --mib MiB file L1 wrote into the share, 1 MiB read()s: MiB/s
#   write   --mib MiB to a new file, 1 MiB write()s, then fsync: MiB/s
# With cache=none virtiofsd has the guest open every file direct_io and
# keep no attributes: every read, write and stat is a request to the
# daemon (the guest's page cache holds no file data).
#
# usage: bench/fs-rig.sh [--wisp PATH] [--vmms LIST] [--jobs LIST]
#                        [--runs N] [--files N] [--size BYTES] [--mib N]
#                        [--cpus N] [--memory MiB] [--keep] [--verbose]
#   --vmms LIST   from wisp,qemu (default both)
#   --jobs LIST   from create,stat,read,write (default all, in that order;
#                 stat lists what create made)
#   --runs N      boots of each VMM, interleaved (wisp, qemu, wisp, ...),
#                 so both see the same L1 conditions; figures are the
#                 medians over the runs, with their range (default 2)
#   --files N     files for create (default 2000), --size BYTES each
#                 (default 4096); --mib N for read and write (default 64)
#
# Per job and VMM also the CPU time per operation (per file for create
# and stat, per MiB for read and write): the delta of utime+stime
# (/proc/PID/stat, all threads) between the job's start and end, of the
# VMM ("vmm": all of it, including the vCPU threads' time in guest mode,
# i.e. the guest's own work; "vmm-host": without guest_time, field 43,
# leaving exits, device emulation and kernel work) and of virtiofsd.
# Ratios are wisp/qemu: for throughput >1 = wisp faster; for CPU per
# operation <1 = wisp cheaper. Figures come from an emulated L1 (QEMU
# TCG): compare ratios, not absolute values against bare metal. A job
# that fails loses its own figures only.
set -uo pipefail
export RIG_PROG=fs-rig
# shellcheck source=bench/lib-rig.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-rig.sh"

WISP_ARG='' VMMS=wisp,qemu JOBS=create,stat,read,write RUNS=2 FILES=2000 SIZE=4096 MIB=64
CPUS=2 MEM=256 KEEP=0
bench_args "--wisp=WISP_ARG --vmms=VMMS --jobs=JOBS --runs=RUNS --files=FILES --size=SIZE
    --mib=MIB --cpus=CPUS --memory=MEM --keep --verbose" "$@"
for v in RUNS FILES SIZE MIB CPUS MEM; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || rig_die "--${v,,} must be a positive number"
done
for v in ${VMMS//,/ }; do
    case "$v" in wisp|qemu) ;; *) rig_die "unknown VMM '$v' (wisp, qemu)" ;; esac
done
for j in ${JOBS//,/ }; do
    case "$j" in create|stat|read|write) ;; *) rig_die "unknown job '$j' (create, stat, read, write)" ;; esac
done
VIRTIOFSD=/usr/lib/qemu/virtiofsd
[ -x "$VIRTIOFSD" ] || rig_die "$VIRTIOFSD missing (qemu-system-common; tests/rig/setup.sh installs it)"

rig_setup
bench_find_wisp
bench_work fs l1 l1.cpio l2

# ---- L2 initramfs: busybox and fs-ops
bench_l2 fs-rig
gcc -O2 -static -Wall -Wextra -Werror -o "$L2/bin/fs-ops" "$BENCH_DIR/fs-ops.c" ||
    rig_die "cannot build bench/fs-ops.c"
rig_pack "$L2" "$WORK/initrd.gz" gzip
rig_log "L2 kernel: $L2_BZIMAGE; initramfs with fs-ops: $(du -k "$WORK/initrd.gz" | cut -f1) kB"

# ---- L1 initramfs: virtiofsd and the VMMs
bench_l1 fs-rig
rig_copy_bin "$L1" "$VIRTIOFSD" /bin/virtiofsd
[[ ",$VMMS," == *,qemu,* ]] && rig_l1_add_qemu "$L1"
[ -n "${WISP:-}" ] && rig_copy_bin "$L1" "$WISP" /bin/wisp
bench_l1_guest "$L2_BZIMAGE" "$WORK/initrd.gz"
NJOBS=$(echo "${JOBS//,/ }" | wc -w)
NVMM=$(echo "${VMMS//,/ }" | wc -w)
TMO=$((120 + NJOBS * 120))
bench_conf fs.conf "VMMS=${VMMS//,/ }" CPUS MEM FILES SIZE MIB JOBS TMO \
    ROUNDS="$RUNS" BS=1048576

bench_boot $((180 + NVMM * RUNS * TMO)) \
    "jobs ${JOBS//,/ } ($FILES files x $SIZE B, $MIB MiB), VMMs: ${VMMS//,/ }, $RUNS run(s); $CPUS vCPUs, $MEM MiB; per-boot timeout ${TMO}s" 120
bench_l1_done
echo "$R" | awk '$1 == "RIG-S-CMD" {sub(/^RIG-S-CMD /, ""); print "command " $0}'
echo "$R" | awk '$1 == "RIG-S-SHARE" || ($1 == "RIG-S" && $3 == "WISP-FS-MOUNT") {sub(/^RIG-S(-SHARE)? /, ""); print "share " $0}' | sort -u -k3
echo "$R" | awk '$1 == "RIG-S-FAIL" || $1 == "RIG-S-T" || ($1 == "RIG-S" && ($3 == "WISP-FS-ERR" || $3 == "WISP-FS-END"))' | sed 's/^/  | /' >&2
grep -q '^RIG-S-FAIL' <<< "$R" && rc=1

echo "$R" | python3 -c '
import sys, collections, statistics
vmms = sys.argv[1].split(","); jobs = sys.argv[2].split(","); runs = int(sys.argv[3])
lines = sys.stdin.read().splitlines()
hz = [l.split()[1] for l in lines if l.startswith("RIG-S-HZ ")]
HZ = float(hz[0]) if hz and hz[0].isdigit() and int(hz[0]) > 0 else None
if HZ is None:
    print("fs-rig: L1 did not report its clock tick (RIG-S-HZ): CPU times not computed", file=sys.stderr)
# keys (tag, job), tag = vmm@run
res, cpu = {}, collections.defaultdict(lambda: collections.defaultdict(dict))
for line in lines:
    f = line.split()
    if len(f) == 7 and f[0] == "RIG-S" and f[2] == "WISP-FS-RES" and all(x.isdigit() for x in f[4:7]):
        res[(f[1], f[3])] = tuple(int(x) for x in f[4:7])
    elif len(f) == 9 and f[0] == "RIG-S-CPU" and all(x.isdigit() for x in f[6:9]):
        tag, job, when, pid, comm = f[1:6]
        ut, st, gt = (int(x) for x in f[6:9])
        cpu[(tag, job)][when][(pid, comm)] = (ut + st, gt)
# one run of one job: the rate and the CPU us per unit (file or MiB)
def one(tag, j):
    r = res.get((tag, j))
    if r is None or r[0] <= 0:
        return None
    ns, ops, nbytes = r
    units = nbytes / 1048576 if j in ("read", "write") else ops
    if not units:
        return None
    out = dict(rate=units / (ns / 1e9))
    c = cpu.get((tag, j), {}); b, e = c.get("begin", {}), c.get("end", {})
    if HZ and b and set(b) == set(e):
        def d(pred, k): return sum(e[p][k] - b[p][k] for p in e if pred(p[1])) / HZ / units * 1e6
        vfs = lambda comm: comm == "(virtiofsd)"
        vmm = lambda comm: comm != "(virtiofsd)"
        out["vmm"] = d(vmm, 0)
        out["host"] = out["vmm"] - d(vmm, 1)
        out["vfsd"] = d(vfs, 0)
        out["sum"] = out["host"] + out["vfsd"]
    return out
per = {(v, j): [x for x in (one("%s@%d" % (v, i), j) for i in range(1, runs + 1)) if x]
       for v in vmms for j in jobs}
def med(v, j, k):
    xs = [x[k] for x in per[(v, j)] if k in x]
    return statistics.median(xs) if xs else None
def span(v, j, k):
    xs = [x[k] for x in per[(v, j)] if k in x]
    return "%.1f-%.1f" % (min(xs), max(xs)) if len(xs) > 1 else "-"
def fmt(x, p="%.0f"): return p % x if x is not None else "-"
unit = dict(create="files/s", stat="files/s", read="MiB/s", write="MiB/s")
print("medians over %d run(s); CPU in us per file (create, stat) or per MiB (read, write):" % runs)
print("vmm = the VMM process incl. guest mode, vmm-host = without guest_time, vfsd = virtiofsd,")
print("host+vfsd = vmm-host + vfsd (the host-side cost of the request path)")
hdr = "%-7s %-5s %10s %-8s %15s %9s %9s %9s %10s"
print(hdr % ("job", "vmm", "rate", "unit", "range", "vmm", "vmm-host", "vfsd", "host+vfsd"))
for j in jobs:
    for v in vmms:
        if not per[(v, j)]:
            print("%-7s %-5s %10s" % (j, v, "(no result)")); continue
        print(hdr % (j, v, fmt(med(v, j, "rate"), "%.1f"), unit[j], span(v, j, "rate"),
              fmt(med(v, j, "vmm")), fmt(med(v, j, "host")), fmt(med(v, j, "vfsd")), fmt(med(v, j, "sum"))))
if "wisp" in vmms and "qemu" in vmms:
    def rat(x, y): return "%.3f" % (x / y) if x is not None and y else "-"
    print()
    print("wisp/qemu of the medians: rate (higher is better: >1 = wisp faster);")
    print("CPU per unit (lower is better: <1 = wisp cheaper)")
    hdr = "%-7s %9s %9s %9s %9s %10s"
    print(hdr % ("job", "rate", "vmm", "vmm-host", "vfsd", "host+vfsd"))
    for j in jobs:
        if not per[("wisp", j)] or not per[("qemu", j)]: continue
        print(hdr % ((j,) + tuple(rat(med("wisp", j, k), med("qemu", j, k)) for k in ("rate", "vmm", "host", "vfsd", "sum"))))
missing = [k for k, r in per.items() if len(r) < runs]
if missing:
    print("fs-rig: missing results: " + ", ".join("%s %s (%d of %d runs)" % (v, j, len(per[(v, j)]), runs)
          for v, j in missing), file=sys.stderr)
sys.exit(1 if missing or HZ is None else 0)
' "$VMMS" "$JOBS" "$RUNS" || rc=1
[ "$KEEP" = 1 ] && rig_log "work directory kept: $WORK"
exit $rc
