#!/usr/bin/env bash
# Builds wisp and the bundled guest (Linux 6.1 from linux-source-6.1 +
# a busybox initramfs), boots it and shows its console.
#  - host with hardware virtualization: wisp runs the guest directly;
#  - PVM host (no VT-x/AMD-V): wisp runs inside the nested rig (QEMU TCG
#    with emulated SVM, docs/rig.md) and the guest's console comes through.
# On a terminal the guest gives you a shell ('exit' ends it); otherwise it
# prints what it sees and reboots, which ends wisp.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
tests/rig/setup.sh
RIG_PROG=demo RIG_SKIP_SETUP=1
# shellcheck source=../tests/rig/lib.sh
. tests/rig/lib.sh
rig_setup

work=$(mktemp -d /tmp/wisp-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
rig_l2_initrd "$work/initrd.gz" scripts/demo/guest-init.sh

mode=""
[ -t 0 ] && [ -t 1 ] && mode=wisp.interactive
args="--cpus 2 --memory 256 --cmdline ${mode:-wisp.demo}"

if [ -e /sys/module/kvm_pvm ] || ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
	echo "demo: /dev/kvm here is PVM (no hardware virtualization): an"
	echo "demo: unmodified Linux cannot boot on it, so wisp runs inside the"
	echo "demo: nested rig (L1 = QEMU TCG + emulated SVM; ~10-30 s to boot)."
	[ -f build-rig/build.ninja ] ||
		meson setup build-rig -Dstatic=true -Dtests=false >/dev/null
	ninja -C build-rig >/dev/null
	l1=$work/l1
	rig_l1_root "$l1"
	install -m 755 scripts/demo/l1-init.sh "$l1/init"
	rig_copy_bin "$l1" "$top/build-rig/src/cli/wisp" /bin/wisp
	mkdir -p "$l1/demo"
	cp "$L2_BZIMAGE" "$l1/demo/bzImage"
	cp "$work/initrd.gz" "$l1/demo/initrd.gz"
	echo "WISP_ARGS='$args'" >"$l1/demo/args"
	rig_pack "$l1" "$work/l1.cpio"
	exec_timeout=300
	[ -n "$mode" ] && exec_timeout=7200
	timeout -k 5 "$exec_timeout" qemu-system-x86_64 -M q35 \
		-accel tcg,thread=multi -cpu EPYC,+svm,+npt -smp 2 -m 1024 \
		-kernel "$L1_KERNEL" -initrd "$work/l1.cpio" \
		-append "console=ttyS0 panic=-1 quiet loglevel=0" \
		-display none -monitor none -serial stdio -no-reboot
else
	# shellcheck disable=SC2086
	build/src/cli/wisp run --kernel "$L2_BZIMAGE" \
		--initrd "$work/initrd.gz" $args
fi
