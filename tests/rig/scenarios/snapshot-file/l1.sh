# The VMM command is a flow script (written here, run under vmrun so its
# output is the console log): wisp --api-sock boots the guest through the
# API; when the guest is in the middle of its work (WISP-T-SNAP-NOW) the
# VM is paused and snapshotted, the disk image copied as it was, and wisp
# killed with SIGKILL. Then two clones, one after the other, each from the
# same two files and a fresh copy of the image: `wisp restore` in a new
# process, told "restored" on its console, runs the guest's checks, and
# ends with the guest's reboot (exit 0). e2fsck checks the last clone's
# file system afterwards.
FLOW=/tmp/$name.flow
SNAPDIR=/tmp/$name.snap
scenario_pre() {
    truncate -s 64M "$img"
    rm -rf "$SNAPDIR"; mkdir -p "$SNAPDIR"
    cat > "$FLOW" <<FLOWEOF
#!/bin/sh
S=$SNAPDIR/api.sock
say() { echo "RIG-FLOW \$*"; }
# curl KEY ARGS: one API request that must answer 204
api() {
    k=\$1; shift
    if curl --unix-socket "\$S" -i "\$@" > $SNAPDIR/curl.out 2>&1 &&
        head -n 1 $SNAPDIR/curl.out | grep -q '^HTTP/1.1 204'; then say ok "\$k"
    else say fail "\$k" "\$(tr -d '\r' < $SNAPDIR/curl.out | tr '\n' ' ' | cut -c1-300)"; exit 1; fi
}
# count MARK: how many times the guest printed MARK so far
count() { tr -d '\r' < $log | grep -c "\$1"; }
# until N MARK [SECONDS]
until_n() {
    w=0
    while [ "\$(count "\$2")" -lt "\$1" ] && [ \$w -lt \${3:-1200} ]; do usleep 100000; w=\$((w + 1)); done
    [ "\$(count "\$2")" -ge "\$1" ]
}
/bin/wisp --api-sock "\$S" < /dev/null &
W=\$!
w=0
while [ ! -S "\$S" ] && [ \$w -lt 300 ]; do usleep 100000; w=\$((w + 1)); done
api boot-source -X PUT http://localhost/boot-source -H 'Content-Type: application/json' \
    -d '{"kernel_image_path": "$kernel", "initrd_path": "$initrd", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off $token"}'
api drive -X PUT http://localhost/drives/d0 -H 'Content-Type: application/json' \
    -d '{"drive_id": "d0", "path_on_host": "$img", "is_root_device": false, "is_read_only": false}'
api machine -X PUT http://localhost/machine-config -H 'Content-Type: application/json' \
    -d '{"vcpu_count": $CPUS, "mem_size_mib": $MEM}'
api start -X PUT http://localhost/actions -H 'Content-Type: application/json' \
    -d '{"action_type": "InstanceStart"}'
until_n 1 WISP-T-SNAP-NOW || { say fail snap-now "the guest never got there"; kill -9 \$W; exit 1; }
api pause -X PATCH http://localhost/vm -H 'Content-Type: application/json' -d '{"state": "Paused"}'
t0=\$(stamp -m)
api create -X PUT http://localhost/snapshot/create -H 'Content-Type: application/json' \
    -d '{"snapshot_type": "Full", "snapshot_path": "$SNAPDIR/vm.state", "mem_file_path": "$SNAPDIR/vm.mem"}'
t1=\$(stamp -m)
cp "$img" "$SNAPDIR/disk.snap"
kill -9 \$W
wait \$W
say ok killed "wisp pid \$W killed with SIGKILL after the snapshot"
say ok sizes "create \$((t1 - t0)) ms (PUT round trip), state file \$(wc -c < $SNAPDIR/vm.state) bytes, memory file \$(du -k $SNAPDIR/vm.mem | cut -f1) KiB on disk for $MEM MiB"
for clone in 1 2; do
    cp "$SNAPDIR/disk.snap" "$img"
    rm -f $SNAPDIR/in; mkfifo $SNAPDIR/in
    t0=\$(stamp -m)
    /bin/wisp restore --snapshot $SNAPDIR/vm.state --mem $SNAPDIR/vm.mem < $SNAPDIR/in &
    R=\$!
    exec 4> $SNAPDIR/in
    usleep 500000
    echo restored >&4
    until_n \$clone WISP-READY || { say fail clone\$clone "no WISP-READY"; kill -9 \$R; exit 1; }
    echo "$input" >&4
    wait \$R
    rc=\$?
    exec 4>&-
    t1=\$(stamp -m)
    if [ \$rc = 0 ]; then say ok clone\$clone "exit 0 after \$((t1 - t0)) ms"
    else say fail clone\$clone "exit \$rc"; exit 1; fi
done
exit 0
FLOWEOF
    VMM_CMD="/bin/sh $FLOW"
}
scenario_post() {
    for k in boot-source drive machine start pause create killed sizes clone1 clone2; do
        l=$(tr -d '\r' < "$log" | awk -v k="$k" '$1 == "RIG-FLOW" && $3 == k' | tail -n 1)
        case "$l" in
        "RIG-FLOW ok $k"*) C ok "$k" "${l#RIG-FLOW ok $k}" ;;
        '') C fail "$k" "the flow never got there" ;;
        *) C fail "$k" "${l#RIG-FLOW fail $k}" ;;
        esac
    done
    if e2fsck -fn "$img" > /tmp/$name.fsck 2>&1; then C ok e2fsck "clean after the second clone"
    else C fail e2fsck "$(tail -n 3 /tmp/$name.fsck | tr '\n' ' ')"; fi
    rm -rf "$SNAPDIR" "$FLOW"
}
