scenario_pre() {
    if [ "$VMM" = qemu ]; then VMM_EXTRA="-device virtio-rng-device"
    else VMM_EXTRA=--rng; fi
}
