# L1 is the host: wisp listens on $VS_UDS (host-initiated connections
# write "CONNECT PORT\n"), and the guest's connections to host port 5000
# reach the echo server on ${VS_UDS}_5000 (vsockt serve, see
# tests/rig/tools/vsockt.c). Once the guest's own echo server listens on
# port 6000, L1 runs its echo clients through $VS_UDS, then tells the
# guest to go on.
VS_DIR=/tmp/vsock VS_UDS=/tmp/vsock/v.sock VS_CID=3

scenario_pre() {
    rm -rf $VS_DIR
    mkdir -p $VS_DIR
    vsockt serve unix ${VS_UDS}_5000 2> $VS_DIR/serve.err &
    serve_pid=$!
    VMM_EXTRA="--vsock cid=$VS_CID,uds=$VS_UDS"
}

# h2g-*: host to guest through wisp's socket; the guest's listener must
# be up first (WISP-T-VSOCK-LISTENING).
scenario_during() {
    if wait_for WISP-T-VSOCK-LISTENING "$tmo"; then
        if [ -S $VS_UDS ]; then C ok uds-listening "$VS_UDS"
        else C fail uds-listening "no socket at $VS_UDS"; fi
        r=$(vsockt echo uds:$VS_UDS:6000 4194304 1 120 2>&1)
        case "$r" in ok*) C ok h2g-big "$r" ;; *) C fail h2g-big "$r" ;; esac
        r=$(vsockt echo uds:$VS_UDS:6000 65536 64 120 2>&1)
        case "$r" in ok*) C ok h2g-many "$r" ;; *) C fail h2g-many "$r" ;; esac
        # a guest port nobody listens on: the guest's RST closes the
        # client before any OK line (a timeout is not a pass)
        r=$(vsockt echo uds:$VS_UDS:6001 1 1 30 2>&1)
        case "$r" in *"reset by peer"*) C ok h2g-refused "$r" ;; *) C fail h2g-refused "$r" ;; esac
        to_guest host-done
        wait_for 'WISP-T-[A-Z]* g2h-refused' 60
    else
        C fail h2g-big "the guest's listener never came up"
    fi
}

scenario_post() {
    kill "$serve_pid" 2> /dev/null
    # wisp removes its listener's socket when it exits
    if [ -e $VS_UDS ]; then C fail uds-removed "$VS_UDS still there"
    else C ok uds-removed; fi
    rm -rf $VS_DIR
}
