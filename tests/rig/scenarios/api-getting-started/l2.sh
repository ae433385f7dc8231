# The drive PUT as rootfs (is_root_device) is /dev/vda, wisp added
# root=/dev/vda rw to boot_args, and the machine-config's 2 vCPUs and
# 1024 MiB are checked by the generic checks; the interface PUT as net1
# is eth0 and reaches L1's tap0.
t_main() {
    case " $(cat /proc/cmdline) " in
    *" root=/dev/vda rw "*) ok root-arg ;;
    *) bad root-arg "no 'root=/dev/vda rw' in $(cat /proc/cmdline)" ;;
    esac
    want="wisp-rootfs-$TEST"
    got=$(dd if=/dev/vda bs=512 count=1 2> /tmp/err | head -c ${#want})
    if [ "$got" = "$want" ]; then ok rootfs-read
    else bad rootfs-read "read '$got' from /dev/vda, want '$want' ($(last /tmp/err))"; fi
    # the guide's network: the interface PUT as net1 is eth0, with its MAC
    mac=$(cat /sys/class/net/eth0/address 2> /dev/null)
    if [ "$mac" = 06:00:ac:10:00:02 ]; then ok net-mac; else bad net-mac "eth0 address '$mac'"; fi
    if ip link set eth0 up && ip addr add 172.16.0.2/24 dev eth0 &&
        ping -c 3 -W 10 172.16.0.1 > /tmp/ping 2>&1; then
        ok ping "$(grep -o '[0-9]* packets received' /tmp/ping)"
    else
        bad ping "$(last /tmp/ping)"
    fi
}
