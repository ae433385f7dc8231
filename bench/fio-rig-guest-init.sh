#!/bin/sh
# /init of the L2 guest in bench/fio-rig.sh (busybox + fio, PID 1).
# For each job named in fio_jobs= on the command line: print
# "WISP-FIO-BEGIN job", wait for a console line (L1 samples the VMM's CPU
# time, then answers), run fio on /dev/vda, print "WISP-FIO-IRQ job dev n"
# (vda's interrupts during the job) and "WISP-FIO-END job status",
# wait again (second sample), then print "WISP-FIO-RES job <terse line>"
# and "WISP-FIO-RES-END job".
# Then reboot (wisp exits; QEMU: reboot=t + -no-reboot).
# shellcheck source=bench/guest-common.sh
. /guest-common.sh   # PATH, mounts, a quiet console
echo "WISP-FIO-INIT $(cut -d' ' -f1 /proc/uptime)"
# a stock kernel's virtio modules (fio-rig.sh --guest-kernel 6.12 appends
# them as /lib/modules/NN-*.ko, in load order)
for m in /lib/modules/*.ko; do
    [ -e "$m" ] || continue
    insmod "$m" 2> /tmp/insmod.err || echo "WISP-FIO-MODULE-FAILED ${m##*/} $(cat /tmp/insmod.err)"
done
# behind an IOMMU the disk probes once the IOMMU is there (deferred probe,
# in the background): wait for it, bounded
n=0
while [ ! -e /sys/block/vda ] && [ "$n" -lt 100 ]; do usleep 100000; n=$((n + 1)); done
# the DMA domains (DMA: strict, DMA-FQ: lazy) and their devices
for g in /sys/kernel/iommu_groups/*; do
    [ -e "$g/type" ] || continue
    echo "WISP-FIO-IOMMU-GROUP ${g##*/} $(cat "$g/type") $(ls "$g/devices" | tr '\n' ' ')"
done
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
RT=$(arg fio_runtime); RT=${RT:-10}
JOBS=$(arg fio_jobs | tr ',' ' ')
echo "WISP-FIO-DISK $(cat /sys/block/vda/size 2>/dev/null) sectors"
# interrupts of vda's virtio device (its /proc/interrupts line, all CPUs):
# completions per interrupt tell how a VMM's interrupt path batches
VDEV=$(basename "$(readlink -f /sys/block/vda/device)")
irqs() {
    awk -v d="$VDEV" '$NF == d { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i }
        END { print s + 0 }' /proc/interrupts
}
for job in $JOBS; do
    case "$job" in
        seq-read)       a="--rw=read --bs=1M --ioengine=psync --iodepth=1" ;;
        seq-write)      a="--rw=write --bs=1M --ioengine=psync --iodepth=1" ;;
        rand-read)      a="--rw=randread --bs=4k --ioengine=psync --iodepth=1" ;;
        rand-write)     a="--rw=randwrite --bs=4k --ioengine=psync --iodepth=1" ;;
        rand-read-qd8)  a="--rw=randread --bs=4k --ioengine=libaio --iodepth=8" ;;
        rand-write-qd8) a="--rw=randwrite --bs=4k --ioengine=libaio --iodepth=8" ;;
        rand-read-qd32)  a="--rw=randread --bs=4k --ioengine=libaio --iodepth=32" ;;
        rand-write-qd32) a="--rw=randwrite --bs=4k --ioengine=libaio --iodepth=32" ;;
        *) echo "WISP-FIO-END $job unknown-job"; continue ;;
    esac
    echo "WISP-FIO-BEGIN $job"
    read -r _go
    i0=$(irqs)
    # shellcheck disable=SC2086
    fio --name="$job" --filename=/dev/vda --direct=1 --time_based \
        --runtime="$RT" --norandommap --randrepeat=0 --group_reporting \
        --output-format=terse $a > /tmp/out 2> /tmp/err
    rc=$?
    echo "WISP-FIO-IRQ $job $VDEV $(($(irqs) - i0))"
    echo "WISP-FIO-END $job $rc"
    read -r _go
    echo "WISP-FIO-RES $job $(grep '^3;' /tmp/out | head -n 1)"
    [ "$rc" = 0 ] || sed "s/^/WISP-FIO-ERR $job /" /tmp/err | tail -n 5
    # L1 copies the (long) result line once this follows it
    echo "WISP-FIO-RES-END $job"
done
echo "WISP-FIO-DONE"
reboot -f
sleep 1000000
