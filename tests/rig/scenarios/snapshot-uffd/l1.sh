# snapshot-file's flow (flow.sh) with the restores going through the Uffd
# backend: clone 1 from wisp-uffd (20 us a page, prefetching), whose last
# line must say it served faults; clone 2 from a wisp-uffd that serves
# 2 ms a page without prefetch and is killed with SIGKILL one second into
# the restore: wisp (--uffd-fallback) copies the rest in from the memory
# file and says so on its stderr (the console log); the guest's checks
# and e2fsck must not notice.
. /rig/scenarios/snapshot-file/flow-l1.sh
scenario_pre() {
    snapshot_flow 0 '
restore_pre() {
    rm -f $SNAPDIR/uffd.sock
    if [ $1 = 1 ]; then
        /bin/wisp-uffd --socket $SNAPDIR/uffd.sock --mem $SNAPDIR/vm.mem --delay-us 20 2> $SNAPDIR/uffd1.log &
    else
        /bin/wisp-uffd --socket $SNAPDIR/uffd.sock --mem $SNAPDIR/vm.mem --delay-us 2000 --no-prefetch 2> $SNAPDIR/uffd2.log &
    fi
    H=$!
    w=0
    while [ ! -S $SNAPDIR/uffd.sock ] && [ $w -lt 100 ]; do usleep 100000; w=$((w + 1)); done
}
restore_run() {
    /bin/wisp restore --snapshot $SNAPDIR/vm.state --mem $SNAPDIR/uffd.sock --mem-backend uffd --uffd-fallback $SNAPDIR/vm.mem < $SNAPDIR/in &
}
restore_mid() {
    if [ $1 = 2 ]; then usleep 1000000; kill -9 $H; fi
}
restore_post() {
    wait $H
    if [ $1 = 1 ]; then
        l=$(tail -n 1 $SNAPDIR/uffd1.log)
        case "$l" in *" faults served"*) say ok handler1 "$l" ;;
        *) say fail handler1 "wisp-uffd said: $(tr "\n" " " < $SNAPDIR/uffd1.log | cut -c1-300)" ;; esac
    fi
}'
}
scenario_post() {
    snapshot_flow_post boot-source drive machine start pause create killed \
        clone1 clone2 handler1
    if tr -d '\r' < "$log" | grep -q "uffd takeover done"; then
        C ok takeover2 "$(tr -d '\r' < "$log" | grep "uffd takeover done" | tail -n 1)"
    else C fail takeover2 "wisp never said it took over from the killed handler"; fi
    snapshot_flow_clean
}
