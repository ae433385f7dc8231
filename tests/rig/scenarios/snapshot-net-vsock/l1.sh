# The snapshot flow of snapshot-file (flow.sh) with one clone, a tap and
# a vsock device configured through the API (its "configure" hook), and
# no file system on the disk. L1 is 10.77.0.1 on the tap wtap0 (as in
# net-tap), the guest 10.77.0.2. Before the snapshot the guest pings,
# fetches and sends 4 MiB (busybox nc -e at both ends), opens a vsock
# connection to L1's echo server (host port 5000) and listens on its
# port 6000, and L1 opens a connection to that port through wisp's
# socket (snap_pre). Both connections are held open (vsockt hold) across
# the snapshot: wisp's SIGKILL must end L1's (host-closed) and the
# restored device's TRANSPORT_RESET the guest's (g-old-reset). After the
# restore, new connections both ways (h2g-new from restore_mid, g2h-new
# from the guest), ping, and the same transfers again; L1 compares each
# transfer's checksum. restore_mid connects as soon as the restored
# wisp's socket exists, often before the device state is loaded; every
# host port the new connections get must be above the held one's
# (h2g-port): the guest may still hold the reset socket of that pair,
# and would answer a REQUEST on it with an RST.
. /rig/scenarios/snapshot-file/flow-l1.sh
# shellcheck disable=SC2034 # tap_up reads NET_L1
NET_TAP=wtap0 NET_L1=10.77.0.1 NET_MAC=02:00:00:00:77:02
VS_DIR=/tmp/vsock VS_UDS=/tmp/vsock/v.sock VS_CID=3
NET_BYTES=4194304
FLOW_FSCK=0

scenario_pre() {
    tap_up
    head -c $NET_BYTES /dev/urandom > /tmp/down.bin
    sha < /tmp/down.bin > /tmp/down.sha
    rm -f /tmp/up1.bin /tmp/up2.bin
    # one upload before the snapshot (5001), one after it (5004)
    nc_serve up1_pid -l 5001 /tmp/net-up1.sh 'exec cat > /tmp/up1.bin'
    nc_serve up2_pid -l 5004 /tmp/net-up2.sh 'exec cat > /tmp/up2.bin'
    nc_serve down_pid -ll 5002 /tmp/net-down.sh 'exec cat /tmp/down.bin'
    rm -rf $VS_DIR
    mkdir -p $VS_DIR
    vsockt serve unix ${VS_UDS}_5000 2> $VS_DIR/serve.err &
    serve_pid=$!
    snapshot_flow 0 "CLONES=1
configure() {
    api net -X PUT http://localhost/network-interfaces/eth0 -H 'Content-Type: application/json' \
        -d '{\"iface_id\": \"eth0\", \"host_dev_name\": \"$NET_TAP\", \"guest_mac\": \"$NET_MAC\"}'
    api vsock -X PUT http://localhost/vsock -H 'Content-Type: application/json' \
        -d '{\"guest_cid\": $VS_CID, \"uds_path\": \"$VS_UDS\"}'
}
# L1's connection to the guest's port 6000, held across the snapshot
snap_pre() {
    vsockt hold uds:$VS_UDS:6000 300 > $VS_DIR/hold.out 2>&1 &
    w=0
    while ! grep -q '^open' $VS_DIR/hold.out && [ \$w -lt 100 ]; do usleep 100000; w=\$((w + 1)); done
    if grep -q '^open' $VS_DIR/hold.out; then say ok h-hold-open
    else say fail h-hold-open \"\$(tr '\n' ' ' < $VS_DIR/hold.out)\"; exit 1; fi
}
# wisp was killed: L1's end of the held connection must have ended
restore_pre() {
    w=0
    while [ \$(wc -l < $VS_DIR/hold.out) -lt 2 ] && [ \$w -lt 100 ]; do usleep 100000; w=\$((w + 1)); done
    l=\$(sed -n 2p $VS_DIR/hold.out)
    case \"\$l\" in eof|reset:*) say ok host-closed \"\$l\" ;; *) say fail host-closed \"'\$l'\"; exit 1 ;; esac
    # as Firecracker: the socket of the dead VMM is the user's to remove
    rm -f $VS_UDS
}
# the restored VM runs (its guest waits for 'restored'): new
# connections from L1 to the guest's listener, which the reset kept
restore_mid() {
    w=0
    while [ ! -S $VS_UDS ] && [ \$w -lt 5000 ]; do usleep 2000; w=\$((w + 1)); done
    r=\$(vsockt echo uds:$VS_UDS:6000 65536 4 30 2>&1)
    case \"\$r\" in ok*) say ok h2g-new \"\$r\" ;; *) say fail h2g-new \"\$r\" ;; esac
    old=\$(sed -n 's/^open port //p' $VS_DIR/hold.out)
    new=\$(echo \"\$r\" | sed -n 's/.*, host ports \\([0-9]*\\)-.*/\\1/p')
    if [ -n \"\$old\" ] && [ -n \"\$new\" ] && [ \"\$new\" -gt \"\$old\" ]; then
        say ok h2g-port \"the new connections from host port \$new, the held one had \$old\"
    else say fail h2g-port \"new '\$new', held '\$old': \$r\"; fi
}"
}

# shellcheck disable=SC2154 # the listeners nc_serve started in scenario_pre
scenario_post() {
    snapshot_flow_post boot-source drive machine net vsock start h-hold-open \
        pause create killed host-closed h2g-new h2g-port clone1
    w=0
    while kill -0 "$up2_pid" 2> /dev/null && [ $w -lt 50 ]; do usleep 200000; w=$((w + 1)); done
    kill "$up1_pid" "$up2_pid" "$down_pid" "$serve_pid" 2> /dev/null
    cmp_val up1-sha "the guest's upload before the snapshot" "$(gv up-sha)" "L1's copy" "$(sha < /tmp/up1.bin 2> /dev/null)"
    cmp_val up2-sha "the guest's upload after the restore" "$(gv up-sha)" "L1's copy" "$(sha < /tmp/up2.bin 2> /dev/null)"
    cmp_val down1-sha "L1's file" "$(cat /tmp/down.sha)" "the guest's fetch before the snapshot" "$(gv down1-sha)"
    cmp_val down2-sha "L1's file" "$(cat /tmp/down.sha)" "the guest's fetch after the restore" "$(gv down2-sha)"
    rm -f /tmp/up1.bin /tmp/up2.bin /tmp/down.bin /tmp/down.sha /tmp/net-up1.sh /tmp/net-up2.sh /tmp/net-down.sh
    ip link delete $NET_TAP 2> /dev/null
    rm -rf $VS_DIR
    snapshot_flow_clean
}
