# virtio-net: eth0 is the virtio device with the MAC given, it pings L1,
# sends 64 MiB to L1 while receiving 64 MiB from it (busybox nc -e at
# both ends, see l1.sh), 20 short connections in a row succeed, then 8
# at once.
NET_BYTES=67108864
t_main() {
    drv=$(basename "$(readlink /sys/class/net/eth0/device/driver 2> /dev/null)")
    if [ "$drv" = virtio_net ]; then ok net-driver; else bad net-driver "eth0 driver '$drv'"; fi
    mac=$(cat /sys/class/net/eth0/address 2> /dev/null)
    if [ "$mac" = 02:00:00:00:77:02 ]; then ok net-mac; else bad net-mac "eth0 address '$mac'"; fi
    val net-features "$(cat /sys/class/net/eth0/device/features 2> /dev/null)"
    if ip link set eth0 up && ip addr add 10.77.0.2/24 dev eth0; then ok net-up
    else bad net-up "ip failed"; return; fi
    if ping -c 3 -W 10 10.77.0.1 > /tmp/ping 2>&1; then ok ping "$(grep -o '[0-9]* packets received' /tmp/ping)"
    else bad ping "$(last /tmp/ping)"; fi
    head -c $NET_BYTES /dev/urandom > /tmp/up.bin
    val up-sha "$(sha < /tmp/up.bin)"
    printf '#!/bin/sh\nexec cat /tmp/up.bin\n' > /tmp/up.sh
    printf '#!/bin/sh\nexec cat > /tmp/down.bin\n' > /tmp/down.sh
    printf '#!/bin/sh\nexec cat > /tmp/small.out\n' > /tmp/small.sh
    chmod +x /tmp/up.sh /tmp/down.sh /tmp/small.sh
    t0=$(cut -d' ' -f1 /proc/uptime)
    nc 10.77.0.1 5001 -e /tmp/up.sh 2> /tmp/up.err &
    up=$!
    nc 10.77.0.1 5002 -e /tmp/down.sh 2> /tmp/down.err
    got=$(wc -c < /tmp/down.bin 2> /dev/null)
    if [ "$got" = $NET_BYTES ]; then ok guest-fetch "$got bytes"
    else bad guest-fetch "got '$got' bytes of $NET_BYTES: $(last /tmp/down.err)"; fi
    if ! wait $up; then bad guest-send "nc: $(last /tmp/up.err)"
    elif owed=$(tcp_wait_sent 5001); then ok guest-send "both done after $t0 .. $(cut -d' ' -f1 /proc/uptime) s uptime"
    else bad guest-send "L1 had not acknowledged all of it 30 s after nc exited: $owed"; fi
    val down-sha "$(sha < /tmp/down.bin)"
    rm -f /tmp/down.bin /tmp/up.bin
    n=0
    for i in $(seq 1 20); do
        rm -f /tmp/small.out
        nc 10.77.0.1 5003 -e /tmp/small.sh 2> /dev/null
        [ "$(cat /tmp/small.out 2> /dev/null)" = small ] && n=$((n + 1))
    done
    if [ $n = 20 ]; then ok short-conns "20/20"; else bad short-conns "$n/20"; fi
    pids=
    for i in 1 2 3 4 5 6 7 8; do
        rm -f /tmp/par$i.out
        printf '#!/bin/sh\nexec cat > /tmp/par%s.out\n' $i > /tmp/par$i.sh
        chmod +x /tmp/par$i.sh
        nc 10.77.0.1 5003 -e /tmp/par$i.sh 2> /dev/null &
        pids="$pids $!"
    done
    for p in $pids; do wait $p; done
    n=0
    for i in 1 2 3 4 5 6 7 8; do
        [ "$(cat /tmp/par$i.out 2> /dev/null)" = small ] && n=$((n + 1))
    done
    if [ $n = 8 ]; then ok parallel-conns "8/8 at once"; else bad parallel-conns "$n/8"; fi
    s=/sys/class/net/eth0/statistics
    val net-stats "rx $(cat $s/rx_packets) tx $(cat $s/tx_packets) rx_err $(cat $s/rx_errors) rx_drop $(cat $s/rx_dropped) tx_err $(cat $s/tx_errors)"
}
