#!/bin/sh
# /init of the initramfs that boots the Debian root filesystem
# (tests/rig/rootfs.sh) with a Debian stock kernel: loads the modules needed
# to mount root and for logind to see the power button (/lib/modules/*.ko
# in order, from tests/rig/stock-mods.sh),
# waits for the root device (bounded), mounts it and hands over to its
# /sbin/init (systemd) with switch_root. Kernel command line: root=DEV
# (default /dev/vda), rootfstype= (default ext4), ro (default rw),
# init= (default /sbin/init). Prints WISP-INITRAMFS-* markers; on any
# failure it says why and powers off, so the VMM ends instead of hanging.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
root=/dev/vda fstype=ext4 mode=rw init=/sbin/init
for a in $(cat /proc/cmdline); do
    case "$a" in
        root=*) root=${a#root=} ;;
        rootfstype=*) fstype=${a#rootfstype=} ;;
        ro) mode=ro ;;
        init=*) init=${a#init=} ;;
    esac
done
fail() {
    echo "WISP-INITRAMFS-FAIL $*"
    poweroff -f
    sleep 1000000
}
echo "WISP-INITRAMFS $(uname -r)"
for m in /lib/modules/*.ko; do
    [ -e "$m" ] || continue
    insmod "$m" || fail "insmod ${m##*/}"
done
n=0
while [ ! -b "$root" ]; do
    [ "$n" -ge 100 ] && fail "no block device $root after 10 s"
    usleep 100000; n=$((n + 1))
done
mkdir -p /newroot
mount -t "$fstype" -o "$mode" "$root" /newroot || fail "mount -t $fstype $root"
[ -x "/newroot$init" ] || [ -L "/newroot$init" ] || fail "no $init on $root"
echo "WISP-INITRAMFS-ROOT $root $fstype $mode"
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot "$init"
