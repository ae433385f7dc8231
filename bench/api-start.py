#!/usr/bin/env python3
"""Start-up cost of wisp's API front end on the host's /dev/kvm.

Figures, median (and min/max) of N runs (default 31):
  spawn->API accepting        process spawn until a connect() to the API
                              socket succeeds (polled every 100 us)
  API process CPU             user+system CPU of wisp up to that point
                              (/proc/PID/task/*/schedstat)
  InstanceStart->first exit   from sending PUT /actions InstanceStart to
                              wisp's own CLOCK_MONOTONIC stamp of the
                              guest's first I/O exit (-vv)
  InstanceStart->204          the request's round trip (vm_create included)
Goals (issue 9): API ready within 5 ms, InstanceStart->first exit within
5 ms. The guest is tests/guest/test-guest.elf (test=exit=0).

usage: api-start.py [--runs N] BUILD_DIR
"""
import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=20)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def put(sock, path, body):
    c = UnixHTTP(sock)
    c.request("PUT", path, json.dumps(body),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status != 204:
        raise RuntimeError(f"PUT {path}: {r.status} {data!r}")


def cpu_ns(pid):
    """CPU time of all of the process's threads so far (schedstat: ns on
    the CPU), finer than /proc/PID/stat's clock ticks."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def run_once(wisp, guest, d):
    sock = os.path.join(d, "api.sock")
    t0 = time.monotonic_ns()
    p = subprocess.Popen([wisp, "--api-sock", sock, "--debug-exit", "-vv"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock)
            t1 = time.monotonic_ns()
            s.close()
            break
        except OSError:
            s.close()
            if time.time() > deadline or p.poll() is not None:
                p.kill()
                raise RuntimeError("API socket never accepted: " +
                                   p.stderr.read().decode(errors="replace"))
            time.sleep(0.0001)
    cpu = cpu_ns(p.pid)
    put(sock, "/boot-source", {"kernel_image_path": guest,
                               "boot_args": "test=exit=0"})
    t2 = time.monotonic_ns()
    put(sock, "/actions", {"action_type": "InstanceStart"})
    t3 = time.monotonic_ns()
    out, err = p.communicate(timeout=30)
    err = err.decode(errors="replace")
    m = re.search(r"first guest I/O exit at CLOCK_MONOTONIC (\d+) ns", err)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"wisp exit {p.returncode}, stderr:\n{err}")
    return t1 - t0, cpu, int(m.group(1)) - t2, t3 - t2


def ms(ns):
    return f"{ns / 1e6:8.3f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=31)
    ap.add_argument("build")
    a = ap.parse_args()
    wisp = os.path.join(a.build, "src/cli/wisp")
    guest = os.path.join(a.build, "tests/guest/test-guest.elf")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        run_once(wisp, guest, d)  # warm the page cache
        for _ in range(a.runs):
            rows.append(run_once(wisp, guest, d))
    cols = list(zip(*rows))
    print(f"wisp API start-up, {a.runs} runs (median [min, max]):")
    for name, v in (("spawn->API accepting", cols[0]),
                    ("API process CPU", cols[1]),
                    ("InstanceStart->first exit", cols[2]),
                    ("InstanceStart->204", cols[3])):
        print(f"  {name:27} {ms(statistics.median(v))} "
              f"[{ms(min(v)).strip()}, {ms(max(v)).strip()}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
