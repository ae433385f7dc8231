#!/bin/sh
# The snapshot scenarios' VMM command (snapshot-file, snapshot-uffd), run
# under vmrun so its output is the console log; snapshot_flow (flow-l1.sh)
# writes its settings to $1 and the scenario's restore hooks to $2.
#
# wisp --api-sock boots the guest through the API; when the guest is in
# the middle of its work (WISP-T-SNAP-NOW) the VM is paused and given a
# Full snapshot and the disk image copied as it was. With DIFF=1 the VM
# then runs one more second (the guest's writers go on) and takes a Diff
# snapshot, the image copied again; the unmerged Diff must be refused by
# wisp restore, and wisp snapshot-merge puts it onto a copy of the Full's
# memory file. wisp is killed with SIGKILL. Then two clones, one after the
# other, each from a fresh copy of the image as it was at its snapshot
# (clone 2 from the merged Diff with DIFF=1): `wisp restore` in a new
# process, told "restored" on its console, runs the guest's checks and
# ends with the guest's reboot (exit 0).
#
# Hooks (shell functions in $2; the defaults do nothing):
#   restore_pre N   before clone N starts (a page-fault handler)
#   restore_run N   starts wisp restore for clone N in the background,
#                   stdin from $SNAPDIR/in (default: the File backend on
#                   clone N's state and memory files)
#   restore_mid N   once clone N runs, before it is told "restored"
#   restore_post N  after clone N exited 0
#   configure       after the machine config, before InstanceStart (more
#                   devices through the API; snapshot-net-vsock)
#   snap_pre        once the guest said WISP-T-SNAP-NOW, before the pause
#   drive           gives the VM its disk (default: PUT /drives/d0 on
#                   $IMG; snapshot-oop-blk: a spawned wisp-blk)
# and CLONES, the clones to run (default "1 2").
. "$1"
S=$SNAPDIR/api.sock
# say, api, api_sock, count, until_n
# shellcheck source=tests/rig/l1-api.sh
. /rig/l1-api.sh
# clone N's state and memory file and disk image
state_of() { if [ "$DIFF" = 1 ] && [ "$1" = 2 ]; then echo $SNAPDIR/m1.state; else echo $SNAPDIR/vm.state; fi; }
mem_of() { if [ "$DIFF" = 1 ] && [ "$1" = 2 ]; then echo $SNAPDIR/merged.mem; else echo $SNAPDIR/vm.mem; fi; }
disk_of() { if [ "$DIFF" = 1 ] && [ "$1" = 2 ]; then echo $SNAPDIR/disk.diff; else echo $SNAPDIR/disk.snap; fi; }
# take_snapshot KEY PAUSE-KEY TYPE NAME DISK KIB-KEY: the VM paused
# (PAUSE-KEY), a TYPE snapshot into $SNAPDIR/NAME.state and NAME.mem (KEY),
# the disk image copied to $SNAPDIR/DISK; the values KEY-ms (the create
# request's time) and KIB-KEY (the memory file's KiB on disk)
take_snapshot() {
    api $2 -X PATCH http://localhost/vm -H 'Content-Type: application/json' -d '{"state": "Paused"}'
    t0=$(stamp -m)
    api $1 -X PUT http://localhost/snapshot/create -H 'Content-Type: application/json' \
        -d "{\"snapshot_type\": \"$3\", \"snapshot_path\": \"$SNAPDIR/$4.state\", \"mem_file_path\": \"$SNAPDIR/$4.mem\"}"
    t1=$(stamp -m)
    cp "$IMG" "$SNAPDIR/$5"
    say val $1-ms $((t1 - t0))
    say val $6 "$(du -k $SNAPDIR/$4.mem | cut -f1)"
}
restore_pre() { :; }
restore_run() { /bin/wisp restore --snapshot "$(state_of $1)" --mem "$(mem_of $1)" < $SNAPDIR/in & }
restore_mid() { :; }
restore_post() { :; }
configure() { :; }
snap_pre() { :; }
drive() {
    api drive -X PUT http://localhost/drives/d0 -H 'Content-Type: application/json' \
        -d "{\"drive_id\": \"d0\", \"path_on_host\": \"$IMG\", \"is_root_device\": false, \"is_read_only\": false}"
}
CLONES="1 2"
. "$2"

/bin/wisp --api-sock "$S" < /dev/null &
W=$!
api_sock
api boot-source -X PUT http://localhost/boot-source -H 'Content-Type: application/json' \
    -d "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off $TOKEN\"}"
drive
track=false
[ "$DIFF" = 1 ] && track=true
api machine -X PUT http://localhost/machine-config -H 'Content-Type: application/json' \
    -d "{\"vcpu_count\": $CPUS, \"mem_size_mib\": $MEM, \"track_dirty_pages\": $track}"
configure
api start -X PUT http://localhost/actions -H 'Content-Type: application/json' \
    -d '{"action_type": "InstanceStart"}'
until_n 1 WISP-T-SNAP-NOW || { say fail snap-now "the guest never got there"; kill -9 $W; exit 1; }
snap_pre
take_snapshot create pause Full vm disk.snap mem-file-kib
if [ "$DIFF" = 1 ]; then
    api resume -X PATCH http://localhost/vm -H 'Content-Type: application/json' -d '{"state": "Resumed"}'
    usleep 1000000
    take_snapshot diff pause2 Diff d1 disk.diff diff-file-kib
fi
kill -9 $W
wait $W
say ok killed "wisp pid $W killed with SIGKILL after the snapshot"
if [ "$DIFF" = 1 ]; then
    full=$(du -k $SNAPDIR/vm.mem | cut -f1); diff=$(du -k $SNAPDIR/d1.mem | cut -f1)
    if [ "$diff" -gt 0 ] && [ "$diff" -lt "$full" ]; then say ok diff-size "Diff $diff KiB on disk, Full $full KiB"
    else say fail diff-size "Diff $diff KiB on disk, Full $full KiB"; exit 1; fi
    /bin/wisp restore --snapshot $SNAPDIR/d1.state --mem $SNAPDIR/d1.mem < /dev/null > $SNAPDIR/unmerged.out 2>&1
    rc=$?
    if [ $rc = 1 ] && grep -q "is a Diff snapshot" $SNAPDIR/unmerged.out; then say ok unmerged-refused "exit 1: $(cut -c1-100 $SNAPDIR/unmerged.out)"
    else say fail unmerged-refused "exit $rc: $(tr '\n' ' ' < $SNAPDIR/unmerged.out | cut -c1-300)"; exit 1; fi
    cp $SNAPDIR/vm.mem $SNAPDIR/merged.mem
    if /bin/wisp snapshot-merge --snapshot $SNAPDIR/d1.state --mem $SNAPDIR/d1.mem \
        --base-mem $SNAPDIR/merged.mem --out-snapshot $SNAPDIR/m1.state > $SNAPDIR/merge.out 2>&1; then
        say ok merge "onto a copy of the Full's memory file"
    else say fail merge "$(tr '\n' ' ' < $SNAPDIR/merge.out | cut -c1-300)"; exit 1; fi
fi
for clone in $CLONES; do
    cp "$(disk_of $clone)" "$IMG"
    rm -f $SNAPDIR/in; mkfifo $SNAPDIR/in
    restore_pre $clone
    t0=$(stamp -m)
    restore_run $clone
    R=$!
    exec 4> $SNAPDIR/in
    restore_mid $clone
    usleep 500000
    echo restored >&4
    until_n $clone WISP-READY || { say fail clone$clone "no WISP-READY"; kill -9 $R; exit 1; }
    echo "$INPUT" >&4
    wait $R
    rc=$?
    exec 4>&-
    t1=$(stamp -m)
    if [ $rc = 0 ]; then say ok clone$clone "exit 0 after $((t1 - t0)) ms"
    else say fail clone$clone "exit $rc"; exit 1; fi
    restore_post $clone
done
exit 0
