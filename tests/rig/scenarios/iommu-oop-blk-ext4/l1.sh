# iommu-blk-ext4's checks, the disk served by wisp-blk behind the IOMMU,
# and an rng served by wisp-rng outside it (--server-iommu off).
. /rig/scenarios/iommu-blk-ext4/l1.sh
scenario_pre() {
    truncate -s 64M "$img"
    [ -x /bin/wisp-blk ] || C fail wisp-blk "/bin/wisp-blk not in L1"
    SPAWN="/bin/wisp-blk --disk path=$img"
    # wisp-blk, -rng, -console and -net are one binary, which picks its
    # device by its name.
    ln -sf /bin/wisp-blk /tmp/wisp-rng
    VMM_EXTRA="$VMM_EXTRA --iommu --spawn-server /tmp/wisp-rng --server-iommu off"
}
scenario_post() {
    ext4_image_checks
    [ "$rc" = 0 ] || return
    cmp_val dd-image "guest sha256 of dd if=/dev/vda" "$(gv dd-sha)" "sha256 of the image" "$(sha < "$img")"
    # The server translated: it took the guest's MAPs and UNMAPs.
    line=$(grep -o 'wisp-blk: IOMMU: .*' "/tmp/$name.vmrun" "$log" 2> /dev/null | head -n 1)
    case "$line" in
    *" 0 maps"* | '') C fail server-iommu "no IOMMU counters from wisp-blk: '$line'" ;;
    *) C ok server-iommu "${line#*: }" ;;
    esac
    # The server outside the IOMMU got no IOMMU channel.
    line=$(grep -o 'wisp-rng: .*' "/tmp/$name.vmrun" "$log" 2> /dev/null | tr '\n' ' ')
    case "$line" in
    *"wisp-rng: done"*) case "$line" in
        *IOMMU*) C fail server-untranslated "wisp-rng has an IOMMU table: '$line'" ;;
        *) C ok server-untranslated "no IOMMU counters from wisp-rng" ;;
        esac ;;
    *) C fail server-untranslated "no exit line from wisp-rng: '$line'" ;;
    esac
}
