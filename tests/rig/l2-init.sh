#!/bin/sh
# /init of the L2 guests in tests/rig/run.sh scenarios (busybox, PID 1).
# Prints WISP-* markers on the console that run.sh checks, runs the device
# test named by rigtest=NAME on the kernel command line (if any), echoes one
# line read from the console, then reboots (wisp must exit 0).
#
# Device tests report one line per check:
#   WISP-T-OK KEY [detail]   WISP-T-FAIL KEY detail   WISP-T-VAL KEY value
# (L1 compares the values against the images; run.sh knows which KEYs each
# scenario needs). The console is /dev/console: ttyS0, or hvc0 with
# wisp --console virtio.
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

ok() { echo "WISP-T-OK $*"; }
bad() { echo "WISP-T-FAIL $*"; }
val() { echo "WISP-T-VAL $*"; }
sha() { sha256sum | cut -c1-64; }
last() { tail -n 1 "$1" 2>/dev/null | tr -d '\r'; }
# e2fsprogs' mke2fs (busybox has an applet of that name without -t ext4)
MKE2FS=/usr/sbin/mke2fs
[ -x $MKE2FS ] || MKE2FS=/sbin/mke2fs

# mkfs.ext4 /dev/vda, write files, unmount: L1 reads them back with debugfs.
t_ext4() {
    mkdir -p /mnt
    if $MKE2FS -q -F -t ext4 /dev/vda > /tmp/mkfs.out 2>&1; then ok mkfs
    else bad mkfs "$(last /tmp/mkfs.out)"; return; fi
    if mount -t ext4 /dev/vda /mnt 2> /tmp/err; then ok mount
    else bad mount "$(last /tmp/err)"; return; fi
    echo "hello from $TEST" > /mnt/hello.txt &&
        mkdir /mnt/dir && seq 1 20000 > /mnt/dir/seq.txt &&
        head -c 1048576 /dev/urandom > /mnt/dir/random.bin 2> /tmp/err &&
        sync && ok write || bad write "$(last /tmp/err)"
    val random-sha "$(sha < /mnt/dir/random.bin)"
    if umount /mnt 2> /tmp/err; then ok umount; else bad umount "$(last /tmp/err)"; fi
}

# 4 MiB of random data to the raw disk (O_DIRECT), read back (O_DIRECT).
t_dd() {
    head -c 4194304 /dev/urandom > /tmp/r
    w=$(sha < /tmp/r)
    val written-sha "$w"
    if dd if=/tmp/r of=/dev/vda bs=1M oflag=direct 2> /tmp/err; then ok write
    else bad write "$(last /tmp/err)"; fi
    r=$(dd if=/dev/vda bs=1M count=4 iflag=direct 2> /dev/null | sha)
    val readback-sha "$r"
    if [ "$r" = "$w" ]; then ok readback; else bad readback "read back $r, wrote $w"; fi
}

t_ro() {
    ro=$(cat /sys/block/vda/ro 2> /dev/null)
    if [ "$ro" = 1 ]; then ok ro-flag; else bad ro-flag "/sys/block/vda/ro is '$ro'"; fi
    if dd if=/dev/zero of=/dev/vda bs=4096 count=1 oflag=direct 2> /tmp/err; then
        bad write-refused "dd to /dev/vda succeeded"
    else
        ok write-refused "$(head -n 1 /tmp/err | tr -d "\r")"
    fi
    if dd if=/dev/vda of=/tmp/r bs=1M count=4 iflag=direct 2> /tmp/err; then ok read
    else bad read "$(last /tmp/err)"; fi
    val read-sha "$(sha < /tmp/r)"
}

t_two() {
    val vda-size "$(cat /sys/block/vda/size 2> /dev/null)"
    val vdb-size "$(cat /sys/block/vdb/size 2> /dev/null)"
    head -c 1048576 /dev/urandom > /tmp/r
    val vdb-sha "$(sha < /tmp/r)"
    if dd if=/tmp/r of=/dev/vdb bs=1M seek=1 oflag=direct 2> /tmp/err; then ok write-vdb
    else bad write-vdb "$(last /tmp/err)"; fi
}

t_rng() {
    if [ -c /dev/hwrng ]; then ok hwrng-dev; else bad hwrng-dev "no /dev/hwrng"; fi
    cur=$(cat /sys/class/misc/hw_random/rng_current 2> /dev/null)
    avail=$(cat /sys/class/misc/hw_random/rng_available 2> /dev/null)
    val rng-current "$cur"
    case "$cur $avail" in
        *virtio*) ok rng-virtio "current '$cur' available '$avail'" ;;
        *) bad rng-virtio "rng_current '$cur' rng_available '$avail'" ;;
    esac
    head -c 64 /dev/hwrng > /tmp/rng 2> /tmp/err
    n=$(wc -c < /tmp/rng)
    distinct=$(od -An -v -tx1 /tmp/rng | tr -s ' ' '\n' | grep . | sort -u | wc -l)
    val rng-bytes "$n distinct=$distinct"
    if [ "$n" -ge 64 ] && [ "$distinct" -gt 1 ]; then ok rng-read "$n bytes, $distinct distinct values"
    else bad rng-read "$n bytes, $distinct distinct values ($(last /tmp/err))"; fi
}

t_vconsole() {
    active=$(cat /sys/class/tty/console/active 2> /dev/null)
    case " $active " in
        *" hvc0 "*) ok console-hvc0 "active consoles: $active" ;;
        *) bad console-hvc0 "active consoles: '$active'" ;;
    esac
}

# The disk's server is killed under I/O and restarted by L1 (oop-blk-kill).
t_kill() {
    mkdir -p /mnt
    # the file system takes the first 32 MiB; the I/O loop writes at 48 MiB
    if $MKE2FS -q -F -t ext4 /dev/vda 32M > /tmp/mkfs.out 2>&1; then ok mkfs
    else bad mkfs "$(last /tmp/mkfs.out)"; return; fi
    mount -t ext4 /dev/vda /mnt 2> /tmp/err || { bad a-written "mount: $(last /tmp/err)"; return; }
    echo "file A from $TEST" > /mnt/A.txt && sync && umount /mnt 2> /tmp/err &&
        ok a-written || { bad a-written "$(last /tmp/err)"; return; }
    dev=$(readlink -f /sys/block/vda/device); dev=${dev##*/}
    val virtio-dev "$dev"
    echo "WISP-T-KILL-NOW"
    i=0 failed=0
    while [ $i -lt 1000 ]; do
        dd if=/dev/zero of=/dev/vda bs=64k count=16 seek=768 oflag=direct 2> /tmp/dd.err ||
            { failed=1; break; }
        i=$((i + 1))
    done
    if [ $failed = 1 ]; then ok io-error "dd failed after $i good rounds: $(head -n 1 /tmp/dd.err | tr -d "\r")"
    else bad io-error "1000 rounds of dd to /dev/vda never failed"; fi
    val dmesg-io-errors "$(dmesg | grep -c "I/O error")"
    dmesg | grep "I/O error" | tail -n 3 | sed 's/^/WISP-T-DMESG /'
    ok alive "guest still runs after the server died"
    echo "WISP-T-WAIT-SERVER"
    read -r line
    val l1-says "$line"
    sleep 1
    n=0 size=0
    while [ $n -lt 20 ]; do
        n=$((n + 1))
        echo "$dev" > /sys/bus/virtio/drivers/virtio_blk/unbind 2> /dev/null
        echo "$dev" > /sys/bus/virtio/drivers/virtio_blk/bind 2> /tmp/err
        size=$(cat /sys/block/vda/size 2> /dev/null)
        [ "${size:-0}" -gt 0 ] && break
        sleep 1
    done
    if [ "${size:-0}" -gt 0 ]; then ok reattached "vda has $size sectors after $n re-probe(s)"
    else bad reattached "vda size '${size}' after $n re-probes ($(last /tmp/err))"; return; fi
    if mount -t ext4 /dev/vda /mnt 2> /tmp/err; then
        a=$(cat /mnt/A.txt 2> /dev/null)
        if [ "$a" = "file A from $TEST" ]; then ok a-intact; else bad a-intact "A.txt reads '$a'"; fi
        umount /mnt
    else
        bad a-intact "mount after re-attach: $(last /tmp/err)"
    fi
}

TEST=$(sed -n 's/.*rigtest=\([^ ]*\).*/\1/p' /proc/cmdline)
case "$TEST" in
    blk-ext4|oop-blk-ext4|blk-*|oop-*|rng|vconsole) dmesg -n 1 2> /dev/null ;;
esac
case "$TEST" in
    blk-ext4|oop-blk-ext4) t_ext4 ;;
    blk-dd) t_dd ;;
    blk-ro) t_ro ;;
    blk-two) t_two ;;
    rng) t_rng ;;
    vconsole) t_vconsole ;;
    oop-blk-kill) t_kill ;;
esac
[ -n "$TEST" ] && echo "WISP-T-DONE $TEST"

echo "WISP-READY"
read -r line
echo "WISP-ECHO <$line>"
echo "WISP-REBOOT"
reboot -f
echo "WISP-REBOOT-FAILED"
sleep 1000000
