# blk-ext4's checks with wisp run by `wisp jail` (docs/jail.md): the
# kernel, initramfs, disk and wisp-blk are placed in the jail's root and
# named by their paths there; wisp runs as 65534 in new mount, PID, IPC,
# UTS and network namespaces, and its spawned wisp-blk is jailed again
# (in a user namespace: the jailed wisp is not root). While the guest
# runs, L1 compares the namespaces of its init, the jailed wisp and the
# server.
. /rig/scenarios/blk-ext4/l1.sh
jbase=/tmp/jail
jroot=$jbase/wisp/rig/root
scenario_pre() {
    [ -x /bin/wisp-blk ] || C fail wisp-blk "/bin/wisp-blk not in L1"
    mkdir -p "$jroot"
    cp "$kernel" "$jroot/kernel" && cp "$initrd" "$jroot/initrd.gz" &&
        cp /bin/wisp-blk "$jroot/wisp-blk" || C fail jail-root "copy into $jroot"
    img=$jroot/disk.img
    truncate -s 64M "$img" && chown 65534:65534 "$img"
    # vmrun splits VMM_CMD at spaces; the spawn command has some.
    cat > /tmp/jail-wisp.sh << EOS
#!/bin/sh
exec /bin/wisp jail --id rig --chroot-base $jbase --uid 65534 --gid 65534 -- \
    run --kernel /kernel --initrd /initrd.gz --cpus $CPUS --memory $MEM \
    --cmdline "$token" --serial stdio \
    --spawn-server "/wisp-blk --disk path=/disk.img"
EOS
    chmod +x /tmp/jail-wisp.sh
    VMM_CMD=/tmp/jail-wisp.sh
}
# pid_of PREFIX: the process whose command line starts with PREFIX
pid_of() {
    for d in /proc/[0-9]*; do
        c=$(tr '\0' ' ' < "$d/cmdline" 2> /dev/null)
        case "$c" in "$1"*) echo "${d#/proc/}"; return 0 ;; esac
    done
    return 1
}
ns_of() { for n in mnt pid net ipc uts user; do printf '%s ' "$(readlink "/proc/$1/ns/$n")"; done; }
uid_of() { sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }
scenario_during() {
    if ! wait_for WISP-INIT-RAN 90; then C fail ns-wisp "the guest did not start"; return; fi
    w=$(pid_of "/wisp run") s=$(pid_of "/wisp-blk --disk")
    if [ -z "$w" ] || [ -z "$s" ]; then
        C fail ns-wisp "no jailed wisp ($w) or wisp-blk ($s) running"
        return
    fi
    # Through /proc/PID/root: wisp's / holds the jail's files, not L1's.
    if [ -f "/proc/$w/root/kernel" ] && [ -f "/proc/$w/root/wisp" ] &&
        [ ! -e "/proc/$w/root/bin" ] && [ ! -e "/proc/$w/root/l2" ]; then C ok jail-root
    else C fail jail-root "wisp's root is not $jroot: $(ls "/proc/$w/root/" | tr '\n' ' ')"; fi
    set -- $(ns_of 1); init="$*"
    set -- $(ns_of "$w"); wisp="$*"
    set -- $(ns_of "$s"); srv="$*"
    echo "RIG-V $name namespaces (mnt pid net ipc uts user): init $init; wisp $wisp; wisp-blk $srv"
    # wisp: new mnt, pid, net, ipc, uts; the host's user namespace
    bad=
    for i in 1 2 3 4 5; do
        a=$(echo "$init" | cut -d' ' -f$i) b=$(echo "$wisp" | cut -d' ' -f$i)
        [ "$a" != "$b" ] || bad="$bad $a"
    done
    [ "$(echo "$init" | cut -d' ' -f6)" = "$(echo "$wisp" | cut -d' ' -f6)" ] || bad="$bad user"
    if [ -z "$bad" ]; then C ok ns-wisp; else C fail ns-wisp "shared with init:$bad"; fi
    # wisp-blk: all six its own, shared with neither
    bad=
    for i in 1 2 3 4 5 6; do
        a=$(echo "$init" | cut -d' ' -f$i) b=$(echo "$wisp" | cut -d' ' -f$i)
        c=$(echo "$srv" | cut -d' ' -f$i)
        [ "$c" != "$a" ] && [ "$c" != "$b" ] || bad="$bad $c"
    done
    if [ -z "$bad" ]; then C ok ns-server; else C fail ns-server "shared:$bad"; fi
    if [ "$(uid_of "$w")" = 65534 ] && [ "$(uid_of "$s")" = 65534 ]; then C ok ids
    else C fail ids "uids: wisp $(uid_of "$w"), wisp-blk $(uid_of "$s")"; fi
}
