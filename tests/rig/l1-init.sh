#!/bin/sh
# /init of the L1 guest booted by tests/rig/run.sh (busybox, PID 1).
#
# Loads KVM (SVM, emulated by QEMU TCG), then runs each scenario listed in
# /rig/scenarios with its own timeout (vmrun -t) and reports on the console:
#   RIG-BEGIN name | RIG-L name <L2 console line, live>
#   RIG-M name <WISP-marker...> | RIG-V name <vmrun report>
#   RIG-EXIT name <status> <ms> | RIG-END name
# PID 1 must never exit (the L1 kernel would panic): no `set -e`, and the
# script ends in `poweroff -f` followed by an endless sleep.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
echo "RIG-L1-UP $(cut -d' ' -f1 /proc/uptime)"

finish() {
    echo "RIG-L1-DONE $(cut -d' ' -f1 /proc/uptime)"
    sync
    poweroff -f
    sleep 1000000
}

for m in /lib/rig-modules/*.ko; do
    if ! insmod "$m" 2>/tmp/insmod.err; then
        echo "RIG-L1-ERROR insmod ${m##*/}: $(cat /tmp/insmod.err)"
        finish
    fi
done
if [ ! -c /dev/kvm ]; then
    echo "RIG-L1-ERROR /dev/kvm missing after loading kvm-amd"
    finish
fi
echo "RIG-L1-KVM $(cut -d' ' -f1 /proc/uptime)"

VMM=wisp WISP_ARGS=
[ -f /rig/config ] && . /rig/config

run_scenario() {
    name=$1 kernel=$2 initrd=$3 cpus=$4 mem=$5 tmo=$6
    token="rigtoken=$name-7f3a"
    input="ping-$name"
    log=/tmp/$name.log
    echo "RIG-BEGIN $name"
    if [ "$VMM" = qemu ]; then
        set -- qemu-system-x86_64 -L /usr/share/qemu -M microvm -accel kvm \
            -cpu host -m "$mem" -smp "$cpus" -kernel "$kernel" -initrd "$initrd" \
            -append "console=ttyS0 reboot=t panic=-1 $token" \
            -nographic -no-reboot -nodefaults -serial stdio
    else
        # shellcheck disable=SC2086 # WISP_ARGS is split on purpose
        set -- /bin/wisp run $WISP_ARGS --kernel "$kernel" --initrd "$initrd" \
            --cpus "$cpus" --memory "$mem" --cmdline "$token" --serial stdio
    fi
    echo "RIG-V $name command: $*"
    t0=$(stamp -m)
    vmrun -o "$log" -e "RIG-L $name" -t "$tmo" -m WISP-INIT-RAN -m WISP-READY \
        -s "WISP-READY=$input" -- "$@" 2>/tmp/$name.vmrun
    rc=$?
    t1=$(stamp -m)
    tr -d '\r' < "$log" | grep -o 'WISP-[A-Z-]*.*' | sed "s/^/RIG-M $name /"
    sed "s/^/RIG-V $name /" /tmp/$name.vmrun
    echo "RIG-EXIT $name $rc $((t1 - t0))"
    echo "RIG-END $name"
}

while read -r name kernel initrd cpus mem tmo <&3; do
    case "$name" in ''|'#'*) continue ;; esac
    run_scenario "$name" "$kernel" "$initrd" "$cpus" "$mem" "$tmo"
done 3< /rig/scenarios
finish
