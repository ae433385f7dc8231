# The console must really be hvc0: it is listed as the active console, a
# line written to /dev/hvc0 itself arrives on the VMM's stdout (L1 looks for
# it in the VMM's output), and a line L1 writes into the VMM's stdin can be
# read from /dev/hvc0 (not /dev/console).
t_main() {
    active=$(cat /sys/class/tty/console/active 2> /dev/null)
    case " $active " in
        *" hvc0 "*) ok console-hvc0 "active consoles: $active" ;;
        *) bad console-hvc0 "active consoles: '$active'" ;;
    esac
    if [ ! -c /dev/hvc0 ]; then bad hvc0-dev "no /dev/hvc0"; return; fi
    ok hvc0-dev
    nonce=$(cat /proc/sys/kernel/random/uuid 2> /dev/null | cut -c1-8)
    echo "WISP-HVC0-OUT $nonce" > /dev/hvc0
    echo "WISP-T-HVC0-WAIT"
    if read -r -t 30 line < /dev/hvc0; then val hvc0-input "$(echo "$line" | tr -d '\r')"
    else bad hvc0-input "nothing read from /dev/hvc0 within 30 s"; fi
}
