# The disk must sit in an IOMMU group with a translating (DMA) domain,
# then blk-ext4's file-system test runs through the IOMMU.
iommu_checks() {
    dev=$(readlink -f /sys/block/vda/device/..)
    grp=$(readlink -f "$dev/iommu_group" 2> /dev/null)
    if [ -n "$grp" ] && [ -e "$grp/devices/${dev##*/}" ]; then
        ok iommu-group "${dev##*/} in ${grp##*/}"
    else
        bad iommu-group "vda's ${dev##*/} in no group; groups: $(ls /sys/kernel/iommu_groups 2>&1 | tr '\n' ' ')"
        return
    fi
    val iommu-grouped "$(ls -d /sys/kernel/iommu_groups/*/devices/* 2> /dev/null | wc -l)"
    typ=$(cat "$grp/type" 2> /dev/null)
    case "$typ" in
    DMA | DMA-FQ) ok iommu-dma "$typ" ;;
    *) bad iommu-dma "domain type '$typ' (not translated)" ;;
    esac
}
t_main() {
    iommu_checks
    # blk-ext4's l2.sh defines its own t_main: source it and run that.
    . /rig/scenarios/blk-ext4/l2.sh
    t_main
}
