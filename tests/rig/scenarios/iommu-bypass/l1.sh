# iommu-blk-ext4 with iommu.passthrough=1 on the guest's command line.
. /rig/scenarios/iommu-blk-ext4/l1.sh
token="$token iommu.passthrough=1"
