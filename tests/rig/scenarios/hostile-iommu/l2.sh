# The hostile-guest battery against wisp's virtio-iommu: tools/hostile.c
# (/bin/hostile) drives its virtio-mmio window through /dev/mem, one
# group of cases per run (keys "in-..."): the request queue attacked
# with the generic cases (an ATTACH or a MAP as the well-formed request)
# and the protocol's own (iommu-*: each rule of virtio 1.2 5.13.6 that
# names a status, the mapping limit, every domain ID, random requests),
# every recovery the protocol's round trip on the endpoint that the
# VIOT table lists. Then that endpoint is driven through IOVAs the
# attacker maps (group endpoint): refused DMA, faults on the event queue,
# UNMAP and DETACH under a live queue, an UNMAP racing requests. No driver is bound to it (l1.sh); between groups vda
# must take a write and read it back, and the console carries every line.
HOSTILE_SECS=2
. /rig/scenarios/hostile-guest/groups-l2.sh
t_main() {
    p=in-
    line=$(virtio_windows 0x0017 | head -n 1)
    base=${line%% *} rest=${line#* }
    vname=${rest%% *} pdev=${rest#* }
    other=''
    for b in /sys/block/vd*; do other=${b##*/}; done
    if [ -z "$line" ] || [ -z "$base" ] || [ -z "$other" ]; then
        bad "${p}target" "no virtio-iommu ($(ls /sys/bus/virtio/devices)) or no disk"; return
    fi
    ok "${p}target" "$vname on $pdev at 0x$base, disk $other"
    if [ -e "/sys/bus/virtio/devices/$vname/driver" ]; then
        bad "${p}no-driver" "$vname has a driver: $(readlink "/sys/bus/virtio/devices/$vname/driver")"; return
    fi
    ok "${p}no-driver" "no driver on $vname (virtio_iommu never registered)"
    hostile_groups "$p" "$base" 0 "$other"
    # the endpoint driven through IOVAs at the same time (keys in-ep-*)
    hostile_run "$p" "$base" endpoint
}
