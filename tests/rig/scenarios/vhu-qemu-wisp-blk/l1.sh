# wisp-blk serves the image as a vhost-user-blk back-end; QEMU 7.2 microvm
# is the front-end: guest RAM a shared memfd (the back-end maps it), and
# modern virtio-mmio (microvm's default is legacy, which vhost-user-blk
# back-ends refuse). The command goes through a script: its -append
# argument has spaces, and VMM_CMD is split at spaces.
scenario_pre() {
    truncate -s 64M "$img"
    rm -f /tmp/wb.sock
    WISP_VHU_TRACE=1 wisp-blk --vhost-user /tmp/wb.sock --disk "path=$img" > /tmp/wb.log 2>&1 &
    WB_PID=$!
    if wait_sock /tmp/wb.sock; then C ok backend-started "pid $WB_PID"
    else C fail backend-started "no socket after 5 s: $(tail -n 2 /tmp/wb.log)"; fi
    cat > /tmp/qvu.sh <<EOS
exec qemu-system-x86_64 -L /usr/share/qemu -accel kvm -cpu host \\
    -object memory-backend-memfd,id=mem,size=${MEM}M,share=on \\
    -M microvm,memory-backend=mem -global virtio-mmio.force-legacy=false \\
    -m $MEM -smp $CPUS -kernel $kernel -initrd $initrd \\
    -append "console=ttyS0 reboot=t panic=-1 $token" \\
    -nographic -no-reboot -nodefaults -serial stdio \\
    -chardev socket,id=vu0,path=/tmp/wb.sock -device vhost-user-blk,chardev=vu0
EOS
    VMM_CMD="/bin/sh /tmp/qvu.sh"
}
scenario_post() {
    # the back-end's connection ended with QEMU; it exits on SIGTERM
    kill "$WB_PID" 2> /dev/null
    w=0
    while kill -0 "$WB_PID" 2> /dev/null && [ $w -lt 25 ]; do usleep 200000; w=$((w + 1)); done
    if kill -0 "$WB_PID" 2> /dev/null; then C fail backend-exit "wisp-blk still running 5 s after SIGTERM"; kill -9 "$WB_PID"
    else C ok backend-exit; fi
    sed "s/^/RIG-V $name wisp-blk: /" /tmp/wb.log
    if [ "$rc" != 0 ]; then C fail image "VMM status $rc: image not checked"; return; fi
    cmp_val hello "expected /hello.txt" "hello from $name" "debugfs cat of the image" "$(debugfs -R 'cat /hello.txt' "$img" 2> /dev/null)"
    cmp_val seq "sha256 of seq 1 20000" "$(seq 1 20000 | sha)" "sha256 of /dir/seq.txt in the image" "$(debugfs -R 'cat /dir/seq.txt' "$img" 2> /dev/null | sha)"
    cmp_val random "guest sha256 of /dir/random.bin" "$(gv random-sha)" "sha256 of it in the image" "$(debugfs -R 'cat /dir/random.bin' "$img" 2> /dev/null | sha)"
    if e2fsck -fn "$img" > /tmp/fsck.out 2>&1; then C ok fsck
    else C fail fsck "e2fsck -fn: $(tail -n 3 /tmp/fsck.out | tr '\n' ' ')"; fi
}
