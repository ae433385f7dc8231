#!/usr/bin/env python3
"""End-to-end tests of wisp on the host's /dev/kvm with the freestanding
test guest (works on PVM and on hardware KVM).

usage: test_direct.py WISP GUEST_ELF CASE   (or --list)
Each case runs wisp as a user would and checks its console output, its
exit status and its error messages.
"""
import fcntl
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from cases import Fail, Skip, run_main  # noqa: E402

WISP, GUEST = None, None
TIMEOUT = 20


def run(args, stdin=None, timeout=TIMEOUT):
    p = subprocess.run([WISP] + args, input=stdin, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


def guest(test, *extra, stdin=None):
    return run(["run", "--kernel", GUEST, "--debug-exit",
                "--cmdline", "test=" + test] + list(extra), stdin=stdin)


def expect(cond, what, out="", err=""):
    if not cond:
        raise Fail(f"{what}\n--- stdout ---\n{out}\n--- stderr ---\n{err}")


def value(out, key):
    for line in out.splitlines():
        if line.startswith(key + ": "):
            return line[len(key) + 2:].strip()
    raise Fail(f"no '{key}:' line in output:\n{out}")


def wait_spinning(p):
    """Console output of a test=spin guest up to its "spinning" line (or
    EOF, or TIMEOUT)."""
    buf = b""
    deadline = time.time() + TIMEOUT
    while b"spinning" not in buf and time.time() < deadline:
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
    return buf


def case_hello():
    rc, out, err = guest("hello")
    expect(rc == 0, f"exit status {rc}, want 0", out, err)
    expect("wisp-test-guest: done" in out, "guest did not finish", out, err)
    cmd = value(out, "cmdline")
    expect("console=ttyS0" in cmd and "reboot=k" in cmd and
           cmd.endswith("test=hello"), f"command line '{cmd}'", out, err)


def case_cpuid_async_pf():
    """CPUID 0x40000001 as the guest sees it: KVM's signature, async PF
    (bit 4), its nested delivery (10) and the page-ready interrupt (14)
    by default; --async-pf off drops exactly those three bits."""
    apf = (1 << 4) | (1 << 10) | (1 << 14)
    rc, out, err = guest("cpuid")
    expect(rc == 0, f"exit status {rc}", out, err)
    expect(value(out, "kvm-sig") == "KVMKVMKVM", "signature", out, err)
    on = int(value(out, "kvm-features"))
    rc, out, err = guest("cpuid", "--async-pf", "off")
    expect(rc == 0, f"exit status {rc} with --async-pf off", out, err)
    off = int(value(out, "kvm-features"))
    # What KVM offers through PVM may lack ASYNC_PF_VMEXIT; the others
    # are KVM's on every 6.x host.
    expect(on & (1 << 4) and on & (1 << 14),
           f"features {on:#x}: async PF not offered", out, err)
    expect(off == on & ~apf, f"off {off:#x}, on {on:#x}", out, err)
    rc, out, err = guest("cpuid", "--async-pf", "maybe")
    expect(rc != 0 and "--async-pf" in err, "bad value accepted", out, err)


def case_memory_e820():
    for mib in (16, 128, 1024):
        rc, out, err = guest("hello", "--memory", str(mib))
        expect(rc == 0, f"--memory {mib}: exit {rc}", out, err)
        kib = int(value(out, "e820-ram-kib"))
        # All of RAM but the 385 KiB legacy hole [0x9fc00, 1 MiB).
        expect(kib == mib * 1024 - 385, f"--memory {mib}: e820 RAM {kib} KiB",
               out, err)


def case_memory_above_4g():
    # 3.5 GiB of RAM: the part above the MMIO hole is remapped above 4 GiB
    # and must still be counted in e820.
    rc, out, err = guest("hello", "--memory", "3584")
    expect(rc == 0, f"exit {rc}", out, err)
    kib = int(value(out, "e820-ram-kib"))
    expect(kib == 3584 * 1024 - 385, f"e820 RAM {kib} KiB", out, err)


def case_no_default_cmdline():
    rc, out, err = run(["run", "--kernel", GUEST, "--debug-exit",
                        "--no-default-cmdline", "--cmdline", "test=hello x=1"])
    expect(rc == 0, f"exit {rc}", out, err)
    expect(value(out, "cmdline") == "test=hello x=1", "command line", out, err)


def case_serial_input():
    rc, out, err = guest("echo", stdin=b"ping from the host\n")
    expect(rc == 0, f"exit {rc}", out, err)
    expect("echo: ping from the host" in out, "echoed line missing", out, err)


def case_initrd():
    data = os.urandom(300000)
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xffffffff
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        rc, out, err = guest("initrd", "--initrd", f.name, "--memory", "64")
    expect(rc == 0, f"exit {rc}", out, err)
    addr = int(value(out, "initrd-addr"))
    expect(int(value(out, "initrd-size")) == len(data), "initrd size", out, err)
    expect(int(value(out, "initrd-fnv1a")) == h, "initrd content hash", out, err)
    expect(addr % 4096 == 0 and addr + len(data) <= 64 << 20 and
           addr >= 1 << 20, f"initrd placed at {addr:#x}", out, err)


def case_smp_mptable():
    for n in (1, 2, 4, 8):
        rc, out, err = guest("mp", "--cpus", str(n))
        expect(rc == 0, f"--cpus {n}: exit {rc}", out, err)
        expect(int(value(out, "mp-cpus")) == n, f"--cpus {n}: MP table",
               out, err)


def case_exit_status():
    rc, out, err = guest("exit=7")
    expect(rc == 7, f"exit {rc}, want 7 from the debug-exit port", out, err)


def case_guest_crash():
    rc, out, err = guest("fault")
    expect(rc in (3, 4), f"exit {rc}, want 3 (crash) or 4 (PVM)", out, err)
    expect("vCPU 0" in err and "rip " in err and "cr3 " in err,
           "no register dump on stderr", out, err)


def case_sigterm():
    for sig, code in ((signal.SIGTERM, 128 + 15), (signal.SIGINT, 128 + 2)):
        p = subprocess.Popen([WISP, "run", "--kernel", GUEST, "--cpus", "2",
                              "--debug-exit", "--cmdline", "test=spin"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        buf = wait_spinning(p)
        p.send_signal(sig)
        try:
            rc = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            raise Fail(f"{sig.name}: wisp did not stop within 10 s")
        expect(rc == code, f"{sig.name}: exit {rc}, want {code}",
               buf.decode(), p.stderr.read().decode())


def case_serial_file_and_none():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "console.log")
        rc, out, err = guest("hello", "--serial", "file:" + path)
        expect(rc == 0 and out == "", f"exit {rc}, stdout '{out}'", out, err)
        with open(path) as f:
            log = f.read()
        expect("wisp-test-guest: done" in log, "console file", log, err)
    rc, out, err = guest("hello", "--serial", "none")
    expect(rc == 0 and out == "", f"--serial none: exit {rc}", out, err)


def case_bad_arguments():
    bad = [
        (["run"], "--kernel PATH is required"),
        (["run", "--kernel", GUEST, "--cpus", "0"], "--cpus '0'"),
        (["run", "--kernel", GUEST, "--cpus", "999"], "--cpus 999"),
        (["run", "--kernel", GUEST, "--memory", "abc"], "--memory 'abc'"),
        (["run", "--kernel", GUEST, "--serial", "tcp:1"], "--serial 'tcp:1'"),
        (["run", "--kernel", GUEST, "--bogus"], "unknown option '--bogus'"),
        (["run", "--kernel", "/nonexistent/vmlinux"],
         "kernel '/nonexistent/vmlinux'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["run", "--kernel", GUEST, "--disk", "readonly=on"], "path=FILE"),
        (["run", "--kernel", GUEST, "--disk", "path=/x,bogus=1"], "bogus"),
        (["run", "--kernel", GUEST, "--disk", "path=/nonexistent/d.img"],
         "/nonexistent/d.img"),
        (["run", "--kernel", GUEST, "--console", "vga"], "--console 'vga'"),
        (["run", "--kernel", GUEST, "--memory", "67108864"], "memory"),
    ]
    for args, msg in bad:
        rc, out, err = run(args)
        expect(rc == 1, f"{args}: exit {rc}, want 1", out, err)
        expect(msg in err and err.startswith("wisp: "),
               f"{args}: message should mention {msg!r}", out, err)


def case_bad_images():
    with tempfile.TemporaryDirectory() as d:
        junk = os.path.join(d, "junk")
        with open(junk, "wb") as f:
            f.write(b"\x12\x34\x56\x78" + b"\0" * 4096)
        rc, out, err = run(["run", "--kernel", junk])
        expect(rc == 1 and "not an ELF or bzImage" in err and "0x" in err,
               f"junk kernel: exit {rc}", out, err)
        empty = os.path.join(d, "empty")
        open(empty, "wb").close()
        rc, out, err = run(["run", "--kernel", empty])
        expect(rc == 1 and f"kernel '{empty}'" in err,
               f"empty kernel: exit {rc}", out, err)
        big = os.path.join(d, "big-initrd")
        with open(big, "wb") as f:
            f.truncate(40 << 20)
        rc, out, err = run(["run", "--kernel", GUEST, "--memory", "16",
                            "--initrd", big])
        expect(rc == 1 and f"initrd '{big}'" in err and
               ("fit" in err or "larger than" in err),
               f"oversized initrd: exit {rc}", out, err)
        rc, out, err = run(["run", "--kernel", GUEST,
                            "--cmdline", "x" * 5000])
        expect(rc == 1 and "command line" in err,
               f"long command line: exit {rc}", out, err)


def linux_kernel():
    k = os.environ.get("WISP_LINUX_KERNEL")
    env = os.path.join(os.environ.get("WISP_CACHE", "/var/cache/wisp"),
                       "rig.env")
    if not k and os.path.exists(env):
        for line in open(env):
            if line.startswith("L2_BZIMAGE="):
                k = line.split("=", 1)[1].strip().strip("'")
    if not k or not os.path.exists(k):
        raise Fail("no Linux kernel: set WISP_LINUX_KERNEL or run "
                   "tests/rig/setup.sh first")
    return k


def is_pvm():
    if os.path.exists("/sys/module/kvm_pvm"):
        return True
    flags = [l for l in open("/proc/cpuinfo") if l.startswith("flags")]
    return not any(" vmx" in l or " svm" in l for l in flags[:1])


def case_pvh_entry():
    """The PVH entry (32-bit protected mode, paging off, ebx = start
    info) with a freestanding PVH guest."""
    peer = os.path.join(os.path.dirname(GUEST), "pvh-peer.elf")
    rc, out, err = run(["run", "--kernel", peer, "--debug-exit"])
    expect(rc == 0 and "wisp-test-guest: up" in out, f"exit {rc}", out, err)
    # The guest reads CR0 and ebx itself at its 32-bit entry point.
    expect(value(out, "pvh-paging") == "off", "paging on at the PVH entry",
           out, err)
    # wisp's layout puts hvm_start_info at 0x6000 (arch/x86/layout.h).
    expect(value(out, "pvh-ebx") == "0x00006000",
           "ebx is not the start_info address", out, err)
    expect(value(out, "pvh-start-info") == "magic ok",
           "ebx does not point at an hvm_start_info", out, err)
    expect("PVM" not in err, "PVM warning for a guest that needs none",
           out, err)


def linux_vmlinux():
    k = linux_kernel()
    v = os.path.join(os.path.dirname(k), "vmlinux")
    if not os.path.exists(v):
        raise Fail(f"no vmlinux next to {k}")
    return v


def case_linux_direct_pvh():
    """The project's vmlinux through its PVH entry on the host's KVM: on
    PVM it runs until its first exception, then wisp exits 4 and says
    why; on hardware KVM it boots (and, without an initrd, panics and
    reboots: exit 0)."""
    p = subprocess.run([WISP, "run", "--kernel", linux_vmlinux(), "--memory",
                        "256"], capture_output=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    out, err = p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")
    expect("Linux version" in out, "kernel printed nothing", out, err)
    if is_pvm():
        expect(p.returncode == 4 and "is PVM" in err and
               "tests/rig/run.sh" in err and "rip " in err,
               f"exit {p.returncode}, want 4 with the PVM explanation",
               out, err)
    else:
        expect(p.returncode == 0, f"exit {p.returncode}", out, err)


def case_linux_direct():
    """A real Linux bzImage on the host's KVM: on hardware KVM it boots
    (no initrd: it panics looking for a root fs and panic=1 reboots, exit
    0); on PVM wisp must say why it cannot, up front."""
    k = linux_kernel()
    p = subprocess.Popen([WISP, "run", "--kernel", k, "--memory", "256"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=8 if is_pvm() else 120)
    except subprocess.TimeoutExpired:
        p.terminate()
        out, err = p.communicate(timeout=10)
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    if is_pvm():
        expect("is PVM" in err and "tests/rig/run.sh" in err,
               "no PVM explanation on stderr", out, err)
        expect(p.returncode in (4, 143), f"exit {p.returncode}", out, err)
    else:
        expect("Linux version" in out and p.returncode == 0,
               f"no Linux boot (exit {p.returncode})", out, err)


def case_terminal():
    """Raw mode on a terminal while the VM runs, restored after a stop by
    signal and after Ctrl-A x; the escape is not passed to the guest."""
    import pty
    import termios
    for how, want in (("sigterm", 143), ("ctrl-a-x", 130)):
        master, slave = pty.openpty()
        before = termios.tcgetattr(slave)
        p = subprocess.Popen([WISP, "run", "--kernel", GUEST, "--debug-exit",
                              "--cmdline", "test=spin"], stdin=slave,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        buf = wait_spinning(p)
        during = termios.tcgetattr(slave)
        expect(not (during[3] & termios.ICANON) and
               not (during[3] & termios.ECHO), f"{how}: not raw while running")
        if how == "sigterm":
            p.send_signal(signal.SIGTERM)
        else:
            os.write(master, b"\x01x")
        try:
            rc = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            raise Fail(f"{how}: wisp did not stop")
        after = termios.tcgetattr(slave)
        os.close(master)
        os.close(slave)
        expect(rc == want, f"{how}: exit {rc}, want {want}",
               buf.decode(), p.stderr.read().decode())
        expect(after == before, f"{how}: terminal settings not restored")


def case_virtio_blk():
    """The test guest's polling virtio-blk driver: doorbell through the
    ioeventfd lane, data on the host image, flush, GET_ID, read past the
    end refused."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(8 << 20)
        rc, out, err = guest("blk", "--acpi", "off",
                             "--disk", f"path={img},id=wisp-disk-1")
        expect(rc == 0, f"exit {rc}", out, err)
        expect("virtio_mmio.device=4K@0xd0000000:5" in value(out, "cmdline"),
               "device missing from the command line", out, err)
        expect(value(out, "blk-capacity") == str((8 << 20) // 512),
               "capacity", out, err)
        for k in ("write", "read", "flush", "getid"):
            expect(value(out, f"blk-{k}-status") == "0", f"{k} status",
                   out, err)
        expect(value(out, "blk-id") == "wisp-disk-1", "GET_ID", out, err)
        expect(value(out, "blk-beyond-status") == "1",
               "read past the end not refused with IOERR", out, err)
        with open(img, "rb") as f:
            f.seek(512)
            data = f.read(512)
        expect(data == bytes((i * 7 + 3) & 0xff for i in range(512)),
               "sector 1 on the host image", out, err)


def case_virtio_blk_readonly():
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "ro.img")
        with open(img, "wb") as f:
            f.write(b"\x5a" * (1 << 20))
        rc, out, err = guest("blk", "--disk", f"path={img},readonly=on")
        # The write is refused, so the read-back differs: exit 6.
        expect(rc == 6, f"exit {rc}, want 6", out, err)
        expect(value(out, "blk-write-status") == "1", "write not refused",
               out, err)
        with open(img, "rb") as f:
            expect(f.read() == b"\x5a" * (1 << 20), "image changed", out,
                   err)


def case_virtio_blk_lock():
    """Two VMs cannot open the same writable image."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "shared.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        p = subprocess.Popen([WISP, "run", "--kernel", GUEST, "--debug-exit",
                              "--disk", f"path={img}", "--cmdline",
                              "test=spin"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            wait_spinning(p)
            rc, out, err = guest("hello", "--disk", f"path={img}")
            expect(rc == 1 and img in err and "lock" in err,
                   f"second VM: exit {rc}", out, err)
            rc, out, err = guest("hello", "--disk",
                                 f"path={img},readonly=on")
            expect(rc == 1 and "lock" in err,
                   f"read-only open of a disk in use: exit {rc}", out, err)
        finally:
            p.terminate()
            p.wait(timeout=10)


def server_bin(name):
    """A server binary in the build tree: the device servers are in
    src/servers, the test server in tests/servers."""
    build = os.path.dirname(os.path.dirname(os.path.dirname(GUEST)))
    sub = ("tests", "servers") if name == "wisp-ioreq-test" else \
        ("src", "servers")
    p = os.path.normpath(os.path.join(build, *sub, name))
    if not os.path.exists(p):
        raise Fail(f"{p} not built")
    return p


def tick_snapshot(d):
    """Boots test=tick through the API in d, snapshots it with wisp
    snapshot (pause + PUT /snapshot/create), kills wisp; returns the
    state and memory paths and the last tick printed before."""
    cfg = os.path.join(d, "cfg.json")
    with open(cfg, "w") as f:
        json.dump({"boot-source": {"kernel_image_path": GUEST,
                                   "boot_args": "test=tick"},
                   "machine-config": {"vcpu_count": 1,
                                      "mem_size_mib": 64}}, f)
    api = os.path.join(d, "api.sock")
    st, mem = os.path.join(d, "state"), os.path.join(d, "mem")
    p = subprocess.Popen([WISP, "--api-sock", api, "--config-file", cfg],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    try:
        ticks_above(p, 3)
        rc, out, err = run(["snapshot", "--api-sock", api, "--snapshot", st,
                            "--mem", mem])
        expect(rc == 0, f"wisp snapshot: exit {rc}", out, err)
        p.kill()
        seen = p.buf + p.stdout.read()
        last = max(int(x) for x in re.findall(rb"tick (\d+)\n", seen))
    finally:
        p.kill()
        p.wait()
    return st, mem, last


def ticks_above(p, n):
    """Reads p's console until a "tick M" line with M > n; returns M (a
    Fail when the console ends or TIMEOUT passes first)."""
    if not hasattr(p, "buf"):
        p.buf = b""
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        got = [int(x) for x in re.findall(rb"tick (\d+)\n", p.buf)]
        if got and max(got) > n:
            return min(x for x in got if x > n)
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if not r:
            continue
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        p.buf += chunk
    raise Fail(f"no tick above {n}:\n{p.buf.decode(errors='replace')}")


def restore(st, where, *extra):
    return subprocess.Popen([WISP, "restore", "--snapshot", st, "--mem",
                             where] + list(extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def start_uffd(d, mem, *extra):
    sock = os.path.join(d, "uffd.sock")
    h = subprocess.Popen([server_bin("wisp-uffd"), "--socket", sock,
                          "--mem", mem] + list(extra),
                         stderr=subprocess.PIPE)
    deadline = time.time() + TIMEOUT
    while not os.path.exists(sock) and time.time() < deadline:
        time.sleep(0.01)
    return h, sock


def stop(p):
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        raise Fail("wisp did not stop on SIGINT")
    return p.returncode, err.decode(errors="replace")


def case_snapshot_restore_file_and_uffd():
    """A test=tick guest snapshotted, its wisp killed, restored in new
    processes with the File backend (twice: clones) and through
    wisp-uffd: the count goes on from where it was (the counter lives in
    guest RAM), and the handler served faults and prefetched."""
    with tempfile.TemporaryDirectory() as d:
        st, mem, last = tick_snapshot(d)
        for _ in range(2):
            p = restore(st, mem)
            first = ticks_above(p, 0)
            ticks_above(p, first + 3)
            rc, err = stop(p)
            expect(first >= last and first < last + 50,
                   f"File restore: first tick {first}, snapshot at {last}",
                   "", err)
        h, sock = start_uffd(d, mem, "--delay-us", "20")
        p = restore(st, sock, "--mem-backend", "uffd")
        first = ticks_above(p, 0)
        ticks_above(p, first + 3)
        rc, err = stop(p)
        expect(first >= last and first < last + 50,
               f"Uffd restore: first tick {first}, snapshot at {last}", "",
               err)
        herr = h.communicate(timeout=TIMEOUT)[1].decode(errors="replace")
        expect(h.returncode == 0, f"wisp-uffd exit {h.returncode}", "",
               herr)
        m = re.search(r"(\d+) faults served .* (\d+) pages prefetched",
                      herr)
        # Faults or prefetch, whichever came first: the guest's data
        # pages (about 18) all went through the handler.
        expect(m and int(m.group(1)) + int(m.group(2)) >= 10,
               "wisp-uffd served nothing", "", herr)


def case_snapshot_uffd_handler_killed():
    """kill -9 of wisp-uffd (200 ms per page, no prefetch) right after a
    restore: with --uffd-fallback wisp copies the missing pages in from
    the memory file and the guest counts on."""
    with tempfile.TemporaryDirectory() as d:
        st, mem, last = tick_snapshot(d)
        h, sock = start_uffd(d, mem, "--delay-us", "200000",
                             "--no-prefetch")
        p = restore(st, sock, "--mem-backend", "uffd", "--uffd-fallback",
                    mem)
        # Killed only once it has the uffd: killed before wisp connected,
        # the restore fails to connect instead (a loaded machine can take
        # longer than any fixed sleep to get there).
        line = b""
        deadline = time.time() + TIMEOUT
        while b"serving" not in line and time.time() < deadline:
            r, _, _ = select.select([h.stderr], [], [], 0.5)
            if r:
                line = h.stderr.readline()
                if not line:
                    break
        expect(b"serving" in line, f"wisp-uffd never took the handshake: "
               f"{line!r}", "", "")
        time.sleep(0.5)
        h.kill()
        h.wait()
        first = ticks_above(p, 0)
        ticks_above(p, first + 3)
        rc, err = stop(p)
        expect(first >= last, f"first tick {first}, snapshot at {last}", "",
               err)
        expect("serving the missing guest pages from the memory file" in err
               and "takeover done" in err, "no takeover reported", "", err)
        # A fallback file of the wrong size is refused up front.
        bad = os.path.join(d, "short")
        with open(bad, "wb") as f:
            f.truncate(4096)
        h, sock = start_uffd(d, mem)
        rc, out, err = run(["restore", "--snapshot", st, "--mem", sock,
                            "--mem-backend", "uffd", "--uffd-fallback", bad])
        h.kill()
        h.wait()
        expect(rc == 1 and "short" in err and "guest RAM has" in err,
               f"short fallback: exit {rc}", out, err)


def case_ioreq_order():
    """Forwarded reads return the server's data; posted (ring) and
    synchronous writes of one vCPU arrive in program order."""
    rc, out, err = guest("ioreq-order n=3000", "--spawn-server",
                         server_bin("wisp-ioreq-test"))
    expect(rc == 0, f"exit {rc}", out, err)
    expect(value(out, "ioreq-magic") == str(0x10c0ffee), "magic", out, err)
    expect(value(out, "ioreq-errors") == "0", "writes out of order", out,
           err)
    expect(value(out, "ioreq-last") == "3000" and
           value(out, "ioreq-writes") == "3000", "writes lost", out, err)
    expect(value(out, "ioreq-posted") == "1500",
           "writes to the posted range lost", out, err)
    # The server counts by the path a write took (ring entry or slot),
    # not by address: posted writes must all have used the ring (it
    # holds one entry at a time here, so it never overflows to a slot).
    expect(value(out, "ioreq-posted-ring") == "1500" and
           value(out, "ioreq-posted-slot") == "0",
           "posted writes did not go through the ring", out, err)


def case_ioreq_read():
    rc, out, err = guest("ioreq-read", "--cpus", "2", "--spawn-server",
                         server_bin("wisp-ioreq-test"))
    expect(rc == 0, f"exit {rc}", out, err)
    got = [l.split(": ")[1] for l in out.splitlines()
           if l.startswith("ioreq-counter: ")]
    expect(got == ["1", "2", "3"], f"counter reads {got}", out, err)


def hostile(mode, want_after="4294967295"):
    t0 = time.time()
    rc, out, err = guest("ioreq-fault", "--spawn-server",
                         server_bin("wisp-ioreq-test") + " --mode " + mode)
    expect(rc == 0, f"{mode}: exit {rc}: the VMM must survive", out, err)
    expect("ioreq-survived" in out, f"{mode}: guest did not go on", out,
           err)
    expect(value(out, "ioreq-after") == want_after,
           f"{mode}: a lost server's window must read all-ones", out, err)
    expect("detached" in err, f"{mode}: no detach reported", out, err)
    expect(time.time() - t0 < 15, f"{mode}: took too long", out, err)
    return out, err


def case_ioreq_server_noanswer():
    out, err = hostile("noanswer")
    expect("did not answer within" in err, "no timeout reported", out, err)


def case_ioreq_server_badstate():
    hostile("badstate")


def case_ioreq_server_corrupt_ring():
    hostile("corrupt-ring")


def case_ioreq_server_garbage():
    out, err = hostile("garbage")
    expect("Protocol error" in err or "protocol" in err,
           "garbage message not reported", out, err)


def case_ioreq_server_wrong_slot():
    """Answers in slots that asked nothing are ignored; the vCPU that
    asked times out and the server is cut off (2 vCPUs, 3 slots)."""
    rc, out, err = guest("ioreq-fault", "--cpus", "2", "--spawn-server",
                         server_bin("wisp-ioreq-test") + " --mode wrong-slot")
    expect(rc == 0 and "ioreq-survived" in out, f"exit {rc}", out, err)
    expect(value(out, "ioreq-trigger") == "4294967295",
           "a stray answer was taken", out, err)
    expect("did not answer within" in err, "no timeout reported", out, err)


def case_ioreq_server_crash():
    out, err = hostile("crash")
    expect(value(out, "ioreq-trigger") == "4294967295",
           "read in flight at the crash must complete with all-ones",
           out, err)


def case_ioreq_reattach():
    """A crashed server is replaced by a new one on the same socket and
    wisp attaches to it again while the guest runs."""
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "t.sock")
        first = subprocess.Popen([server_bin("wisp-ioreq-test"), "--socket",
                                  sock, "--mode", "crash"])
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        p = subprocess.Popen([WISP, "run", "--kernel", GUEST, "--debug-exit",
                              "--server", sock, "--cmdline",
                              "test=ioreq-reattach"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        first.wait(timeout=20)
        second = subprocess.Popen([server_bin("wisp-ioreq-test"), "--socket",
                                   sock])
        try:
            out, err = p.communicate(timeout=30)
        finally:
            second.terminate()
            second.wait(timeout=10)
        out, err = out.decode(), err.decode()
        expect(p.returncode == 0 and "ioreq-reattached" in out,
               f"exit {p.returncode}", out, err)
        expect("attached again" in err, "re-attach not reported", out, err)


def case_ioreq_blk_reattach():
    """wisp-blk (IOREQ_F_STATE, its own state channel) killed and
    started again on the same socket: wisp, under its seccomp filters,
    attaches to it again while the guest runs, and lives on."""
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "blk.sock")
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)

        def serve():
            s = subprocess.Popen([server_bin("wisp-blk"), "--socket", sock,
                                  "--disk", f"path={img}"],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            for _ in range(500):
                if os.path.exists(sock):
                    return s
                time.sleep(0.01)
            s.kill()
            raise Fail("wisp-blk never listened")

        first = serve()
        errf = open(os.path.join(d, "wisp.err"), "w+")
        p = subprocess.Popen([WISP, "run", "--kernel", GUEST, "--debug-exit",
                              "--server", sock, "--cmdline", "test=spin"],
                             stdout=subprocess.PIPE, stderr=errf,
                             stdin=subprocess.DEVNULL)
        second = None
        try:
            wait_spinning(p)
            first.kill()
            first.wait(timeout=10)
            os.unlink(sock)
            second = serve()
            deadline = time.time() + TIMEOUT
            while time.time() < deadline and p.poll() is None:
                errf.seek(0)
                if "attached again" in errf.read():
                    break
                time.sleep(0.05)
            time.sleep(0.5)  # what comes right after the attach
            alive = p.poll() is None
            p.terminate()
            p.wait(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            for s in (first, second):
                if s and s.poll() is None:
                    s.kill()
                    s.wait()
        errf.seek(0)
        err = errf.read()
        errf.close()
        expect(alive, f"wisp gone before or after the re-attach (status "
               f"{p.returncode}; -31: SIGSYS, a seccomp kill)", "", err)
        expect("attached again" in err, "re-attach not reported", "", err)


def case_ioreq_blk_out_of_process():
    """The same virtio-blk device code served by wisp-blk in its own
    process: doorbell lane registered through the protocol, interrupts on
    the VMM's irqfd."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "oop.img")
        with open(img, "wb") as f:
            f.truncate(8 << 20)
        rc, out, err = guest("blk", "-v", "--spawn-server",
                             f"{server_bin('wisp-blk')} --disk "
                             f"path={img},id=oop-disk")
        expect(rc == 0, f"exit {rc}", out, err)
        for k in ("write", "read", "flush", "getid"):
            expect(value(out, f"blk-{k}-status") == "0", f"{k} status",
                   out, err)
        expect(value(out, "blk-id") == "oop-disk", "GET_ID", out, err)
        expect("(1 ranges, 1 doorbells)" in err,
               "window or doorbell lane not registered", out, err)
        # Four requests were served, and not one kick reached the
        # server's window: they all went through the doorbell lane.
        expect("wisp-blk: done:" in err and
               "; 0 QueueNotify writes reached the window" in err,
               "QueueNotify did not go through the doorbell lane", out, err)
        with open(img, "rb") as f:
            f.seek(512)
            data = f.read(512)
        expect(data == bytes((i * 7 + 3) & 0xff for i in range(512)),
               "sector 1 on the host image", out, err)


# --- a hostile VMM against the device servers (no KVM involved) ---

IOREQ_MAGIC = 0x51524f49


def fake_vmm(sock, shared_size=4096, shm_size=4096, ring_offset=2048,
             ring_entries=8, nr_vcpus=2, ram=1 << 20):
    """Plays the VMM for a server listening on sock: answers HELLO with a
    handcrafted WELCOME and MEM_MAP, ACKs the server's ranges and lanes,
    then wakes it once. Returns the socket (the caller closes it)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    for _ in range(200):
        try:
            s.connect(sock)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.01)
    s.recv(512)  # HELLO
    seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW  # as wisp seals them
    shm = os.memfd_create("fake-shm", os.MFD_ALLOW_SEALING)
    os.ftruncate(shm, shm_size)
    fcntl.fcntl(shm, fcntl.F_ADD_SEALS, seals)
    mem = os.memfd_create("fake-ram", os.MFD_ALLOW_SEALING)
    os.ftruncate(mem, ram)
    fcntl.fcntl(mem, fcntl.F_ADD_SEALS, seals)
    efds = [os.eventfd(0) for _ in range(2 + nr_vcpus)]
    welcome = struct.pack("<4I4IQQIIQQ", 16, 72, 0, 0, IOREQ_MAGIC, 1, 7,
                          nr_vcpus, shared_size, ring_offset, ring_entries,
                          5, 0xd0000000, 0x1000)
    socket.send_fds(s, [welcome], [shm] + efds)
    mem_map = struct.pack("<4III", 17, 120, 0, 0, 1, 1) + \
        struct.pack("<QQQ", 0, ram, 0) + bytes(72)
    try:
        socket.send_fds(s, [mem_map], [mem])
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server refused the WELCOME already and hung up
    for fd in [shm, mem] + efds[:1] + efds[2:]:
        os.close(fd)
    try:
        while True:
            msg, fds, _, _ = socket.recv_fds(s, 512, 4)
            for fd in fds:
                os.close(fd)
            if len(msg) < 16:
                break
            typ, _, seq, _ = struct.unpack("<4I", msg[:16])
            if typ in (2, 3):  # MAP_RANGE, ADD_DOORBELL
                s.send(struct.pack("<4IiI", 19, 24, seq, 0, 0, 0))
            else:  # READY (or anything else): serving starts
                break
        os.eventfd_write(efds[1], 1)  # the wake eventfd
    except (OSError, socket.timeout):
        pass  # the server refused the handshake and hung up
    os.close(efds[1])
    return s


def hostile_vmm_case(what, want, **layout):
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "blk.sock")
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        p = subprocess.Popen([server_bin("wisp-blk"), "--socket", sock,
                              "--disk", f"path={img}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        s = fake_vmm(sock, **layout)
        try:
            out, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise Fail(f"{what}: wisp-blk hung on a hostile VMM")
        finally:
            s.close()
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
        expect(p.returncode == 1, f"{what}: wisp-blk exit {p.returncode}, "
               "want 1 (a signal is negative)", out, err)
        expect(err.startswith("wisp-blk: ") and want in err,
               f"{what}: no message naming {want!r}", out, err)


def case_ioreq_server_hostile_vmm():
    """A device server facing a hostile VMM exits 1 with a message: a
    WELCOME whose ring offset wraps (a SEGV in the ring drain once), a
    shared memfd smaller than announced (a SIGBUS once), no vCPUs,
    more fds than a packet may carry."""
    hostile_vmm_case("ring offset -128", "ring at",
                     ring_offset=(1 << 64) - 128)
    hostile_vmm_case("short shared memfd", "shared page", shm_size=0)
    hostile_vmm_case("0 vCPUs", "WELCOME for 0 vCPUs", nr_vcpus=0)
    # 3 + 35 fds: one more than IOREQ_MAX_FDS (5 + 32, the IOMMU and
    # state channels included).
    hostile_vmm_case("35 vCPUs", "malformed", nr_vcpus=35)


# --- end of the hostile-VMM block ---


def case_ioreq_server_missing():
    rc, out, err = run(["run", "--kernel", GUEST, "--server",
                        "/nonexistent/wisp.sock"])
    expect(rc == 1 and "/nonexistent/wisp.sock" in err,
           f"exit {rc}", out, err)


def case_version_help():
    rc, out, err = run(["--version"])
    expect(rc == 0 and out.startswith("wisp "), "--version", out, err)
    rc, out, err = run(["--help"])
    expect(rc == 0 and "--kernel" in out and "exit status" in out, "--help",
           out, err)


def irq_watch(extra, who):
    """test=irqwatch: the guest loses an edge on purpose (the IOAPIC pin
    masked while a FLUSH completes) and then never reads InterruptStatus;
    the vector must turn up pending in its local APIC, after the watch's
    second and well before 5 s, and the watcher must say so once."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "irq.img")
        with open(img, "wb") as f:
            f.truncate(8 << 20)
        rc, out, err = guest("irqwatch", *extra(img))
        expect(rc == 0, f"exit {rc}", out, err)
        for k in ("first-status", "lost-status"):
            expect(value(out, "irqwatch-" + k) == "0", k, out, err)
        expect(value(out, "irqwatch-first-isr") == "1",
               "no InterruptStatus after the first request", out, err)
        expect(value(out, "irqwatch-pending-at-unmask") == "0",
               "the masked edge was not lost: nothing to recover", out, err)
        expect(value(out, "irqwatch-raised") == "1",
               "the lost interrupt was never raised again", out, err)
        ms = int(value(out, "irqwatch-ms"))
        expect(500 <= ms <= 3000, f"raised again after {ms} ms", out, err)
        expect(value(out, "irqwatch-isr") == "1",
               "InterruptStatus cleared without a read", out, err)
        expect(err.count("the guest has not read the interrupt") == 1 and
               who in err, f"no single warning from {who}", out, err)


def case_irq_watch_in_process():
    """wisp's watchdog raises a lost virtio interrupt again."""
    irq_watch(lambda img: ["--disk", f"path={img}"], "virtio-blk")


def case_irq_watch_server():
    """An IOREQ server (wisp-blk) raises its device's lost interrupt
    again: its own watcher, the same rule as wisp's."""
    irq_watch(lambda img: ["--spawn-server",
                           f"{server_bin('wisp-blk')} --disk path={img}"],
              "wisp-blk:")


# --- the VMM's handling of IOREQ servers it spawns or attaches (src/vmm) ---

def case_spawn_private_dir():
    """A spawned server listens in a directory only wisp's user can
    enter (not at a predictable /tmp path), removed with the VM."""
    with tempfile.TemporaryDirectory() as d:
        rec = os.path.join(d, "record")
        script = os.path.join(d, "srv.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n"
                    f"echo \"$2\" > {rec}\n"
                    f"stat -c '%a %u %F' \"$(dirname \"$2\")\" >> {rec}\n"
                    f"exec {server_bin('wisp-ioreq-test')} \"$@\"\n")
        os.chmod(script, 0o755)
        rc, out, err = guest("ioreq-read", "--cpus", "2", "--spawn-server",
                             script)
        expect(rc == 0, f"exit {rc}", out, err)
        with open(rec) as f:
            path, st = f.read().splitlines()[:2]
        mode, uid, kind = st.split(" ", 2)
        expect(mode == "700" and uid == str(os.geteuid()) and
               kind == "directory",
               f"socket directory of {path}: mode {mode} uid {uid} {kind}",
               out, err)
        base = os.path.basename(os.path.dirname(path))
        expect(base.startswith("wisp-") and str(os.getpid()) not in base,
               f"socket directory name {base}", out, err)
        expect(not os.path.exists(os.path.dirname(path)),
               "socket directory left behind", out, err)


def case_spawn_errors():
    """Exec failures are reported once, by wisp itself; extra words are
    refused, not dropped."""
    rc, out, err = guest("hello", "--spawn-server", "/nonexistent/wisp-srv")
    expect(rc == 1 and err.count("/nonexistent/wisp-srv") == 1 and
           "No such file" in err, f"exec failure: exit {rc}", out, err)
    cmd = server_bin("wisp-ioreq-test") + " -x" * 40
    rc, out, err = guest("hello", "--spawn-server", cmd)
    expect(rc == 1 and "more than 32 words" in err,
           f"41 words: exit {rc}", out, err)

# --- ACPI (issue 8): tables, the three RSDP routes, power, graceful stop ---

ACPI_GPA = 0xe0000
VIRTIO_GSIS = (5, 6, 7, 9, 10, 11, 12, 13, 14, 15)


def acpi_lines(out, key):
    return [line[len(key) + 2:].strip() for line in out.splitlines()
            if line.startswith(key + ": ")]


def case_acpi_rsdp_routes():
    """The RSDP through the zero page and through the 0xE0000 scan (the
    test guest), and through PVH start_info.rsdp_paddr (pvh-acpi.elf);
    with --acpi off none of them finds one."""
    for route in ("zp", "scan"):
        rc, out, err = guest(f"acpi route={route}", "--cpus", "2")
        expect(rc == 0, f"route {route}: exit {rc}", out, err)
        expect(int(value(out, "acpi-rsdp-zp")) == ACPI_GPA and
               int(value(out, "acpi-rsdp-scan")) == ACPI_GPA,
               f"route {route}: RSDP addresses", out, err)
        expect(acpi_lines(out, "acpi-table") == ["FACP", "APIC"],
               f"route {route}: XSDT entries", out, err)
        expect(value(out, "acpi-hw-reduced") == "1", "HW_REDUCED", out, err)
    pvh = os.path.join(os.path.dirname(GUEST), "pvh-acpi.elf")
    rc, out, err = run(["run", "--kernel", pvh, "--debug-exit"])
    expect(rc == 0 and "pvh-rsdp: ok" in out, f"PVH route: exit {rc}",
           out, err)
    rc, out, err = run(["run", "--kernel", pvh, "--debug-exit",
                        "--acpi", "off"])
    expect(rc == 0 and "pvh-rsdp: none" in out,
           f"PVH --acpi off: exit {rc}", out, err)
    rc, out, err = guest("acpi route=zp", "--acpi", "off")
    expect(rc == 10 and value(out, "acpi-rsdp-zp") == "0" and
           value(out, "acpi-rsdp-scan") == "0",
           f"--acpi off: exit {rc}, want 10 (no RSDP)", out, err)


def case_acpi_madt_cpus():
    """The MADT has one enabled local APIC per vCPU, up to 64; the MP
    table stays while it can hold them (32)."""
    for n in (1, 2, 8, 32, 33, 64):
        rc, out, err = guest("acpi route=scan", "--cpus", str(n))
        expect(rc == 0, f"--cpus {n}: exit {rc}", out, err)
        expect(int(value(out, "acpi-cpus")) == n, f"--cpus {n}: MADT",
               out, err)
        expect(value(out, "acpi-ioapics") == "1" and
               int(value(out, "acpi-ioapic-addr")) == 0xfec00000,
               f"--cpus {n}: IOAPIC", out, err)
        expect(acpi_lines(out, "acpi-iso") == ["0 0"],
               f"--cpus {n}: interrupt source overrides", out, err)
    for n in (4, 32):
        rc, out, err = guest("mp", "--cpus", str(n))
        expect(rc == 0 and int(value(out, "mp-cpus")) == n,
               f"--cpus {n}: MP table next to ACPI", out, err)
    rc, out, err = guest("mp", "--cpus", "33")
    expect(rc == 3 and "mp: no valid floating pointer" in out,
           "--cpus 33: an MP table that cannot hold the vCPUs", out, err)


def case_acpi_dsdt_devices():
    """One LNRO0005 per virtio device, window and edge GSI as wisp wired
    them, none on the command line; up to all ten windows."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        for ndisks, extra in ((0, []), (2, ["--rng"]),
                              (8, ["--rng", "--console", "virtio"])):
            log = os.path.join(d, "console.log")
            args = ["--serial", "file:" + log] + extra
            for _ in range(ndisks):
                args += ["--disk", f"path={img},readonly=on"]
            rc, _, err = guest("acpi route=zp", *args, stdin=b"")
            with open(log) as f:
                out = f.read()
            n = ndisks + ("--rng" in extra) + ("virtio" in extra)
            expect(rc == 0, f"{n} devices: exit {rc}", out, err)
            want = [f"{0xd0000000 + 0x1000 * i} 4096 {VIRTIO_GSIS[i]} "
                    "edge high" for i in range(n)]
            expect(acpi_lines(out, "acpi-dev") == want,
                   f"{n} devices: DSDT resources, want {want}", out, err)
            expect("virtio_mmio" not in value(out, "cmdline"),
                   f"{n} devices: described twice (command line)", out, err)
            expect(value(out, "acpi-s5") == "5", "_S5", out, err)


def case_acpi_poweroff_and_reset():
    """S5 through the FADT's sleep control register and a write to its
    reset register each end wisp with 0."""
    for act, said in (("s5", "entering S5"), ("reset", "acpi: reset")):
        rc, out, err = guest(f"acpi route=zp act={act}", "--cpus", "2")
        expect(rc == 0 and said in out and "still running" not in out,
               f"act={act}: exit {rc}, want 0", out, err)


def wisp_spawn(test, *extra):
    return subprocess.Popen([WISP, "run", "--kernel", GUEST, "--debug-exit",
                             "--cmdline", "test=" + test] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)


def wait_for(p, marker):
    buf = b""
    deadline = time.time() + TIMEOUT
    while marker not in buf and time.time() < deadline:
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
    return buf


def stop_with(p, signals, gap=0.2, limit=15):
    t0 = time.time()
    for i, sig in enumerate(signals):
        if i:
            time.sleep(gap)
        p.send_signal(sig)
    try:
        rc = p.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise Fail(f"wisp did not stop within {limit} s")
    out = p.stdout.read().decode(errors="replace")
    err = p.stderr.read().decode(errors="replace")
    return rc, time.time() - t0, out, err


def case_acpi_sigterm_button():
    """SIGTERM presses the power button: a guest that polls the GED
    status sees it, clears it and enters S5, and wisp exits 0."""
    p = wisp_spawn("acpi route=zp act=ged")
    buf = wait_for(p, b"ged-waiting")
    expect(b"ged-waiting" in buf, "guest never waited", buf.decode())
    rc, dt, out, err = stop_with(p, [signal.SIGTERM])
    out = buf.decode() + out
    expect(rc == 0, f"exit {rc}, want 0 (guest powered off)", out, err)
    expect("ged-cleared: 1" in out and "entering S5" in out,
           "guest did not see and clear the button", out, err)
    expect(dt < 3, f"took {dt:.1f} s", out, err)


def case_acpi_sigterm_timeout():
    """A guest that ignores the button: wisp stops it after
    --shutdown-timeout and exits 143; a second signal, SIGINT, --acpi off
    and --shutdown-timeout 0 stop at once."""
    p = wisp_spawn("spin", "--shutdown-timeout", "1")
    wait_for(p, b"spinning")
    rc, dt, out, err = stop_with(p, [signal.SIGTERM])
    expect(rc == 143 and 0.9 <= dt < 4, f"exit {rc} after {dt:.2f} s, "
           "want 143 after about 1 s", out, err)
    expect("did not power off within 1 s" in err, "no message", out, err)
    for extra, sigs, code in (
            ([], [signal.SIGTERM, signal.SIGTERM], 143),
            ([], [signal.SIGINT], 130),
            (["--acpi", "off"], [signal.SIGTERM], 143),
            (["--shutdown-timeout", "0"], [signal.SIGTERM], 143)):
        p = wisp_spawn("spin", *extra)
        wait_for(p, b"spinning")
        rc, dt, out, err = stop_with(p, sigs)
        expect(rc == code and dt < 2, f"{extra} {[s.name for s in sigs]}: "
               f"exit {rc} after {dt:.2f} s, want {code} at once", out, err)


def spawn_logged(test, d, *extra):
    """wisp run with stderr to a file in d (read while it runs). wisp gets
    its own open of the file: reading through the fd it
    writes to would move the offset they share (seek(0) to re-read), and
    its next line would overwrite the start of the file."""
    path = os.path.join(d, "stderr")
    with open(path, "w") as w:
        p = subprocess.Popen([WISP, "run", "--kernel", GUEST, "--debug-exit",
                              "--shutdown-timeout", "0", "--cmdline",
                              "test=" + test] + list(extra),
                             stdout=subprocess.PIPE, stderr=w,
                             stdin=subprocess.DEVNULL)
    return p, open(path, "r")


def read_err(err):
    err.seek(0)
    return err.read()


def wait_err(err, what, secs):
    deadline = time.time() + secs
    while time.time() < deadline:
        if what in read_err(err):
            return True
        time.sleep(0.05)
    return False


SP_N = 2048


def sp_pattern(n):
    return "".join("\n" if i % 64 == 63 else chr(ord("a") + i % 26)
                   for i in range(n))


def io_out_exits(err, nth):
    """vCPU 0's io_out count in the nth state dump of the log."""
    m = re.findall(r"vCPU 0: exits io_in (\d+) io_out (\d+)", read_err(err))
    if len(m) < nth:
        raise Fail(f"only {len(m)} state dumps, want {nth}:\n"
                   f"{read_err(err)}")
    return int(m[nth - 1][1])


def read_until(p, out, marker, secs=TIMEOUT):
    """out plus what p prints until marker is in it, EOF or secs
    (bounded even while the guest prints nothing)."""
    deadline = time.time() + secs
    while marker not in out:
        left = deadline - time.time()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            break
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        out += chunk
    return out


def serialpost_run(d, *extra):
    """test=serialpost: the console bytes and vCPU 0's io_out exits after
    the IER=0 phase and after the IER.THRI phase (from SIGUSR1 dumps)."""
    path = os.path.join(d, "stderr")
    with open(path, "w") as w:
        p = subprocess.Popen([WISP, "run", "--kernel", GUEST, "--debug-exit",
                              "--cmdline", f"test=serialpost n={SP_N}"] +
                             list(extra), stdout=subprocess.PIPE, stderr=w,
                             stdin=subprocess.PIPE)
    err = open(path, "r")
    counts, out = [], b""
    try:
        for i, marker in enumerate((b"sp-a-done\n", b"sp-b-done\n")):
            out = read_until(p, out, marker)
            if marker not in out:
                raise Fail(f"no {marker!r} (wisp status {p.poll()}):\n"
                           f"{out.decode()}\n{read_err(err)}")
            p.send_signal(signal.SIGUSR1)
            deadline = time.time() + 5
            while read_err(err).count("state dump end") < i + 1 and \
                    time.time() < deadline:
                time.sleep(0.05)
            counts.append(io_out_exits(err, i + 1))
            if i == 0:
                # Long enough for the ring to count as idle (100 ms with
                # no entry): posting stops, so "sp-idle" exits again.
                time.sleep(1)
            p.stdin.write(b"g")
            p.stdin.flush()
        # The guest spins after "sp-end" without another exit.
        out = read_until(p, out, b"sp-end\n", 5)
    finally:
        p.kill()
        p.wait()
    e = read_err(err)
    err.close()
    return out.decode(), counts, e


def case_serial_posted():
    """Console bytes written with IER.THRI off queue in KVM's coalesced
    ring instead of exiting: after 2048 bytes, each after an LSR poll,
    vCPU 0 has made far fewer OUT exits than 2048 (only the first
    SERIAL_POST_AFTER bytes and the IER write exit), and 2048 more
    without polling fill the ring (the write that finds it full exits;
    each exit drains first) and arrive in order too; after a quiet
    second (an idle ring stops the posting) the 8 bytes of "sp-idle\n"
    exit again; with IER.THRI on every one of the next 2048 THR writes
    exits; loopback (MCR.LOOP) reads
    every byte back in order; a line posted with no exit after it (the
    guest spins) arrives through the flush timer; and every byte reaches
    stdout in order.
    --serial-posted off makes every THR write exit (the control); without
    the option phase A posts as with it on (the default)."""
    kvm_fd = os.open("/dev/kvm", os.O_RDWR)
    try:
        # KVM_CHECK_EXTENSION KVM_CAP_COALESCED_PIO
        have = fcntl.ioctl(kvm_fd, 0xAE03, 162) > 0
    finally:
        os.close(kvm_fd)
    if not have:
        raise Skip("this host's KVM has no KVM_CAP_COALESCED_PIO")
    want = ("sp-a:\n" + sp_pattern(SP_N) + "\nsp-raw:\n" +
            sp_pattern(SP_N) + "\nsp-a-done\nsp-idle\n" +
            sp_pattern(SP_N) + "\nsp-b-done\n" + f"sp-c-ok {SP_N}\n" +
            "sp-polled-tail-0123456789abcdefghijklmnopqrstuvwxyz\nsp-end\n")
    with tempfile.TemporaryDirectory() as d:
        out, (a, b), e = serialpost_run(d, "--serial-posted", "on")
        print(f"posted: io_out exits {a} after phase A, {b - a} in phase B")
        expect(want in out, "the console bytes are not all there in order",
               out, e)
        expect(a < SP_N // 8, f"{a} OUT exits for {2 * SP_N} bytes with "
               "IER 0", out, e)
        # Phase B's own 2048 + 11 bytes and its IER write, and the 8 of
        # "sp-idle\n": posting stopped while the guest was quiet.
        expect(b - a == SP_N + 20, f"{b - a} OUT exits between the dumps, "
               f"want {SP_N + 20}: 8 after an idle second, 1 IER write, "
               f"{SP_N + 11} with IER.THRI on", out, e)
    with tempfile.TemporaryDirectory() as d:
        out, (a, b), e = serialpost_run(d, "--serial-posted", "off")
        print(f"off: io_out exits {a} after phase A, {b - a} in phase B")
        expect(want in out, "the console bytes are not all there in order "
               "(--serial-posted off)", out, e)
        expect(a >= 2 * SP_N and b - a == SP_N + 20,
               f"--serial-posted off: {a} and {b - a} OUT exits", out, e)
    with tempfile.TemporaryDirectory() as d:
        out, (a, b), e = serialpost_run(d)
        print(f"default: io_out exits {a} after phase A, {b - a} in phase B")
        expect(want in out, "the console bytes are not all there in order "
               "(no --serial-posted)", out, e)
        expect(a < SP_N // 8, f"no --serial-posted: {a} OUT exits for "
               f"{2 * SP_N} bytes with IER 0: the default is not on", out, e)


def case_watchdog():
    """--watchdog 1: a guest that stops exiting (test=blkflush spins
    after its 65 requests) gets one state dump, whose queue line says
    what the guest did (avail.idx 65 = last_avail = used.idx); SIGUSR1
    dumps again at once and the VM runs on; a guest that keeps exiting
    (test=tick) gets none."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(4 << 20)
        p, err = spawn_logged("blkflush", d, "--disk", "path=" + img,
                              "--watchdog", "1")
        try:
            out = wait_for(p, b"blk-flushed").decode()
            t0 = time.time()
            expect(wait_err(err, "state dump end", 5),
                   "no watchdog dump within 5 s of the guest going quiet",
                   out, read_err(err))
            dt = time.time() - t0
            e = read_err(err)
            expect("state dump (watchdog: nothing moved for 1 s)" in e and
                   dt < 2.5, f"dump after {dt:.2f} s", out, e)
            # The polling guest never acknowledges the interrupt.
            expect("q0: size 8 avail.idx 65 last_avail 65 (pending 0) "
                   "used.idx 65 (ours 65) signalled 65" in e and
                   "status 0xf features" in e and
                   "interrupt status 0x1" in e and
                   "I/O thread: waiting for a kick (last served" in e and
                   "vCPU 0: exits io_in" in e,
                   "the dump does not show the guest's 65 requests", out, e)
            # Where an interrupt would be stuck: read with the vCPU
            # parked and resumed (the VM runs on, checked below).
            expect(re.search(r"vCPU 0: LAPIC in service( none|( 0x[0-9a-f]+)+)"
                             r", requested( none|( 0x[0-9a-f]+)+), TPR 0x"
                             r"[0-9a-f]+ PPR 0x[0-9a-f]+; RFLAGS.IF [01], "
                             r"interrupt injected [01] \(vector 0x[0-9a-f]+\)"
                             r", NMI pending [01], mp_state \d+, rip 0x", e)
                   and re.search(r": IOAPIC pin \d+: vector 0x[0-9a-f]+ "
                                 r"dest \d+ (edge|level)", e),
                   "the dump has no LAPIC or IOAPIC line", out, e)
            time.sleep(2.5)
            e = read_err(err)
            expect(e.count("state dump (") == 1,
                   "more than one dump for one stall", out, e)
            p.send_signal(signal.SIGUSR1)
            expect(wait_err(err, "state dump (SIGUSR1)", 5),
                   "no dump on SIGUSR1", out, read_err(err))
            time.sleep(0.5)
            expect(p.poll() is None, "SIGUSR1 ended wisp", out,
                   read_err(err))
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=10)
            e = read_err(err)
            expect(rc == 143 and e.count("state dump end") == 2,
                   f"exit {rc}, {e.count('state dump end')} dumps", out, e)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            err.close()
        p, err = spawn_logged("tick", d, "--watchdog", "1")
        try:
            out = wait_for(p, b"tick 1\n").decode()
            time.sleep(3)
            e = read_err(err)
            expect("state dump" not in e, "a guest that keeps exiting got "
                   "a watchdog dump", out, e)
            # The vCPU thread, busy exiting, never takes SIGUSR1 (its
            # kick is another signal): each one is a dump.
            for n in range(1, 4):
                p.send_signal(signal.SIGUSR1)
                deadline = time.time() + 5
                while read_err(err).count("state dump (SIGUSR1)") < n and \
                        time.time() < deadline:
                    time.sleep(0.05)
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=10)
            e = read_err(err)
            expect(rc == 143 and e.count("state dump (SIGUSR1)") == 3,
                   f"exit {rc}, {e.count('state dump (SIGUSR1)')} dumps for "
                   "3 SIGUSR1", out, e)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            err.close()


def case_acpi_bad_arguments():
    bad = [
        (["--cpus", "65"], "--cpus 65: must be 1..64"),
        (["--cpus", "33", "--acpi", "off"], "1..32 with --acpi off"),
        (["--acpi", "maybe"], "--acpi"),
        (["--shutdown-timeout", "-1"], "--shutdown-timeout '-1'"),
        (["--shutdown-timeout", "3601"], "--shutdown-timeout '3601'"),
        (["--shutdown-timeout", "x"], "--shutdown-timeout 'x'"),
        # An IOREQ server has one request slot per vCPU plus one.
        (["--cpus", "32", "--server", "/nonexistent.sock"],
         "--cpus 32: with IOREQ servers at most 31"),
    ]
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        disks = []
        for _ in range(8):
            disks += ["--disk", f"path={img},readonly=on"]
        # Ten windows: eight disks, the rng, the console; one more
        # device than windows is refused before anything runs.
        bad.append((disks + ["--rng", "--console", "virtio", "--server",
                             os.path.join(d, "none.sock")],
                    "too many virtio devices"))
        for args, msg in bad:
            rc, out, err = run(["run", "--kernel", GUEST] + args)
            expect(rc == 1, f"{args}: exit {rc}, want 1", out, err)
            expect(msg in err and err.startswith("wisp: "),
                   f"{args}: message should mention {msg!r}", out, err)


# --- IOREQ boundary (issue 7): the VMM refuses servers it must not trust.

def case_ioreq_server_path_too_long():
    """A --server path that does not fit a unix socket address is a
    config error naming the path, not a silently shortened other path."""
    path = "/tmp/" + "s" * 150 + ".sock"
    rc, out, err = run(["run", "--kernel", GUEST, "--server", path])
    expect(rc == 1 and path in err and "bytes" in err, f"exit {rc}", out,
           err)


def case_ioreq_server_other_uid():
    """A server listening as another user (not root) is refused before
    it gets guest RAM (SO_PEERCRED)."""
    if os.geteuid() != 0:
        raise Fail("needs root to start a server as uid 65534")
    d = tempfile.mkdtemp(prefix="wisp-peer-")
    os.chmod(d, 0o777)
    sock = os.path.join(d, "s.sock")

    def as_nobody():
        os.setgid(65534)
        os.setuid(65534)

    srv = subprocess.Popen([server_bin("wisp-ioreq-test"), "--socket", sock],
                           preexec_fn=as_nobody, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        rc, out, err = run(["run", "--kernel", GUEST, "--server", sock])
    finally:
        srv.kill()
        srv.wait()
        if os.path.exists(sock):
            os.unlink(sock)
        os.rmdir(d)
    expect(rc != 0 and "uid 65534" in err and sock in err, f"exit {rc}",
           out, err)


def flush_then_kill(extra):
    """Runs test=blkflush with extra wisp arguments, SIGKILLs wisp as soon
    as the guest saw its FLUSH complete, and checks that every write
    acknowledged before it is in the image."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(8 << 20)
        args = [a.replace("IMG", img) for a in extra]
        p = subprocess.Popen([WISP, "run", "--kernel", GUEST,
                              "--cmdline", "test=blkflush"] + args,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        buf = b""
        deadline = time.time() + TIMEOUT
        try:
            while b"blk-flushed" not in buf and time.time() < deadline:
                chunk = os.read(p.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=TIMEOUT)
            err = p.stderr.read().decode(errors="replace")
        out = buf.decode(errors="replace")
        expect(b"blk-flushed" in buf, f"{extra}: FLUSH never completed", out,
               err)
        expect(p.returncode == -signal.SIGKILL, f"exit {p.returncode}", out,
               err)
        expect(value(out, "blk-writes-status") == "0", "write status", out,
               err)
        expect(value(out, "blk-flush-status") == "0", "flush status", out,
               err)
        with open(img, "rb") as f:
            data = f.read(64 * 4096)
        want = bytes((s * 31 + i) & 0xff for s in range(512)
                     for i in range(512))
        for s in range(512):
            expect(data[s * 512:(s + 1) * 512] == want[s * 512:(s + 1) * 512],
                   f"{extra}: sector {s} of an acknowledged write is not "
                   "in the image after SIGKILL", out, err)


def case_virtio_blk_flush_kill():
    """SIGKILL right after a FLUSH completed loses no acknowledged write,
    with either engine, in process and out of process (wisp-blk)."""
    flush_then_kill(["--disk", "path=IMG,engine=uring"])
    flush_then_kill(["--disk", "path=IMG,engine=sync"])
    flush_then_kill(["--spawn-server",
                     f"{server_bin('wisp-blk')} --disk path=IMG"])


def case_virtio_blk_flush_kill_direct():
    """The same with O_DIRECT (the io_uring engine on guest buffers), in
    process and in a spawned wisp-blk, where the temp directory's file
    system has it."""
    with tempfile.TemporaryDirectory() as d:
        try:
            os.close(os.open(os.path.join(d, "probe"),
                             os.O_CREAT | os.O_RDWR | os.O_DIRECT))
        except OSError as e:
            raise Skip(f"no O_DIRECT in {d}: {e}")
    flush_then_kill(["--disk", "path=IMG,direct=on"])
    # Out of process, where the server's seccomp table must allow the
    # alignment probe (statx), which it once did not.
    flush_then_kill(["--spawn-server",
                     f"{server_bin('wisp-blk')} --disk path=IMG,direct=on"])


def iommu_case(server, extra=()):
    """--iommu: the test guest drives the virtio-iommu (window 0), attaches
    the disk (window 1, endpoint 1), maps its rings and a data IOVA, writes
    and reads through it; a read into an unmapped IOVA fails with IOERR,
    leaves the buffer alone and puts a MAPPING fault for that address on
    the eventq; after UNMAP the old IOVA fails too. With server the disk
    is wisp-blk in its own process, translating through the table the
    IOREQ protocol's IOMMU channel keeps there. extra: more options (the
    IOMMU's request mode)."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        disk = (["--spawn-server",
                 f"{server_bin('wisp-blk')} --disk path={img}"] if server
                else ["--disk", f"path={img}"])
        rc, out, err = guest("iommu", "-v", "--iommu", *extra, *disk)
        expect(rc == 0, f"exit {rc}", out, err)
        # Where the requests ran: on the I/O thread unless told not to.
        in_vcpu = "virtio-iommu: queue 0 served in the kicking vCPU" in err
        expect(in_vcpu == ("vcpu" in extra),
               f"requestq in the vCPU: {in_vcpu}", out, err)
        if server:
            # The server translated: it took the MAPs and UNMAPs and
            # refused the unmapped IOVA itself.
            expect("wisp-blk: IOMMU: " in err and
                   re.search(r"IOMMU: [1-9]\d* maps, [1-9]\d* unmaps, "
                             r"\d+ resets, [1-9]\d* faults", err),
                   "wisp-blk's IOMMU counters", out, err)
        for k, want in (("attach-status", "0"), ("map-status", "0"),
                        ("write-status", "0"), ("read-status", "0"),
                        ("readback", "ok"), ("unmapped-status", "1"),
                        ("fault-events", "1"), ("fault-reason", "2"),
                        ("fault-endpoint", "1"),
                        ("fault-address", str(0x20000000)),
                        ("data-untouched", "yes"), ("unmap-status", "0"),
                        ("after-unmap-status", "1")):
            expect(value(out, f"iommu-{k}") == want,
                   f"iommu-{k}: {value(out, f'iommu-{k}')!r}, want {want}",
                   out, err)
        with open(img, "rb") as f:
            f.seek(512)
            data = f.read(512)
        expect(data == bytes((i * 5 + 1) & 0xff for i in range(512)),
               "sector 1 on the host image", out, err)


def case_virtio_iommu():
    iommu_case(False)


def case_virtio_iommu_server():
    """The same, with the disk out of process (wisp-blk)."""
    iommu_case(True)


def case_virtio_iommu_vcpu():
    """The same, in and out of process, with the IOMMU's requests in the
    vCPU that kicks (--iommu-requests vcpu) instead of on its I/O
    thread."""
    iommu_case(False, ("--iommu-requests", "vcpu"))
    iommu_case(True, ("--iommu-requests", "vcpu"))


def case_virtio_iommu_request_options():
    """--iommu-requests and --iommu-poll need --iommu; polling is refused
    with the requests in the vCPU; a bad mode is refused by name."""
    for args, want in (
            (["--iommu-requests", "vcpu"], "no virtio-iommu"),
            (["--iommu-poll", "100"], "no virtio-iommu"),
            (["--iommu", "--iommu-requests", "vcpu", "--iommu-poll", "100"],
             "--iommu-requests vcpu"),
            (["--iommu", "--iommu-requests", "both"], "'both'")):
        rc, out, err = run(["run", "--kernel", GUEST, *args])
        expect(rc == 1 and want in err, f"{args}: exit {rc}", out, err)


def case_virtio_iommu_batched():
    """Two IOMMU requests in one kick, as Linux 6.12 sends them in lazy
    mode (the UNMAP of the last read's IOVA with the MAP of the next):
    bench/iommu-direct.py's iommu=lazy, 64 reads in process and with
    wisp-blk, the requests in the vCPU and on the I/O thread, each pair
    answered OK (the guest exits non-zero on any other
    status or a read that fails)."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        for disk in (["--disk", f"path={img}"],
                     ["--spawn-server",
                      f"{server_bin('wisp-blk')} --disk path={img}"]):
            for mode in ("vcpu", "thread"):
                rc, out, err = guest("bench op=blkread n=64 iommu=lazy",
                                     "--iommu", "--iommu-requests", mode,
                                     *disk)
                expect(rc == 0 and value(out, "bench-ops") == "64",
                       f"{disk[0]} {mode}: exit {rc}", out, err)


def case_virtio_iommu_server_refused():
    """Behind --iommu a server that does not translate (wisp-ioreq-test
    asks for no IOREQ_F_IOMMU) is refused with a message naming the
    feature, and the VM does not start."""
    rc, out, err = guest("iommu", "--iommu", "--spawn-server",
                         server_bin("wisp-ioreq-test"))
    expect(rc == 1 and "IOREQ_F_IOMMU" in err and "refused" in err,
           f"exit {rc}", out, err)
    expect("iommu-" not in out, "the guest ran", out, err)


def case_virtio_iommu_off():
    """--iommu needs the ACPI VIOT; a disk behind the IOMMU refuses a
    driver that does not accept ACCESS_PLATFORM, one with iommu=off
    takes it and works untranslated."""
    rc, out, err = run(["run", "--kernel", GUEST, "--iommu", "--acpi",
                        "off"])
    expect(rc == 1 and "--iommu" in err and "VIOT" in err, f"exit {rc}",
           out, err)
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        rc, out, err = guest("blk blkbase=0xd0001000", "--iommu",
                             "--disk", f"path={img}")
        expect(rc == 4 and "FEATURES_OK refused" in out,
               f"exit {rc}: a translated disk took a GPA driver", out, err)
        rc, out, err = guest("blk blkbase=0xd0001000", "--iommu",
                             "--disk", f"path={img},iommu=off")
        expect(rc == 0, f"exit {rc}", out, err)
        for k in ("write", "read", "flush"):
            expect(value(out, f"blk-{k}-status") == "0", f"{k} status",
                   out, err)


def case_virtio_iommu_server_off():
    """--server-iommu off leaves a server outside --iommu, as iommu=off a
    disk: wisp-blk's device (window 1) refuses a driver without
    ACCESS_PLATFORM while behind the IOMMU, and takes it, working
    untranslated, with the option; that server gets no IOMMU channel (no
    counters line), and one that cannot translate (wisp-ioreq-test) is no
    longer refused. The option needs a server before it."""
    rc, out, err = run(["run", "--kernel", GUEST, "--iommu",
                        "--server-iommu", "off"])
    expect(rc == 1 and "--server-iommu" in err and "after" in err,
           f"exit {rc}: --server-iommu without a server", out, err)
    rc, out, err = run(["run", "--kernel", GUEST, "--iommu",
                        "--server", "/nonexistent", "--server-iommu",
                        "maybe"])
    expect(rc == 1 and "--server-iommu" in err, f"exit {rc}: a bad value",
           out, err)
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        srv = ["--spawn-server", f"{server_bin('wisp-blk')} --disk path={img}"]
        for onoff in (["--server-iommu", "on"], []):
            rc, out, err = guest("blk blkbase=0xd0001000", "--iommu", *srv,
                                 *onoff)
            expect(rc == 4 and "FEATURES_OK refused" in out,
                   f"exit {rc} with {onoff}: a translated server disk "
                   "took a GPA driver", out, err)
        rc, out, err = guest("blk blkbase=0xd0001000", "--iommu", *srv,
                             "--server-iommu", "off")
        expect(rc == 0, f"exit {rc}", out, err)
        for k in ("write", "read", "flush"):
            expect(value(out, f"blk-{k}-status") == "0", f"{k} status",
                   out, err)
        expect("wisp-blk: IOMMU: " not in err,
               "the untranslated server has an IOMMU table", out, err)
    # Window 0 is the IOMMU's, so the server's is window 1.
    rc, out, err = guest("ioreq-order n=300 base=0xd0001000", "--iommu",
                         "--spawn-server", server_bin("wisp-ioreq-test"),
                         "--server-iommu", "off")
    expect(rc == 0 and value(out, "ioreq-magic") == str(0x10c0ffee) and
           value(out, "ioreq-errors") == "0",
           f"exit {rc}: wisp-ioreq-test outside --iommu", out, err)


# --- Jails (issue 13, docs/jail.md): spawned servers and wisp jail ---
# tests/jail/probe.c tries, from inside the jail, what the jail must
# stop; each case checks the errno of every attempt, and the control
# case runs the same attempts unjailed to see each of them succeed.

NOBODY = 65534


def jail_probe_bin():
    build = os.path.dirname(os.path.dirname(os.path.dirname(GUEST)))
    p = os.path.join(build, "tests", "jail", "jail-probe")
    if not os.path.exists(p):
        raise Fail(f"{p} not built")
    return p


class ProbeTargets:
    """What the probe aims at: a host file, a TCP listener on 127.0.0.1,
    a listening unix socket and a sibling process of the jailed user's."""

    def __enter__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(4)
        self.unix_path = os.path.join(self.dir.name, "host.sock")
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.unix_path)
        self.unix.listen(4)
        self.sibling = subprocess.Popen(["sleep", "60"], user=NOBODY,
                                        group=NOBODY)
        self.host_file = os.path.abspath(__file__)
        self.spec = (f"file=/etc/passwd,file={self.host_file},"
                     f"tcp={self.tcp.getsockname()[1]},"
                     f"unix={self.unix_path},pid={self.sibling.pid}")
        return self

    def __exit__(self, *a):
        self.sibling.kill()
        self.sibling.wait()
        self.tcp.close()
        self.unix.close()
        self.dir.cleanup()

    def jailed(self, uid=NOBODY, gid=NOBODY, net="ENETUNREACH"):
        t = self
        return [f"open /etc/passwd: ENOENT", f"open {t.host_file}: ENOENT",
                f"tcp 127.0.0.1 {t.tcp.getsockname()[1]}: {net}",
                f"unix {t.unix_path}: ENOENT",
                f"ptrace {t.sibling.pid}: ESRCH",
                f"kill {t.sibling.pid}: ESRCH",
                "setuid 0: EPERM", "unshare CLONE_NEWNS: EPERM",
                "mount tmpfs: EPERM", "chroot .: EPERM",
                "caps eff/prm/inh: 0/0/0/0/0/0",
                "caps bounding: 0 ambient: 0", "no_new_privs: 1",
                f"uid: {uid} gid: {gid} groups: 0", "end"]

    def server_jailed(self, uid=NOBODY, gid=NOBODY):
        """A spawned server's jail also caps its open files at 256."""
        return self.jailed(uid, gid) + ["rlimit files: 256 memory: "
                                        "18446744073709551615"]


def probe_report(err):
    return [l[len("jail-probe: "):] for l in err.splitlines()
            if l.startswith("jail-probe: ")]


def expect_report(err, want, what, out=""):
    got = probe_report(err)
    bad = [w for w in want if w not in got]
    expect(not bad, f"{what}: probe lines missing {bad}; got {got}", out,
           err)


def spawned_probe(t, *extra):
    return guest("ioreq-read", "--cpus", "2", *extra, "--spawn-server",
                 server_bin("wisp-ioreq-test") + " --probe " + t.spec)


def expect_counter(rc, out, err, what):
    got = [l.split(": ")[1] for l in out.splitlines()
           if l.startswith("ioreq-counter: ")]
    expect(rc == 0 and got == ["1", "2", "3"],
           f"{what}: exit {rc}, counter reads {got}", out, err)


def case_jail_spawned_server():
    """A spawned server is jailed by default: no host file, no network,
    no neighbour, no privilege; and it still serves the guest."""
    if os.geteuid() != 0:
        raise Skip("the jail's uid switch needs root")
    with ProbeTargets() as t:
        rc, out, err = spawned_probe(t)
        expect_counter(rc, out, err, "jailed server")
        expect_report(err, t.server_jailed(), "jailed server", out)


def case_jail_spawned_server_ids():
    """--jail-uid/--jail-gid choose the jailed server's ids."""
    if os.geteuid() != 0:
        raise Skip("the jail's uid switch needs root")
    with ProbeTargets() as t:
        rc, out, err = spawned_probe(t, "--jail-uid", "1234", "--jail-gid",
                                     "4321")
        expect_counter(rc, out, err, "jailed server")
        expect_report(err, t.server_jailed(1234, 4321), "--jail-uid 1234",
                      out)


def case_jail_control_no_jail():
    """The control: with --no-jail every probe succeeds, so a probe line
    of the jailed cases can only come from the jail. --seccomp off too:
    with filters wisp sets no_new_privs before it spawns anything, which
    an unjailed server inherits."""
    if os.geteuid() != 0:
        raise Skip("the probes' unjailed successes need root")
    with ProbeTargets() as t:
        rc, out, err = spawned_probe(t, "--no-jail", "--seccomp", "off")
        expect_counter(rc, out, err, "unjailed server")
        port = t.tcp.getsockname()[1]
        expect_report(err, [
            "open /etc/passwd: ok", f"open {t.host_file}: ok",
            f"tcp 127.0.0.1 {port}: ok", f"unix {t.unix_path}: ok",
            f"ptrace {t.sibling.pid}: ok", f"kill {t.sibling.pid}: ok",
            "setuid 0: ok", "unshare CLONE_NEWNS: ok", "mount tmpfs: ok",
            "chroot .: ok", "no_new_privs: 0", "uid: 0 gid: 0 groups: 0"],
            "--no-jail", out)


def jail_cmd(d, jid, *args, timeout=TIMEOUT):
    return run(["jail", "--id", jid, "--chroot-base", d, "--uid",
                str(NOBODY), "--gid", str(NOBODY)] + list(args),
               timeout=timeout)


def case_jail_cmd_probe():
    """wisp jail runs its program in new namespaces, pivoted into
    DIR/NAME/ID/root, as the given ids, with nothing to escalate; with
    --no-netns it keeps the host's network."""
    if os.geteuid() != 0:
        raise Skip("wisp jail needs root")
    with ProbeTargets() as t, tempfile.TemporaryDirectory() as d:
        rc, out, err = jail_cmd(d, "probe", "--exec-file", jail_probe_bin(),
                                "--", t.spec)
        expect(rc == 0, f"exit {rc}", out, err)
        expect_report(err, t.jailed(), "wisp jail", out)
        expect(os.path.exists(os.path.join(d, "jail-probe", "probe", "root",
                                           "jail-probe")),
               "the program is not in DIR/NAME/ID/root", out, err)
        rc, out, err = jail_cmd(d, "probe", "--no-netns", "--exec-file",
                                jail_probe_bin(), "--", t.spec)
        expect(rc == 0, f"--no-netns: exit {rc}", out, err)
        expect_report(err, t.jailed(net="ok"), "wisp jail --no-netns", out)
        # RLIMIT_AS high enough for the sanitizers' reservations (64 TiB).
        rc, out, err = jail_cmd(d, "probe", "--rlimit",
                                "files=64,memory=70368744177664",
                                "--exec-file", jail_probe_bin(), "--", t.spec)
        expect(rc == 0, f"--rlimit: exit {rc}", out, err)
        expect_report(err, ["rlimit files: 64 memory: 70368744177664"],
                      "wisp jail --rlimit", out)
        rc, out, err = jail_cmd(d, "probe", "--rlimit", "files=0",
                                "--exec-file", jail_probe_bin(), "--", t.spec)
        expect(rc == 1 and "--rlimit files" in err, f"files=0: exit {rc}",
               out, err)


def case_jail_cmd_vm():
    """A VM runs in wisp jail (the guest from the jail's root), and the
    jailed wisp's spawned server is jailed again: it sees neither the
    host nor wisp's jail."""
    if os.geteuid() != 0:
        raise Skip("wisp jail needs root")
    with ProbeTargets() as t, tempfile.TemporaryDirectory() as d:
        root = os.path.join(d, "wisp", "vm", "root")
        os.makedirs(root)
        subprocess.run(["cp", GUEST, server_bin("wisp-ioreq-test"), root],
                       check=True)
        rc, out, err = jail_cmd(d, "vm", "--", "run", "--kernel",
                                "/test-guest.elf", "--debug-exit",
                                "--cmdline", "test=hello")
        expect(rc == 0 and "wisp-test-guest: done" in out,
               f"hello in the jail: exit {rc}", out, err)
        rc, out, err = jail_cmd(d, "vm", "--", "run", "--kernel",
                                "/test-guest.elf", "--debug-exit",
                                "--cmdline", "test=ioreq-read", "--cpus",
                                "2", "--spawn-server",
                                "/wisp-ioreq-test --probe "
                                "file=/wisp,file=/test-guest.elf," + t.spec)
        expect_counter(rc, out, err, "server of a jailed wisp")
        # Inside a user namespace of its own (wisp is not root there) the
        # server is root of that namespace, without a capability.
        want = [l for l in t.jailed(0, 0) if not l.startswith("setuid")]
        expect_report(err, want + ["open /wisp: ENOENT",
                                   "open /test-guest.elf: ENOENT"],
                      "server of a jailed wisp", out)


def cgroup2_root():
    for line in open("/proc/self/mountinfo"):
        left, _, right = line.partition(" - ")
        if right.startswith("cgroup2 "):
            return left.split()[4]
    return None


def case_jail_cmd_cgroup():
    """--cgroup-parent/--cgroup: the jailed process runs in a cgroup v2
    group of its own with the values written."""
    if os.geteuid() != 0:
        raise Skip("wisp jail needs root")
    cg = cgroup2_root()
    if not cg:
        raise Skip("no cgroup2 file system mounted")
    parent = f"wisp-test-{os.getpid()}"
    group = os.path.join(cg, parent, "cg")
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.Popen([WISP, "jail", "--id", "cg", "--chroot-base", d,
                              "--uid", str(NOBODY), "--gid", str(NOBODY),
                              "--exec-file", jail_probe_bin(),
                              "--cgroup-parent", parent, "--cgroup",
                              "cgroup.max.descendants=0", "--",
                              "sleep=3"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            procs = []
            for _ in range(200):
                try:
                    procs = open(os.path.join(group,
                                              "cgroup.procs")).read().split()
                except OSError:
                    procs = []
                if len(procs) == 2:
                    break
                time.sleep(0.01)
            limit = open(os.path.join(group,
                                      "cgroup.max.descendants")).read()
            out, err = p.communicate(timeout=20)
            out, err = out.decode(), err.decode()
            # The jailer and its child, PID 1 of the jail.
            expect(len(procs) == 2 and str(p.pid) in procs,
                   f"cgroup.procs {procs}, jailer {p.pid}", out, err)
            expect(limit.strip() == "0", f"cgroup.max.descendants {limit}",
                   out, err)
            expect(p.returncode == 0, f"exit {p.returncode}", out, err)
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()
            for g in (group, os.path.dirname(group)):
                if os.path.isdir(g):
                    os.rmdir(g)


def case_jail_cmd_errors():
    """wisp jail refuses what it cannot do, before it changes anything."""
    rc, out, err = run(["jail", "--id", "x"])
    expect(rc == 1 and "are required" in err, f"no ids: exit {rc}", out,
           err)
    rc, out, err = run(["jail", "--id", "../x", "--chroot-base", "/tmp",
                        "--uid", "1", "--gid", "1", "--", "run"])
    expect(rc == 1 and "--id '../x'" in err, f"bad id: exit {rc}", out, err)
    rc, out, err = run(["jail", "--id", "x", "--chroot-base", "/tmp",
                        "--uid", "1", "--gid", "1", "run"])
    expect(rc == 1 and "after --" in err, f"no --: exit {rc}", out, err)


# seccomp (docs/sandbox.md): --seccomp-test KIND makes that thread kind
# call uselib, which no table allows, right after its filter is in. With
# the default (kill) the process must die of SIGSYS at that call; with
# --seccomp log it must survive it and go on as usual.
SIGSYS_RC = -signal.SIGSYS


def seccomp_expect(kind, rc, err, mode, ok_rc=0):
    called = f"seccomp test: {kind} thread calls uselib" in err
    survived = f"seccomp test: {kind} thread survived" in err
    if mode == "kill":
        expect(called and not survived and rc == SIGSYS_RC,
               f"{kind}, kill: exit {rc}, not SIGSYS at the test call",
               "", err)
    else:
        expect(called and survived and rc == ok_rc,
               f"{kind}, log: exit {rc}, did not survive the test call",
               "", err)


def seccomp_guest_kind(kind, *extra):
    for mode in ("kill", "log"):
        rc, out, err = guest("hello", "--seccomp", mode, "--seccomp-test",
                             kind, *extra)
        seccomp_expect(kind, rc, err, mode)
        if mode == "log":
            expect("wisp-test-guest: done" in out, f"{kind}: guest", out,
                   err)


def case_seccomp_vcpu():
    """A vCPU thread's filter is in before its first KVM_RUN."""
    seccomp_guest_kind("vcpu")


def case_seccomp_iothread():
    """An in-process device's I/O thread (virtio-rng's) is filtered."""
    seccomp_guest_kind("iothread", "--rng")


def case_seccomp_loop():
    """The main thread's event loop is filtered once the vCPUs run."""
    seccomp_guest_kind("loop")


def case_seccomp_off_and_bad_arguments():
    """--seccomp off installs nothing (the test call survives); bad
    values are refused up front; --seccomp-dump prints every kind."""
    rc, out, err = guest("hello", "--seccomp", "off", "--seccomp-test",
                         "vcpu")
    expect(rc == 0 and "vcpu thread survived" in err, f"off: exit {rc}",
           out, err)
    for args, msg in ((["--seccomp", "strict"], "not kill, log or off"),
                      (["--seccomp-test", "gpu"], "no such thread kind")):
        rc, out, err = guest("hello", *args)
        expect(rc == 1 and msg in err, f"{args}: exit {rc}", out, err)
    rc, out, err = run(["--seccomp-dump"])
    for kind in ("vcpu", "iothread", "loop", "api", "metrics", "server",
                 "uffd", "uffd-monitor"):
        expect(rc == 0 and re.search(rf"^\| {kind} \| \d+ \| \d+ \|$", out,
                                     re.M), f"dump: {kind}", out, err)
    # docs/sandbox.md's table is this dump of a release build.
    if "sanitizer build" not in out:
        doc = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                           "..", "docs", "sandbox.md")
        with open(doc) as f:
            text = f.read()
        table = "\n".join(line for line in out.splitlines()
                          if line.startswith("|"))
        expect(table in text, "docs/sandbox.md's counts differ from "
               "wisp --seccomp-dump", out, "")


def api_proc(d, kind, mode):
    sock = os.path.join(d, "api.sock")
    p = subprocess.Popen([WISP, "--api-sock", sock, "--seccomp", mode,
                          "--seccomp-test", kind],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    deadline = time.time() + TIMEOUT
    while not os.path.exists(sock) and time.time() < deadline:
        if p.poll() is not None:
            break
        time.sleep(0.01)
    return p, sock


def finish(p, kill_after):
    """The process's exit status and stderr: waits, or stops it with
    SIGINT after kill_after seconds (a survivor keeps serving)."""
    try:
        _, err = p.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)
        try:
            _, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            raise Fail("did not stop on SIGINT")
    return p.returncode, err.decode(errors="replace")


def case_seccomp_api():
    """wisp-api's HTTP thread is filtered before it reads a request: the
    first connection's callback installs it."""
    for mode in ("kill", "log"):
        with tempfile.TemporaryDirectory() as d:
            p, sock = api_proc(d, "api", mode)
            c = socket.socket(socket.AF_UNIX)
            try:
                c.connect(sock)
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                c.settimeout(5)
                try:
                    c.recv(4096)
                except OSError:
                    pass
            except BaseException:
                # no wisp left behind when the test itself fails
                p.kill()
                p.wait()
                raise
            finally:
                c.close()
            rc, err = finish(p, 2 if mode == "log" else TIMEOUT)
            # A survivor stopped by SIGINT before any VM exits 130.
            seccomp_expect("api", rc, err, mode, ok_rc=128 + signal.SIGINT)


def case_seccomp_metrics():
    """wisp-api's metrics thread is filtered as it starts."""
    for mode in ("kill", "log"):
        with tempfile.TemporaryDirectory() as d:
            p, _ = api_proc(d, "metrics", mode)
            rc, err = finish(p, 2 if mode == "log" else TIMEOUT)
            seccomp_expect("metrics", rc, err, mode,
                           ok_rc=128 + signal.SIGINT)


def case_seccomp_server():
    """A device server installs its filter once it listens: the test
    kind reaches it through the environment, as from a spawning wisp."""
    for mode in ("kill", "log"):
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, WISP_SECCOMP=mode,
                       WISP_SECCOMP_TEST="server")
            p = subprocess.Popen([server_bin("wisp-rng"), "--socket",
                                  os.path.join(d, "s")], env=env,
                                 stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL)
            rc, err = finish(p, 2 if mode == "log" else TIMEOUT)
            # SIGINT's default action ends a survivor.
            seccomp_expect("server", rc, err, mode, ok_rc=-signal.SIGINT)
    # Spawned by wisp: the server inherits wisp's mode and test kind.
    rc, out, err = guest("hello", "--seccomp-test", "server",
                         "--spawn-server", server_bin("wisp-rng"))
    expect(rc != 0 and "server thread calls uselib" in err and
           "survived" not in err, f"spawned: exit {rc}", out, err)


def case_seccomp_uffd():
    """wisp-uffd installs its filter once it listens."""
    for mode in ("kill", "log"):
        with tempfile.TemporaryDirectory() as d:
            mem = os.path.join(d, "mem")
            with open(mem, "wb") as f:
                f.truncate(4096)
            p = subprocess.Popen([server_bin("wisp-uffd"), "--socket",
                                  os.path.join(d, "s"), "--mem", mem,
                                  "--seccomp", mode], env=dict(
                                      os.environ, WISP_SECCOMP_TEST="uffd"),
                                 stderr=subprocess.PIPE)
            rc, err = finish(p, 2 if mode == "log" else TIMEOUT)
            seccomp_expect("uffd", rc, err, mode, ok_rc=-signal.SIGINT)


def case_seccomp_uffd_monitor():
    """The uffd restore's monitor thread is filtered as it starts."""
    with tempfile.TemporaryDirectory() as d:
        st, mem, _ = tick_snapshot(d)
        for mode in ("kill", "log"):
            h, sock = start_uffd(d, mem)
            p = restore(st, sock, "--mem-backend", "uffd", "--seccomp",
                        mode, "--seccomp-test", "uffd-monitor")
            if mode == "log":
                # The restored guest counts on; SIGINT ends it (128+2).
                ticks_above(p, 0)
                rc, err = stop(p)
            else:
                rc, err = finish(p, TIMEOUT)
            h.kill()
            h.wait()
            seccomp_expect("uffd-monitor", rc, err, mode,
                           ok_rc=128 + signal.SIGINT)


if __name__ == "__main__":
    sys.exit(run_main(globals(), __doc__))
