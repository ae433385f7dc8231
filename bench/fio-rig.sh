#!/bin/bash
# bench/fio-rig.sh - block I/O benchmark inside the nested rig (docs/rig.md):
# fio in the L2 guest on /dev/vda (virtio-blk, direct=1), the disk backed by
# the same raw image once per VMM, all in ONE L1 boot. The image lives on
# ext4 on a loop device in L1 (its backing file in L1's tmpfs), so O_DIRECT
# works and every VMM bypasses L1's page cache for the image:
#   wisp      wisp run --disk path=IMG,direct=on
#   qemu      qemu-system-x86_64 -M microvm -accel kvm ... -drive
#             id=d0,file=IMG,format=raw,if=none,cache=none,aio=io_uring
#             -device virtio-blk-device,drive=d0
#   wisp-oop  wisp run --spawn-server "/bin/wisp-blk --disk path=IMG,direct=on"
#   wisp-iommu-strict, wisp-iommu-lazy
#             wisp with --iommu (the disk behind the virtio-iommu), the
#             guest booted with iommu.strict=1 or iommu.strict=0
#   wisp-iommu-lazy-vcpu
#             wisp-iommu-lazy with --iommu-requests vcpu (the IOMMU's
#             requests in the vCPU that sends them instead of on its I/O
#             thread)
#   wisp-oop-iommu
#             wisp-oop with --iommu, iommu.strict=0 (wisp-blk translates)
#   wisp-vhu  wisp run --vhost-user-blk socket=S, S served by
#             qemu-storage-daemon --export type=vhost-user-blk (IMG with
#             cache.direct=on, aio=io_uring)
#   qemu-vhu  qemu-system-x86_64 -M microvm,memory-backend=mem (memfd,
#             share=on) -device vhost-user-blk on the same daemon
# Same kernel, memory and vCPUs for all.
#
# usage: bench/fio-rig.sh [--wisp PATH] [--wisp-blk PATH] [--vmms LIST]
#                         [--runtime S] [--jobs LIST] [--cpus N] [--memory MiB]
#                         [--disk-mb N] [--guest-kernel rig|6.12] [--keep]
#                         [--verbose]
#   --vmms LIST   comma-separated, from wisp,qemu,wisp-oop,wisp-iommu-strict,
#                 wisp-iommu-lazy,wisp-iommu-lazy-vcpu,wisp-oop-iommu,wisp-vhu,
#                 qemu-vhu (default wisp,qemu,wisp-oop)
#   --jobs LIST   from seq-read,seq-write,rand-read,rand-write,rand-read-qd8,
#                 rand-write-qd8,rand-read-qd32,rand-write-qd32 (default all;
#                 1 MiB psync for seq-*, 4 KiB psync qd1 for rand-read and
#                 rand-write, 4 KiB libaio at depth 8 or 32 for *-qd8/*-qd32)
#   --runtime S   seconds per fio job (default 10)
#   --guest-kernel rig: the rig's L2 kernel (Linux 6.1, virtio drivers built
#                 in; default); 6.12: Debian's linux-image-cloud-amd64 from
#                 bookworm-backports with its virtio_mmio, virtio_iommu and
#                 virtio_blk modules (tests/rig/setup.sh caches both), whose
#                 virtio-iommu has lazy mode (a DMA-FQ domain)
#
# The L2 guest reports its IOMMU groups' domain types; with --guest-kernel
# 6.12 wisp-iommu-strict must have DMA domains, wisp-iommu-lazy(-thr) and
# wisp-oop-iommu DMA-FQ ones, and the others none, or the run fails.
# Per job and VMM: MB/s and IOPS (fio's terse output), and the VMM's CPU
# time per request: the delta of utime+stime (/proc/PID/stat, all threads;
# for wisp-oop wisp + wisp-blk, for *-vhu the VMM + qemu-storage-daemon) between the job's start and end, divided by
# the requests fio completed. Taken twice: "cpu" counts all CPU time of the
# VMM process, including the vCPU threads' time in guest mode (i.e. the
# guest's own work); "host" subtracts guest_time (field 43), leaving the
# VMM-side cost (exits, device emulation, I/O threads, kernel work).
# "req/irq": requests fio completed per interrupt of vda's virtio device
# (the guest's /proc/interrupts around the job): how the VMM's completion
# path batches interrupts.
# Ratios are wisp/qemu, wisp-oop/wisp, and each IOMMU variant against the
# same setup without the IOMMU (wisp-iommu-*/wisp, wisp-oop-iommu/wisp-oop).
# For the --iommu VMMs, wisp's state dump (SIGUSR1) before and after each
# job gives the virtio-iommu requests and its I/O thread's wake-ups per I/O;
# for wisp-oop*, the IOREQ round trips per I/O and the InterruptStatus
# accesses served from the shared page (IOREQ_F_SHARED_ISR).
# Figures come from an emulated L1
# (QEMU TCG): compare ratios, not absolute values against bare metal.
#
# fio: Debian's binary with its small libraries; its heavy optional ones
# (ceph, gluster, rdma, pmem, nbd: ~80 MB) are replaced by stand-ins built by
# bench/fio-stubs.py (only fio's unused ioengines call them).
set -uo pipefail
export RIG_PROG=fio-rig
# shellcheck source=bench/lib-rig.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-rig.sh"

WISP_ARG='' WISP_BLK_ARG='' VMMS=wisp,qemu,wisp-oop RUNTIME=10 CPUS=2 MEM=256 DISK_MB=256 KEEP=0
GUEST_KERNEL=rig
JOBS=seq-read,seq-write,rand-read,rand-write,rand-read-qd8,rand-write-qd8,rand-read-qd32,rand-write-qd32
bench_args "--wisp=WISP_ARG --wisp-blk=WISP_BLK_ARG --vmms=VMMS --jobs=JOBS --runtime=RUNTIME
    --cpus=CPUS --memory=MEM --disk-mb=DISK_MB --guest-kernel=GUEST_KERNEL --keep --verbose" "$@"
for v in RUNTIME CPUS MEM DISK_MB; do
    [[ ${!v} =~ ^[0-9]+$ ]] || rig_die "--${v,,} must be a number"
done
case "$GUEST_KERNEL" in rig|6.12) ;; *) rig_die "--guest-kernel: rig or 6.12, not '$GUEST_KERNEL'" ;; esac
for v in ${VMMS//,/ }; do
    case "$v" in wisp|qemu|wisp-oop|wisp-iommu-strict|wisp-iommu-lazy|wisp-iommu-lazy-vcpu|wisp-oop-iommu|wisp-vhu|qemu-vhu) ;;
        *) rig_die "unknown VMM '$v' (wisp, qemu, wisp-oop, wisp-iommu-strict, wisp-iommu-lazy, wisp-iommu-lazy-vcpu, wisp-oop-iommu, wisp-vhu, qemu-vhu)" ;; esac
done
for j in ${JOBS//,/ }; do
    case "$j" in seq-read|seq-write|rand-read|rand-write|rand-read-qd8|rand-write-qd8|rand-read-qd32|rand-write-qd32) ;;
        *) rig_die "unknown job '$j'" ;; esac
done

rig_setup
command -v fio > /dev/null || rig_die "fio missing (tests/rig/setup.sh installs it)"
bench_find_wisp
if [[ ",$VMMS," == *,wisp-oop* ]]; then
    WISP_BLK=${WISP_BLK_ARG:-${WISP_BLK_BIN:-$(dirname "$WISP")/../servers/wisp-blk}}
    [ -x "$WISP_BLK" ] || rig_die "wisp-blk not found: $WISP_BLK (--wisp-blk PATH)"
    WISP_BLK=$(readlink -f "$WISP_BLK")
    rig_log "wisp-blk binary: $WISP_BLK"
fi

bench_work fio l1 l1.cpio l2

# ---- L2 initramfs: busybox, fio with its small libraries + stand-ins
bench_l2 fio-rig
FIO=$(command -v fio)
mkdir -p "$L2/usr/bin"
cp -L "$FIO" "$L2/usr/bin/fio"
HEAVY=(libgfapi.so.0 libnbd.so.0 libibverbs.so.1 librdmacm.so.1 librados.so.2
       librbd.so.1 libpmemblk.so.1 libpmem.so.1)
STUBS=$WORK/stubs
python3 "$BENCH_DIR/fio-stubs.py" "$FIO" "$STUBS" "${HEAVY[@]}" 2> "$WORK/stubs.log" ||
    { cat "$WORK/stubs.log" >&2; rig_die "building fio's stand-in libraries failed"; }
for lib in $(readelf -d "$FIO" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    path=$(ldd "$FIO" | awk -v l="$lib" '$1 == l {print $3}')
    [ -n "$path" ] || rig_die "ldd does not resolve $lib"
    mkdir -p "$L2$(dirname "$path")"
    if [ -e "$STUBS/$lib" ]; then cp "$STUBS/$lib" "$L2$path"
    else cp -L "$path" "$L2$path"; fi
done
ld=$(ldd "$FIO" | awk '/ld-linux/ {print $1}')
mkdir -p "$L2$(dirname "$ld")"; cp -L "$ld" "$L2$ld"
mkdir -p "$L2/lib/x86_64-linux-gnu"
cp -L "$(gcc -print-file-name=libgcc_s.so.1)" "$L2/lib/x86_64-linux-gnu/" 2>/dev/null || true
# the libraries' own dependencies (libnuma, libz, libaio need only libc)
for lib in "$L2"/lib/x86_64-linux-gnu/*.so* "$L2"/usr/lib/x86_64-linux-gnu/*.so*; do
    [ -e "$lib" ] || continue
    for d in $(readelf -d "$lib" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
        [ -e "$L2/lib/x86_64-linux-gnu/$d" ] || [ -e "$L2/usr/lib/x86_64-linux-gnu/$d" ] ||
            cp -L "/lib/x86_64-linux-gnu/$d" "$L2/lib/x86_64-linux-gnu/" 2>/dev/null ||
            rig_die "fio: library $d (needed by ${lib##*/}) missing"
    done
done
rig_pack "$L2" "$WORK/initrd.gz" gzip
if [ "$GUEST_KERNEL" = 6.12 ]; then
    [ -f "${BPO_CLOUD_KERNEL:-}" ] && [ -f "${BPO_CLOUD_MODS:-}" ] ||
        rig_die "rig.env names no 6.12 guest kernel: run tests/rig/setup.sh"
    # the kernel unpacks concatenated cpio archives: fio's, then the modules
    cat "$BPO_CLOUD_MODS" >> "$WORK/initrd.gz"
    GUEST_BZIMAGE=$BPO_CLOUD_KERNEL
else
    GUEST_BZIMAGE=$L2_BZIMAGE
fi
rig_log "L2 kernel: $GUEST_BZIMAGE; initramfs with fio: $(du -k "$WORK/initrd.gz" | cut -f1) kB"

# ---- L1 initramfs
bench_l1 fio-rig
[[ ",$VMMS," == *,qemu,* || ",$VMMS," == *,qemu-vhu,* ]] && rig_l1_add_qemu "$L1"
[[ ",$VMMS," == *-vhu,* ]] && rig_copy_bin "$L1" "$(command -v qemu-storage-daemon)" /bin/qemu-storage-daemon
# ext4 on a loop device for the image (O_DIRECT; tmpfs has none): the
# modules in load order, and the host's mke2fs
mkdir -p "$L1/lib/fio-modules"
i=0
# crc32c_generic: ext4 asks the crypto API for crc32c (no modinfo link)
for m in $(rig_module_closure "$L1_MODDIR" loop crc32c_generic ext4); do
    i=$((i + 1))
    cp "$m" "$L1/lib/fio-modules/$(printf '%02d' $i)-$(basename "$m")"
done
MKE2FS=$(command -v mke2fs || echo /sbin/mke2fs)
[ -x "$MKE2FS" ] || rig_die "mke2fs missing (e2fsprogs)"
rig_copy_bin "$L1" "$MKE2FS" /opt/e2fsprogs/mke2fs  # not busybox's (no ext4)
[ -n "${WISP:-}" ] && rig_copy_bin "$L1" "$WISP" /bin/wisp
[ -n "${WISP_BLK:-}" ] && rig_copy_bin "$L1" "$WISP_BLK" /bin/wisp-blk
bench_l1_guest "$GUEST_BZIMAGE" "$WORK/initrd.gz"
NJOBS=$(echo "${JOBS//,/ }" | wc -w)
NVMM=$(echo "${VMMS//,/ }" | wc -w)
TMO=$((90 + NJOBS * (RUNTIME + 40)))
bench_conf fio.conf "VMMS=${VMMS//,/ }" CPUS MEM DISK_MB RUNTIME JOBS TMO

bench_boot $((180 + NVMM * TMO)) \
    "$NJOBS jobs x ${RUNTIME}s, VMMs: ${VMMS//,/ }; guest kernel $GUEST_KERNEL; $CPUS vCPUs, $MEM MiB, ${DISK_MB} MiB image on ext4 (loop) in L1; per-VMM timeout ${TMO}s" 120
bench_l1_done
echo "$R" | awk '$1 == "RIG-F-CMD" {sub(/^RIG-F-CMD /, ""); print "command " $0}'
echo "$R" | awk '$1 == "RIG-F-FAIL" || $1 == "RIG-F-T" || ($1 == "RIG-F" && ($3 == "WISP-FIO-ERR" || $3 == "WISP-FIO-MODULE-FAILED"))' | sed 's/^/  | /' >&2
grep -q '^RIG-F-FAIL' <<< "$R" && rc=1

# the guest's IOMMU domains: "vmm: group type devices" per group
echo "$R" | awk '$1 == "RIG-F" && $3 == "WISP-FIO-IOMMU-GROUP" {$1 = ""; $3 = ""; print "iommu group" $0}'
if [ "$GUEST_KERNEL" = 6.12 ]; then
    for v in ${VMMS//,/ }; do
        case "$v" in wisp-iommu-strict) want=DMA ;; wisp-iommu-lazy|wisp-iommu-lazy-vcpu|wisp-oop-iommu) want=DMA-FQ ;; *) want='' ;; esac
        got=$(echo "$R" | awk -v v="$v" '$1 == "RIG-F" && $2 == v && $3 == "WISP-FIO-IOMMU-GROUP" {print $5}' | sort -u | tr '\n' ' ')
        if [ "${got% }" != "$want" ]; then
            rig_log "$v: the guest's IOMMU domain types are '${got% }', expected '${want:-none}'"
            rc=1
        fi
    done
fi

echo "$R" | python3 -c '
import sys, collections
vmms = sys.argv[1].split(","); jobs = sys.argv[2].split(",")
res = {}; irq = {}; cpu = collections.defaultdict(dict); iom = collections.defaultdict(dict); ioq = collections.defaultdict(dict)
lines = sys.stdin.read().splitlines()
for line in lines:
    f = line.split()
    if not f: continue
    if f[0] == "RIG-F" and len(f) > 4 and f[2] == "WISP-FIO-RES":
        t = " ".join(f[4:]).split(";")
        if len(t) > 50:
            res[(f[1], f[3])] = t
    elif f[0] == "RIG-F" and len(f) == 6 and f[2] == "WISP-FIO-IRQ" and f[5].isdigit():
        irq[(f[1], f[3])] = int(f[5])
    elif f[0] == "RIG-F-IOMMU" and len(f) == 6 and f[4].isdigit() and f[5].isdigit():
        iom[(f[1], f[2])][f[3]] = (int(f[4]), int(f[5]))
    elif f[0] == "RIG-F-IOREQ" and len(f) == 6 and f[4].isdigit() and f[5].isdigit():
        ioq[(f[1], f[2])][f[3]] = (int(f[4]), int(f[5]))
    elif f[0] == "RIG-F-CPU" and len(f) == 9:
        v, j, when, pid, comm = f[1:6]
        ut, st, gt = (int(x) for x in f[6:9])
        cpu[(v, j)].setdefault(when, {})[pid + comm] = (ut + st, gt)
hz = [l.split()[1] for l in lines if l.startswith("RIG-F-HZ ")]
if not hz or not hz[0].isdigit() or int(hz[0]) <= 0:
    print("fio-rig: L1 did not report its clock tick (RIG-F-HZ): CPU times not computed", file=sys.stderr)
    HZ = None
else:
    HZ = float(hz[0])
rows = {}
for v in vmms:
    for j in jobs:
        t = res.get((v, j))
        if not t:
            rows[(v, j)] = None; continue
        bs = 1024 if j.startswith("seq") else 4
        rkb, rbw, riops = float(t[5]), float(t[6]), float(t[7])
        wkb, wbw, wiops = float(t[46]), float(t[47]), float(t[48])
        kb, bw, iops = (rkb + wkb), (rbw + wbw), (riops + wiops)
        nreq = kb / bs
        c = cpu.get((v, j), {})
        b, e = c.get("begin", {}), c.get("end", {})
        ok = bool(b) and bool(e) and set(b) == set(e) and HZ is not None
        dcpu = sum(e[k][0] - b[k][0] for k in e if k in b) / HZ if ok else 0
        dguest = sum(e[k][1] - b[k][1] for k in e if k in b) / HZ if ok else 0
        rows[(v, j)] = dict(mbs=bw * 1024 / 1e6, iops=iops, nreq=nreq, cpu=dcpu if ok else None,
                            host=(dcpu - dguest) if ok else None, irq=irq.get((v, j)))
def us(x, n):
    return "%.0f" % (x / n * 1e6) if x is not None and n else "-"
def rpi(r):
    return "%.2f" % (r["nreq"] / r["irq"]) if r.get("irq") else "-"
print("%-15s %-9s %9s %9s %9s %8s %12s %12s %8s" % ("job", "vmm", "MB/s", "IOPS", "requests", "cpu_s", "cpu_us/req", "host_us/req", "req/irq"))
for j in jobs:
    for v in vmms:
        r = rows[(v, j)]
        if r is None:
            print("%-15s %-9s %9s" % (j, v, "(no result)")); continue
        print("%-15s %-9s %9.1f %9.0f %9.0f %8s %12s %12s %8s" % (j, v, r["mbs"], r["iops"], r["nreq"],
              "%.2f" % r["cpu"] if r["cpu"] is not None else "-", us(r["cpu"], r["nreq"]), us(r["host"], r["nreq"]), rpi(r)))
def per(r, k): return r[k] / r["nreq"] if r[k] is not None and r["nreq"] else None
def rat(x, y): return "%.3f" % (x / y) if x is not None and y else "-"
# pair_table TITLE WIDTH METRIC LABEL PAIRS: per job, each pair (a, b) with
# results for both: a/b of METRIC (its column LABEL) and of the CPU per request
def pair_table(title, width, metric, label, pairs):
    print()
    print(title)
    fmt = "%-15s %-" + str(width) + "s %9s %12s %12s"
    print(fmt % ("job", "vmm", label, "cpu/req", "host/req"))
    for j in jobs:
        for a, b in pairs:
            x, y = rows[(a, j)], rows[(b, j)]
            if not x or not y: continue
            print(fmt % (j, a + "/" + b, rat(x[metric], y[metric]),
                  rat(per(x, "cpu"), per(y, "cpu")), rat(per(x, "host"), per(y, "host"))))
if "qemu" in vmms:
    pair_table("ratios vs qemu (throughput: >1 = faster than qemu; CPU per request: <1 = cheaper)",
               14, "mbs", "MB/s", [(v, "qemu") for v in vmms if v != "qemu"])
if "wisp-vhu" in vmms and "qemu-vhu" in vmms:
    pair_table("vhost-user, the same qemu-storage-daemon behind both (>1 = wisp faster; CPU: <1 = wisp cheaper)",
               18, "mbs", "MB/s", [("wisp-vhu", "qemu-vhu")])
if "wisp" in vmms and "wisp-oop" in vmms:
    pair_table("out of process vs in process (throughput: >1 = faster in its own process)",
               14, "mbs", "MB/s", [("wisp-oop", "wisp")])
pairs = [(v, "wisp") for v in ("wisp-iommu-strict", "wisp-iommu-lazy", "wisp-iommu-lazy-vcpu")] + [("wisp-oop-iommu", "wisp-oop")]
pairs = [(a, b) for a, b in pairs if a in vmms and b in vmms]
if pairs:
    pair_table("behind the IOMMU vs without (IOPS: >1 = faster with it; CPU per request: <1 = cheaper)",
               26, "iops", "IOPS", pairs)
def per_io(title, d, names, wrap):
    """A table of two counters sampled at the start and end of each job, in
    all and per request; wrap: the first counter is that many bits."""
    keep = [(j, v) for j in jobs for v in vmms if rows[(v, j)] and "begin" in d.get((v, j), {}) and "end" in d.get((v, j), {})]
    if not keep:
        return
    print()
    print(title)
    print("%-15s %-18s %12s %12s %10s %10s" % (("job", "vmm") + names))
    for j, v in keep:
        b, e = d[(v, j)]["begin"], d[(v, j)]["end"]
        n = (e[0] - b[0]) % (1 << wrap) if wrap else e[0] - b[0]
        k = e[1] - b[1]
        r = rows[(v, j)]["nreq"]
        print("%-15s %-18s %12d %12d %10.2f %10.2f" % (j, v, n, k, n / r if r else 0, k / r if r else 0))
per_io("the virtio-iommu per I/O (wisp state dumps at the job start and end; requests: its requestq used.idx, 16 bits)",
       iom, ("requests", "wake-ups", "req/I/O", "wake/I/O"), 16)
per_io("the IOREQ server per I/O (wisp state dumps at the job start and end): round trips a vCPU waited for, and InterruptStatus reads and ACKs wisp served from the shared page",
       ioq, ("round trips", "shared-isr", "trips/I/O", "isr/I/O"), 0)
missing = [k for k, r in rows.items() if r is None]
sys.exit(1 if missing or HZ is None else 0)
' "$VMMS" "$JOBS" || rc=1
[ "$KEEP" = 1 ] && rig_log "work directory kept: $WORK"
exit $rc
