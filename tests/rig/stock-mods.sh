#!/bin/bash
# tests/rig/stock-mods.sh ROOT KVER MODULE... - the module layer of an L2
# initramfs for a Debian stock kernel: a gzip'd newc cpio holding the named
# modules of the extracted .deb at ROOT (ROOT/lib/modules/KVER) and every
# module they depend on (xz-compressed ones, as Debian's 6.12 ships them,
# unpacked), resolved with the kernel's own modules.dep (made by
# depmod the way the package's postinst does, when the extracted .deb has
# none), as /lib/modules/NN-NAME.ko in load order: the rig's L2 init
# insmods /lib/modules/*.ko in glob order. A module built into the kernel
# (modules.builtin) is left out; one neither built in nor present is an
# error. The kernel unpacks concatenated cpio archives, so this layer is
# appended to the rig's own busybox initramfs.
#
# Cached as $WISP_CACHE/stock-mods/KEY/mods.cpio.gz, KEY = sha256 of ROOT,
# KVER, the module names and this script; prints that path. Called by
# tests/rig/setup.sh.
set -euo pipefail

CACHE=${WISP_CACHE:-/var/cache/wisp}
die() { printf 'stock-mods: ERROR: %s\n' "$*" >&2; exit 1; }
[ $# -ge 3 ] || die "usage: $0 ROOT KVER MODULE..."
ROOT=$1 KVER=$2; shift 2
MODDIR=$ROOT/lib/modules/$KVER
[ -d "$MODDIR/kernel" ] || die "no $MODDIR/kernel"

KEY=$( { echo "$ROOT $KVER $*"; cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
OUT=$CACHE/stock-mods/$KEY
if [ -f "$OUT/.done" ]; then
    echo "$OUT/mods.cpio.gz"
    exit 0
fi

if [ ! -s "$MODDIR/modules.dep" ]; then
    sm=$ROOT/boot/System.map-$KVER
    depmod -b "$ROOT" ${sm:+$( [ -f "$sm" ] && echo "-F $sm")} "$KVER" ||
        die "depmod -b $ROOT $KVER failed"
fi
[ -s "$MODDIR/modules.dep" ] || die "depmod made no $MODDIR/modules.dep"

norm() { local b=${1##*/}; b=${b%%.ko*}; echo "${b//-/_}"; }
declare -A DEPS=() PATHOF=() BUILTIN=() SEEN=()
while IFS= read -r line; do
    mod=${line%%:*}
    n=$(norm "$mod")
    PATHOF[$n]=$mod
    DEPS[$n]=${line#*:}
done < "$MODDIR/modules.dep"
while IFS= read -r line; do BUILTIN[$(norm "$line")]=1; done < "$MODDIR/modules.builtin"

ORDER=()
visit() {
    local n d
    n=$(norm "$1")
    [ -n "${SEEN[$n]:-}" ] && return 0
    SEEN[$n]=1
    if [ -z "${PATHOF[$n]:-}" ]; then
        [ -n "${BUILTIN[$n]:-}" ] && return 0
        die "module $n: neither in $MODDIR/modules.dep nor built in"
    fi
    # modules.dep lists every (transitive) dependency; visit each first
    for d in ${DEPS[$n]}; do visit "$d"; done
    ORDER+=("${PATHOF[$n]}")
}
for m in "$@"; do visit "$m"; done

rm -rf "$OUT"; mkdir -p "$OUT/tree/lib/modules"
i=0
for p in "${ORDER[@]}"; do
    i=$((i + 1))
    dst=$OUT/tree/lib/modules/$(printf '%02d' $i)-$(basename "${p%.xz}")
    # busybox insmod takes plain .ko files; a module's signature is part of
    # the uncompressed file, so unpacking keeps it
    case "$p" in
        *.ko) cp "$MODDIR/$p" "$dst" ;;
        *.ko.xz) xz -dc "$MODDIR/$p" > "$dst" || die "xz -d $p failed" ;;
        *) die "$p: compressed other than xz" ;;
    esac
done
(cd "$OUT/tree" && find . -print0 | sort -z | cpio --null -o -H newc --quiet -R 0:0 | gzip -9n) > "$OUT/mods.cpio.gz"
printf '%s\n' "${ORDER[@]}" > "$OUT/modules"
rm -rf "$OUT/tree"
touch "$OUT/.done"
echo "$OUT/mods.cpio.gz"
