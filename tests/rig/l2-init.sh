#!/bin/sh
# /init of the L2 guests in tests/rig/run.sh scenarios (busybox, PID 1).
# Prints WISP-* markers on the console that run.sh checks, runs the device
# test named by rigtest=NAME on the kernel command line (if any), echoes one
# line read from the console, then reboots (wisp must exit 0).
#
# The scenario's guest part (tests/rig/scenarios/NAME/l2.sh, in the initramfs
# at /rig/scenarios/NAME/l2.sh) defines t_main, which reports one line per
# check, with the helpers below:
#   WISP-T-OK KEY [detail]   WISP-T-FAIL KEY detail   WISP-T-VAL KEY value
# (L1 compares the values against the images; the scenario's `checks` file
# names the KEYs it must report). The console is /dev/console: ttyS0, or
# hvc0 with wisp --console virtio.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Stock kernels whose virtio-console is a module (rigconsole=hvc0 on the
# command line): /dev/console is ttyS0 until then, so load the modules
# first, quietly, and move this script's stdio onto /dev/hvc0; every marker
# then travels through the virtio console.
MODS_LOADED=
case " $(cat /proc/cmdline) " in
*" rigconsole=hvc0 "*)
    dmesg -n 1 2> /dev/null
    MODS_LOADED=$(for m in /lib/modules/*.ko; do
        [ -e "$m" ] || continue
        if insmod "$m" 2> /dev/null; then echo "WISP-MODULE ok ${m##*/}"; else echo "WISP-MODULE failed ${m##*/}"; fi
    done)
    n=0
    while [ ! -c /dev/hvc0 ] && [ "$n" -lt 50 ]; do usleep 100000; n=$((n + 1)); done
    [ -c /dev/hvc0 ] && exec < /dev/hvc0 > /dev/hvc0 2>&1
    ;;
esac
echo "WISP-INIT-RAN"
echo "WISP-KERNEL $(uname -r)"
echo "WISP-CPUS $(grep -c '^processor' /proc/cpuinfo)"
echo "WISP-MEMTOTAL $(sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' /proc/meminfo)"
echo "WISP-CMDLINE $(cat /proc/cmdline)"
[ -n "$MODS_LOADED" ] && echo "$MODS_LOADED"
for m in /lib/modules/*.ko; do
    [ -e "$m" ] && [ -z "$MODS_LOADED" ] || continue
    if insmod "$m"; then echo "WISP-MODULE ok ${m##*/}"; else echo "WISP-MODULE failed ${m##*/}"; fi
done
stty -echo 2>/dev/null

ok() { echo "WISP-T-OK $*"; }
bad() { echo "WISP-T-FAIL $*"; }
val() { echo "WISP-T-VAL $*"; }
sha() { sha256sum | cut -c1-64; }
last() { tail -n 1 "$1" 2>/dev/null | tr -d '\r'; }
# tcp_sent PORT: every connection to a remote PORT has had all it sent
# acknowledged, its FIN included (none left ESTABLISHED, FIN_WAIT1,
# CLOSING or LAST_ACK in /proc/net/tcp; those that are, it prints).
# nc -e exits once its program handed the data to the kernel; a guest
# that reboots then drops the rest.
tcp_sent() {
    awk -v p="$(printf ':%04X' "$1")" 'NR > 1 && substr($3, length($3) - 4) == p &&
        ($4 == "01" || $4 == "04" || $4 == "0B" || $4 == "09") { n++; print $2, $3, "st", $4, "tx:rx", $5 }
        END { exit (n > 0) }' /proc/net/tcp
}
# tcp_wait_sent PORT: tcp_sent within 30 s (status 1 if not, with the
# connections still owing data on stdout)
tcp_wait_sent() {
    w=0
    while ! tcp_sent "$1" > /tmp/tcp-sent.out; do
        [ $w -lt 300 ] || { cat /tmp/tcp-sent.out; return 1; }
        usleep 100000; w=$((w + 1))
    done
}
# e2fsprogs' mke2fs (busybox has an applet of that name without -t ext4)
MKE2FS=/usr/sbin/mke2fs
[ -x $MKE2FS ] || MKE2FS=/sbin/mke2fs

TEST=$(sed -n 's/.*rigtest=\([^ ]*\).*/\1/p' /proc/cmdline)
# The scenario's guest part: /rig/scenarios/NAME/l2.sh defines t_main.
if [ -n "$TEST" ] && [ -f "/rig/scenarios/$TEST/l2.sh" ]; then
    dmesg -n 1 2> /dev/null   # kernel messages must not cut marker lines
    . "/rig/scenarios/$TEST/l2.sh"
    t_main
    echo "WISP-T-DONE $TEST"
fi

echo "WISP-READY"
read -r line
echo "WISP-ECHO <$line>"
echo "WISP-REBOOT"
reboot -f
echo "WISP-REBOOT-FAILED"
sleep 1000000
