#!/usr/bin/env python3
"""Tests of wisp's Firecracker-compatible API (wisp --api-sock) and
--config-file on the host's /dev/kvm with the freestanding test guest.

usage: test_api.py WISP GUEST_ELF CASE   (or --list)
Each case starts wisp, talks HTTP/1.1 to its unix socket with
http.client, and checks status codes, bodies, the guest's console output
and wisp's exit status.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from cases import Fail, run_main  # noqa: E402

WISP, GUEST = None, None
TIMEOUT = 20


def expect(cond, what):
    if not cond:
        raise Fail(what)


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Wisp:
    """A wisp --api-sock process; its stdout (the guest's console) and
    stderr are collected by reader threads."""

    def __init__(self, extra=(), api=True, cwd=None, env=None):
        self.dir = tempfile.TemporaryDirectory()
        self.sock = os.path.join(self.dir.name, "api.sock")
        args = [WISP]
        if api:
            args += ["--api-sock", self.sock]
        args += list(extra) + ["--debug-exit"]
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  env=dict(os.environ, **(env or {})))
        self.out, self.err = b"", b""
        self.lock = threading.Lock()
        self.readers = [threading.Thread(target=self._read, args=(f, i),
                                         daemon=True)
                        for i, f in enumerate((self.p.stdout, self.p.stderr))]
        for t in self.readers:
            t.start()
        if api:
            self.wait_socket()

    def _read(self, f, which):
        while True:
            chunk = os.read(f.fileno(), 65536)
            if not chunk:
                return
            with self.lock:
                if which == 0:
                    self.out += chunk
                else:
                    self.err += chunk

    def stdout(self):
        with self.lock:
            return self.out.decode(errors="replace")

    def stderr(self):
        with self.lock:
            return self.err.decode(errors="replace")

    def wait_socket(self):
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise Fail(f"wisp exited with {self.p.returncode}:\n"
                           f"{self.stderr()}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                s.close()
                return
            except OSError:
                time.sleep(0.005)
        raise Fail("API socket never accepted")

    def req(self, method, path, body=None, raw=None):
        """(status, parsed JSON body or None)."""
        c = UnixHTTP(self.sock)
        data = raw if raw is not None else \
            (json.dumps(body) if body is not None else None)
        headers = {"Content-Type": "application/json",
                   "Accept": "application/json"}
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        text = r.read()
        c.close()
        try:
            j = json.loads(text) if text else None
        except ValueError:
            raise Fail(f"{method} {path}: body is not JSON: {text!r}")
        return r.status, j

    def ok(self, method, path, body=None, want=204):
        st, j = self.req(method, path, body)
        expect(st == want, f"{method} {path} {body}: status {st}, want "
               f"{want}: {j}\n--- stderr ---\n{self.stderr()}")
        return j

    def bad(self, method, path, body=None, raw=None, want=400, says=None):
        st, j = self.req(method, path, body, raw)
        expect(st == want, f"{method} {path} {body or raw!r}: status {st}, "
               f"want {want}: {j}")
        expect(isinstance(j, dict) and isinstance(j.get("fault_message"),
                                                   str),
               f"{method} {path}: no fault_message in {j}")
        if says:
            expect(says in j["fault_message"],
                   f"{method} {path} {body or raw!r}: fault_message "
                   f"{j['fault_message']!r} should mention {says!r}")
        return j["fault_message"]

    def wait_out(self, pattern, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if re.search(pattern, self.stdout()):
                return
            if self.p.poll() is not None:
                time.sleep(0.1)
                if re.search(pattern, self.stdout()):
                    return
                break
            time.sleep(0.01)
        raise Fail(f"no {pattern!r} on the console\n--- stdout ---\n"
                   f"{self.stdout()[-2000:]}\n--- stderr ---\n"
                   f"{self.stderr()}")

    def wait(self, timeout=TIMEOUT):
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Fail(f"wisp did not exit within {timeout} s\n"
                       f"{self.stderr()}")
        for t in self.readers:
            t.join(5)
        return rc

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        return self.wait(10)

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.dir.cleanup()


def boot(w, test, **mc):
    w.ok("PUT", "/boot-source", {"kernel_image_path": GUEST,
                                 "boot_args": "test=" + test})
    if mc:
        w.ok("PUT", "/machine-config", mc)


def ticks(w):
    return [int(x) for x in re.findall(r"tick (\d+)\n", w.stdout())]


def case_lifecycle():
    w = Wisp()
    try:
        j = w.ok("GET", "/", want=200)
        expect(j["state"] == "Not started" and j["app_name"] == "wisp" and
               j["id"] and j["vmm_version"], f"GET / {j}")
        j = w.ok("GET", "/machine-config", want=200)
        expect(j["vcpu_count"] == 1 and j["mem_size_mib"] == 128,
               f"default machine-config {j}")
        boot(w, "exit=7", vcpu_count=2, mem_size_mib=64)
        w.ok("PATCH", "/machine-config", {"mem_size_mib": 96})
        j = w.ok("GET", "/machine-config", want=200)
        expect(j["vcpu_count"] == 2 and j["mem_size_mib"] == 96,
               f"after PATCH {j}")
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        rc = w.wait()
        expect(rc == 7, f"exit {rc}, want 7 (the guest's)\n{w.stderr()}")
        out = w.stdout()
        expect("wisp-test-guest: up" in out, f"guest output: {out}")
        kib = int(re.search(r"e820-ram-kib: (\d+)", out).group(1))
        expect(kib == 96 * 1024 - 385, f"e820 RAM {kib} KiB, want 96 MiB")
        expect(not os.path.exists(w.sock), "socket left behind at exit")
    finally:
        w.close()


def case_running_state_and_sigterm():
    w = Wisp()
    try:
        boot(w, "tick")
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 3\n")
        j = w.ok("GET", "/", want=200)
        expect(j["state"] == "Running", f"GET / after start: {j}")
        rc = w.stop()
        expect(rc == 128 + 15, f"SIGTERM: exit {rc}")
    finally:
        w.close()


def case_config_file():
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "vm.json")
        with open(cfg, "w") as f:
            json.dump({"boot-source": {"kernel_image_path": GUEST,
                                       "boot_args": "test=hello"},
                       "machine-config": {"vcpu_count": 1,
                                          "mem_size_mib": 48},
                       "drives": [], "network-interfaces": []}, f)
        # --no-api: boots at once, no socket.
        w = Wisp(["--no-api", "--config-file", cfg], api=False)
        try:
            rc = w.wait()
            expect(rc == 0, f"--no-api: exit {rc}\n{w.stderr()}")
            out = w.stdout()
            expect("wisp-test-guest: done" in out and
                   "e820-ram-kib: %d" % (48 * 1024 - 385) in out and
                   "test=hello" in out, f"--no-api: guest output {out}")
        finally:
            w.close()
        # With the API: the VM runs, the API still answers and refuses
        # pre-boot changes.
        with open(cfg, "w") as f:
            json.dump({"boot-source": {"kernel_image_path": GUEST,
                                       "boot_args": "test=tick"}}, f)
        w = Wisp(["--config-file", cfg])
        try:
            w.wait_out(r"tick 2\n")
            j = w.ok("GET", "/", want=200)
            expect(j["state"] == "Running", f"GET / {j}")
            j = w.ok("GET", "/vm/config", want=200)
            expect(j["boot-source"]["boot_args"] == "test=tick",
                   f"/vm/config {j}")
            w.bad("PUT", "/boot-source", {"kernel_image_path": GUEST},
                  says="after starting")
        finally:
            w.stop()
            w.close()
        # Bad files: exit 1, message names the file and the field.
        bad = [
            ("{", "invalid JSON"),
            ('{"boot-source": {"kernel_image_path": 5}}',
             "kernel_image_path"),
            ('{"machine-config": {"vcpu_count": 1, "mem_size_mib": 64, '
             '"bogus": 1}, "boot-source": {"kernel_image_path": "%s"}}'
             % GUEST, "bogus"),
            ('{"frobs": []}', "frobs"),
            ('{"drives": {}}', "drives"),
            ('{"machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}',
             "no boot source"),
        ]
        for text, msg in bad:
            with open(cfg, "w") as f:
                f.write(text)
            w = Wisp(["--no-api", "--config-file", cfg], api=False)
            try:
                rc = w.wait()
                err = w.stderr()
                expect(rc == 1 and msg in err and cfg in err or
                       (rc == 1 and msg in err and msg == "no boot source"),
                       f"config {text!r}: exit {rc}, stderr {err!r}")
            finally:
                w.close()
        w = Wisp(["--no-api", "--config-file", "/nonexistent.json"],
                 api=False)
        try:
            rc = w.wait()
            expect(rc == 1 and "/nonexistent.json" in w.stderr(),
                   f"missing file: exit {rc} {w.stderr()}")
        finally:
            w.close()


def case_bad_bodies():
    w = Wisp()
    try:
        # Invalid JSON, wrong top-level type, empty body.
        for ep in ("/boot-source", "/machine-config", "/drives/d1",
                   "/entropy", "/logger", "/metrics", "/actions",
                   "/network-interfaces/eth0", "/vsock"):
            w.bad("PUT", ep, raw='{"a": ', says="invalid JSON")
            w.bad("PUT", ep, raw="", says="invalid JSON")
            w.bad("PUT", ep, raw="[1, 2]", says="object")
            w.bad("PUT", ep, raw='{"a": 1, "a": 2}', says="invalid JSON")
        w.bad("PATCH", "/vm", raw="nope", says="invalid JSON")
        # Unknown fields, wrong types, missing fields: named.
        cases = [
            ("/boot-source", {"kernel_image_path": GUEST, "x": 1}, "'x'"),
            ("/boot-source", {"kernel_image_path": 1}, "kernel_image_path"),
            ("/boot-source", {"boot_args": "a"}, "kernel_image_path"),
            ("/boot-source", {"kernel_image_path": ""}, "kernel_image_path"),
            ("/boot-source", {"kernel_image_path": "a\u0000b"}, "NUL"),
            ("/machine-config", {"vcpu_count": 1}, "mem_size_mib"),
            ("/machine-config", {"vcpu_count": "1", "mem_size_mib": 64},
             "vcpu_count"),
            ("/machine-config", {"vcpu_count": 1.5, "mem_size_mib": 64},
             "vcpu_count"),
            ("/machine-config", {"vcpu_count": 0, "mem_size_mib": 64},
             "vcpu_count"),
            ("/machine-config", {"vcpu_count": 33, "mem_size_mib": 64},
             "vcpu_count"),
            ("/machine-config", {"vcpu_count": 1, "mem_size_mib": -1},
             "mem_size_mib"),
            ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 2**70},
             "invalid JSON"),
            ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64,
                                 "smt": True}, "smt"),
            ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64,
                                 "smt": 1}, "smt"),
            ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64,
                                 "cpu_template": "T2"}, "cpu_template"),
            ("/drives/d1", {"drive_id": "d1", "path_on_host": "/x"},
             "is_root_device"),
            ("/drives/d1", {"drive_id": "d1", "is_root_device": False},
             "path_on_host"),
            ("/drives/d1", {"drive_id": "d2", "path_on_host": "/x",
                            "is_root_device": False}, "does not match"),
            ("/drives/d%20x", {"path_on_host": "/x",
                               "is_root_device": False}, "id"),
            ("/drives/d1", {"drive_id": "d1", "path_on_host": "/x",
                            "is_root_device": "yes"}, "is_root_device"),
            ("/drives/d1", {"drive_id": "d1", "path_on_host": "/x",
                            "is_root_device": False,
                            "cache_type": "Fast"}, "cache_type"),
            ("/drives/d1", {"drive_id": "d1", "path_on_host": "/x",
                            "is_root_device": False,
                            "io_engine": "Async"}, "io_engine"),
            ("/drives/d1", {"drive_id": "d1", "path_on_host": "/x",
                            "is_root_device": False, "rate_limiter":
                            {"bandwidth": {"size": -1, "refill_time": 1}}},
             "rate_limiter: bandwidth"),
            ("/drives/d1", {"drive_id": "d1", "path_on_host": "/x",
                            "is_root_device": False, "rate_limiter":
                            {"ops": {"size": 1}}}, "refill_time"),
            ("/network-interfaces/eth0", {"host_dev_name": "tap0",
                                          "tx_rate_limiter": {"x": 1}},
             "tx_rate_limiter"),
            ("/entropy", {"rate_limiter": {"bandwidth": {"size": 1}}},
             "refill_time"),
            ("/entropy", {"rate_limiter": {"ops": {"size": 1,
                                                   "refill_time": 1}}},
             "ops"),
            ("/entropy", {"rate": 5}, "'rate'"),
            ("/logger", {"level": "Loud"}, "level"),
            ("/logger", {"log_path": "/nonexistent/log"}, "/nonexistent/log"),
            ("/metrics", {}, "metrics_path"),
            ("/metrics", {"metrics_path": "/nonexistent/m"}, "/nonexistent/m"),
            ("/actions", {}, "action_type"),
            ("/actions", {"action_type": "Reboot"}, "action_type"),
            ("/actions", {"action_type": "InstanceStart", "x": 1}, "'x'"),
            ("/network-interfaces/eth0", {"iface_id": "eth0"},
             "host_dev_name"),
            ("/network-interfaces/eth0", {"host_dev_name": "tap0",
                                          "guest_mac": "zz"}, "guest_mac"),
            ("/vsock", {"guest_cid": 2, "uds_path": "/tmp/v"}, "guest_cid"),
            ("/vsock", {"uds_path": "/tmp/v"}, "guest_cid"),
            ("/snapshot/create", {"snapshot_path": "a", "mem_file_path": "b"},
             "paused"),
            ("/snapshot/load", {"snapshot_path": "a"}, "mem_backend"),
        ]
        for ep, body, msg in cases:
            w.bad("PUT", ep, body, says=msg)
        w.bad("PATCH", "/vm", {"state": "Paused"}, says="before starting")
        w.bad("PATCH", "/vm", {"state": "Sleeping"}, says="state")
        w.bad("PATCH", "/vm", {}, says="state")
        w.bad("PATCH", "/drives/d1", {"drive_id": "d1"}, says="drive")
        # Unknown paths and methods.
        w.bad("GET", "/nothing", want=404)
        w.bad("GET", "/drives", want=404)
        w.bad("GET", "/drives/a/b", want=404)
        w.bad("DELETE", "/boot-source", want=405)
        w.bad("GET", "/boot-source", want=405)
        w.bad("PATCH", "/actions", {"action_type": "FlushMetrics"}, want=405)
        w.bad("POST", "/actions", {"action_type": "FlushMetrics"}, want=405)
        # A body over the limit: 413, and the server goes on.
        # The server may answer and close before the client has sent it
        # all: read the answer after a broken pipe too.
        big = ('{"boot_args": "' + "a" * 70000 +
               '", "kernel_image_path": "x"}').encode()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(w.sock)
        try:
            s.sendall(b"PUT /boot-source HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(big) + big)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = b""
        try:
            while b"}" not in resp:
                chunk = s.recv(4096)
                if not chunk:
                    break
                resp += chunk
        except ConnectionResetError:
            pass
        s.close()
        expect(resp.startswith(b"HTTP/1.1 413") and b"larger than" in resp,
               f"huge body: {resp[:200]!r}")
        # Nothing bad was applied: the model is as it started.
        j = w.ok("GET", "/vm/config", want=200)
        expect(j["boot-source"] is None and j["drives"] == [] and
               j["machine-config"]["vcpu_count"] == 1 and
               j["entropy"] is None and j["vsock"] is None,
               f"a refused request changed the config: {j}")
        # Good bodies of each resource are stored and shown.
        with tempfile.NamedTemporaryFile() as img:
            img.write(b"\0" * 65536)
            img.flush()
            w.ok("PUT", "/drives/rootfs", {"drive_id": "rootfs",
                                           "path_on_host": img.name,
                                           "is_root_device": True,
                                           "is_read_only": True,
                                           "cache_type": "Writeback",
                                           "io_engine": "Sync"})
            w.bad("PUT", "/drives/other", {"path_on_host": img.name,
                                           "is_root_device": True},
                  says="root device")
            # a real device now: its socket in the test's own directory
            w.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path":
                                   os.path.join(w.dir.name, "v.sock")})
            w.ok("PUT", "/entropy", {"rate_limiter": {"bandwidth": {
                "size": 1000, "refill_time": 100}}})
            j = w.ok("GET", "/vm/config", want=200)
            expect(j["drives"][0]["drive_id"] == "rootfs" and
                   j["drives"][0]["is_read_only"] is True and
                   j["vsock"]["guest_cid"] == 3 and
                   j["entropy"]["rate_limiter"]["bandwidth"]["size"] == 1000,
                   f"stored config {j}")
            # The root drive becomes vda with root= on the command line.
            boot(w, "hello")
            w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
            rc = w.wait()
            out = w.stdout()
            expect(rc == 0 and "root=/dev/vda ro" in out,
                   f"exit {rc}, command line {out}\n{w.stderr()}")
    finally:
        w.close()


def case_drive_reaches_guest():
    """A drive set through the API is the guest's virtio-blk disk, with
    drive_id as its GET_ID serial and is_read_only honoured."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(8 << 20)
        mpath = os.path.join(d, "metrics")
        open(mpath, "w").close()
        w = Wisp()
        try:
            boot(w, "blk")
            w.ok("PUT", "/drives/data_1", {"drive_id": "data_1",
                                           "path_on_host": img,
                                           "is_root_device": False})
            w.ok("PUT", "/metrics", {"metrics_path": mpath})
            w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
            rc = w.wait()
            out = w.stdout()
            expect(rc == 0 and "blk-id: data_1" in out and
                   "blk-capacity: %d" % ((8 << 20) // 512) in out,
                   f"exit {rc}: {out}\n{w.stderr()}")
            # The line written when the VM ended counts exactly what the
            # guest's driver did: OUT and IN of sector 1, a FLUSH, GET_ID
            # and an IN past the end (IOERR): five completed requests.
            with open(mpath) as f:
                lines = f.read().splitlines()
            expect(len(lines) == 1, f"{len(lines)} metrics lines")
            m = json.loads(lines[0])
            b = m.get("block_data_1")
            want = {"read_count": 1, "read_bytes": 512, "write_count": 1,
                    "write_bytes": 512, "flush_count": 1,
                    "execute_fails": 1, "invalid_reqs_count": 0}
            expect(b is not None and
                   {k: b[k] for k in want} == want and
                   sum(b["latency_us"].values()) == 5 and
                   len(b["latency_us"]) == 7 and
                   m["block"] == b, f"block metrics: {m}")
            with open(img, "rb") as f:
                f.seek(512)
                data = f.read(512)
            expect(data == bytes((i * 7 + 3) & 0xff for i in range(512)),
                   "sector 1 not written on the host image")
        finally:
            w.close()
        with open(img, "wb") as f:
            f.write(b"\x5a" * (1 << 20))
        w = Wisp()
        try:
            boot(w, "blk")
            w.ok("PUT", "/drives/ro", {"path_on_host": img,
                                       "is_root_device": False,
                                       "is_read_only": True})
            w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
            rc = w.wait()
            # The write is refused, so the read-back differs: exit 6.
            expect(rc == 6 and "blk-write-status: 1" in w.stdout(),
                   f"read-only drive: exit {rc}: {w.stdout()}")
            with open(img, "rb") as f:
                expect(f.read() == b"\x5a" * (1 << 20), "image changed")
        finally:
            w.close()


def case_ioreq_server():
    """wisp's own PUT /ioreq-servers/{id}: the guest's forwarded reads are
    answered by the spawned server."""
    srv = os.path.normpath(os.path.join(os.path.dirname(GUEST), "..", "..",
                                        "tests", "servers", "wisp-ioreq-test"))
    expect(os.path.exists(srv), f"{srv} not built")
    w = Wisp()
    try:
        w.bad("PUT", "/ioreq-servers/s1", {}, says="exactly one")
        w.bad("PUT", "/ioreq-servers/s1", {"socket": "/a", "spawn": "b"},
              says="exactly one")
        w.bad("PUT", "/ioreq-servers/s1", {"spawn": 5}, says="spawn")
        w.bad("PUT", "/ioreq-servers/s1", {"spawn": srv, "iommu": "off"},
              says="iommu")
        w.ok("PUT", "/ioreq-servers/s1", {"spawn": srv})
        j = w.ok("GET", "/vm/config", want=200)
        expect(j["ioreq-servers"] == [{"id": "s1", "socket": None,
                                       "spawn": srv, "iommu": True}],
               f"stored: {j}")
        boot(w, "ioreq-read", vcpu_count=2, mem_size_mib=64)
        mpath = os.path.join(w.dir.name, "metrics")
        open(mpath, "w").close()
        w.ok("PUT", "/metrics", {"metrics_path": mpath})
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        rc = w.wait()
        got = re.findall(r"ioreq-counter: (\d+)", w.stdout())
        expect(rc == 0 and got == ["1", "2", "3"],
               f"exit {rc}, counter reads {got}\n{w.stdout()}\n{w.stderr()}")
        # The magic and three counter reads of the window: each a round
        # trip a vCPU waited for.
        with open(mpath) as f:
            m = json.loads(f.read().splitlines()[-1])
        srvs = m.get("ioreq_servers")
        expect(isinstance(srvs, list) and len(srvs) == 1 and
               srvs[0]["round_trips"] == 4 and srvs[0]["timeouts"] == 0,
               f"ioreq metrics: {m}")
    finally:
        w.close()


def case_ioreq_server_iommu():
    """"iommu" of PUT /ioreq-servers, --server-iommu's field: the test
    server does not take IOREQ_F_IOMMU, so behind the VM's IOMMU (the
    default) InstanceStart is refused naming the server, and with
    "iommu": false it attaches outside the IOMMU and the VM runs (the
    test guest's reads go to the first window, the virtio-iommu's, so
    they do not reach the server here; case ioreq_server has those)."""
    srv = build_bin("tests", "servers", "wisp-ioreq-test")
    for iommu in (None, False):
        w = Wisp()
        try:
            body = {"spawn": srv}
            if iommu is not None:
                body["iommu"] = iommu
            w.ok("PUT", "/ioreq-servers/s1", body)
            w.ok("PUT", "/iommu", {"enabled": True})
            j = w.ok("GET", "/vm/config", want=200)
            expect(j["ioreq-servers"][0]["iommu"] is (iommu is None),
                   f"stored: {j['ioreq-servers']}")
            boot(w, "ioreq-read", vcpu_count=1, mem_size_mib=64)
            if iommu is None:
                msg = w.bad("PUT", "/actions",
                            {"action_type": "InstanceStart"},
                            says="IOREQ_F_IOMMU")
                print(f"behind the IOMMU: {msg}")
                continue
            w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
            rc = w.wait()
            expect(rc == 0 and "ioreq-magic" in w.stdout() and
                   "IOREQ_F_IOMMU" not in w.stderr(),
                   f"iommu false: exit {rc}\n{w.stdout()}\n{w.stderr()}")
            print("iommu false: attached outside the IOMMU, the guest ran "
                  "to its exit")
        finally:
            w.close()


def case_after_start():
    w = Wisp()
    try:
        # A failing start is reported with vm_create's message and can be
        # retried.
        w.ok("PUT", "/boot-source", {"kernel_image_path": "/nonexistent/k"})
        w.bad("PUT", "/actions", {"action_type": "InstanceStart"},
              says="/nonexistent/k")
        j = w.ok("GET", "/", want=200)
        expect(j["state"] == "Not started", f"after a failed start: {j}")
        boot(w, "tick")
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 1\n")
        for ep, body in (
                ("/boot-source", {"kernel_image_path": GUEST}),
                ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64}),
                ("/drives/d1", {"path_on_host": GUEST,
                                "is_root_device": False}),
                ("/entropy", {}),
                ("/vsock", {"guest_cid": 3, "uds_path": "/tmp/x"}),
                ("/network-interfaces/e", {"host_dev_name": "t"}),
                ("/logger", {"level": "Info"}),
                ("/metrics", {"metrics_path": "/dev/null"})):
            w.bad("PUT", ep, body, says="after starting")
        w.bad("PATCH", "/machine-config", {"vcpu_count": 2},
              says="after starting")
        w.bad("PUT", "/actions", {"action_type": "InstanceStart"},
              says="already")
        w.ok("GET", "/machine-config", want=200)
        w.ok("GET", "/vm/config", want=200)
        expect(w.p.poll() is None, "wisp exited")
        expect(w.stop() == 143, "SIGTERM exit")
    finally:
        w.close()


def case_signal_races_start():
    """SIGTERM at the moment InstanceStart arrives: wisp ends either way
    (before, the exiting main thread could wait forever for the HTTP
    thread, which waited for the main thread to build the VM)."""
    for i in range(40):
        w = Wisp()
        try:
            boot(w, "tick")
            c = UnixHTTP(w.sock)
            c.connect()
            body = json.dumps({"action_type": "InstanceStart"})
            c.sock.sendall(("PUT /actions HTTP/1.1\r\nHost: x\r\n"
                            "Content-Length: %d\r\n\r\n%s" %
                            (len(body), body)).encode())
            time.sleep((i % 8) * 0.0005)
            w.p.send_signal(signal.SIGTERM)
            rc = w.wait(10)
            c.close()
            expect(rc == 143, f"round {i}: exit {rc}\n{w.stderr()}")
        finally:
            w.close()


def case_network_interface_is_a_device():
    """A network interface is a virtio-net device on its tap: stored and
    shown before start, and a tap that does not exist fails InstanceStart
    with a message naming it (no network is created by this test)."""
    w = Wisp()
    try:
        boot(w, "hello")
        w.ok("PUT", "/network-interfaces/eth0",
             {"iface_id": "eth0", "host_dev_name": "wisp-no-such-tap",
              "guest_mac": "AA:FC:00:00:00:01"})
        j = w.ok("GET", "/vm/config", want=200)
        expect(j["network-interfaces"][0]["host_dev_name"] ==
               "wisp-no-such-tap", f"stored config {j}")
        w.ok("PUT", "/iommu", {"enabled": False})
        w.bad("PUT", "/iommu", {"enabled": "yes"}, says="enabled")
        w.bad("PUT", "/actions", {"action_type": "InstanceStart"},
              says="wisp-no-such-tap")
    finally:
        w.close()


def case_iommu_requests():
    """PUT /iommu's "requests" and "poll_us" (--iommu-requests,
    --iommu-poll): kept and shown by GET /vm/config, bad values refused by
    name, polling with the requests in the vCPU refused at InstanceStart
    (and the start retried without it), and the test guest's IOMMU checks
    pass to the end with the requests on the I/O thread (polling) and in
    the vCPU."""
    d = tempfile.TemporaryDirectory()
    img = os.path.join(d.name, "disk.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    for requests in ("vcpu", "thread"):
        w = Wisp()
        try:
            boot(w, "iommu", vcpu_count=1, mem_size_mib=64)
            w.bad("PUT", "/iommu", {"enabled": True, "requests": "both"},
                  says="both")
            w.bad("PUT", "/iommu", {"enabled": True, "poll_us": 5000},
                  says="poll_us")
            w.ok("PUT", "/iommu", {"enabled": True, "requests": requests,
                                   "poll_us": 100})
            j = w.ok("GET", "/vm/config", want=200)
            expect(j["iommu"] == {"enabled": True, "requests": requests,
                                  "poll_us": 100}, f"stored: {j['iommu']}")
            w.ok("PUT", "/drives/d0", {"drive_id": "d0",
                                       "path_on_host": img,
                                       "is_root_device": False,
                                       "is_read_only": False})
            if requests == "vcpu":
                msg = w.bad("PUT", "/actions",
                            {"action_type": "InstanceStart"},
                            says="--iommu-requests vcpu")
                print(f"polling with the requests in the vCPU: {msg}")
                w.ok("PUT", "/iommu", {"enabled": True,
                                       "requests": "vcpu"})
            w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
            rc = w.wait()
            out = w.stdout()
            expect(rc == 0 and "iommu-readback: ok" in out and
                   "iommu-after-unmap-status: 1" in out,
                   f"{requests}: exit {rc}\n{out[-600:]}\n"
                   f"{w.stderr()[-600:]}")
            print(f"requests: {requests}: the guest's IOMMU checks passed")
        finally:
            w.close()
    d.cleanup()


def case_vsock_device():
    """PUT /vsock makes a virtio-vsock device whose host side listens on
    uds_path while the VM runs: a host client's CONNECT to a guest that
    never drives the device is closed within the bounded wait (the test
    guest has no vsock driver), and the socket is gone after exit. A
    path that exists fails InstanceStart with a message naming it."""
    w = Wisp()
    try:
        uds = os.path.join(w.dir.name, "v.sock")
        open(uds, "w").close()
        boot(w, "tick")
        w.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": uds})
        w.bad("PUT", "/actions", {"action_type": "InstanceStart"},
              says=uds)
        os.unlink(uds)
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 1\n")
        st = os.stat(uds)
        expect(stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o777 != 0,
               f"{uds} is not a socket while the VM runs")
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(10)
        c.connect(uds)
        c.sendall(b"CONNECT 52\n")
        t0 = time.monotonic()
        got = c.recv(64)
        took = time.monotonic() - t0
        c.close()
        expect(got == b"" and 1.0 < took < 8,
               f"CONNECT to a guest without a driver: {got!r} after "
               f"{took:.1f} s (want end-of-file after the 2 s wait)")
        rc = w.stop()
        expect(rc == 128 + 15, f"SIGTERM: exit {rc}")
        expect(not os.path.exists(uds), f"{uds} left behind at exit")
    finally:
        w.close()


def case_rate_limiters():
    """Firecracker's rate_limiter on drives and rx/tx_rate_limiter on
    network interfaces are stored and shown; PATCH is refused before
    InstanceStart and changes a running disk's limiter (a refused PATCH
    changes nothing)."""
    w = Wisp()
    try:
        with tempfile.NamedTemporaryFile() as img:
            img.write(b"\0" * 65536)
            img.flush()
            rl = {"bandwidth": {"size": 1048576, "one_time_burst": 4096,
                                "refill_time": 100},
                  "ops": {"size": 100, "refill_time": 1000}}
            w.ok("PUT", "/drives/d0", {"drive_id": "d0",
                                       "path_on_host": img.name,
                                       "is_root_device": False,
                                       "rate_limiter": rl})
            w.ok("PUT", "/network-interfaces/e0",
                 {"iface_id": "e0", "host_dev_name": "wisp-no-tap",
                  "rx_rate_limiter": {"ops": {"size": 5,
                                              "refill_time": 10}}})
            j = w.ok("GET", "/vm/config", want=200)
            got = j["drives"][0]["rate_limiter"]
            expect(got["bandwidth"] == rl["bandwidth"] and
                   got["ops"]["size"] == 100 and
                   got["ops"]["one_time_burst"] == 0,
                   f"stored drive limiter {got}")
            f = j["network-interfaces"][0]
            expect(f["rx_rate_limiter"]["ops"]["size"] == 5 and
                   "tx_rate_limiter" not in f, f"stored iface {f}")
            w.bad("PATCH", "/drives/d0", {"drive_id": "d0",
                                          "rate_limiter": rl},
                  says="before starting")
            w.bad("PATCH", "/network-interfaces/e0", {"iface_id": "e0"},
                  says="before starting")
            # No tap in this test: start with the drive only.
            w2 = Wisp()
            try:
                w2.ok("PUT", "/drives/d0", {"drive_id": "d0",
                                            "path_on_host": img.name,
                                            "is_root_device": False,
                                            "is_read_only": True,
                                            "rate_limiter": rl})
                boot(w2, "tick")
                w2.ok("PUT", "/actions", {"action_type": "InstanceStart"})
                w2.wait_out(r"tick 1\n")
                new = {"bandwidth": {"size": 2048, "refill_time": 10}}
                w2.ok("PATCH", "/drives/d0", {"drive_id": "d0",
                                              "rate_limiter": new})
                j = w2.ok("GET", "/vm/config", want=200)
                got = j["drives"][0]["rate_limiter"]
                expect(got == {"bandwidth": {"size": 2048,
                                             "one_time_burst": 0,
                                             "refill_time": 10}},
                       f"after PATCH {got}")
                w2.bad("PATCH", "/drives/d0",
                       {"drive_id": "d0", "rate_limiter":
                        {"ops": {"size": -5, "refill_time": 1}}},
                       says="rate_limiter: ops")
                w2.bad("PATCH", "/drives/d0", {"drive_id": "d0",
                                               "path_on_host": "/y"},
                       says="path_on_host")
                w2.bad("PATCH", "/drives/d9", {"drive_id": "d9"},
                       says="no such drive")
                w2.bad("PATCH", "/network-interfaces/e9",
                       {"iface_id": "e9"}, says="no such interface")
                j2 = w2.ok("GET", "/vm/config", want=200)
                expect(j2["drives"][0]["rate_limiter"] == got,
                       f"a refused PATCH changed {j2['drives'][0]}")
                # Lifting the limit: the field goes away.
                w2.ok("PATCH", "/drives/d0", {"drive_id": "d0",
                                              "rate_limiter": {}})
                j = w2.ok("GET", "/vm/config", want=200)
                expect("rate_limiter" not in j["drives"][0],
                       f"after lifting {j['drives'][0]}")
                expect(w2.stop() == 143, "SIGTERM exit")
            finally:
                w2.close()
    finally:
        w.close()


def case_ctrl_alt_del():
    """SendCtrlAltDel types Ctrl, Alt, Delete on the i8042 keyboard (scan
    code set 1: the controller translates, as the guest left it)."""
    w = Wisp()
    try:
        boot(w, "kbd")
        w.bad("PUT", "/actions", {"action_type": "SendCtrlAltDel"},
              says="before starting")
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"kbd-ready\n")
        w.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
        rc = w.wait()
        expect(rc == 0 and "kbd: 1d 38 e0 53\n" in w.stdout(),
               f"exit {rc}, guest saw: {w.stdout()}")
    finally:
        w.close()
    # Keys the guest does not read pile up only to the buffer's size; with
    # ACPI (the default) the power button is pressed each time as well,
    # so the action still succeeds and the guest runs on (it ignores the
    # button).
    w = Wisp()
    try:
        boot(w, "tick")
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 1\n")
        for _ in range(6):
            w.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
        n = len(ticks(w))
        w.wait_out(r"tick %d\n" % (n + 2))
        expect(w.stop() == 143, "SIGTERM")
    finally:
        w.close()
    # The ACPI power button reaches a guest that watches it (a Linux guest
    # with ACPI has no i8042 to read): it clears the GED status and
    # powers off.
    w = Wisp()
    try:
        boot(w, "acpi route=zp act=ged")
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"ged-waiting")
        w.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
        rc = w.wait()
        out = w.stdout()
        expect(rc == 0 and "ged-cleared: 1" in out and "entering S5" in out,
               f"exit {rc}, guest saw: {out}")
    finally:
        w.close()


def case_pause_resume():
    w = Wisp()
    try:
        boot(w, "tick", vcpu_count=2, mem_size_mib=64)
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 5\n")
        for rnd in range(3):
            w.ok("PATCH", "/vm", {"state": "Paused"})
            j = w.ok("GET", "/", want=200)
            expect(j["state"] == "Paused", f"GET / while paused: {j}")
            # Output already in the pipe may still arrive; then nothing.
            time.sleep(0.3)
            before = ticks(w)
            time.sleep(1.0)
            after = ticks(w)
            expect(before == after, f"round {rnd}: ticks went on while "
                   f"paused: {before[-1:]} -> {after[-1:]}")
            w.ok("PATCH", "/vm", {"state": "Paused"})  # idempotent
            w.ok("PATCH", "/vm", {"state": "Resumed"})
            last = after[-1] if after else -1
            w.wait_out(r"tick %d\n" % (last + 3))
            j = w.ok("GET", "/", want=200)
            expect(j["state"] == "Running", f"GET / resumed: {j}")
        w.ok("PATCH", "/vm", {"state": "Resumed"})  # idempotent
        # A paused VM still stops on SIGTERM.
        w.ok("PATCH", "/vm", {"state": "Paused"})
        expect(w.stop() == 143, "SIGTERM while paused")
    finally:
        w.close()


class ClockWatch:
    """Stamps each of the clock guest's lines with the host's
    CLOCK_REALTIME when it appears on wisp's stdout (polled every 2 ms)."""

    def __init__(self, w):
        self.w, self.seen, self.lines = w, 0, []

    def poll(self, secs):
        end = time.time() + secs
        while True:
            out = self.w.stdout()
            t = time.time()
            done = out.rfind("\n") + 1
            for ln in out[self.seen:done].splitlines():
                self.lines.append((t, ln))
            self.seen = done
            if t >= end:
                return
            time.sleep(0.002)

    def clocks(self, kind="clock"):
        return [(t, int(ln.split()[1])) for t, ln in self.lines
                if ln.startswith(kind + " ")]


def case_pause_clock():
    """Across a pause (3 s, twice) the guest's kvmclock goes on with the
    host's clock, neither frozen nor jumping: the guest's realtime (KVM's
    wall clock + kvmclock) stays within 0.25 s of the host's before, between
    and after the pauses (median per stretch; no line ahead), and moves
    across each pause as the host's does; the guest sees PVCLOCK_GUEST_STOPPED (KVM_KVMCLOCK_CTRL, what
    keeps a Linux guest's soft-lockup watchdog quiet) once after each
    pause and never without one."""
    pause_s, bound = 3.0, 0.25
    w = Wisp()
    try:
        boot(w, "clock")
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"clock-wall \d+ \d+\n")
        m = re.search(r"clock-wall (\d+) (\d+)\n", w.stdout())
        wall = int(m.group(1)) + int(m.group(2)) / 1e9
        cw = ClockWatch(w)
        cw.poll(1.0)
        before = cw.clocks()
        expect(len(before) >= 5, f"{len(before)} clock lines in 1 s")
        expect(not cw.clocks("clock-stopped"),
               f"stopped flag without a pause: {cw.lines}")
        marks = []
        for rnd in range(2):
            n0 = len(cw.clocks())
            w.ok("PATCH", "/vm", {"state": "Paused"})
            cw.poll(0.2)  # lines already in the pipe
            n1 = len(cw.clocks())
            cw.poll(pause_s)
            expect(len(cw.clocks()) == n1,
                   f"round {rnd}: clock lines while paused")
            w.ok("PATCH", "/vm", {"state": "Resumed"})
            cw.poll(1.0)
            expect(len(cw.clocks()) > n1 + 5,
                   f"round {rnd}: {len(cw.clocks()) - n1} lines after "
                   "resume")
            marks.append((n0, n1))
            expect(len(cw.clocks("clock-stopped")) == rnd + 1,
                   f"round {rnd}: stopped flags "
                   f"{cw.clocks('clock-stopped')} (want one per pause)")
        # Guest realtime minus host realtime at each line's arrival. A
        # line's own latency only makes it negative (ms), but the line
        # being printed when the pause came carries a time from before
        # it and arrives after: one outlier per pause, so each stretch
        # between pauses is judged by its median. A frozen clock would
        # put every line after a pause pause_s behind, a jumping one
        # ahead; no line may be ahead.
        cl = cw.clocks()
        offs = [(wall + ns / 1e9) - t for t, ns in cl]
        cuts = [0] + [n1 for _, n1 in marks] + [len(offs)]
        meds = []
        for a, b in zip(cuts, cuts[1:]):
            seg = sorted(offs[a:b])
            meds.append(seg[len(seg) // 2])
        expect(all(abs(m) < bound for m in meds) and max(offs) < bound,
               f"guest realtime - host realtime: medians "
               f"{[round(m, 3) for m in meds]} s between the pauses, "
               f"max {max(offs):+.3f} s (bound {bound} s); per line: "
               f"{[round(x, 3) for x in offs]}")
        for n0, n1 in marks:
            # The second line after the resume was timed after it.
            (ta, ga), (tb, gb) = cl[n1 - 1], cl[n1 + 1]
            expect(abs((gb - ga) / 1e9 - (tb - ta)) < bound,
                   f"across the pause the guest's clock moved "
                   f"{(gb - ga) / 1e9:.3f} s, the host's {tb - ta:.3f} s")
        print(f"clock: median offsets {[round(m, 4) for m in meds]} s, "
              f"range {min(offs):+.4f}..{max(offs):+.4f} s over "
              f"{len(offs)} lines, 2 pauses of {pause_s} s")
        expect(w.stop() == 143, "SIGTERM")
    finally:
        w.close()


def case_state_dump_signal():
    """SIGUSR1 never ends wisp --api-sock: before InstanceStart it waits
    (blocked in every thread) and the VM's loop dumps once the VM runs;
    while it runs, and while paused, it dumps at once."""
    w = Wisp()
    try:
        w.p.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
        expect(w.p.poll() is None, f"SIGUSR1 before start ended wisp: "
               f"{w.p.returncode} {w.stderr()}")
        boot(w, "tick")
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 1\n")
        deadline = time.time() + TIMEOUT
        while "state dump end" not in w.stderr() and time.time() < deadline:
            time.sleep(0.05)
        expect("state dump (SIGUSR1): 1 vCPUs" in w.stderr(),
               f"no dump after start: {w.stderr()}")
        w.ok("PATCH", "/vm", {"state": "Paused"})
        w.p.send_signal(signal.SIGUSR1)
        deadline = time.time() + TIMEOUT
        while w.stderr().count("state dump end") < 2 and \
                time.time() < deadline:
            time.sleep(0.05)
        expect("1 vCPUs (paused)" in w.stderr(),
               f"no dump while paused: {w.stderr()}")
        w.ok("PATCH", "/vm", {"state": "Resumed"})
        expect(w.stop() == 143, "SIGTERM exit")
    finally:
        w.close()


def case_concurrent_clients():
    w = Wisp()
    errors = []

    def client(n):
        try:
            for i in range(25):
                st, j = w.req("PUT", "/machine-config",
                              {"vcpu_count": 1 + (n + i) % 4,
                               "mem_size_mib": 64})
                if st != 204:
                    errors.append(f"client {n}: PUT {st} {j}")
                st, j = w.req("GET", "/machine-config")
                if st != 200 or not 1 <= j["vcpu_count"] <= 4:
                    errors.append(f"client {n}: GET {st} {j}")
        except Exception as e:  # noqa: BLE001 - reported as a failure
            errors.append(f"client {n}: {e!r}")

    try:
        # An idle client holding a connection does not block the others.
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.connect(w.sock)
        idle.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: x\r\n")
        ts = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        t0 = time.time()
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        expect(not errors, "\n".join(errors[:10]))
        expect(time.time() - t0 < 30, "400 requests took over 30 s")
        idle.close()
        w.ok("GET", "/", want=200)
    finally:
        w.close()


def case_connection_limit():
    """16 silent clients take every connection: a 17th waits in the
    listen backlog (it is not served, and the server holds nothing for
    it) and is served as soon as a slot frees."""
    w = Wisp()
    try:
        idle = []
        for _ in range(16):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(w.sock)
            s.sendall(b"GET / HTTP/1.1\r\n")
            idle.append(s)
        time.sleep(0.3)
        extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        extra.settimeout(2)
        extra.connect(w.sock)
        extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            got = extra.recv(100)
        except socket.timeout:
            got = None
        expect(got is None, f"17th connection answered: {got!r}")
        idle.pop().close()
        extra.settimeout(5)
        got = extra.recv(100)
        expect(got.startswith(b"HTTP/1.1 200"),
               f"17th connection after a slot freed: {got!r}")
        extra.close()
        for s in idle:
            s.close()
        w.ok("GET", "/", want=200)
    finally:
        w.close()


def case_disconnects():
    w = Wisp()
    try:
        # Mid-body, mid-headers, and right after connecting.
        for data in (b"PUT /boot-source HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"kernel_ima",
                     b"PUT /boot-source HTTP/1.1\r\nHost: x\r\nConte",
                     b"", b"GARBAGE\r\n\r\n"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(w.sock)
            if data:
                s.sendall(data)
            s.close()
        w.ok("GET", "/", want=200)
        j = w.ok("GET", "/vm/config", want=200)
        expect(j["boot-source"] is None, f"a cut request was applied: {j}")
        # Headers over the limit are refused, not buffered.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(w.sock)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " +
                      b"a" * 100000 + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            resp = s.recv(4096)
        except ConnectionResetError:
            resp = b""
        s.close()
        expect(not resp.startswith(b"HTTP/1.1 200"),
               f"100 KB header accepted: {resp[:100]!r}")
        # Oversize bodies are not read to their end: a declared one gets
        # 413 at once, a chunked one loses its connection at the limit.
        for head in (b"Content-Length: 1000000000\r\n",
                     b"Transfer-Encoding: chunked\r\n"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(w.sock)
            s.sendall(b"PUT /boot-source HTTP/1.1\r\nHost: x\r\n" + head +
                      b"\r\n")
            chunk = b"a" * 65536
            if b"chunked" in head:
                chunk = b"10000\r\n" + chunk + b"\r\n"
            sent = 0
            try:
                while sent < 8 << 20:
                    s.sendall(chunk)
                    sent += 65536
            except OSError:
                pass
            try:
                resp = s.recv(4096)
            except OSError:
                resp = b""
            s.close()
            expect(sent < 8 << 20, f"{head!r}: the server read {sent} bytes "
                   "of an oversize body")
            expect(b"chunked" in head or resp.startswith(b"HTTP/1.1 413"),
                   f"{head!r}: answer {resp[:60]!r}")
        w.ok("GET", "/", want=200)
        # A client that goes silent is dropped after the idle timeout.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(w.sock)
        s.sendall(b"GET / HTTP/1.1\r\n")
        t0 = time.time()
        try:
            got = s.recv(4096)
        except ConnectionResetError:
            got = b""
        waited = time.time() - t0
        s.close()
        expect(not got.startswith(b"HTTP/1.1 200") and 5 < waited < 19,
               f"idle client: got {got[:60]!r} after {waited:.1f} s")
        w.ok("GET", "/", want=200)
        expect(w.p.poll() is None, "wisp died")
    finally:
        w.close()


def raw_request(path, data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(path)
    s.sendall(data)
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(65536)
        if not chunk:
            break
        resp += chunk
    head, _, body = resp.partition(b"\r\n\r\n")
    m = re.search(rb"Content-Length: (\d+)", head, re.I)
    while m and len(body) < int(m.group(1)):
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    s.close()
    return head, body


def case_non_utf8_path():
    # A path that is not UTF-8 is quoted in the fault message, which must
    # still be a JSON string (it was an empty 404 before).
    w = Wisp()
    try:
        for method, path in ((b"GET", b"/\xbd\xff"),
                             (b"PUT", b"/drives/\xc3"),
                             (b"DELETE", b"/x\x01y")):
            head, body = raw_request(
                w.sock, method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
            expect(head.split(b" ")[1] in (b"400", b"404", b"405"),
                   f"{path!r}: {head[:40]!r}")
            try:
                j = json.loads(body)
            except ValueError:
                raise Fail(f"{method!r} {path!r}: body {body!r} is not JSON")
            expect(isinstance(j.get("fault_message"), str),
                   f"{path!r}: {j}")
        w.ok("GET", "/", want=200)
    finally:
        w.close()


def case_socket_safety():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s")
        # A regular file is never removed.
        with open(path, "w") as f:
            f.write("keep")
        p = subprocess.run([WISP, "--api-sock", path], capture_output=True,
                           timeout=TIMEOUT)
        expect(p.returncode == 1 and b"not a socket" in p.stderr,
               f"regular file: exit {p.returncode} {p.stderr!r}")
        expect(open(path).read() == "keep", "regular file was changed")
        os.unlink(path)
        # A stale socket (nobody listening) is replaced.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()
        w = Wisp(["--api-sock", path], api=False)
        w.sock = path
        try:
            w.wait_socket()
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            expect(mode == 0o600, f"socket mode {oct(mode)}, want 0600")
            w.ok("GET", "/", want=200)
            # A live socket is refused.
            p = subprocess.run([WISP, "--api-sock", path],
                               capture_output=True, timeout=TIMEOUT)
            expect(p.returncode == 1 and b"listening" in p.stderr,
                   f"live socket: exit {p.returncode} {p.stderr!r}")
            w.ok("GET", "/", want=200)
            # Another user is refused (SO_PEERCRED); needs root to be one.
            if os.geteuid() == 0:
                r, wr = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(r)
                    res = b"?"
                    try:
                        os.setgid(65534)
                        os.setuid(65534)
                        c = socket.socket(socket.AF_UNIX,
                                          socket.SOCK_STREAM)
                        c.settimeout(10)
                        # The socket is 0600: connect itself fails...
                        try:
                            c.connect(path)
                            res = b"connected"
                        except PermissionError:
                            res = b"denied"
                    finally:
                        os.write(wr, res)
                        os._exit(0)
                os.close(wr)
                res = os.read(r, 100)
                os.waitpid(pid, 0)
                expect(res == b"denied", f"another user: {res!r}")
                # ...and with the file mode opened up, the peer check
                # drops the connection without an answer.
                os.chmod(path, 0o666)
                os.chmod(d, 0o755)
                r, wr = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(r)
                    res = b"?"
                    try:
                        os.setgid(65534)
                        os.setuid(65534)
                        c = socket.socket(socket.AF_UNIX,
                                          socket.SOCK_STREAM)
                        c.settimeout(10)
                        c.connect(path)
                        try:
                            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                            res = c.recv(100) or b"closed"
                        except (ConnectionResetError, BrokenPipeError):
                            res = b"closed"
                    finally:
                        os.write(wr, res)
                        os._exit(0)
                os.close(wr)
                res = os.read(r, 100)
                os.waitpid(pid, 0)
                expect(res == b"closed", f"peer check: got {res!r}")
                w.ok("GET", "/", want=200)
            expect(w.stop() == 143, "SIGTERM before start")
        finally:
            w.close()
        expect(not os.path.exists(path), "socket left behind")
        # Bad paths.
        p = subprocess.run([WISP, "--api-sock", "/" + "a" * 200],
                           capture_output=True, timeout=TIMEOUT)
        expect(p.returncode == 1 and b"longer than" in p.stderr,
               f"long path: {p.returncode} {p.stderr!r}")
        p = subprocess.run([WISP, "--no-api"], capture_output=True,
                           timeout=TIMEOUT)
        expect(p.returncode == 1 and b"--config-file" in p.stderr,
               f"--no-api alone: {p.returncode} {p.stderr!r}")


def case_metrics_and_logger():
    w = Wisp()
    try:
        with tempfile.TemporaryDirectory() as d:
            mpath = os.path.join(d, "metrics")
            lpath = os.path.join(d, "log")
            open(mpath, "w").close()
            open(lpath, "w").close()
            w.bad("PUT", "/actions", {"action_type": "FlushMetrics"},
                  says="not initialized")
            w.ok("PUT", "/logger", {"log_path": lpath, "level": "Debug"})
            w.ok("PUT", "/metrics", {"metrics_path": mpath})
            w.bad("PUT", "/metrics", {"metrics_path": mpath},
                  says="already")
            for _ in range(3):
                w.ok("PUT", "/boot-source", {"kernel_image_path": GUEST,
                                             "boot_args": "test=tick"})
            w.bad("PUT", "/boot-source", {"kernel_image_path": 3})
            for _ in range(2):
                w.ok("GET", "/machine-config", want=200)
            w.bad("GET", "/nowhere", want=404)
            w.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
            with open(mpath) as f:
                lines = f.read().splitlines()
            expect(len(lines) == 1, f"{len(lines)} metrics lines")
            m = json.loads(lines[0])
            put, get = m["put_api_requests"], m["get_api_requests"]
            expect(put["boot_source_count"] == 4 and
                   put["boot_source_fails"] == 1 and
                   put["metrics_count"] == 2 and put["metrics_fails"] == 1 and
                   put["logger_count"] == 1 and
                   put["actions_count"] == 2 and put["actions_fails"] == 1 and
                   get["machine_cfg_count"] == 2 and
                   m["api_server"]["bad_requests"] == 1 and
                   m["utc_timestamp_ms"] > 1.6e12,
                   f"metrics line: {m}")
            w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
            w.wait_out(r"tick 2\n")
            w.ok("PATCH", "/vm", {"state": "Paused"})
            # Paused: two lines, the exit counters stand still.
            for _ in range(2):
                w.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
                time.sleep(0.2)
            w.ok("PATCH", "/vm", {"state": "Resumed"})
            n = ticks(w)[-1]
            w.wait_out(r"tick %d\n" % (n + 2))
            w.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
            with open(mpath) as f:
                lines = f.read().splitlines()
            expect(len(lines) == 4, f"{len(lines)} metrics lines")
            p1, p2, m = (json.loads(x) for x in lines[1:])
            expect(m["put_api_requests"]["actions_count"] == 6 and
                   m["patch_api_requests"]["vm_count"] == 2 and
                   m["vmm"]["vcpus"] == 1 and
                   m["vmm"]["paused_ms"] >= 300 and
                   m["vmm"]["first_exit_ns"] > 0, f"after start: {m}")
            # The tick guest reads the UART status 2000 times per tick.
            io1, io2, io3 = (x["vcpu"]["exit_io_in"] for x in (p1, p2, m))
            expect(io1 == io2 and io1 >= 2000 * 3,
                   f"exits while paused: {io1} -> {io2}")
            expect(io3 >= io2 + 2000 and
                   m["vcpu"]["exit_io_in_per_vcpu"] == [io3] and
                   m["vcpu"]["exit_io_out"] > 0 and
                   p1["vcpu"]["exit_interrupted"] >= 1,
                   f"exits after resume: {io1} {io2} {io3} {p1['vcpu']}")
            w.stop()
            with open(lpath) as f:
                log = f.read()
            expect("ELF64" in log and "signal 15" in log,
                   f"log file: {log!r}")
            expect("ELF64" not in w.stderr(), "log also went to stderr")
    finally:
        w.close()


TREE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
# A logger line: UTC time to the ns, [wisp:THREAD(:LEVEL)(:FILE:LINE)] msg
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9}) "
                      r"\[wisp:([^:\]]+)((?::[^\]]*)?)\] (.*)$")
LEVELS = ("ERROR", "WARN", "INFO", "DEBUG")


def parse_log(text, show_level, show_origin, t0, t1):
    """The logger's lines as (level, file, line, message); fails on a line
    that does not parse, a stamp outside [t0, t1] (host UTC), a field
    missing or present against the configuration, an origin that is not
    in the tree."""
    out = []
    expect(not text or text.endswith("\n"),
           f"log does not end a line: {text[-200:]!r}")
    for ln in text.splitlines():
        m = LOG_LINE.match(ln)
        expect(m, f"log line does not parse: {ln!r}")
        ts = time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) \
            - time.timezone + int(m.group(2)) / 1e9
        expect(t0 - 1 <= ts <= t1 + 1,
               f"stamp {ts:.3f} outside the run [{t0:.3f}, {t1:.3f}]: {ln!r}")
        fields = m.group(4)[1:].split(":") if m.group(4) else []
        level = fil = num = None
        if show_level:
            expect(fields and fields[0] in LEVELS, f"no level in {ln!r}")
            level = fields.pop(0)
        if show_origin:
            expect(len(fields) == 2 and fields[1].isdigit(),
                   f"no origin in {ln!r}")
            fil, num = fields[0], int(fields[1])
            expect(fil.startswith("src/") and
                   os.path.isfile(os.path.join(TREE, fil)) and
                   0 < num <= len(open(os.path.join(TREE, fil)).readlines()),
                   f"origin {fil}:{num} is not a line in the tree: {ln!r}")
            fields = []
        expect(not fields, f"fields not asked for in {ln!r} (show_level "
               f"{show_level}, show_log_origin {show_origin})")
        out.append((level, fil, num, m.group(5)))
    return out


def logged_run(logger, extra_stop=None, fifo=False):
    """Runs the tick guest to tick 2, pauses and resumes it, stops it with
    SIGTERM, with PUT /logger `logger` (log_path added: a file, or a FIFO
    read by a thread); returns (log text, t0, t1, stderr)."""
    with tempfile.TemporaryDirectory() as d:
        lpath = os.path.join(d, "log")
        chunks, rd = [], None
        if fifo:
            os.mkfifo(lpath)
            # A reader first: wisp opens the FIFO non-blocking.
            rfd = os.open(lpath, os.O_RDONLY | os.O_NONBLOCK)
            os.set_blocking(rfd, True)
            # Our own writer until wisp ends, so that the reader sees
            # EOF only once wisp's end closed too.
            hold = os.open(lpath, os.O_WRONLY)

            def reader():
                while True:
                    c = os.read(rfd, 65536)
                    if not c:
                        return
                    chunks.append(c)
            rd = threading.Thread(target=reader, daemon=True)
            rd.start()
        else:
            open(lpath, "w").close()
        t0 = time.time()
        w = Wisp()
        try:
            w.ok("PUT", "/logger", dict(logger, log_path=lpath))
            boot(w, "tick")
            w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
            w.wait_out(r"tick 2\n")
            w.ok("PATCH", "/vm", {"state": "Paused"})
            w.ok("PATCH", "/vm", {"state": "Resumed"})
            expect(w.stop() == 143, "SIGTERM exit")
            t1 = time.time()
            err = w.stderr()
        finally:
            w.close()
        if fifo:
            os.close(hold)
            rd.join(10)
            expect(not rd.is_alive(), "the FIFO's writer never closed")
            os.close(rfd)
            text = b"".join(chunks).decode()
        else:
            with open(lpath) as f:
                text = f.read()
    return text, t0, t1, err


def norm(msg):
    """A message with its numbers (times, addresses) taken out."""
    return re.sub(r"[0-9a-f]*[0-9][0-9a-f]*", "N", msg)


def case_logger_fields():
    """PUT /logger's show_level and show_log_origin add exactly their
    fields to each timestamped line; the messages are those stderr gets
    without a logger (-v -v), and stderr gets none of them."""
    # The same run without a logger, at Debug: what stderr says.
    w = Wisp(["-v", "-v"])
    try:
        boot(w, "tick")
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 2\n")
        w.ok("PATCH", "/vm", {"state": "Paused"})
        w.ok("PATCH", "/vm", {"state": "Resumed"})
        expect(w.stop() == 143, "SIGTERM exit")
        # All but the line before any PUT /logger could be done.
        plain = [ln[len("wisp: "):] for ln in w.stderr().splitlines()
                 if ln.startswith("wisp: ") and
                 not ln.startswith("wisp: api: accepting on")]
    finally:
        w.close()
    expect(any("ELF64" in x for x in plain) and
           any("signal 15" in x for x in plain),
           f"stderr without a logger: {plain}")
    for sl in (False, True):
        for so in (False, True):
            text, t0, t1, err = logged_run({"level": "Debug",
                                            "show_level": sl,
                                            "show_log_origin": so})
            lines = parse_log(text, sl, so, t0, t1)
            # "api: accepting" is logged by the main thread once the
            # socket listens: it may come before or after the PUT.
            msgs = sorted(norm(m) for _, _, _, m in lines
                          if not m.startswith("api: accepting on"))
            expect(msgs == sorted(norm(x) for x in plain),
                   f"show_level {sl} show_log_origin {so}: logged "
                   f"{msgs}, stderr without a logger said {plain}")
            expect("wisp: " not in err and "ELF64" not in err,
                   f"stderr still gets the messages: {err!r}")
            if sl:
                got = {lv for lv, _, _, m in lines}
                expect({"INFO", "DEBUG"} <= got and
                       all(lv == "INFO" for lv, _, _, m in lines
                           if "signal 15" in m),
                       f"levels {got}: {lines}")
            if so:
                expect(any(f == "src/vmm/vm.c" for _, f, _, m in lines
                           if "signal 15" in m), f"origins: {lines}")


def case_logger_level_and_module():
    """level drops what is less severe; module keeps only the lines of
    one subsystem (src/<module>/); a bad module or level is refused and
    changes nothing."""
    by_level = {}
    for lv in ("Error", "Warning", "Info", "Debug", "Off"):
        text, t0, t1, _ = logged_run({"level": lv, "show_level": True})
        by_level[lv] = [x[0] for x in parse_log(text, True, False, t0, t1)]
    expect(by_level["Error"] == [] and by_level["Warning"] == [] and
           by_level["Off"] == [], f"quiet levels logged: {by_level}")
    expect(by_level["Info"] and set(by_level["Info"]) == {"INFO"},
           f"Info: {by_level['Info']}")
    expect("DEBUG" in by_level["Debug"] and
           by_level["Debug"].count("INFO") == len(by_level["Info"]),
           f"Debug: {by_level['Debug']} (Info: {by_level['Info']})")
    text, t0, t1, _ = logged_run({"level": "Debug", "show_log_origin": True,
                                  "module": "vmm"})
    lines = parse_log(text, False, True, t0, t1)
    expect(lines and all(f.startswith("src/vmm/") for _, f, _, _ in lines),
           f"module vmm: {lines}")
    text, t0, t1, _ = logged_run({"level": "Debug", "show_log_origin": True,
                                  "module": "boot"})
    lines = parse_log(text, False, True, t0, t1)
    expect(lines and all(f.startswith("src/boot/") for _, f, _, _ in lines)
           and any("ELF64" in m for _, _, _, m in lines),
           f"module boot: {lines}")
    w = Wisp()
    try:
        for body, says in (({"module": "../vmm"}, "module"),
                           ({"module": ""}, "module"),
                           ({"module": 3}, "module"),
                           ({"show_level": "yes"}, "show_level"),
                           ({"show_log_origin": 1}, "show_log_origin"),
                           ({"level": "Verbose"}, "level")):
            w.bad("PUT", "/logger", body, says=says)
        j = w.ok("GET", "/vm/config", want=200)
        expect(j["logger"] is None, f"refused bodies changed {j['logger']}")
        w.ok("PUT", "/logger", {"level": "Warning", "show_level": True,
                                "module": "devices/blk"})
        j = w.ok("GET", "/vm/config", want=200)
        expect(j["logger"] == {"log_path": None, "level": "Warning",
                               "show_level": True, "show_log_origin": False,
                               "module": "devices/blk"},
               f"/vm/config logger: {j['logger']}")
    finally:
        w.close()


def case_logger_fifo():
    """A FIFO as log_path gets the same parseable lines; with no reader
    the PUT is refused (a FIFO nobody reads cannot be opened
    non-blocking) and stderr keeps the messages."""
    text, t0, t1, _ = logged_run({"level": "Info", "show_level": True,
                                  "show_log_origin": True}, fifo=True)
    lines = parse_log(text, True, True, t0, t1)
    expect(any("signal 15" in m and lv == "INFO" and f == "src/vmm/vm.c"
               for lv, f, _, m in lines), f"FIFO lines: {lines}")
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "fifo")
        os.mkfifo(fifo)
        w = Wisp(["-v"])
        try:
            w.bad("PUT", "/logger", {"log_path": fifo}, says=fifo)
            boot(w, "tick")
            w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
            w.wait_out(r"tick 1\n")
            expect(w.stop() == 143, "SIGTERM exit")
            expect("wisp: signal 15" in w.stderr(),
                   f"stderr after a refused logger: {w.stderr()!r}")
        finally:
            w.close()


def case_metrics_periodic():
    """Lines arrive on the timer alone (the period shortened through the
    test-only WISP_METRICS_PERIOD_MS), and count the guest's 64 writes
    and its FLUSH while it runs; a bad period is refused at start."""
    p = subprocess.run([WISP, "--api-sock", "/nonexistent/s"],
                       env=dict(os.environ, WISP_METRICS_PERIOD_MS="0"),
                       capture_output=True, timeout=TIMEOUT)
    expect(p.returncode == 1 and b"WISP_METRICS_PERIOD_MS" in p.stderr,
           f"period 0: {p.returncode} {p.stderr!r}")
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(4 << 20)
        mpath = os.path.join(d, "metrics")
        open(mpath, "w").close()
        w = Wisp(env={"WISP_METRICS_PERIOD_MS": "200"})
        try:
            boot(w, "blkflush")
            w.ok("PUT", "/drives/d0", {"drive_id": "d0", "path_on_host": img,
                                       "is_root_device": False})
            w.ok("PUT", "/metrics", {"metrics_path": mpath})
            w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
            w.wait_out(r"blk-flushed\n")
            t0 = time.time()
            deadline = t0 + TIMEOUT
            lines = []
            while time.time() < deadline:
                with open(mpath) as f:
                    lines = [json.loads(x) for x in f.read().splitlines()]
                if sum(1 for m in lines if "block_d0" in m and
                       m["block_d0"]["flush_count"] == 1) >= 3:
                    break
                time.sleep(0.05)
            elapsed = time.time() - t0
            done = [m for m in lines if "block_d0" in m and
                    m["block_d0"]["flush_count"] == 1]
            expect(len(done) >= 3, f"{len(lines)} lines in {elapsed:.1f} s")
            b = done[-1]["block_d0"]
            expect(b["write_count"] == 64 and b["write_bytes"] == 64 * 4096
                   and b["read_count"] == 0 and b["execute_fails"] == 0,
                   f"block_d0 {b}")
            ts = [m["utc_timestamp_ms"] for m in done[-3:]]
            gaps = [y - x for x, y in zip(ts, ts[1:])]
            expect(all(150 <= g <= 2000 for g in gaps),
                   f"gaps between lines {gaps} ms, want about 200")
            # Nobody asked for a flush: only the timer wrote.
            expect(done[-1]["put_api_requests"]["actions_count"] == 1,
                   f"actions: {done[-1]['put_api_requests']}")
        finally:
            w.close()


# --- snapshots (docs/snapshot.md) ---


class Proc:
    """A wisp process that is not an API server (wisp restore, wisp
    snapshot), with its output collected like Wisp's."""

    def __init__(self, args):
        self.p = subprocess.Popen([WISP] + args, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.out, self.err = b"", b""
        self.lock = threading.Lock()
        self.readers = [threading.Thread(target=Wisp._read, args=(self, f, i),
                                         daemon=True)
                        for i, f in enumerate((self.p.stdout, self.p.stderr))]
        for t in self.readers:
            t.start()

    stdout = Wisp.stdout
    stderr = Wisp.stderr
    wait_out = Wisp.wait_out
    wait = Wisp.wait

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def tick_numbers(text):
    return [int(x) for x in re.findall(r"tick (\d+)\n", text)]


def consecutive(nums, what):
    expect(nums and nums == list(range(nums[0], nums[0] + len(nums))),
           f"{what}: ticks not consecutive: {nums[:5]}...{nums[-5:]}")


def snapshot(w, d, name="s", diff=False):
    """wisp snapshot (the CLI client: pause, create; --diff with diff) on
    w's socket; the paths of the state and memory files."""
    st, mem = os.path.join(d, name + ".state"), os.path.join(d, name + ".mem")
    p = subprocess.run([WISP, "snapshot", "--api-sock", w.sock] +
                       (["--diff"] if diff else []) +
                       ["--snapshot", st, "--mem", mem],
                       capture_output=True, timeout=TIMEOUT)
    expect(p.returncode == 0, f"wisp snapshot: exit {p.returncode}: "
           f"{p.stderr.decode(errors='replace')}\n{w.stderr()}")
    return st, mem


def case_snapshot_tick_round_trip():
    """The guest's counter (registers and RAM) goes on in a new wisp
    process after the first was killed, twice from the same files
    (clones), and the memory file is sparse."""
    w = Wisp()
    d = tempfile.TemporaryDirectory()
    clones = []
    try:
        boot(w, "tick", vcpu_count=1, mem_size_mib=256)
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 20\n")
        st, mem = snapshot(w, d.name)
        j = w.ok("GET", "/", want=200)
        expect(j["state"] == "Paused", f"after wisp snapshot: {j}")
        time.sleep(0.2)
        before = w.stdout()
        w.p.kill()
        w.wait()
        sz = os.stat(mem)
        expect(sz.st_size == 256 << 20, f"memory file {sz.st_size} bytes")
        expect(sz.st_blocks * 512 < 64 << 20,
               f"memory file not sparse: {sz.st_blocks * 512} bytes on disk")
        last = tick_numbers(before)[-1]
        for k in range(2):
            c = Proc(["restore", "--snapshot", st, "--mem", mem])
            clones.append(c)
            c.wait_out(rf"tick {last + 30}\n")
            nums = tick_numbers(before + c.stdout())
            consecutive(nums, f"clone {k}")
            expect(nums[0] == 0, f"clone {k}: first tick {nums[0]}")
            print(f"clone {k}: ticks 0..{last} before, {last + 1}.."
                  f"{nums[-1]} after the restore")
        for c in clones:
            c.p.send_signal(signal.SIGTERM)
            rc = c.wait()
            expect(rc == 128 + signal.SIGTERM, f"restored wisp exit {rc}")
    finally:
        w.close()
        for c in clones:
            c.close()
        d.cleanup()


def case_snapshot_during_blk_io():
    """A snapshot taken while the guest writes its disk, restored in a
    fresh wisp (the first one killed): the I/O finishes, every block
    reads back right in the guest, and the image has every block."""
    # About 15 ms a request on PVM in the sanitizer build.
    n = 384
    d = tempfile.TemporaryDirectory()
    img = os.path.join(d.name, "disk.img")
    with open(img, "wb") as f:
        f.truncate(n * 4096)
    w = Wisp()
    c = None
    try:
        boot(w, f"blkloop n={n}", vcpu_count=1, mem_size_mib=64)
        w.ok("PUT", "/drives/d0", {"drive_id": "d0", "path_on_host": img,
                                   "is_root_device": False,
                                   "is_read_only": False})
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"blkloop 64\n")
        st, mem = snapshot(w, d.name)
        time.sleep(0.2)
        before = w.stdout()
        w.p.kill()
        w.wait()
        expect("blkloop-verify" not in before,
               "the guest finished before the snapshot: make n larger")
        c = Proc(["restore", "--snapshot", st, "--mem", mem])
        rc = c.wait(timeout=60)
        out = before + c.stdout()
        expect(rc == 0 and "blkloop-verify: ok" in out,
               f"restored guest: exit {rc}\n{out[-500:]}\n{c.stderr()}")
        prog = [int(x) for x in re.findall(r"blkloop (\d+)\n", out)]
        expect(prog == list(range(0, n, 64)), f"progress lines {prog}")
        with open(img, "rb") as f:
            data = f.read()
        for r in range(n):
            want = bytes((r * 7 + i) % 251 for i in range(4096))
            expect(data[r * 4096:(r + 1) * 4096] == want,
                   f"image block {r} wrong")
        at = re.findall(r"blkloop (\d+)\n", before)[-1]
        print(f"snapshot after write {at} of {n}; restored, all {n} "
              f"writes verified in the guest and in the image")
    finally:
        w.close()
        if c:
            c.close()
        d.cleanup()


def restore_refused(st, mem, says):
    p = subprocess.run([WISP, "restore", "--snapshot", st, "--mem", mem],
                       capture_output=True, timeout=TIMEOUT)
    err = p.stderr.decode(errors="replace")
    expect(p.returncode == 1 and says in err,
           f"restore of a bad snapshot ({says}): exit {p.returncode}, "
           f"want 1: {err}")
    expect(p.stdout == b"", f"a refused restore ran the guest: {p.stdout}")


def case_snapshot_corrupt_refused():
    """Damaged, foreign and mismatched snapshots are refused with exit 1
    and a message naming the cause, before the guest runs."""
    w = Wisp()
    d = tempfile.TemporaryDirectory()
    try:
        boot(w, "tick", vcpu_count=2, mem_size_mib=64)
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 3\n")
        st, mem = snapshot(w, d.name)
        w.p.kill()
        w.wait()
        good = open(st, "rb").read()

        def variant(name, data):
            path = os.path.join(d.name, name)
            with open(path, "wb") as f:
                f.write(data)
            return path

        restore_refused(variant("magic", b"X" + good[1:]), mem, "magic")
        restore_refused(variant("version", good[:8] + b"\x63\0\0\0" +
                                good[12:]), mem, "version")
        mid = len(good) // 2
        restore_refused(variant("crc", good[:mid] +
                                bytes([good[mid] ^ 1]) + good[mid + 1:]),
                        mem, "CRC")
        restore_refused(variant("trunc", good[:len(good) - 40]), mem,
                        "truncated")
        restore_refused(variant("empty", b""), mem, "shorter")
        restore_refused(variant("tail", good + b"\0"), mem, "after the END")
        # A memory file that does not belong to this state file.
        small = variant("small.mem", b"\0" * 4096)
        restore_refused(st, small, "memory file")
        restore_refused(st, os.path.join(d.name, "none.mem"), "memory file")
        restore_refused(os.path.join(d.name, "none.state"), mem, "snapshot")
        # The Uffd backend is somebody else's; refused, not faked.
        p = subprocess.run([WISP, "restore", "--snapshot", st, "--mem", mem,
                            "--mem-backend", "uffd"],
                           capture_output=True, timeout=TIMEOUT)
        expect(p.returncode == 1, f"uffd backend: exit {p.returncode}")
    finally:
        w.close()
        d.cleanup()


def case_snapshot_api_rules():
    """PUT /snapshot/create only while Paused; /snapshot/load only
    before InstanceStart and any boot resource; bodies are strict; a load
    with resume_vm false starts paused and Resumed lets it run."""
    d = tempfile.TemporaryDirectory()
    w = Wisp()
    w2 = w3 = None
    try:
        body = {"snapshot_type": "Full",
                "snapshot_path": os.path.join(d.name, "s.state"),
                "mem_file_path": os.path.join(d.name, "s.mem")}
        w.bad("PUT", "/snapshot/create", body, says="paused")
        boot(w, "tick", vcpu_count=1, mem_size_mib=64)
        w.bad("PUT", "/snapshot/load",
              {"snapshot_path": body["snapshot_path"],
               "mem_backend": {"backend_type": "File",
                               "backend_path": body["mem_file_path"]}},
              says="boot-specific")
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 3\n")
        w.bad("PUT", "/snapshot/create", body, says="paused")
        w.ok("PATCH", "/vm", {"state": "Paused"})
        for b, says in (
                (dict(body, snapshot_type="Diff"), "Diff"),
                (dict(body, snapshot_type="Half"), "snapshot_type"),
                (dict(body, bogus=1), "bogus"),
                ({"snapshot_path": body["snapshot_path"]}, "mem_file_path"),
                (dict(body, snapshot_path=3), "snapshot_path"),
                (dict(body, snapshot_path=""), "snapshot_path")):
            w.bad("PUT", "/snapshot/create", b, says=says)
        w.bad("PUT", "/snapshot/create",
              dict(body, snapshot_path="/nonexistent/dir/s"),
              says="/nonexistent/dir/s")
        w.ok("PUT", "/snapshot/create", body)
        w.bad("PUT", "/snapshot/load",
              {"snapshot_path": body["snapshot_path"],
               "mem_file_path": body["mem_file_path"]}, says="started")
        w.ok("PATCH", "/vm", {"state": "Resumed"})
        w.wait_out(r"tick 10\n")
        before = w.stdout()
        w.close()

        w2 = Wisp()
        load = {"snapshot_path": body["snapshot_path"],
                "mem_backend": {"backend_type": "File",
                                "backend_path": body["mem_file_path"]},
                "enable_diff_snapshots": False, "resume_vm": False}
        for b, says in (
                (dict(load, mem_backend={"backend_type": "Disk",
                                         "backend_path": "x"}),
                 "backend_type"),
                (dict(load, mem_backend={"backend_type": "File"}),
                 "backend_path"),
                (dict(load, mem_file_path="x"), "exclude"),
                (dict(load, resume_vm="yes"), "resume_vm"),
                ({"mem_file_path": "x"}, "snapshot_path")):
            w2.bad("PUT", "/snapshot/load", b, says=says)
        w2.ok("PUT", "/snapshot/load", load)
        j = w2.ok("GET", "/", want=200)
        expect(j["state"] == "Paused", f"after load, resume_vm false: {j}")
        time.sleep(0.3)
        expect(not tick_numbers(w2.stdout()),
               f"a paused restore ran: {w2.stdout()[-200:]}")
        w2.bad("PUT", "/actions", {"action_type": "InstanceStart"},
               says="started")
        # A snapshot of the restored, still paused VM: a second
        # generation restores too.
        st2 = os.path.join(d.name, "g2.state")
        mem2 = os.path.join(d.name, "g2.mem")
        w2.ok("PUT", "/snapshot/create",
              {"snapshot_path": st2, "mem_file_path": mem2})
        w2.ok("PATCH", "/vm", {"state": "Resumed"})
        w2.wait_out(r"tick 20\n")
        nums = tick_numbers(w2.stdout())
        first = tick_numbers(before)
        expect(nums[0] <= first[-1] + 1 and nums[0] >= 3,
               f"restored ticks start at {nums[0]}")
        consecutive(nums, "restored via the API")

        # resume_vm true: running at once; from the second generation.
        w3 = Wisp()
        w3.ok("PUT", "/snapshot/load",
              dict(load, resume_vm=True, snapshot_path=st2,
                   mem_backend={"backend_type": "File",
                                "backend_path": mem2}))
        w3.wait_out(r"tick 20\n")
        nums3 = tick_numbers(w3.stdout())
        expect(nums3[0] == nums[0], f"second generation starts at "
               f"{nums3[0]}, the first at {nums[0]}")
        consecutive(nums3, "second generation")
    finally:
        w.close()
        for x in (w2, w3):
            if x:
                x.close()
        d.cleanup()


def snapshot_merge(d, diff, base_mem, out):
    """wisp snapshot-merge of the Diff snapshot diff (name in d) onto
    base_mem; the state file that now goes with base_mem."""
    st = os.path.join(d, out + ".state")
    p = subprocess.run([WISP, "snapshot-merge",
                        "--snapshot", os.path.join(d, diff + ".state"),
                        "--mem", os.path.join(d, diff + ".mem"),
                        "--base-mem", base_mem, "--out-snapshot", st],
                       capture_output=True, timeout=TIMEOUT)
    expect(p.returncode == 0, f"wisp snapshot-merge: exit {p.returncode}: "
           f"{p.stderr.decode(errors='replace')}")
    return st


def case_snapshot_diff():
    """Full, then Diff snapshots while the guest writes its disk (so the
    device writes guest RAM between them: status bytes, used rings): a
    Diff's memory file holds only the pages written since the snapshot
    before it, a Diff is refused until merged, and the merged files
    restore a guest that finishes its I/O and verifies every block; a VM
    loaded with enable_diff_snapshots takes a Diff again."""
    n = 640
    d = tempfile.TemporaryDirectory()
    img = os.path.join(d.name, "disk.img")
    with open(img, "wb") as f:
        f.truncate(n * 4096)
    w = Wisp()
    w2 = c = None
    try:
        boot(w, f"blkloop n={n}", vcpu_count=1, mem_size_mib=64,
             track_dirty_pages=True)
        j = w.ok("GET", "/machine-config", want=200)
        expect(j["track_dirty_pages"] is True, f"machine-config {j}")
        w.ok("PUT", "/drives/d0", {"drive_id": "d0", "path_on_host": img,
                                   "is_root_device": False,
                                   "is_read_only": False})
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"blkloop 64\n")
        base_st, base_mem = snapshot(w, d.name, "base")
        w.ok("PATCH", "/vm", {"state": "Resumed"})
        w.wait_out(r"blkloop 192\n")
        st1, mem1 = snapshot(w, d.name, "d1", diff=True)
        time.sleep(0.2)
        before = w.stdout()
        w.p.kill()
        w.wait()
        expect("blkloop-verify" not in before,
               "the guest finished before the Diff: make n larger")
        full_kib = os.stat(base_mem).st_blocks // 2
        diff_kib = os.stat(mem1).st_blocks // 2
        expect(os.stat(mem1).st_size == 64 << 20,
               f"Diff memory file is {os.stat(mem1).st_size} bytes")
        expect(0 < diff_kib < full_kib // 2,
               f"Diff memory file {diff_kib} KiB on disk against the "
               f"Full's {full_kib} KiB")
        restore_refused(st1, mem1, "Diff snapshot")
        merged = os.path.join(d.name, "merged.mem")
        shutil.copyfile(base_mem, merged)
        m1 = snapshot_merge(d.name, "d1", merged, "m1")
        restore_refused(st1, merged, "Diff snapshot")

        # The merged pair through the API, with tracking on again.
        w2 = Wisp()
        w2.ok("PUT", "/snapshot/load",
              {"snapshot_path": m1,
               "mem_backend": {"backend_type": "File",
                               "backend_path": merged},
               "enable_diff_snapshots": True, "resume_vm": True})
        w2.wait_out(r"blkloop 320\n")
        st2, mem2 = snapshot(w2, d.name, "d2", diff=True)
        time.sleep(0.2)
        mid = w2.stdout()
        w2.p.kill()
        w2.wait()
        expect("blkloop-verify" not in mid,
               "the guest finished before the second Diff")
        m2 = snapshot_merge(d.name, "d2", merged, "m2")
        c = Proc(["restore", "--snapshot", m2, "--mem", merged])
        rc = c.wait(timeout=60)
        out = before + mid + c.stdout()
        expect(rc == 0 and "blkloop-verify: ok" in out,
               f"guest restored from two merged Diffs: exit {rc}\n"
               f"{out[-500:]}\n{c.stderr()}")
        with open(img, "rb") as f:
            data = f.read()
        for r in range(n):
            want = bytes((r * 7 + i) % 251 for i in range(4096))
            expect(data[r * 4096:(r + 1) * 4096] == want,
                   f"image block {r} wrong")
        print(f"Full {full_kib} KiB on disk, Diff {diff_kib} KiB; "
              f"two Diffs merged, restored, all {n} blocks verified")
    finally:
        w.close()
        if w2:
            w2.close()
        if c:
            c.close()
        d.cleanup()


def build_bin(*parts):
    """A binary of the build tree GUEST belongs to."""
    p = os.path.normpath(os.path.join(os.path.dirname(GUEST), "..", "..",
                                      *parts))
    expect(os.path.exists(p), f"{p} not built")
    return p


def case_snapshot_load_uffd():
    """PUT /snapshot/load with mem_backend Uffd against a running
    wisp-uffd (no prefetch, so every page the guest touches is a fault
    it serves): the restored guest's counter goes on from the snapshot,
    and the handler reports the faults it served."""
    d = tempfile.TemporaryDirectory()
    w = Wisp()
    w2 = h = None
    try:
        boot(w, "tick", vcpu_count=1, mem_size_mib=64)
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 5\n")
        st, mem = snapshot(w, d.name)
        time.sleep(0.2)
        before = w.stdout()
        w.p.kill()
        w.wait()
        last = tick_numbers(before)[-1]
        sock = os.path.join(d.name, "uffd.sock")
        h = subprocess.Popen([build_bin("src", "servers", "wisp-uffd"),
                              "--socket", sock, "--mem", mem,
                              "--no-prefetch"],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        deadline = time.time() + TIMEOUT
        while not os.path.exists(sock) and time.time() < deadline:
            expect(h.poll() is None, f"wisp-uffd exited {h.returncode}")
            time.sleep(0.01)
        w2 = Wisp()
        w2.ok("PUT", "/snapshot/load",
              {"snapshot_path": st,
               "mem_backend": {"backend_type": "Uffd",
                               "backend_path": sock},
               "resume_vm": True})
        j = w2.ok("GET", "/", want=200)
        expect(j["state"] == "Running", f"after a Uffd load: {j}")
        w2.wait_out(rf"tick {last + 10}\n")
        nums = tick_numbers(w2.stdout())
        expect(nums[0] <= last + 1 and nums[0] >= 1,
               f"restored ticks start at {nums[0]}, snapshot at {last}")
        consecutive(nums, "restored through wisp-uffd")
        rc = w2.stop()
        expect(rc == 128 + signal.SIGTERM, f"restored wisp exit {rc}")
        try:
            herr = h.communicate(timeout=TIMEOUT)[1].decode(
                errors="replace")
        except subprocess.TimeoutExpired:
            raise Fail("wisp-uffd did not end with its VMM")
        m = re.search(r"(\d+) faults served", herr)
        expect(h.returncode == 0 and m and int(m.group(1)) >= 3,
               f"wisp-uffd: exit {h.returncode}: {herr}")
        print(f"Uffd load: ticks {nums[0]}..{nums[-1]} after the snapshot "
              f"at {last}; wisp-uffd: {m.group(0)}")
    finally:
        w.close()
        if w2:
            w2.close()
        if h and h.poll() is None:
            h.kill()
            h.wait()
        d.cleanup()


def case_snapshot_spawn_refused():
    """A spawned server other than wisp's own is not saved: the state
    file would carry a command line for the restore to run."""
    srv = build_bin("tests", "servers", "wisp-ioreq-test")
    d = tempfile.TemporaryDirectory()
    w = Wisp()
    try:
        w.ok("PUT", "/ioreq-servers/s1", {"spawn": srv})
        boot(w, "tick", vcpu_count=1, mem_size_mib=64)
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 3\n")
        w.ok("PATCH", "/vm", {"state": "Paused"})
        st = os.path.join(d.name, "s.state")
        w.bad("PUT", "/snapshot/create",
              {"snapshot_path": st,
               "mem_file_path": os.path.join(d.name, "s.mem")},
              says="only wisp's own servers")
        expect(not os.path.exists(st), "a refused create wrote a file")
    finally:
        w.close()
        d.cleanup()


def with_server_state(st, out, edit):
    """Writes st to out with edit(bytes) -> bytes applied to the first
    IOREQ server section's state blob (type 7: u32 index, u32 length,
    the state), its CRC recomputed: a state file whose only fault is
    what the server is given."""
    import struct
    import zlib
    b = bytearray(open(st, "rb").read())
    o = 16
    while o + 16 <= len(b):
        t, _, n = struct.unpack_from("<IIQ", b, o)
        if t == 7:
            p = bytes(b[o + 16:o + 16 + n])
            blob = edit(p[8:])
            p = p[:4] + struct.pack("<I", len(blob)) + blob
            b[o:o + 16 + n] = struct.pack("<IIQ", 7, zlib.crc32(p),
                                          len(p)) + p
            open(out, "wb").write(bytes(b))
            return
        if t == 0:
            break
        o += 16 + n
    raise Fail(f"{st}: no IOREQ server section")


def oop_blk_case(attached):
    """The body of snapshot_oop_blk and snapshot_oop_blk_attached."""
    n = 384
    d = tempfile.TemporaryDirectory()
    img = os.path.join(d.name, "disk.img")
    with open(img, "wb") as f:
        f.truncate(n * 4096)
    blk = build_bin("src", "servers", "wisp-blk")
    srv = None
    w = Wisp()
    c = None
    try:
        if attached:
            sock = os.path.join(d.name, "blk.sock")
            srv = subprocess.Popen([blk, "--socket", sock, "--persist",
                                    "--disk", f"path={img}"],
                                   stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
            deadline = time.time() + TIMEOUT
            while not os.path.exists(sock) and time.time() < deadline:
                time.sleep(0.01)
            w.ok("PUT", "/ioreq-servers/b0", {"socket": sock})
        else:
            w.ok("PUT", "/ioreq-servers/b0",
                 {"spawn": f"{blk} --disk path={img}"})
        boot(w, f"blkloop n={n}", vcpu_count=1, mem_size_mib=64)
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"blkloop 64\n")
        st, mem = snapshot(w, d.name)
        time.sleep(0.2)
        before = w.stdout()
        w.p.kill()
        w.wait()
        expect("blkloop-verify" not in before,
               "the guest finished before the snapshot: make n larger")
        # A state the server refuses (another device's ID): the restore
        # fails with the server's message, the guest never runs.
        bad = os.path.join(d.name, "bad.state")
        with_server_state(st, bad, lambda b: b[:4] + bytes([4, 0, 0, 0]) +
                          b[8:])
        p = subprocess.run([WISP, "restore", "--snapshot", bad, "--mem",
                            mem], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
        err = p.stderr.decode(errors="replace")
        expect(p.returncode == 1 and "refused" in err and "device 4" in err
               and not p.stdout,
               f"restore with a refused server state: exit "
               f"{p.returncode}: {err}")
        refusal = [x for x in err.splitlines() if "refused" in x][0]
        c = Proc(["restore", "--snapshot", st, "--mem", mem])
        rc = c.wait(timeout=90)
        out = before + c.stdout()
        expect(rc == 0 and "blkloop-verify: ok" in out,
               f"restored guest: exit {rc}\n{out[-500:]}\n{c.stderr()}")
        prog = [int(x) for x in re.findall(r"blkloop (\d+)\n", out)]
        expect(prog == list(range(0, n, 64)), f"progress lines {prog}")
        with open(img, "rb") as f:
            data = f.read()
        for r in range(n):
            want = bytes((r * 7 + i) % 251 for i in range(4096))
            expect(data[r * 4096:(r + 1) * 4096] == want,
                   f"image block {r} wrong")
        if attached:
            srv.send_signal(signal.SIGTERM)
            serr = srv.communicate(timeout=TIMEOUT)[1].decode(
                errors="replace")
            # The snapshotted VM, the refused restore, the good one;
            # SIGTERM while waiting for the next VMM exits 128 + 15.
            k = serr.count("serving window")
            expect(srv.returncode == 128 + signal.SIGTERM and k == 3,
                   f"wisp-blk --persist: exit {srv.returncode}, {k} VMs "
                   f"served:\n{serr}")
        else:
            expect("wisp-blk: serving window" in c.stderr(),
                   f"no wisp-blk in the restored VM:\n{c.stderr()}")
        at = re.findall(r"blkloop (\d+)\n", before)[-1]
        print(f"snapshot after write {at} of {n}; a changed server state "
              f"refused ({refusal.strip()[:150]}); restored with wisp-blk "
              f"{'attached again' if attached else 'spawned again'}, all "
              f"{n} writes verified in the guest and the image")
    finally:
        w.close()
        if c:
            c.close()
        if srv and srv.poll() is None:
            srv.kill()
            srv.wait()
        d.cleanup()


def case_snapshot_oop_blk():
    """A disk served by a spawned wisp-blk, snapshotted while the guest
    writes it: the server finishes its requests in flight and gives its
    device's state (transport registers, queue addresses and indices)
    for the state file; wisp is killed (its wisp-blk dies with it); a
    state file whose server state names another device is refused with
    the server's message; a fresh wisp restore spawns wisp-blk again,
    gives it the state, and the guest's I/O goes on: every block
    verifies in the guest and in the image."""
    oop_blk_case(False)


def case_snapshot_oop_blk_attached():
    """The same with wisp-blk --persist attached by its socket: the
    restore connects to it again and loads the state into the fresh
    device it serves."""
    oop_blk_case(True)


def case_snapshot_vsock():
    """A VM with vsock is saved (it was refused before) and its device
    comes back from the state file alone: the restore refuses the dead
    wisp's socket still on the path (a message naming it), and once it
    is removed the restored VM listens there again (a CONNECT to the
    driverless test guest ends in the bounded wait, as in vsock_device)
    and removes it at exit."""
    d = tempfile.TemporaryDirectory()
    w = Wisp()
    c = None
    try:
        uds = os.path.join(d.name, "v.sock")
        boot(w, "tick", vcpu_count=1, mem_size_mib=64)
        w.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": uds})
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"tick 3\n")
        st, mem = snapshot(w, d.name)
        before = w.stdout()
        w.p.kill()
        w.wait()
        expect(os.path.exists(uds), "SIGKILL removed the socket")
        p = subprocess.run([WISP, "restore", "--snapshot", st, "--mem", mem],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIMEOUT)
        err = p.stderr.decode(errors="replace")
        expect(p.returncode != 0 and uds in err,
               f"restore over the old socket: exit {p.returncode}: {err}")
        os.unlink(uds)
        last = tick_numbers(before)[-1]
        c = Proc(["restore", "--snapshot", st, "--mem", mem])
        c.wait_out(rf"tick {last + 3}\n")
        expect(stat.S_ISSOCK(os.stat(uds).st_mode),
               f"{uds} is not a socket after the restore")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(uds)
        s.sendall(b"CONNECT 52\n")
        got = s.recv(64)
        s.close()
        expect(got == b"", f"CONNECT to a driverless guest: {got!r}")
        c.p.send_signal(signal.SIGTERM)
        rc = c.wait()
        expect(rc == 128 + signal.SIGTERM, f"restored wisp exit {rc}")
        expect(not os.path.exists(uds), f"{uds} left behind at exit")
        print(f"restored: ticks {last + 1}..{tick_numbers(c.stdout())[-1]},"
              f" the socket back at {uds}")
    finally:
        w.close()
        if c:
            c.close()
        d.cleanup()


def case_snapshot_iommu():
    """A disk behind the virtio-iommu: the snapshot keeps the guest's
    domain and its mappings (new global IDs on restore), so the restored
    guest's DMA through its IOVAs goes on working."""
    n = 160
    d = tempfile.TemporaryDirectory()
    img = os.path.join(d.name, "disk.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    w = Wisp()
    c = None
    try:
        boot(w, f"iommuloop n={n}", vcpu_count=1, mem_size_mib=64)
        w.ok("PUT", "/iommu", {"enabled": True})
        w.ok("PUT", "/drives/d0", {"drive_id": "d0", "path_on_host": img,
                                   "is_root_device": False,
                                   "is_read_only": False})
        w.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        w.wait_out(r"iommuloop 32\n")
        st, mem = snapshot(w, d.name)
        time.sleep(0.2)
        before = w.stdout()
        w.p.kill()
        w.wait()
        expect("iommuloop-done" not in before and
               "iommuloop-failed" not in before,
               f"the guest ended before the snapshot: {before[-300:]}")
        c = Proc(["restore", "--snapshot", st, "--mem", mem])
        rc = c.wait(timeout=60)
        out = before + c.stdout()
        expect(rc == 0 and "iommuloop-done ok" in out,
               f"restored guest: exit {rc}\n{out[-500:]}\n{c.stderr()}")
        prog = [int(x) for x in re.findall(r"iommuloop (\d+)\n", out)]
        expect(prog == list(range(0, n, 16)), f"progress lines {prog}")
        at = re.findall(r"iommuloop (\d+)\n", before)[-1]
        print(f"snapshot after round {at} of {n}; the restored guest's "
              f"DMA through the IOMMU finished all {n}")
    finally:
        w.close()
        if c:
            c.close()
        d.cleanup()


if __name__ == "__main__":
    sys.exit(run_main(globals(), __doc__))
