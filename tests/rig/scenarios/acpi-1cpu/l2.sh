# The guest side of acpi-*: CPUs, tables and devices as ACPI described
# them. l2-init.sh ends with "reboot -f"; these scenarios power off
# instead, which ends wisp only through the FADT's sleep control register
# (the kernel has no other way to power off here: without it, poweroff
# halts and the scenario times out).
t_main() {
    val nproc "$(nproc)"
    t=/sys/firmware/acpi/tables
    val acpi-tables "$(ls $t | tr '\n' ' ')"
    if [ -f $t/APIC ] && [ -f $t/DSDT ] && [ -f $t/FACP ]; then
        ok acpi-tables
    else
        bad acpi-tables "want APIC DSDT FACP in $t: $(ls $t | tr '\n' ' ')"
    fi
    val madt-len "$(wc -c < $t/APIC)"
    case " $(cat /proc/cmdline) " in
        *virtio_mmio.device=*) bad no-cmdline-devices "$(cat /proc/cmdline)" ;;
        *) ok no-cmdline-devices ;;
    esac
    n=$(ls -d /sys/bus/acpi/devices/LNRO0005:* 2> /dev/null | wc -l)
    if [ "$n" = 3 ]; then ok acpi-lnro "$n"
    else bad acpi-lnro "$n LNRO0005 devices in /sys/bus/acpi, want 3"; fi
    b=$(ls /sys/bus/platform/drivers/virtio-mmio 2> /dev/null | grep -c '^LNRO0005:')
    v=$(ls /sys/bus/virtio/devices 2> /dev/null | wc -l)
    if [ "$b" = 3 ] && [ "$v" = 3 ]; then ok virtio-bound "$b bound, $v virtio devices"
    else bad virtio-bound "$b LNRO0005 bound to virtio-mmio, $v virtio devices, want 3 and 3"; fi
    if [ -e /sys/bus/acpi/devices/ACPI0013:00 ]; then ok ged; else bad ged "no ACPI0013 (GED)"; fi
    if [ -e /sys/bus/acpi/devices/PNP0C0C:00 ]; then ok pwrb; else bad pwrb "no PNP0C0C (power button)"; fi
    if [ -b /dev/vda ] && [ -b /dev/vdb ]; then ok disks; else bad disks "no /dev/vda or /dev/vdb"; fi
    val vda-sha "$(head -c 1048576 /dev/vda | sha)"
    cur=$(cat /sys/class/misc/hw_random/rng_current 2> /dev/null)
    case "$cur" in
        virtio*) ok rng-virtio "$cur" ;;
        *) bad rng-virtio "rng_current '$cur'" ;;
    esac
}
reboot() {
    echo "WISP-POWEROFF"
    poweroff -f
}
