scenario_pre() {
    truncate -s 16M "$img"; truncate -s 24M "$img2"
    disk "$img"; disk "$img2"
}
scenario_post() {
    cmp_val vda-size "expected vda sectors (16 MiB)" 32768 "guest /sys/block/vda/size" "$(gv vda-size)"
    cmp_val vdb-size "expected vdb sectors (24 MiB)" 49152 "guest /sys/block/vdb/size" "$(gv vdb-size)"
    cmp_val vdb-data "guest sha256 of 1 MiB written to vdb at 1 MiB" "$(gv vdb-sha)" "sha256 of the second image at 1 MiB" "$(dd if="$img2" bs=1M skip=1 count=1 2> /dev/null | sha)"
    cmp_val vda-untouched "sha256 of 16 MiB of zeros" "$(head -c 16777216 /dev/zero | sha)" "first image" "$(sha < "$img")"
}
