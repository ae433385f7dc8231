# tests/rig/l1-common.sh - the prologue of every L1 /init (tests/rig, the
# bench/*-rig benchmarks, scripts/demo), sourced by busybox sh as PID 1.
# rig_l1_root installs it as /rig/l1-common.sh.
#
# Mounts proc, sysfs, devtmpfs and a tmpfs on /tmp (options from
# L1_TMPFS_OPTS, set before sourcing), loads the KVM modules from
# /lib/rig-modules in their file-name order and checks /dev/kvm. Prints
#   RIG-L1-UP <uptime>   RIG-L1-KVM <uptime> npt=<Y|N> ... (kvm-amd's
#   parameters) kvmkeep=<on|off|failed(why)> cmdline=<L1's, commas for spaces>
#   RIG-L1-ERROR <why>
# and defines finish(): "RIG-L1-DONE <uptime>", then poweroff (and
# vm_start, a VMM under vmrun, for the benchmarks). PID 1 must
# never exit (the L1 kernel would panic), so nothing here uses `set -e` and
# finish() ends in an endless sleep. On an error the prologue calls finish:
# the caller's code after the `.` never runs without KVM.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs ${L1_TMPFS_OPTS:+-o "$L1_TMPFS_OPTS"} tmpfs /tmp
echo "RIG-L1-UP $(cut -d' ' -f1 /proc/uptime)"

# heartbeat: "RIG-HB <uptime>" every 20 s in the background, so a console
# silent for much longer (run.sh's and fs-rig.sh's window: 120 s) means L1
# itself stopped, not a quiet scenario or job
heartbeat() {
    ( while sleep 20; do echo "RIG-HB $(cut -d' ' -f1 /proc/uptime)"; done ) &
}

finish() {
    echo "RIG-L1-DONE $(cut -d' ' -f1 /proc/uptime)"
    sync
    poweroff -f
    sleep 1000000
}

# vm_start NAME TIMEOUT_S COMMAND...: COMMAND (a VMM) under vmrun in the
# background, killed after TIMEOUT_S; its console in /tmp/NAME.log, its
# stdin fed from the FIFO /tmp/NAME.in, vmrun's report in /tmp/NAME.vmrun;
# vmrun's pid in vpid (bench/net-rig, bench/fio-rig)
vm_start() {
    local vm=/tmp/$1 tmo=$2
    shift 2
    rm -f "$vm.in"; mkfifo "$vm.in"
    : > "$vm.log"
    vmrun -o "$vm.log" -t "$tmo" -i "$vm.in" -- "$@" 2> "$vm.vmrun" &
    # shellcheck disable=SC2034 # the caller's
    vpid=$!
}

# vm_wait NAME RE [TENTHS]: until a line of /tmp/NAME.log matches ^RE
# (extended), the VMM vm_start began ended (status 1), or TENTHS tenths
# of a second passed (status 1; no bound without it: vmrun's own timeout
# ends the wait)
vm_wait() {
    local w=0
    while [ -z "${3:-}" ] || [ $w -lt "$3" ]; do
        tr -d '\r' < "/tmp/$1.log" | grep -aqE "^$2" && return 0
        kill -0 "$vpid" 2> /dev/null || return 1
        usleep 100000
        w=$((w + 1))
    done
    return 1
}

for m in /lib/rig-modules/*.ko; do
    args=''
    case "$m" in *kvm-amd.ko) [ -f /rig/kvm-amd.params ] && args=$(cat /rig/kvm-amd.params) ;; esac
    # shellcheck disable=SC2086
    if ! insmod "$m" $args 2>/tmp/insmod.err; then
        echo "RIG-L1-ERROR insmod ${m##*/}: $(cat /tmp/insmod.err)"
        finish
    fi
done
if [ ! -c /dev/kvm ]; then
    echo "RIG-L1-ERROR /dev/kvm missing after loading kvm-amd"
    finish
fi
# RIG_KVMKEEP=1 on the host: one idle VM held for L1's lifetime
# (tools/kvmkeep.c: an L2 start then patches none of L1's kernel text).
# Off by default: with it L1 still died as often (docs/rig.md "Where L1
# dies at an L2 start").
keep=off
if [ -e /rig/kvmkeep ] && [ -x /bin/kvmkeep ]; then
    kvmkeep > /tmp/kvmkeep.out 2>&1 &
    w=0
    while [ "$w" -lt 50 ] && ! grep -q holding /tmp/kvmkeep.out; do
        kill -0 $! 2> /dev/null || break
        usleep 100000; w=$((w + 1))
    done
    if grep -q holding /tmp/kvmkeep.out; then keep=on
    else keep="failed($(tr ' \n' '_ ' < /tmp/kvmkeep.out))"; fi
fi
# with whether kvm-amd uses nested paging (RIG_L1_CPU can turn it off)
kp=$(cd /sys/module/kvm_amd/parameters 2> /dev/null && for p in npt nested vgif avic vls lbrv nrips pause_filter_count; do
    [ -f "$p" ] && printf ' %s=%s' "$p" "$(cat "$p")"; done)
echo "RIG-L1-KVM $(cut -d' ' -f1 /proc/uptime)${kp} kvmkeep=$keep cmdline=$(tr ' ' ',' < /proc/cmdline)"
