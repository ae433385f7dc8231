# The hostile-guest battery against a disk served by a vhost-user-blk
# back-end (wisp-blk --vhost-user): hostile-guest's attack on the disk of
# 8 MiB (keys "vhu-..."), then virtio_blk bound to it again and the
# whole disk read (its sha goes to L1, which compares the image).
. /rig/scenarios/hostile-guest/l2.sh
t_main() {
    attack 16384 vhu 0
}
