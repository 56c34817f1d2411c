#!/usr/bin/python3.11
"""Churn leaves nothing behind. The daemon runs for months on hosts where
Odoo opens a PostgreSQL connection per request and recycles workers, so
what it keeps per backend or per process must go when they go.

Phase 1: 20,000 short psycopg2 connections (connect, SELECT 1, close), in
bursts from 4 client processes at once. The daemon's RSS after all of them
must be within 1 MiB of what it was after the first 2,000 (by then its
tables and allocator have reached their working size), and once the churn
stops its series count returns to where it was before it began.

Phase 2: 20,000 short-lived processes titled `odoo: WorkerHTTP <pid> `
(~0.3 s each, 60 at a time, so most are tracked: a new process is looked at
50 ms after its fork), the same two checks: the process table, exit records
and per-worker series go with the processes. They are /bin/sleep under the
name python3.11 (Odoo's roles need a python; a real CPython would spend
most of the phase starting up).

Every scrape is also checked by lib for counters that go down. The Python
profiler keeps --python.profile-window of samples of the client processes
(the test's own pythons): the daemon runs with the shortest window (10 s)
so that working set is reached during the warm-up. The series counted are
those the churn could leave behind (PostgreSQL's and pg_backend's for the
connections, odoo_http's for the processes): other processes on the host
(autovacuum workers, the test's own pythons) come and go on their own.
"""

import os
import shutil
import subprocess
import time

import lib

DB = f"erpt_{os.getpid()}"
CONNS = 20000
FIRST = 2000
PROCS = 20000
MIB = 1024 * 1024

CLIENT = r"""
import sys, psycopg2
host, port, db, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for i in range(n):
    c = psycopg2.connect(host=host, port=port, user="postgres", dbname=db)
    c.autocommit = True
    c.cursor().execute("SELECT 1 AS soak_q")
    c.close()
"""

# 60 at a time, each titled as an Odoo HTTP worker, living 0.3 s.
SPAWNER = r"""
n=$1; py=$2; i=0
while [ $i -lt $n ]; do
  for k in $(seq 60); do (exec -a "odoo: WorkerHTTP $BASHPID " "$py" 0.3) & done
  wait; i=$((i + 60))
done
"""


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def trimmed_rss(pid):
    """RSS once the daemon has handed its free heap back (malloc_trim every 10 s,
    user/daemon/main.c): what it keeps, not where its allocator stood at that
    instant of the churn."""
    time.sleep(11.0)
    return rss(pid)


def churned_pg(name, labels):
    """Series connection churn could leave behind: PostgreSQL's and backends'."""
    return name.startswith("erpscope_pg_") or labels.get("role") == "pg_backend"


def churned_http(name, labels):
    """Series worker churn could leave behind: the odoo_http workers'. The
    role's "overflow" series (workers past --max-workers while exited ones
    wait for a scrape) are one set per role, kept like "other"."""
    return labels.get("role") == "odoo_http" and labels.get("worker") != "overflow"


def nseries(d, pred):
    m = d.scrape()
    return sum(1 for (name, ls) in m if pred(name, dict(ls))), m


def settle(d, base, pred, timeout=30.0):
    """Scrapes until the count of series pred() picks is back to base
    (exited workers go after one more scrape); returns the last count."""
    deadline = time.monotonic() + timeout
    n = None
    while time.monotonic() < deadline:
        n, m = nseries(d, pred)
        d.last_families = families(m, pred)
        if n <= base:
            break
        time.sleep(1.0)
    return n


def families(m, pred):
    out = {}
    for (name, ls), _ in m.items():
        if pred(name, dict(ls)):
            out[name] = out.get(name, 0) + 1
    return out


def grown(before, after):
    """The families with more series in after, for a failure's detail."""
    return ", ".join(f"{k} {before.get(k, 0)}->{v}" for k, v in sorted(after.items())
                     if v > before.get(k, 0))


def connections(pg, n, clients=4):
    per = n // clients
    ps = [lib.spawn([lib.PYTHON, "-c", CLIENT, pg.dir, str(pg.port), DB, str(per)])
          for _ in range(clients)]
    for p in ps:
        if p.wait(600) != 0:
            raise lib.Failure(f"a connection client failed ({p.returncode})")


def body(t):
    pg = lib.PgCluster(settings={"max_connections": "40"}).start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        with lib.Daemon("--python.profile-window=10s") as d:
            pid = d.proc.pid
            # Warm-up: the soak database's and statement's own series appear.
            connections(pg, 200)
            time.sleep(10.0)  # a profile window
            base = settle(d, 0, churned_pg, timeout=3.0)
            fam0 = d.last_families
            lib.log(f"PostgreSQL series after warm-up: {base}, RSS {rss(pid) / MIB:.1f} MiB")

            t0 = time.monotonic()
            connections(pg, FIRST)
            d.scrape()
            r_first = trimmed_rss(pid)
            connections(pg, CONNS - FIRST)
            d.scrape()
            r_end = trimmed_rss(pid)
            lib.log(f"{CONNS} connections in {time.monotonic() - t0:.0f} s: RSS after "
                    f"{FIRST} {r_first / MIB:.2f} MiB, after {CONNS} {r_end / MIB:.2f} MiB")
            t.check(r_end <= r_first + MIB,
                    f"RSS after {CONNS} connections within 1 MiB of after {FIRST}",
                    f"{r_first / MIB:.2f} -> {r_end / MIB:.2f} MiB")
            m = d.scrape()
            calls = sum(v for ls, v in m.series("erpscope_pg_query_duration_seconds_count")
                        if ls.get("db") == DB)
            t.check(calls >= CONNS, f"all {CONNS} statements counted", f"{calls}")
            n = settle(d, base, churned_pg)
            t.check(n <= base, "PostgreSQL and backend series back to their count before the churn",
                    f"{base} -> {n}: {grown(fam0, d.last_families)}")

            fake = os.path.join(lib.tempdir(), "python3.11")
            shutil.copy("/bin/sleep", fake)
            subprocess.run(["/bin/bash", "-c", SPAWNER, "spawner", "120", fake], check=True)
            base2 = settle(d, 0, churned_http, timeout=3.0)
            fam0 = d.last_families
            fds0 = len(os.listdir(f"/proc/{pid}/fd"))
            t0 = time.monotonic()
            subprocess.run(["/bin/bash", "-c", SPAWNER, "spawner", str(FIRST), fake], check=True)
            d.scrape()
            r_first = trimmed_rss(pid)
            subprocess.run(["/bin/bash", "-c", SPAWNER, "spawner", str(PROCS - FIRST), fake],
                           check=True)
            m = d.scrape()
            r_end = trimmed_rss(pid)
            exits = sum(v for ls, v in m.series("erpscope_worker_exits_total", role="odoo_http"))
            lib.log(f"{PROCS} titled processes in {time.monotonic() - t0:.0f} s "
                    f"({exits:.0f} tracked exits): RSS after {FIRST} {r_first / MIB:.2f} MiB, "
                    f"after {PROCS} {r_end / MIB:.2f} MiB")
            t.check(exits >= PROCS // 2, "most of the short workers were tracked",
                    f"{exits} exits of odoo_http")
            t.check(r_end <= r_first + MIB,
                    f"RSS after {PROCS} processes within 1 MiB of after {FIRST}",
                    f"{r_first / MIB:.2f} -> {r_end / MIB:.2f} MiB")
            n = settle(d, base2, churned_http)
            t.check(n <= base2, "odoo_http series back to their count before the process churn",
                    f"{base2} -> {n}: {grown(fam0, d.last_families)}")
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            t.check(fds <= fds0 + 2, "the daemon holds no more descriptors than before",
                    f"{fds0} -> {fds}")
    finally:
        pg.stop()
    t.check(pg.dir is None, "the PostgreSQL cluster was stopped and removed")


if __name__ == "__main__":
    lib.main(body)
