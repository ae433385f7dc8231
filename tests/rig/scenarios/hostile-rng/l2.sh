# The hostile-guest battery against the entropy devices: tools/hostile.c
# (/bin/hostile) drives a virtio-rng's virtio-mmio window through /dev/mem
# after virtio_rng was unbound from it, one group of cases per run: first
# wisp's own device (the lower window, keys "in-..."), then the spawned
# wisp-rng's ("oop-..."). Between groups vda must take a write and read it
# back, and the console carries every line. Afterwards virtio_rng is bound
# to the attacked device again and the kernel's hwrng reads from it.
HOSTILE_SECS=2
. /rig/scenarios/hostile-guest/groups-l2.sh
RNG=/sys/class/misc/hw_random
# rngs: "BASE VNAME PDEV" of each virtio-rng, by window address
rngs() { virtio_windows 0x0004; }
# attack INDEX PREFIX FIRST_SLOT: the INDEXth virtio-rng (1: lower window)
attack() {
    p=$2-
    line=$(rngs | sed -n "$1p")
    base=${line%% *} rest=${line#* }
    vname=${rest%% *} pdev=${rest#* }
    other=''
    for b in /sys/block/vd*; do other=${b##*/}; done
    if [ -z "$line" ] || [ -z "$base" ] || [ -z "$other" ]; then
        bad "${p}target" "no virtio-rng number $1 ($(rngs | tr '\n' ';')) or no disk"; return
    fi
    ok "${p}target" "$vname on $pdev at 0x$base, disk $other"
    if echo -n "$vname" > /sys/bus/virtio/drivers/virtio_rng/unbind &&
        [ ! -e "/sys/bus/virtio/drivers/virtio_rng/$vname" ]; then
        ok "${p}unbind" "virtio_rng unbound from $vname"
    else
        bad "${p}unbind" "could not unbind virtio_rng from $vname"; return
    fi
    hostile_groups "$p" "$base" "$3" "$other"
    # Linux's driver takes the device back: it registers a new hwrng
    # (a name not in rng_available before), which must deliver
    before=$(cat $RNG/rng_available)
    echo -n "$vname" > /sys/bus/virtio/drivers/virtio_rng/bind 2> /tmp/err
    n=0 new=''
    while [ -z "$new" ] && [ "$n" -lt 50 ]; do
        for r in $(cat $RNG/rng_available); do
            case " $before " in *" $r "*) ;; *) new=$r ;; esac
        done
        [ -n "$new" ] || usleep 100000
        n=$((n + 1))
    done
    if [ -z "$new" ]; then
        bad "${p}rebind" "no new hwrng after binding $vname ($(cat $RNG/rng_available); $(last /tmp/err))"; return
    fi
    ok "${p}rebind" "virtio_rng bound to $vname again: hwrng $new"
    echo -n "$new" > $RNG/rng_current
    head -c 64 /dev/hwrng > /tmp/r 2> /tmp/err
    n=$(wc -c < /tmp/r)
    distinct=$(od -An -v -tx1 /tmp/r | tr -s ' ' '\n' | grep . | sort -u | wc -l)
    if [ "$(cat $RNG/rng_current)" = "$new" ] && [ "$n" -ge 64 ] && [ "$distinct" -gt 1 ]; then
        ok "${p}rebind-read" "$new: $n bytes, $distinct distinct values"
    else
        bad "${p}rebind-read" "$new (current $(cat $RNG/rng_current)): $n bytes, $distinct distinct values ($(last /tmp/err))"
    fi
}
t_main() {
    n=$(rngs | wc -l)
    if [ "$n" = 2 ]; then ok rng-count "two virtio-rng devices: $(rngs | tr '\n' ';')"
    else bad rng-count "$n virtio-rng devices, want 2: $(rngs | tr '\n' ';')"; fi
    attack 1 in 0
    attack 2 oop 5
}
