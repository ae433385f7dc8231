# Sends a line for the guest to read from /dev/hvc0 once it asks, then
# checks both directions of hvc0 against the VMM's stdout and stdin.
scenario_during() {
    HVC_IN=hvc-in-$(cut -c1-8 /proc/sys/kernel/random/uuid)
    if wait_for WISP-T-HVC0-WAIT "$tmo"; then
        to_guest "$HVC_IN"
        # until the guest reported what it read (or gave up)
        wait_for 'WISP-T-[A-Z]* hvc0-input' 40
    fi
}
scenario_post() {
    out=$(tr -d '\r' < "$log" | sed -n 's/^WISP-HVC0-OUT //p' | head -n 1)
    if [ -n "$out" ]; then C ok hvc0-output "line written to /dev/hvc0 ($out) came out of the VMM's stdout"
    else C fail hvc0-output "the line the guest wrote to /dev/hvc0 never came out of the VMM's stdout"; fi
    cmp_val hvc0-input "line written into the VMM's stdin" "$HVC_IN" "line the guest read from /dev/hvc0" "$(gv hvc0-input)"
}
