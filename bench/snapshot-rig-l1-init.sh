#!/bin/sh
# /init of the L1 guest of bench/snapshot-rig.sh (after l1-common.sh). Each
# round, under vmrun (times in ns from just before the VMM's fork):
#   cold   wisp --api-sock --config-file boots the L2 guest; vmrun sends
#          "ping" once it printed SNAP-READY; mark: its "pong"
#   (then wisp snapshot --resume, timed with stamp, and "bye")
#   file   wisp restore --mem FILE, "ping" already waiting on its stdin;
#          mark: the restored guest's "pong"
#   uffd   the same through wisp-uffd (started first, no delay,
#          prefetching; --uffd-fallback FILE)
# Reports RIG-S <round> <what> <ns>, RIG-S-FAIL <round> <what> <why>.
. /rig/l1-common.sh
. /rig/bench.conf
# snapshot-rig.sh stops an L1 whose console stays silent for 120 s (an L1
# that stopped would otherwise hold the machine until the overall timeout)
heartbeat
D=/tmp/snap
mark_ns() { sed -n "s/^vmrun: mark $2 \([0-9]*\).*/\1/p" "$1" | head -n 1; }
tail_of() { tr -d '\r' < "$1" | tail -n 8 | tr '\n' ' ' | cut -c1-400; }
# restore_one ROUND WHAT COMMAND...: "ping" is queued on the VMM's stdin
# (the FIFO vmrun forwards) before the VMM starts.
restore_one() {
    r=$1 what=$2; shift 2
    rm -f $D/in; mkfifo $D/in
    echo ping > $D/in &
    vmrun -o $D/$what.log -t "$TMO" -i $D/in -m pong -s pong=bye -- "$@" 2> $D/$what.vmrun
    rc=$?
    t=$(mark_ns $D/$what.vmrun pong)
    if [ "$rc" = 0 ] && [ -n "$t" ]; then echo "RIG-S $r $what $t"
    else echo "RIG-S-FAIL $r $what status $rc: $(tail_of $D/$what.log)"; fi
}
r=1
while [ "$r" -le "$RUNS" ]; do
    rm -rf $D; mkdir -p $D
    cat > $D/cfg.json <<CFG
{"boot-source": {"kernel_image_path": "/l2/bzImage", "initrd_path": "/l2/initrd.gz",
 "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"},
 "machine-config": {"vcpu_count": $CPUS, "mem_size_mib": $MEM}}
CFG
    mkfifo $D/cin
    vmrun -o $D/cold.log -t "$TMO" -i $D/cin -m pong -s SNAP-READY=ping -- \
        /bin/wisp --api-sock $D/api.sock --config-file $D/cfg.json 2> $D/cold.vmrun &
    V=$!
    w=0
    while [ -z "$(mark_ns $D/cold.vmrun pong)" ] && [ $w -lt $((TMO * 10)) ] && kill -0 $V 2> /dev/null; do
        usleep 100000; w=$((w + 1))
    done
    t=$(mark_ns $D/cold.vmrun pong)
    if [ -z "$t" ]; then
        echo "RIG-S-FAIL $r cold no pong: $(tail_of $D/cold.log)"
        kill $V 2> /dev/null; wait $V; r=$((r + 1)); continue
    fi
    echo "RIG-S $r cold $t"
    t0=$(stamp)
    if /bin/wisp snapshot --api-sock $D/api.sock --snapshot $D/st --mem $D/mem --resume > $D/snap.log 2>&1; then
        echo "RIG-S $r create $(($(stamp) - t0))"
    else
        echo "RIG-S-FAIL $r create $(cat $D/snap.log)"
    fi
    echo bye > $D/cin
    wait $V
    [ -s $D/st ] || { r=$((r + 1)); continue; }
    echo "RIG-S $r files state=$(wc -c < $D/st) mem_kib=$(du -k $D/mem | cut -f1)"
    restore_one "$r" file /bin/wisp restore --snapshot $D/st --mem $D/mem
    rm -f $D/uffd.sock
    /bin/wisp-uffd --socket $D/uffd.sock --mem $D/mem 2> $D/uffd.log &
    H=$!
    w=0; while [ ! -S $D/uffd.sock ] && [ $w -lt 100 ]; do usleep 100000; w=$((w + 1)); done
    restore_one "$r" uffd /bin/wisp restore --snapshot $D/st --mem $D/uffd.sock \
        --mem-backend uffd --uffd-fallback $D/mem
    wait $H
    echo "RIG-S $r handler $(tail -n 1 $D/uffd.log)"
    r=$((r + 1))
done
finish
