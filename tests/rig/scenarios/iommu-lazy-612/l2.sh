# iommu-blk-ext4's guest test on Linux 6.12, lazy mode only: DMA-FQ.
IOMMU_TYPES="DMA-FQ"
IOMMU_PRE=iommu_612
iommu_612() {
    case "$(uname -r)" in
    6.12.*) ok kernel-612 "$(uname -r)" ;;
    *) bad kernel-612 "booted $(uname -r), not 6.12" ;;
    esac
    mods=$(grep -c '^virtio' /proc/modules)
    if grep -q '^virtio_iommu ' /proc/modules; then ok iommu-module "$mods virtio modules loaded"
    else bad iommu-module "virtio_iommu not loaded: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"; fi
}
. /rig/scenarios/iommu-blk-ext4/l2.sh
