#!/usr/bin/python3.11
"""Where a worker's time went, against a workload whose answer is known.

A Debian python3.11 titles itself `odoo: WorkerHTTP <pid> `, blocks on stdin
until erpscope shows it as odoo_http, then spins on CPU ~1.0 s, sleeps 1.0 s,
does 64 O_DIRECT 4 KiB reads and 32 fsync'd 4 KiB writes, prints its own
monotonic timings as JSON and exits. We scrape once after it has exited (an
exited worker is kept for exactly one more scrape) and compare:
  cpu          in [0.9 * spin, 1.1 * spin + 0.15], where spin is the CPU time
               the kernel itself charged to the spin (time.process_time: the
               same as its wall time on a quiet machine; on a busy one the
               rest shows up as runqueue time, which the lifetime check sees)
  sleep        (t_go - t_ready) + sleep, within 10%
  iowait       > 0 (and no more than the I/O phase lasted)
  cpu + off    (t_end - t_ready), within 5%
  context switches: voluntary >= 2 (the stdin read and the sleep block), and
               both kinds agree with the kernel's own getrusage() counts
"""

import json
import os
import random
import subprocess
import time

import lib

WORKLOAD = r"""
import json, mmap, os, resource, sys, time
import setproctitle
data_path, wr_path = sys.argv[1], sys.argv[2]
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
rd = os.open(data_path, os.O_RDONLY | os.O_DIRECT)
wr = os.open(wr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
buf = mmap.mmap(-1, 4096)            # page aligned, as O_DIRECT wants
block = b"w" * 4096
offsets = [int(x) for x in sys.argv[3].split(",")]
print("ready", flush=True)
ru_ready = resource.getrusage(resource.RUSAGE_SELF)
t_ready = time.monotonic()
sys.stdin.readline()                 # interruptible sleep until the test says go
t_go = time.monotonic()
c_go = time.process_time()
end = t_go + 1.0
n = 0
while time.monotonic() < end:        # on CPU
    n += 1
t_spun = time.monotonic()
c_spun = time.process_time()
time.sleep(1.0)                      # interruptible sleep
t_slept = time.monotonic()
for off in offsets:                  # iowait: O_DIRECT bypasses the page cache
    if os.preadv(rd, [buf], off) != 4096:
        raise SystemExit("short O_DIRECT read")
for i in range(32):                  # iowait / blocked: fsync'd writes
    os.write(wr, block)
    os.fsync(wr)
t_io = time.monotonic()
os.close(rd)
os.close(wr)
t_end = time.monotonic()
ru_end = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(pid=os.getpid(), t_ready=t_ready, t_go=t_go, spin_wall=t_spun - t_go,
                      spin=c_spun - c_go, sleep=t_slept - t_spun, io=t_io - t_slept,
                      t_end=t_end, loops=n, cpu_total=time.process_time(),
                      nvcsw_ready=ru_ready.ru_nvcsw, nivcsw_ready=ru_ready.ru_nivcsw,
                      nvcsw_end=ru_end.ru_nvcsw, nivcsw_end=ru_end.ru_nivcsw)),
      flush=True)
"""

DATA_SIZE = 16 << 20


# The test, not the workload, writes the 16 MiB file: the workload's time
# before t_ready may land on its worker (if it is tracked from exec on) and
# must stay small next to the 5% budget of the lifetime check.

def make_data_file(d):
    path = os.path.join(d, "data")
    chunk = os.urandom(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(DATA_SIZE >> 20):
            os.write(fd, chunk)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return path


def run(t, mode):
    work = lib.tempdir(base="/var/tmp")
    data = make_data_file(work)
    offsets = ",".join(str(random.randrange(DATA_SIZE // 4096) * 4096) for _ in range(64))

    with lib.Daemon(f"--bpf.attach-mode={mode}") as d:
        p = lib.spawn([lib.PYTHON, "-c", WORKLOAD, data, os.path.join(work, "wr"), offsets],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        t.require(line.strip() == "ready", "workload started",
                  f"got {line!r}, exit {p.poll()}")

        info, took, _ = lib.wait_worker(d, p.pid, timeout=10.0, role="odoo_http")
        t.require(info is not None, f"pid {p.pid} shows in erpscope_worker_info as odoo_http",
                  f"not within 10s; last seen: {lib.worker_info(_, p.pid)}")
        lib.log(f"tracked as {info} after {took:.2f}s")
        t.check(info.get("worker") == str(p.pid), "worker label is the pid",
                f"worker={info.get('worker')!r}")

        p.stdin.write("go\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=60)
        t.require(p.returncode == 0, "workload finished", f"exit {p.returncode}")
        r = json.loads(out.strip().splitlines()[-1])
        lib.log("workload says: " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else
                                             f"{k}={v}" for k, v in r.items()))

        time.sleep(0.5)  # let the exit event reach the daemon; no scrape in between
        m = d.scrape()   # the one scrape that still has the exited worker

        w = str(p.pid)
        info = lib.worker_info(m, p.pid)
        t.check(info is not None and info.get("role") == "odoo_http",
                "after exit, the worker is still there for one more scrape with role odoo_http",
                f"worker_info={info}")
        cpu = m.value("erpscope_cpu_seconds_total", role="odoo_http", worker=w)
        off = lib.offcpu(m, "odoo_http", w)
        vol = m.value("erpscope_context_switches_total", role="odoo_http", worker=w,
                      kind="voluntary")
        invol = m.value("erpscope_context_switches_total", role="odoo_http", worker=w,
                        kind="involuntary")
        lib.log(f"erpscope says: cpu={cpu} offcpu={off} voluntary={vol} involuntary={invol}")
        t.require(cpu is not None, "erpscope_cpu_seconds_total has the worker",
                  f"series: {lib.worker_series(m, p.pid)[:10]}")

        spin, sleep, io = r["spin"], r["sleep"], r["io"]
        if spin < 0.8 * r["spin_wall"]:
            lib.log(f"WARNING: the machine is busy: the 1 s spin got only {spin:.3f}s of CPU")
        t.between(cpu, 0.9 * spin, 1.1 * spin + 0.15,
                  f"cpu seconds match the spin's {spin:.3f}s of CPU "
                  f"({r['spin_wall']:.3f}s of wall)")
        t.check(cpu <= r["cpu_total"] + 0.02, "cpu seconds are no more than the process's "
                "whole CPU time (getrusage)", f"cpu={cpu:.4f} process={r['cpu_total']:.4f}")
        want_sleep = (r["t_go"] - r["t_ready"]) + sleep
        t.near(off["sleep"], want_sleep, 0.10,
               "offcpu sleep matches the stdin wait plus the 1 s sleep")
        t.check(off["iowait"] > 0, "offcpu iowait > 0 after O_DIRECT reads and fsyncs",
                f"iowait={off['iowait']}, io phase lasted {io:.4f}s")
        t.check(off["iowait"] + off["blocked"] <= io * 1.10 + 0.02,
                "iowait + blocked no longer than the I/O phase",
                f"iowait={off['iowait']:.4f} blocked={off['blocked']:.4f} io={io:.4f}")
        lifetime = r["t_end"] - r["t_ready"]
        accounted = cpu + sum(off.values())
        t.near(accounted, lifetime, 0.05, "cpu + all offcpu equals the lifetime")
        t.check(vol is not None and vol >= 2, "voluntary context switches >= 2",
                f"voluntary={vol}")
        # The kernel's own counts: from before the stdin wait (erpscope may
        # only see the process from its retitle on) to its exit (a few more).
        for kind, key in (("voluntary", "nvcsw"), ("involuntary", "nivcsw")):
            got = vol if kind == "voluntary" else invol
            lo = r[f"{key}_end"] - r[f"{key}_ready"] - 2
            hi = r[f"{key}_end"] + 5
            t.between(got, lo, hi, f"{kind} context switches agree with getrusage()")

        m2 = d.scrape()  # the next one must have dropped it
        left = lib.worker_series(m2, p.pid)
        t.check(not left, "the exited worker is gone one scrape later",
                f"{len(left)} series left, e.g. {left[:3]}")


if __name__ == "__main__":
    lib.main(lib.each_attach_mode(run))
