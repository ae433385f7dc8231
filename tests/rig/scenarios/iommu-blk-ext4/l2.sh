# Every translated device must sit in an IOMMU group with a translating
# (DMA) domain, then blk-ext4's file-system test runs through the IOMMU,
# then a raw read of the whole disk (dd, page cache dropped) whose sha256
# L1 compares with the image. The iommu-* scenarios source this file;
# IOMMU_TYPES is the domain types their mode allows; IOMMU_PRE, if set,
# names a function of theirs run first; IOMMU_OUT, if set, the virtio
# device IDs (0x0004 ...) that wisp left outside the IOMMU.
IOMMU_TYPES=${IOMMU_TYPES:-"DMA DMA-FQ"}
IOMMU_OUT=${IOMMU_OUT:-}
iommu_checks() {
    n=0 in=0 missing='' out=0 grouped_out=''
    # Every virtio device but the IOMMU itself (ID 0x0017) and those of
    # IOMMU_OUT is translated; those must be in no group.
    for v in /sys/bus/virtio/devices/*; do
        [ -e "$v/device" ] || continue
        id=$(cat "$v/device")
        [ "$id" = 0x0017 ] && continue
        dev=$(readlink -f "$v/..")
        grp=$(readlink -f "$dev/iommu_group" 2> /dev/null)
        case " $IOMMU_OUT " in
        *" $id "*)
            out=$((out + 1))
            # (readlink -f names a missing last component too)
            [ -e "$dev/iommu_group" ] && grouped_out="$grouped_out ${dev##*/}"
            continue ;;
        esac
        n=$((n + 1))
        if [ -n "$grp" ] && [ -e "$grp/devices/${dev##*/}" ]; then
            in=$((in + 1))
        else
            missing="$missing ${dev##*/}"
        fi
    done
    if [ "$n" -gt 0 ] && [ "$in" = "$n" ]; then
        ok iommu-group "$in of $n devices in groups: $(ls /sys/kernel/iommu_groups | tr '\n' ' ')"
    else
        bad iommu-group "$in of $n in groups; not:$missing; groups: $(ls /sys/kernel/iommu_groups 2>&1 | tr '\n' ' ')"
        return
    fi
    grouped=$(ls -d /sys/kernel/iommu_groups/*/devices/* 2> /dev/null | wc -l)
    val iommu-grouped "$grouped"
    if [ -n "$IOMMU_OUT" ]; then
        # The groups hold the translated devices and nothing else.
        if [ "$out" -gt 0 ] && [ -z "$grouped_out" ] && [ "$grouped" = "$in" ]; then
            ok iommu-outside "$out devices ($IOMMU_OUT) in no group; the groups list $grouped, the translated ones"
        else
            bad iommu-outside "$out devices of $IOMMU_OUT seen, in groups:${grouped_out:- none}; $grouped devices grouped, $in translated"
        fi
    fi
    dev=$(readlink -f /sys/block/vda/device/..)
    typ=$(cat "$(readlink -f "$dev/iommu_group")/type" 2> /dev/null)
    case " $IOMMU_TYPES " in
    *" $typ "*) ok iommu-dma "$typ" ;;
    *) bad iommu-dma "domain type '$typ', want one of: $IOMMU_TYPES" ;;
    esac
}
t_main() {
    # a kernel with the drivers as modules (a stock one) probes the disk
    # once the IOMMU has registered, in the background: wait, bounded
    n=0
    while [ ! -b /dev/vda ] && [ "$n" -lt 100 ]; do usleep 100000; n=$((n + 1)); done
    [ -n "${IOMMU_PRE:-}" ] && "$IOMMU_PRE"
    iommu_checks
    # blk-ext4's l2.sh defines its own t_main: source it and run that.
    . /rig/scenarios/blk-ext4/l2.sh
    t_main
    sync
    echo 3 > /proc/sys/vm/drop_caches
    if dd if=/dev/vda bs=64k 2> /tmp/err | sha > /tmp/dd.sha; then
        val dd-sha "$(cat /tmp/dd.sha)"
        ok dd
    else
        bad dd "$(last /tmp/err)"
    fi
}
