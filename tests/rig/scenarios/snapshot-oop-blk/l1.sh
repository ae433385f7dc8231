# snapshot-file's flow (flow.sh) with the disk served out of process: its
# "drive" hook spawns /bin/wisp-blk through PUT /ioreq-servers instead of
# PUT /drives, one clone. The snapshot asks wisp-blk for its device's
# state (it finishes its requests in flight and holds the device while
# the memory file is written); the restore spawns wisp-blk again from the
# state file and loads the state into it before the vCPUs run. The
# guest's background write must finish with the right hash, and e2fsck in
# L1 must find the file system clean; server-again checks that wisp-blk
# served both the snapshotted VM and the restored one.
. /rig/scenarios/snapshot-file/flow-l1.sh
scenario_pre() {
    [ -x /bin/wisp-blk ] || C fail wisp-blk "/bin/wisp-blk not in L1"
    snapshot_flow 0 '
CLONES=1
drive() {
    api drive -X PUT http://localhost/ioreq-servers/b0 -H "Content-Type: application/json" \
        -d "{\"spawn\": \"/bin/wisp-blk --disk path=$IMG\"}"
}
restore_post() {
    n=$(count "wisp-blk: serving window")
    if [ "$n" -ge 2 ]; then say ok server-again "wisp-blk served $n VMs: the snapshotted one and the restored one"
    else say fail server-again "wisp-blk served $n VMs (want the snapshotted one and the restored one)"; fi
}'
}
scenario_post() {
    snapshot_flow_post boot-source drive machine start pause create killed \
        clone1 server-again
    snapshot_flow_clean
}
