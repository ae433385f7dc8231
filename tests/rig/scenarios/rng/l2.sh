# /dev/hwrng must be the virtio device (rng_current, not merely listed in
# rng_available) and must deliver: two reads of 64 bytes, each not one
# repeated byte, and different from each other.
t_main() {
    if [ -c /dev/hwrng ]; then ok hwrng-dev; else bad hwrng-dev "no /dev/hwrng"; fi
    cur=$(cat /sys/class/misc/hw_random/rng_current 2> /dev/null)
    avail=$(cat /sys/class/misc/hw_random/rng_available 2> /dev/null)
    val rng-current "$cur"
    case "$cur" in
        virtio*) ok rng-virtio "current '$cur' (available '$avail')" ;;
        *) bad rng-virtio "rng_current '$cur' is not the virtio device (available '$avail')" ;;
    esac
    for i in 1 2; do
        head -c 64 /dev/hwrng > /tmp/rng$i 2> /tmp/err
        n=$(wc -c < /tmp/rng$i)
        distinct=$(od -An -v -tx1 /tmp/rng$i | tr -s ' ' '\n' | grep . | sort -u | wc -l)
        val rng-bytes-$i "$n distinct=$distinct $(od -An -v -tx1 /tmp/rng$i | tr -d ' \n' | cut -c1-32)"
        if [ "$n" -ge 64 ] && [ "$distinct" -gt 1 ]; then ok rng-read-$i "$n bytes, $distinct distinct values"
        else bad rng-read-$i "$n bytes, $distinct distinct values ($(last /tmp/err))"; fi
    done
    if [ "$(wc -c < /tmp/rng1)" -ge 64 ] && ! cmp -s /tmp/rng1 /tmp/rng2; then ok rng-differ
    else bad rng-differ "the two 64-byte reads of /dev/hwrng are equal (or short)"; fi
}
