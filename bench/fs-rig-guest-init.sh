#!/bin/sh
# /init of the L2 guest in bench/fs-rig.sh (busybox + fs-ops, PID 1).
# Mounts the virtio-fs tag "share" on /mnt, then for each job named in
# fs_jobs= on the command line: drops the guest's page cache, dentries
# and inodes, prints "WISP-FS-BEGIN job", waits for a console line (L1
# samples the VMM's and virtiofsd's CPU time, then answers), runs the job
# (bench/fs-ops.c, timed on the guest's monotonic clock), prints
# "WISP-FS-END job status", waits again (the second sample), then prints
# "WISP-FS-RES job ns ops bytes" (fs-ops' figures) or fs-ops' error.
#   create  fs_files= files of fs_size= bytes in /mnt/c, then sync
#   stat    readdir /mnt/c and lstat every file
#   read    /mnt/big.bin (L1 wrote it into the share) in fs_bs= reads
#   write   fs_mib= MiB to a new /mnt/w.bin in fs_bs= writes, then fsync
# Then reboot (wisp exits; QEMU: reboot=t + -no-reboot).
# shellcheck source=bench/guest-common.sh
. /guest-common.sh   # PATH, mounts, a quiet console
echo "WISP-FS-INIT $(cut -d' ' -f1 /proc/uptime)"
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
FILES=$(arg fs_files) SIZE=$(arg fs_size) MIB=$(arg fs_mib) BS=$(arg fs_bs)
JOBS=$(arg fs_jobs | tr ',' ' ')
mkdir -p /mnt
if ! mount -t virtiofs share /mnt 2> /tmp/err; then
    echo "WISP-FS-ERR mount: $(cat /tmp/err)"
    JOBS=
fi
echo "WISP-FS-MOUNT $(grep ' /mnt ' /proc/mounts)"
mkdir -p /mnt/c
for job in $JOBS; do
    case "$job" in
    create) set -- create /mnt/c "$FILES" "$SIZE" ;;
    stat) set -- stat /mnt/c ;;
    read) set -- read /mnt/big.bin "$BS" ;;
    write) set -- write /mnt/w.bin "$MIB" "$BS" ;;
    *) echo "WISP-FS-END $job unknown-job"; continue ;;
    esac
    sync
    echo 3 > /proc/sys/vm/drop_caches
    echo "WISP-FS-BEGIN $job"
    read -r _go
    /bin/fs-ops "$@" > /tmp/out 2>&1
    rc=$?
    echo "WISP-FS-END $job $rc"
    read -r _go
    if [ "$rc" = 0 ]; then sed -n "s/^FS-OPS $job /WISP-FS-RES $job /p" /tmp/out
    else sed "s/^/WISP-FS-ERR $job /" /tmp/out | tail -n 3; fi
done
umount /mnt 2> /tmp/err || echo "WISP-FS-ERR umount: $(cat /tmp/err)"
echo "WISP-FS-DONE"
reboot -f
sleep 1000000
