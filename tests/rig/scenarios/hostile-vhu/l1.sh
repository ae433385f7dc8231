# Two disks: vda (16 MiB) keeps serving the guest's own I/O; the 8 MiB
# one is served by a wisp-blk that L1 started as a vhost-user-blk
# back-end (--vhost-user-blk): the rings the attacker writes are parsed
# in that process, and every reset goes through wisp's front-end
# (GET_VRING_BASE, then the rings set again). After wisp exited: the
# target's image matches what the guest read through the rebound
# virtio_blk driver, each write the guest made to vda between the attack
# groups is in vda's image, and the back-end is still alive.
. /rig/scenarios/hostile-guest/groups-l1.sh
scenario_pre() {
    truncate -s 16M "$img"
    head -c 8388608 /dev/urandom > "$img2"
    disk "$img"
    rm -f /tmp/hvu.sock
    wisp-blk --vhost-user /tmp/hvu.sock --disk "path=$img2" > /tmp/hvu.log 2>&1 &
    HVU_PID=$!
    if wait_sock /tmp/hvu.sock; then C ok backend-started "pid $HVU_PID"
    else C fail backend-started "no socket after 5 s: $(tail -n 2 /tmp/hvu.log)"; fi
    VMM_EXTRA="$VMM_EXTRA --vhost-user-blk socket=/tmp/hvu.sock,id=hvu0"
}
scenario_post() {
    # wisp-blk serves one front-end and exits 0 when it leaves: the one
    # connection must have lasted as long as wisp, with no loss and no
    # reconnection on wisp's side
    w=0
    while kill -0 "$HVU_PID" 2> /dev/null && [ $w -lt 25 ]; do usleep 200000; w=$((w + 1)); done
    kill "$HVU_PID" 2> /dev/null
    wait "$HVU_PID"
    hrc=$?
    lost=$(grep -c 'back-end lost' "$log")
    if [ "$hrc" = 0 ] && [ "$lost" = 0 ] && [ "$(grep -c 'serving a vhost-user' /tmp/hvu.log)" = 1 ] &&
        grep -q 'front-end done' /tmp/hvu.log; then
        C ok backend-alive "one connection, as long as wisp ran; wisp-blk exited 0"
    else
        C fail backend-alive "wisp-blk status $hrc, wisp lost the back-end $lost times: $(tail -n 3 /tmp/hvu.log | tr '\n' ' ')"
    fi
    sed "s/^/RIG-V $name wisp-blk: /" /tmp/hvu.log | tail -n 20
    cmp_val vhu-target-data "guest sha256 of the rebound 8 MiB disk (wisp-blk, vhost-user)" \
        "$(gv vhu-target-sha)" "sha256 of its image" "$(sha < "$img2")"
    hostile_groups_post "$img" vhu
}
