# iommu-blk-ext4's guest test; the disk's domain must be: DMA-FQ DMA
IOMMU_TYPES="DMA-FQ DMA"
. /rig/scenarios/iommu-blk-ext4/l2.sh
