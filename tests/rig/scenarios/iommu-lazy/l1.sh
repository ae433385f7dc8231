# iommu-blk-ext4 with iommu.strict=0 on the guest's command line, and the
# device's look for the driver's next request (--iommu-poll) on even in
# L1's one CPU, where it is off by default: the hold-back of kicks and
# its end must lose no request.
IOMMU_ARGS="--iommu --iommu-poll 200 -v"
. /rig/scenarios/iommu-blk-ext4/l1.sh
token="$token iommu.strict=0"
# the option took: wisp says so when it creates the device (-v: at the
# info level)
scenario_post() {
    iommu_post
    if grep -q "virtio-iommu: after each answer, looks for the next request for up to 200 us" "$log"; then
        C ok iommu-poll "wisp's log line for --iommu-poll 200"
    else C fail iommu-poll "no log line for --iommu-poll 200"; fi
}
