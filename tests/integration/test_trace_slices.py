#!/usr/bin/python3.11
"""GET /trace: cron runs, outbound connects and PostgreSQL lock waits as slices.

Every trace is decoded by protoc (tests/integration/perfetto.py). One daemon
with every probe and --pg.slow-query-threshold=2s (so a 0.5 s lock wait and
its statement reach the trace through the trace-only kernel path, not as
slow events):

  cron     test_odoo_cron's fake ir_cron in a worker titled
           `odoo: WorkerCron <pid> pydb`; one _process_job whose action
           sleeps 5 s, inside a recording: one slice on the worker's thread
           named by the cron, its duration within 5% of the worker's own
           (time.monotonic() around _callback), result "ok"
  connect  a worker titled `odoo: WorkerCron <pid> tcpdb` connects to a
           closed loopback port, then to a listening one, inside a
           recording: exactly two connect slices on its thread, result
           "refused" and "established", remote 127.0.0.1:<port> each; an
           untracked bash's connect to the listening port: no slice
  lock     session A holds a row lock (SELECT ... FOR UPDATE) ~0.5 s while
           session B's UPDATE waits for it, inside a recording: B's backend
           has one UPDATE statement slice containing one lock-wait slice
           (transactionid, ShareLock) of B's wait within 10% (>= 0.45 s)
"""

import json
import os
import socket
import subprocess
import threading
import time

import lib
import perfetto
import test_odoo_cron as oc

DB = f"erpt_trs_{os.getpid()}"
CRON_SECONDS = 5.0

CRON_WORKER = r'''
import json, os, sys, time
import psycopg2, setproctitle
setproctitle.setproctitle("odoo: WorkerCron %d pydb" % os.getpid())
sys.path.insert(0, sys.argv[1])
from odoo.addons.base.models import ir_cron as mod
mod._ACTIONS[9] = (mod._sleep, float(sys.argv[6]))
time.sleep(1.5)
cnx = psycopg2.connect(host=sys.argv[2], port=int(sys.argv[3]), user="postgres",
                       dbname=sys.argv[4])
cnx.cursor().execute("SELECT 1")
cnx.commit()
print("ready %d" % os.getpid(), flush=True)
sys.stdin.readline()
cron = mod.ir_cron(cnx)
cron._process_job(sys.argv[5], 9)
print(json.dumps({"took": cron.took[sys.argv[5]]}), flush=True)
sys.stdin.readline()
'''

CONNECTOR = r'''
import json, os, socket, sys, threading
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerCron {os.getpid()} tcpdb")
print("ready %d %d" % (os.getpid(), threading.get_native_id()), flush=True)
for line in sys.stdin:
    port = int(line)
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        r = "established"
    except ConnectionRefusedError:
        r = "refused"
    s.close()
    print(r, flush=True)
'''


def record(d, seconds):
    """Starts a recording in a thread; returns a function that waits for its trace."""
    box = {}

    def go():
        box["r"] = lib.http_get(d.port, f"/trace?seconds={seconds}", timeout=seconds + 60)

    th = threading.Thread(target=go, daemon=True)
    th.start()
    time.sleep(0.3)

    def done(t):
        th.join(seconds + 90)
        st, _, b = box.get("r", (0, {}, b""))
        t.require(st == 200, f"the {seconds} s recording answers 200", f"{st} {b[:200]!r}")
        return perfetto.Trace(b)
    return done


def cron_run(t, d, pg, root):
    name = f"erpt{os.getpid()} trace cron"
    p = lib.spawn([lib.PYTHON, "-c", CRON_WORKER, root, pg.dir, str(pg.port), DB, name,
                   str(CRON_SECONDS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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
    done = record(d, int(CRON_SECONDS) + 3)
    p.stdin.write("go\n")
    p.stdin.flush()
    took = json.loads(p.stdout.readline())["took"]
    tr = done(t)
    p.stdin.close()
    p.wait(timeout=10)
    got = [s for s in tr.slices if s["name"] == name]
    lib.log(f"cron: worker took {took:.3f} s; slices {got}")
    t.check(len(got) == 1, "one slice named by the cron", f"{len(got)}")
    if got:
        s = got[0]
        t.check(s["tid"] == p.pid, "on the cron worker's thread", f"tid {s['tid']}")
        t.near(s["seconds"], took, 0.05, f"its duration ~ the worker's own {took:.3f} s")
        t.check(s["args"].get("result") == "ok", "result ok", f"{s['args']}")


def connects(t, d):
    p = lib.spawn([lib.PYTHON, "-c", CONNECTOR], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  text=True)
    _, pid, tid = p.stdout.readline().split()
    pid, tid = int(pid), int(tid)
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    lib.on_cleanup(lst.close)
    closed = lib.free_port()
    time.sleep(0.5)
    done = record(d, 3)
    res = []
    for port in (closed, lst.getsockname()[1]):
        p.stdin.write(f"{port}\n")
        p.stdin.flush()
        res.append(p.stdout.readline().strip())
    t.require(res == ["refused", "established"], "the worker's connects: refused, established",
              f"{res}")
    # an untracked process's connect (bash, role other) is not in a trace
    sh = subprocess.run(["/bin/bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{lst.getsockname()[1]}; "
                         "echo $$"], capture_output=True, text=True, timeout=10)
    t.require(sh.returncode == 0, "bash connected to the listening port", sh.stderr)
    bash_pid = int(sh.stdout)
    tr = done(t)
    p.stdin.close()
    p.wait(timeout=10)
    got = [s for s in tr.slices if s["tid"] == tid and s["name"].startswith("connect ")]
    lib.log(f"connect slices of tid {tid}: {got}")
    want = [("refused", f"127.0.0.1:{closed}"),
            ("established", f"127.0.0.1:{lst.getsockname()[1]}")]
    t.check([(s["args"].get("result"), s["args"].get("remote")) for s in
             sorted(got, key=lambda s: s["start"])] == want,
            "two connect slices on its thread: refused, then established, with their remotes",
            f"{[(s['args'], s['seconds']) for s in got]}")
    t.check(all(s["name"] == f"connect {s['args'].get('remote')}" for s in got),
            "named connect <remote>")
    t.check(not [s for s in tr.slices if s["tid"] == bash_pid],
            "no slice for the untracked bash's connect", f"pid {bash_pid}")


def lock_wait(t, d, pg):
    a = pg.connect(db=DB)
    b = pg.connect(db=DB)
    ca, cb = a.cursor(), b.cursor()
    cb.execute("SELECT pg_backend_pid()")
    bpid = cb.fetchone()[0]
    done = record(d, 3)
    ca.execute("BEGIN")
    ca.execute("SELECT v FROM lk WHERE id = 1 FOR UPDATE")
    box = {}

    def upd():
        t0 = time.monotonic()
        cb.execute("UPDATE lk SET v = v + 1 WHERE id = 1")
        box["waited"] = time.monotonic() - t0
    th = threading.Thread(target=upd, daemon=True)
    th.start()
    time.sleep(0.5)
    ca.execute("COMMIT")
    th.join(10)
    t.require("waited" in box, "session B's UPDATE went through")
    tr = done(t)
    mine = [s for s in tr.slices if s["tid"] == bpid]
    lib.log(f"B waited {box['waited']:.3f} s; backend {bpid} slices: "
            f"{[(s['name'], s['seconds'], s['args']) for s in mine]}")
    stmts = [s for s in mine if s["name"] == "UPDATE lk SET v = v + ? WHERE id = ?"]
    waits = [s for s in mine if s["name"] == "lock wait"]
    t.require(len(stmts) == 1 and len(waits) == 1,
              "one UPDATE statement slice and one lock-wait slice on B's backend",
              f"{len(stmts)} {len(waits)}")
    s, w = stmts[0], waits[0]
    t.check(s["start"] <= w["start"] and w["end"] <= s["end"], "the lock wait inside the statement",
            f"stmt {s['start']}..{s['end']} wait {w['start']}..{w['end']}")
    t.check(w["seconds"] >= 0.45, "the wait is at least the 0.5 s A held the lock (less slack)",
            f"{w['seconds']:.3f}")
    t.near(w["seconds"], box["waited"], 0.10, f"~ B's own {box['waited']:.3f} s")
    t.check(w["args"] == {"locktype": "transactionid", "mode": "ShareLock"},
            "on the holder's transactionid, ShareLock", f"{w['args']}")


def body(t):
    pg = lib.PgCluster().start()
    pg.psql(f"CREATE DATABASE {DB}")
    pg.psql("CREATE TABLE lk (id int PRIMARY KEY, v int); INSERT INTO lk VALUES (1, 0), (2, 0)",
            db=DB)
    root = lib.tempdir()
    oc.write_module(root)
    with lib.Daemon("--pg.slow-query-threshold=2s") as d:
        lock_wait(t, d, pg)
        connects(t, d)
        cron_run(t, d, pg, root)


if __name__ == "__main__":
    lib.main(body)
