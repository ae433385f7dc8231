#!/usr/bin/env python3
"""Snapshot create and restore on the host's /dev/kvm, 256 MiB guest.

Figures, median [min, max] of N runs (default 11), for a guest that
touched little RAM and for one that wrote TOUCH MiB of it first
(tests/guest test=tick touch=MiB):
  create (PUT /snapshot/create)   the request's round trip on a paused
                                  VM: vCPU, VM and device state plus the
                                  sparse memory file
  memory file on disk             what the sparse memory file takes
  load->first exit (File)         from sending PUT /snapshot/load
                                  (resume_vm true, File backend) to the
                                  restored guest's first I/O exit
                                  (wisp's own CLOCK_MONOTONIC stamp, -vv)
  load->204                       the load request's round trip
  load->first exit (Uffd)         the same through wisp-uffd (no delay,
                                  prefetching), started before the load
                                  (--backend Uffd or both)
Goal (issue 11): restore under 5 ms.

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


def start_uffd(wisp, mem, d):
    """wisp-uffd (next to wisp in the build) serving mem on a socket."""
    path = os.path.join(d, "uffd.sock")
    binary = os.path.join(os.path.dirname(os.path.dirname(wisp)), "servers",
                          "wisp-uffd")
    h = subprocess.Popen([binary, "--socket", path, "--mem", mem],
                         stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while not os.path.exists(path):
        if time.time() > deadline or h.poll() is not None:
            h.kill()
            raise RuntimeError("wisp-uffd never listened")
        time.sleep(0.0005)
    return h, path


def restore_once(wisp, st, mem, d, backend="File"):
    sock = os.path.join(d, "dst.sock")
    h = None
    where = mem
    if backend == "Uffd":
        h, where = start_uffd(wisp, mem, d)
    p = start_api(wisp, sock)
    try:
        t0 = time.monotonic_ns()
        req(sock, "PUT", "/snapshot/load",
            {"snapshot_path": st,
             "mem_backend": {"backend_type": backend, "backend_path": where},
             "resume_vm": True})
        t1 = time.monotonic_ns()
        wait_tick(p)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if os.path.exists(sock):
            os.unlink(sock)
        if h:
            try:
                h.wait(timeout=10)  # it ends when wisp hangs up
            except subprocess.TimeoutExpired:
                h.kill()
                h.wait()
    err = err.decode(errors="replace")
    m = re.search(r"first guest I/O exit at CLOCK_MONOTONIC (\d+) ns", err)
    if not m:
        raise RuntimeError(f"no first-exit stamp, stderr:\n{err}")
    return int(m.group(1)) - t0, t1 - t0


def ms(ns):
    return f"{ns / 1e6:8.3f} ms"


def stats(v):
    return (f"{ms(statistics.median(v))} [{ms(min(v)).strip()}, "
            f"{ms(max(v)).strip()}]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--touch", type=int, default=128)
    ap.add_argument("--backend", choices=("File", "Uffd", "both"),
                    default="File")
    ap.add_argument("build")
    a = ap.parse_args()
    wisp = os.path.join(a.build, "src/cli/wisp")
    guest = os.path.join(a.build, "tests/guest/test-guest.elf")
    print(f"wisp snapshots, {MEM_MIB} MiB guest, {a.runs} runs "
          f"(median [min, max]):")
    for touch in (0, a.touch):
        backends = ("File", "Uffd") if a.backend == "both" else (a.backend,)
        creates = []
        firsts = {b: [] for b in backends}
        loads = {b: [] for b in backends}
        disk = 0
        for _ in range(a.runs):
            with tempfile.TemporaryDirectory() as d:
                c, st, mem = make_snapshot(wisp, guest, d, touch)
                creates.append(c)
                disk = os.stat(mem).st_blocks * 512
                restore_once(wisp, st, mem, d)  # warm the page cache
                for b in backends:
                    f, l = restore_once(wisp, st, mem, d, b)
                    firsts[b].append(f)
                    loads[b].append(l)
        print(f" guest wrote {touch} MiB before the snapshot:")
        print(f"  {'create (PUT /snapshot/create)':32} {stats(creates)}")
        print(f"  {'memory file on disk':32} {disk / 2**20:8.1f} MiB")
        for b in backends:
            print(f"  {'load->first exit (' + b + ')':32} {stats(firsts[b])}")
            print(f"  {'load->204 (' + b + ')':32} {stats(loads[b])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
