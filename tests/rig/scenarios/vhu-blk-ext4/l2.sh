# The same guest test as blk-ext4, on the vhost-user disk.
. /rig/scenarios/blk-ext4/l2.sh
