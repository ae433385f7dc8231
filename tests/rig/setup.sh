#!/bin/bash
# tests/rig/setup.sh - prepare everything the nested rig needs (see docs/rig.md).
#
#  * installs the Debian packages the rig uses (idempotent; `apt-get update`
#    only when something is missing),
#  * downloads and extracts (no install) the L1 kernel .deb, Debian's stock
#    cloud kernel .deb and bookworm-backports' 6.12 cloud kernel .deb, cached
#    by package version,
#  * builds the L2 guest kernel (tinyconfig + tests/rig/l2-kernel.config)
#    from /usr/src/linux-source-6.1.tar.xz, cached by
#    sha256(fragment + linux-source version + this script's BUILD_VERSION),
#  * builds the small static helpers in tests/rig/tools (cached by hash),
#  * the module layers of the stock kernels' L2 initramfs images
#    (stock-mods.sh) and the Debian bookworm root filesystem image
#    (rootfs.sh, debootstrap), each cached by its inputs,
#  * writes ${WISP_CACHE}/rig.env, which run.sh and bench/boot-rig.sh source.
#
# A second run with unchanged inputs is a fast no-op.
#
# Environment: WISP_CACHE (default /var/cache/wisp), JOBS (default nproc),
# RIG_L1_QEMU (10: QEMU 10 from bookworm-backports as L1; default: the
# system's qemu-system-x86), RIG_L1_KERNEL (default 6.12: bookworm-backports'
# linux-image-amd64 as L1's kernel, falling back to bookworm's 6.1 with a
# warning when that suite is unreachable; 6.1: bookworm's).
set -euo pipefail

# Bump when the kernel build procedure below changes (invalidates the cache).
BUILD_VERSION=1

RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${WISP_CACHE:-/var/cache/wisp}
JOBS=${JOBS:-$(nproc)}
FRAGMENT="$RIG_DIR/l2-kernel.config"
SRC_TARBALL=/usr/src/linux-source-6.1.tar.xz

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (installs packages, writes $CACHE)"
mkdir -p "$CACHE"

# Serialise concurrent setup runs (two engineers / CI steps).
exec 9>"$CACHE/.setup.lock"
if ! flock -n 9; then
    log "another setup.sh holds $CACHE/.setup.lock; waiting"
    flock 9
fi

# --------------------------------------------------------------- packages
PKGS=(qemu-system-x86 qemu-system-common busybox-static linux-source-6.1 bc flex bison
      libelf-dev libssl-dev cpio e2fsprogs fio iperf3 kmod gcc make libc6-dev xz-utils
      gzip python3 debootstrap libseccomp-dev)

missing=()
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed"
else
    log "packages: all ${#PKGS[@]} present"
fi

# ------------------------------------------------------- kernel .deb files
# bookworm-backports through its own apt lists under the cache (the system's
# sources stay as they are): apt-get/apt-cache "${APT_BP[@]}" ...
BP=$CACHE/apt-backports
APT_BP=(-o "Dir::Etc::SourceList=$BP/sources.list" -o "Dir::Etc::SourceParts=$BP/none"
        -o "Dir::State::Lists=$BP/lists")
bp_lists() {
    mkdir -p "$BP/lists/partial"
    echo "deb http://deb.debian.org/debian bookworm-backports main" > "$BP/sources.list"
    [ -n "$(ls "$BP"/lists/*bookworm-backports*Packages* 2>/dev/null)" ] && return 0
    log "bookworm-backports package lists missing; fetching them into $BP"
    apt-get "${APT_BP[@]}" update -q >&2
}

# fetch_deb META_PACKAGE [APT_OPTION...] -> prints the extracted directory
# (with the options of APT_BP: the newest version bookworm-backports has)
fetch_deb() {
    local meta=$1 pkg ver dir deb
    shift
    local apt=("$@")
    if [ ${#apt[@]} -gt 0 ]; then
        pkg=$(apt-cache "${apt[@]}" depends "$meta" 2>/dev/null |
              awk '/Depends: linux-image-/ {print $2; exit}')
        [ -n "$pkg" ] || die "bookworm-backports: cannot resolve the kernel package behind $meta"
        # madison, not show: the candidate may be another suite's
        ver=$(apt-cache "${apt[@]}" madison "$pkg" 2>/dev/null |
              awk -F' *[|] *' '$3 ~ /bookworm-backports/ {print $2; exit}')
        [ -n "$ver" ] || die "bookworm-backports: no version for $pkg"
        fetch_deb_files "$pkg" "$ver" "${apt[@]}"
        return
    fi
    pkg=$(apt-cache depends "$meta" 2>/dev/null |
          awk '/Depends: linux-image-/ {print $2; exit}')
    [ -n "$pkg" ] || {
        # the package lists may be missing on a fresh machine
        log "apt-cache knows no dependency of $meta; running apt-get update"
        apt-get update -q >&2 || die "apt-get update failed"
        pkg=$(apt-cache depends "$meta" |
              awk '/Depends: linux-image-/ {print $2; exit}')
    }
    [ -n "$pkg" ] || die "cannot resolve the kernel package behind $meta"
    ver=$(apt-cache show --no-all-versions "$pkg" |
          awk '/^Version:/ {print $2; exit}')
    [ -n "$ver" ] || die "no version for $pkg"
    fetch_deb_files "$pkg" "$ver"
}

# fetch_deb_files PKG VERSION [APT_OPTION...] -> the extracted directory,
# $CACHE/debs/PKG/VERSION/root (downloaded and unpacked once)
fetch_deb_files() {
    local pkg=$1 ver=$2 dir deb
    shift 2
    dir="$CACHE/debs/$pkg/$ver"
    if [ -f "$dir/.done" ]; then
        log "$pkg $ver: cached in $dir"
    else
        log "$pkg $ver: downloading and extracting into $dir"
        rm -rf "$dir"
        mkdir -p "$dir/dl"
        # let apt's sandbox user write there (avoids an "unsandboxed" warning)
        chown _apt "$dir/dl" 2>/dev/null || true
        (cd "$dir/dl" && apt-get "$@" download "$pkg=$ver" >&2) ||
            die "apt-get download $pkg=$ver failed"
        deb=$(ls "$dir"/dl/*.deb)
        dpkg-deb -x "$deb" "$dir/root" || die "dpkg-deb -x $deb failed"
        rm -rf "$dir/dl"
        ls "$dir"/root/boot/vmlinuz-* >/dev/null 2>&1 ||
            die "$pkg has no /boot/vmlinuz-*"
        touch "$dir/.done"
    fi
    echo "$dir"
}

L1_DEB_DIR=$(fetch_deb linux-image-amd64)
CLOUD_DEB_DIR=$(fetch_deb linux-image-cloud-amd64)
# Linux 6.12 from bookworm-backports: virtio-iommu with deferred flushing
# (lazy mode; 6.1's driver has none), for bench/fio-rig.sh --guest-kernel 6.12
# Without bookworm-backports the rest of the rig still works: rig.env
# then names no 6.12 kernel, and that option refuses to run.
BPO_CLOUD_DEB_DIR=
if bp_lists && BPO_CLOUD_DEB_DIR=$(fetch_deb linux-image-cloud-amd64 "${APT_BP[@]}"); then :; else
    log "WARNING: no 6.12 kernel from bookworm-backports (fio-rig.sh --guest-kernel 6.12 cannot run)"
    BPO_CLOUD_DEB_DIR=
fi
L1_KERNEL=$(ls "$L1_DEB_DIR"/root/boot/vmlinuz-* | head -1)
L1_KVER=$(basename "$L1_KERNEL" | sed 's/^vmlinuz-//')
L1_MODDIR="$L1_DEB_DIR/root/lib/modules/$L1_KVER"
CLOUD_KERNEL=$(ls "$CLOUD_DEB_DIR"/root/boot/vmlinuz-* | head -1)
CLOUD_KVER=$(basename "$CLOUD_KERNEL" | sed 's/^vmlinuz-//')
CLOUD_MODDIR="$CLOUD_DEB_DIR/root/lib/modules/$CLOUD_KVER"
BPO_CLOUD_KERNEL='' BPO_CLOUD_KVER='' BPO_CLOUD_MODS=''
if [ -n "$BPO_CLOUD_DEB_DIR" ]; then
    BPO_CLOUD_KERNEL=$(ls "$BPO_CLOUD_DEB_DIR"/root/boot/vmlinuz-* | head -1)
    BPO_CLOUD_KVER=$(basename "$BPO_CLOUD_KERNEL" | sed 's/^vmlinuz-//')
    case "$BPO_CLOUD_KVER" in 6.12.*) ;; *) die "bookworm-backports' cloud kernel is $BPO_CLOUD_KVER, not 6.12" ;; esac
fi
# l1_mods_missing MODDIR: prints the first of the modules L1 loads
# (lib.sh's rig_l1_root) that MODDIR lacks; status 0 when one is missing
l1_mods_missing() {
    local m
    for m in virt/lib/irqbypass.ko drivers/crypto/ccp/ccp.ko \
             arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko; do
        [ -f "$1/kernel/$m" ] || { echo "$1/kernel/$m"; return 0; }
    done
    return 1
}
if m=$(l1_mods_missing "$L1_MODDIR"); then die "L1 module missing: $m"; fi

# ------------------------------------------------------- L2 guest kernel
[ -f "$FRAGMENT" ] || die "missing $FRAGMENT"
[ -f "$SRC_TARBALL" ] || die "missing $SRC_TARBALL (package linux-source-6.1)"
SRC_VER=$(dpkg-query -W -f='${Version}' linux-source-6.1)
KEY=$( { cat "$FRAGMENT"; echo "linux-source-6.1=$SRC_VER";
         echo "build-version=$BUILD_VERSION"; } | sha256sum | cut -c1-16)
L2_DIR="$CACHE/l2-kernel/$KEY"

# check_config CONFIG FRAGMENT: every CONFIG_X=y of the fragment must be set.
check_config() {
    local cfg=$1 frag=$2 bad=() line sym
    while IFS= read -r line; do
        case "$line" in CONFIG_*=y) ;; *) continue ;; esac
        sym=${line%%=*}
        grep -qx "$sym=y" "$cfg" || bad+=("$sym")
    done < "$frag"
    if [ ${#bad[@]} -gt 0 ]; then
        printf 'setup: ERROR: not set to y in the built config: %s\n' "${bad[@]}" >&2
        return 1
    fi
}

if [ -f "$L2_DIR/.done" ]; then
    log "L2 kernel: cached in $L2_DIR (key $KEY, linux-source $SRC_VER)"
else
    BUILD="$CACHE/build/linux-$KEY"
    log "L2 kernel: building (key $KEY, linux-source $SRC_VER, $JOBS jobs) in $BUILD"
    log "  this takes ~4-5 minutes on 2 cores; log: $BUILD.log"
    rm -rf "$BUILD" "$L2_DIR"
    mkdir -p "$BUILD"
    t0=$(date +%s)
    {
        tar -xJf "$SRC_TARBALL" -C "$BUILD" --strip-components=1 &&
        cd "$BUILD" &&
        make -s tinyconfig &&
        KCONFIG_CONFIG=.config ./scripts/kconfig/merge_config.sh -m .config "$FRAGMENT" &&
        make -s olddefconfig &&
        make -j"$JOBS" bzImage
    } > "$BUILD.log" 2>&1 || {
        tail -40 "$BUILD.log" >&2
        die "L2 kernel build failed (full log: $BUILD.log)"
    }
    check_config "$BUILD/.config" "$FRAGMENT" ||
        die "L2 kernel config is missing options from $FRAGMENT (dependencies unmet?); config: $BUILD/.config"
    mkdir -p "$L2_DIR"
    cp "$BUILD/arch/x86/boot/bzImage" "$BUILD/vmlinux" "$L2_DIR/"
    cp "$BUILD/.config" "$L2_DIR/config"
    cp "$BUILD/System.map" "$L2_DIR/"
    cp "$FRAGMENT" "$L2_DIR/fragment.config"
    echo "$SRC_VER" > "$L2_DIR/linux-source-version"
    touch "$L2_DIR/.done"
    rm -rf "$BUILD"
    log "L2 kernel: built in $(( $(date +%s) - t0 )) s -> $L2_DIR"
fi
# Cheap re-check on every run (the cached config must still match).
check_config "$L2_DIR/config" "$FRAGMENT" || die "cached L2 config in $L2_DIR is stale"
grep -q 'Xen' <(readelf -n "$L2_DIR/vmlinux" 2>/dev/null) ||
    die "$L2_DIR/vmlinux has no Xen/PVH ELF note (CONFIG_PVH?)"

# --------------------------------------------------------- static helpers
TOOLS_KEY=$(cat "$RIG_DIR"/tools/*.c | sha256sum | cut -c1-16)
TOOLS_DIR="$CACHE/tools/$TOOLS_KEY"
if [ -f "$TOOLS_DIR/.done" ]; then
    log "tools: cached in $TOOLS_DIR"
else
    log "tools: building static helpers into $TOOLS_DIR"
    rm -rf "$TOOLS_DIR"; mkdir -p "$TOOLS_DIR"
    for c in "$RIG_DIR"/tools/*.c; do
        gcc -static -O2 -Wall -Wextra -o "$TOOLS_DIR/$(basename "$c" .c)" "$c" ||
            die "gcc failed on $c"
    done
    touch "$TOOLS_DIR/.done"
fi

# ------------------------------------- stock kernels' modules, Debian rootfs
# The virtio drivers the stock-*-4cpu scenarios load as modules, and what
# the cloud kernel needs to mount the Debian root filesystem (ext4 is built
# into it; listed for kernels where it is a module) and for systemd-logind
# to see wisp's power button: `button` binds the PNP0C0C device under the
# GED and makes it an input device, `evdev` gives it the /dev/input/event*
# node udev tags power-switch (both modules in Debian's kernels; the image
# carries no modules, so the initramfs loads them).
STOCK_MODULES=(virtio_mmio virtio_blk virtio_console virtio_rng)
STOCK_CLOUD_MODS=$("$RIG_DIR/stock-mods.sh" "$CLOUD_DEB_DIR/root" "$CLOUD_KVER" "${STOCK_MODULES[@]}") ||
    die "stock-mods.sh failed for $CLOUD_KVER"
STOCK_GENERIC_MODS=$("$RIG_DIR/stock-mods.sh" "$L1_DEB_DIR/root" "$L1_KVER" "${STOCK_MODULES[@]}") ||
    die "stock-mods.sh failed for $L1_KVER"
ROOTFS_MODS=$("$RIG_DIR/stock-mods.sh" "$CLOUD_DEB_DIR/root" "$CLOUD_KVER" virtio_mmio virtio_blk ext4 button evdev) ||
    die "stock-mods.sh failed for the rootfs initramfs"
# 6.12: virtio-iommu is a module there too (virtio_console is built in)
if [ -n "$BPO_CLOUD_KVER" ]; then
    BPO_CLOUD_MODS=$("$RIG_DIR/stock-mods.sh" "$BPO_CLOUD_DEB_DIR/root" "$BPO_CLOUD_KVER" virtio_mmio virtio_iommu virtio_blk) ||
        die "stock-mods.sh failed for $BPO_CLOUD_KVER"
    [ -f "$BPO_CLOUD_MODS" ] || die "stock-mods.sh printed '$BPO_CLOUD_MODS', not a file"
fi
log "stock module layers: $STOCK_CLOUD_MODS, $STOCK_GENERIC_MODS, $ROOTFS_MODS, $BPO_CLOUD_MODS"
ROOTFS_IMG=$("$RIG_DIR/rootfs.sh") || die "rootfs.sh failed"
for f in "$STOCK_CLOUD_MODS" "$STOCK_GENERIC_MODS" "$ROOTFS_MODS" "$ROOTFS_IMG"; do
    [ -f "$f" ] || die "stock-mods.sh/rootfs.sh printed '$f', not a file"
done

# ---------------------------------------------- L1 kernel (RIG_L1_KERNEL)
# Bookworm's generic kernel stays the L2 `generic-vmlinuz` either way.
GENERIC_KERNEL=$L1_KERNEL
# l1_612: bookworm-backports' generic kernel as L1 (L1_* on success)
l1_612() {
    local dir kernel kver moddir m
    bp_lists || { log "no bookworm-backports package lists"; return 1; }
    dir=$(fetch_deb linux-image-amd64 "${APT_BP[@]}") || return 1
    kernel=$(ls "$dir"/root/boot/vmlinuz-* | head -1)
    kver=$(basename "$kernel" | sed 's/^vmlinuz-//')
    case "$kver" in 6.12.*) ;; *) log "bookworm-backports' generic kernel is $kver, not 6.12"; return 1 ;; esac
    moddir="$dir/root/lib/modules/$kver"
    # its modules are .ko.xz; the rig copies and insmods plain .ko files
    if [ ! -f "$dir/.unxz" ]; then
        log "$kver: decompressing its modules"
        find "$moddir" -name '*.ko.xz' -print0 | xargs -0 -r -P "$JOBS" -n 200 xz -d ||
            { log "xz -d of $moddir's modules failed"; return 1; }
        touch "$dir/.unxz"
    fi
    if m=$(l1_mods_missing "$moddir"); then log "L1 module missing: $m"; return 1; fi
    L1_DEB_DIR=$dir L1_KERNEL=$kernel L1_KVER=$kver L1_MODDIR=$moddir
}
case "${RIG_L1_KERNEL:-6.12}" in
6.1) ;;
6.12)
    if ! l1_612; then
        [ -z "${RIG_L1_KERNEL:-}" ] || die "RIG_L1_KERNEL=6.12: no usable 6.12 kernel from bookworm-backports"
        log "WARNING: no 6.12 kernel from bookworm-backports; L1 runs bookworm's $L1_KVER (docs/rig.md, \"The L1 kernel\")"
    fi
    ;;
*) die "RIG_L1_KERNEL='$RIG_L1_KERNEL': expected 6.1 or 6.12" ;;
esac

# ------------------------------------------------ L1 QEMU (RIG_L1_QEMU)
# RIG_L1_QEMU=10: QEMU from bookworm-backports as L1 (docs/rig.md, "The L1
# QEMU"), extracted without installing: its own apt lists under the cache
# (the system's sources stay as they are), the three packages of one
# version unpacked into $CACHE/qemu-l1/VERSION, run with bookworm's
# libraries and -L for its firmware. Default: Debian's qemu-system-x86.
L1_QEMU=qemu-system-x86_64 L1_QEMU_DATA=/usr/share/qemu L1_QEMU_VERSION=system
case "${RIG_L1_QEMU:-system}" in
system|7) ;;
10)
    apt_bp=("${APT_BP[@]}")
    # madison, not show: the installed 7.2 would be the "candidate"
    bp_ver() { apt-cache "${apt_bp[@]}" madison qemu-system-x86 2>/dev/null |
               awk -F' *[|] *' '$3 ~ /bookworm-backports/ {print $2; exit}'; }
    ver=$(bp_ver)
    if [ -z "$ver" ]; then
        log "bookworm-backports package lists missing; fetching them into $BP"
        apt-get "${apt_bp[@]}" update -q >&2 || die "apt-get update (bookworm-backports) failed"
        ver=$(bp_ver)
    fi
    case "$ver" in 1:10.*|10.*) ;; *) die "bookworm-backports offers qemu-system-x86 '$ver', not 10.x" ;; esac
    dir=$CACHE/qemu-l1/${ver//:/_}
    if [ -f "$dir/.done" ]; then
        log "L1 QEMU $ver: cached in $dir"
    else
        log "L1 QEMU $ver: downloading qemu-system-x86, -common, -data from bookworm-backports"
        rm -rf "$dir"; mkdir -p "$dir/debs" "$dir/root"
        ( cd "$dir/debs" && apt-get "${apt_bp[@]}" download -q \
            "qemu-system-x86=$ver" "qemu-system-common=$ver" "qemu-system-data=$ver" >&2 ) ||
            die "apt-get download of QEMU $ver failed"
        for deb in "$dir"/debs/*.deb; do
            dpkg-deb -x "$deb" "$dir/root" || die "dpkg-deb -x $deb failed"
        done
        "$dir/root/usr/bin/qemu-system-x86_64" -L "$dir/root/usr/share/qemu" --version >&2 ||
            die "QEMU $ver does not run with this system's libraries"
        rm -rf "$dir/debs"
        touch "$dir/.done"
    fi
    L1_QEMU=$dir/root/usr/bin/qemu-system-x86_64
    L1_QEMU_DATA=$dir/root/usr/share/qemu
    L1_QEMU_VERSION=$ver
    ;;
*) die "RIG_L1_QEMU='$RIG_L1_QEMU': expected 10 or system" ;;
esac

# ------------------------------------------------------------- rig.env
ENV_FILE="$CACHE/rig.env"
cat > "$ENV_FILE.tmp" <<EOF
# generated by tests/rig/setup.sh - do not edit
L1_KERNEL='$L1_KERNEL'
L1_KVER='$L1_KVER'
L1_MODDIR='$L1_MODDIR'
GENERIC_KERNEL='$GENERIC_KERNEL'
CLOUD_KERNEL='$CLOUD_KERNEL'
CLOUD_KVER='$CLOUD_KVER'
CLOUD_MODDIR='$CLOUD_MODDIR'
L2_DIR='$L2_DIR'
L2_BZIMAGE='$L2_DIR/bzImage'
L2_VMLINUX='$L2_DIR/vmlinux'
TOOLS_DIR='$TOOLS_DIR'
STOCK_CLOUD_MODS='$STOCK_CLOUD_MODS'
STOCK_GENERIC_MODS='$STOCK_GENERIC_MODS'
BPO_CLOUD_KERNEL='$BPO_CLOUD_KERNEL'
BPO_CLOUD_KVER='$BPO_CLOUD_KVER'
BPO_CLOUD_MODS='$BPO_CLOUD_MODS'
ROOTFS_MODS='$ROOTFS_MODS'
ROOTFS_IMG='$ROOTFS_IMG'
L1_QEMU='$L1_QEMU'
L1_QEMU_DATA='$L1_QEMU_DATA'
L1_QEMU_VERSION='$L1_QEMU_VERSION'
EOF
mv "$ENV_FILE.tmp" "$ENV_FILE"
log "L1 kernel:    $L1_KERNEL ($L1_KVER)"
log "cloud kernel: $CLOUD_KERNEL"
log "L2 kernel:    $L2_DIR/{bzImage,vmlinux}"
log "tools:        $TOOLS_DIR"
log "rootfs:       $ROOTFS_IMG"
log "L1 QEMU:      $L1_QEMU ($L1_QEMU_VERSION)"
log "wrote $ENV_FILE"
