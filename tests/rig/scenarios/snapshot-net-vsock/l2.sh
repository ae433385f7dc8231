# The guest's side of snapshot-net-vsock (see l1.sh): before the
# snapshot ping, a fetch and a send of 4 MiB, a vsock listener on port
# 6000 and a connection to the host's port 5000 held open; after the
# restore that connection has ended, a new one works, and ping and both
# transfers again.
NET_BYTES=4194304
# transfer N PORT_UP: fetch L1's file (val downN-sha), send ours to PORT_UP
transfer() {
    rm -f /tmp/down.bin
    nc 10.77.0.1 5002 -e /tmp/down.sh 2> /tmp/down.err
    got=$(wc -c < /tmp/down.bin 2> /dev/null)
    if [ "$got" = $NET_BYTES ]; then ok fetch$1 "$got bytes"
    else bad fetch$1 "got '$got' bytes of $NET_BYTES: $(last /tmp/down.err)"; fi
    val down$1-sha "$(sha < /tmp/down.bin)"
    # send2 is the last thing before the guest reboots: it counts once L1
    # acknowledged every byte
    if ! nc 10.77.0.1 $2 -e /tmp/up.sh 2> /tmp/up.err; then bad send$1 "nc: $(last /tmp/up.err)"
    elif owed=$(tcp_wait_sent $2); then ok send$1
    else bad send$1 "L1 had not acknowledged all of it 30 s after nc exited: $owed"; fi
}
t_main() {
    if ip link set eth0 up && ip addr add 10.77.0.2/24 dev eth0; then ok net-up
    else bad net-up "ip failed"; return; fi
    if ping -c 3 -W 10 10.77.0.1 > /tmp/ping 2>&1; then ok ping-before "$(grep -o '[0-9]* packets received' /tmp/ping)"
    else bad ping-before "$(last /tmp/ping)"; fi
    head -c $NET_BYTES /dev/urandom > /tmp/up.bin
    val up-sha "$(sha < /tmp/up.bin)"
    printf '#!/bin/sh\nexec cat /tmp/up.bin\n' > /tmp/up.sh
    printf '#!/bin/sh\nexec cat > /tmp/down.bin\n' > /tmp/down.sh
    chmod +x /tmp/up.sh /tmp/down.sh
    transfer 1 5001
    vsockt serve vsock 6000 2> /tmp/serve.err &
    vsockt hold vsock:2:5000 300 > /tmp/hold.out 2>&1 &
    w=0
    while ! grep -q '^open' /tmp/hold.out && [ $w -lt 100 ]; do usleep 100000; w=$((w + 1)); done
    if grep -q '^open' /tmp/hold.out; then ok g-hold-open
    else bad g-hold-open "$(tr '\n' ' ' < /tmp/hold.out)"; fi
    echo "WISP-T-SNAP-NOW"
    read -r line
    [ "$line" = restored ] || bad restored-line "read '$line'"
    w=0
    while [ "$(wc -l < /tmp/hold.out)" -lt 2 ] && [ $w -lt 100 ]; do usleep 100000; w=$((w + 1)); done
    l=$(sed -n 2p /tmp/hold.out)
    case "$l" in "reset: Connection reset by peer"|eof) ok g-old-reset "$l" ;; *) bad g-old-reset "'$l' 10 s after the restore" ;; esac
    r=$(vsockt echo vsock:2:5000 65536 4 30 2>&1)
    case "$r" in ok*) ok g2h-new "$r" ;; *) bad g2h-new "$r" ;; esac
    if ping -c 3 -W 10 10.77.0.1 > /tmp/ping 2>&1; then ok ping-after "$(grep -o '[0-9]* packets received' /tmp/ping)"
    else bad ping-after "$(last /tmp/ping)"; fi
    transfer 2 5004
}
