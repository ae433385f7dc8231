# blk-ext4's checks, the disk served by wisp-blk, spawned by wisp.
. /rig/scenarios/blk-ext4/l1.sh
scenario_pre() {
    truncate -s 64M "$img"
    [ -x /bin/wisp-blk ] || C fail wisp-blk "/bin/wisp-blk not in L1"
    SPAWN="/bin/wisp-blk --disk path=$img"
}
