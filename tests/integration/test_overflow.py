#!/usr/bin/python3.11
"""The cardinality bound (--max-workers): workers past it are summed under
worker="overflow" of their role and counted in erpscope_worker_overflow_total.

The daemon tracks every process on the host, so the test first counts what
is tracked already (T), then runs the daemon with --max-workers=T+2 and
starts four workers titled like Odoo's HTTP workers from exec on (exec -a).
Whatever else comes and goes on the host, our four must split into those
with series of their own (at most 2) and those counted as overflow (the
rest, at least 2 when the host is quiet, at least 1 in any case), and the
overflow slot must hold the CPU the overflowed ones burnt (0.5 s each).
"""

import subprocess

import lib

SPIN = r"""
import sys, time
print("ready", flush=True)
sys.stdin.readline()
end = time.process_time() + 0.5   # 0.5 s of CPU, however busy the host
while time.process_time() < end:
    pass
print("done", flush=True)
sys.stdin.readline()
"""


def tracked_now():
    with lib.Daemon() as d:
        m = d.scrape()
        return int(m.total("erpscope_workers_tracked"))


def body(t):
    base = tracked_now()
    lib.log(f"{base} processes tracked before the test")
    with lib.Daemon(f"--max-workers={base + 2}") as d:
        procs = []
        for i in range(4):
            p = lib.spawn(["/bin/bash", "-c",
                           f'exec -a "odoo: WorkerHTTP $$ " {lib.PYTHON} -c "$0"', SPIN],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            t.require(p.stdout.readline().strip() == "ready", f"worker {i} started")
            procs.append(p)

        def settled():
            m = d.scrape()
            own = [p for p in procs if lib.worker_info(m, p.pid)]
            ovf = m.value("erpscope_worker_overflow_total", 0.0, role="odoo_http")
            return (m, own, ovf) if len(own) + ovf >= 4 else None

        got = lib.wait_for(settled, 10.0, 0.2)
        t.require(got is not None, "all four workers are tracked, own series or overflow")
        before, own, novf = got
        lib.log(f"own series: {[p.pid for p in own]}, overflowed: {novf:g}")
        t.check(len(own) <= 2, "no more than --max-workers minus what was tracked get a "
                "series of their own", f"{len(own)}")
        t.check(novf >= 1 and len(own) + novf == 4,
                "the others are counted in erpscope_worker_overflow_total{role=odoo_http}",
                f"own={len(own)} overflow={novf:g}")
        ovf0 = before.value("erpscope_cpu_seconds_total", 0.0, role="odoo_http",
                            worker="overflow")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            t.require(p.stdout.readline().strip() == "done", f"pid {p.pid} spun")
        m = d.scrape()
        ovf_cpu = m.value("erpscope_cpu_seconds_total", 0.0, role="odoo_http",
                          worker="overflow") - ovf0
        t.between(ovf_cpu, 0.4 * novf, 0.65 * novf,
                  f"the overflow slot holds the {novf:g} overflowed workers' CPU (0.5 s each)")
        for p in own:
            cpu = m.value("erpscope_cpu_seconds_total", role="odoo_http", worker=str(p.pid))
            t.between(cpu, 0.4, 0.8, f"pid {p.pid} has its own ~0.5 s of CPU")
        for p in procs:
            p.stdin.write("exit\n")
            p.stdin.flush()
            p.wait(timeout=10)


if __name__ == "__main__":
    lib.main(body)
