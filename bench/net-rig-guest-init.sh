#!/bin/sh
# /init of the L2 guest in bench/net-rig.sh (busybox + iperf3, PID 1).
# Brings eth0 (virtio-net) up as 10.77.0.2/24, starts an iperf3 server on
# that address and prints "WISP-NET-READY <driver> <features>"; L1 then
# drives every job from its side (iperf3 client, ping), asking on the
# console ("irq JOB WHEN") for the device's interrupt count around each
# one (answer: "WISP-NET-IRQ JOB WHEN N"). A "quit" line ends the guest (wisp exits; QEMU: reboot=t + -no-reboot).
# shellcheck source=bench/guest-common.sh
. /guest-common.sh   # PATH, mounts, a quiet console
echo "WISP-NET-INIT $(cut -d' ' -f1 /proc/uptime)"
n=0
while [ ! -e /sys/class/net/eth0 ] && [ "$n" -lt 100 ]; do usleep 100000; n=$((n + 1)); done
drv=$(basename "$(readlink /sys/class/net/eth0/device/driver 2>/dev/null)")
ip link set lo up
if ! ip link set eth0 up || ! ip addr add 10.77.0.2/24 dev eth0; then
    echo "WISP-NET-ERR eth0 setup failed (driver '$drv')"
    reboot -f
fi
# -B: an IPv4 socket (the rig's L2 kernel has no IPv6); one test at a time
iperf3 -s -B 10.77.0.2 > /tmp/iperf3.log 2>&1 &
n=0
while ! netstat -ltn 2>/dev/null | grep -q ':5201 ' && [ "$n" -lt 100 ]; do
    usleep 100000
    n=$((n + 1))
done
if ! netstat -ltn 2>/dev/null | grep -q ':5201 '; then
    echo "WISP-NET-ERR iperf3 -s not listening: $(tail -n 3 /tmp/iperf3.log | tr '\n' ' ')"
    reboot -f
fi
echo "WISP-NET-READY $drv $(cat /sys/class/net/eth0/device/features 2>/dev/null)"
echo "WISP-NET-CMDLINE $(cat /proc/cmdline)"
# the virtio-mmio device's interrupt line, "virtioN" in /proc/interrupts
vdev=$(basename "$(readlink /sys/class/net/eth0/device)")
while read -r cmd job when; do
    case "$cmd" in
    quit) break ;;
    # "irq JOB WHEN": the device's interrupts so far, summed over the CPUs
    irq) echo "WISP-NET-IRQ $job $when $(awk -v d="$vdev" '$NF == d {
            s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; print s }' /proc/interrupts)" ;;
    esac
done
s=/sys/class/net/eth0/statistics
echo "WISP-NET-STATS rx $(cat $s/rx_packets) tx $(cat $s/tx_packets) rx_err $(cat $s/rx_errors) rx_drop $(cat $s/rx_dropped) tx_err $(cat $s/tx_errors)"
grep -i error /tmp/iperf3.log | head -n 3 | sed 's/^/WISP-NET-IPERF3 /'
echo "WISP-NET-DONE"
reboot -f
sleep 1000000
