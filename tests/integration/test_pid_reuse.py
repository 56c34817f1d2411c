#!/usr/bin/python3.11
"""A reused pid starts from nothing. A process P runs briefly and exits; 3 s
later a tracked worker starts a thread and the kernel gives it P's number
(forced through /proc/sys/kernel/ns_last_pid, retried until it takes). Had
P's scheduler state outlived it, the thread's first wakeup would close
P's "off since" and charge the worker ~3 s of sleep it never slept. The
worker's cpu + off-CPU seconds over the experiment must stay within its
threads' wall time (main thread throughout, plus the thread's life). Both
tracepoint flavours: tp_btf keeps the state in task storage, which dies
with the task; raw_tp keys it by pid in a hash.
"""

import os
import subprocess
import time

import lib

WORKER = r"""
import os, sys, threading, time
import setproctitle
setproctitle.setproctitle("odoo: WorkerHTTP %d " % os.getpid())
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "arm":  # wake up: the main thread's sleep so far is closed
        print("armed", flush=True)
        continue
    want = int(line)
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(want - 1))
    got = []
    t = threading.Thread(target=lambda: (got.append(threading.get_native_id()), time.sleep(0.2)))
    t.start()
    t.join()
    print(got[0], flush=True)
"""


def busy_seconds(m, pid):
    cpu = m.value("erpscope_cpu_seconds_total", role="odoo_http", worker=str(pid)) or 0.0
    off = sum(v for _, v in m.series("erpscope_offcpu_seconds_total", role="odoo_http",
                                     worker=str(pid)))
    return cpu + off


def run(t, mode):
    with lib.Daemon(f"--bpf.attach-mode={mode}") as d:
        w = lib.spawn([lib.PYTHON, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                      text=True)
        try:
            t.require(w.stdout.readline().strip() == "ready", "the worker started")
            info, _, _ = lib.wait_worker(d, w.pid, timeout=10.0, role="odoo_http")
            t.require(info is not None, "the worker is tracked as odoo_http")
            hit = False
            for attempt in range(20):
                short = subprocess.Popen(["/bin/sleep", "0.05"])
                short.wait()
                p = short.pid
                time.sleep(3.0)  # what a leaked state would charge
                w.stdin.write("arm\n")
                w.stdin.flush()
                w.stdout.readline()
                t0 = time.monotonic()
                m0 = d.scrape()
                w.stdin.write(f"{p}\n")
                w.stdin.flush()
                tid = int(w.stdout.readline())
                m1 = d.scrape()
                t1 = time.monotonic()
                if tid != p:
                    lib.log(f"pid {p} went to another task (got {tid}); again")
                    continue
                hit = True
                # Main thread throughout plus the thread's own life (< t1 - t0).
                got = busy_seconds(m1, w.pid) - busy_seconds(m0, w.pid)
                bound = 2 * (t1 - t0) + 0.05
                t.check(got <= bound, f"the thread on reused pid {p} brought no stale time "
                        f"(worker's cpu + off-CPU {got:.3f} s <= {bound:.3f} s)",
                        f"{got:.3f} s: ~3 s more means the old task's state was kept")
                break
            t.require(hit, "the kernel gave the thread the old pid", "20 attempts")
        finally:
            w.stdin.close()
            w.wait(10)


if __name__ == "__main__":
    lib.main(lib.each_attach_mode(run))
