# The disk's server is killed under I/O and restarted by L1.
t_main() {
    mkdir -p /mnt
    # the file system takes the first 32 MiB; the I/O loop writes at 48 MiB
    if $MKE2FS -q -F -t ext4 /dev/vda 32M > /tmp/mkfs.out 2>&1; then ok mkfs
    else bad mkfs "$(last /tmp/mkfs.out)"; return; fi
    mount -t ext4 /dev/vda /mnt 2> /tmp/err || { bad a-written "mount: $(last /tmp/err)"; return; }
    echo "file A from $TEST" > /mnt/A.txt && sync && umount /mnt 2> /tmp/err &&
        ok a-written || { bad a-written "$(last /tmp/err)"; return; }
    dev=$(readlink -f /sys/block/vda/device); dev=${dev##*/}
    val virtio-dev "$dev"
    echo "WISP-T-KILL-NOW"
    i=0 failed=0
    while [ $i -lt 1000 ]; do
        dd if=/dev/zero of=/dev/vda bs=64k count=16 seek=768 oflag=direct 2> /tmp/dd.err ||
            { failed=1; break; }
        i=$((i + 1))
    done
    if [ $failed = 1 ]; then ok io-error "dd failed after $i good rounds: $(head -n 1 /tmp/dd.err | tr -d "\r")"
    else bad io-error "1000 rounds of dd to /dev/vda never failed"; fi
    val dmesg-io-errors "$(dmesg | grep -c "I/O error")"
    dmesg | grep "I/O error" | tail -n 3 | sed 's/^/WISP-T-DMESG /'
    ok alive "guest still runs after the server died"
    echo "WISP-T-WAIT-SERVER"
    read -r line
    val l1-says "$line"
    sleep 1
    n=0 size=0
    while [ $n -lt 20 ]; do
        n=$((n + 1))
        echo "$dev" > /sys/bus/virtio/drivers/virtio_blk/unbind 2> /dev/null
        echo "$dev" > /sys/bus/virtio/drivers/virtio_blk/bind 2> /tmp/err
        size=$(cat /sys/block/vda/size 2> /dev/null)
        [ "${size:-0}" -gt 0 ] && break
        sleep 1
    done
    if [ "${size:-0}" -gt 0 ]; then ok reattached "vda has $size sectors after $n re-probe(s)"
    else bad reattached "vda size '${size}' after $n re-probes ($(last /tmp/err))"; return; fi
    if mount -t ext4 /dev/vda /mnt 2> /tmp/err; then
        a=$(cat /mnt/A.txt 2> /dev/null)
        if [ "$a" = "file A from $TEST" ]; then ok a-intact; else bad a-intact "A.txt reads '$a'"; fi
        umount /mnt
    else
        bad a-intact "mount after re-attach: $(last /tmp/err)"
    fi
}
