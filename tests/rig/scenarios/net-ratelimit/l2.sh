# The guest's side of net-ratelimit (see l1.sh): the boot's phase is
# netrl=cli or netrl=api on the command line. It sends its file to L1
# (L1 times the receipt) and times its own fetch against
# (BYTES - RATE) / RATE +-10%.
up() { cut -d' ' -f1 /proc/uptime; }
# fetch PHASE PORT BYTES RATE
fetch() {
    t0=$(up)
    nc 10.77.0.1 $2 -e /tmp/down.sh 2> /tmp/down.err
    t1=$(up)
    got=$(wc -c < /tmp/down.bin 2> /dev/null)
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    val $1-down-seconds "$s"
    want=$(awk -v b="$3" -v r="$4" 'BEGIN { printf "%.2f", (b - r) / r }')
    if [ "$got" = "$3" ] && awk -v t="$s" -v w="$want" 'BEGIN { exit !(t >= w * 0.9 && t <= w * 1.1) }'; then
        ok $1-down-rate "$got bytes in $s s (want $want s +-10%): $(awk -v b="$3" -v r="$4" -v t="$s" 'BEGIN { printf "%.3f", (b - r) / 1048576 / t }') MiB/s after the bucket"
    else bad $1-down-rate "'$got' bytes in $s s, want $3 in $want s +-10% ($(last /tmp/down.err))"; fi
}
# send PHASE PORT BYTES
send() {
    head -c $3 /dev/urandom > /tmp/up.bin
    val $1-up-sha "$(sha < /tmp/up.bin)"
    nc 10.77.0.1 $2 -e /tmp/up.sh 2> /tmp/up.err || bad $1-send "nc: $(last /tmp/up.err)"
    rm -f /tmp/up.bin
}
# received N: until L1 has N uploads whole (its socket buffers drain
# after nc is done here), at most 30 s
received() {
    w=0
    while :; do
        rm -f /tmp/st.out
        nc 10.77.0.1 5020 -e /tmp/st.sh 2> /dev/null
        [ "$(cat /tmp/st.out 2> /dev/null)" = "$1" ] || [ $w -ge 60 ] || { usleep 500000; w=$((w + 1)); continue; }
        break
    done
    [ $w -lt 60 ] || bad $p-received "L1 never had upload $1 whole"
}
t_main() {
    case "$(cat /proc/cmdline)" in
    *netrl=cli*) p=cli ;;
    *netrl=api*) p=api ;;
    *) bad phase "no netrl= on the command line"; return ;;
    esac
    if ip link set eth0 up && ip addr add 10.77.0.2/24 dev eth0 &&
        ping -c 1 -W 10 10.77.0.1 > /tmp/ping 2>&1; then ok $p-net-up
    else bad $p-net-up "$(last /tmp/ping)"; return; fi
    printf '#!/bin/sh\nexec cat /tmp/up.bin\n' > /tmp/up.sh
    printf '#!/bin/sh\nexec cat > /tmp/down.bin\n' > /tmp/down.sh
    printf '#!/bin/sh\nexec cat > /tmp/st.out\n' > /tmp/st.sh
    chmod +x /tmp/up.sh /tmp/down.sh /tmp/st.sh
    if [ $p = cli ]; then
        send cli 5001 16777216
        received 1
        fetch cli 5002 16777216 2097152
    else
        echo "WISP-T-RL-PATCH-NOW"
        read -r line
        [ "$line" = patched ] || bad patched-line "read '$line'"
        send api 5011 29360128
        received 2
        fetch api 5012 7340032 1048576
    fi
    rm -f /tmp/down.bin
}
