#!/usr/bin/env python3
"""Snapshot create and restore on the host's /dev/kvm, 256 MiB guest,
against a cold boot of the same guest, in one invocation.

Figures, p50 / p90 [min, max] of N runs (default 21), for a guest that
touched little RAM and for one that wrote TOUCH MiB of it first
(tests/guest test=tick touch=MiB); each run takes a fresh snapshot and
then, in this order, boots the guest cold and restores it with each
backend, every one in a fresh wisp --api-sock process:
  create (PUT /snapshot/create)   the request's round trip on a paused
                                  VM: vCPU, VM and device state plus the
                                  sparse memory file
  memory file on disk             what the sparse memory file takes
  cold boot->first exit           the peer: from sending PUT /boot-source
                                  (then /machine-config, InstanceStart)
                                  to the guest's first I/O exit (wisp's
                                  own CLOCK_MONOTONIC stamp, -vv)
  load->first exit (File)         from sending PUT /snapshot/load
                                  (resume_vm true) to the restored
                                  guest's first I/O exit
  load->204 (File)                the load request's round trip
  load->handler has uffd (Uffd)   from sending the load to wisp having
                                  registered guest RAM and handed the
                                  uffd to wisp-uffd (its -vv stamp)
  load->first exit (Uffd)         as for File, guest RAM served by
                                  wisp-uffd (no delay, prefetching),
                                  started before the load
  load->204 (Uffd)
  ... (Uffd no prefetch)          the same with wisp-uffd --no-prefetch:
                                  only the pages the guest (and KVM, and
                                  wisp) touch are copied in, on fault
then each restore's p50 and p90 as a fraction of the cold boot's, and
the goal (issue 11): restore under 5 ms p90 (Firecracker's old target:
under 8 ms, 5 ms p90). The last line per guest is what wisp-uffd said it
served (median faults and prefetched pages).

usage: snapshot.py [--runs N] [--touch MiB] [--backend File|Uffd|both]
                   BUILD_DIR
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MEM_MIB = 256


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def req(sock, method, path, body):
    c = UnixHTTP(sock)
    c.request(method, path, json.dumps(body),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status != 204:
        raise RuntimeError(f"{method} {path}: {r.status} {data!r}")


def start_api(wisp, sock):
    p = subprocess.Popen([wisp, "--api-sock", sock, "--debug-exit", "-vv"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock)
            s.close()
            return p
        except OSError:
            s.close()
            if time.time() > deadline or p.poll() is not None:
                p.kill()
                _, err = p.communicate()
                raise RuntimeError(f"API socket never accepted (exit "
                                   f"{p.returncode}): "
                                   f"{err.decode(errors='replace')}")
            time.sleep(0.0005)


def wait_tick(p, n=None):
    """Until the guest printed "tick N" (any tick for None)."""
    buf = b""
    deadline = time.time() + 30
    want = f"tick {n}\n".encode() if n is not None else b"\n"
    while want not in buf:
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk or time.time() > deadline:
            raise RuntimeError(f"guest never printed tick {n}: {buf[-200:]}")
        buf += chunk


def make_snapshot(wisp, guest, d, touch):
    sock = os.path.join(d, "src.sock")
    p = start_api(wisp, sock)
    try:
        req(sock, "PUT", "/boot-source",
            {"kernel_image_path": guest,
             "boot_args": f"test=tick touch={touch}"})
        req(sock, "PUT", "/machine-config",
            {"vcpu_count": 1, "mem_size_mib": MEM_MIB})
        req(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        wait_tick(p, 3)
        req(sock, "PATCH", "/vm", {"state": "Paused"})
        st, mem = os.path.join(d, "vm.state"), os.path.join(d, "vm.mem")
        t0 = time.monotonic_ns()
        req(sock, "PUT", "/snapshot/create",
            {"snapshot_type": "Full", "snapshot_path": st,
             "mem_file_path": mem})
        t1 = time.monotonic_ns()
    finally:
        p.kill()
        p.wait()
        os.unlink(sock)
    return t1 - t0, st, mem


def start_uffd(wisp, mem, d, extra=()):
    """wisp-uffd (next to wisp in the build) serving mem on a socket."""
    path = os.path.join(d, "uffd.sock")
    binary = os.path.join(os.path.dirname(os.path.dirname(wisp)), "servers",
                          "wisp-uffd")
    log = open(os.path.join(d, "uffd.log"), "w")
    h = subprocess.Popen([binary, "--socket", path, "--mem", mem, *extra],
                         stdin=subprocess.DEVNULL, stderr=log)
    log.close()
    deadline = time.time() + 20
    while not os.path.exists(path):
        if time.time() > deadline or h.poll() is not None:
            h.kill()
            raise RuntimeError("wisp-uffd never listened")
        time.sleep(0.0005)
    return h, path


def stamp(err, what):
    m = re.search(what + r" at CLOCK_MONOTONIC (\d+) ns", err)
    if not m:
        raise RuntimeError(f"no '{what}' stamp, stderr:\n{err}")
    return int(m.group(1))


def stop(p, sock):
    """SIGINT to a wisp whose guest ticks; its stderr."""
    try:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if os.path.exists(sock):
            os.unlink(sock)
    return err.decode(errors="replace")


def cold_once(wisp, guest, d, touch):
    """A cold boot of the snapshot's guest: PUT /boot-source sent ->
    first guest I/O exit, ns."""
    sock = os.path.join(d, "cold.sock")
    p = start_api(wisp, sock)
    try:
        t0 = time.monotonic_ns()
        req(sock, "PUT", "/boot-source",
            {"kernel_image_path": guest,
             "boot_args": f"test=tick touch={touch}"})
        req(sock, "PUT", "/machine-config",
            {"vcpu_count": 1, "mem_size_mib": MEM_MIB})
        req(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        wait_tick(p)
    finally:
        err = stop(p, sock)
    return stamp(err, "first guest I/O exit") - t0


def restore_once(wisp, st, mem, d, backend="File"):
    """{"exit", "204"[, "uffd", "served"]}: ns from sending the load."""
    sock = os.path.join(d, "dst.sock")
    h = None
    where = mem
    if backend.startswith("Uffd"):
        h, where = start_uffd(wisp, mem, d,
                              ("--no-prefetch",) if "no" in backend else ())
    p = start_api(wisp, sock)
    try:
        t0 = time.monotonic_ns()
        req(sock, "PUT", "/snapshot/load",
            {"snapshot_path": st,
             "mem_backend": {"backend_type": backend[:4],
                             "backend_path": where},
             "resume_vm": True})
        t1 = time.monotonic_ns()
        wait_tick(p)
    finally:
        err = stop(p, sock)
        if h:
            try:
                h.wait(timeout=10)  # it ends when wisp hangs up
            except subprocess.TimeoutExpired:
                h.kill()
                h.wait()
    r = {"exit": stamp(err, "first guest I/O exit") - t0, "204": t1 - t0}
    if h:
        r["uffd"] = stamp(err, "has the uffd") - t0
        with open(os.path.join(d, "uffd.log")) as f:
            last = f.read().strip().split("\n")[-1]
        m = re.search(r"(\d+) faults served .* (\d+) pages prefetched", last)
        if not m:
            raise RuntimeError(f"wisp-uffd's last line: {last!r}")
        r["served"] = (int(m.group(1)), int(m.group(2)))
    return r


def ms(ns):
    return f"{ns / 1e6:.3f} ms"


def pct(v, q):
    """Nearest-rank percentile."""
    v = sorted(v)
    return v[max(0, -(-len(v) * q // 100) - 1)]


def stats(v):
    return (f"{ms(pct(v, 50)):>9} / {ms(pct(v, 90)):>9} "
            f"[{ms(min(v))}, {ms(max(v))}]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--touch", type=int, default=128)
    ap.add_argument("--backend", choices=("File", "Uffd", "both"),
                    default="both")
    ap.add_argument("build")
    a = ap.parse_args()
    wisp = os.path.join(a.build, "src/cli/wisp")
    guest = os.path.join(a.build, "tests/guest/test-guest.elf")
    backends = ({"File": ("File",), "Uffd": ("Uffd", "Uffd no prefetch"),
                 "both": ("File", "Uffd", "Uffd no prefetch")}[a.backend])
    goal = 5e6
    print(f"wisp snapshots, {MEM_MIB} MiB guest, {a.runs} runs "
          f"(p50 / p90 [min, max]):")
    for touch in (0, a.touch):
        creates, colds = [], []
        res = {b: [] for b in backends}
        disk = 0
        for _ in range(a.runs):
            with tempfile.TemporaryDirectory() as d:
                c, st, mem = make_snapshot(wisp, guest, d, touch)
                creates.append(c)
                disk = os.stat(mem).st_blocks * 512
                restore_once(wisp, st, mem, d)  # warm the page cache
                colds.append(cold_once(wisp, guest, d, touch))
                for b in backends:
                    res[b].append(restore_once(wisp, st, mem, d, b))
        print(f" guest wrote {touch} MiB before the snapshot:")
        row = "  {:44} {}"
        print(row.format("create (PUT /snapshot/create)", stats(creates)))
        print(f"  {'memory file on disk':44} {disk / 2**20:.1f} MiB")
        print(row.format("cold boot->first exit", stats(colds)))
        for b in backends:
            v = res[b]
            if b.startswith("Uffd"):
                print(row.format(f"load->handler has uffd ({b})",
                                 stats([r["uffd"] for r in v])))
            print(row.format(f"load->first exit ({b})",
                             stats([r["exit"] for r in v])))
            print(row.format(f"load->204 ({b})",
                             stats([r["204"] for r in v])))
        for b in backends:
            e = [r["exit"] for r in res[b]]
            p50, p90 = pct(e, 50), pct(e, 90)
            print(f"  {b} restore / cold boot: p50 "
                  f"{p50 / pct(colds, 50):.2f}, p90 "
                  f"{p90 / pct(colds, 90):.2f}; goal p90 < 5 ms: "
                  f"{'met' if p90 < goal else 'MISSED'} "
                  f"({ms(p90)})")
        for b in backends:
            if not b.startswith("Uffd"):
                continue
            f = statistics.median(r["served"][0] for r in res[b])
            p = statistics.median(r["served"][1] for r in res[b])
            print(f"  wisp-uffd served ({b}, median): {f:g} faults, "
                  f"{p:g} pages prefetched")
    return 0


if __name__ == "__main__":
    sys.exit(main())
