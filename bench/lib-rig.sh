# bench/lib-rig.sh - what the rig benchmarks (net-rig, fio-rig,
# snapshot-rig, async-pf-rig) share: their command line, their work
# directory, the L1 and guest initramfs and the L1 boot. Sourced (bash)
# with RIG_PROG set; sources tests/rig/lib.sh (docs/rig.md).
# shellcheck shell=bash disable=SC2034

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/rig/lib.sh
. "$BENCH_DIR/../tests/rig/lib.sh"

# bench_help: the calling script's header comment (its usage), from the
# line after #! to the first line that is not a comment.
bench_help() {
    awk 'NR == 1 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$0"
}

# bench_args SPEC ARG...: reads the command line by SPEC, space-separated
# words: --OPT=VAR (an option with a value, stored in VAR), --keep
# (KEEP=1), --verbose (also -v; RIG_VERBOSE=1, rig_boot_l1 copies L1's
# console to stderr). -h/--help prints the usage and exits 0; an option
# SPEC does not name, or one without its value, dies.
bench_args() {
    local spec=" ${1//[$'\n\t']/ } " var
    shift
    while [ $# -gt 0 ]; do
        case "$1" in
        -h | --help) bench_help; exit 0 ;;
        -v) set -- --verbose "${@:2}" ;;
        esac
        case "$spec" in
        *" $1="*)
            var=${spec#*" $1="}
            var=${var%% *}
            [ -n "${2:-}" ] || rig_die "$1 needs a value (see --help)"
            printf -v "$var" '%s' "$2"
            shift 2
            ;;
        *" $1 "*)
            case "$1" in
            --keep) KEEP=1 ;;
            --verbose) export RIG_VERBOSE=1 ;;
            esac
            shift
            ;;
        *) rig_die "unknown argument: $1 (see --help)" ;;
        esac
    done
}

# bench_work PREFIX [NAME...]: WORK, $RIG_WORK or a new
# /tmp/wisp-PREFIX.XXXXXX. At exit, unless KEEP=1 by then, the NAMEs in
# it are removed, or WORK itself when no NAME is given.
bench_work() {
    local prefix=$1
    shift
    WORK=${RIG_WORK:-$(mktemp -d "/tmp/wisp-$prefix.XXXXXX")}
    mkdir -p "$WORK"
    BENCH_CLEAN=("$@")
    trap bench_cleanup EXIT
}
bench_cleanup() {
    [ "$KEEP" = 1 ] && return
    if [ ${#BENCH_CLEAN[@]} = 0 ]; then
        rm -rf "$WORK"
    else
        rm -rf "${BENCH_CLEAN[@]/#/$WORK/}"
    fi
}

# bench_l2 NAME: L2=$WORK/l2, a fresh busybox root for the guest's
# initramfs, bench/NAME-guest-init.sh its /init and bench/guest-common.sh
# (the prologue those inits source) its /guest-common.sh. The caller adds
# its programs and packs it.
bench_l2() {
    L2=$WORK/l2
    rm -rf "$L2"
    rig_busybox_root "$L2"
    install -m 755 "$BENCH_DIR/$1-guest-init.sh" "$L2/init"
    install -m 644 "$BENCH_DIR/guest-common.sh" "$L2/guest-common.sh"
}

# bench_l1 NAME: L1=$WORK/l1, a fresh L1 root (rig_l1_root: busybox, KVM,
# the rig's tools, l1-common.sh) with bench/NAME-l1-init.sh as its /init.
bench_l1() {
    L1=$WORK/l1
    rm -rf "$L1"
    rig_l1_root "$L1"
    install -m 755 "$BENCH_DIR/$1-l1-init.sh" "$L1/init"
}

# bench_l1_guest KERNEL [INITRAMFS]: the guest's kernel (and initramfs)
# into L1 as /l2/bzImage (and /l2/initrd.gz), where the L1 inits boot it.
bench_l1_guest() {
    mkdir -p "$L1/l2"
    cp "$1" "$L1/l2/bzImage"
    [ -z "${2:-}" ] || cp "$2" "$L1/l2/initrd.gz"
}

# bench_conf FILE WORD...: the settings L1's init sources, as /rig/FILE in
# L1: a WORD VAR stores VAR's value, VAR=VALUE that value. Every value is
# a number or a list the script checked (no quotes in it).
bench_conf() {
    local f=$L1/rig/$1 w
    shift
    for w in "$@"; do
        case "$w" in
        *=*) printf "%s='%s'\n" "${w%%=*}" "${w#*=}" ;;
        *) printf "%s='%s'\n" "$w" "${!w}" ;;
        esac
    done > "$f"
}

# bench_boot TIMEOUT_S MESSAGE [SILENCE_S]: packs $L1, logs MESSAGE and
# boots L1 (rig_boot_l1; SILENCE_S for an L1 init that prints a heartbeat:
# a console silent that long is a dead L1). Sets CONSOLE (its console
# log), L1_RC (QEMU's status), L1_SECONDS (the boot's wall time) and R
# (the console's RIG- lines).
bench_boot() {
    local t0
    rig_pack "$L1" "$WORK/l1.cpio"
    CONSOLE=$WORK/l1-console.log
    rig_log "$2"
    t0=$(date +%s.%N)
    rig_boot_l1 "$WORK/l1.cpio" "$CONSOLE" "$1" "${3:-0}"
    L1_RC=$?
    L1_SECONDS=$(echo "$(date +%s.%N) - $t0" | bc | cut -c1-6)
    R=$(tr -d '\r' < "$CONSOLE" | grep -ao 'RIG-.*')
}

# bench_l1_done: after bench_boot, logs how L1 ended; rc=1 (and the
# console's tail and what went wrong in L1 on stderr) unless L1 finished
# its init (RIG-L1-DONE). Dies when L1 could not set itself up
# (RIG-L1-ERROR).
bench_l1_done() {
    local trouble
    rig_log "L1 finished (QEMU status $L1_RC) after $L1_SECONDS s; console log: $CONSOLE"
    rc=0
    if ! grep -q '^RIG-L1-DONE' <<< "$R"; then
        trouble=$(rig_l1_trouble "$CONSOLE")
        rig_log "L1 did not complete the benchmark (QEMU status $L1_RC)${trouble:+: $trouble}; L1 console tail:"
        tr -d '\r' < "$CONSOLE" | grep -av "TCG doesn't support" | tail -n 40 | sed 's/^/  | /' >&2
        rc=1
    fi
    if grep -q '^RIG-L1-ERROR' <<< "$R"; then
        rig_die "L1: $(grep -m 1 '^RIG-L1-ERROR' <<< "$R")"
    fi
}

# bench_find_wisp: WISP, the wisp binary (--wisp, WISP_ARG), when one of
# the VMMs in VMMS is wisp's.
bench_find_wisp() {
    [[ ",$VMMS," == *,wisp* ]] || return 0
    WISP=$(rig_find_wisp "$WISP_ARG") || exit 2
    rig_log "wisp binary: $WISP"
}

# bench_snapshot_bins: WISP, API and UFFD for the snapshot benchmarks:
# wisp (--wisp), wisp-api (--wisp-api, else next to wisp; a dynamic
# build's) and wisp-uffd (--wisp-uffd, else the build's src/servers), from
# WISP_ARG, API_ARG and UFFD_ARG. Dies when one is missing.
bench_snapshot_bins() {
    WISP=$(rig_find_wisp "$WISP_ARG") || exit 2
    API=${API_ARG:-$(dirname "$WISP")/wisp-api}
    UFFD=${UFFD_ARG:-$(dirname "$WISP")/../servers/wisp-uffd}
    [ -x "$API" ] || rig_die "wisp-api not found: $API (--wisp-api: a dynamic build's src/cli/wisp-api)"
    [ -x "$UFFD" ] || rig_die "wisp-uffd not found: $UFFD (--wisp-uffd)"
}

# bench_snapshot_l1 NAME [rig_l2_initrd OPTION...]: bench_l1 NAME with
# wisp, wisp-api and wisp-uffd in /bin, the rig's L2 kernel and an L2
# initramfs (rig_l2_initrd, with the OPTIONs) whose /init is
# bench/NAME-guest-init.sh.
bench_snapshot_l1() {
    local name=$1
    shift
    bench_l1 "$name"
    rig_copy_bin "$L1" "$WISP" /bin/wisp
    rig_copy_bin "$L1" "$(readlink -f "$API")" /bin/wisp-api
    rig_copy_bin "$L1" "$(readlink -f "$UFFD")" /bin/wisp-uffd
    bench_l1_guest "$L2_BZIMAGE"
    rig_l2_initrd "$L1/l2/initrd.gz" "$BENCH_DIR/$name-guest-init.sh" "$@"
}
