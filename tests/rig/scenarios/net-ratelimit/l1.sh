# The VMM command is run.sh (next to this file), two boots of the guest
# one after the other on the tap wtap0 (L1 10.77.0.1, the guest
# 10.77.0.2, as in net-tap):
#   1. wisp run --net tap=wtap0,tx-rate=2097152,rx-rate=2097152: the
#      guest sends 16 MiB to L1 (port 5001) and fetches 16 MiB (5002);
#   2. wisp --api-sock, the interface PUT with Firecracker's
#      rx_rate_limiter / tx_rate_limiter at 2 MiB/s; once the guest is up
#      a PATCH sets tx to 4 MiB/s and rx to 1 MiB/s, then the guest sends
#      28 MiB (5011) and fetches 7 MiB (5012).
# Each bucket holds one second and starts full (also after the PATCH),
# so a transfer of N bytes at R bytes/s takes (N - R) / R: 7 s, 7 s,
# 6 s, 6 s, each of which must be within 10% (uploads timed by L1's
# receiver, from its accept to the sender's EOF; fetches by the guest,
# after L1 said it has the upload whole).
# Unlimited, each takes well under a second here.
# snapshot_flow_post turns run.sh's RIG-FLOW lines into checks
. /rig/scenarios/snapshot-file/flow-l1.sh
FLOW_FSCK=0
# shellcheck disable=SC2034 # tap_up reads NET_L1
NET_TAP=wtap0 NET_L1=10.77.0.1 NET_MAC=02:00:00:00:77:02
RL_DIR=/tmp/net-ratelimit

# recv_serve PORT: L1's receiver of an upload on PORT, which times itself
# (ms); its pid in pid
recv_serve() {
    nc_serve pid -l $1 $RL_DIR/recv$1.sh "t0=\$(stamp -m)
cat > $RL_DIR/up$1.bin
t1=\$(stamp -m)
echo \$((t1 - t0)) > $RL_DIR/up$1.ms"
}

# shellcheck disable=SC2154 # nc_serve sets pid
scenario_pre() {
    tap_up
    rm -rf $RL_DIR; mkdir -p $RL_DIR
    head -c 16777216 /dev/urandom > $RL_DIR/down5002.bin
    head -c 7340032 /dev/urandom > $RL_DIR/down5012.bin
    pids=
    for p in 5001 5011; do
        recv_serve $p
        pids="$pids $pid"
    done
    # how many uploads L1 has received whole: the guest waits for its
    # own before it fetches (or reboots), so the one it sent last does
    # not share the link with the next transfer
    nc_serve pid -ll 5020 $RL_DIR/status.sh "ls $RL_DIR | grep -c \"ms\$\""
    pids="$pids $pid"
    for p in 5002 5012; do
        nc_serve pid -l $p $RL_DIR/send$p.sh "exec cat $RL_DIR/down$p.bin"
        pids="$pids $pid"
    done
    cat > $RL_DIR/env <<ENVEOF
D='$RL_DIR'
LOG='$log'
KERNEL='$kernel'
INITRD='$initrd'
TOKEN='$token'
CPUS='$CPUS'
MEM='$MEM'
INPUT='$input'
TAP='$NET_TAP'
MAC='$NET_MAC'
ENVEOF
    VMM_CMD="/bin/sh /rig/scenarios/net-ratelimit/run.sh $RL_DIR/env"
}

# up_check PHASE PORT BYTES RATE: L1's receiver's time against (BYTES - RATE) / RATE
up_check() {
    w=0
    while [ ! -s $RL_DIR/up$2.ms ] && [ $w -lt 50 ]; do usleep 200000; w=$((w + 1)); done
    ms=$(cat $RL_DIR/up$2.ms 2> /dev/null)
    got=$(wc -c < $RL_DIR/up$2.bin 2> /dev/null)
    want=$(( ($3 - $4) * 1000 / $4 ))
    if [ -n "$ms" ] && [ "$got" = "$3" ] && [ $ms -ge $((want * 9 / 10)) ] && [ $ms -le $((want * 11 / 10)) ]; then
        C ok $1-up-rate "$got bytes in $ms ms (want $want ms +-10%): $(awk -v b="$3" -v r="$4" -v t="$ms" 'BEGIN { printf "%.3f", (b - r) / 1048576 / (t / 1000) }') MiB/s after the bucket (setting $(($4 / 1048576)))"
    else
        C fail $1-up-rate "'$got' bytes in '$ms' ms, want $3 bytes in $want ms +-10%"
    fi
    cmp_val $1-up-sha "the guest's upload" "$(gv $1-up-sha)" "L1's copy" "$(sha < $RL_DIR/up$2.bin 2> /dev/null)"
}

scenario_post() {
    snapshot_flow_post api-socket boot-source machine net start patch
    up_check cli 5001 16777216 2097152
    up_check api 5011 29360128 4194304
    # shellcheck disable=SC2086 # a list of pids
    kill $pids 2> /dev/null
    ip link delete $NET_TAP 2> /dev/null
    rm -rf $RL_DIR
}
