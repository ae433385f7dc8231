# iommu-blk-ext4's guest test; the disk's domain must be: identity
IOMMU_TYPES="identity"
. /rig/scenarios/iommu-blk-ext4/l2.sh
