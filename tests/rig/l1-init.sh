#!/bin/sh
# /init of the L1 guest booted by tests/rig/run.sh (busybox, PID 1).
#
# After the common prologue (/rig/l1-common.sh: mounts, KVM) runs each
# scenario named in /rig/run-list, in a subshell, from its folder
# /rig/scenarios/NAME/ (params, and l1.sh with the hooks scenario_pre,
# scenario_during, scenario_post), each with its own timeout (vmrun -t), and
# reports on the console:
#   RIG-BEGIN name | RIG-L name <L2 console line, live>
#   RIG-M name <WISP-marker...> | RIG-V name <vmrun report>
#   RIG-C name ok|fail KEY [detail] (the L1 checks)
#   RIG-EXIT name <status> <ms> | RIG-END name
#   RIG-HB <uptime> (every 20 s, l1-common.sh's heartbeat: L1 is alive;
#   see run.sh's silence window)
. /rig/l1-common.sh

# The heartbeat: a console silent for run.sh's window means L1 itself
# stopped, not a quiet scenario, so the window can be short.
heartbeat

VMM=wisp WISP_ARGS=
[ -f /rig/config ] && . /rig/config

# ---- helpers for the scenarios' l1.sh
# Report an L1-side check of the running scenario: C ok|fail KEY [detail]
C() { echo "RIG-C $name $*"; }
# gv KEY: value the guest reported with "WISP-T-VAL KEY value"
gv() { tr -d '\r' < "$log" | sed -n "s/.*WISP-T-VAL $1 //p" | head -n 1; }
sha() { sha256sum | cut -c1-64; }
# wait_for MARK SECONDS: until the guest printed MARK or vmrun ($vpid) ended
wait_for() {
    w=0
    while [ "$w" -lt $(($2 * 5)) ]; do
        grep -q "$1" "$log" 2> /dev/null && return 0
        kill -0 "$vpid" 2> /dev/null || return 1
        usleep 200000; w=$((w + 1))
    done
    return 1
}
# wait_sock PATH: until a server listens there (5 s)
wait_sock() {
    w=0
    while [ "$w" -lt 50 ]; do [ -S "$1" ] && return 0; usleep 100000; w=$((w + 1)); done
    return 1
}
# cmp_val KEY WHAT1 VALUE1 WHAT2 VALUE2: ok when both values are equal
cmp_val() {
    if [ -z "$3" ]; then C fail "$1" "no value for $2"
    elif [ "$3" = "$5" ]; then C ok "$1" "$2 = $4"
    else C fail "$1" "$2 '$3' but $4 '$5'"; fi
}
# tap_up: the tap $NET_TAP, up, with L1's address $NET_L1/24 (tun.ko loaded
# when /dev/net/tun is missing; a tap an earlier scenario of this L1 left
# behind is replaced); reported as the check $TAP_KEY (default tap-created)
tap_up() {
    [ -c /dev/net/tun ] || insmod /lib/tun.ko 2> /tmp/tun.err
    ip link delete "$NET_TAP" 2> /dev/null
    if mktap "$NET_TAP" 2> /tmp/tap.err && ip link set "$NET_TAP" up &&
        ip addr add "$NET_L1/24" dev "$NET_TAP" 2>> /tmp/tap.err; then
        C ok "${TAP_KEY:-tap-created}" "$NET_TAP $NET_L1/24"
    else
        C fail "${TAP_KEY:-tap-created}" "$(cat /tmp/tun.err /tmp/tap.err 2> /dev/null | tr '\n' ' ')"
    fi
}
# nc_serve VAR -l|-ll PORT SCRIPT BODY: busybox nc in the background on
# PORT (-l: one connection, -ll: any number), running for each the shell
# script SCRIPT, written here from BODY; the listener's pid in VAR
nc_serve() {
    printf '#!/bin/sh\n%s\n' "$5" > "$4"
    chmod +x "$4"
    nc "$2" -p "$3" -e "$4" &
    eval "$1=\$!"
}
# to_guest LINE: one line to the guest's console (through vmrun's FIFO).
# Opening a FIFO for writing waits for a reader: once vmrun has ended
# there is none, so the write is given 10 s.
to_guest() {
    timeout 10 sh -c 'echo "$1" > "$2"' _ "$1" "/tmp/$name.in" ||
        C fail to-guest "no reader on /tmp/$name.in after 10 s (vmrun gone?): '$1' not sent"
}
# disk IMG [readonly]: a virtio-blk disk for the VMM command (with --vmm
# qemu the equivalent virtio-blk-device)
disk() {
    ro=
    if [ "$VMM" = qemu ]; then
        [ "${2:-}" = readonly ] && ro=,readonly=on
        VMM_EXTRA="$VMM_EXTRA -drive id=d$ndisk,file=$1,format=raw,if=none$ro -device virtio-blk-device,drive=d$ndisk"
    else
        [ "${2:-}" = readonly ] && ro=,readonly=on
        VMM_EXTRA="$VMM_EXTRA --disk path=$1$ro"
    fi
    ndisk=$((ndisk + 1))
}

run_scenario() {
    name=$1
    dir=/rig/scenarios/$name
    KERNEL='' INITRD='' CPUS='' MEM='' TIMEOUT='' CONSOLE=serial MARKS=''
    . "$dir/params"
    kernel=/l2/$KERNEL initrd=/l2/initrd-$INITRD.gz tmo=$TIMEOUT
    token="rigtoken=$name-7f3a rigtest=$name"
    input="ping-$name"
    log=/tmp/$name.log
    img=/tmp/$name.img img2=/tmp/$name-2.img
    VMM_EXTRA='' SPAWN='' VMM_CMD='' ndisk=0
    # the hooks; a scenario's l1.sh redefines those it needs
    scenario_pre() { :; }
    scenario_during() { :; }
    scenario_post() { :; }
    [ -f "$dir/l1.sh" ] && . "$dir/l1.sh"
    echo "RIG-BEGIN $name"
    : > "$log"
    scenario_pre
    if [ "$VMM" = qemu ]; then
        if [ "$CONSOLE" = virtio ]; then
            set -- qemu-system-x86_64 -L /usr/share/qemu -M microvm -accel kvm \
                -cpu host -m "$MEM" -smp "$CPUS" -kernel "$kernel" -initrd "$initrd" \
                -append "console=hvc0 reboot=t panic=-1 $token" \
                -nographic -no-reboot -nodefaults -serial none \
                -chardev stdio,id=con0,signal=off -device virtio-serial-device \
                -device virtconsole,chardev=con0
        else
            set -- qemu-system-x86_64 -L /usr/share/qemu -M microvm -accel kvm \
                -cpu host -m "$MEM" -smp "$CPUS" -kernel "$kernel" -initrd "$initrd" \
                -append "console=ttyS0 reboot=t panic=-1 $token" \
                -nographic -no-reboot -nodefaults -serial stdio
        fi
    else
        # shellcheck disable=SC2086 # WISP_ARGS is split on purpose
        set -- /bin/wisp run $WISP_ARGS --kernel "$kernel" --initrd "$initrd" \
            --cpus "$CPUS" --memory "$MEM" --cmdline "$token" --serial stdio
        [ "$CONSOLE" = virtio ] && set -- "$@" --console virtio
        [ -n "$SPAWN" ] && set -- "$@" --spawn-server "$SPAWN"
    fi
    # A scenario's own VMM command (scenario_pre sets VMM_CMD), e.g. wisp
    # --api-sock, configured from scenario_during.
    # shellcheck disable=SC2086 # split on purpose (no spaces in the words)
    [ -n "$VMM_CMD" ] && set -- $VMM_CMD
    # shellcheck disable=SC2086 # split on purpose (no spaces in the words)
    set -- "$@" $VMM_EXTRA
    echo "RIG-V $name command: $*"
    rm -f "/tmp/$name.in"; mkfifo "/tmp/$name.in"
    # wisp dumps its state (queues, interrupts, I/O threads) on SIGUSR1
    # (10): sent at the timeout, before the kill, so a hang is explained.
    dump=
    [ "$VMM" = qemu ] || dump="-d 10"
    t0=$(stamp -m)
    # MARKS (params): more guest markers for vmrun to time
    marks=''
    for m in $MARKS; do marks="$marks -m $m"; done
    # shellcheck disable=SC2086 # $dump is empty or two words; $marks split on purpose
    vmrun $dump -o "$log" -e "RIG-L $name" -t "$tmo" -m WISP-INIT-RAN -m WISP-READY $marks \
        -s "WISP-READY=$input" -i "/tmp/$name.in" -- "$@" 2>"/tmp/$name.vmrun" &
    vpid=$!
    scenario_during
    wait "$vpid"
    rc=$?
    t1=$(stamp -m)
    scenario_post
    rm -f "$img" "$img2"
    tr -d '\r' < "$log" | grep -o 'WISP-[A-Z0-9-]*.*' | sed "s/^/RIG-M $name /"
    sed "s/^/RIG-V $name /" "/tmp/$name.vmrun"
    echo "RIG-EXIT $name $rc $((t1 - t0))"
    echo "RIG-END $name"
}

# tree PID: PID's descendants, deepest first (the comm field of every
# process here has no space or parenthesis). Its variables are local: the
# recursion would otherwise print the last pid the inner call read, and
# the caller kill a stranger (it killed kvmkeep).
tree() {
    local s p pp
    for s in /proc/[0-9]*/stat; do
        read -r p _ _ pp _ 2> /dev/null < "$s" || continue
        if [ "$pp" = "$1" ]; then
            tree "$p"
            echo "$p"
        fi
    done
}

# hung NAME PID LIMIT: the scenario's subshell PID ran LIMIT s: what its
# processes wait in, then the whole tree killed, and the end of the
# scenario as run.sh judges it (status 124 and the "hooks hung" line: a
# FAIL, not an L1 death, since L1 is fine)
hung() {
    echo "RIG-V $1 rig: hooks hung: the scenario was still running $3 s after it began; its processes:"
    for p in $(tree "$2") "$2"; do
        echo "RIG-V $1 rig:   $p $(tr '\0' ' ' < "/proc/$p/cmdline" 2> /dev/null | cut -c1-120) (wchan $(cat "/proc/$p/wchan" 2> /dev/null))"
    done
    # the subshell first: killed children first, it would run its next
    # command (its RIG-EXIT) before its own turn came
    kids=$(tree "$2")
    kill -9 "$2" $kids 2> /dev/null
    tr -d '\r' < "/tmp/$1.log" 2> /dev/null | grep -o 'WISP-[A-Z0-9-]*.*' | sed "s/^/RIG-M $1 /"
    echo "RIG-EXIT $1 124 $(($3 * 1000))"
    echo "RIG-END $1"
}

# scenario_watch NAME PID: waits for the scenario's subshell PID. vmrun
# bounds the VMM, but a hook (a wait, a FIFO, a tool) could block the
# subshell forever: a watcher ends it TIMEOUT + 120 s after it began.
scenario_watch() {
    TIMEOUT=0
    . "/rig/scenarios/$1/params"
    # && and the watcher killed before its sleep: a sleep that ends early
    # must not run hung (it did, once, right after a scenario that passed)
    ( sleep $((TIMEOUT + 120)) && hung "$1" "$2" $((TIMEOUT + 120)) ) &
    wpid=$!
    wait "$2"
    kids=$(tree "$wpid")
    kill "$wpid" $kids 2> /dev/null
    wait "$wpid" 2> /dev/null
}

# RIG_KKEYS=1 on the host: KVM's VM count and the KVM, preempt-notifier
# and perf static keys' counts (tools/kkeys.c) before and after each
# scenario, to see what an L2 VM flips in L1 (docs/rig.md "When L1 itself
# dies")
keys() {
    [ -e /rig/kkeys ] &&
        echo "RIG-V $1 rig: L1 keys $2: $(kkeys kvm_usage_count preempt_notifier_key apic_sw_disabled apic_hw_disabled kvm_has_noapic_vcpu perf_sched_events kvm_xen_enabled 2>&1)"
}

# RIG_L1_TRACE=1 on the host: L1's KVM events (every kvm:* tracepoint:
# exits with their reason and RIP, entries, injected exceptions and
# interrupts, userspace exits) in a ring buffer; after a scenario whose
# guest triple-faulted, the events around its shutdown exit. What an L2 did and was given
# just before its shutdown is otherwise lost (SVM resets the vCPU).
TR=/sys/kernel/tracing
if [ -e /rig/l1-trace ]; then
    mount -t tracefs tracefs "$TR" 2> /dev/null
    echo 4096 > "$TR/buffer_size_kb"
    echo 1 > "$TR/events/kvm/enable" && echo "RIG-L1-TRACE on"
fi
trace_dump() {
    [ -e /rig/l1-trace ] || return 0
    # the 100 events before the first shutdown exit and 20 after it (the
    # VMM's teardown, mmu notifiers mostly, would fill a plain tail)
    grep -q 'guest triple fault' "/tmp/$1.log" 2> /dev/null &&
        awk '{ring[NR % 100] = $0}
            !f && / reason shutdown / {f = NR; for (i = NR - 99; i <= NR; i++) if (i > 0) print ring[i % 100]; next}
            f && NR <= f + 20' "$TR/trace" | sed "s/^/RIG-V $1 trace: /"
    echo > "$TR/trace"
}

while read -r n <&3; do
    case "$n" in ''|'#'*) continue ;; esac
    keys "$n" before
    # a subshell: one scenario's variables and hooks never reach the next
    ( run_scenario "$n" ) &
    scenario_watch "$n" $!
    keys "$n" after
    trace_dump "$n"
done 3< /rig/run-list
finish
