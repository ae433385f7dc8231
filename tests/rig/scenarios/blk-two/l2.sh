t_main() {
    val vda-size "$(cat /sys/block/vda/size 2> /dev/null)"
    val vdb-size "$(cat /sys/block/vdb/size 2> /dev/null)"
    head -c 1048576 /dev/urandom > /tmp/r
    val vdb-sha "$(sha < /tmp/r)"
    if dd if=/tmp/r of=/dev/vdb bs=1M seek=1 oflag=direct 2> /tmp/err; then ok write-vdb
    else bad write-vdb "$(last /tmp/err)"; fi
}
