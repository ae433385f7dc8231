# The tap lives only inside L1 (L1 itself has no network device): L1 is
# 10.77.0.1 on it, the guest 10.77.0.2 on its virtio-net eth0. L1 listens
# with busybox nc -e (its plain nc stops at the first EOF on either side,
# truncating; busybox wget crashes in the static build): port 5001 takes
# the guest's 64 MiB, 5002 sends L1's 64 MiB, 5003 answers "small" to
# any number of short connections. The checksums must match.
# net-vhost sets NET_VHOST=1 and sources this file: the same with the
# kernel's vhost-net running the queues (its modules loaded here);
# oop-net sets NET_OOP=1: the device is wisp-net, spawned by wisp.
NET_TAP=wtap0 NET_L1=10.77.0.1 NET_MAC=02:00:00:00:77:02
NET_BYTES=67108864

scenario_pre() {
    [ -c /dev/net/tun ] || insmod /lib/tun.ko 2> /tmp/tun.err
    if [ "${NET_VHOST:-0}" = 1 ] && [ ! -c /dev/vhost-net ]; then
        for m in tap vhost_iotlb vhost vhost_net; do insmod /lib/$m.ko 2>> /tmp/vhost.err; done
    fi
    if [ "${NET_VHOST:-0}" = 1 ]; then
        if [ -c /dev/vhost-net ]; then C ok vhost-dev "/dev/vhost-net $(stat -c %t:%T /dev/vhost-net)"
        else C fail vhost-dev "no /dev/vhost-net: $(tr '\n' ' ' < /tmp/vhost.err)"; fi
    fi
    # a tap another scenario of this L1 left behind (net-tap, net-vhost)
    ip link delete $NET_TAP 2> /dev/null
    if mktap $NET_TAP 2> /tmp/tap.err && ip link set $NET_TAP up &&
        ip addr add $NET_L1/24 dev $NET_TAP 2>> /tmp/tap.err; then
        C ok tap-created "$NET_TAP $NET_L1/24"
    else
        C fail tap-created "$(cat /tmp/tun.err /tmp/tap.err 2> /dev/null | tr '\n' ' ')"
    fi
    head -c $NET_BYTES /dev/urandom > /tmp/down.bin
    sha < /tmp/down.bin > /tmp/down.sha
    printf '#!/bin/sh\nexec cat > /tmp/up.bin\n' > /tmp/net-up.sh
    printf '#!/bin/sh\nexec cat /tmp/down.bin\n' > /tmp/net-down.sh
    printf '#!/bin/sh\necho small\n' > /tmp/net-small.sh
    chmod +x /tmp/net-up.sh /tmp/net-down.sh /tmp/net-small.sh
    nc -l -p 5001 -e /tmp/net-up.sh &
    up_pid=$!
    nc -l -p 5002 -e /tmp/net-down.sh &
    down_pid=$!
    nc -ll -p 5003 -e /tmp/net-small.sh &
    small_pid=$!
    if [ "$VMM" = qemu ]; then
        v=
        [ "${NET_VHOST:-0}" = 1 ] && v=,vhost=on
        VMM_EXTRA="-netdev tap,id=n0,ifname=$NET_TAP,script=no,downscript=no$v -device virtio-net-device,netdev=n0,mac=$NET_MAC"
    elif [ "${NET_OOP:-0}" = 1 ]; then
        [ -x /bin/wisp-net ] || C fail wisp-net "/bin/wisp-net not in L1"
        SPAWN="/bin/wisp-net --net tap=$NET_TAP,mac=$NET_MAC"
    elif [ "${NET_VHOST:-0}" = 1 ]; then
        # -v: wisp says on its stderr (the log) that vhost-net took the
        # queues, and would say so if it fell back
        VMM_EXTRA="-v --net tap=$NET_TAP,mac=$NET_MAC,vhost=on"
    else
        VMM_EXTRA="--net tap=$NET_TAP,mac=$NET_MAC"
    fi
}

scenario_post() {
    # the upload's receiver ends when the guest's sender closed; give it
    # 30 s after the VMM exited
    w=0
    while kill -0 "$up_pid" 2> /dev/null && [ $w -lt 150 ]; do usleep 200000; w=$((w + 1)); done
    kill "$up_pid" "$down_pid" "$small_pid" 2> /dev/null
    C ok l1-received "$(wc -c < /tmp/up.bin 2> /dev/null) bytes"
    cmp_val up-sha "the guest's up.bin" "$(gv up-sha)" "L1's copy" "$(sha < /tmp/up.bin 2> /dev/null)"
    cmp_val down-sha "L1's down.bin" "$(cat /tmp/down.sha)" "the guest's copy" "$(gv down-sha)"
    rm -f /tmp/up.bin /tmp/down.bin /tmp/down.sha /tmp/net-*.sh
    ip link delete $NET_TAP 2> /dev/null
    if [ "${NET_VHOST:-0}" = 1 ] && [ "$VMM" != qemu ]; then
        l=$(tr -d '\r' < "$log" | grep "(vhost): vhost-net features" | tail -n 1)
        if [ -n "$l" ] && ! tr -d '\r' < "$log" | grep -q "falls back"; then C ok vhost-used "${l#*wisp: }"
        else C fail vhost-used "$(tr -d '\r' < "$log" | grep -E "vhost|falls back" | head -n 3 | tr '\n' ' ')"; fi
    fi
}
