# bench/guest-common.sh - the prologue of the L2 /init of bench/net-rig.sh
# and bench/fio-rig.sh (busybox sh, PID 1), installed by bench_l2
# (bench/lib-rig.sh) as /guest-common.sh: PATH, proc, sysfs, devtmpfs and
# a tmpfs on /tmp; the kernel's messages off the console and no echo of
# the lines L1 sends, so the console carries the init's markers only.
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
dmesg -n 1
stty -echo 2>/dev/null
