#!/bin/sh
# /init of the L2 guests in tests/rig/run.sh scenarios (busybox, PID 1).
# Prints WISP-* markers on the serial console that run.sh checks, echoes one
# line read from the console, then reboots (wisp must exit 0).
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "WISP-INIT-RAN"
echo "WISP-KERNEL $(uname -r)"
echo "WISP-CPUS $(grep -c '^processor' /proc/cpuinfo)"
echo "WISP-MEMTOTAL $(sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' /proc/meminfo)"
echo "WISP-CMDLINE $(cat /proc/cmdline)"
for m in /lib/modules/*.ko; do
    [ -e "$m" ] || continue
    if insmod "$m"; then echo "WISP-MODULE ok ${m##*/}"; else echo "WISP-MODULE failed ${m##*/}"; fi
done
stty -echo 2>/dev/null
echo "WISP-READY"
read -r line
echo "WISP-ECHO <$line>"
echo "WISP-REBOOT"
reboot -f
echo "WISP-REBOOT-FAILED"
sleep 1000000
