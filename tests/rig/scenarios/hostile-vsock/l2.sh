# The hostile-guest battery against wisp's virtio-vsock: tools/hostile.c
# (/bin/hostile) drives its virtio-mmio window through /dev/mem after
# the virtio transport driver was unbound from it, one group of cases per
# run (keys "in-..."): the transmit queue attacked, the receive queue
# given buffers good and bad, every recovery a connection to L1's echo
# server. Between groups vda must take a write and read it back, and the
# console carries every line. Afterwards the driver is bound again and
# AF_VSOCK connections to L1 must echo.
HOSTILE_SECS=2
DRV=/sys/bus/virtio/drivers/vmw_vsock_virtio_transport
. /rig/scenarios/hostile-guest/groups-l2.sh
t_main() {
    p=in-
    line=$(virtio_windows 0x0013 | head -n 1)
    base=${line%% *} rest=${line#* }
    vname=${rest%% *} pdev=${rest#* }
    other=''
    for b in /sys/block/vd*; do other=${b##*/}; done
    if [ -z "$line" ] || [ -z "$base" ] || [ -z "$other" ]; then
        bad "${p}target" "no virtio-vsock ($(ls /sys/bus/virtio/devices)) or no disk"; return
    fi
    ok "${p}target" "$vname on $pdev at 0x$base, disk $other"
    if echo -n "$vname" > $DRV/unbind && [ ! -e "$DRV/$vname" ]; then
        ok "${p}unbind" "the vsock transport unbound from $vname"
    else
        bad "${p}unbind" "could not unbind $DRV from $vname"; return
    fi
    hostile_groups "$p" "$base" 0 "$other"
    if echo -n "$vname" > $DRV/bind 2> /tmp/err && [ -e "$DRV/$vname" ]; then
        ok "${p}rebind" "the vsock transport bound to $vname again, CID $(vsockt cid 2> /dev/null)"
    else
        bad "${p}rebind" "could not bind $vname: $(last /tmp/err)"; return
    fi
    r=$(vsockt echo vsock:2:5300 65536 4 60 2>&1)
    case "$r" in ok*) ok "${p}rebind-echo" "$r" ;; *) bad "${p}rebind-echo" "$r" ;; esac
}
