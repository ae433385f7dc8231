# The attacked console is served by a wisp-console (the multi-call
# wisp-blk under that name) that L1 starts on a socket and wisp attaches
# with --server: its output goes to /tmp/hc.out, not into the log the
# results are read from, and its input is a FIFO a loop here writes
# "WISP-HCRX" into every 20 ms, so the receive queue always has input
# coming. (wisp's own virtio-console is the guest's hvc0 on wisp's stdio,
# the very log: the same device code, not attacked here.) The guest's
# console stays the 8250. After wisp exited, every marker line the
# attacker's recoveries wrote ("WISP-HC-TX RUN SEQ", one run per group,
# its count in a VAL) must be in the output in order, and so must the
# line the rebound driver wrote to /dev/hvc0. vda (16 MiB) keeps serving
# the guest's I/O between the attack groups.
HC=/tmp/hc
. /rig/scenarios/hostile-guest/groups-l1.sh
scenario_pre() {
    truncate -s 16M "$img"
    disk "$img"
    [ -x /bin/wisp-blk ] || C fail wisp-blk "/bin/wisp-blk not in L1"
    rm -rf $HC
    mkdir -p $HC
    ln -sf /bin/wisp-blk $HC/wisp-console
    mkfifo $HC/in
    (while :; do echo WISP-HCRX; usleep 20000; done) > $HC/in 2> /dev/null &
    hc_writer=$!
    $HC/wisp-console --socket $HC/sock < $HC/in > $HC/out 2> $HC/err &
    hc_pid=$!
    w=0
    while [ ! -S $HC/sock ] && [ $w -lt 50 ]; do usleep 100000; w=$((w + 1)); done
    if [ -S $HC/sock ]; then C ok server-up "wisp-console listening on $HC/sock"
    else C fail server-up "no socket after 5 s: $(tr '\n' ' ' < $HC/err)"; fi
    VMM_EXTRA="$VMM_EXTRA --server $HC/sock"
}
# A failed oop-hvc0-in makes wisp-console dump its device's state
# (SIGUSR1) while the guest still waits, for scenario_post to report.
# shellcheck disable=SC2154 # vpid is l1-init.sh's, hc_pid scenario_pre's
scenario_during() {
    (while kill -0 "$vpid" 2> /dev/null; do
        if grep -aq 'WISP-T-FAIL oop-hvc0-in' "$log"; then
            kill -USR1 "$hc_pid"
            break
        fi
        usleep 500000
    done) &
}
# shellcheck disable=SC2154 # the writer and the server scenario_pre started
scenario_post() {
    w=0
    while kill -0 "$hc_pid" 2> /dev/null && [ $w -lt 50 ]; do usleep 100000; w=$((w + 1)); done
    if kill -0 "$hc_pid" 2> /dev/null; then
        C fail server-exit "wisp-console still running 5 s after wisp exited"
        kill "$hc_pid"
    else
        C ok server-exit "wisp-console exited after wisp did"
    fi
    kill "$hc_writer" 2> /dev/null
    i=0
    for g in regs chains indirect races flood; do
        v=$(gv "oop-console-tx-$g")
        run=${v% *} n=${v##* }
        got=$(grep -ao "WISP-HC-TX $run [0-9]*" $HC/out | cut -d' ' -f3 | tr '\n' ' ')
        want=$(seq 1 "${n:-0}" | tr '\n' ' ')
        if [ -n "$v" ] && [ "${n:-0}" -gt 0 ] && [ "$got" = "$want" ]; then
            C ok "oop-console-out-$g" "markers 1..$n of $run in wisp-console's output, in order"
        else
            C fail "oop-console-out-$g" "VAL '$v': markers found '$got'"
        fi
        cmp_val "oop-other-data-$g" "guest sha256 of 256 KiB written to vda after oop $g" \
            "$(gv "oop-other-sha-$g")" "vda's image at $((i * 256)) KiB" \
            "$(dd if="$img" bs=256k skip=$i count=1 2> /dev/null | sha)"
        i=$((i + 1))
    done
    line=$(gv oop-hvc0-line)
    if [ -n "$line" ] && grep -aq "$line" $HC/out; then C ok hvc0-out "'$line' in wisp-console's output"
    else C fail hvc0-out "the guest's line '$line' is not in wisp-console's output"; fi
    C ok hc-out-size "$(wc -c < $HC/out) bytes of output"
    # wisp-console's lost-interrupt recovery (servers/wisp-dev.c) says so
    # once on its stderr: reported, since whether an L1 loses an edge is
    # not the scenario's to decide
    C ok hc-irq-watch "interrupt re-raised by wisp-console: $(grep -c 'raised it again' $HC/err) time(s)"
    # its byte counts at the end (src/servers/wisp-dev.c, report_console)
    C ok hc-bytes "$(grep -a ': input: ' $HC/err | tail -n 1)"
    grep -a 'virtio-console: \(at 0x\|q[01]:\|I/O thread\)' $HC/err | while read -r l; do
        C ok hc-dump "$l"
    done
    rm -rf $HC
}
