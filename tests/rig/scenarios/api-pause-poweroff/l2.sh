# The guest of api-pause-poweroff: at WISP-PAUSE-ME L1 sends its realtime
# ("l1-before SEC"), at WISP-PAUSE-NOW it pauses the VM, and once it
# resumed it sends "l1-after SEC"; then (in place of l2-init.sh's reboot)
# the guest waits for the ACPI power button and powers off.
t_main() {
    # A check that could not fail without the detector: it must be on,
    # with a threshold below the pause.
    wt=$(cat /proc/sys/kernel/watchdog_thresh 2> /dev/null)
    sw=$(cat /proc/sys/kernel/soft_watchdog 2> /dev/null)
    cs=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2> /dev/null)
    val clocksource "$cs"
    if [ "$sw" = 1 ] && [ -n "$wt" ] && [ $((2 * wt)) -lt 25 ] && [ "$cs" = kvm-clock ]; then
        ok watchdog-armed "soft lockup after $((2 * wt)) s, clocksource $cs"
    else
        bad watchdog-armed "soft_watchdog '$sw', watchdog_thresh '$wt', clocksource '$cs' (want 1, < 12.5, kvm-clock)"
    fi
    echo "WISP-PAUSE-ME"
    read -r w1 l1a || l1a=
    g1=$(date +%s)
    # L1 pauses the VM once it sees this, and sends l1-after when it
    # resumed it; the guest waits in read meanwhile.
    echo "WISP-PAUSE-NOW"
    read -r w2 l1b || l1b=
    g2=$(date +%s)
    if [ "$w1" != l1-before ] || [ "$w2" != l1-after ] || [ -z "$l1a" ] || [ -z "$l1b" ]; then
        bad clock-after-pause "L1 sent '$w1 $l1a' and '$w2 $l1b', want 'l1-before SEC' and 'l1-after SEC'"
    else
        d1=$((g1 - l1a)) d2=$((g2 - l1b))
        val clock-offsets "before $d1 s, after $d2 s (guest - L1), paused $((l1b - l1a)) s"
        # Whole seconds on both sides: 2 s of slack. A clock frozen
        # while paused would be 25 s further behind.
        if [ $((d2 - d1)) -ge -2 ] && [ $((d2 - d1)) -le 2 ]; then
            ok clock-after-pause "guest - L1 realtime: $d1 s before, $d2 s after the pause"
        else
            bad clock-after-pause "guest - L1 realtime went from $d1 s to $d2 s across the $((l1b - l1a)) s pause"
        fi
    fi
    # The watchdog's hrtimer runs every watchdog_thresh * 2 / 5 s: after
    # twice that every CPU has looked at its clock since the resume.
    sleep $((wt > 0 && wt < 30 ? wt : 10))
    r=$(dmesg | grep -E 'soft lockup|rcu.*(stall|self-detected)|hung_task|watchdog: BUG' | head -n 3 | tr '\n' ' ')
    if [ -z "$r" ]; then ok no-lockup-report "dmesg clean $(cut -d' ' -f1 /proc/uptime) s after boot"
    else bad no-lockup-report "$r"; fi
}
# l2-init.sh ends with "reboot -f": here the ACPI power button ends it.
# The button driver's input device (evdev) gets KEY_POWER; this is the
# smallest acpid: read one event, check it, power off.
reboot() {
    ev=
    for d in /sys/class/input/event*; do
        [ "$(cat "$d/device/name" 2> /dev/null)" = "Power Button" ] && ev=/dev/input/${d##*/}
    done
    if [ -z "$ev" ] || [ ! -c "$ev" ]; then
        bad power-button "no Power Button input device ($(cat /sys/class/input/*/name 2> /dev/null | tr '\n' ','))"
        echo "WISP-POWEROFF"; poweroff -f
    fi
    # Opened before the marker: evdev gives a reader only the events
    # after its open, and L1 presses the button as soon as it sees it.
    exec 3< "$ev"
    echo "WISP-BUTTON-ARMED $ev"
    # struct input_event on x86-64: 16 bytes of time, u16 type, u16 code
    set -- $(timeout 60 dd bs=24 count=1 <&3 2> /dev/null | od -An -tu2 -j16 -N4)
    exec 3<&-
    if [ "${1:-}" = 1 ] && [ "${2:-}" = 116 ]; then ok power-button "EV_KEY KEY_POWER on $ev"
    else bad power-button "read '${1:-} ${2:-}' from $ev within 60 s, want EV_KEY (1) KEY_POWER (116)"; fi
    echo "WISP-POWEROFF"
    poweroff -f
}
