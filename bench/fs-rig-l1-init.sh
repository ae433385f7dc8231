#!/bin/sh
# /init of the L1 guest booted by bench/fs-rig.sh (busybox, PID 1).
# ROUNDS times, for each VMM in /rig/fs.conf (interleaved: wisp, qemu,
# wisp, ...): a fresh shared directory /tmp/share-VMM@ROUND on L1's tmpfs
# holding big.bin (MIB MiB, a copy of one random file made once), a fresh
# virtiofsd (QEMU 7.2's, cache=none, sandbox=chroot) serving it, and the
# L2 guest booted under the VMM with that share as tag "share"; around
# each guest job, the CPU time of the VMM and of virtiofsd (/proc/PID/stat:
# utime stime guest_time, all threads). Reports on the console ("vmm" is
# VMM@ROUND):
#   RIG-S-CMD vmm command...         RIG-S-CPU vmm job begin|end pid comm utime stime guest
#   RIG-S vmm <WISP-FS-* line>       RIG-S-V vmm <vmrun/virtiofsd line>
#   RIG-S-FAIL vmm why               RIG-S-T vmm <console tail>
# Each job's figures go out as soon as it ended. Never exits (PID 1):
# ends with poweroff -f.
# shellcheck source=tests/rig/l1-common.sh
. /rig/l1-common.sh   # mounts, KVM, finish(), vm_start

VMMS="wisp qemu" CPUS=2 MEM=256 FILES=2000 SIZE=4096 MIB=64 BS=1048576 JOBS=create ROUNDS=1 TMO=300
. /rig/fs.conf
CMDLINE="fs_files=$FILES fs_size=$SIZE fs_mib=$MIB fs_bs=$BS fs_jobs=$JOBS"
# the unit of utime/stime/guest_time in /proc/PID/stat
echo "RIG-S-HZ $(stamp -t)"
# fs-rig.sh stops an L1 whose console stays silent for 120 s (an L1 that
# stopped taking timer interrupts is seen in this rig; it would otherwise
# hold the machine until the overall timeout)
heartbeat
dd if=/dev/urandom of=/tmp/big.src bs=1M count="$MIB" 2> /tmp/dd.err ||
    { echo "RIG-L1-ERROR making big.src: $(cat /tmp/dd.err)"; finish; }
echo "RIG-S-SHARE tmpfs: $(grep ' /tmp ' /proc/mounts)"

# sample WHEN: CPU ticks of the VMM and of virtiofsd
sample() {
    for p in $(pidof wisp qemu-system-x86_64 virtiofsd); do
        awk -v v="$TAG" -v j="$JOB" -v w="$1" -v p="$p" \
            '{print "RIG-S-CPU", v, j, w, p, $2, $14, $15, $43}' /proc/"$p"/stat 2> /dev/null
    done
}
# to_guest: a line for the guest; the FIFO blocks its writer while nobody
# reads it (vmrun gone), hence the bound
to_guest() { timeout 5 sh -c 'echo go > /tmp/fs.in'; }

run_one() {
    VMM=$1 TAG=$1@$2
    SHARE=/tmp/share-$TAG SOCK=/tmp/vfs-$TAG.sock
    mkdir -p "$SHARE"
    cp /tmp/big.src "$SHARE/big.bin"
    /bin/virtiofsd --socket-path="$SOCK" -o source="$SHARE" \
        -o sandbox=chroot -o cache=none > /tmp/vfs.log 2>&1 &
    VFS_PID=$!
    w=0
    while [ ! -S "$SOCK" ] && [ $w -lt 50 ]; do usleep 100000; w=$((w + 1)); done
    if [ ! -S "$SOCK" ]; then
        echo "RIG-S-FAIL $TAG virtiofsd: no socket after 5 s: $(tail -n 2 /tmp/vfs.log | tr '\n' ' ')"
        kill "$VFS_PID" 2> /dev/null; wait "$VFS_PID" 2> /dev/null
        rm -rf "$SHARE"
        return
    fi
    case "$VMM" in
    qemu)
        # the daemon maps guest RAM: a shared memfd; modern virtio-mmio
        # (microvm's default is legacy, which vhost-user-fs refuses)
        set -- qemu-system-x86_64 -L /usr/share/qemu -accel kvm \
            -object memory-backend-memfd,id=mem,size="$MEM"M,share=on \
            -M microvm,memory-backend=mem -global virtio-mmio.force-legacy=false \
            -cpu host -m "$MEM" -smp "$CPUS" -kernel /l2/bzImage -initrd /l2/initrd.gz \
            -append "console=ttyS0 reboot=t panic=-1 $CMDLINE" \
            -nographic -no-reboot -nodefaults -serial stdio \
            -chardev socket,id=fs0,path="$SOCK" \
            -device vhost-user-fs-device,chardev=fs0,tag=share ;;
    wisp)
        set -- /bin/wisp run --kernel /l2/bzImage --initrd /l2/initrd.gz \
            --cpus "$CPUS" --memory "$MEM" --serial stdio --cmdline "$CMDLINE" \
            --fs socket="$SOCK",tag=share ;;
    esac
    echo "RIG-S-CMD $TAG $*"
    vm_start fs "$TMO" "$@"
    for JOB in $(echo "$JOBS" | tr ',' ' '); do
        vm_wait fs "WISP-FS-BEGIN $JOB\$" || break
        sample begin
        to_guest
        vm_wait fs "WISP-FS-END $JOB " || break
        sample end
        to_guest
        vm_wait fs "WISP-FS-(RES|ERR) $JOB " || break
        tr -d '\r' < /tmp/fs.log | grep -aE "^WISP-FS-(RES|ERR) $JOB " | sed "s/^/RIG-S $TAG /"
    done
    wait "$vpid"
    rc=$?
    sed "s/^/RIG-S-V $TAG /" /tmp/fs.vmrun
    # a daemon stuck on a request may not end on SIGTERM: bounded, then
    # SIGKILL (an unbounded wait here held run 4, docs/performance.md)
    kill "$VFS_PID" 2> /dev/null
    w=0
    while kill -0 "$VFS_PID" 2> /dev/null && [ $w -lt 30 ]; do usleep 100000; w=$((w + 1)); done
    kill -0 "$VFS_PID" 2> /dev/null &&
        { echo "RIG-S-FAIL $TAG virtiofsd did not end on SIGTERM in 3 s: killed"; kill -9 "$VFS_PID"; }
    wait "$VFS_PID" 2> /dev/null
    tr -d '\r' < /tmp/fs.log | grep -a '^WISP-FS' | grep -avE '^WISP-FS-(RES|ERR|BEGIN|END) ' | sed "s/^/RIG-S $TAG /"
    tr -d '\r' < /tmp/fs.log | grep -aE '^WISP-FS-END .* [1-9]' | sed "s/^/RIG-S $TAG /"
    grep -v '^$' /tmp/vfs.log | tail -n 5 | sed "s/^/RIG-S-V $TAG virtiofsd: /"
    if [ "$rc" != 0 ] || ! tr -d '\r' < /tmp/fs.log | grep -q '^WISP-FS-DONE'; then
        echo "RIG-S-FAIL $TAG status $rc"
        tr -d '\r' < /tmp/fs.log | grep -av 'TCG' | tail -n 20 | sed "s/^/RIG-S-T $TAG /"
    fi
    rm -rf "$SHARE" "$SOCK"
}

r=1
while [ $r -le "$ROUNDS" ]; do
    for v in $VMMS; do run_one "$v" $r; done
    r=$((r + 1))
done
finish
