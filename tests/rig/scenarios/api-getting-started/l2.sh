# The drive PUT as rootfs (is_root_device) is /dev/vda, wisp added
# root=/dev/vda rw to boot_args, and the machine-config's 2 vCPUs and
# 1024 MiB are checked by the generic checks.
t_main() {
    case " $(cat /proc/cmdline) " in
    *" root=/dev/vda rw "*) ok root-arg ;;
    *) bad root-arg "no 'root=/dev/vda rw' in $(cat /proc/cmdline)" ;;
    esac
    want="wisp-rootfs-$TEST"
    got=$(dd if=/dev/vda bs=512 count=1 2> /tmp/err | head -c ${#want})
    if [ "$got" = "$want" ]; then ok rootfs-read
    else bad rootfs-read "read '$got' from /dev/vda, want '$want' ($(last /tmp/err))"; fi
}
