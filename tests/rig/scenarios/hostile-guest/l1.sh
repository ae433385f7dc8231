# Two disks: vda (16 MiB) keeps serving the guest's own I/O; the 24 MiB
# one is handed to tools/hostile.c. After wisp exited: the guest's reads
# through the rebound virtio_blk driver match the image, and each write
# the guest made to vda between the attack groups is in vda's image.
scenario_pre() {
    truncate -s 16M "$img"
    head -c 25165824 /dev/urandom > "$img2"
    disk "$img"
    target_disk
}
# the attacked disk: wisp's own (hostile-oop: a spawned wisp-blk)
target_disk() { disk "$img2"; }
scenario_post() {
    cmp_val target-data "guest sha256 of the rebound target disk" "$(gv target-sha)" \
        "sha256 of its image" "$(sha < "$img2")"
    i=0
    for g in regs chains indirect races flood; do
        cmp_val "other-data-$g" "guest sha256 of 256 KiB written to vda after $g" "$(gv "other-sha-$g")" \
            "vda's image at $i MiB" "$(dd if="$img" bs=256k skip=$((i * 4)) count=1 2> /dev/null | sha)"
        i=$((i + 1))
    done
}
