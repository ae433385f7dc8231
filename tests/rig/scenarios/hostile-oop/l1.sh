# hostile-guest's checks; the attacked disk served by a spawned wisp-blk.
. /rig/scenarios/hostile-guest/l1.sh
target_disk() {
    [ -x /bin/wisp-blk ] || C fail wisp-blk "/bin/wisp-blk not in L1"
    SPAWN="/bin/wisp-blk --disk path=$img2"
}
