#!/usr/bin/python3.11
"""Block I/O attributed to the worker that issued it, against known counts.

A Debian python3.11 titled like an Odoo cron worker waits on stdin; between
two scrapes it does N O_DIRECT 4 KiB reads and N O_DIRECT 8 KiB writes on a
preallocated file on a real block device, then waits again (alive, so its
series stay). Asserted on the deltas between the two scrapes:
  reads   ops == N and bytes == N * 4096 exactly, on the file's disk
  writes  ops == N and bytes == N * 8192 exactly: each pwritev is one
          request (synchronous, 56 KiB apart, so nothing merges), counted
          at its first issue in process context; over all workers >= N
  queue   the queue-latency histogram (sampled at issue too) counted at
          least N reads and N writes where the probe starts requests at
          block_io_start (v6.5+), and some reads before
  device  the device-latency histogram grew for reads and writes; it needs
          the completion, which runs in interrupt context on whatever task
          is current, and a kernel may run no BPF there (see README), so
          it is not held to N
  iowait  the worker's iowait on that disk is > 0, and iowait summed over
          devices equals its offcpu{reason="iowait"}
Both tracepoint flavours (tp_btf and raw_tp) are run.
"""

import os
import random
import subprocess

import lib

N = 200
FILE_SIZE = 32 << 20

WORKLOAD = r"""
import mmap, os, sys
import setproctitle
path, offsets = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
setproctitle.setproctitle(f"odoo: WorkerCron {os.getpid()} blkdb")
fd = os.open(path, os.O_RDWR | os.O_DIRECT)
rbuf = mmap.mmap(-1, 4096)
wbuf = mmap.mmap(-1, 8192)
wbuf.write(b"x" * 8192)
print("ready", flush=True)
sys.stdin.readline()
for off in offsets:
    if os.preadv(fd, [rbuf], off) != 4096:
        raise SystemExit("short read")
for i in range(len(offsets)):
    if os.pwritev(fd, [wbuf], (i * 8192 * 7) % (32 << 20) // 8192 * 8192) != 8192:
        raise SystemExit("short write")
print("done", flush=True)
sys.stdin.readline()
"""


def disk_of(path):
    """Kernel name of the whole disk holding path (vda for vda1)."""
    st = os.stat(path)
    sys_dir = os.path.realpath(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    if os.path.exists(os.path.join(sys_dir, "partition")):
        sys_dir = os.path.dirname(sys_dir)
    with open(os.path.join(sys_dir, "uevent")) as f:
        for line in f:
            if line.startswith("DEVNAME="):
                return line.strip().split("=", 1)[1]
    return os.path.basename(sys_dir)


def make_file(d):
    path = os.path.join(d, "blk.dat")
    chunk = os.urandom(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(FILE_SIZE >> 20):
            os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def io(m, dev, op, worker, what):
    return m.value(f"erpscope_disk_io_{what}_total", 0.0, device=dev, op=op, role="odoo_cron",
                   worker=worker)


def hist_count(m, name, dev, op):
    return m.value(name + "_count", 0.0, device=dev, op=op)


def iowait_by_dev(m, worker):
    return {dict(ls)["device"]: v for (n, ls), v in m.items()
            if n == "erpscope_iowait_seconds_total" and dict(ls).get("worker") == worker}


def run(t, mode):
    work = lib.tempdir(base="/var/tmp")
    path = make_file(work)
    dev = disk_of(path)
    lib.log(f"file {path} is on disk {dev}")
    offsets = ",".join(str(random.randrange(FILE_SIZE // 4096) * 4096) for _ in range(N))

    with lib.Daemon(f"--bpf.attach-mode={mode}") as d:
        p = lib.spawn([lib.PYTHON, "-c", WORKLOAD, path, offsets], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, text=True)
        t.require(p.stdout.readline().strip() == "ready", "workload started")
        info, took, _ = lib.wait_worker(d, p.pid, timeout=10.0, role="odoo_cron")
        t.require(info is not None, f"pid {p.pid} tracked as odoo_cron")
        w = str(p.pid)

        a = d.scrape()
        p.stdin.write("go\n")
        p.stdin.flush()
        t.require(p.stdout.readline().strip() == "done", "workload did its I/O")
        b = d.scrape()
        p.stdin.write("exit\n")
        p.stdin.flush()
        p.wait(timeout=10)

        reads = io(b, dev, "read", w, "ops") - io(a, dev, "read", w, "ops")
        rbytes = io(b, dev, "read", w, "bytes") - io(a, dev, "read", w, "bytes")
        writes = io(b, dev, "write", w, "ops") - io(a, dev, "write", w, "ops")
        wbytes = io(b, dev, "write", w, "bytes") - io(a, dev, "write", w, "bytes")
        lib.log(f"deltas: reads={reads} rbytes={rbytes} writes={writes} wbytes={wbytes}")
        t.check(reads == N, f"{N} O_DIRECT reads counted on {dev} for the worker",
                f"got {reads}")
        t.check(rbytes == N * 4096, f"read bytes == {N} x 4096", f"got {rbytes}")
        t.check(writes == N, f"{N} O_DIRECT writes counted on {dev} for the worker",
                f"got {writes}")
        t.check(wbytes == N * 8192, f"write bytes == {N} x 8192", f"got {wbytes}")
        all_w = sum(v for (n, ls), v in b.items() if n == "erpscope_disk_io_ops_total"
                    and dict(ls).get("device") == dev and dict(ls).get("op") == "write")
        all_w0 = sum(v for (n, ls), v in a.items() if n == "erpscope_disk_io_ops_total"
                     and dict(ls).get("device") == dev and dict(ls).get("op") == "write")
        t.check(all_w - all_w0 >= N, f"at least {N} writes counted on {dev} over all workers",
                f"got {all_w - all_w0}")

        q = "erpscope_disk_queue_latency_seconds"
        if "start_hook=block_io_start" in d.log_text():
            for op in ("read", "write"):
                got = hist_count(b, q, dev, op) - hist_count(a, q, dev, op)
                t.check(got >= N, f"{q} counted the {N} {op}s (sampled at issue)", f"got {got}")
        t.check(hist_count(b, q, dev, "read") > 0, f"{q} has reads on {dev}")
        # Device time needs the completion, which BPF may not see (see README).
        name = "erpscope_disk_io_latency_seconds"
        for op in ("read", "write"):
            got = hist_count(b, name, dev, op) - hist_count(a, name, dev, op)
            t.check(got > 0, f"{name} grew for {op}s on {dev}", f"got {got}")

        split = iowait_by_dev(b, w)
        total = lib.offcpu(b, "odoo_cron", w)["iowait"]
        lib.log(f"iowait by device {split}, offcpu iowait {total}")
        t.check(split.get(dev, 0) > 0, f"the worker's iowait is split onto {dev}",
                f"{split}")
        t.near(sum(split.values()), total, 1e-6, "iowait over devices sums to offcpu iowait",
               abs_tol=1e-9)


if __name__ == "__main__":
    lib.main(lib.each_attach_mode(run))
