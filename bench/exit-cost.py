#!/usr/bin/env python3
"""Exit costs of wisp against a minimal KVM program, in one invocation.

Both guests time N 4-byte writes of 0 with rdtsc in a long-mode vCPU on
the same KVM set-up (in-kernel irqchip and PIT); the figures are medians
over ROUNDS rounds, the two VMMs interleaved within each round so host
noise (a PVM host's especially) hits both alike.

  mmio exit   unclaimed MMIO: KVM_EXIT_MMIO, back to KVM_RUN
              minimal: bench/minkvm --mode mmio
              wisp:    test guest, test=bench op=write addr=0xd0100000
  doorbell    a KVM ioeventfd lane with a thread consuming the eventfd
              minimal: bench/minkvm --mode ioeventfd (a blocked read())
              wisp:    the test guest's writes to virtio-blk QueueNotify
                       (the device's iothread consumes them)

usage: exit-cost.py [--rounds R] [--n N] BUILD_DIR
Goal (issue 14): wisp / minimal <= 1.10 for the MMIO exit.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile


def minkvm(build, mode, n):
    p = subprocess.run([os.path.join(build, "bench/minkvm"), "--mode", mode,
                        "--n", str(n)], capture_output=True, timeout=300)
    m = re.search(rb"cycles/op=(\d+) tsc_khz=(-?\d+)", p.stdout)
    if p.returncode or not m:
        raise SystemExit(f"minkvm {mode} failed ({p.returncode}): "
                         f"{p.stdout!r} {p.stderr!r}")
    return int(m.group(1)), int(m.group(2))


def wisp(build, args, addr, n):
    cmd = [os.path.join(build, "src/cli/wisp"), "run", "--kernel",
           os.path.join(build, "tests/guest/test-guest.elf"), "--debug-exit",
           "--cmdline", f"test=bench op=write n={n} addr={addr}"] + args
    p = subprocess.run(cmd, capture_output=True, timeout=300)
    m = re.search(rb"bench-cycles-per-op: (\d+)", p.stdout)
    if p.returncode or not m:
        raise SystemExit(f"wisp failed ({p.returncode}): {p.stdout!r} "
                         f"{p.stderr!r}")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("build")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    img = os.path.join(tmp, "disk.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    disk = ["--disk", f"path={img}"]
    res = {k: [] for k in ("min mmio", "wisp mmio", "min door", "wisp door")}
    khz = 0
    try:
        for _ in range(a.rounds):
            c, khz = minkvm(a.build, "mmio", a.n)
            res["min mmio"].append(c)
            res["wisp mmio"].append(wisp(a.build, [], "0xd0100000", a.n))
            res["wisp door"].append(wisp(a.build, disk, "0xd0000050", a.n))
            res["min door"].append(minkvm(a.build, "ioeventfd", a.n)[0])
    finally:
        os.unlink(img)
        os.rmdir(tmp)

    def ns(c):
        return f"{c * 1e6 / khz / 1000:8.2f} us" if khz > 0 else "       ?"

    print(f"exit costs, median of {a.rounds} interleaved rounds x {a.n} "
          f"writes (pvm: {os.path.exists('/sys/module/kvm_pvm')}, "
          f"TSC {khz} kHz)")
    print(f"{'path':12}{'minimal':>22}{'wisp':>22}{'wisp/min':>10}")
    for key in ("mmio", "door"):
        lo = statistics.median(res[f"min {key}"])
        w = statistics.median(res[f"wisp {key}"])
        print(f"{'mmio exit' if key == 'mmio' else 'doorbell':12}"
              f"{lo:9.0f} cyc{ns(lo)}{w:9.0f} cyc{ns(w)}{w / lo:10.3f}")
    print("per-round cycles: " + "; ".join(
        f"{k}: {' '.join(str(x) for x in v)}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
