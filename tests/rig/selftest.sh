#!/bin/bash
# tests/rig/selftest.sh - tests of run.sh's own judging, without an L1: a
# stand-in qemu-system-x86_64 early in PATH prints a scripted L1 console
# (RIG-* lines), and each case checks run.sh's verdict lines and status.
# Needs the cache of tests/rig/setup.sh (run.sh still packs an initramfs).
# Prints "PASS case" / "FAIL case: why" per case, then
# "rig-selftest: N passed, N failed"; exit status 1 if any failed.
set -uo pipefail
RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d /tmp/wisp-rig-selftest.XXXXXX)
trap 'rm -rf "$T"' EXIT

cat > "$T/qemu-system-x86_64" <<'FAKE'
#!/bin/bash
# the boot count: lanes boot their L1s side by side
exec 9> "$FAKE_DIR/count.lock"; flock 9
n=$(cat "$FAKE_DIR/count" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$FAKE_DIR/count"
flock -u 9
# a lane's L1 (RIG_LANE=K/N) plays the case's "K" script
[ -n "${RIG_LANE:-}" ] && n=L${RIG_LANE%%/*}
# run NAME [STATUS]: the generic markers of a good run
run() {
    echo "RIG-BEGIN $1"
    echo "RIG-M $1 WISP-INIT-RAN"; echo "RIG-M $1 WISP-CPUS 1"; echo "RIG-M $1 WISP-MEMTOTAL 240000"
    echo "RIG-M $1 WISP-CMDLINE console=ttyS0 rigtoken=$1-7f3a rigtest=$1"; echo "RIG-M $1 WISP-READY"
    echo "RIG-M $1 WISP-ECHO <ping-$1>"
}
end() { echo "RIG-EXIT $1 ${2:-0} 1000"; echo "RIG-END $1"; }
panic() { echo "RIG-BEGIN $1"; echo "Kernel panic - not syncing: selftest"; exit 0; }
echo "RIG-L1-UP 1.0"; echo "RIG-L1-KVM 2.0"
case "$FAKE_MODE.$n" in
    fail-once.1) run bzimage-1cpu; end bzimage-1cpu 1; run pvh-1cpu; end pvh-1cpu ;;
    fail-once.2) run bzimage-1cpu; end bzimage-1cpu ;;   # must never be asked for
    l1-death.1) run bzimage-1cpu; end bzimage-1cpu; panic pvh-1cpu ;;
    l1-death.2) run pvh-1cpu; end pvh-1cpu ;;
    l1-death-twice.1) panic pvh-1cpu ;;
    l1-death-twice.2) panic pvh-1cpu ;;
    l1-death-twice.3) run pvh-1cpu; end pvh-1cpu ;;
    l1-death-thrice.*) panic pvh-1cpu ;;
    l1-death-fail.1) panic pvh-1cpu ;;
    l1-death-fail.2) run pvh-1cpu; end pvh-1cpu 1 ;;
    # what the old vconsole check accepted: hvc0 listed, nothing else
    vconsole-listed.1) run vconsole; echo "RIG-M vconsole WISP-T-OK console-hvc0 active consoles: hvc0"; end vconsole ;;
    # rng without the second read / the comparison
    rng-one-read.1) run rng; for k in hwrng-dev rng-virtio rng-read-1; do echo "RIG-M rng WISP-T-OK $k"; done; end rng ;;
    # a Debian boot that printed the generic markers but never showed that
    # systemd reached multi-user.target or powered off
    rootfs-generic-only.1) run debian-rootfs; end debian-rootfs ;;
    # a chatty scenario: more than a pipe's 64 KiB of lines between its
    # RIG-BEGIN and RIG-EXIT (a reader that stops at the first match must
    # not turn that into "not started")
    big-output.1) run pvh-1cpu
        for i in $(seq 3000); do echo "RIG-L pvh-1cpu line $i of a chatty guest's console output"; done
        end pvh-1cpu ;;
    # the L1 hook watchdog killed a scenario whose hooks blocked
    hooks-hung.1) run pvh-1cpu; echo "RIG-V pvh-1cpu rig: hooks hung: the scenario was still running 300 s after it began; its processes:"
        echo "RIG-V pvh-1cpu rig:   42 sh (wchan pipe_write)"; end pvh-1cpu 124 ;;
    # heartbeats keep a quiet L1 alive past the silence window
    heartbeat.1) echo "RIG-BEGIN pvh-1cpu"
        for i in 1 2 3 4 5; do sleep 2; echo "RIG-HB $i"; done
        run pvh-1cpu | grep -v RIG-BEGIN; end pvh-1cpu ;;
    # a console that stops (no heartbeat) is an L1 death: rerun
    silent.1) echo "RIG-BEGIN pvh-1cpu"; sleep 60 ;;
    silent.2) run pvh-1cpu; end pvh-1cpu ;;
    # two lanes: each L1 runs its own share
    lanes.L1) run bzimage-1cpu; end bzimage-1cpu; run pvh-4cpu; end pvh-4cpu 1 ;;
    lanes.L2) run pvh-1cpu; end pvh-1cpu ;;
    # a lane that dies with no verdict fails each of its scenarios
    lanes-lost.L1) run bzimage-1cpu; end bzimage-1cpu ;;
    lanes-lost.L2) pkill -f -- "--only pvh-1cpu" ; exit 0 ;;
esac
echo "RIG-L1-DONE 9.0"
FAKE
chmod +x "$T/qemu-system-x86_64"

pass=0 fail=0
# case NAME ONLY EXPECTED_STATUS EXPECTED_BOOTS PATTERN...: every PATTERN
# (an extended regex) must match a line of run.sh's stdout
case_() {
    local name=$1 only=$2 want_rc=$3 want_boots=$4 out rc boots p why=""
    shift 4
    rm -f "$T/count"
    out=$(PATH="$T:$PATH" FAKE_DIR=$T FAKE_MODE=$name RIG_SKIP_SETUP=1 RIG_WORK=$T/work RIG_L1_SILENCE=6 \
        RIG_LANES=${LANES_:-1} "$RIG_DIR/run.sh" --wisp /bin/true --only "$only" 2> "$T/$name.err")
    rc=$?
    boots=$(cat "$T/count" 2>/dev/null || echo 0)
    [ "$rc" = "$want_rc" ] || why+="status $rc (want $want_rc); "
    [ "$boots" = "$want_boots" ] || why+="$boots L1 boots (want $want_boots); "
    for p in "$@"; do
        grep -qE -- "$p" <<< "$out" || why+="no line matching '$p'; "
    done
    if [ -z "$why" ]; then echo "PASS $name"; pass=$((pass + 1))
    else
        echo "FAIL $name: ${why%; }"
        echo "$out" | sed 's/^/  | /'
        tail -n 5 "$T/$name.err" | sed 's/^/  ! /'
        fail=$((fail + 1))
    fi
}

# a scenario that failed on its own is a FAIL, not rerun into a pass
case_ fail-once bzimage-1cpu,pvh-1cpu 1 1 \
    '^FAIL bzimage-1cpu: VMM exit status 1' '^PASS pvh-1cpu$' '^rig: 1 passed, 1 failed$'
# an L1 death reruns the scenario once, and the PASS line says so
case_ l1-death bzimage-1cpu,pvh-1cpu 0 2 \
    '^PASS bzimage-1cpu$' '^PASS pvh-1cpu \(rerun in a fresh L1; its first run: L1 died during it .*Kernel panic' \
    '^rig: 2 passed, 0 failed$'
# two L1 deaths in a row: a second rerun, both deaths in the PASS line
case_ l1-death-twice pvh-1cpu 0 3 \
    '^PASS pvh-1cpu \(rerun in a fresh L1; its first run: L1 died during it .*Kernel panic.*; run 2: L1 died during it'
# a third death is the rig's FAIL: no more reruns
case_ l1-death-thrice pvh-1cpu 1 3 \
    '^FAIL pvh-1cpu: L1 died during this scenario.*run 2: L1 died during it'
# a rerun that fails shows both runs
case_ l1-death-fail pvh-1cpu 1 2 \
    '^FAIL pvh-1cpu: VMM exit status 1.*this was its rerun; its first run: L1 died during it'
# the checks files: hvc0 merely listed, or one rng read, is not a pass
case_ vconsole-listed vconsole 1 1 \
    '^FAIL vconsole: .*guest: no result for hvc0-dev.*L1: no result for hvc0-output.*L1: no result for hvc0-input'
case_ rng-one-read rng 1 1 '^FAIL rng: guest: no result for rng-read-2; guest: no result for rng-differ'

case_ rootfs-generic-only debian-rootfs 1 1 \
    '^FAIL debian-rootfs: .*guest: no result for pid1-systemd; guest: no result for root-vda; guest: no result for multi-user; guest: no result for no-failed-units; L1: no result for initramfs; L1: no result for multi-user-time; L1: no result for shutdown-hook; L1: no result for poweroff'

# judged on its one run, not rerun as if L1 had died
case_ big-output pvh-1cpu 0 1 '^PASS pvh-1cpu$' '^rig: 1 passed, 0 failed$'

# a hung hook is the scenario's FAIL, with what it waited in; not a rerun
case_ hooks-hung pvh-1cpu 1 1 '^FAIL pvh-1cpu: L1 hooks hung: the scenario was still running 300 s'
# 10 s of heartbeats and nothing else, with a 6 s silence window: alive
case_ heartbeat pvh-1cpu 0 1 '^PASS pvh-1cpu$'
# 6 s of nothing: stopped as dead, the scenario rerun in a fresh L1
case_ silent pvh-1cpu 0 2 '^PASS pvh-1cpu \(rerun in a fresh L1; its first run: L1 died during it \(QEMU status 143'

# two lanes side by side: every other scenario each, the verdicts added up
LANES_=2 case_ lanes bzimage-1cpu,pvh-1cpu,pvh-4cpu 1 2 \
    '^PASS bzimage-1cpu$' '^PASS pvh-1cpu$' '^FAIL pvh-4cpu: VMM exit status 1' \
    '^rig: 2 passed, 1 failed$'
# a lane killed before its verdict: its scenario is a FAIL, not lost
LANES_=2 case_ lanes-lost bzimage-1cpu,pvh-1cpu 2 2 \
    '^PASS bzimage-1cpu$' '^FAIL pvh-1cpu: lane 2/2 ended without a verdict' \
    '^rig: 1 passed, 1 failed$'

echo "rig-selftest: $pass passed, $fail failed"
[ "$fail" = 0 ]
