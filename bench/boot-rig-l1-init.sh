#!/bin/sh
# /init of the L1 guest booted by bench/boot-rig.sh (busybox, PID 1).
# For each round, runs one boot per row (ROWS) with each VMM in
# /rig/bench.conf, through vmrun, and reports on the console (KEY is
# VMM-ROW, e.g. wisp-acpi):
#   RIG-B <key> <round> <vmrun report...>   RIG-B-FAIL <key> <round> <why>
# Never exits (PID 1): ends with poweroff -f.
. /rig/l1-common.sh   # mounts, KVM, finish()

RUNS=5 WARMUP=1 CPUS=2 MEM=256 TMO=120 EXTRA='' VMMS="wisp qemu" CMDLINE= ROWS=acpi
WISPB_ARGS=''
ROOTFS_TMO=300
. /rig/bench.conf
# boot-rig.sh stops an L1 whose console stays silent for 120 s (an L1
# that stopped would otherwise hold the machine until the overall timeout)
heartbeat
# CMDLINE (from boot-rig.sh) goes to both VMMs as the whole kernel command
# line (wisp: --no-default-cmdline); only reboot= differs, because each VMM
# ends the VM on a different reboot method: wisp on the i8042 reset
# (reboot=k), QEMU microvm (no i8042) on a triple fault with -no-reboot.
#
# Rows (ROWS): acpi = the rig's bzImage, wisp with its ACPI tables (the
# default) against -M microvm,acpi=on; noacpi = the same with wisp --acpi
# off against -M microvm,acpi=off; rootfs = Debian's cloud kernel booting
# the Debian root filesystem from a virtio disk (a fresh copy each boot)
# to multi-user.target, both VMMs with ACPI; the guest powers off.

bench_one() {
    vmm=$1 row=$2 round=$3
    kernel=/l2/bzImage initrd=/l2/initrd.gz mark=WISP-BENCH-INIT send=WISP-BENCH-INIT
    acpi=on cmdline=$CMDLINE tmo=$TMO wdisk='' qdisk=''
    case "$row" in
    noacpi) acpi=off ;;
    rootfs)
        kernel=/l2/cloud-vmlinuz initrd=/l2/initrd-rootfs.gz
        mark=WISP-MULTI-USER send=WISP-READY tmo=$ROOTFS_TMO
        cmdline="$CMDLINE root=/dev/vda quiet"
        cp /l2/rootfs.ext4 /tmp/rootfs.img
        wdisk="--disk path=/tmp/rootfs.img"
        qdisk="-drive id=d0,file=/tmp/rootfs.img,format=raw,if=none -device virtio-blk-device,drive=d0"
        ;;
    esac
    if [ "$vmm" = qemu ]; then
        # shellcheck disable=SC2086 # qdisk is split on purpose
        set -- qemu-system-x86_64 -L /usr/share/qemu \
            -M microvm,acpi=$acpi,memory-backend=mem \
            -object memory-backend-memfd,id=mem,size=${MEM}M \
            -accel kvm -cpu host -m "$MEM" -smp "$CPUS" \
            -kernel $kernel -initrd $initrd \
            -append "$cmdline reboot=t" \
            -nographic -no-reboot -nodefaults -serial stdio $qdisk
    else
        # wispb: the same wisp with boot-rig.sh --wisp-b's options
        wargs=''
        [ "$vmm" = wispb ] && wargs=$WISPB_ARGS
        # shellcheck disable=SC2086 # wdisk and wargs are split on purpose
        set -- /bin/wisp run --kernel $kernel --initrd $initrd \
            --cpus "$CPUS" --memory "$MEM" --serial stdio --acpi $acpi \
            --no-default-cmdline --cmdline "$cmdline reboot=k" $wdisk $wargs
    fi
    key=$vmm-$row
    echo "RIG-B-CMD $key $*"
    vmrun -o /tmp/b.log -t "$tmo" -M "$mark" -s "$send=go" \
        -- "$@" 2>/tmp/b.vmrun
    rc=$?
    # the boot time is the mark's; call it WISP-BENCH-INIT for boot-rig.sh
    sed -e "s/^vmrun: /RIG-B $key $round /" -e "s/ mark $mark / mark WISP-BENCH-INIT /" /tmp/b.vmrun
    tr -d '\r' < /tmp/b.log | sed -n 's/^WISP-BENCH-UPTIME //p; s/^WISP-T-VAL uptime \([0-9.]*\) s.*/\1/p' | head -1 |
        sed "s/^/RIG-B $key $round uptime /"
    tr -d '\r' < /tmp/b.log | grep '^WISP-BENCH-DMESG ' |
        sed "s/^WISP-BENCH-DMESG /RIG-B-D $key $round /"
    if [ "$rc" != 0 ] || ! grep -q "mark $mark" /tmp/b.vmrun; then
        echo "RIG-B-FAIL $key $round status $rc"
        tr -d '\r' < /tmp/b.log | tail -n 25 | sed "s/^/RIG-B-T $key $round /"
    fi
    rm -f /tmp/rootfs.img
}

i=1
while [ "$i" -le "$WARMUP" ]; do
    for r in $ROWS; do for v in $VMMS; do bench_one "$v" "$r" "w$i"; done; done
    i=$((i + 1))
done
i=1
while [ "$i" -le "$RUNS" ]; do
    for r in $ROWS; do for v in $VMMS; do bench_one "$v" "$r" "$i"; done; done
    i=$((i + 1))
done
finish
