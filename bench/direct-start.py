#!/usr/bin/env python3
"""Start-up cost on the host's /dev/kvm (PVM or hardware), wisp against
QEMU microvm in the same invocation.

Figures per VMM, median of N runs (default 21):
  start->first console byte   process spawn to the guest's first serial byte
                              on the VMM's stdout (same method for both)
  start->first I/O exit       wisp only: its own CLOCK_MONOTONIC stamp of
                              the first port-I/O exit (-vv), minus spawn
  start->exit                 process spawn to process exit (guest writes the
                              debug-exit port right after its greeting)
  VMM RSS                     Rss - RssShmem of the VMM process once the
                              guest is up and spinning (guest RAM is shared
                              memory for both, so this is the VMM's own)

usage: direct-start.py [--runs N] BUILD_DIR
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time


def spawn(cmd):
    t0 = time.monotonic_ns()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    return t0, p


def first_byte(p):
    b = os.read(p.stdout.fileno(), 1)
    return time.monotonic_ns(), b


def run_once(cmd):
    t0, p = spawn(cmd)
    t1, b = first_byte(p)
    out, err = p.communicate(timeout=30)
    t2 = time.monotonic_ns()
    if not b:
        raise RuntimeError(f"{cmd[0]}: no console output; stderr: {err!r}")
    return t0, t1, t2, err.decode(errors="replace")


def rss_kib(cmd, marker=b"up\n"):
    t0, p = spawn(cmd)
    buf = b""
    deadline = time.time() + 20
    while marker not in buf and time.time() < deadline:
        buf += os.read(p.stdout.fileno(), 4096)
    time.sleep(0.2)
    fields = {}
    with open(f"/proc/{p.pid}/smaps_rollup") as f:
        for line in f:
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                fields[m.group(1)] = int(m.group(2))
    p.kill()
    p.wait()
    return fields["Rss"] - fields.get("Shmem", 0) - \
        fields.get("Shared_Hugetlb", 0), fields


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("build", help="meson build dir with wisp and test guests")
    a = ap.parse_args()
    wisp = os.path.join(a.build, "src/cli/wisp")
    tg = os.path.join(a.build, "tests/guest/test-guest.elf")
    peer = os.path.join(a.build, "tests/guest/pvh-peer.elf")
    peer_spin = os.path.join(a.build, "tests/guest/pvh-peer-spin.elf")
    qemu = shutil.which("qemu-system-x86_64")

    wcmd = [wisp, "run", "--kernel", tg, "--debug-exit", "--memory", "128",
            "-vv"]
    qcmd = [qemu, "-M", "microvm", "-accel", "kvm", "-m", "128", "-smp", "1",
            "-nodefaults", "-no-user-config", "-nographic", "-serial",
            "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=1",
            "-kernel", peer] if qemu else None

    res = {"wisp": {"byte": [], "exit": [], "io": []},
           "qemu": {"byte": [], "exit": []}}
    for _ in range(a.runs):
        t0, t1, t2, err = run_once(wcmd)
        m = re.search(r"first guest I/O exit at CLOCK_MONOTONIC (\d+) ns", err)
        res["wisp"]["byte"].append(t1 - t0)
        res["wisp"]["exit"].append(t2 - t0)
        if m:
            res["wisp"]["io"].append(int(m.group(1)) - t0)
        if qcmd:
            t0, t1, t2, _ = run_once(qcmd)
            res["qemu"]["byte"].append(t1 - t0)
            res["qemu"]["exit"].append(t2 - t0)

    ms = lambda ns: ns / 1e6
    print(f"direct KVM start-up, {a.runs} runs each, kvm_pvm host: "
          f"{os.path.exists('/sys/module/kvm_pvm')}")
    print(f"{'':28}{'wisp':>12}{'qemu microvm':>16}{'wisp/qemu':>12}")
    for key, label in (("byte", "start->first console byte"),
                       ("exit", "start->exit")):
        w = med(res["wisp"][key])
        q = med(res["qemu"][key]) if res["qemu"][key] else None
        print(f"{label:28}{ms(w):10.2f}ms" +
              (f"{ms(q):14.2f}ms{w / q:12.3f}" if q else "   (no qemu)"))
    if res["wisp"]["io"]:
        print(f"{'start->first I/O exit':28}{ms(med(res['wisp']['io'])):10.2f}ms"
              f"   (goal <= 10 ms; min {ms(min(res['wisp']['io'])):.2f} ms)")

    wr, _ = rss_kib([wisp, "run", "--kernel", tg, "--debug-exit",
                     "--memory", "128", "--cmdline", "test=spin"],
                    marker=b"spinning")
    line = f"{'VMM RSS excl. guest RAM':28}{wr / 1024:10.2f}MiB"
    if qemu:
        qr, _ = rss_kib([c if c != peer else peer_spin for c in qcmd])
        line += f"{qr / 1024:12.2f}MiB{wr / qr:12.3f}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
