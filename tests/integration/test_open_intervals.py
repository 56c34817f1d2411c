#!/usr/bin/python3.11
"""Time counters grow during a long wait, not only when it ends.

Three Debian python3.11 workers, titled `odoo: WorkerHTTP <pid> `, each stay
in one state for the whole test:
  sleeper  time.sleep(60): interruptible sleep
  blocked  os.posix_spawn() whose file action opens a FIFO nobody writes:
           glibc spawns with CLONE_VFORK, so the parent waits in
           TASK_KILLABLE (uninterruptible, not in iowait) until the child
           execs: offcpu reason "blocked"
  spinner  a thread pinned to one CPU spins (the main thread sleeps on
           stdin): on CPU, with few or no context switches on a quiet CPU
Once all three are tracked, the test scrapes every 2 s and expects, for each
pair of consecutive scrapes:
  sleeper  offcpu{reason="sleep"} grew by the wall time between the scrapes
  blocked  offcpu{reason="blocked"} likewise
  spinner  cpu grew by the CPU time the kernel charged the spinning thread
           (/proc/<pid>/task/<tid>/schedstat), which is the wall time when
           nothing else wants that CPU
each within 5%, plus the time the two scrapes took on the wire (the
daemon reads its clock somewhere inside that window, which is long when the
host is busy). Before open intervals were counted these stood still until
the wait ended. Both attach flavours.
"""

import os
import subprocess
import time

import lib

SCRAPES = 8
PERIOD = 2.0
TOL = 0.05

SLEEPER = r"""
import os, sys, time
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
print("ready", flush=True)
time.sleep(60)
"""

BLOCKED = r"""
import os, sys
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
print("ready", flush=True)
os.posix_spawn("/bin/true", ["true"], {},
               file_actions=[(os.POSIX_SPAWN_OPEN, 0, sys.argv[1], os.O_RDONLY, 0)])
"""

SPINNER = r"""
import os, sys, threading
import setproctitle
cpu = int(sys.argv[1])
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")

def spin():
    os.sched_setaffinity(0, {cpu})
    print(threading.get_native_id(), flush=True)
    while True:
        pass

threading.Thread(target=spin, daemon=True).start()
sys.stdin.readline()
"""


def thread_cpu(pid, tid):
    """Seconds on CPU the kernel charged the thread (schedstat, ns)."""
    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def started(t, p, what):
    line = p.stdout.readline()
    t.require(line.strip() != "", f"{what} {p.pid} started", f"got {line!r}, exit {p.poll()}")
    return line.strip()


def run(t, mode):
    work = lib.tempdir()
    fifo = os.path.join(work, "fifo")
    os.mkfifo(fifo)
    cpu = sorted(os.sched_getaffinity(0))[-1]
    with lib.Daemon(f"--bpf.attach-mode={mode}") as d:
        out = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        sleeper = lib.spawn([lib.PYTHON, "-c", SLEEPER], **out)
        started(t, sleeper, "sleeper")
        blocked = lib.spawn([lib.PYTHON, "-c", BLOCKED, fifo], **out)
        started(t, blocked, "blocked")
        spinner = lib.spawn([lib.PYTHON, "-c", SPINNER, str(cpu)], **out)
        tid = int(started(t, spinner, "spinner"))
        for p in (sleeper, blocked, spinner):
            info, took, last = lib.wait_worker(d, p.pid, timeout=10.0, role="odoo_http")
            t.require(info is not None, f"pid {p.pid} tracked as odoo_http",
                      f"last seen: {lib.worker_info(last, p.pid)}")
        try:
            prev = None
            for i in range(SCRAPES + 1):
                w0 = time.monotonic()
                c = thread_cpu(spinner.pid, tid)
                m = d.scrape()
                w1 = time.monotonic()
                dur = m.value("erpscope_scrape_duration_seconds", 0.0)
                now = dict(wall=(w0 + w1) / 2, window=w1 - w0, thread=c, dur=dur,
                           sleep=lib.offcpu(m, "odoo_http", sleeper.pid)["sleep"],
                           blocked=lib.offcpu(m, "odoo_http", blocked.pid)["blocked"],
                           cpu=m.value("erpscope_cpu_seconds_total", None, role="odoo_http",
                                       worker=str(spinner.pid)))
                if prev:
                    wall = now["wall"] - prev["wall"]
                    slack = (now["window"] + prev["window"]) / 2
                    lib.log(f"scrape {i}: wall +{wall:.4f}s sleep +{now['sleep'] - prev['sleep']:.4f} "
                            f"blocked +{now['blocked'] - prev['blocked']:.4f} "
                            f"cpu +{now['cpu'] - prev['cpu']:.4f} thread +{now['thread'] - prev['thread']:.4f} "
                            f"round trip {now['window'] * 1e3:.1f} ms scrape {dur * 1e3:.2f} ms")
                    t.near(now["sleep"] - prev["sleep"], wall, TOL,
                           f"scrape {i}: sleeper's sleep grew by the wall time", slack)
                    t.near(now["blocked"] - prev["blocked"], wall, TOL,
                           f"scrape {i}: vfork parent's blocked time grew by the wall time", slack)
                    t.near(now["cpu"] - prev["cpu"], now["thread"] - prev["thread"], TOL,
                           f"scrape {i}: spinner's cpu grew by its thread's CPU time", slack)
                prev = now
                time.sleep(max(0.0, PERIOD - (time.monotonic() - w0)))
        finally:
            # The vfork child's open returns, it execs true and the parent goes on.
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass  # no reader: the child is gone already
            for p in (sleeper, blocked, spinner):
                lib.kill_group(p)


if __name__ == "__main__":
    lib.main(lib.each_attach_mode(run))
