# iommu-blk-ext4 with iommu.strict=1 on the guest's command line, the
# IOMMU's requests in the vCPU that sends them (--iommu-requests vcpu;
# -v for the log line that says so).
IOMMU_ARGS="--iommu --iommu-requests vcpu -v"
. /rig/scenarios/iommu-blk-ext4/l1.sh
token="$token iommu.strict=1"
scenario_post() {
    iommu_post
    if grep -q "virtio-iommu: queue 0 served in the kicking vCPU" "$log"; then
        C ok iommu-vcpu "wisp's log line for the requestq in the vCPU"
    else C fail iommu-vcpu "no log line for the requestq in the vCPU"; fi
}
