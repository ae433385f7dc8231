#!/bin/sh
# /init of the L1 guest booted by bench/fio-rig.sh (busybox, PID 1).
# For each VMM in /rig/fio.conf boots the L2 guest (fio inside) on the same
# raw image /mnt/disk.img (ext4 on a loop device) and samples the VMM's
# CPU time (/proc/PID/stat of wisp, qemu-system-x86_64 and wisp-blk: utime
# stime guest_time, all threads) around each fio job; reports on the
# console:
#   RIG-F-CMD vmm command...      RIG-F-CPU vmm job begin|end pid utime stime guest
#   RIG-F vmm <WISP-FIO-* line>   RIG-F-V vmm <vmrun report>   RIG-F-FAIL vmm why
#   RIG-F-IOMMU vmm job begin|end requestq-used-idx iothread-wake-ups (--iommu)
# Never exits (PID 1): ends with poweroff -f.
L1_TMPFS_OPTS=size=90%
# shellcheck source=tests/rig/l1-common.sh
. /rig/l1-common.sh   # mounts, KVM, finish()

VMMS="wisp qemu" CPUS=2 MEM=256 DISK_MB=256 RUNTIME=10 JOBS=seq-read TMO=600
. /rig/fio.conf
# fio-rig.sh stops an L1 whose console stays silent for 120 s (an L1
# that stopped taking timer interrupts idles with its CPUs halted, and
# would hold the machine until the overall timeout)
heartbeat
# The image on ext4 on a loop device: a file system with O_DIRECT, so
# that every VMM opens it uncached (tmpfs has no O_DIRECT). Anything
# missing ends the run: a silent fallback would measure something else.
for m in /lib/fio-modules/*.ko; do
    insmod "$m" 2>/tmp/insmod.err ||
        { echo "RIG-L1-ERROR insmod ${m##*/}: $(cat /tmp/insmod.err)"; finish; }
done
dd if=/dev/zero of=/tmp/ext4.img bs=1M count=$((DISK_MB + 64)) 2>/dev/null
/opt/e2fsprogs/mke2fs -q -F -t ext4 -E lazy_itable_init=0,lazy_journal_init=0 /tmp/ext4.img 2>/tmp/mkfs.err ||
    { echo "RIG-L1-ERROR mke2fs: $(cat /tmp/mkfs.err)"; finish; }
mkdir -p /mnt
LOOP=$(losetup -f)
losetup "$LOOP" /tmp/ext4.img 2>/tmp/loop.err ||
    { echo "RIG-L1-ERROR losetup: $(cat /tmp/loop.err)"; finish; }
mount -t ext4 "$LOOP" /mnt 2>/tmp/mount.err ||
    { echo "RIG-L1-ERROR mount ext4: $(cat /tmp/mount.err)"; finish; }
IMG=/mnt/disk.img
dd if=/dev/zero of=$IMG bs=1M count="$DISK_MB" conv=fsync 2>/dev/null
dd if=$IMG of=/dev/null bs=4k count=1 iflag=direct 2>/tmp/dio.err ||
    { echo "RIG-L1-ERROR O_DIRECT read of $IMG: $(cat /tmp/dio.err)"; finish; }
echo "RIG-F-IMG $(ls -l $IMG) on $(grep ' /mnt ' /proc/mounts)"
CMDLINE="fio_runtime=$RUNTIME fio_jobs=$JOBS"
# the unit of utime/stime/guest_time in /proc/PID/stat
echo "RIG-F-HZ $(stamp -t)"

# sample VMM JOB WHEN: CPU ticks of every VMM-side process
sample() {
    for p in $(pidof wisp qemu-system-x86_64 wisp-blk qemu-storage-daemon); do
        awk -v v="$VMM" -v j="$JOB" -v w="$WHEN" -v p="$p" \
            '{print "RIG-F-CPU", v, j, w, p, $2, $14, $15, $43}' /proc/$p/stat 2>/dev/null
    done
}
# iommu_sample: for a VMM with --iommu or an IOREQ server, wisp's state
# dump (SIGUSR1): the virtio-iommu's requestq used.idx (16 bits) and its
# I/O thread's wake-ups, so fio-rig.sh counts the IOMMU requests and
# wake-ups per I/O; and the server's round trips and the InterruptStatus
# accesses wisp served from the shared page (IOREQ_F_SHARED_ISR)
iommu_sample() {
    case "$VMM" in wisp-iommu-* | wisp-oop*) ;; *) return ;; esac
    p=$(pidof wisp) || return
    n0=$(tr -d '\r' < /tmp/fio.log | grep -ac 'state dump end')
    kill -USR1 "$p"
    w=0
    while [ "$(tr -d '\r' < /tmp/fio.log | grep -ac 'state dump end')" = "$n0" ] && [ $w -lt 30 ]; do
        usleep 100000; w=$((w + 1))
    done
    tr -d '\r' < /tmp/fio.log | awk -v v="$VMM" -v j="$JOB" -v w="$WHEN" '
        /virtio-iommu: q0: / { for (i = 1; i < NF; i++) if ($i == "used.idx") u = $(i + 1) }
        /virtio-iommu: I\/O thread: / { for (i = 2; i <= NF; i++) if ($i == "wake-ups") k = $(i - 1) }
        /server .*: round trips / { for (i = 1; i < NF; i++) { if ($i == "trips") r = $(i + 1); if ($i == "shared-isr") s = $(i + 1) } }
        END { if (u != "" && k != "") print "RIG-F-IOMMU", v, j, w, u, k
              if (r != "" && s != "") print "RIG-F-IOREQ", v, j, w, r, s }'
}

# qsd_start: qemu-storage-daemon serving $IMG at /tmp/qsd.sock, as the
# in-process disks open it (O_DIRECT, io_uring)
qsd_start() {
    rm -f /tmp/qsd.sock
    qemu-storage-daemon \
        --blockdev "driver=file,node-name=f0,filename=$IMG,cache.direct=on,aio=io_uring" \
        --export type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=/tmp/qsd.sock,writable=on \
        > /tmp/qsd.log 2>&1 &
    QSD_PID=$!
    w=0
    while [ ! -S /tmp/qsd.sock ] && [ $w -lt 50 ]; do usleep 100000; w=$((w + 1)); done
}

run_one() {
    VMM=$1
    case "$VMM" in
    qemu)
        set -- qemu-system-x86_64 -L /usr/share/qemu -M microvm -accel kvm \
            -cpu host -m "$MEM" -smp "$CPUS" -kernel /l2/bzImage -initrd /l2/initrd.gz \
            -append "console=ttyS0 reboot=t panic=-1 $CMDLINE" \
            -nographic -no-reboot -nodefaults -serial stdio \
            -drive id=d0,file=$IMG,format=raw,if=none,cache=none,aio=io_uring \
            -device virtio-blk-device,drive=d0 ;;
    wisp)
        set -- /bin/wisp run --kernel /l2/bzImage --initrd /l2/initrd.gz \
            --cpus "$CPUS" --memory "$MEM" --serial stdio --cmdline "$CMDLINE" \
            --disk path=$IMG,direct=on ;;
    wisp-oop)
        set -- /bin/wisp run --kernel /l2/bzImage --initrd /l2/initrd.gz \
            --cpus "$CPUS" --memory "$MEM" --serial stdio --cmdline "$CMDLINE" \
            --spawn-server "/bin/wisp-blk --disk path=$IMG,direct=on" ;;
    wisp-iommu-strict | wisp-iommu-lazy | wisp-iommu-lazy-vcpu)
        strict=1; [ "$VMM" = wisp-iommu-strict ] || strict=0
        req=thread; [ "$VMM" = wisp-iommu-lazy-vcpu ] && req=vcpu
        set -- /bin/wisp run --kernel /l2/bzImage --initrd /l2/initrd.gz \
            --cpus "$CPUS" --memory "$MEM" --serial stdio \
            --cmdline "$CMDLINE iommu.strict=$strict" --iommu \
            --iommu-requests $req --disk path=$IMG,direct=on ;;
    wisp-oop-iommu)
        set -- /bin/wisp run --kernel /l2/bzImage --initrd /l2/initrd.gz \
            --cpus "$CPUS" --memory "$MEM" --serial stdio \
            --cmdline "$CMDLINE iommu.strict=0" --iommu \
            --spawn-server "/bin/wisp-blk --disk path=$IMG,direct=on" ;;
    wisp-vhu)
        qsd_start
        set -- /bin/wisp run --kernel /l2/bzImage --initrd /l2/initrd.gz \
            --cpus "$CPUS" --memory "$MEM" --serial stdio --cmdline "$CMDLINE" \
            --vhost-user-blk socket=/tmp/qsd.sock ;;
    qemu-vhu)
        # microvm's virtio-mmio is legacy by default, which libvhost-user
        # back-ends refuse; the back-end maps guest RAM, so it is a
        # shared memfd.
        qsd_start
        set -- qemu-system-x86_64 -L /usr/share/qemu -accel kvm \
            -object memory-backend-memfd,id=mem,size="$MEM"M,share=on \
            -M microvm,memory-backend=mem -global virtio-mmio.force-legacy=false \
            -cpu host -m "$MEM" -smp "$CPUS" -kernel /l2/bzImage -initrd /l2/initrd.gz \
            -append "console=ttyS0 reboot=t panic=-1 $CMDLINE" \
            -nographic -no-reboot -nodefaults -serial stdio \
            -chardev socket,id=vu0,path=/tmp/qsd.sock \
            -device vhost-user-blk,chardev=vu0 ;;
    esac
    echo "RIG-F-CMD $VMM $*"
    vm_start fio "$TMO" "$@"
    for JOB in $(echo "$JOBS" | tr ',' ' '); do
        vm_wait fio "WISP-FIO-BEGIN $JOB\$" || break
        WHEN=begin; iommu_sample; sample
        echo go > /tmp/fio.in
        # "WISP-FIO-END job status"
        vm_wait fio "WISP-FIO-END $JOB " || break
        WHEN=end; sample; iommu_sample
        echo go > /tmp/fio.in
        # the job's figures go out as soon as it finished, so a later job
        # (or L1) failing cannot take them along; RES-END follows the
        # complete RES line
        vm_wait fio "WISP-FIO-RES-END $JOB\$" &&
            tr -d '\r' < /tmp/fio.log | grep -a "^WISP-FIO-RES $JOB " | head -n 1 | sed "s/^/RIG-F $VMM /"
    done
    wait "$vpid"
    rc=$?
    if [ -n "${QSD_PID:-}" ]; then
        kill "$QSD_PID" 2>/dev/null; wait "$QSD_PID" 2>/dev/null
        sed "s/^/RIG-F-V $VMM qsd: /" /tmp/qsd.log
        QSD_PID=
    fi
    tr -d '\r' < /tmp/fio.log | grep -a '^WISP-FIO' | grep -av '^WISP-FIO-RES ' | sed "s/^/RIG-F $VMM /"
    sed "s/^/RIG-F-V $VMM /" /tmp/fio.vmrun
    if [ "$rc" != 0 ] || ! grep -q '^WISP-FIO-DONE' /tmp/fio.log; then
        echo "RIG-F-FAIL $VMM status $rc"
        tr -d '\r' < /tmp/fio.log | tail -n 30 | sed "s/^/RIG-F-T $VMM /"
    fi
}

for v in $VMMS; do run_one "$v"; done
finish
