# iommu-blk-ext4 with iommu.strict=0 on the guest's command line, the
# IOMMU's requests on its I/O thread (--iommu-requests thread, the
# default, said; iommu-strict has them in the vCPU), and the thread's look for the
# driver's next request (--iommu-poll) on even in L1's one CPU, where it
# is off by default: the hold-back of kicks and its end must lose no
# request.
IOMMU_ARGS="--iommu --iommu-requests thread --iommu-poll 200 -v"
. /rig/scenarios/iommu-blk-ext4/l1.sh
token="$token iommu.strict=0"
# the options took: wisp says so when it creates the device (-v: at the
# info level)
scenario_post() {
    iommu_post
    if grep -q "virtio-iommu: after each answer, looks for the next request for up to 200 us" "$log" &&
       ! grep -q "virtio-iommu: queue 0 served in the kicking vCPU" "$log"; then
        C ok iommu-poll "wisp's log line for --iommu-poll 200, none for requests in the vCPU"
    else C fail iommu-poll "no log line for --iommu-poll 200, or the requests ran in the vCPU"; fi
}
