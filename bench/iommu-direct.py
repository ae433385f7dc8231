#!/usr/bin/env python3
"""What the virtio-iommu costs per request on the host's KVM (direct, no
nested rig): the freestanding test guest's polling virtio-blk driver reads
4 KiB blocks at random offsets (test=bench op=blkread), timed with rdtsc
in the guest, and the host CPU wisp (and its wisp-blk) used, from
wait4()'s rusage. The setups, each in and out of process:

  in  / oop        the disk in wisp, or in wisp-blk (--spawn-server)
  none             no --iommu
  map              --iommu, the driver maps its buffers once: what the
                   translation of every ring and buffer access costs
  strict           --iommu, MAP before and UNMAP after every read (what a
                   guest in iommu.strict=1 mode does per request): the two
                   extra requests, and for oop their round trips to the
                   server
  lazy             --iommu, a MAP per read at alternating IOVAs sent in one
                   kick with the UNMAP of the previous read's (what Linux
                   6.12 does with iommu.strict=0: the queued UNMAPs ride
                   on the next MAP's sync): one IOMMU round trip per read
  strict/vcpu      strict and lazy with the IOMMU's requests in the vCPU
  lazy/vcpu        that sent them (--iommu-requests vcpu) instead of on its
                   I/O thread, kicked through an ioeventfd, with its look
                   for the next request (the default)
  lazy/np          lazy without that look (--iommu-poll 0)

Per setup the median of RUNS runs (the setups interleaved); host CPU per read is the difference
between a run of N and one of N/10 reads, divided by the reads between
(boot and teardown cancel out). The polling driver spins while it waits,
so host CPU per read includes the vCPU's waiting: it is close to the
latency plus the I/O threads' work. The machine may be shared: compare
ratios taken in one invocation.

usage: iommu-direct.py [--runs R] [--n N] [--modes M,M] BUILD_DIR
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile


def run_cpu(wisp, guest, args, cmdline):
    """(guest cycles per read, host CPU seconds of wisp and the children
    it reaped: a spawned wisp-blk)"""
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 2)
        out = os.open(tmp_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.execv(wisp, [wisp, "run", "--kernel", guest, "--debug-exit",
                        "--cmdline", cmdline] + args)
    _, status, ru = os.wait4(pid, 0)
    text = open(tmp_out).read()
    m = re.search(r"bench-cycles-per-op: (\d+)", text)
    if os.waitstatus_to_exitcode(status) != 0 or not m:
        raise SystemExit(f"run failed ({status}): {args} {cmdline}\n{text}")
    return int(m.group(1)), ru.ru_utime + ru.ru_stime


tmp_out = ""


def main():
    global tmp_out
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--modes", help="comma-separated setups besides none")
    ap.add_argument("build")
    a = ap.parse_args()
    wisp = os.path.join(a.build, "src/cli/wisp")
    guest = os.path.join(a.build, "tests/guest/test-guest.elf")
    blk = os.path.join(a.build, "src/servers/wisp-blk")
    tmp = tempfile.mkdtemp()
    tmp_out = os.path.join(tmp, "out")
    img = os.path.join(tmp, "bench.img")
    with open(img, "wb") as f:
        f.write(os.urandom(1 << 20) * 64)  # 64 MiB, really allocated
    where = {"in": ["--disk", f"path={img}"],
             "oop": ["--spawn-server", f"{blk} --disk path={img}"]}
    modes = {"none": ([], ""), "map": (["--iommu"], " iommu=map"),
             "strict": (["--iommu"], " iommu=strict"),
             "lazy": (["--iommu"], " iommu=lazy"),
             "strict/vcpu": (["--iommu", "--iommu-requests", "vcpu"],
                             " iommu=strict"),
             "lazy/vcpu": (["--iommu", "--iommu-requests", "vcpu"],
                           " iommu=lazy"),
             "lazy/np": (["--iommu", "--iommu-poll", "0"], " iommu=lazy")}
    if a.modes:
        modes = {m: modes[m] for m in ["none"] + a.modes.split(",")
                 if m in modes}
    n1 = max(a.n // 10, 200)
    cyc = {(w, m): [] for w in where for m in modes}
    cpu = {(w, m): [] for w in where for m in modes}
    # Runs outermost: a change of the machine's load during the bench
    # hits every setup alike.
    for _ in range(a.runs):
        for w, wargs in where.items():
            for mode, (margs, mcmd) in modes.items():
                c2, t2 = run_cpu(wisp, guest, wargs + margs,
                                 f"test=bench op=blkread n={a.n}{mcmd}")
                _, t1 = run_cpu(wisp, guest, wargs + margs,
                                f"test=bench op=blkread n={n1}{mcmd}")
                cyc[(w, mode)].append(c2)
                cpu[(w, mode)].append((t2 - t1) / (a.n - n1))
    res = {k: (statistics.median(cyc[k]), statistics.median(cpu[k]))
           for k in cyc}
    print(f"virtio-iommu cost per 4 KiB read, direct KVM (pvm: "
          f"{os.path.exists('/sys/module/kvm_pvm')}), median of {a.runs} "
          f"runs of {a.n} reads (CPU: minus {n1})")
    print(f"{'setup':16}{'cycles/read':>13}{'host us/read':>14}"
          f"{'cycles vs none':>16}{'host vs none':>14}")
    for w in where:
        c0, h0 = res[(w, "none")]
        for mode in modes:
            c, h = res[(w, mode)]
            print(f"{w + ' ' + mode:16}{c:13.0f}{h * 1e6:14.1f}"
                  f"{c / c0:16.3f}{h / h0 if h0 > 0 else 0:14.3f}")
    os.unlink(img)
    if os.path.exists(tmp_out):
        os.unlink(tmp_out)
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
