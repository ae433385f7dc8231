# L1 shares /tmp/share through virtiofsd (QEMU 7.2's, chroot sandbox: L1
# is a plain initramfs); the guest reads L1's file and writes its own.
scenario_pre() {
    rm -rf /tmp/share /tmp/vfs.sock; mkdir -p /tmp/share/sub
    echo "from L1 for $name" > /tmp/share/l1.txt
    seq 1 5000 > /tmp/share/sub/seq.txt
    virtiofsd --socket-path=/tmp/vfs.sock -o source=/tmp/share \
        -o sandbox=chroot -o cache=none > /tmp/vfs.log 2>&1 &
    VFS_PID=$!
    if wait_sock /tmp/vfs.sock; then C ok virtiofsd-started "pid $VFS_PID"
    else C fail virtiofsd-started "no socket after 5 s: $(tail -n 2 /tmp/vfs.log)"; fi
    VMM_EXTRA="--fs socket=/tmp/vfs.sock,tag=share"
}
scenario_post() {
    kill "$VFS_PID" 2> /dev/null
    wait "$VFS_PID" 2> /dev/null
    cmp_val l2-file "expected l2.txt" "from L2 for $name" "/tmp/share/l2.txt" "$(cat /tmp/share/l2.txt 2> /dev/null)"
    cmp_val l2-random "guest sha256 of random.bin" "$(gv random-sha)" "sha256 of /tmp/share/random.bin" "$(sha < /tmp/share/random.bin 2> /dev/null)"
    sed "s/^/RIG-V $name virtiofsd: /" /tmp/vfs.log | tail -n 20
}
