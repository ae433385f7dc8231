#!/bin/sh
# /init of the L2 guest of bench/async-pf-rig.sh (busybox, PID 1): fill a
# buffer, start a counter, stop at APF-SNAP-NOW until L1 has snapshotted,
# killed and restored the VM and says "go" on the console; then touch the
# buffer and report the counter's progress and the HYP interrupts (the
# async PF "page ready" vector).
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
MIB=$(sed -n 's/.*apf_mib=\([0-9]*\).*/\1/p' /proc/cmdline)
hyp() { awk '$1 == "HYP:" {print $2}' /proc/interrupts; }
echo "APF-CMDLINE $(cat /proc/cmdline)"
echo "APF-DMESG $(dmesg | grep -i 'async' | tr '\n' ' ' | cut -c1-300)"
/bin/apf-touch count /tmp/cnt &
/bin/apf-touch fill "${MIB:-32}" /tmp/cnt /tmp/go > /tmp/a.out &
A=$!
while ! grep -q APF-FILLED /tmp/a.out 2> /dev/null; do usleep 100000; done
sleep 2   # the toucher's baseline second
echo "APF-SNAP-NOW"
read -r line
echo "APF-GOT $line"
h0=$(hyp)
touch /tmp/go
wait $A
echo "APF-EXIT $?"
h1=$(hyp)
cat /tmp/a.out
echo "APF-HYP before=$h0 after=$h1 delta=$((h1 - h0))"
echo "APF-DONE"
reboot -f
