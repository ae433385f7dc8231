# An 8 MiB disk of random data written here in L1 (the guest's sha256 of
# /dev/vda must match), the rng, the virtio console as wisp's stdio. The
# kernel registers hvc0 only when virtio_console is loaded, so the guest's
# first /dev/console is ttyS0 (console=ttyS0 last; with --console virtio
# wisp's 8250 writes nowhere) and l2-init.sh moves to /dev/hvc0 after
# loading the modules (rigconsole=hvc0): every marker then comes through
# the virtio console. -v: wisp's log says how the VM ended.
token="$token rigconsole=hvc0 console=ttyS0"
scenario_pre() {
    head -c 8388608 /dev/urandom > "$img"
    disk "$img"
    VMM_EXTRA="$VMM_EXTRA --rng -v"
}
scenario_post() {
    cmp_val nproc "--cpus" "$CPUS" "guest nproc" "$(gv nproc)"
    cmp_val vda-data "sha256 of the 8 MiB image written in L1" \
        "$(sha < "$img")" "guest's sha256 of /dev/vda" "$(gv vda-sha)"
    out=$(tr -d '\r' < "$log" | sed -n 's/^WISP-HVC0-OUT //p' | head -n 1)
    if [ -n "$out" ] && [ "$out" = "$(gv hvc0-nonce)" ]; then
        C ok hvc0-output "line written to /dev/hvc0 ($out) came out of wisp's stdout"
    else
        C fail hvc0-output "the line the guest wrote to /dev/hvc0 ('$(gv hvc0-nonce)') is not in wisp's stdout"
    fi
    if tr -d '\r' < "$log" | grep -q 'guest powered off (ACPI S5)'; then
        C ok s5 "wisp: guest powered off (ACPI S5)"
    else
        C fail s5 "wisp's log has no ACPI S5 power-off"
    fi
}
