# L1 starts qemu-storage-daemon, kills it with SIGKILL while the guest's
# dd loop runs, checks that wisp survives, starts a new one on the same
# socket: wisp reconnects by itself (no re-probe in the guest).
. /rig/scenarios/vhu-blk-ext4/l1.sh
scenario_pre() {
    truncate -s 64M "$img"
    if qsd_start /tmp/qsd1.log; then C ok qsd-started "pid $QSD_PID"
    else C fail qsd-started "no socket after 5 s: $(tail -n 2 /tmp/qsd1.log)"; fi
    VMM_EXTRA="--vhost-user-blk socket=/tmp/qsd.sock,id=qsd0 -v"
}
scenario_during() {
    if ! wait_for WISP-T-KILL-NOW "$tmo"; then C fail killed "guest never printed WISP-T-KILL-NOW"; return; fi
    usleep 300000   # let the guest's dd loop get going
    kill -9 "$QSD_PID"
    wait "$QSD_PID" 2> /dev/null
    C ok killed "qemu-storage-daemon pid $QSD_PID killed with SIGKILL (guest in its dd loop)"
    if ! wait_for WISP-T-WAIT-SERVER 60; then
        C fail restarted "guest never asked for the back-end (WISP-T-WAIT-SERVER)"; return
    fi
    if kill -0 "$(pidof wisp)" 2> /dev/null; then C ok vmm-alive "wisp still running after its back-end died"
    else C fail vmm-alive "wisp is gone"; fi
    if qsd_start /tmp/qsd2.log; then C ok restarted "new qemu-storage-daemon pid $QSD_PID"
    else C fail restarted "no socket after 5 s: $(tail -n 2 /tmp/qsd2.log)"; fi
    to_guest "backend-restarted"
}
scenario_post() {
    kill "$QSD_PID" 2> /dev/null
    wait "$QSD_PID" 2> /dev/null
    # the guest wrote 1 MiB of random data at 40 MiB after the restart
    cmp_val dd-sha "guest sha256 of its dd after the restart" "$(gv dd-sha)" \
        "sha256 of the image at 40 MiB" "$(dd if="$img" bs=64k skip=640 count=16 2> /dev/null | sha)"
    if grep -q "reconnected" "$log"; then C ok reconnected "$(grep -m1 "reconnected" "$log" | tr -d '\r')"
    else C fail reconnected "wisp never logged a reconnection"; fi
    grep -E "vhost-user|in flight" "$log" | tr -d '\r' | sed "s/^/RIG-V $name wisp: /"
    sed "s/^/RIG-V $name qsd(1): /" /tmp/qsd1.log
    sed "s/^/RIG-V $name qsd(2): /" /tmp/qsd2.log 2> /dev/null
}
