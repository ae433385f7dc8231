#!/bin/sh
# net-ratelimit's VMM command (see l1.sh): run under vmrun, so its output
# is the console log; the settings are in $1.
. "$1"
S=$D/api.sock
# say, api, api_sock, count, until_n
# shellcheck source=tests/rig/l1-api.sh
. /rig/l1-api.sh
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
if api_sock; then say ok api-socket; else say fail api-socket "none after 30 s"; kill -9 $W; exit 1; fi
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
