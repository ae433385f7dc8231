# The same guest test as blk-ext4, under QEMU, on wisp-blk's disk.
. /rig/scenarios/blk-ext4/l2.sh
