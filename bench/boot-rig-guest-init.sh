#!/bin/sh
# /init of the L2 guest in bench/boot-rig.sh: print the marker first thing,
# wait for one console line (sent by vmrun after it sampled the VMM's memory),
# then reboot (wisp: exit 0; QEMU: reboot=t + -no-reboot).
echo "WISP-BENCH-INIT"
# The guest's own view: its uptime when init ran, and the boot lines that
# tell where time went (CPU model, TSC-deadline timer, the calibration
# between "Calibrating delay loop" and "smpboot: CPU0").
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc 2>/dev/null
read -r up _ < /proc/uptime
echo "WISP-BENCH-UPTIME $up"
# With bench.dmesg on the command line (boot-rig.sh --dmesg): all of it,
# for a side-by-side of the two VMMs' boots (after the uptime was read).
pat='TSC deadline|Calibrating delay|smpboot: CPU0|smpboot: Total|tsc: Detected|APIC timer'
/bin/busybox grep -q 'bench\.dmesg' /proc/cmdline && pat='.'
/bin/busybox dmesg | /bin/busybox grep -E "$pat" |
    /bin/busybox sed 's/^/WISP-BENCH-DMESG /'
read -r _line
/bin/busybox reboot -f
/bin/busybox sleep 1000000
