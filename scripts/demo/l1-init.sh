#!/bin/sh
# /init of the L1 VM for scripts/demo.sh on PVM hosts: load kvm-amd, run
# wisp with the demo guest on L1's console, power off when wisp ends.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in /lib/rig-modules/*.ko; do insmod "$m" || echo "demo: insmod $m failed"; done
. /demo/args
echo "demo (L1): wisp run --kernel /demo/bzImage --initrd /demo/initrd.gz $WISP_ARGS"
/bin/wisp run --kernel /demo/bzImage --initrd /demo/initrd.gz $WISP_ARGS \
	</dev/console >/dev/console 2>&1
echo "demo (L1): wisp exited with status $?"
poweroff -f
sleep 1000000
