# iommu-blk-ext4's guest test; the disk's domain must be: DMA
IOMMU_TYPES="DMA"
. /rig/scenarios/iommu-blk-ext4/l2.sh
