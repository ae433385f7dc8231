# tests/rig/lib.sh - shared helpers for tests/rig/run.sh and bench/boot-rig.sh.
# shellcheck shell=bash disable=SC2034
# Sourced (bash). See docs/rig.md.

RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RIG_REPO=$(cd "$RIG_DIR/../.." && pwd)
RIG_CACHE=${WISP_CACHE:-/var/cache/wisp}

rig_log() { printf '%s: %s\n' "${RIG_PROG:-rig}" "$*" >&2; }
rig_die() { printf '%s: ERROR: %s\n' "${RIG_PROG:-rig}" "$*" >&2; exit 2; }

# Run setup.sh (fast no-op when cached) and load its rig.env.
# RIG_SKIP_SETUP=1 only loads an existing rig.env.
rig_setup() {
    if [ "${RIG_SKIP_SETUP:-0}" != 1 ]; then
        "$RIG_DIR/setup.sh" || rig_die "tests/rig/setup.sh failed"
    fi
    [ -f "$RIG_CACHE/rig.env" ] || rig_die "$RIG_CACHE/rig.env missing: run tests/rig/setup.sh"
    # shellcheck disable=SC1091
    . "$RIG_CACHE/rig.env"
}

# rig_find_wisp [PATH]: print the wisp binary to use (argument, $WISP_BIN,
# or build-rig/src/cli/wisp of this checkout).
rig_find_wisp() {
    local w=${1:-${WISP_BIN:-$RIG_REPO/build-rig/src/cli/wisp}}
    [ -x "$w" ] || rig_die "wisp binary not found or not executable: $w
  build it with: meson setup build-rig -Dstatic=true -Dtests=false && ninja -C build-rig
  or pass --wisp PATH / WISP_BIN=PATH"
    readlink -f "$w"
}

# rig_l1_trouble CONSOLE_LOG: one-line summary of an L1 kernel panic or soft
# lockup in the console log (empty if none).
rig_l1_trouble() {
    local a b c l1
    # L1's own lines: not the L2 consoles and reports (RIG-...) in the log
    l1=$(tr -d '\r' < "$1" | grep -av '^RIG-')
    a=$(grep -aoE '(watchdog: )?BUG: .*|general protection fault.*' <<< "$l1" | head -1)
    b=$(grep -aoE 'Kernel panic - not syncing.*|rig: L1 silent for .*' <<< "$l1" | head -1)
    # where the backtrace after the first of those says the CPU was
    c=$(awk '/BUG: |general protection fault|Kernel panic - not syncing/ {t = 1}
        t && match($0, /RIP: [0-9a-f][0-9a-f][0-9a-f][0-9a-f]:[^ ]+/) {print substr($0, RSTART, RLENGTH); exit}' <<< "$l1")
    printf '%s' "$a${a:+${b:+; }}$b${c:+ ($c)}" | cut -c1-240
}

# rig_copy_bin ROOT BIN [DEST]: copy an executable into ROOT (at DEST, default
# its own absolute path) with the shared libraries it needs at their own
# absolute paths, plus libgcc_s.so.1 (glibc dlopens it; ldd does not list it).
rig_copy_bin() {
    local root=$1 bin=$2 dest=${3:-$2} lib
    mkdir -p "$root$(dirname "$dest")"
    rm -f "$root$dest"   # may be a busybox applet link: never write through it
    cp -L "$bin" "$root$dest"
    if ldd "$bin" >/dev/null 2>&1; then
        for lib in $(ldd "$bin" | awk '/=> \// {print $3} /^[ \t]*\/.*ld-linux/ {print $1}'); do
            [ -e "$root$lib" ] && continue
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done
        lib=$(gcc -print-file-name=libgcc_s.so.1 2>/dev/null)
        [ -e "$lib" ] || lib=/lib/x86_64-linux-gnu/libgcc_s.so.1
        if [ -e "$lib" ] && [ ! -e "$root/lib/x86_64-linux-gnu/libgcc_s.so.1" ]; then
            mkdir -p "$root/lib/x86_64-linux-gnu"
            cp -L "$lib" "$root/lib/x86_64-linux-gnu/libgcc_s.so.1"
        fi
    fi
}

# rig_busybox_root DIR: minimal busybox tree with all applet links in /bin.
rig_busybox_root() {
    local d=$1
    mkdir -p "$d"/{bin,sbin,dev,proc,sys,tmp,etc,root,lib/modules}
    cp /bin/busybox "$d/bin/busybox"
    local a
    for a in $(/bin/busybox --list); do
        [ -e "$d/bin/$a" ] || ln -s busybox "$d/bin/$a"
    done
    [ -e "$d/dev/console" ] || mknod -m 600 "$d/dev/console" c 5 1
    [ -e "$d/dev/null" ] || mknod -m 666 "$d/dev/null" c 1 3
}

# rig_pack DIR OUT [gzip]: newc cpio of DIR (uncompressed unless "gzip").
rig_pack() {
    local d=$1 out=$2
    if [ "${3:-}" = gzip ]; then
        (cd "$d" && find . -print0 | sort -z | cpio --null -o -H newc --quiet -R 0:0 | gzip -9n) > "$out"
    else
        (cd "$d" && find . -print0 | sort -z | cpio --null -o -H newc --quiet -R 0:0) > "$out"
    fi
}

# rig_l2_initrd OUT INIT_SCRIPT [--bin PATH]... [--file SRC:DEST]...
#               [MODULE.ko...]: gzip'd busybox initramfs for an L2 guest;
# --bin copies an executable with its libraries (rig_copy_bin), --file one
# file; modules land in /lib/modules and are insmod'ed in the given order by
# the init script.
rig_l2_initrd() {
    local out=$1 init=$2 d i=0 m; shift 2
    d=$(mktemp -d)
    rig_busybox_root "$d"
    install -m 755 "$init" "$d/init"
    while [ $# -gt 0 ]; do
        case "$1" in
            --bin) rig_copy_bin "$d" "$2"; shift 2 ;;
            --file) mkdir -p "$d$(dirname "${2#*:}")"; cp -L "${2%%:*}" "$d${2#*:}"; shift 2 ;;
            *) break ;;
        esac
    done
    for m in "$@"; do
        i=$((i + 1))
        cp "$m" "$d/lib/modules/$(printf '%02d' $i)-$(basename "$m")"
    done
    rig_pack "$d" "$out" gzip
    rm -rf "$d"
}

# rig_module_closure MODDIR NAME...: print the .ko paths of the modules and
# their dependencies (from modinfo), dependencies first.
rig_module_closure() {
    local moddir=$1; shift
    local -A seen=()
    _rig_mod_visit() {
        local name=${1//-/_} path dep
        [ -n "${seen[$name]:-}" ] && return 0
        seen[$name]=1
        path=$(find "$moddir/kernel" -name "$name.ko" -o -name "${name//_/-}.ko" | head -1)
        [ -n "$path" ] || rig_die "module $name not found under $moddir"
        for dep in $(modinfo -F depends "$path" | tr ',' ' '); do
            _rig_mod_visit "$dep"
        done
        echo "$path"
    }
    local n
    for n in "$@"; do _rig_mod_visit "$n"; done
}

# rig_l1_root DIR: busybox, the kvm modules (load order prefix), rig tools,
# and the common prologue of every L1 /init as /rig/l1-common.sh (mounts,
# KVM; see l1-common.sh).
rig_l1_root() {
    local d=$1 m i=0
    rig_busybox_root "$d"
    mkdir -p "$d/lib/rig-modules" "$d/rig"
    install -m 644 "$RIG_DIR/l1-common.sh" "$d/rig/l1-common.sh"
    for m in virt/lib/irqbypass.ko drivers/crypto/ccp/ccp.ko \
             arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko; do
        i=$((i + 1))
        cp "$L1_MODDIR/kernel/$m" "$d/lib/rig-modules/$i-$(basename "$m")"
    done
    cp "$TOOLS_DIR/vmrun" "$TOOLS_DIR/stamp" "$TOOLS_DIR/mktap" "$TOOLS_DIR/ethsend" "$TOOLS_DIR/vsockt" \
        "$TOOLS_DIR/kvmkeep" "$TOOLS_DIR/kkeys" "$d/bin/"
    if [ "${RIG_KVMKEEP:-0}" = 1 ]; then : > "$d/rig/kvmkeep"; fi
    if [ "${RIG_KKEYS:-0}" = 1 ]; then : > "$d/rig/kkeys"; fi
    if [ "${RIG_L1_TRACE:-0}" = 1 ]; then : > "$d/rig/l1-trace"; fi
    # RIG_KVM_AMD: kvm-amd module parameters for L1 (experiments with the
    # SVM features L1's KVM uses, e.g. "vgif=0 avic=0")
    if [ -n "${RIG_KVM_AMD:-}" ]; then echo "$RIG_KVM_AMD" > "$d/rig/kvm-amd.params"; fi
    # busybox has no curl: the subset Firecracker's docs use (tools/ucurl.c)
    cp "$TOOLS_DIR/ucurl" "$d/bin/curl"
}

# rig_l1_add_qemu DIR: qemu-system-x86_64, its libraries and the firmware
# microvm needs, at their usual paths.
rig_l1_add_qemu() {
    local d=$1 f
    rig_copy_bin "$d" /usr/bin/qemu-system-x86_64
    mkdir -p "$d/usr/share/qemu"
    for f in bios-microvm.bin qboot.rom linuxboot_dma.bin pvh.bin; do
        cp -L "/usr/share/qemu/$f" "$d/usr/share/qemu/"
    done
}

# rig_l1_monitor SOCKET COMMAND...: each HMP COMMAND on L1's QEMU monitor,
# its answer on stdout (bounded: 5 s to connect, 3 s per answer)
rig_l1_monitor() {
    python3 - "$@" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
    s.settimeout(3)
    s.recv(65536)  # the banner and prompt
    for cmd in sys.argv[2:]:
        s.sendall(cmd.encode() + b"\n")
        out, end = b"", time.time() + 3
        while b"(qemu)" not in out and time.time() < end:
            out += s.recv(65536)
        print(out.decode(errors="replace").replace("\r", ""))
except OSError as e:
    print(f"monitor: {e}")
PY
}

# rig_boot_l1 INITRAMFS CONSOLE_LOG TIMEOUT_S [SILENCE_S]: boot L1 under QEMU TCG with
# emulated SVM. softlockup_panic=1: a CPU stuck in KVM for 20+ s ends L1 at
# once, with a backtrace (loglevel=5 shows it), instead of waiting for the
# overall timeout (the stuck CPU also stalls vmrun's own timeout). Console goes to CONSOLE_LOG (and to stderr with RIG_VERBOSE=1).
# Returns QEMU's status; 124 when the overall timeout killed it (the console
# tail is then printed to stderr); 143 when SILENCE_S (>0, not with
# RIG_VERBOSE=1) passed without a byte on the console and L1 was stopped
# as dead (its tail printed, a line saying so appended to the log); halfway
# through SILENCE_S its CPUs' registers are printed and it gets an NMI.
rig_boot_l1() {
    local initramfs=$1 log=$2 tmo=$3 silence=${4:-0} rc
    # unknown_nmi_panic: the NMI sent to a silent L1 (below) ends it in a
    # panic; panic_print=0x40: every panic prints every CPU's backtrace
    # (where each was stuck); mitigations=off: L1 runs only the rig's own
    # guests, and under TCG its speculation barriers cost about 15% of a
    # scenario's time (docs/rig.md, "The L1 kernel"); nohz=off
    # highres=off: L1's tick stays periodic, so one timer interrupt that
    # TCG loses is one lost tick, not an L1 whose one CPU sleeps (or runs
    # its L2 vCPU) forever waiting for it (docs/rig.md, "Two L1 deaths
    # with one cause")
    local qemu=("${L1_QEMU:-qemu-system-x86_64}" -L "${L1_QEMU_DATA:-/usr/share/qemu}"
                -M q35 -accel "tcg,thread=${RIG_TCG_THREAD:-multi}"
                -cpu "${RIG_L1_CPU:-EPYC,+svm,+npt}" -smp "${RIG_L1_SMP:-2}" -m 2048
                -kernel "$L1_KERNEL" -initrd "$initramfs"
                -append "console=ttyS0 panic=-1 loglevel=5 softlockup_panic=1 unknown_nmi_panic panic_print=0x40 mitigations=off nohz=off highres=off${RIG_L1_APPEND:+ $RIG_L1_APPEND}"
                -display none -monitor "unix:$log.mon,server=on,wait=off"
                -serial stdio -no-reboot)
    rig_log "booting L1 (timeout ${tmo}s): ${qemu[*]}"
    : > "$log"
    if [ "${RIG_VERBOSE:-0}" = 1 ]; then
        timeout -k 5 "$tmo" "${qemu[@]}" < /dev/null 2>&1 | tee "$log" >&2
        rc=${PIPESTATUS[0]}
    elif [ "$silence" -gt 0 ]; then
        # A console that stays silent for $silence s (longer than any
        # scenario's own timeout inside L1, which prints when it fires)
        # is an L1 that stopped: it ends like a dead one, not at the
        # overall timeout.
        local qpid size=-1 now quiet=0 nmi=0
        timeout -k 5 "$tmo" "${qemu[@]}" < /dev/null > "$log" 2>&1 &
        qpid=$!
        while kill -0 "$qpid" 2> /dev/null; do
            sleep 2
            now=$(stat -c %s "$log" 2> /dev/null || echo 0)
            if [ "$now" = "$size" ]; then quiet=$((quiet + 2)); else quiet=0 size=$now; fi
            # Halfway through the window, once per boot: where are L1's
            # CPUs (QEMU's view of their registers), and an NMI, which a
            # live L1 kernel answers with a panic and its backtrace (the
            # console speaks again, QEMU exits: an L1 death with a cause).
            if [ "$nmi" = 0 ] && [ "$quiet" -ge $((silence / 2)) ]; then
                nmi=1
                rig_log "L1 printed nothing for ${quiet}s: its CPUs, then an NMI for a backtrace"
                rig_l1_monitor "$log.mon" "info registers -a" nmi |
                    grep -aE '^(CPU#|RIP=|CR0=|EFER=|EAX=)|monitor:' | sed 's/^/  cpu| /' |
                    tee -a "$log.cpus" >&2
            fi
            if [ "$quiet" -ge "$silence" ]; then
                rig_log "L1 printed nothing for ${quiet}s: stopped as dead; console tail:"
                tr -d '\r' < "$log" | grep -av "TCG doesn't support" | tail -n 30 | sed 's/^/  | /' >&2
                echo "rig: L1 silent for ${quiet}s, stopped as dead" >> "$log"
                kill "$qpid" 2> /dev/null
                break
            fi
        done
        wait "$qpid"
        rc=$?
        if [ "$quiet" -ge "$silence" ]; then return 143; fi
    else
        timeout -k 5 "$tmo" "${qemu[@]}" < /dev/null > "$log" 2>&1
        rc=$?
    fi
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        rig_log "L1 QEMU killed by the overall timeout (${tmo}s); console tail:"
        tr -d '\r' < "$log" | grep -av "TCG doesn't support" | tail -n 30 | sed 's/^/  | /' >&2
        return 124
    fi
    return "$rc"
}

# rig_scenarios: one line per scenario folder tests/rig/scenarios/NAME/,
# "name kernel initrd cpus memory timeout vmms needs" (vmms and needs
# comma-separated, needs "-" when empty), from its params file; dies on a
# malformed one.
rig_scenarios() {
    local d n line
    for d in "$RIG_DIR"/scenarios/*/; do
        n=$(basename "$d")
        [ -f "$d/params" ] || rig_die "scenario $n: no params file in $d"
        line=$(
            KERNEL='' INITRD='' CPUS='' MEM='' TIMEOUT='' VMMS='wisp qemu' NEEDS='' CONSOLE=serial
            # shellcheck disable=SC1091
            . "$d/params" || exit 1
            case "$KERNEL" in vmlinux|bzImage|cloud-vmlinuz|generic-vmlinuz|cloud612-vmlinuz) ;; *) echo "KERNEL='$KERNEL' (vmlinux, bzImage, cloud-vmlinuz, generic-vmlinuz or cloud612-vmlinuz)"; exit 1 ;; esac
            case "$INITRD" in base|io|cloud|stock-cloud|stock-generic|rootfs|io-612) ;; *) echo "INITRD='$INITRD' (base, io, cloud, stock-cloud, stock-generic, rootfs or io-612)"; exit 1 ;; esac
            case "$CONSOLE" in serial|virtio) ;; *) echo "CONSOLE='$CONSOLE' (serial or virtio)"; exit 1 ;; esac
            for v in CPUS MEM TIMEOUT; do
                [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v='${!v}' is not a positive number"; exit 1; }
            done
            for v in $VMMS; do
                case "$v" in wisp|qemu) ;; *) echo "VMMS names '$v' (wisp, qemu)"; exit 1 ;; esac
            done
            for v in $NEEDS; do
                case "$v" in wisp-blk|wisp-net|wisp-api|wisp-uffd|qsd|virtiofsd|qemu) ;; *) echo "NEEDS names '$v' (wisp-blk, wisp-net, wisp-api, wisp-uffd, qsd, virtiofsd, qemu)"; exit 1 ;; esac
            done
            v=${VMMS// /,} x=${NEEDS// /,}
            echo "$n $KERNEL $INITRD $CPUS $MEM $TIMEOUT $v ${x:--}"
        ) || rig_die "scenario $n: bad params: $line"
        echo "$line"
    done
}

# rig_scenario_desc NAME: the first comment line of the scenario's params.
rig_scenario_desc() {
    sed -n '1s/^# *//p' "$RIG_DIR/scenarios/$1/params"
}
