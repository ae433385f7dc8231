#!/bin/sh
# /init of the L2 guest of bench/snapshot-rig.sh (busybox, PID 1): say
# SNAP-READY, then answer every "ping" line on the console with "pong"
# (the first response the benchmark times, after a cold boot and after
# each restore) until "bye", which reboots (wisp exits 0).
echo "SNAP-READY"
while read -r line; do
    case "$line" in
    ping*) echo "pong" ;;
    bye*) break ;;
    esac
done
/bin/busybox reboot -f
/bin/busybox sleep 1000000
