#!/bin/sh
# /init of the L1 guest booted by tests/rig/run.sh (busybox, PID 1).
#
# Loads KVM (SVM, emulated by QEMU TCG), then runs each scenario listed in
# /rig/scenarios with its own timeout (vmrun -t) and reports on the console:
#   RIG-BEGIN name | RIG-L name <L2 console line, live>
#   RIG-M name <WISP-marker...> | RIG-V name <vmrun report>
#   RIG-EXIT name <status> <ms> | RIG-END name
# PID 1 must never exit (the L1 kernel would panic): no `set -e`, and the
# script ends in `poweroff -f` followed by an endless sleep.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
echo "RIG-L1-UP $(cut -d' ' -f1 /proc/uptime)"

finish() {
    echo "RIG-L1-DONE $(cut -d' ' -f1 /proc/uptime)"
    sync
    poweroff -f
    sleep 1000000
}

for m in /lib/rig-modules/*.ko; do
    if ! insmod "$m" 2>/tmp/insmod.err; then
        echo "RIG-L1-ERROR insmod ${m##*/}: $(cat /tmp/insmod.err)"
        finish
    fi
done
if [ ! -c /dev/kvm ]; then
    echo "RIG-L1-ERROR /dev/kvm missing after loading kvm-amd"
    finish
fi
echo "RIG-L1-KVM $(cut -d' ' -f1 /proc/uptime)"

VMM=wisp WISP_ARGS=
[ -f /rig/config ] && . /rig/config

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

# Disks for the VMM command: disk IMG [readonly]; --spawn-server/--server
# for wisp-blk. With --vmm qemu the equivalent virtio-blk-device.
ndisk=0
disk() {
    if [ "$VMM" = qemu ]; then
        ro=; [ "${2:-}" = readonly ] && ro=,readonly=on
        VMM_EXTRA="$VMM_EXTRA -drive id=d$ndisk,file=$1,format=raw,if=none$ro -device virtio-blk-device,drive=d$ndisk"
    else
        ro=; [ "${2:-}" = readonly ] && ro=,readonly=on
        VMM_EXTRA="$VMM_EXTRA --disk path=$1$ro"
    fi
    ndisk=$((ndisk + 1))
}

# Before the VMM starts: images, servers, extra VMM arguments.
scenario_pre() {
    VMM_EXTRA= SPAWN= CON=serial ndisk=0
    img=/tmp/$name.img img2=/tmp/$name-2.img
    case "$name" in
        blk-ext4) truncate -s 64M "$img"; disk "$img" ;;
        oop-blk-ext4)
            truncate -s 64M "$img"
            [ -x /bin/wisp-blk ] || C fail wisp-blk "/bin/wisp-blk not in L1"
            SPAWN="/bin/wisp-blk --disk path=$img" ;;
        blk-dd) truncate -s 16M "$img"; disk "$img" ;;
        blk-ro)
            head -c 16777216 /dev/urandom > "$img"
            RO_SHA=$(sha < "$img")
            disk "$img" readonly ;;
        blk-two)
            truncate -s 16M "$img"; truncate -s 24M "$img2"
            disk "$img"; disk "$img2" ;;
        rng)
            if [ "$VMM" = qemu ]; then VMM_EXTRA="-device virtio-rng-device"
            else VMM_EXTRA=--rng; fi ;;
        vconsole) CON=virtio ;;
        oop-blk-kill)
            truncate -s 64M "$img"
            rm -f /tmp/blk.sock
            wisp-blk --socket /tmp/blk.sock --disk "path=$img" > /tmp/blk1.log 2>&1 &
            BLK_PID=$!
            if wait_sock /tmp/blk.sock; then C ok server-started "pid $BLK_PID"
            else C fail server-started "no socket after 5 s: $(tail -n 2 /tmp/blk1.log)"; fi
            VMM_EXTRA="--server /tmp/blk.sock" ;;
    esac
}

# While the VMM runs (oop-blk-kill only; the others just wait).
scenario_during() {
    case "$name" in
    oop-blk-kill)
        if ! wait_for WISP-T-KILL-NOW "$tmo"; then C fail killed "guest never printed WISP-T-KILL-NOW"; return; fi
        usleep 300000   # let the guest's dd loop get going
        kill -9 "$BLK_PID"
        wait "$BLK_PID" 2> /dev/null
        C ok killed "wisp-blk pid $BLK_PID killed with SIGKILL (guest in its dd loop)"
        if ! wait_for WISP-T-WAIT-SERVER 60; then
            C fail restarted "guest never asked for the server (WISP-T-WAIT-SERVER)"; return
        fi
        if kill -0 "$(pidof wisp)" 2> /dev/null; then C ok vmm-alive "wisp still running after its server died"
        else C fail vmm-alive "wisp is gone"; fi
        wisp-blk --socket /tmp/blk.sock --disk "path=$img" > /tmp/blk2.log 2>&1 &
        BLK_PID=$!
        if wait_sock /tmp/blk.sock; then C ok restarted "new wisp-blk pid $BLK_PID"
        else C fail restarted "no socket after 5 s: $(tail -n 2 /tmp/blk2.log)"; fi
        usleep 500000
        echo "server-restarted" > /tmp/$name.in ;;
    esac
}

# After the VMM exited: L1-side checks on the images.
scenario_post() {
    case "$name" in
    blk-ext4|oop-blk-ext4)
        if [ "$rc" != 0 ]; then C fail image "VMM status $rc: image not checked"; return; fi
        cmp_val hello "expected /hello.txt" "hello from $name" "debugfs cat of the image" "$(debugfs -R 'cat /hello.txt' "$img" 2> /dev/null)"
        cmp_val seq "sha256 of seq 1 20000" "$(seq 1 20000 | sha)" "sha256 of /dir/seq.txt in the image" "$(debugfs -R 'cat /dir/seq.txt' "$img" 2> /dev/null | sha)"
        cmp_val random "guest sha256 of /dir/random.bin" "$(gv random-sha)" "sha256 of it in the image" "$(debugfs -R 'cat /dir/random.bin' "$img" 2> /dev/null | sha)"
        if e2fsck -fn "$img" > /tmp/fsck.out 2>&1; then C ok fsck
        else C fail fsck "e2fsck -fn: $(tail -n 3 /tmp/fsck.out | tr '\n' ' ')"; fi ;;
    blk-dd)
        cmp_val image-sha "guest sha256 of the 4 MiB written" "$(gv written-sha)" "sha256 of the image's first 4 MiB" "$(head -c 4194304 "$img" | sha)" ;;
    blk-ro)
        cmp_val read-sha "guest sha256 of the first 4 MiB read" "$(gv read-sha)" "sha256 of the image's first 4 MiB" "$(head -c 4194304 "$img" | sha)"
        cmp_val unchanged "image sha256 before" "$RO_SHA" "after" "$(sha < "$img")" ;;
    blk-two)
        cmp_val vda-size "expected vda sectors (16 MiB)" 32768 "guest /sys/block/vda/size" "$(gv vda-size)"
        cmp_val vdb-size "expected vdb sectors (24 MiB)" 49152 "guest /sys/block/vdb/size" "$(gv vdb-size)"
        cmp_val vdb-data "guest sha256 of 1 MiB written to vdb at 1 MiB" "$(gv vdb-sha)" "sha256 of the second image at 1 MiB" "$(dd if="$img2" bs=1M skip=1 count=1 2> /dev/null | sha)"
        cmp_val vda-untouched "sha256 of 16 MiB of zeros" "$(head -c 16777216 /dev/zero | sha)" "first image" "$(sha < "$img")" ;;
    oop-blk-kill)
        cmp_val image-a "expected /A.txt" "file A from $name" "debugfs cat of the image" "$(debugfs -R 'cat /A.txt' "$img" 2> /dev/null)"
        # the restarted server exits when wisp goes away
        w=0
        while kill -0 "$BLK_PID" 2> /dev/null && [ $w -lt 25 ]; do usleep 200000; w=$((w + 1)); done
        if kill -0 "$BLK_PID" 2> /dev/null; then
            C fail server-exit "restarted wisp-blk still running 5 s after wisp exited"
            kill -9 "$BLK_PID"
        else
            C ok server-exit
        fi
        sed "s/^/RIG-V $name wisp-blk(1): /" /tmp/blk1.log
        sed "s/^/RIG-V $name wisp-blk(2): /" /tmp/blk2.log ;;
    esac
    rm -f "$img" "$img2"
}

run_scenario() {
    name=$1 kernel=$2 initrd=$3 cpus=$4 mem=$5 tmo=$6
    token="rigtoken=$name-7f3a rigtest=$name"
    input="ping-$name"
    log=/tmp/$name.log
    echo "RIG-BEGIN $name"
    : > "$log"
    scenario_pre
    if [ "$VMM" = qemu ]; then
        if [ "$CON" = virtio ]; then
            set -- qemu-system-x86_64 -L /usr/share/qemu -M microvm -accel kvm \
                -cpu host -m "$mem" -smp "$cpus" -kernel "$kernel" -initrd "$initrd" \
                -append "console=hvc0 reboot=t panic=-1 $token" \
                -nographic -no-reboot -nodefaults -serial none \
                -chardev stdio,id=con0,signal=off -device virtio-serial-device \
                -device virtconsole,chardev=con0
        else
            set -- qemu-system-x86_64 -L /usr/share/qemu -M microvm -accel kvm \
                -cpu host -m "$mem" -smp "$cpus" -kernel "$kernel" -initrd "$initrd" \
                -append "console=ttyS0 reboot=t panic=-1 $token" \
                -nographic -no-reboot -nodefaults -serial stdio
        fi
    else
        # shellcheck disable=SC2086 # WISP_ARGS is split on purpose
        set -- /bin/wisp run $WISP_ARGS --kernel "$kernel" --initrd "$initrd" \
            --cpus "$cpus" --memory "$mem" --cmdline "$token" --serial stdio
        [ "$CON" = virtio ] && set -- "$@" --console virtio
        [ -n "$SPAWN" ] && set -- "$@" --spawn-server "$SPAWN"
    fi
    # shellcheck disable=SC2086 # split on purpose (no spaces in the words)
    set -- "$@" $VMM_EXTRA
    echo "RIG-V $name command: $*"
    rm -f /tmp/$name.in; mkfifo /tmp/$name.in
    t0=$(stamp -m)
    vmrun -o "$log" -e "RIG-L $name" -t "$tmo" -m WISP-INIT-RAN -m WISP-READY \
        -s "WISP-READY=$input" -i /tmp/$name.in -- "$@" 2>/tmp/$name.vmrun &
    vpid=$!
    scenario_during
    wait "$vpid"
    rc=$?
    t1=$(stamp -m)
    scenario_post
    tr -d '\r' < "$log" | grep -o 'WISP-[A-Z-]*.*' | sed "s/^/RIG-M $name /"
    sed "s/^/RIG-V $name /" /tmp/$name.vmrun
    echo "RIG-EXIT $name $rc $((t1 - t0))"
    echo "RIG-END $name"
}

while read -r name kernel initrd cpus mem tmo <&3; do
    case "$name" in ''|'#'*) continue ;; esac
    run_scenario "$name" "$kernel" "$initrd" "$cpus" "$mem" "$tmo"
done 3< /rig/scenarios
finish
