# A sparse 64 MiB image; after the run, the guest's files are read back
# from it with debugfs and the file system is checked with e2fsck.
# (oop-blk-ext4 sources this file and replaces scenario_pre; the iommu-*
# scenarios call ext4_image_checks from their own scenario_post.)
scenario_pre() { truncate -s 64M "$img"; disk "$img"; }
scenario_post() { ext4_image_checks; }
ext4_image_checks() {
    if [ "$rc" != 0 ]; then C fail image "VMM status $rc: image not checked"; return; fi
    cmp_val hello "expected /hello.txt" "hello from $name" "debugfs cat of the image" "$(debugfs -R 'cat /hello.txt' "$img" 2> /dev/null)"
    cmp_val seq "sha256 of seq 1 20000" "$(seq 1 20000 | sha)" "sha256 of /dir/seq.txt in the image" "$(debugfs -R 'cat /dir/seq.txt' "$img" 2> /dev/null | sha)"
    cmp_val random "guest sha256 of /dir/random.bin" "$(gv random-sha)" "sha256 of it in the image" "$(debugfs -R 'cat /dir/random.bin' "$img" 2> /dev/null | sha)"
    if e2fsck -fn "$img" > /tmp/fsck.out 2>&1; then C ok fsck
    else C fail fsck "e2fsck -fn: $(tail -n 3 /tmp/fsck.out | tr '\n' ' ')"; fi
}
