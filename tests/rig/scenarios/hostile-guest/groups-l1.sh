# L1's half of groups-l2.sh: after wisp exited, each write the guest made
# to the other disk between attack groups is in that disk's image.
# hostile_groups_post IMG [PREFIX...]: the prefixes in the order the guest
# attacked (default: wisp's device, then the server's: in oop), one
# 256 KiB slot per group each from slot 0.
hostile_groups_post() {
    img_=$1
    shift
    [ $# -gt 0 ] || set -- in oop
    i=0
    for t in "$@"; do
        for g in regs chains indirect races flood; do
            cmp_val "$t-other-data-$g" "guest sha256 of 256 KiB written to vda after $t $g" \
                "$(gv "$t-other-sha-$g")" "vda's image at $((i * 256)) KiB" \
                "$(dd if="$img_" bs=256k skip=$i count=1 2> /dev/null | sha)"
            i=$((i + 1))
        done
    done
}
