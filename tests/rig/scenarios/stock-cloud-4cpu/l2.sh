# The guest side of stock-*-4cpu: the .deb's modules loaded, the ACPI
# tables in sysfs, the three virtio devices found through the DSDT and
# bound, and each one working: the disk's sha256 (L1 compares), hvc0 as the
# console (all markers came through it; one line written to /dev/hvc0
# itself), two reads of /dev/hwrng. Ends with poweroff (ACPI S5).
t_main() {
    val nproc "$(nproc)"
    nmod=$(echo "$MODS_LOADED" | grep -c '^WISP-MODULE ok')
    nbad=$(echo "$MODS_LOADED" | grep -c '^WISP-MODULE failed')
    if [ "$nmod" -ge 4 ] && [ "$nbad" = 0 ]; then ok modules "$nmod loaded"
    else bad modules "$nmod loaded, $nbad failed: $(echo "$MODS_LOADED" | tr '\n' ' ')"; fi
    t=/sys/firmware/acpi/tables
    if [ -f $t/APIC ] && [ -f $t/DSDT ] && [ -f $t/FACP ]; then ok acpi-tables "$(ls $t | tr '\n' ' ')"
    else bad acpi-tables "want APIC DSDT FACP in $t: $(ls $t 2> /dev/null | tr '\n' ' ')"; fi
    b=$(ls /sys/bus/platform/drivers/virtio-mmio 2> /dev/null | grep -c '^LNRO0005:')
    v=$(ls /sys/bus/virtio/devices 2> /dev/null | wc -l)
    if [ "$b" = 3 ] && [ "$v" = 3 ]; then ok virtio-bound "$b LNRO0005 bound, $v virtio devices"
    else bad virtio-bound "$b LNRO0005 bound to virtio-mmio, $v virtio devices, want 3 and 3"; fi
    active=$(cat /sys/class/tty/console/active 2> /dev/null)
    case " $active " in
        *" hvc0 "*) ok console-hvc0 "active consoles: $active" ;;
        *) bad console-hvc0 "active consoles: '$active'" ;;
    esac
    nonce=$(cut -c1-8 /proc/sys/kernel/random/uuid)
    val hvc0-nonce "$nonce"
    echo "WISP-HVC0-OUT $nonce" > /dev/hvc0
    if [ -b /dev/vda ]; then
        ok disk "$(cat /sys/block/vda/size) sectors"
        val vda-sha "$(sha < /dev/vda)"
    else
        bad disk "no /dev/vda"
    fi
    cur=$(cat /sys/class/misc/hw_random/rng_current 2> /dev/null)
    case "$cur" in
        virtio*) ok rng-virtio "$cur" ;;
        *) bad rng-virtio "rng_current '$cur'" ;;
    esac
    head -c 64 /dev/hwrng > /tmp/rng1 2> /dev/null
    head -c 64 /dev/hwrng > /tmp/rng2 2> /dev/null
    n1=$(wc -c < /tmp/rng1) n2=$(wc -c < /tmp/rng2)
    if [ "$n1" = 64 ] && [ "$n2" = 64 ] && ! cmp -s /tmp/rng1 /tmp/rng2; then ok rng-read "2 x 64 bytes, different"
    else bad rng-read "read $n1 and $n2 bytes (want 64 each, different)"; fi
}
reboot() {
    echo "WISP-POWEROFF"
    poweroff -f
}
