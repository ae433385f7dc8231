# Three disks: vda (16 MiB) keeps serving the guest's own I/O; the 8 MiB
# one (wisp's own virtio-blk) and the 12 MiB one (a spawned wisp-blk: its
# own process and view of the rings) are handed to tools/hostile.c in
# turn. After wisp exited: each target's image matches what the guest
# read through the rebound virtio_blk driver, and each write the guest
# made to vda between the attack groups is in vda's image.
img3=/tmp/$name-3.img
. /rig/scenarios/hostile-guest/groups-l1.sh
scenario_pre() {
    truncate -s 16M "$img"
    head -c 8388608 /dev/urandom > "$img2"
    head -c 12582912 /dev/urandom > "$img3"
    disk "$img"
    disk "$img2"
    [ -x /bin/wisp-blk ] || C fail wisp-blk "/bin/wisp-blk not in L1"
    SPAWN="/bin/wisp-blk --disk path=$img3"
}
scenario_post() {
    cmp_val in-target-data "guest sha256 of the rebound 8 MiB disk (wisp)" "$(gv in-target-sha)" \
        "sha256 of its image" "$(sha < "$img2")"
    cmp_val oop-target-data "guest sha256 of the rebound 12 MiB disk (wisp-blk)" "$(gv oop-target-sha)" \
        "sha256 of its image" "$(sha < "$img3")"
    hostile_groups_post "$img"
    rm -f "$img3"
}
