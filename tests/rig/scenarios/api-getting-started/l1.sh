# The VMM is `wisp --api-sock`, configured while it runs with the curl
# commands of Firecracker's getting-started guide (curl is the rig's
# ucurl). Deviations, each needed by the rig: initrd_path in
# /boot-source (the rig's userland is an initramfs), the scenario's token
# in boot_args, and a PUT /metrics so L1 can see the root drive was read
# and the network interface's frames counted. The guide's network step
# is in: tap0 is 172.16.0.1 in L1 (no route beyond it), the guest
# configures 172.16.0.2 and pings it.
# shellcheck disable=SC2034 # tap_up reads NET_L1
NET_TAP=tap0 NET_L1=172.16.0.1 TAP_KEY=tap0
FC_MAC=06:00:AC:10:00:02
API_SOCKET=/tmp/$name.sock
METRICS=/tmp/$name.metrics
# api KEY CURL-ARGS...: one request; ok when the status line says 204
api() {
    k=$1; shift
    if curl --unix-socket "$API_SOCKET" -i "$@" > "/tmp/$name.curl" 2>&1 &&
        head -n 1 "/tmp/$name.curl" | grep -q '^HTTP/1.1 204'; then C ok "$k"
    else C fail "$k" "$(tr -d '\r' < "/tmp/$name.curl" | tr '\n' ' ' | cut -c1-300)"; fi
}
scenario_pre() {
    truncate -s 16M "$img"
    printf 'wisp-rootfs-%s' "$name" | dd of="$img" conv=notrunc 2> /dev/null
    rm -f "$API_SOCKET"; : > "$METRICS"
    tap_up
    VMM_CMD="/bin/wisp --api-sock $API_SOCKET"
}
scenario_during() {
    # wisp execs wisp-api, which loads a dozen libraries under TCG: give
    # it 30 s (wait_sock's 5 s is for servers that are already running).
    w=0
    while [ ! -S "$API_SOCKET" ] && [ "$w" -lt 300 ] && kill -0 "$vpid" 2> /dev/null; do
        usleep 100000; w=$((w + 1))
    done
    if [ -S "$API_SOCKET" ]; then C ok api-socket "after $((w / 10)).$((w % 10)) s"
    else C fail api-socket "no socket at $API_SOCKET after $((w / 10)) s"; return; fi
    kernel_path=$kernel
    rootfs_path=$img
    api put-metrics -X PUT 'http://localhost/metrics' \
        -H 'Accept: application/json' \
        -H 'Content-Type: application/json' \
        -d "{ \"metrics_path\": \"$METRICS\" }"
    api boot-source -X PUT 'http://localhost/boot-source' \
        -H 'Accept: application/json' \
        -H 'Content-Type: application/json' \
        -d "{
            \"kernel_image_path\": \"${kernel_path}\",
            \"initrd_path\": \"${initrd}\",
            \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off $token\"
       }"
    api drives-rootfs -X PUT 'http://localhost/drives/rootfs' \
        -H 'Accept: application/json' \
        -H 'Content-Type: application/json' \
        -d "{
            \"drive_id\": \"rootfs\",
            \"path_on_host\": \"${rootfs_path}\",
            \"is_root_device\": true,
            \"is_read_only\": false
       }"
    api network-interfaces -X PUT 'http://localhost/network-interfaces/net1' \
        -H 'Accept: application/json' \
        -H 'Content-Type: application/json' \
        -d "{
            \"iface_id\": \"net1\",
            \"guest_mac\": \"$FC_MAC\",
            \"host_dev_name\": \"$NET_TAP\"
        }"
    api machine-config -X PUT 'http://localhost/machine-config' \
        -H 'Accept: application/json' \
        -H 'Content-Type: application/json' \
        -d '{
          "vcpu_count": 2,
          "mem_size_mib": 1024
      }'
    api instance-start -X PUT 'http://localhost/actions' \
        -H 'Accept: application/json' \
        -H 'Content-Type: application/json' \
        -d '{
          "action_type": "InstanceStart"
       }'
    # While the guest runs: GET / reports it, pre-boot resources are refused.
    v=$(curl --unix-socket "$API_SOCKET" -s 'http://localhost/' 2>&1)
    case "$v" in *'"state":"Running"'*) C ok state-running ;;
    *) C fail state-running "GET / said: $v" ;; esac
    v=$(curl --unix-socket "$API_SOCKET" -i -X PUT 'http://localhost/machine-config' \
        -H 'Content-Type: application/json' -d '{"vcpu_count": 1, "mem_size_mib": 128}' 2>&1 | tr -d '\r')
    case "$v" in 'HTTP/1.1 400'*fault_message*) C ok refused-after-start ;;
    *) C fail refused-after-start "PUT /machine-config after start: $(echo "$v" | tr '\n' ' ')" ;; esac
}
scenario_post() {
    # The line wisp writes when the VM ends counts the guest's reads of
    # the root drive (at least the sector l2.sh read).
    l=$(tail -n 1 "$METRICS")
    r=$(echo "$l" | sed -n 's/.*"block_rootfs":{[^}]*"read_count":\([0-9]*\).*/\1/p')
    if [ -n "$r" ] && [ "$r" -gt 0 ]; then C ok metrics "block_rootfs read_count $r"
    else C fail metrics "no block_rootfs read_count > 0 in the last line: $(echo "$l" | cut -c1-300)"; fi
    # the guest's pings: at least 3 frames each way (and their ARP), their
    # bytes, and "net" (all interfaces) equal to the one there is
    n=$(echo "$l" | sed -n 's/.*"net_net1":\({[^}]*}\).*/\1/p')
    a=$(echo "$l" | sed -n 's/.*"net":\({[^}]*}\).*/\1/p')
    f() { echo "$n" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
    tx=$(f tx_packets_count) rx=$(f rx_packets_count) txb=$(f tx_bytes_count) rxb=$(f rx_bytes_count)
    if [ -n "$tx" ] && [ -n "$rx" ] && [ "$tx" -ge 3 ] && [ "$rx" -ge 3 ] &&
        [ "$txb" -ge $((tx * 42)) ] && [ "$rxb" -ge $((rx * 42)) ] && [ "$a" = "$n" ]; then
        C ok net-metrics "net_net1: $tx frames ($txb bytes) sent, $rx ($rxb) received"
    else
        C fail net-metrics "net_net1 '$n', net '$a'"
    fi
}
