# iommu-blk-ext4 with iommu.strict=0 on the guest's command line.
. /rig/scenarios/iommu-blk-ext4/l1.sh
token="$token iommu.strict=0"
