#!/usr/bin/env python3
"""Exit costs of wisp against a minimal KVM program, in one invocation.

Both guests time N 4-byte writes of 0 with rdtsc in a long-mode vCPU on
the same KVM set-up (in-kernel irqchip and PIT); the figures are medians
over ROUNDS rounds, the two VMMs interleaved within each round so host
noise (a PVM host's especially) hits both alike.

  mmio exit   unclaimed MMIO: KVM_EXIT_MMIO, back to KVM_RUN
              minimal: bench/minkvm --mode mmio, on the main thread and
                       (--thread) on a second thread as in wisp
              wisp:    test guest, test=bench op=write addr=0xd0100000
  doorbell    a KVM ioeventfd lane with a thread consuming the eventfd
              minimal: bench/minkvm --mode ioeventfd (a blocked read())
              wisp:    the test guest's writes to virtio-blk QueueNotify
                       (the device's iothread consumes them)

Both guests run the same three instructions per write (movl $0,(addr);
dec; jnz): a PVM host emulates the instructions that follow an MMIO
write up to the next one, so any difference in the loop's code shows up
as exit cost (kvm:kvm_emulate_insn counts them: 3 per write for both).

usage: exit-cost.py [--rounds R] [--n N] [--pin CPU] BUILD_DIR
  --pin CPU  run every process (all its threads) on that CPU
Prints medians with each path's range (min-max over the rounds), and
the wisp/minimal ratio of every round (median, min-max): the round-by-
round ratio cancels host noise that hits both VMMs of one round alike.
Goal (issue 14): wisp / minimal <= 1.10 for the MMIO exit.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile


class Done:
    def __init__(self, rc, out, err, utime):
        self.returncode, self.stdout, self.stderr = rc, out, err
        self.utime = utime


PIN = None


def run(cmd):
    """Runs cmd; also returns its user CPU time (all threads, the guest's
    own time included: Linux accounts guest time as user time)."""
    pin = (lambda: os.sched_setaffinity(0, {PIN})) if PIN is not None \
        else None
    with tempfile.TemporaryFile() as o, tempfile.TemporaryFile() as e:
        p = subprocess.Popen(cmd, stdout=o, stderr=e,
                             stdin=subprocess.DEVNULL, preexec_fn=pin)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        o.seek(0)
        e.seek(0)
        return Done(p.returncode, o.read(), e.read(), ru.ru_utime)


def minkvm(build, mode, n, thread=False):
    p = run([os.path.join(build, "bench/minkvm"), "--mode", mode, "--n",
             str(n)] + (["--thread"] if thread else []))
    m = re.search(rb"cycles/op=(\d+) tsc_khz=(-?\d+)", p.stdout)
    if p.returncode or not m:
        raise SystemExit(f"minkvm {mode} failed ({p.returncode}): "
                         f"{p.stdout!r} {p.stderr!r}")
    return int(m.group(1)), int(m.group(2)), p.utime


def wisp(build, args, addr, n):
    cmd = [os.path.join(build, "src/cli/wisp"), "run", "--kernel",
           os.path.join(build, "tests/guest/test-guest.elf"), "--debug-exit",
           "--cmdline", f"test=bench op=write n={n} addr={addr}"] + args
    p = run(cmd)
    m = re.search(rb"bench-cycles-per-op: (\d+)", p.stdout)
    if p.returncode or not m:
        raise SystemExit(f"wisp failed ({p.returncode}): {p.stdout!r} "
                         f"{p.stderr!r}")
    return int(m.group(1)), p.utime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--pin", type=int)
    ap.add_argument("build")
    a = ap.parse_args()
    global PIN
    PIN = a.pin
    tmp = tempfile.mkdtemp()
    img = os.path.join(tmp, "disk.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    disk = ["--disk", f"path={img}"]
    keys = ("min mmio", "thr mmio", "wisp mmio", "min door", "wisp door")
    res = {k: [] for k in keys}
    user = {k: [] for k in keys}
    khz = 0
    try:
        for _ in range(a.rounds):
            c, khz, u = minkvm(a.build, "mmio", a.n)
            res["min mmio"].append(c)
            user["min mmio"].append(u)
            c, _, u = minkvm(a.build, "mmio", a.n, thread=True)
            res["thr mmio"].append(c)
            user["thr mmio"].append(u)
            c, u = wisp(a.build, [], "0xd0100000", a.n)
            res["wisp mmio"].append(c)
            user["wisp mmio"].append(u)
            c, u = wisp(a.build, disk, "0xd0000050", a.n)
            res["wisp door"].append(c)
            user["wisp door"].append(u)
            c, _, u = minkvm(a.build, "ioeventfd", a.n)
            res["min door"].append(c)
            user["min door"].append(u)
    finally:
        os.unlink(img)
        os.rmdir(tmp)

    def ns(c):
        return f"{c * 1e6 / khz / 1000:8.2f} us" if khz > 0 else "       ?"

    print(f"exit costs, median of {a.rounds} interleaved rounds x {a.n} "
          f"writes (pvm: {os.path.exists('/sys/module/kvm_pvm')}, "
          f"TSC {khz} kHz, load average {os.getloadavg()[0]:.2f}"
          f"{f', pinned to CPU {PIN}' if PIN is not None else ''})")
    print(f"{'path':12}{'minimal':>22}{'wisp':>22}{'wisp/min':>10}")
    for key in ("mmio", "door"):
        lo = statistics.median(res[f"min {key}"])
        w = statistics.median(res[f"wisp {key}"])
        print(f"{'mmio exit' if key == 'mmio' else 'doorbell':12}"
              f"{lo:9.0f} cyc{ns(lo)}{w:9.0f} cyc{ns(w)}{w / lo:10.3f}")
        if key == "mmio":
            t = statistics.median(res["thr mmio"])
            print(f"{' (thread)':12}{t:9.0f} cyc{ns(t)}{w:9.0f} cyc{ns(w)}"
                  f"{w / t:10.3f}")
    # User CPU time per write: the part of an exit a VMM's own code adds
    # (the kernel's and the PVM host's share is system time), far less
    # noisy than the round trip on a shared host. It includes each
    # process's start-up, spread over N writes.
    print(f"{'user CPU/op':12}" + "".join(
        f"{statistics.median(user[f'{w} {k}']) * 1e9 / a.n:17.0f} ns  "
        for k in ("mmio",) for w in ("min", "wisp")) +
        f"  (mmio; wisp - min = "
        f"{(statistics.median(user['wisp mmio']) - statistics.median(user['min mmio'])) * 1e9 / a.n:.0f} ns)")
    for k in keys:
        print(f"range {k:10} {min(res[k]):7} - {max(res[k]):7} cyc")
    for lo_k, w_k in (("min mmio", "wisp mmio"), ("thr mmio", "wisp mmio"),
                      ("min door", "wisp door")):
        r = [w / lo for w, lo in zip(res[w_k], res[lo_k])]
        print(f"per-round {w_k}/{lo_k}: median {statistics.median(r):.3f}"
              f" (min {min(r):.3f}, max {max(r):.3f})")
    print("per-round cycles: " + "; ".join(
        f"{k}: {' '.join(str(x) for x in v)}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
