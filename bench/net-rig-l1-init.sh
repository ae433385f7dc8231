#!/bin/sh
# /init of the L1 guest booted by bench/net-rig.sh (busybox, PID 1).
# One tap, wtap0 (10.77.0.1/24, made once, the same for every VMM); for
# each VMM in /rig/net.conf boots the L2 guest (10.77.0.2 on its
# virtio-net eth0, an iperf3 server) and runs the jobs from L1's side:
#   g2h-1, g2h-4  iperf3 -c GUEST -R [-P 4]: the guest sends, L1 receives
#   h2g-1, h2g-4  iperf3 -c GUEST [-P 4]:    L1 sends, the guest receives
#   rtt           ping -c N -i 0.01 GUEST:   ICMP echo round trips
# sampling the CPU time of the VMM (its process, each of its threads) and
# of the vhost-net workers (kernel threads "vhost-<owner pid>" on L1's
# Linux 6.1) around each job. Reports on the console:
# "vmm" is VMM@ROUND in every line (ROUNDS boots of each VMM, interleaved).
#   RIG-N-CMD vmm command...            RIG-N-GUEST vmm <WISP-NET-* line>
#   RIG-N-T vmm job begin|end ns        RIG-N-CPU vmm job when kind id comm utime stime guest
#   RIG-N-RES vmm job <iperf3 JSON>     RIG-N-RTT vmm job n mean p50 p99 min max (ms)
#   RIG-N-KVM vmm job when name=N...    (L1's KVM counters, debugfs: one VM runs at a time)
#   RIG-N-GUEST vmm WISP-NET-IRQ job when N   (the guest's virtio-net interrupts)
#   RIG-N-V vmm <vmrun/VMM log line>    RIG-N-FAIL vmm why
# Each job's figures go out as soon as it ended. Never exits (PID 1).
# shellcheck source=tests/rig/l1-common.sh
. /rig/l1-common.sh   # mounts, KVM, finish()

VMMS="wisp qemu" CPUS=2 MEM=256 RUNTIME=6 JOBS=rtt TMO=300 PINGS=500 ROUNDS=1
. /rig/net.conf
# net-rig.sh stops an L1 whose console stays silent for 120 s (an L1
# that stopped would otherwise hold the machine until the overall timeout)
heartbeat
TAP=wtap0 L1IP=10.77.0.1 GUEST=10.77.0.2 MAC=02:00:00:00:77:02
CMDLINE="net_bench=1"
echo "RIG-N-HZ $(stamp -t)"

insmod /lib/tun.ko 2>/tmp/tun.err
[ -c /dev/net/tun ] || { echo "RIG-L1-ERROR no /dev/net/tun: $(cat /tmp/tun.err)"; finish; }
case " $VMMS " in
*-vhost*)
    for m in tap vhost_iotlb vhost vhost_net; do insmod /lib/$m.ko 2>>/tmp/vhost.err; done
    [ -c /dev/vhost-net ] || { echo "RIG-L1-ERROR no /dev/vhost-net: $(tr '\n' ' ' < /tmp/vhost.err)"; finish; }
    ;;
esac
if ! mktap $TAP 2>/tmp/tap.err || ! ip link set $TAP up || ! ip addr add $L1IP/24 dev $TAP 2>>/tmp/tap.err; then
    echo "RIG-L1-ERROR tap $TAP: $(tr '\n' ' ' < /tmp/tap.err)"
    finish
fi
ip link set lo up
# KVM's counters (exits, injected interrupts, ...) for every VM of L1
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
KVMSTATS="exits io_exits mmio_exits irq_exits irq_window_exits halt_exits halt_wakeup irq_injections signal_exits"

# cpu_line KIND FILE: "kind id comm utime stime guest_time" from a
# /proc/.../stat (comm may hold spaces: "CPU 0/KVM")
cpu_line() {
    awk -v k="$1" '{
        o = index($0, "("); c = 0
        for (i = length($0); i > 0; i--) if (substr($0, i, 1) == ")") { c = i; break }
        comm = substr($0, o + 1, c - o - 1); gsub(/ /, "_", comm)
        n = split(substr($0, c + 2), f, " ")
        print k, $1, comm, f[12], f[13], f[41]
    }' "$2" 2>/dev/null
}
# sample WHEN: the VMM's process and threads, every vhost worker, L1's
# KVM counters, and (outside the timed window: before it at the begin,
# after it at the end) the guest's interrupt count
sample() {
    [ "$1" = begin ] && guest_irq begin
    [ "$1" = begin ] && kvm_stats begin
    echo "RIG-N-T $TAG $JOB $1 $(stamp)"
    for p in $(pidof wisp qemu-system-x86_64); do
        cpu_line proc /proc/$p/stat | sed "s/^/RIG-N-CPU $TAG $JOB $1 /"
        for t in /proc/$p/task/*; do
            cpu_line thr $t/stat | sed "s/^/RIG-N-CPU $TAG $JOB $1 /"
        done
    done
    for d in /proc/[0-9]*; do
        case "$(cat $d/comm 2>/dev/null)" in
        vhost-*) cpu_line vhost $d/stat | sed "s/^/RIG-N-CPU $TAG $JOB $1 /" ;;
        esac
    done
    [ "$1" = end ] && kvm_stats end
    [ "$1" = end ] && guest_irq end
}
kvm_stats() {
    k=
    for s in $KVMSTATS; do
        [ -r /sys/kernel/debug/kvm/$s ] && k="$k $s=$(cat /sys/kernel/debug/kvm/$s)"
    done
    echo "RIG-N-KVM $TAG $JOB $1$k"
}
# to_guest LINE: a console line for the guest; the FIFO blocks its
# writer while nobody reads it, i.e. once vmrun has gone
to_guest() {
    kill -0 "$vpid" 2>/dev/null && timeout 5 sh -c "echo '$*' > /tmp/net.in"
}
guest_irq() {
    to_guest "irq $JOB $1"
    vm_wait net "WISP-NET-IRQ $JOB $1 " 100 || echo "RIG-N-FAIL $TAG $JOB the guest did not report its interrupts"
}
run_job() {
    case "$JOB" in
    g2h-1) a="-R" ;;
    g2h-4) a="-R -P 4" ;;
    h2g-1) a="" ;;
    h2g-4) a="-P 4" ;;
    rtt) a=rtt ;;
    *) echo "RIG-N-FAIL $TAG unknown job $JOB"; return 1 ;;
    esac
    sample begin
    if [ "$a" = rtt ]; then
        timeout $((RUNTIME * 3 + 30)) ping -c "$PINGS" -i 0.01 -W 2 $GUEST > /tmp/job.out 2>&1
        rc=$?
    else
        # shellcheck disable=SC2086
        timeout $((RUNTIME + 40)) iperf3 -c $GUEST -B $L1IP -t "$RUNTIME" -i 0 -J \
            --connect-timeout 10000 $a > /tmp/job.out 2>/tmp/job.err
        rc=$?
    fi
    sample end
    if [ "$a" = rtt ]; then
        sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' /tmp/job.out | sort -n > /tmp/rtt.sorted
        awk -v v="$TAG" -v j="$JOB" '{ t[NR] = $1; s += $1 }
            END { if (NR == 0) { print "RIG-N-FAIL", v, j, "no replies"; exit }
                  p50 = t[int((NR + 1) / 2)]; p99 = t[int(NR * 0.99 + 0.999)]
                  printf "RIG-N-RTT %s %s %d %.4f %.4f %.4f %.4f %.4f\n", v, j, NR, s / NR, p50, p99, t[1], t[NR] }' /tmp/rtt.sorted
        [ "$rc" = 0 ] || echo "RIG-N-FAIL $TAG $JOB ping status $rc: $(tail -n 2 /tmp/job.out | tr '\n' ' ')"
    else
        echo "RIG-N-RES $TAG $JOB $(tr -s ' \t\n' ' ' < /tmp/job.out)"
        [ "$rc" = 0 ] || echo "RIG-N-FAIL $TAG $JOB iperf3 status $rc: $(tail -n 2 /tmp/job.err | tr '\n' ' ')"
    fi
    # iperf3 -s takes the next test once it has closed this one
    usleep 500000
    return 0
}

run_one() {
    VMM=$1 TAG=$1@$2
    case "$VMM" in
    qemu | qemu-vhost)
        v=off; [ "$VMM" = qemu-vhost ] && v=on
        # modern virtio-mmio, as wisp's (microvm's default is legacy)
        set -- qemu-system-x86_64 -L /usr/share/qemu -M microvm -accel kvm \
            -cpu host -m "$MEM" -smp "$CPUS" -kernel /l2/bzImage -initrd /l2/initrd.gz \
            -append "console=ttyS0 reboot=t panic=-1 $CMDLINE" \
            -nographic -no-reboot -nodefaults -serial stdio \
            -global virtio-mmio.force-legacy=false \
            -netdev tap,id=n0,ifname=$TAP,script=no,downscript=no,vhost=$v \
            -device virtio-net-device,netdev=n0,mac=$MAC ;;
    wisp | wisp-vhost)
        v=; [ "$VMM" = wisp-vhost ] && v=,vhost=on
        # -v: wisp logs whether vhost-net took the queues (checked below)
        set -- /bin/wisp run -v --kernel /l2/bzImage --initrd /l2/initrd.gz \
            --cpus "$CPUS" --memory "$MEM" --serial stdio --cmdline "$CMDLINE" \
            --net tap=$TAP,mac=$MAC$v ;;
    esac
    echo "RIG-N-CMD $TAG $*"
    vm_start net "$TMO" "$@"
    ok=0
    if vm_wait net "WISP-NET-READY"; then
        # ARP and a first exchange before any timed job
        if ping -c 3 -W 5 $GUEST > /tmp/warm.out 2>&1; then ok=1
        else echo "RIG-N-FAIL $TAG warm-up ping: $(tail -n 2 /tmp/warm.out | tr '\n' ' ')"; fi
    fi
    if [ $ok = 1 ]; then
        for JOB in $(echo "$JOBS" | tr ',' ' '); do
            kill -0 "$vpid" 2>/dev/null || break
            run_job
        done
    fi
    to_guest quit
    wait "$vpid"
    rc=$?
    tr -d '\r' < /tmp/net.log | grep -a '^WISP-NET' | sed "s/^/RIG-N-GUEST $TAG /"
    tr -d '\r' < /tmp/net.log | grep -a -E 'vhost|falls back|error|rror:' | head -n 10 | sed "s/^/RIG-N-V $TAG /"
    sed "s/^/RIG-N-V $TAG /" /tmp/net.vmrun
    if [ "$VMM" = wisp-vhost ]; then
        tr -d '\r' < /tmp/net.log | grep -q "(vhost): vhost-net features" &&
            ! tr -d '\r' < /tmp/net.log | grep -q "falls back" ||
            echo "RIG-N-FAIL $TAG vhost-net did not take the queues"
    fi
    if [ "$rc" != 0 ] || ! tr -d '\r' < /tmp/net.log | grep -q '^WISP-NET-DONE'; then
        echo "RIG-N-FAIL $TAG status $rc"
        tr -d '\r' < /tmp/net.log | grep -av 'TCG' | tail -n 20 | sed "s/^/RIG-N-TAIL $TAG /"
    fi
}

# rounds interleave the VMMs, so that a slow spell of the (shared,
# emulated) machine does not fall on one VMM's figures alone
r=1
while [ $r -le "$ROUNDS" ]; do
    for v in $VMMS; do run_one "$v" $r; done
    r=$((r + 1))
done
finish
