# iommu-blk-ext4 (ext4 + the raw dd's sha256 through the IOMMU) with
# iommu.strict=0 on the 6.12 guest's command line.
. /rig/scenarios/iommu-blk-ext4/l1.sh
token="$token iommu.strict=0"
