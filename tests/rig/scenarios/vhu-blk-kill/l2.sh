# The disk's vhost-user back-end is killed under I/O and restarted by L1;
# wisp reconnects to it without the guest doing anything.
t_main() {
    mkdir -p /mnt
    # the file system takes the first 32 MiB; the I/O loop writes at 48 MiB
    if $MKE2FS -q -F -t ext4 /dev/vda 32M > /tmp/mkfs.out 2>&1; then ok mkfs
    else bad mkfs "$(last /tmp/mkfs.out)"; return; fi
    mount -t ext4 /dev/vda /mnt 2> /tmp/err || { bad a-written "mount: $(last /tmp/err)"; return; }
    echo "file A from $TEST" > /mnt/A.txt && sync && umount /mnt 2> /tmp/err &&
        ok a-written || { bad a-written "$(last /tmp/err)"; return; }
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
    ok alive "guest still runs after the back-end died"
    echo "WISP-T-WAIT-SERVER"
    read -r line
    val l1-says "$line"
    # the same device, no re-probe: wisp reconnects within 200 ms
    head -c 1048576 /dev/urandom > /tmp/r.bin
    n=0
    while [ $n -lt 20 ]; do
        n=$((n + 1))
        dd if=/tmp/r.bin of=/dev/vda bs=64k seek=640 oflag=direct 2> /tmp/dd.err && break
        sleep 1
    done
    back=$(dd if=/dev/vda bs=64k skip=640 count=16 iflag=direct 2> /dev/null | sha)
    want=$(sha < /tmp/r.bin)
    val dd-sha "$want"
    if [ "$back" = "$want" ]; then ok dd-after "1 MiB written and read back after $n attempt(s)"
    else bad dd-after "read back $back, wrote $want ($(last /tmp/dd.err))"; fi
    if mount -t ext4 /dev/vda /mnt 2> /tmp/err; then
        a=$(cat /mnt/A.txt 2> /dev/null)
        if [ "$a" = "file A from $TEST" ]; then ok a-intact; else bad a-intact "A.txt reads '$a'"; fi
        umount /mnt
    else
        bad a-intact "mount after the restart: $(last /tmp/err)"
    fi
}
