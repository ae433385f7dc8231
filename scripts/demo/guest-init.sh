#!/bin/sh
# /init of the bundled demo guest (busybox). Prints what the guest sees;
# with wisp.interactive on the command line it then gives a shell on the
# console, and reboots (which ends wisp) when the shell exits.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo
echo "=== wisp demo guest: Linux $(uname -r) ==="
echo "cpus:     $(grep -c ^processor /proc/cpuinfo)"
echo "memory:   $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
echo "cmdline:  $(cat /proc/cmdline)"
echo "uptime:   $(cut -d' ' -f1 /proc/uptime) s at init"
if grep -qw wisp.interactive /proc/cmdline; then
	echo "Shell on the serial console; 'exit' reboots the guest and ends wisp."
	setsid cttyhack sh -l
else
	echo "(not interactive: rebooting)"
fi
reboot -f
sleep 60
