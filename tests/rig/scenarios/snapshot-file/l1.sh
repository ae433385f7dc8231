# The flow of flow.sh with the File backend and a Diff: clone 1 restores
# the Full snapshot, clone 2 the Diff taken a second later, merged onto a
# copy of the Full's memory file. e2fsck checks the last clone's file
# system afterwards.
. /rig/scenarios/snapshot-file/flow-l1.sh
scenario_pre() {
    snapshot_flow 1 ''
}
scenario_post() {
    snapshot_flow_post boot-source drive machine start pause create resume \
        pause2 diff killed diff-size unmerged-refused merge clone1 clone2
    snapshot_flow_clean
}
