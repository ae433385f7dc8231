# The hostile-guest battery against a virtio-console served by a
# wisp-console in L1 (l1.sh): tools/hostile.c (/bin/hostile) drives its
# virtio-mmio window through /dev/mem after virtio_console was unbound
# from it, one group of cases per run (keys "oop-..."): the transmit
# queue of port 0 attacked, the receive queue given buffers good and bad
# while L1's input arrives, every recovery a marker line out and some
# input in. Between groups vda must take a write and read it back, and
# the serial console carries every line. Afterwards virtio_console is
# bound again: a line written to /dev/hvc0 must reach wisp-console's
# output (L1 checks) and a line of L1's input must come out of it.
HOSTILE_SECS=2
DRV=/sys/bus/virtio/drivers/virtio_console
. /rig/scenarios/hostile-guest/groups-l2.sh
# irqs NAME: NAME's interrupts in /proc/interrupts, summed over the CPUs
irqs() {
    awk -v d="$1" '$NF == d {n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i; print n}' /proc/interrupts
}
t_main() {
    p=oop-
    line=$(virtio_windows 0x0003 | head -n 1)
    base=${line%% *} rest=${line#* }
    vname=${rest%% *} pdev=${rest#* }
    other=''
    for b in /sys/block/vd*; do other=${b##*/}; done
    if [ -z "$line" ] || [ -z "$base" ] || [ -z "$other" ]; then
        bad "${p}target" "no virtio-console ($(ls /sys/bus/virtio/devices)) or no disk"; return
    fi
    ok "${p}target" "$vname on $pdev at 0x$base, disk $other"
    if echo -n "$vname" > $DRV/unbind && [ ! -e "$DRV/$vname" ]; then
        ok "${p}unbind" "virtio_console unbound from $vname"
    else
        bad "${p}unbind" "could not unbind virtio_console from $vname"; return
    fi
    hostile_groups "$p" "$base" 0 "$other"
    echo -n "$vname" > $DRV/bind 2> /tmp/err
    n=0
    while [ ! -c /dev/hvc0 ] && [ "$n" -lt 50 ]; do usleep 100000; n=$((n + 1)); done
    if [ -c /dev/hvc0 ] && [ -e "$DRV/$vname" ]; then ok "${p}rebind" "virtio_console bound to $vname again: /dev/hvc0"
    else bad "${p}rebind" "no /dev/hvc0 after binding $vname: $(last /tmp/err)"; return; fi
    line=WISP-HC-GUEST-$(cut -c1-8 /proc/sys/kernel/random/uuid)
    val "${p}hvc0-line" "$line"
    echo "$line" > /dev/hvc0
    # The first line read can be the tail of one whose start the tty
    # threw away when that echo closed /dev/hvc0 (unread input goes at
    # the last close): seen as 'X' and as '' (a lone newline). So the
    # first line may be a tail of L1's marker; the next must be it whole
    # (anything else is input lost or garbled), within 10 s.
    s0=$(cut -d' ' -f1 /proc/uptime)
    got=$(timeout 10 sh -c 'n=0
        while IFS= read -r l; do
            l=$(printf "%s" "$l" | tr -d "\r")
            [ "$l" != WISP-HCRX ] || { echo "$l (after $n partial line(s))"; exit 0; }
            case "WISP-HCRX" in *"$l") ;; *) echo "garbled: [$l]"; exit 1 ;; esac
            [ "$n" = 0 ] || { echo "a second partial line: [$l]"; exit 1; }
            n=1
        done' < /dev/hvc0)
    s1=$(cut -d' ' -f1 /proc/uptime)
    case "$got" in
    "WISP-HCRX (after "*) ok "${p}hvc0-in" "read '$got' from /dev/hvc0 ($s0 -> $s1 s)" ;;
    *) bad "${p}hvc0-in" "no WISP-HCRX line from /dev/hvc0 ($s0 -> $s1 s): '$got'; $vname's interrupts: $(irqs "$vname")"
        # for the next look at it: does a line come later (a slow path)
        # or never (a hang)? Reported, the check above stays failed.
        got=$(timeout 20 head -n 1 /dev/hvc0 | tr -d '\r')
        val "${p}hvc0-in-late" "20 s more: read '$got'; $vname's interrupts: $(irqs "$vname")" ;;
    esac
}
