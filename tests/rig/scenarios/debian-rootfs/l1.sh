# The image is the L1 initramfs's copy of the cached one (tests/rig/rootfs.sh;
# run.sh puts it in only for this scenario): the guest may write to it.
# The rootfs's marker unit (tests/rig/rootfs/wisp-marker) prints the rig's
# markers once multi-user.target is active, echoes the line vmrun sends,
# then runs `systemctl poweroff`; its shutdown hook reports the end of
# systemd's shutdown (WISP-SHUTDOWN poweroff root=ro).
# quiet: the kernel log and systemd's status lines cost an exit per byte
# on the emulated 8250 (systemd still reports failed units)
token="$token root=/dev/vda quiet"
scenario_pre() {
    disk /l2/rootfs.ext4
    [ "$VMM" = wisp ] && VMM_EXTRA="$VMM_EXTRA -v"
}
scenario_post() {
    ir=$(tr -d '\r' < "$log" | sed -n 's/.*WISP-INITRAMFS-ROOT //p' | head -n 1)
    if [ -n "$ir" ]; then C ok initramfs "mounted $ir, switch_root to systemd"
    else C fail initramfs "no WISP-INITRAMFS-ROOT: $(tr -d '\r' < "$log" | grep -o 'WISP-INITRAMFS-FAIL.*' | head -n 1)"; fi
    t=$(awk '$2 == "mark" && $3 == "WISP-MULTI-USER" {print $4}' "/tmp/$name.vmrun")
    ti=$(awk '$2 == "mark" && $3 == "WISP-INITRAMFS" {print $4}' "/tmp/$name.vmrun")
    if [ -n "$t" ]; then
        C ok multi-user-time "$VMM start to multi-user.target: $((t / 1000000)) ms (initramfs at $((${ti:-0} / 1000000)) ms)"
    else
        C fail multi-user-time "no WISP-MULTI-USER from the guest"
    fi
    # tests/rig/rootfs/wisp-shutdown: systemd-shutdown got to the end
    sh=$(tr -d '\r' < "$log" | sed -n 's/.*WISP-SHUTDOWN //p' | head -n 1)
    if [ "$sh" = "poweroff root=ro" ]; then C ok shutdown-hook "systemd-shutdown ran the hook: $sh"
    else C fail shutdown-hook "want 'WISP-SHUTDOWN poweroff root=ro' from systemd-shutdown, got '${sh:-nothing}'"; fi
    # wisp says how the VM ended; QEMU -no-reboot exits 0 on a power-off too
    if [ "$VMM" = qemu ]; then
        if tr -d '\r' < "$log" | grep -q 'reboot: Power down'; then C ok poweroff "guest: reboot: Power down"
        else C fail poweroff "the guest never said 'reboot: Power down'"; fi
    elif tr -d '\r' < "$log" | grep -q 'guest powered off (ACPI S5)'; then
        C ok poweroff "wisp: guest powered off (ACPI S5) after systemctl poweroff"
    else
        C fail poweroff "wisp's log has no ACPI S5 power-off"
    fi
}
