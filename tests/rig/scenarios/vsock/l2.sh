# The guest's side: the vsock driver bound to the device, its CID from
# the device's config space, echo clients to the host's port 5000 (one
# connection with 4 MiB each way, 64 connections at once), an echo
# server on port 6000 for L1's clients (see l1.sh), and a refused port.
t_main() {
    drv=$(ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport 2> /dev/null | grep -c virtio)
    if [ "$drv" -ge 1 ]; then ok vsock-driver; else bad vsock-driver "no device bound to vmw_vsock_virtio_transport"; fi
    cid=$(vsockt cid 2>&1)
    if [ "$cid" = 3 ]; then ok guest-cid "$cid"; else bad guest-cid "'$cid'"; fi
    r=$(vsockt echo vsock:2:5000 4194304 1 120 2>&1)
    case "$r" in ok*) ok g2h-big "$r" ;; *) bad g2h-big "$r" ;; esac
    r=$(vsockt echo vsock:2:5000 65536 64 120 2>&1)
    case "$r" in ok*) ok g2h-many "$r" ;; *) bad g2h-many "$r" ;; esac
    vsockt serve vsock 6000 2> /tmp/serve.err &
    srv=$!
    sleep 1
    ok vsock-listening
    echo "WISP-T-VSOCK-LISTENING"
    if read -r -t 200 line; then val host-line "$(echo "$line" | tr -d '\r')"
    else bad host-line "no word from L1 within 200 s"; fi
    kill $srv 2> /dev/null
    r=$(vsockt refused vsock:2:5999 2>&1)
    case "$r" in ok*) ok g2h-refused "$r" ;; *) bad g2h-refused "$r" ;; esac
}
