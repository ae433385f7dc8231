# Two entropy devices: wisp's own (--rng) and a spawned wisp-rng (the
# multi-call wisp-blk binary under that name: a separate process with its
# own view of the rings). wisp places its own devices' windows before the
# servers', so the guest takes the lower window for wisp's. vda (16 MiB)
# keeps serving the guest's I/O between the attack groups; after wisp
# exited each write made there is in its image.
. /rig/scenarios/hostile-guest/groups-l1.sh
scenario_pre() {
    truncate -s 16M "$img"
    disk "$img"
    [ -x /bin/wisp-blk ] || C fail wisp-blk "/bin/wisp-blk not in L1"
    ln -sf /bin/wisp-blk /tmp/wisp-rng
    VMM_EXTRA="$VMM_EXTRA --rng"
    SPAWN=/tmp/wisp-rng
}
scenario_post() {
    hostile_groups_post "$img"
}
