# blk-ext4's image checks, the disk behind wisp's virtio-iommu.
. /rig/scenarios/blk-ext4/l1.sh
scenario_pre() {
    truncate -s 64M "$img"
    disk "$img"
    VMM_EXTRA="$VMM_EXTRA --iommu"
}
