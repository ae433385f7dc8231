# wisp --api-sock boots the L2 kernel; at its WISP-PAUSE-ME L1 sends its
# CLOCK_REALTIME, at WISP-PAUSE-NOW it pauses the VM for PAUSE_S seconds
# (longer than the guest's 20 s soft-lockup threshold; in this rig the
# guest's detector stays quiet even without wisp's KVM_KVMCLOCK_CTRL,
# measured, see docs/api.md), resumes it and sends its realtime again; at WISP-BUTTON-ARMED it sends
# SendCtrlAltDel, which with ACPI presses the power button: the guest's
# handler powers off (S5).
API_SOCKET=/tmp/$name.sock
PAUSE_S=25
# api KEY CURL-ARGS...: one request; ok when the status line says 204
api() {
    k=$1; shift
    if curl --unix-socket "$API_SOCKET" -i "$@" > "/tmp/$name.curl" 2>&1 &&
        head -n 1 "/tmp/$name.curl" | grep -q '^HTTP/1.1 204'; then C ok "$k"
    else C fail "$k" "$(tr -d '\r' < "/tmp/$name.curl" | tr '\n' ' ' | cut -c1-300)"; fi
}
scenario_pre() {
    rm -f "$API_SOCKET"
    VMM_CMD="/bin/wisp --api-sock $API_SOCKET -v"
}
scenario_during() {
    # wisp execs wisp-api, which loads a dozen libraries under TCG.
    w=0
    while [ ! -S "$API_SOCKET" ] && [ "$w" -lt 300 ] && kill -0 "$vpid" 2> /dev/null; do
        usleep 100000; w=$((w + 1))
    done
    if [ -S "$API_SOCKET" ]; then C ok api-socket "after $((w / 10)).$((w % 10)) s"
    else C fail api-socket "no socket at $API_SOCKET after $((w / 10)) s"; return; fi
    api boot-source -X PUT 'http://localhost/boot-source' \
        -d "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"$initrd\",
             \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off $token\"}"
    api machine-config -X PUT 'http://localhost/machine-config' \
        -d "{\"vcpu_count\": $CPUS, \"mem_size_mib\": $MEM}"
    api instance-start -X PUT 'http://localhost/actions' \
        -d '{"action_type": "InstanceStart"}'
    if ! wait_for WISP-PAUSE-ME 150; then
        C fail paused "the guest never printed WISP-PAUSE-ME"; return
    fi
    # L1's realtime before and after: the guest compares each with its
    # own (under TCG L1's clocks may drift from L2's kvmclock, so it is
    # the change across the pause that counts).
    to_guest "l1-before $(date +%s)"
    if ! wait_for WISP-PAUSE-NOW 60; then
        C fail paused "the guest never printed WISP-PAUSE-NOW"; return
    fi
    api paused -X PATCH 'http://localhost/vm' -d '{"state": "Paused"}'
    t0=$(stamp -m)
    v=$(curl --unix-socket "$API_SOCKET" -s 'http://localhost/' 2>&1)
    case "$v" in *'"state":"Paused"'*) C ok state-paused ;;
    *) C fail state-paused "GET / said: $v" ;; esac
    sleep "$PAUSE_S"
    api resumed -X PATCH 'http://localhost/vm' -d '{"state": "Resumed"}'
    t1=$(stamp -m)
    C ok paused-for "$((t1 - t0)) ms"
    to_guest "l1-after $(date +%s)"
    if ! wait_for WISP-BUTTON-ARMED 120; then
        C fail ctrl-alt-del "the guest never printed WISP-BUTTON-ARMED"; return
    fi
    api ctrl-alt-del -X PUT 'http://localhost/actions' \
        -d '{"action_type": "SendCtrlAltDel"}'
}
scenario_post() {
    if tr -d '\r' < "$log" | grep -q 'guest powered off (ACPI S5)'; then
        C ok s5 "wisp: guest powered off (ACPI S5)"
    else
        C fail s5 "wisp did not log 'guest powered off (ACPI S5)'"
    fi
}
