#!/usr/bin/python3.11
"""Processes come and go, titles are hostile, the daemon dies hard.

- Hostile titles: a setproctitle'd `odoo: WorkerCron <pid> <db>` whose db
  and tail hold quotes, backslashes, newlines and braces, 4 KiB long, with a
  hostile comm; and a python started with `exec -a` and an argv[0] of
  invalid UTF-8, quotes, backslashes and newlines (~3 KiB: Python refuses more)
  and a 4 KiB hostile argument after it. Both are tracked and every
  scrape still passes promtool and strict UTF-8 decoding.
- A worker that exited is never tracked again (a zombie not yet reaped;
  40 short-lived pythons exiting around the daemon's re-inspections), so no
  scrape ever has duplicate series.
- A worker forked after the daemon started and retitled
  `odoo: WorkerCron <pid> mydb` shows as odoo_cron with db="mydb" within
  1.5 s of the retitle, and its series are gone within two scrapes after it
  exits.
- SIGKILL: within 5 s no es_ program is loaded and no BPF link of ours is
  left; nothing new is pinned in /sys/fs/bpf.
"""

import os
import signal
import subprocess
import time

import lib

HOSTILE_SETPROCTITLE = r"""
import os, signal, sys
import setproctitle
tail = 'my"db\\ \n\t} x="1" \\n' + "A" * 4000
setproctitle.setproctitle(f"odoo: WorkerCron {os.getpid()} " + tail)
with open("/proc/self/comm", "wb") as f:
    f.write(b'e"v\\i\nl\xff\xfe')
print("ready", flush=True)
signal.pause()
"""

# A worker that exits at once, and a parent that does not reap it for a while:
# the zombie must not be tracked again while the exited worker is still kept.
ZOMBIE_MAKER = r"""
import os, sys, time
import setproctitle
pid = os.fork()
if pid == 0:
    setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
    time.sleep(0.2)
    os._exit(0)
print(pid, flush=True)
time.sleep(2.5)
os.waitpid(pid, 0)
print("reaped", flush=True)
"""

# Short-lived pythons with a big heap: their exit (the exit event, then the
# mm torn down, then reaped) lands around the daemon's re-inspections after
# exec (0, 300, 1000 ms). An exited worker must never come back as a second
# series with the same labels.
CHURN = r"""
import sys, time
t0 = time.monotonic()
b = bytearray(200 << 20)
time.sleep(max(0.0, float(sys.argv[1]) - (time.monotonic() - t0)))
"""

# Forked by a python "master", like Odoo's prefork server does.
FORKER = r"""
import os, signal, sys, time
import setproctitle
pid = os.fork()
if pid == 0:
    setproctitle.setproctitle(f"odoo: WorkerCron {os.getpid()} mydb")
    print(f"child {os.getpid()} {time.monotonic()}", flush=True)
    signal.pause()
    os._exit(0)
_, status = os.waitpid(pid, 0)
print(f"reaped {pid} {time.monotonic()}", flush=True)
sys.stdin.readline()
"""


def body(t):
    bpffs_before = lib.bpffs_entries()
    d = lib.Daemon()
    with d:
        # -------- hostile titles
        env = dict(os.environ, PAD="p" * 8192)  # room for setproctitle's 4 KiB
        a = lib.spawn([lib.PYTHON, "-c", HOSTILE_SETPROCTITLE], stdout=subprocess.PIPE,
                      env=env)
        t.require(a.stdout.readline().strip() == b"ready", "hostile setproctitle process up")
        cmd = open(f"/proc/{a.pid}/cmdline", "rb").read().rstrip(b"\0")
        t.check(len(cmd) >= 4000, "its title really is ~4 KiB", f"{len(cmd)} bytes")

        # Python's getpath gives up on an argv[0] near PATH_MAX, so ~3 KiB there
        # plus a 4 KiB hostile argv[3]: /proc/<pid>/cmdline is over 7 KiB.
        argv0 = (b'odoo: WorkerHTTP 1 \xff\xfe\xc3\x28 "q" \\ \\" \n{x="y"}\r\t\x1b[31m'
                 + b"B" * 3000)
        arg3 = b'\xc0\x80"\\\n' * 700
        b = lib.spawn(["/bin/bash", "-c", 'exec -a "$T" /usr/bin/python3.11 -c '
                       '"import sys,time; print(1, flush=True); time.sleep(600)" "$U"'],
                      stdout=subprocess.PIPE,
                      env={b"T": argv0, b"U": arg3, b"PATH": b"/usr/bin:/bin"})
        t.require(b.stdout.readline().strip() == b"1", "exec -a process up")
        t.check(open(f"/proc/{b.pid}/cmdline", "rb").read().startswith(argv0[:40]),
                "its argv[0] is the hostile one")

        for p, what, roles in [(a, "setproctitle'd hostile WorkerCron", {"odoo_cron"}),
                               (b, "exec -a hostile argv[0]", {"odoo_http", "python"})]:
            # A fresh exec is python first, then retitles itself: wait for the title.
            want = next(iter(roles)) if len(roles) == 1 else None
            info, took, m = lib.wait_worker(d, p.pid, timeout=10.0, role=want)
            t.check(info is not None and info.get("role") in roles,
                    f"{what} (pid {p.pid}) is tracked with role in {sorted(roles)}",
                    f"got {info}")
            if info:
                lib.log(f"{what}: labels {info!r}")
                long_ = {k: len(v) for k, v in info.items() if len(v) > 256}
                t.check(not long_, f"{what}: label values stay bounded", f"{long_}")
        m = d.scrape()  # promtool + strict UTF-8 + our parser, once more
        t.check(True, "the scrape with hostile titles passes promtool and the parser")
        for p in (a, b):
            lib.kill_group(p)

        # -------- a zombie worker is not tracked twice
        z = lib.spawn([lib.PYTHON, "-c", ZOMBIE_MAKER], stdout=subprocess.PIPE, text=True)
        zpid = int(z.stdout.readline())
        problems = []
        t0 = time.monotonic()
        while z.poll() is None and time.monotonic() - t0 < 6.0:
            try:
                m = d.scrape()
                n = len(m.series("erpscope_worker_info", pid=str(zpid)))
                if n > 1:
                    problems.append(f"{n} worker_info series for pid {zpid}")
            except lib.Failure as e:
                problems.append(str(e)[:300])
            time.sleep(0.25)
        z.wait(timeout=10)
        t.check(not problems, "a worker that exited but is not reaped yet (zombie) is not "
                "tracked a second time", "; ".join(problems[:3]))

        # -------- churn: workers exiting around their re-inspection
        problems = []
        churn = []
        for i in range(40):
            churn.append(lib.spawn([lib.PYTHON, "-c", CHURN, str(0.20 + (i % 10) * 0.012)]))
            time.sleep(0.05)
            for c in churn:
                c.poll()  # reap promptly, as a prefork master does
            try:
                d.scrape()
            except lib.Failure as e:
                problems.append(str(e)[:300])
        for c in churn:
            c.wait(timeout=30)
        for _ in range(2):
            try:
                d.scrape()
            except lib.Failure as e:
                problems.append(str(e)[:300])
        t.check(not problems, "40 short-lived workers exiting around their re-inspection "
                "never give duplicate series", f"{len(problems)} bad scrapes: "
                + "; ".join(problems[:2]))

        # -------- fork after start, retitle, exit
        f = lib.spawn([lib.PYTHON, "-c", FORKER], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, text=True)
        line = f.stdout.readline().split()
        t.require(len(line) == 3 and line[0] == "child", "forked worker up", f"{line}")
        cpid, t_title = int(line[1]), float(line[2])
        seen, latency = None, None
        while time.monotonic() - t_title < 5.0:
            t_ask = time.monotonic()
            m = d.scrape()
            info = lib.worker_info(m, cpid)
            if info and info.get("role") == "odoo_cron":
                seen, latency = info, t_ask - t_title
                break
            time.sleep(0.05)
        t.check(seen is not None and latency <= 1.5,
                "a worker forked and retitled after start is odoo_cron within 1.5 s",
                f"latency {latency if latency is None else round(latency, 3)}s, "
                f"labels {seen or lib.worker_info(m, cpid)}")
        t.check(seen is not None and seen.get("db") == "mydb", 'its db label is "mydb"',
                f"{seen}")
        ppid_info = lib.worker_info(m, f.pid)
        lib.log(f"note: its parent (pid {f.pid}) -> {ppid_info}")

        # Its memory is sampled every 5 s: once it has been, that series must go too.
        t.check(lib.wait_for(lambda: any(n == "erpscope_worker_resident_memory_bytes"
                                         for n, _, _ in lib.worker_series(d.scrape(), cpid)),
                             7.0, 0.2),
                "its resident memory is sampled (erpscope_worker_resident_memory_bytes)")
        os.kill(cpid, signal.SIGTERM)
        line = f.stdout.readline().split()
        t.require(line and line[0] == "reaped", "the worker exited and was reaped", f"{line}")
        time.sleep(0.3)
        m1 = d.scrape()
        m2 = d.scrape()
        left = lib.worker_series(m2, cpid)
        t.check(not left, "its series are gone within two scrapes after it exits",
                f"{len(left)} left in the 2nd scrape, e.g. {left[:3]}; "
                f"1st scrape had {len(lib.worker_series(m1, cpid))}")
        f.stdin.write("\n")
        f.stdin.flush()
        f.wait(timeout=10)

        # -------- SIGKILL
        ours = dict(d.our_progs)
        t.require(ours, "the daemon has es_ programs loaded", lib.describe_progs(lib.es_progs()))
        d.kill()
        left = lib.wait_progs_gone(d.progs_before, 5.0, only=d.own_ids)
        t.check(not left, "within 5 s of SIGKILL no es_ program is loaded",
                lib.describe_progs(left))
        links = [x for x in lib.bpf_links() if x.get("prog_id") in ours]
        t.check(not links, "and no BPF link of ours is left", f"{links[:5]}")
        new_pins = lib.bpffs_entries() - bpffs_before
        t.check(not new_pins, "nothing new is pinned in /sys/fs/bpf", f"{sorted(new_pins)[:10]}")


if __name__ == "__main__":
    lib.main(body)
