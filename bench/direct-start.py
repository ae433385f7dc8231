#!/usr/bin/env python3
"""Start-up and teardown on the host's /dev/kvm (PVM or hardware): wisp
against QEMU microvm, and kvmtool when given one, with the SAME guest
(tests/guest/pvh-peer.elf, a PVH ELF: it prints one line on COM1 and
writes 0 to the debug-exit port 0xf4), interleaved in one invocation.

Figures per VMM, median of N runs (default 21):
  start->first console byte   process spawn to the guest's first line's
                              first byte on the VMM's stdout
  teardown                    the guest's last console byte to process
                              exit (the debug-exit write follows it)
  start->exit                 process spawn to process exit
  start->first I/O exit       wisp only: its own CLOCK_MONOTONIC stamp of
                              the first port-I/O exit (-vv), minus spawn
  VMM RSS                     Rss - RssShmem of the VMM process once the
                              guest is up and spinning (pvh-peer-spin.elf;
                              guest RAM is shared memory for all, so this
                              is the VMM's own)

kvmtool has no debug-exit device: it is killed once the guest's line is
out, so only its first-byte and RSS figures are comparable.

usage: direct-start.py [--runs N] [--memory MiB] [--kvmtool PATH] BUILD_DIR
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

MARK = b"wisp-test-guest"


def spawn(cmd):
    t0 = time.monotonic_ns()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    return t0, p


def run_once(cmd, kill_after_line=False, timeout=30):
    """(spawn, first guest byte, last byte, exit) in ns, and stderr."""
    t0, p = spawn(cmd)
    buf, first, last = b"", None, None
    deadline = time.monotonic() + timeout
    fd = p.stdout.fileno()
    while time.monotonic() < deadline:
        b = os.read(fd, 4096)
        if not b:
            break
        now = time.monotonic_ns()
        buf += b
        if first is None and MARK in buf:
            first = now  # the read that completed the marker
        if first is not None:
            last = now
            if kill_after_line and b"\n" in buf[buf.index(MARK):]:
                p.send_signal(signal.SIGKILL)
                break
    try:
        _, err = p.communicate(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    t3 = time.monotonic_ns()
    if first is None:
        raise RuntimeError(f"{cmd[0]}: no guest output; stdout {buf[-300:]!r}"
                           f" stderr: {err[-300:]!r}")
    return t0, first, last, t3, err.decode(errors="replace")


def rss_kib(cmd, marker=b"up\n"):
    t0, p = spawn(cmd)
    buf = b""
    deadline = time.time() + 20
    while marker not in buf and time.time() < deadline:
        b = os.read(p.stdout.fileno(), 4096)
        if not b:
            break
        buf += b
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
        fields.get("Shared_Hugetlb", 0)


def med(xs):
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--memory", type=int, default=128, help="guest MiB")
    ap.add_argument("--kvmtool", help="path to lkvm (kvmtool)")
    ap.add_argument("build", help="meson build dir with wisp and test guests")
    a = ap.parse_args()
    wisp = os.path.join(a.build, "src/cli/wisp")
    peer = os.path.join(a.build, "tests/guest/pvh-peer.elf")
    spin = os.path.join(a.build, "tests/guest/pvh-peer-spin.elf")
    qemu = shutil.which("qemu-system-x86_64")
    mem = str(a.memory)

    def wcmd(k, dbg=True):
        return [wisp, "run", "--kernel", k, "--debug-exit", "--memory",
                mem] + (["-vv"] if dbg else [])

    def qcmd(k):
        return [qemu, "-M", "microvm", "-accel", "kvm", "-m", mem, "-smp",
                "1", "-nodefaults", "-no-user-config", "-nographic",
                "-serial", "stdio", "-device",
                "isa-debug-exit,iobase=0xf4,iosize=1", "-kernel", k]

    def kcmd(k):
        return [a.kvmtool, "run", "--kernel", k, "--mem", mem, "--cpus", "1",
                "--console", "serial"]

    vmms = [("wisp", wcmd, False)]
    if qemu:
        vmms.append(("qemu microvm", qcmd, False))
    if a.kvmtool:
        vmms.append(("kvmtool", kcmd, True))
    res = {n: {"byte": [], "down": [], "exit": [], "io": []}
           for n, _, _ in vmms}
    for _ in range(a.runs):
        for name, mk, kill in vmms:
            t0, t1, t2, t3, err = run_once(mk(peer), kill_after_line=kill)
            r = res[name]
            r["byte"].append(t1 - t0)
            if not kill:
                r["down"].append(t3 - t2)
                r["exit"].append(t3 - t0)
            m = re.search(r"first guest I/O exit at CLOCK_MONOTONIC (\d+) ns",
                          err)
            if m:
                r["io"].append(int(m.group(1)) - t0)

    ms = lambda ns: f"{ns / 1e6:9.2f} ms" if ns is not None else "      n/a   "
    print(f"direct KVM start-up, same guest ({os.path.basename(peer)}), "
          f"{a.memory} MiB, {a.runs} interleaved runs each, median; "
          f"kvm_pvm host: {os.path.exists('/sys/module/kvm_pvm')}")
    head = f"{'':28}" + "".join(f"{n:>14}" for n, _, _ in vmms)
    if qemu:
        head += f"{'wisp/qemu':>11}"
    if a.kvmtool:
        head += f"{'wisp/kvmtool':>13}"
    print(head)
    rows = (("byte", "start->first console byte"), ("down", "teardown"),
            ("exit", "start->exit"), ("io", "start->first I/O exit"))
    for key, label in rows:
        vals = [med(res[n][key]) for n, _, _ in vmms]
        if all(v is None for v in vals):
            continue
        line = f"{label:28}" + "".join(f"{ms(v):>14}" for v in vals)
        for i in range(1, len(vmms)):
            w, o = vals[0], vals[i]
            line += f"{w / o:11.3f}  " if w and o else f"{'':13}"
        print(line)
    line = f"{'VMM RSS excl. guest RAM':28}"
    rss = [rss_kib(wcmd(spin, False))]
    if qemu:
        rss.append(rss_kib(qcmd(spin)))
    if a.kvmtool:
        rss.append(rss_kib(kcmd(spin)))
    line += "".join(f"{r / 1024:10.2f} MiB" for r in rss)
    for r in rss[1:]:
        line += f"{rss[0] / r:11.3f}  "
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
