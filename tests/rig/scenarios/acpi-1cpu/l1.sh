# Two disks and the rng, all described by the DSDT alone (wisp puts no
# virtio_mmio.device= on the command line with ACPI); -v so wisp's log
# says how the VM ended.
scenario_pre() {
    head -c 8388608 /dev/urandom > "$img"
    truncate -s 8M "$img2"
    disk "$img" readonly
    disk "$img2"
    VMM_EXTRA="$VMM_EXTRA --rng -v"
}
scenario_post() {
    cmp_val nproc "--cpus" "$CPUS" "guest nproc" "$(gv nproc)"
    # header 44, a local APIC (8) per vCPU, IOAPIC 12, one override 10,
    # LINT1 NMI 6
    cmp_val madt-len "MADT bytes for $CPUS vCPUs" "$((44 + 8 * CPUS + 28))" \
        "guest /sys/firmware/acpi/tables/APIC" "$(gv madt-len)"
    cmp_val vda-data "sha256 of the first image's first MiB" \
        "$(head -c 1048576 "$img" | sha)" "guest /dev/vda" "$(gv vda-sha)"
    if tr -d '\r' < "$log" | grep -q 'guest powered off (ACPI S5)'; then
        C ok s5 "wisp: guest powered off (ACPI S5)"
    else
        C fail s5 "wisp's log has no ACPI S5 power-off"
    fi
}
