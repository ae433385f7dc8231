# O_DIRECT reads through each limit, timed with /proc/uptime. A full
# bucket lets its size through at once, so the time the rest takes is
# what the refill rate allows: vda 24 MiB in 64 KiB requests at 2 MiB/s
# after the first 2 MiB, (24 - 2) / 2 = 11 s; vdb 1200 requests of 4 KiB
# at 200/s after the first 200, (1200 - 200) / 200 = 5 s. Each must be
# within 10%; an unlimited disk would be far quicker.
up() { cut -d' ' -f1 /proc/uptime; }
t_main() {
    t0=$(up)
    dd if=/dev/vda of=/dev/null bs=64k count=384 iflag=direct 2> /tmp/err1
    t1=$(up)
    dd if=/dev/vdb of=/dev/null bs=4k count=1200 iflag=direct 2> /tmp/err2
    t2=$(up)
    v=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    o=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }')
    val bw-seconds "$v"
    val ops-seconds "$o"
    if awk -v t="$v" 'BEGIN { exit !(t >= 9.9 && t <= 12.1) }'; then
        ok bw-limit "24 MiB in $v s: $(awk -v t="$v" 'BEGIN { printf "%.3f", 22 / t }') MiB/s after the bucket (setting 2)"
    else bad bw-limit "24 MiB in $v s, want 11 s +-10% ($(last /tmp/err1))"; fi
    if awk -v t="$o" 'BEGIN { exit !(t >= 4.5 && t <= 5.5) }'; then
        ok ops-limit "1200 requests in $o s: $(awk -v t="$o" 'BEGIN { printf "%.1f", 1000 / t }') per second after the bucket (setting 200)"
    else bad ops-limit "1200 requests in $o s, want 5 s +-10% ($(last /tmp/err2))"; fi
}
