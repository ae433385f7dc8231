# The hostile-guest battery against the network devices: tools/hostile.c
# (/bin/hostile) drives a virtio-net's virtio-mmio window through /dev/mem
# after virtio_net was unbound from it, one group of cases per run: first
# wisp's own device (the lower window, keys "in-..."), then the spawned
# wisp-net's ("oop-..."). It attacks the transmit queue and gives the
# receive queue buffers good and bad while L1's frames arrive. Between
# groups vda must take a write and read it back, and the console carries
# every line. Afterwards virtio_net is bound to the attacked device again:
# its interface pings L1 on that device's tap and takes a TCP answer.
HOSTILE_SECS=2
. /rig/scenarios/hostile-guest/groups-l2.sh
# nets: "BASE VNAME PDEV" of each virtio-net, by window address
nets() { virtio_windows 0x0001; }
# attack INDEX PREFIX FIRST_SLOT SUBNET MAC: the INDEXth virtio-net (1:
# lower window), whose tap in L1 is 10.SUBNET.0.1 and MAC is MAC
attack() {
    p=$2-
    line=$(nets | sed -n "$1p")
    base=${line%% *} rest=${line#* }
    vname=${rest%% *} pdev=${rest#* }
    other=''
    for b in /sys/block/vd*; do other=${b##*/}; done
    if [ -z "$line" ] || [ -z "$base" ] || [ -z "$other" ]; then
        bad "${p}target" "no virtio-net number $1 ($(nets | tr '\n' ';')) or no disk"; return
    fi
    ok "${p}target" "$vname on $pdev at 0x$base, disk $other"
    if echo -n "$vname" > /sys/bus/virtio/drivers/virtio_net/unbind &&
        [ ! -e "/sys/bus/virtio/drivers/virtio_net/$vname" ]; then
        ok "${p}unbind" "virtio_net unbound from $vname"
    else
        bad "${p}unbind" "could not unbind virtio_net from $vname"; return
    fi
    hostile_groups "$p" "$base" "$3" "$other"
    # Linux's driver takes the device back: a new interface, which must
    # reach L1 through this device's tap
    echo -n "$vname" > /sys/bus/virtio/drivers/virtio_net/bind 2> /tmp/err
    n=0 ifc=''
    while [ -z "$ifc" ] && [ "$n" -lt 50 ]; do
        ifc=$(ls "/sys/bus/virtio/devices/$vname/net" 2> /dev/null | head -n 1)
        [ -n "$ifc" ] || usleep 100000
        n=$((n + 1))
    done
    if [ -z "$ifc" ]; then
        bad "${p}rebind" "no interface after binding $vname: $(last /tmp/err)"; return
    fi
    mac=$(cat "/sys/class/net/$ifc/address")
    if [ "$mac" = "$5" ]; then ok "${p}rebind" "virtio_net bound to $vname again: $ifc, $mac"
    else bad "${p}rebind" "$ifc has address $mac, not $5"; fi
    if ip link set "$ifc" up && ip addr add "10.$4.0.2/24" dev "$ifc" &&
        ping -c 3 -W 10 "10.$4.0.1" > /tmp/ping 2>&1; then
        ok "${p}rebind-ping" "$ifc: $(grep -o '[0-9]* packets received' /tmp/ping) from 10.$4.0.1"
    else
        bad "${p}rebind-ping" "$ifc: $(last /tmp/ping)"
    fi
    printf '#!/bin/sh\nexec cat > /tmp/small.out\n' > /tmp/small.sh
    chmod +x /tmp/small.sh
    rm -f /tmp/small.out
    timeout 30 nc "10.$4.0.1" 5003 -e /tmp/small.sh 2> /tmp/err
    if [ "$(cat /tmp/small.out 2> /dev/null)" = small ]; then ok "${p}rebind-tcp" "L1's answer over $ifc"
    else bad "${p}rebind-tcp" "got '$(cat /tmp/small.out 2> /dev/null)': $(last /tmp/err)"; fi
    ip link set "$ifc" down
}
t_main() {
    n=$(nets | wc -l)
    if [ "$n" = 2 ]; then ok net-count "two virtio-net devices: $(nets | tr '\n' ';')"
    else bad net-count "$n virtio-net devices, want 2: $(nets | tr '\n' ';')"; fi
    attack 1 in 0 78 02:00:00:00:78:02
    attack 2 oop 5 79 02:00:00:00:79:02
}
