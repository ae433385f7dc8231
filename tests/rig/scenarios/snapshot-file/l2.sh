# Before the snapshot: ext4 on /dev/vda, a counter and a file write in the
# background, then WISP-T-SNAP-NOW and a wait for "restored" on the
# console (L1 snapshots, kills wisp and restores meanwhile). After it:
# the counter went on, the write finished and reads back, a new write
# works, the clock did not jump far, no soft lockup, the fs unmounts.
t_main() {
    $MKE2FS -q -t ext4 -F /dev/vda > /tmp/mkfs 2>&1 || { bad mkfs "$(last /tmp/mkfs)"; return; }
    mkdir -p /mnt; mount -t ext4 /dev/vda /mnt || { bad mount "mount failed"; return; }
    # The counter goes through a rename: '> /tmp/count' truncates first,
    # and a read between the truncate and the write sees an empty file.
    ( n=0; while :; do n=$((n + 1)); echo $n > /tmp/count.new
      mv /tmp/count.new /tmp/count; usleep 20000; done ) &
    CPID=$!
    ( i=0; while [ $i -lt 600 ]; do
        dd if=/dev/urandom bs=4096 count=4 2> /dev/null >> /mnt/big; i=$((i + 1)); done
      sync; sha256sum /mnt/big | cut -c1-64 > /tmp/wsha; echo done > /tmp/wdone ) &
    sleep 2
    c0=$(cat /tmp/count); u0=$(cut -d. -f1 /proc/uptime)
    echo "WISP-T-SNAP-NOW"
    read -r line
    [ "$line" = restored ] || bad restored-line "read '$line'"
    sleep 2
    c1=$(cat /tmp/count); u1=$(cut -d. -f1 /proc/uptime)
    if [ "$c1" -gt "$c0" ]; then ok counter "$c0 at the snapshot, $c1 two seconds after the restore"
    else bad counter "$c0 before, $c1 after"; fi
    w=0
    while [ ! -e /tmp/wdone ] && [ $w -lt 120 ]; do sleep 1; w=$((w + 1)); done
    if [ -e /tmp/wdone ]; then
        a=$(sha256sum /mnt/big | cut -c1-64)
        if [ "$a" = "$(cat /tmp/wsha)" ] && [ "$(wc -c < /mnt/big)" = $((600 * 16384)) ]; then
            ok write-finished "$(wc -c < /mnt/big) bytes"
        else bad write-finished "size $(wc -c < /mnt/big), sha $a vs $(cat /tmp/wsha)"; fi
    else bad write-finished "the background write never finished"; fi
    echo "after restore $TEST" > /mnt/after; sync
    echo 3 > /proc/sys/vm/drop_caches
    if [ "$(cat /mnt/after)" = "after restore $TEST" ]; then ok disk-after; else bad disk-after "read back '$(cat /mnt/after)'"; fi
    d=$((u1 - u0))
    if [ $d -ge 0 ] && [ $d -lt 120 ]; then ok clock "uptime moved $d s across snapshot, kill and restore"
    else bad clock "uptime moved $d s"; fi
    if dmesg | grep -qi "soft lockup"; then bad no-soft-lockup "$(dmesg | grep -i 'soft lockup' | head -n 1)"
    else ok no-soft-lockup; fi
    kill $CPID
    if umount /mnt; then ok umount; else bad umount "umount failed"; fi
}
