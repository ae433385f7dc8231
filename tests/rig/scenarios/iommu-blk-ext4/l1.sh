# blk-ext4's image checks, the disk and an rng behind wisp's virtio-iommu;
# the guest's raw read of the disk must match the image. The other
# iommu-* scenarios source this file.
. /rig/scenarios/blk-ext4/l1.sh
scenario_pre() {
    truncate -s 64M "$img"
    disk "$img"
    VMM_EXTRA="$VMM_EXTRA ${IOMMU_ARGS:---iommu} --rng"
}
scenario_post() { iommu_post; }
iommu_post() {
    ext4_image_checks
    [ "$rc" = 0 ] || return
    cmp_val dd-image "guest sha256 of dd if=/dev/vda" "$(gv dd-sha)" "sha256 of the image" "$(sha < "$img")"
}
