# The same guest test as iommu-blk-ext4; the rng (0x0004), served by a
# server wisp left outside the IOMMU, must be in no IOMMU group and work
# untranslated.
IOMMU_OUT=0x0004
rng_untranslated() {
    cur=$(cat /sys/class/misc/hw_random/rng_current 2> /dev/null)
    head -c 64 /dev/hwrng > /tmp/rng 2> /tmp/err
    n=$(wc -c < /tmp/rng)
    distinct=$(od -An -v -tx1 /tmp/rng | tr -s ' ' '\n' | grep . | sort -u | wc -l)
    case "$cur" in
    virtio*) if [ "$n" -ge 64 ] && [ "$distinct" -gt 1 ]; then
            ok rng-untranslated "$cur: $n bytes, $distinct distinct values"
        else
            bad rng-untranslated "$cur: $n bytes, $distinct distinct values ($(last /tmp/err))"
        fi ;;
    *) bad rng-untranslated "rng_current '$cur' is not the virtio device" ;;
    esac
}
IOMMU_PRE=rng_untranslated
. /rig/scenarios/iommu-blk-ext4/l2.sh
