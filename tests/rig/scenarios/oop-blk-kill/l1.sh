# L1 starts wisp-blk itself (wisp connects with --server), kills it with
# SIGKILL while the guest's dd loop runs, checks that wisp survives, starts
# a new wisp-blk on the same socket and tells the guest to re-attach.
scenario_pre() {
    truncate -s 64M "$img"
    rm -f /tmp/blk.sock
    wisp-blk --socket /tmp/blk.sock --disk "path=$img" > /tmp/blk1.log 2>&1 &
    BLK_PID=$!
    if wait_sock /tmp/blk.sock; then C ok server-started "pid $BLK_PID"
    else C fail server-started "no socket after 5 s: $(tail -n 2 /tmp/blk1.log)"; fi
    VMM_EXTRA="--server /tmp/blk.sock"
}
scenario_during() {
    if ! wait_for WISP-T-KILL-NOW "$tmo"; then C fail killed "guest never printed WISP-T-KILL-NOW"; return; fi
    usleep 300000   # let the guest's dd loop get going
    kill -9 "$BLK_PID"
    wait "$BLK_PID" 2> /dev/null
    C ok killed "wisp-blk pid $BLK_PID killed with SIGKILL (guest in its dd loop)"
    if ! wait_for WISP-T-WAIT-SERVER 60; then
        C fail restarted "guest never asked for the server (WISP-T-WAIT-SERVER)"; return
    fi
    if kill -0 "$(pidof wisp)" 2> /dev/null; then C ok vmm-alive "wisp still running after its server died"
    else C fail vmm-alive "wisp is gone"; fi
    wisp-blk --socket /tmp/blk.sock --disk "path=$img" > /tmp/blk2.log 2>&1 &
    BLK_PID=$!
    if wait_sock /tmp/blk.sock; then C ok restarted "new wisp-blk pid $BLK_PID"
    else C fail restarted "no socket after 5 s: $(tail -n 2 /tmp/blk2.log)"; fi
    usleep 500000
    to_guest "server-restarted"
}
scenario_post() {
    cmp_val image-a "expected /A.txt" "file A from $name" "debugfs cat of the image" "$(debugfs -R 'cat /A.txt' "$img" 2> /dev/null)"
    # the restarted server exits when wisp goes away
    w=0
    while kill -0 "$BLK_PID" 2> /dev/null && [ $w -lt 25 ]; do usleep 200000; w=$((w + 1)); done
    if kill -0 "$BLK_PID" 2> /dev/null; then
        C fail server-exit "restarted wisp-blk still running 5 s after wisp exited"
        kill -9 "$BLK_PID"
    else
        C ok server-exit
    fi
    sed "s/^/RIG-V $name wisp-blk(1): /" /tmp/blk1.log
    sed "s/^/RIG-V $name wisp-blk(2): /" /tmp/blk2.log 2> /dev/null
}
