#!/usr/bin/env bash
# scripts/debian-guest.sh [DIR] - put a Debian guest for wisp into DIR
# (default ./debian-guest): Debian's stock cloud kernel (linux-image-cloud-amd64,
# the .deb tests/rig/setup.sh fetches), an initramfs that loads the kernel's
# own virtio_mmio and virtio_blk modules, mounts /dev/vda and switch_roots
# into it (tests/rig/rootfs-init.sh + tests/rig/stock-mods.sh), and the
# minimal bookworm root filesystem with systemd (tests/rig/rootfs.sh, a
# writable copy). Prints the `wisp run` command that boots it. Run as root
# (setup.sh installs packages; debootstrap). The artefacts are the rig's,
# cached under $WISP_CACHE (default /var/cache/wisp); see README.md,
# "Booting a Debian system".
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-debian-guest}

tests/rig/setup.sh
RIG_PROG=debian-guest RIG_SKIP_SETUP=1
# shellcheck source=../tests/rig/lib.sh
. tests/rig/lib.sh
rig_setup

mkdir -p "$out"
cp "$CLOUD_KERNEL" "$out/vmlinuz"
rig_l2_initrd "$out/initrd.base" tests/rig/rootfs-init.sh
cat "$out/initrd.base" "$ROOTFS_MODS" > "$out/initrd.img"
rm -f "$out/initrd.base"
# wisp locks a writable image; the copy is the guest's to change
cp --sparse=always "$ROOTFS_IMG" "$out/rootfs.ext4"
cat <<EOT
debian-guest: kernel $CLOUD_KVER, initramfs and root filesystem in $out/
boot it (a host with hardware virtualization; ends when the guest powers off):
  wisp run --kernel $out/vmlinuz --initrd $out/initrd.img \\
      --disk path=$out/rootfs.ext4 --cpus 2 --memory 512 --cmdline "root=/dev/vda"
the image has no root password and no getty: its unit wisp-marker.service
prints WISP-MULTI-USER on ttyS0 and powers the guest off (remove
/etc/systemd/system/multi-user.target.wants/wisp-marker.service and unmask
serial-getty@ttyS0.service in the image to log in instead)
EOT
