# blk-ext4's guest test and checks, the image exported by
# qemu-storage-daemon as a vhost-user-blk back-end and attached with
# --vhost-user-blk. (vhu-blk-kill sources this file for qsd_start.)

# qsd_start LOG: qemu-storage-daemon exporting $img at /tmp/qsd.sock.
qsd_start() {
    rm -f /tmp/qsd.sock
    qemu-storage-daemon \
        --blockdev "driver=file,node-name=file0,filename=$img" \
        --export type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=/tmp/qsd.sock,writable=on \
        > "$1" 2>&1 &
    QSD_PID=$!
    wait_sock /tmp/qsd.sock
}
scenario_pre() {
    truncate -s 64M "$img"
    if qsd_start /tmp/qsd1.log; then C ok qsd-started "pid $QSD_PID"
    else C fail qsd-started "no socket after 5 s: $(tail -n 2 /tmp/qsd1.log)"; fi
    VMM_EXTRA="--vhost-user-blk socket=/tmp/qsd.sock,id=qsd0"
}
scenario_post() {
    kill "$QSD_PID" 2> /dev/null
    wait "$QSD_PID" 2> /dev/null
    sed "s/^/RIG-V $name qsd: /" /tmp/qsd1.log
    if [ "$rc" != 0 ]; then C fail image "VMM status $rc: image not checked"; return; fi
    cmp_val hello "expected /hello.txt" "hello from $name" "debugfs cat of the image" "$(debugfs -R 'cat /hello.txt' "$img" 2> /dev/null)"
    cmp_val seq "sha256 of seq 1 20000" "$(seq 1 20000 | sha)" "sha256 of /dir/seq.txt in the image" "$(debugfs -R 'cat /dir/seq.txt' "$img" 2> /dev/null | sha)"
    cmp_val random "guest sha256 of /dir/random.bin" "$(gv random-sha)" "sha256 of it in the image" "$(debugfs -R 'cat /dir/random.bin' "$img" 2> /dev/null | sha)"
    if e2fsck -fn "$img" > /tmp/fsck.out 2>&1; then C ok fsck
    else C fail fsck "e2fsck -fn: $(tail -n 3 /tmp/fsck.out | tr '\n' ' ')"; fi
}
