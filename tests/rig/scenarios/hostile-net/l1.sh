# Two network devices, each on a tap of its own inside L1: wisp's own
# (--net, tap wtap0, L1 10.78.0.1) and a spawned wisp-net's (wtap1,
# 10.79.0.1: a separate process with its own view of the rings). wisp
# places its own devices' windows before the servers', so the guest takes
# the lower window for wisp's. tools/ethsend.c puts a broadcast frame on
# each tap every 20 ms, so the receive queue the attacker sets up always
# has frames coming, and busybox nc answers "small" on port 5003 for the
# rebound devices' connections. vda (16 MiB) keeps serving the guest's
# I/O between the attack groups; after wisp exited each write made there
# is in its image.
. /rig/scenarios/hostile-guest/groups-l1.sh
scenario_pre() {
    truncate -s 16M "$img"
    disk "$img"
    [ -x /bin/wisp-net ] || C fail wisp-net "/bin/wisp-net not in L1"
    NET_TAP=wtap0 NET_L1=10.78.0.1 TAP_KEY=tap0-created tap_up
    NET_TAP=wtap1 NET_L1=10.79.0.1 TAP_KEY=tap1-created tap_up
    ethsend wtap0 20 2> /tmp/ethsend0.err &
    es0=$!
    ethsend wtap1 20 2> /tmp/ethsend1.err &
    es1=$!
    nc_serve small_pid -ll 5003 /tmp/net-small.sh 'echo small'
    VMM_EXTRA="$VMM_EXTRA --net tap=wtap0,mac=02:00:00:00:78:02"
    SPAWN="/bin/wisp-net --net tap=wtap1,mac=02:00:00:00:79:02"
}
# shellcheck disable=SC2154 # the senders and listener scenario_pre started
scenario_post() {
    if kill "$es0" "$es1" 2> /dev/null; then C ok ethsend "both senders ran to the end"
    else C fail ethsend "a sender had died: $(cat /tmp/ethsend0.err /tmp/ethsend1.err | tr '\n' ' ')"; fi
    kill "$small_pid" 2> /dev/null
    ip link delete wtap0 2> /dev/null
    ip link delete wtap1 2> /dev/null
    rm -f /tmp/net-small.sh /tmp/ethsend?.err
    hostile_groups_post "$img"
}
