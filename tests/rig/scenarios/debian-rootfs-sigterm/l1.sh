# The image is the L1 initramfs's copy of the cached one, as in
# debian-rootfs (which may have booted it before in the same L1: it must be
# clean then too). wisp.marker=button: the marker unit prints
# WISP-WAIT-BUTTON after its checks instead of powering off. The shutdown
# hook (tests/rig/rootfs/wisp-shutdown) prints WISP-SHUTDOWN poweroff
# root=ro once systemd stopped every unit and remounted / read-only.
STOP_TMO=120
token="$token root=/dev/vda quiet wisp.marker=button"
fsck_img() {
    out=$(e2fsck -fn /l2/rootfs.ext4 2>&1); st=$?
    sum=$(echo "$out" | tail -n 1)
    if [ "$st" = 0 ] && ! echo "$out" | grep -qi 'recovery'; then
        C ok "$1" "e2fsck -fn: $sum"
    else
        C fail "$1" "e2fsck -fn status $st: $(echo "$out" | tr '\n' ' ' | cut -c1-300)"
    fi
}
scenario_pre() {
    fsck_img fsck-before
    disk /l2/rootfs.ext4
    VMM_EXTRA="$VMM_EXTRA -v --shutdown-timeout $STOP_TMO"
}
scenario_during() {
    t_term=''
    if ! wait_for WISP-WAIT-BUTTON "$tmo"; then C fail sigterm "no WISP-WAIT-BUTTON from the guest"; return; fi
    pid=$(pidof wisp)
    if [ -z "$pid" ]; then C fail sigterm "no wisp process"; return; fi
    t_term=$(stamp -m)
    kill -TERM "$pid"
    C ok sigterm "SIGTERM to wisp (pid $pid) after WISP-WAIT-BUTTON"
}
scenario_post() {
    l=$(tr -d '\r' < "$log")
    ir=$(echo "$l" | sed -n 's/.*WISP-INITRAMFS-ROOT //p' | head -n 1)
    if [ -n "$ir" ]; then C ok initramfs "mounted $ir, switch_root to systemd"
    else C fail initramfs "no WISP-INITRAMFS-ROOT: $(echo "$l" | grep -o 'WISP-INITRAMFS-FAIL.*' | head -n 1)"; fi
    if echo "$l" | grep -q 'SIGTERM: pressing the power button'; then C ok button "wisp: $(echo "$l" | grep -o 'SIGTERM: pressing.*' | head -n 1)"
    else C fail button "wisp's log does not say it pressed the power button"; fi
    sh=$(echo "$l" | sed -n 's/.*WISP-SHUTDOWN //p' | head -n 1)
    if [ "$sh" = "poweroff root=ro" ]; then C ok shutdown-hook "systemd-shutdown ran the hook: $sh"
    else C fail shutdown-hook "want 'WISP-SHUTDOWN poweroff root=ro' from systemd-shutdown, got '${sh:-nothing}'"; fi
    if [ -z "$t_term" ]; then C fail stop-time "no SIGTERM sent"
    elif [ "$rc" != 0 ]; then C fail stop-time "wisp exit status $rc after SIGTERM (want 0: the guest powered off)"
    else
        d=$((t1 - t_term))
        # wisp's own bound is STOP_TMO; half of it leaves no doubt that the
        # guest, not the timeout, ended the VM
        if [ "$d" -lt $((STOP_TMO * 500)) ]; then C ok stop-time "SIGTERM to wisp's exit 0: $d ms (--shutdown-timeout $STOP_TMO s)"
        else C fail stop-time "SIGTERM to exit took $d ms, not well within --shutdown-timeout $STOP_TMO s"; fi
    fi
    if echo "$l" | grep -q 'guest powered off (ACPI S5)'; then C ok poweroff "wisp: guest powered off (ACPI S5) after the power button"
    else C fail poweroff "wisp's log has no ACPI S5 power-off"; fi
    fsck_img fsck-after
    t=$(awk '$2 == "mark" && $3 == "WISP-MULTI-USER" {print $4}' "/tmp/$name.vmrun")
    [ -n "$t" ] && C ok multi-user-time "wisp start to multi-user.target: $((t / 1000000)) ms"
}
