# L1's half of groups-l2.sh: after wisp exited, each write the guest made
# to the other disk between attack groups (wisp's device first, then the
# server's, one 256 KiB slot each from slot 0) is in that disk's image.
hostile_groups_post() {
    i=0
    for t in in oop; do
        for g in regs chains indirect races flood; do
            cmp_val "$t-other-data-$g" "guest sha256 of 256 KiB written to vda after $t $g" \
                "$(gv "$t-other-sha-$g")" "vda's image at $((i * 256)) KiB" \
                "$(dd if="$1" bs=256k skip=$i count=1 2> /dev/null | sha)"
            i=$((i + 1))
        done
    done
}
