t_main() {
    ro=$(cat /sys/block/vda/ro 2> /dev/null)
    if [ "$ro" = 1 ]; then ok ro-flag; else bad ro-flag "/sys/block/vda/ro is '$ro'"; fi
    if dd if=/dev/zero of=/dev/vda bs=4096 count=1 oflag=direct 2> /tmp/err; then
        bad write-refused "dd to /dev/vda succeeded"
    else
        ok write-refused "$(head -n 1 /tmp/err | tr -d "\r")"
    fi
    if dd if=/dev/vda of=/tmp/r bs=1M count=4 iflag=direct 2> /tmp/err; then ok read
    else bad read "$(last /tmp/err)"; fi
    val read-sha "$(sha < /tmp/r)"
}
