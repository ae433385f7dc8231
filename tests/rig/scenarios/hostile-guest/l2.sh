# The hostile-guest battery: tools/hostile.c (/bin/hostile) drives a
# disk's virtio-mmio window through /dev/mem after virtio_blk was unbound
# from it, one group of cases per run: first the 8 MiB disk (wisp's own
# virtio-blk, keys "in-..."), then the 12 MiB one (a spawned wisp-blk,
# "oop-..."). Between groups the 16 MiB disk must take a write and read
# it back, and the console carries every line. Afterwards virtio_blk is
# bound to the attacked device again and reads all of it (L1 compares
# the sha256 with the image).
HOSTILE_SECS=2
. /rig/scenarios/hostile-guest/groups-l2.sh
# attack SECTORS PREFIX FIRST_SLOT: the disk of that size
attack() {
    tgt='' other=''
    for b in /sys/block/vd*; do
        case "$(cat "$b/size" 2> /dev/null)" in
        "$1") tgt=${b##*/} ;;
        32768) other=${b##*/} ;;
        esac
    done
    p=$2-
    if [ -z "$tgt" ] || [ -z "$other" ]; then
        bad "${p}target" "no disk of $1 sectors or no 16 MiB disk: $(ls /sys/block)"; return
    fi
    vdev=$(readlink -f "/sys/block/$tgt/device")
    vname=${vdev##*/}
    pdev=$(basename "$(dirname "$vdev")")
    base=$(grep " : $pdev\$" /proc/iomem | head -n 1 | sed 's/^ *\([0-9a-f]*\)-.*/\1/')
    if [ -z "$base" ]; then bad "${p}target" "no /proc/iomem window for $pdev"; return; fi
    ok "${p}target" "$tgt = $vname on $pdev at 0x$base, other disk $other"
    if echo -n "$vname" > /sys/bus/virtio/drivers/virtio_blk/unbind && [ ! -e "/sys/block/$tgt" ]; then
        ok "${p}unbind" "virtio_blk unbound from $vname"
    else
        bad "${p}unbind" "could not unbind virtio_blk from $vname"; return
    fi
    hostile_groups "$p" "$base" "$3" "$other"
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
    if [ -n "$dev" ] && [ "$(cat "/sys/block/$dev/size")" = "$1" ]; then
        ok "${p}rebind" "virtio_blk bound to $vname again: $dev, $1 sectors"
        val "${p}target-sha" "$(dd if="/dev/$dev" bs=1M iflag=direct 2> /dev/null | sha)"
    else
        bad "${p}rebind" "no disk after binding $vname: $(last /tmp/err)"
    fi
}
t_main() {
    attack 16384 in 0
    attack 24576 oop 5
}
