#!/usr/bin/env python3
"""Costs of the guest-access paths on the host's KVM, one invocation,
with ratios (the IOREQ issue's benchmark). The freestanding test guest
loops on one access and times it with rdtsc; each figure is the median of
RUNS runs of N accesses.

  exit (VMM thread)    4-byte MMIO write to an in-process virtio register,
                       handled on the vCPU thread after a userspace exit
  ioeventfd            the same-size write to a QueueNotify caught by a
                       KVM ioeventfd lane (no userspace exit)
  ioreq sync write     forwarded to an IOREQ server (wisp-ioreq-test)
  ioreq posted write   through the buffered ring
  ioreq read           4-byte MMIO read answered by the server
  blk 4k randread      IOPS of the test guest's polling virtio-blk driver,
                       in-process vs wisp-blk out of process

usage: ioreq.py [--runs R] [--n N] BUILD_DIR
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def run(wisp, guest, args, cmdline):
    t0 = time.monotonic()
    p = subprocess.run([wisp, "run", "--kernel", guest, "--debug-exit",
                        "--cmdline", cmdline] + args, capture_output=True,
                       timeout=300)
    wall = time.monotonic() - t0
    out = p.stdout.decode()
    m = re.search(r"bench-cycles-per-op: (\d+)", out)
    if p.returncode != 0 or not m:
        raise SystemExit(f"run failed ({p.returncode}): {args} {cmdline}\n"
                         f"{out}\n{p.stderr.decode()}")
    return int(m.group(1)), wall


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("build")
    a = ap.parse_args()
    wisp = os.path.join(a.build, "src/cli/wisp")
    guest = os.path.join(a.build, "tests/guest/test-guest.elf")
    srv = os.path.join(a.build, "src/servers")
    tmp = tempfile.mkdtemp()
    img = os.path.join(tmp, "bench.img")
    with open(img, "wb") as f:
        f.write(os.urandom(1 << 20) * 64)  # 64 MiB, really allocated

    disk = ["--disk", f"path={img}"]
    iot = ["--spawn-server", os.path.join(a.build, "tests/servers",
                                          "wisp-ioreq-test")]
    W = "test=bench op=write n={n} addr={addr}"
    cases = [
        ("exit (VMM thread)", disk, W.format(n=a.n, addr="0xd0000064")),
        ("ioeventfd", disk, W.format(n=a.n, addr="0xd0000050")),
        ("ioreq sync write", iot, W.format(n=a.n, addr="0xd0000008")),
        ("ioreq posted write", iot, W.format(n=a.n, addr="0xd0000100")),
        ("ioreq read", iot,
         f"test=bench op=read n={a.n} addr=0xd0000028"),
    ]
    res = {}
    for name, args, cmd in cases:
        res[name] = med([run(wisp, guest, args, cmd)[0]
                         for _ in range(a.runs)])
    # Calibrate cycles -> ns with the exit path: wall time of N extra ops.
    c0, w0 = run(wisp, guest, disk, W.format(n=1000, addr="0xd0000064"))
    c1, w1 = run(wisp, guest, disk, W.format(n=a.n, addr="0xd0000064"))
    ns_per_cycle = max((w1 - w0) * 1e9 / (a.n - 1000), 1) / c1 if c1 else 0
    nblk = max(a.n // 20, 2000)
    blk_in = med([run(wisp, guest, disk, f"test=bench op=blkread n={nblk}")[0]
                  for _ in range(a.runs)])
    blk_out = med([run(wisp, guest,
                       ["--spawn-server",
                        f"{os.path.join(srv, 'wisp-blk')} --disk path={img}"],
                       f"test=bench op=blkread n={nblk}")[0]
                   for _ in range(a.runs)])

    def ns(c):
        return f"{c * ns_per_cycle / 1000:7.2f} us"

    base = res["exit (VMM thread)"]
    print(f"guest access costs on the host's KVM (pvm: "
          f"{os.path.exists('/sys/module/kvm_pvm')}), median of {a.runs} runs "
          f"x {a.n} ops")
    print(f"{'path':22}{'cycles/op':>12}{'time/op':>12}{'vs exit':>10}")
    for name, _, _ in cases:
        c = res[name]
        print(f"{name:22}{c:12d}{ns(c):>12}{c / base:10.2f}")
    print(f"goals: ioreq sync / exit = {res['ioreq sync write'] / base:.2f} "
          f"(<= 1.5); posted / ioeventfd = "
          f"{res['ioreq posted write'] / res['ioeventfd']:.2f} (<= 1.2)")
    to_iops = lambda c: 1e9 / (c * ns_per_cycle) if c else 0
    print(f"blk 4k randread: in-process {to_iops(blk_in):9.0f} IOPS, "
          f"out-of-process {to_iops(blk_out):9.0f} IOPS, ratio "
          f"{blk_in / blk_out:.3f} (out/in; goal >= 0.90)")
    os.unlink(img)
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
