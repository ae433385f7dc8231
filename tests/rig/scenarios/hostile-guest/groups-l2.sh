# The attack groups the hostile scenarios run against one device, each
# followed by a 256 KiB write and read on the disk that is not attacked.
# virtio_windows ID: "BASE VNAME PDEV" of each virtio device of that ID
# (sysfs "device", e.g. 0x0001), sorted by window address: its MMIO
# window (hex), virtio device and platform device
virtio_windows() {
    for v in /sys/bus/virtio/devices/*; do
        [ "$(cat "$v/device" 2> /dev/null)" = "$1" ] || continue
        vd=$(readlink -f "$v")
        pdev=$(basename "$(dirname "$vd")")
        base=$(grep " : $pdev\$" /proc/iomem | head -n 1 | sed 's/^ *\([0-9a-f]*\)-.*/\1/')
        echo "$base ${vd##*/} $pdev"
    done | sort
}
# hostile_groups PREFIX BASE FIRST_SLOT OTHER_DISK: PREFIX names the keys,
# BASE is the device's window (hex), FIRST_SLOT the 256 KiB slot on the
# other disk the first group writes; the guest's sha of each write goes
# out as a VAL so L1 can compare it with the image (groups-l1.sh).
# hostile_run PREFIX BASE GROUP: one group, its result as PREFIXprog-GROUP
hostile_run() {
    s0=$(cut -d' ' -f1 /proc/uptime)
    HOSTILE_KEY_PREFIX=$1 timeout 150 /bin/hostile "$2" "$3" "$HOSTILE_SECS"
    rc=$?
    s1=$(cut -d' ' -f1 /proc/uptime)
    case $rc in
    0) ok "${1}prog-$3" "finished, every case passed ($s0 -> $s1 s)" ;;
    1) bad "${1}prog-$3" "finished, some cases failed" ;;
    *) bad "${1}prog-$3" "did not finish (exit $rc)" ;;
    esac
}
hostile_groups() {
    p=$1 i=$3
    for g in regs chains indirect races flood; do
        hostile_run "$p" "$2" "$g"
        head -c 262144 /dev/urandom > /tmp/o
        want=$(sha < /tmp/o)
        val "${p}other-sha-$g" "$want"
        if dd if=/tmp/o of="/dev/$4" bs=256k seek="$i" oflag=direct 2> /tmp/err &&
            got=$(dd if="/dev/$4" bs=256k skip="$i" count=1 iflag=direct 2> /tmp/err | sha) &&
            [ "$got" = "$want" ]; then
            ok "${p}other-$g" "256 KiB written to $4 and read back equal"
        else
            bad "${p}other-$g" "I/O on $4 after $g: $(last /tmp/err)"
        fi
        i=$((i + 1))
    done
}
