# The same guest test as iommu-blk-ext4.
. /rig/scenarios/iommu-blk-ext4/l2.sh
