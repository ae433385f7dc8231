# The hostile-guest battery: tools/hostile.c (/bin/hostile) drives the
# 24 MiB disk's virtio-mmio window through /dev/mem after virtio_blk was
# unbound from it, one group of cases per run; between groups the other
# disk (16 MiB) must still take a write and read it back, and the console
# carries every line. Afterwards virtio_blk is bound again and reads the
# whole target disk (L1 compares its sha256 with the image).
HOSTILE_SECS=3
t_main() {
    tgt='' other=''
    for b in /sys/block/vd*; do
        case "$(cat "$b/size" 2> /dev/null)" in
        49152) tgt=${b##*/} ;;
        32768) other=${b##*/} ;;
        esac
    done
    if [ -z "$tgt" ] || [ -z "$other" ]; then
        bad target "no 24 MiB and 16 MiB disks: $(ls /sys/block)"; return
    fi
    vdev=$(readlink -f "/sys/block/$tgt/device")
    vname=${vdev##*/}
    pdev=$(basename "$(dirname "$vdev")")
    base=$(grep " : $pdev\$" /proc/iomem | head -n 1 | sed 's/^ *\([0-9a-f]*\)-.*/\1/')
    if [ -z "$base" ]; then bad target "no /proc/iomem window for $pdev"; return; fi
    ok target "$tgt = $vname on $pdev at 0x$base, other disk $other"
    if echo -n "$vname" > /sys/bus/virtio/drivers/virtio_blk/unbind && [ ! -e "/sys/block/$tgt" ]; then
        ok unbind "virtio_blk unbound from $vname"
    else
        bad unbind "could not unbind virtio_blk from $vname"; return
    fi
    i=0
    for g in regs chains indirect races flood; do
        s0=$(cut -d' ' -f1 /proc/uptime)
        timeout 150 /bin/hostile "$base" "$g" "$HOSTILE_SECS"
        rc=$?
        s1=$(cut -d' ' -f1 /proc/uptime)
        case $rc in
        0) ok "prog-$g" "finished, every case passed ($s0 -> $s1 s)" ;;
        1) bad "prog-$g" "finished, some cases failed" ;;
        *) bad "prog-$g" "did not finish (exit $rc)" ;;
        esac
        # the other disk keeps working
        head -c 262144 /dev/urandom > /tmp/o
        want=$(sha < /tmp/o)
        val "other-sha-$g" "$want"
        if dd if=/tmp/o of="/dev/$other" bs=256k seek=$((i * 4)) oflag=direct 2> /tmp/err &&
            got=$(dd if="/dev/$other" bs=256k skip=$((i * 4)) count=1 iflag=direct 2> /tmp/err | sha) &&
            [ "$got" = "$want" ]; then
            ok "other-$g" "256 KiB written to $other and read back equal"
        else
            bad "other-$g" "I/O on $other after $g: $(last /tmp/err)"
        fi
        i=$((i + 1))
    done
    # Linux's driver takes the device back and reads all of it
    echo -n "$vname" > /sys/bus/virtio/drivers/virtio_blk/bind 2> /tmp/err
    n=0 dev=''
    while [ -z "$dev" ] && [ "$n" -lt 50 ]; do
        for b in /sys/block/vd*; do
            [ "$(readlink -f "$b/device")" = "$vdev" ] && dev=${b##*/}
        done
        [ -n "$dev" ] || usleep 100000
        n=$((n + 1))
    done
    if [ -n "$dev" ] && [ "$(cat "/sys/block/$dev/size")" = 49152 ]; then
        ok rebind "virtio_blk bound to $vname again: $dev, 49152 sectors"
        val target-sha "$(dd if="/dev/$dev" bs=1M iflag=direct 2> /dev/null | sha)"
    else
        bad rebind "no disk after binding $vname: $(last /tmp/err)"
    fi
}
