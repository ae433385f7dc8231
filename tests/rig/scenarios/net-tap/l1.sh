# The tap lives only inside L1 (L1 itself has no network device): L1 is
# 10.77.0.1 on it, the guest 10.77.0.2 on its virtio-net eth0. L1 listens
# with busybox nc -e (its plain nc stops at the first EOF on either side,
# truncating; busybox wget crashes in the static build): port 5001 takes
# the guest's 64 MiB, 5002 sends L1's 64 MiB, 5003 answers "small" to
# any number of short connections. The checksums must match.
# net-vhost sets NET_VHOST=1 and sources this file: the same with the
# kernel's vhost-net running the queues (its modules loaded here);
# oop-net sets NET_OOP=1: the device is wisp-net, spawned by wisp.
# shellcheck disable=SC2034 # tap_up reads NET_L1
NET_TAP=wtap0 NET_L1=10.77.0.1 NET_MAC=02:00:00:00:77:02
NET_BYTES=67108864

scenario_pre() {
    # vhost_net needs tun's symbols: tun first (tap_up would load it too)
    [ -c /dev/net/tun ] || insmod /lib/tun.ko 2> /tmp/tun.err
    if [ "${NET_VHOST:-0}" = 1 ] && [ ! -c /dev/vhost-net ]; then
        for m in tap vhost_iotlb vhost vhost_net; do insmod /lib/$m.ko 2>> /tmp/vhost.err; done
    fi
    if [ "${NET_VHOST:-0}" = 1 ]; then
        if [ -c /dev/vhost-net ]; then C ok vhost-dev "/dev/vhost-net $(stat -c %t:%T /dev/vhost-net)"
        else C fail vhost-dev "no /dev/vhost-net: $(tr '\n' ' ' < /tmp/vhost.err)"; fi
    fi
    tap_up
    head -c $NET_BYTES /dev/urandom > /tmp/down.bin
    sha < /tmp/down.bin > /tmp/down.sha
    nc_serve up_pid -l 5001 /tmp/net-up.sh 'exec cat > /tmp/up.bin'
    nc_serve down_pid -l 5002 /tmp/net-down.sh 'exec cat /tmp/down.bin'
    nc_serve small_pid -ll 5003 /tmp/net-small.sh 'echo small'
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

# shellcheck disable=SC2154 # the listeners nc_serve started in scenario_pre
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
