# The guest's part is snapshot-file's: ext4 and a background write before
# the snapshot; after the restore the counter, the finished write, a new
# write, the clock, no soft lockup, a clean umount.
. /rig/scenarios/snapshot-file/l2.sh
