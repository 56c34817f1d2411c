#!/usr/bin/python3.11
"""Odoo cron runs (erpscope_odoo_cron_*) of a worker whose runs are known.

A Debian python3.11 titled `odoo: WorkerCron <pid> pydb` imports a fake
module odoo.addons.base.models.ir_cron (a package tree written to a temp
dir) whose class ir_cron has Odoo's _callback(self, cron_name,
server_action_id, job_id) and _process_job: _callback runs a statement on
a real PostgreSQL 15 connection, then the action; on an exception it rolls
the connection back (as Odoo's _handle_callback_exception does); after it
returns _process_job commits. Each run is followed by a 0.8 s pause, well
over the 100 ms poll interval (two runs with no poll between them would be
seen as one: on this loaded 2-core VM the daemon was once not scheduled
for all of a 0.4 s pause). Plan:
  A  5 runs sleeping 0.5 s            (ok)
  B  3 runs burning 0.3 s of CPU      (ok)
  C  2 runs sleeping 0.5 s, raising   (failed: rolled back)
Cron names carry the test's pid (other tests' cron workers are seen too).
Then, with the default --odoo.cron-poll-interval (100ms):
  erpscope_odoo_cron_runs_total: A ok 5, B ok 3, C failed 2, nothing else
  erpscope_odoo_cron_duration_seconds: counts 5, 3, 2; each sum within 10%
      + one interval of the worker's own (time.monotonic() around
      _callback); A's runs all in (0.25, 1]
  erpscope_odoo_cron_time_seconds_total: B's cpu within 10% of the 0.9 s
      of CPU it measured (thread_time), plus the steal the host saw during
      its runs (the part is time on a CPU, thread_time leaves steal out); A's sleep at least 80% of its
      duration sum; each cron's parts add up to its duration sum (within 2%)
  erpscope_odoo_cron_last_success_timestamp_seconds: A's and B's within
      the workload's run, B's after A's; none for C
Then the same plan under a daemon with --probes=procs,sched,python (no pg
probe): every run result="unknown", the counts and sums as before, and no
last-success series.
"""

import json
import os
import subprocess
import sys
import time

import lib

DB = f"erpt_cron_{os.getpid()}"
POLL = 0.1

IR_CRON = r'''
import os
import time

_ACTIONS = {}


def _sleep(s):
    time.sleep(s)


def _burn(s):
    t0 = time.thread_time()
    while time.thread_time() - t0 < s:
        pass


def _steal():
    # the host's stolen CPU seconds (lib.host_steal()): our cpu part may hold them
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")


def _fail(s):
    time.sleep(s)
    raise ValueError("cron failed on purpose")


_ACTIONS.update({1: (_sleep, 0.5), 2: (_burn, 0.3), 3: (_fail, 0.5)})


class ir_cron:
    def __init__(self, cnx):
        self._cnx = cnx
        self.took = {}
        self.cpu = {}
        self.steal = {}

    def _callback(self, cron_name, server_action_id, job_id):
        try:
            cr = self._cnx.cursor()
            cr.execute("SELECT %s AS cron_marker", (cron_name,))
            fn, arg = _ACTIONS[server_action_id]
            fn(arg)
        except Exception:
            self._cnx.rollback()

    def _process_job(self, cron_name, server_action_id):
        t0, c0, s0 = time.monotonic(), time.thread_time(), _steal()
        self._callback(cron_name, server_action_id, 7)
        t1, c1, s1 = time.monotonic(), time.thread_time(), _steal()
        self.steal[cron_name] = self.steal.get(cron_name, 0.0) + s1 - s0
        self.took[cron_name] = self.took.get(cron_name, 0.0) + t1 - t0
        self.cpu[cron_name] = self.cpu.get(cron_name, 0.0) + c1 - c0
        self._cnx.commit()
'''

WORKER = r'''
import json, os, sys, time
import psycopg2, setproctitle
setproctitle.setproctitle("odoo: WorkerCron %d pydb" % os.getpid())
sys.path.insert(0, sys.argv[1])
from odoo.addons.base.models.ir_cron import ir_cron
time.sleep(1.5)   # erpscope recognises the worker from its title
cnx = psycopg2.connect(host=sys.argv[2], port=int(sys.argv[3]), user="postgres",
                       dbname=sys.argv[4])
cnx.cursor().execute("SELECT 1")
cnx.commit()
print("ready %d" % os.getpid(), flush=True)
sys.stdin.readline()
cron = ir_cron(cnx)
t_start = time.time()
for name, action, n in (("A", 1, 5), ("B", 2, 3), ("C", 3, 2)):
    for _ in range(n):
        cron._process_job(sys.argv[5] + name, action)
        time.sleep(0.8)
print(json.dumps({"took": cron.took, "cpu": cron.cpu, "steal": cron.steal, "start": t_start, "end": time.time()}),
      flush=True)
sys.stdin.readline()
'''

RUNS = {"A": 5, "B": 3, "C": 2}
# Other tests' cron workers on this host are seen too: ours have our names.
PREFIX = f"erpt{os.getpid()} "


def write_module(root):
    pkg = os.path.join(root, "odoo", "addons", "base", "models")
    os.makedirs(pkg)
    for d in ("odoo", "odoo/addons", "odoo/addons/base", "odoo/addons/base/models"):
        open(os.path.join(root, d, "__init__.py"), "w").close()
    with open(os.path.join(pkg, "ir_cron.py"), "w") as f:
        f.write(IR_CRON)


def run_plan(t, d, pg, root):
    """Starts the worker, waits until erpscope reads its stack, runs the
    plan; returns (what the worker measured, the metrics after it)."""
    p = lib.spawn([lib.PYTHON, "-c", WORKER, root, pg.dir, str(pg.port), DB, PREFIX],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    t.require(line == f"ready {p.pid}", "the cron worker connected", line)
    info, _, _ = lib.wait_worker(d, p.pid, timeout=10.0, role="odoo_cron")
    t.require(info is not None, f"pid {p.pid} is tracked as odoo_cron")

    def readable():
        st, _, body = lib.http_get(d.port, "/workers?format=json&role=odoo_cron")
        ws = [w for w in json.loads(body)["workers"] if w["pid"] == p.pid] if st == 200 else []
        return ws and ws[0].get("threads")
    t.require(lib.wait_for(readable, 10.0, 0.2), "its Python stack is readable at /workers")
    time.sleep(1.0)  # the pg poller links its backend to it
    p.stdin.write("go\n")
    p.stdin.flush()
    line = p.stdout.readline()
    t.require(line, "the worker ran its plan", f"exit {p.poll()}")
    r = json.loads(line)
    r = {k: ({n[len(PREFIX):]: x for n, x in v.items()} if isinstance(v, dict) else v)
         for k, v in r.items()}
    lib.log(f"worker says: {r}")
    time.sleep(3 * POLL)
    m = d.scrape()
    lib.log("cron series:\n" + "\n".join(
        f"{n}{dict(ls)} {v}" for (n, ls), v in sorted(m.items(), key=lambda x: str(x[0]))
        if n.startswith("erpscope_odoo_cron_")))
    p.stdin.close()
    p.wait(timeout=10)
    return r, m


def check_common(t, r, m):
    for cron, n in RUNS.items():
        buckets, s, c = m.histogram("erpscope_odoo_cron_duration_seconds", cron=PREFIX + cron)
        t.check(c == n, f"{cron}: {n} runs in the duration histogram", f"count {c}")
        want = r["took"][cron]
        t.near(s, want, 0.10, f"{cron}: duration sum ~ the worker's own {want:.3f} s",
               abs_tol=POLL)
        parts = {x: m.value("erpscope_odoo_cron_time_seconds_total", 0.0, cron=PREFIX + cron, part=x)
                 for x in ("cpu", "runqueue", "iowait", "blocked", "sleep")}
        t.near(sum(parts.values()), s or 0.0, 0.02, f"{cron}: its parts add up to its duration",
               abs_tol=0.01)
        if cron == "A":
            le = dict(buckets)
            t.check(le.get(0.25) == 0 and le.get(1.0) == n,
                    "A: every 0.5 s run in (0.25, 1]", f"{buckets}")
            t.check(parts["sleep"] >= 0.8 * (s or 0), "A: mostly sleep",
                    f"{parts} of {s}")
        if cron == "B":
            # the part is time on a CPU, with what the hypervisor stole meanwhile
            stolen = r["steal"]["B"]
            t.near_oncpu(parts["cpu"], 0.9, 0.10, "B: cpu part ~ 0.9 s (3 x 0.3 s burnt)",
                         stolen)
            t.near_oncpu(parts["cpu"], r["cpu"]["B"], 0.10, "B: cpu part ~ its thread_time",
                         stolen)
    names = {ls["cron"] for ls, _ in m.series("erpscope_odoo_cron_runs_total")}
    t.check({n for n in names if n.startswith(PREFIX)} == {PREFIX + c for c in RUNS},
            "none other of our cron names", f"{sorted(names)}")


def our_runs(m):
    """{(cron, result): runs} of our crons (the prefix dropped)."""
    return {(ls["cron"][len(PREFIX):], ls["result"]): v
            for ls, v in m.series("erpscope_odoo_cron_runs_total")
            if ls["cron"].startswith(PREFIX)}


def body(t):
    pg = lib.PgCluster().start()
    pg.psql(f"CREATE DATABASE {DB}")
    root = lib.tempdir()
    write_module(root)

    with lib.Daemon() as d:
        r, m = run_plan(t, d, pg, root)
        check_common(t, r, m)
        runs = our_runs(m)
        want = {(c, res): 0 for c in RUNS for res in ("ok", "failed", "unknown")}
        want.update({("A", "ok"): 5, ("B", "ok"): 3, ("C", "failed"): 2})
        t.check(runs == want, "runs: A ok 5, B ok 3, C failed 2, nothing else",
                f"{sorted(runs.items())}")
        ts = {c: m.value("erpscope_odoo_cron_last_success_timestamp_seconds", None,
                         cron=PREFIX + c)
              for c in RUNS}
        t.check(ts["A"] is not None and r["start"] < ts["A"] < r["end"] and
                ts["B"] is not None and ts["A"] < ts["B"] < r["end"],
                "last success of A and B within the run, B's after A's",
                f"{ts} run {r['start']:.3f}..{r['end']:.3f}")
        t.check(ts["C"] is None, "no last success for C", f"{ts['C']}")

    t.prefix = "[no pg probe] "
    with lib.Daemon("--probes=procs,sched,python") as d:
        r, m = run_plan(t, d, pg, root)
        check_common(t, r, m)
        runs = {k: v for k, v in our_runs(m).items() if v}
        t.check(runs == {(c, "unknown"): n for c, n in RUNS.items()},
                "every run's result is unknown", f"{sorted(runs.items())}")
        t.check(not [ls for ls, _ in
                     m.series("erpscope_odoo_cron_last_success_timestamp_seconds")
                     if ls["cron"].startswith(PREFIX)], "no last success")
    t.prefix = ""


if __name__ == "__main__":
    lib.main(body)
