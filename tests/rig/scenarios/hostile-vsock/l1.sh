# wisp's virtio-vsock with Firecracker's host side: the guest's
# connections to host port 5300 reach tools/vsockt.c's echo server on
# ${VS_UDS}_5300, which the attacker's recoveries (and the rebound
# driver) use; nothing listens on port 5399. There is no out-of-process
# vsock server, so only wisp's own device is attacked. vda (16 MiB)
# keeps serving the guest's I/O between the attack groups; after wisp
# exited each write made there is in its image.
VS_DIR=/tmp/hvsock VS_UDS=/tmp/hvsock/v.sock
. /rig/scenarios/hostile-guest/groups-l1.sh
scenario_pre() {
    truncate -s 16M "$img"
    disk "$img"
    rm -rf $VS_DIR
    mkdir -p $VS_DIR
    vsockt serve unix ${VS_UDS}_5300 2> $VS_DIR/serve.err &
    serve_pid=$!
    VMM_EXTRA="$VMM_EXTRA --vsock cid=3,uds=$VS_UDS"
}
# shellcheck disable=SC2154 # the echo server scenario_pre started
scenario_post() {
    if kill "$serve_pid" 2> /dev/null; then C ok echo-server "ran to the end"
    else C fail echo-server "had died: $(tr '\n' ' ' < $VS_DIR/serve.err)"; fi
    rm -rf $VS_DIR
    # only wisp's own device: slots 0-4
    hostile_groups_post "$img" in
}
