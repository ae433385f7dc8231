#!/bin/sh
# /init of the L1 guest booted by bench/boot-rig.sh (busybox, PID 1).
# For each round, runs one boot with each VMM in /rig/bench.conf, through
# vmrun, and reports on the console:
#   RIG-B <vmm> <round> <vmrun report...>   RIG-B-FAIL <vmm> <round> <why>
# Never exits (PID 1): ends with poweroff -f.
. /rig/l1-common.sh   # mounts, KVM, finish()

RUNS=5 WARMUP=1 CPUS=2 MEM=256 TMO=120 EXTRA='' VMMS="wisp qemu" CMDLINE=
. /rig/bench.conf
# CMDLINE (from boot-rig.sh) goes to both VMMs as the whole kernel command
# line (wisp: --no-default-cmdline); only reboot= differs, because each VMM
# ends the VM on a different reboot method: wisp on the i8042 reset
# (reboot=k), QEMU microvm (no i8042) on a triple fault with -no-reboot.

bench_one() {
    vmm=$1 round=$2
    if [ "$vmm" = qemu ]; then
        set -- qemu-system-x86_64 -L /usr/share/qemu \
            -M microvm,memory-backend=mem \
            -object memory-backend-memfd,id=mem,size=${MEM}M \
            -accel kvm -cpu host -m "$MEM" -smp "$CPUS" \
            -kernel /l2/bzImage -initrd /l2/initrd.gz \
            -append "$CMDLINE reboot=t" \
            -nographic -no-reboot -nodefaults -serial stdio
    else
        set -- /bin/wisp run --kernel /l2/bzImage --initrd /l2/initrd.gz \
            --cpus "$CPUS" --memory "$MEM" --serial stdio \
            --no-default-cmdline --cmdline "$CMDLINE reboot=k"
    fi
    echo "RIG-B-CMD $vmm $*"
    vmrun -o /tmp/b.log -t "$TMO" -M WISP-BENCH-INIT -s WISP-BENCH-INIT=go \
        -- "$@" 2>/tmp/b.vmrun
    rc=$?
    sed "s/^vmrun: /RIG-B $vmm $round /" /tmp/b.vmrun
    tr -d '\r' < /tmp/b.log | grep '^WISP-BENCH-UPTIME ' | head -1 |
        sed "s/^WISP-BENCH-UPTIME /RIG-B $vmm $round uptime /"
    tr -d '\r' < /tmp/b.log | grep '^WISP-BENCH-DMESG ' |
        sed "s/^WISP-BENCH-DMESG /RIG-B-D $vmm $round /"
    if [ "$rc" != 0 ] || ! grep -q 'mark WISP-BENCH-INIT' /tmp/b.vmrun; then
        echo "RIG-B-FAIL $vmm $round status $rc"
        tr -d '\r' < /tmp/b.log | tail -n 25 | sed "s/^/RIG-B-T $vmm $round /"
    fi
}

i=1
while [ "$i" -le "$WARMUP" ]; do
    for v in $VMMS; do bench_one "$v" "w$i"; done
    i=$((i + 1))
done
i=1
while [ "$i" -le "$RUNS" ]; do
    for v in $VMMS; do bench_one "$v" "$i"; done
    i=$((i + 1))
done
finish
