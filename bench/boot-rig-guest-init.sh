#!/bin/sh
# /init of the L2 guest in bench/boot-rig.sh: print the marker first thing,
# wait for one console line (sent by vmrun after it sampled the VMM's memory),
# then reboot (wisp: exit 0; QEMU: reboot=t + -no-reboot).
echo "WISP-BENCH-INIT"
read -r _line
/bin/busybox reboot -f
/bin/busybox sleep 1000000
