#!/bin/sh
# /init of the L1 VM for scripts/demo.sh on PVM hosts: after the rig's
# common L1 prologue (/rig/l1-common.sh: mounts, kvm-amd), run wisp with the
# demo guest on L1's console, power off when wisp ends.
. /rig/l1-common.sh
. /demo/args
echo "demo (L1): wisp run --kernel /demo/bzImage --initrd /demo/initrd.gz $WISP_ARGS"
# shellcheck disable=SC2086 # WISP_ARGS is split on purpose
/bin/wisp run --kernel /demo/bzImage --initrd /demo/initrd.gz $WISP_ARGS \
	</dev/console >/dev/console 2>&1
echo "demo (L1): wisp exited with status $?"
finish
