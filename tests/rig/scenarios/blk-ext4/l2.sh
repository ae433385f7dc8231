# mkfs.ext4 /dev/vda, write files, unmount: L1 reads them back with debugfs.
# (oop-blk-ext4 sources this file too.)
t_main() {
    mkdir -p /mnt
    if $MKE2FS -q -F -t ext4 /dev/vda > /tmp/mkfs.out 2>&1; then ok mkfs
    else bad mkfs "$(last /tmp/mkfs.out)"; return; fi
    if mount -t ext4 /dev/vda /mnt 2> /tmp/err; then ok mount
    else bad mount "$(last /tmp/err)"; return; fi
    echo "hello from $TEST" > /mnt/hello.txt &&
        mkdir /mnt/dir && seq 1 20000 > /mnt/dir/seq.txt &&
        head -c 1048576 /dev/urandom > /mnt/dir/random.bin 2> /tmp/err &&
        sync && ok write || bad write "$(last /tmp/err)"
    val random-sha "$(sha < /mnt/dir/random.bin)"
    if umount /mnt 2> /tmp/err; then ok umount; else bad umount "$(last /tmp/err)"; fi
}
