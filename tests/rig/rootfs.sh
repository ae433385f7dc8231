#!/bin/bash
# tests/rig/rootfs.sh - build the minimal Debian bookworm root filesystem the
# debian-rootfs scenario and bench/boot-rig.sh boot from /dev/vda (see
# docs/rig.md, "The Debian root filesystem").
#
#   debootstrap --variant=minbase + tests/rig/rootfs/packages, configured for
#   a VM with only what wisp gives it (units that wait for a VT, a network or
#   udev to settle masked; the rig's marker unit
#   tests/rig/rootfs/wisp-marker.service enabled, and its shutdown hook
#   tests/rig/rootfs/wisp-shutdown), packed with `mke2fs -t ext4 -d` into an
#   image just large enough.
#
# Cached as $WISP_CACHE/rootfs/KEY/rootfs.ext4, KEY = sha256 of the package
# list, this script, the files in tests/rig/rootfs/ and the mirror; a run with
# an unchanged key is a no-op. Prints the image's path on stdout.
# Run as root (debootstrap); called by tests/rig/setup.sh.
#
# The mirror is the host's Debian archive (the first deb.debian.org-style URI
# of /etc/apt/sources.list*, default http://deb.debian.org/debian); only
# debootstrap's downloads of bookworm packages leave the machine.
set -euo pipefail

RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${WISP_CACHE:-/var/cache/wisp}
SUITE=bookworm
FILES=$RIG_DIR/rootfs

log() { printf 'rootfs: %s\n' "$*" >&2; }
die() { printf 'rootfs: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, mke2fs -d with owners)"
command -v debootstrap > /dev/null || die "debootstrap missing (Debian package debootstrap)"

# The host's archive: the URI of the source that carries $SUITE main.
MIRROR=${ROOTFS_MIRROR:-$(
    { cat /etc/apt/sources.list 2> /dev/null; cat /etc/apt/sources.list.d/*.list 2> /dev/null; } |
        awk -v s="$SUITE" '$1 == "deb" && $3 == s {print $2; exit}'
    [ -n "$(ls /etc/apt/sources.list.d/*.sources 2> /dev/null)" ] &&
        awk -v s="$SUITE" '/^URIs:/ {u = $2} /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == s) {print u; exit}}' \
            /etc/apt/sources.list.d/*.sources
)}
MIRROR=$(head -n 1 <<< "$MIRROR")
MIRROR=${MIRROR:-http://deb.debian.org/debian}

PKGS=$(sed 's/#.*//' "$FILES/packages" | tr -s ' \t\n' '\n' | sed '/^$/d' | sort -u | paste -sd, -)
[ -n "$PKGS" ] || die "no packages in $FILES/packages"
KEY=$( { echo "suite=$SUITE mirror=$MIRROR packages=$PKGS"; cat "${BASH_SOURCE[0]}";
         for f in "$FILES"/*; do echo "== $(basename "$f")"; cat "$f"; done; } |
       sha256sum | cut -c1-16)
OUT=$CACHE/rootfs/$KEY
if [ -f "$OUT/.done" ]; then
    log "cached in $OUT (key $KEY)"
    echo "$OUT/rootfs.ext4"
    exit 0
fi

log "building $SUITE minbase + $PKGS from $MIRROR (key $KEY) into $OUT"
t0=$(date +%s)
mkdir -p "$CACHE/rootfs/debs"
rm -rf "$OUT"; mkdir -p "$OUT"
TREE=$OUT/tree
cleanup() { rm -rf "$TREE"; }
trap cleanup EXIT
# --cache-dir: a rebuild after a change of the configuration below does not
# download the packages again
debootstrap --variant=minbase --include="$PKGS" --cache-dir="$CACHE/rootfs/debs" \
    "$SUITE" "$TREE" "$MIRROR" > "$OUT/debootstrap.log" 2>&1 || {
    tail -n 30 "$OUT/debootstrap.log" >&2
    die "debootstrap failed (log: $OUT/debootstrap.log)"
}
[ -x "$TREE/lib/systemd/systemd" ] || die "no /lib/systemd/systemd in the tree"

# ---- configuration for a VM that has a serial port, virtio devices, no VT
echo wisp-guest > "$TREE/etc/hostname"
# The initramfs mounts / read-write; no fstab entries, so nothing waits for
# a .device unit or runs fsck on the mounted root.
echo '# / is mounted read-write by the initramfs (tests/rig/rootfs.sh)' > "$TREE/etc/fstab"
# A fixed machine id: no first-boot setup (systemd-firstboot would prompt).
tr -d '-' < /proc/sys/kernel/random/uuid > "$TREE/etc/machine-id"
mkdir -p "$TREE/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$TREE/etc/systemd/journald.conf.d/wisp.conf"
ln -sf /lib/systemd/system/multi-user.target "$TREE/etc/systemd/system/default.target"
# Units that wait for what this VM does not have, or only cost time: gettys
# (no VT; ttyS0 belongs to the marker unit), timers of a long-running system.
for u in getty@tty1.service serial-getty@ttyS0.service console-getty.service \
         getty.target systemd-timesyncd.service systemd-networkd-wait-online.service \
         apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
         e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer \
         systemd-tmpfiles-clean.timer systemd-udev-settle.service; do
    ln -sf /dev/null "$TREE/etc/systemd/system/$u"
done
# Under nested emulation every exec costs (libsystemd-shared's
# relocations), so what cannot apply here is masked rather than run to
# find nothing: the generators for encrypted, verity, integrity and GPT
# auto-discovered volumes, hibernation resume, system updates, the debug
# shell, systemd.run=, rc.local, SysV scripts (dbus and hwclock ship
# native units) and gettys (the fstab generator stays, for whoever adds
# entries); module loading (the image carries no modules: the initramfs
# loaded what root needs) and the API file systems nothing here uses.
mkdir -p "$TREE/etc/systemd/system-generators"
for g in cryptsetup veritysetup integritysetup gpt-auto hibernate-resume \
         system-update debug run rc-local sysv getty; do
    ln -sf /dev/null "$TREE/etc/systemd/system-generators/systemd-$g-generator"
done
for u in modprobe@.service systemd-modules-load.service kmod-static-nodes.service \
         sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
         sys-fs-fuse-connections.mount dev-hugepages.mount \
         proc-sys-fs-binfmt_misc.automount systemd-pstore.service; do
    ln -sf /dev/null "$TREE/etc/systemd/system/$u"
done
install -m 755 "$FILES/wisp-marker" "$TREE/usr/local/sbin/wisp-marker"
# systemd-shutdown runs it last, with / read-only: the rig's proof of a
# clean shutdown
install -D -m 755 "$FILES/wisp-shutdown" "$TREE/usr/lib/systemd/system-shutdown/wisp-shutdown"
install -m 644 "$FILES/wisp-marker.service" "$TREE/etc/systemd/system/wisp-marker.service"
mkdir -p "$TREE/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/wisp-marker.service \
    "$TREE/etc/systemd/system/multi-user.target.wants/wisp-marker.service"
# what a VM image does not need to carry
rm -rf "$TREE"/usr/share/doc/* "$TREE"/usr/share/man/* "$TREE"/usr/share/info/* \
    "$TREE"/usr/share/locale/* "$TREE"/var/cache/apt/* "$TREE"/var/lib/apt/lists/* \
    "$TREE"/var/log/*.log
# /etc and /var are as new as /usr: without these stamps every boot of the
# image (a fresh copy each time) counts as the first after an update and
# runs ldconfig, systemd-hwdb-update (seconds under nested emulation),
# journal-catalog-update and update-done (ConditionNeedsUpdate=). The
# stamp's mtime equal to /usr's is what systemd compares; mke2fs keeps
# whole seconds, so the content's TIMESTAMP_NSEC is not read.
touch -r "$TREE/usr" "$TREE/etc/.updated" "$TREE/var/.updated"

# ---- ext4 image: the tree plus 25 % and 32 MiB of room
mb=$(du -sm "$TREE" | cut -f1)
size=$(( mb + mb / 4 + 32 ))
rm -f "$OUT/rootfs.ext4"
# (its messages to a log: stdout carries only the image's path)
mke2fs -q -t ext4 -L wisp-root -d "$TREE" "$OUT/rootfs.ext4" "${size}M" > "$OUT/mke2fs.log" 2>&1 || {
    cat "$OUT/mke2fs.log" >&2
    die "mke2fs -d failed"
}
fsck_out=$(e2fsck -fn "$OUT/rootfs.ext4" 2>&1) || {
    printf '%s\n' "$fsck_out" >&2
    die "e2fsck of the new image failed"
}
sed 's/#.*//' "$FILES/packages" | sed '/^ *$/d' > "$OUT/packages"
echo "$MIRROR" > "$OUT/mirror"
touch "$OUT/.done"
log "built in $(( $(date +%s) - t0 )) s: $OUT/rootfs.ext4 (${size} MiB, tree ${mb} MiB)"
echo "$OUT/rootfs.ext4"
