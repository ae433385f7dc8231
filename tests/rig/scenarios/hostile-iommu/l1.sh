# wisp's virtio-iommu with one endpoint behind it, a virtio-rng that no
# driver ever uses: the guest's virtio-iommu driver is kept from
# registering (initcall_blacklist), so the endpoint's probe waits for an
# IOMMU forever and the attacker owns the IOMMU alone. vda (16 MiB,
# iommu=off) keeps serving the guest's I/O between the attack groups;
# after wisp exited each write made there is in its image.
. /rig/scenarios/hostile-guest/groups-l1.sh
token="$token initcall_blacklist=virtio_iommu_drv_init"
scenario_pre() {
    truncate -s 16M "$img"
    VMM_EXTRA="$VMM_EXTRA --disk path=$img,iommu=off --iommu --rng"
    ndisk=$((ndisk + 1))
}
scenario_post() {
    # wisp's own device only: slots 0-4
    hostile_groups_post "$img" in
}
