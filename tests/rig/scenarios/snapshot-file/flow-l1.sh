# The L1 side of the snapshot scenarios' flow (flow.sh, whose header says
# what it does): sourced by their l1.sh, which calls
#   snapshot_flow DIFF HOOKS_TEXT
# from scenario_pre (DIFF 1: a Diff snapshot too) and
#   snapshot_flow_post KEY...
# from scenario_post, to turn the flow's RIG-FLOW lines into checks.
FLOW_DIR=/tmp/$name.flow
SNAPDIR=/tmp/$name.snap
snapshot_flow() {
    truncate -s 64M "$img"
    rm -rf "$SNAPDIR" "$FLOW_DIR"; mkdir -p "$SNAPDIR" "$FLOW_DIR"
    cat > "$FLOW_DIR/env" <<ENVEOF
SNAPDIR='$SNAPDIR'
LOG='$log'
KERNEL='$kernel'
INITRD='$initrd'
TOKEN='$token'
IMG='$img'
CPUS='$CPUS'
MEM='$MEM'
INPUT='$input'
DIFF='$1'
ENVEOF
    printf '%s\n' "$2" > "$FLOW_DIR/hooks"
    VMM_CMD="/bin/sh /rig/scenarios/snapshot-file/flow.sh $FLOW_DIR/env $FLOW_DIR/hooks"
}
snapshot_flow_post() {
    for k in "$@"; do
        l=$(tr -d '\r' < "$log" | awk -v k="$k" '$1 == "RIG-FLOW" && $3 == k' | tail -n 1)
        case "$l" in
        "RIG-FLOW ok $k"*) C ok "$k" "${l#RIG-FLOW ok $k}" ;;
        '') C fail "$k" "the flow never got there" ;;
        *) C fail "$k" "${l#RIG-FLOW fail $k}" ;;
        esac
    done
    tr -d '\r' < "$log" | sed -n 's/^RIG-FLOW val /RIG-V '"$name"' /p'
    # FLOW_FSCK=0: the guest keeps no file system on the disk
    [ "${FLOW_FSCK:-1}" = 1 ] || return 0
    if e2fsck -fn "$img" > /tmp/$name.fsck 2>&1; then C ok e2fsck "clean after the second clone"
    else C fail e2fsck "$(tail -n 3 /tmp/$name.fsck | tr '\n' ' ')"; fi
}
snapshot_flow_clean() {
    rm -rf "$SNAPDIR" "$FLOW_DIR"
}
