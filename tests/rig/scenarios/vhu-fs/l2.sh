# Mount the virtio-fs share, read what L1 put there, write files back.
t_main() {
    mkdir -p /mnt
    if mount -t virtiofs share /mnt 2> /tmp/err; then ok mount
    else bad mount "$(last /tmp/err)"; return; fi
    a=$(cat /mnt/l1.txt 2> /dev/null)
    s=$(sha < /mnt/sub/seq.txt)
    if [ "$a" = "from L1 for $TEST" ] && [ "$s" = "$(seq 1 5000 | sha)" ]; then ok read-l1
    else bad read-l1 "l1.txt reads '$a', seq.txt sha $s"; fi
    echo "from L2 for $TEST" > /mnt/l2.txt &&
        head -c 1048576 /dev/urandom > /mnt/random.bin 2> /tmp/err &&
        sync && ok write || bad write "$(last /tmp/err)"
    val random-sha "$(sha < /mnt/random.bin)"
    if umount /mnt 2> /tmp/err; then ok umount; else bad umount "$(last /tmp/err)"; fi
}
