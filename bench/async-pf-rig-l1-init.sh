#!/bin/sh
# /init of the L1 guest of bench/async-pf-rig.sh (after l1-common.sh): for
# each mode (apf: the guest as it is; noapf: booted with no-kvmapf) boot
# the L2 guest through wisp's API, snapshot it when it says APF-SNAP-NOW,
# kill wisp, restore it in a new wisp through wisp-uffd (--delay-us,
# --no-prefetch: every page of the buffer is a fault), say "go", and
# report the guest's lines and wisp-uffd's as RIG-APF <mode> <line>.
. /rig/l1-common.sh
. /rig/bench.conf
# async-pf-rig.sh stops an L1 whose console stays silent for 120 s (an L1
# that stopped would otherwise hold the machine until the overall timeout)
heartbeat
D=/tmp/apf
cnt() { tr -d '\r' < "$1" 2> /dev/null | grep -c "$2"; }
until_mark() { # FILE MARK SECONDS
    w=0
    while [ "$(cnt "$1" "$2")" -lt 1 ] && [ $w -lt $(($3 * 10)) ]; do usleep 100000; w=$((w + 1)); done
    [ "$(cnt "$1" "$2")" -ge 1 ]
}
for mode in $MODES; do
    rm -rf $D; mkdir -p $D
    extra=""; [ "$mode" = noapf ] && extra=" no-kvmapf"
    cat > $D/cfg.json <<CFG
{"boot-source": {"kernel_image_path": "/l2/bzImage", "initrd_path": "/l2/initrd.gz",
 "boot_args": "console=ttyS0 reboot=k panic=1 pci=off apf_mib=$MIB$extra"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": $MEM}}
CFG
    /bin/wisp --api-sock $D/api.sock --config-file $D/cfg.json < /dev/null > $D/boot.log 2>&1 &
    W=$!
    if ! until_mark $D/boot.log APF-SNAP-NOW $TMO; then
        echo "RIG-APF $mode FAIL no APF-SNAP-NOW"; tail -n 20 $D/boot.log | sed "s/^/RIG-APF $mode T /"
        kill -9 $W; continue
    fi
    /bin/wisp snapshot --api-sock $D/api.sock --snapshot $D/st --mem $D/mem > $D/snap.log 2>&1 ||
        { echo "RIG-APF $mode FAIL snapshot: $(cat $D/snap.log)"; kill -9 $W; continue; }
    kill -9 $W; wait $W
    /bin/wisp-uffd --socket $D/uffd.sock --mem $D/mem --delay-us $DELAY --no-prefetch 2> $D/uffd.log &
    H=$!
    w=0; while [ ! -S $D/uffd.sock ] && [ $w -lt 100 ]; do usleep 100000; w=$((w + 1)); done
    mkfifo $D/in
    /bin/wisp restore --snapshot $D/st --mem $D/uffd.sock --mem-backend uffd --uffd-fallback $D/mem < $D/in > $D/run.log 2>&1 &
    R=$!
    exec 4> $D/in
    usleep 500000
    echo go >&4
    until_mark $D/run.log APF-DONE $TMO || echo "RIG-APF $mode FAIL no APF-DONE"
    w=0; while kill -0 $R 2> /dev/null && [ $w -lt 300 ]; do usleep 100000; w=$((w + 1)); done
    kill -9 $R 2> /dev/null; exec 4>&-
    wait $H
    tr -d '\r' < $D/boot.log | grep '^APF-' | sed "s/^/RIG-APF $mode boot /"
    tr -d '\r' < $D/run.log | grep -E '^APF-|^wisp' | sed "s/^/RIG-APF $mode /"
    sed "s/^/RIG-APF $mode /" $D/uffd.log
done
finish
