#!/bin/sh
# net-ratelimit's VMM command (see l1.sh): run under vmrun, so its output
# is the console log; the settings are in $1.
. "$1"
say() { echo "RIG-FLOW $*"; }
S=$D/api.sock
api() {
    k=$1; shift
    if curl --unix-socket "$S" -i "$@" > $D/curl.out 2>&1 &&
        head -n 1 $D/curl.out | grep -q '^HTTP/1.1 204'; then say ok "$k"
    else say fail "$k" "$(tr -d '\r' < $D/curl.out | tr '\n' ' ' | cut -c1-300)"; exit 1; fi
}
count() { tr -d '\r' < "$LOG" | grep -c "$1"; }
until_n() {
    w=0
    while [ "$(count "$2")" -lt "$1" ] && [ $w -lt ${3:-1200} ]; do usleep 100000; w=$((w + 1)); done
    [ "$(count "$2")" -ge "$1" ]
}
# 1: the command line's limits; stdin is vmrun's (its line at WISP-READY
# ends this boot)
/bin/wisp run --kernel "$KERNEL" --initrd "$INITRD" --cpus "$CPUS" --memory "$MEM" \
    --cmdline "$TOKEN netrl=cli" --serial stdio \
    --net tap=$TAP,mac=$MAC,tx-rate=2097152,rx-rate=2097152 || { say fail cli-run "exit $?"; exit 1; }
# 2: the API's
rm -f $D/in; mkfifo $D/in
/bin/wisp --api-sock "$S" < $D/in &
W=$!
exec 4> $D/in
w=0
while [ ! -S "$S" ] && [ $w -lt 300 ]; do usleep 100000; w=$((w + 1)); done
if [ -S "$S" ]; then say ok api-socket; else say fail api-socket "none after 30 s"; kill -9 $W; exit 1; fi
rl() { echo "{\"bandwidth\": {\"size\": $1, \"refill_time\": 1000}}"; }
api boot-source -X PUT http://localhost/boot-source -H 'Content-Type: application/json' \
    -d "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off $TOKEN netrl=api\"}"
api machine -X PUT http://localhost/machine-config -H 'Content-Type: application/json' \
    -d "{\"vcpu_count\": $CPUS, \"mem_size_mib\": $MEM}"
api net -X PUT http://localhost/network-interfaces/eth0 -H 'Content-Type: application/json' \
    -d "{\"iface_id\": \"eth0\", \"host_dev_name\": \"$TAP\", \"guest_mac\": \"$MAC\", \"rx_rate_limiter\": $(rl 2097152), \"tx_rate_limiter\": $(rl 2097152)}"
api start -X PUT http://localhost/actions -H 'Content-Type: application/json' \
    -d '{"action_type": "InstanceStart"}'
until_n 1 WISP-T-RL-PATCH-NOW || { say fail patch "the guest never asked for it"; kill -9 $W; exit 1; }
api patch -X PATCH http://localhost/network-interfaces/eth0 -H 'Content-Type: application/json' \
    -d "{\"iface_id\": \"eth0\", \"rx_rate_limiter\": $(rl 1048576), \"tx_rate_limiter\": $(rl 4194304)}"
echo patched >&4
until_n 2 WISP-READY || { say fail api-run "no WISP-READY"; kill -9 $W; exit 1; }
echo "$INPUT" >&4
wait $W
rc=$?
exec 4>&-
[ $rc = 0 ] || { say fail api-run "exit $rc"; exit 1; }
exit 0
