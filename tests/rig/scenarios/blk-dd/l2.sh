# 4 MiB of random data to the raw disk (O_DIRECT), read back (O_DIRECT).
t_main() {
    head -c 4194304 /dev/urandom > /tmp/r
    w=$(sha < /tmp/r)
    val written-sha "$w"
    if dd if=/tmp/r of=/dev/vda bs=1M oflag=direct 2> /tmp/err; then ok write
    else bad write "$(last /tmp/err)"; fi
    r=$(dd if=/dev/vda bs=1M count=4 iflag=direct 2> /dev/null | sha)
    val readback-sha "$r"
    if [ "$r" = "$w" ]; then ok readback; else bad readback "read back $r, wrote $w"; fi
}
