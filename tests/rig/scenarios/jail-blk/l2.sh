# The same guest test as blk-ext4.
. /rig/scenarios/blk-ext4/l2.sh
