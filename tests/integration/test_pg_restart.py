#!/usr/bin/python3.11
"""A PostgreSQL restart keeps (or gives back) the one-probe statement path.

With the daemon running:
  a connection to a database that does not exist (its backend aborts a
  transaction before its status entry is filled in: that is no sign the
  entries do not check out), N statements, `pg_ctl restart -m fast` (a new
  postmaster, new shared memory), M more: the marker counts N+M exactly,
  no fallback to query__start is logged, erpscope_pg_binary_info says
  statements="query__done", and no uprobe of the daemon runs
  es_pg_query_start;
  track_activities off: that server goes to two probes (one log line naming
  its postmaster, query__start attached); on again and restarted: the new
  server is back on query__done alone (query__start detached, logged), and
  K statements count K.
"""

import json
import os
import subprocess
import time

import lib

N, M, K = 40, 40, 20
MARKER = "restart_marker_q"


def query_start_uprobes(pid):
    """The daemon's uprobes that run es_pg_query_start (bpftool perf list)."""
    r = subprocess.run(["bpftool", "-j", "perf", "list"], capture_output=True, text=True)
    if r.returncode != 0:
        raise lib.Failure(f"bpftool perf list: {r.stderr.strip()}")
    n = 0
    for e in json.loads(r.stdout or "[]"):
        if e.get("pid") != pid or e.get("fd_type") != "uprobe":
            continue
        p = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(e["prog_id"])],
                           capture_output=True, text=True)
        if p.returncode == 0 and json.loads(p.stdout).get("name") == "es_pg_query_start":
            n += 1
    return n


def statements_path(d):
    m = d.scrape()
    path = os.path.join(lib.PG_BIN, "postgres")
    for labels, _ in m.series("erpscope_pg_binary_info", path=path):
        return labels.get("statements")
    return None


def restart(pg):
    old = pg.postmaster_pid()
    pg._as_postgres([f"{lib.PG_BIN}/pg_ctl", "-D", pg.data, "-m", "fast", "-w", "-t", "60",
                     "restart", "-l", os.path.join(pg.dir, "server.log")])
    new = pg.postmaster_pid()
    lib.log(f"restarted: postmaster {old} -> {new}")
    return new and new != old


def log_lines(d, what):
    return [x for x in d.log_text().splitlines() if what in x]


def body(t):
    pg = lib.PgCluster(cluster_name="15/restart")
    text = f"SELECT ? AS {MARKER}"
    try:
        with lib.Daemon() as d:
            pg.start()
            db = f"erpt_{os.getpid()}_restart"
            pg.psql(f"CREATE DATABASE {db}")
            got = lib.wait_for(lambda: pg.psql("SELECT 1 AS warm_q", db=db) and
                               statements_path(d), 20.0, 0.3)
            t.require(got, "the binary is attached")
            try:
                pg.psql("SELECT 1", db=f"erpt_{os.getpid()}_no_such_db")
            except lib.Failure as e:
                lib.log(f"as expected: {str(e)[-80:]}")
            before = lib.pg_calls(d, text, db)
            for i in range(N):
                pg.psql(f"SELECT {i} AS {MARKER}", db=db)
            t.require(restart(pg), "a new postmaster runs")
            for i in range(M):
                pg.psql(f"SELECT {i} AS {MARKER}", db=db)
            time.sleep(0.5)
            n = lib.pg_calls(d, text, db) - before
            t.check(n == N + M, f"the marker counts {N}+{M} across the restart", f"got {n}")
            lines = log_lines(d, "did not stamp")
            t.check(not lines, "no fallback to query__start is logged", "\n".join(lines))
            t.check(statements_path(d) == "query__done",
                    "erpscope_pg_binary_info says statements=\"query__done\"",
                    str(statements_path(d)))
            t.check(query_start_uprobes(d.pid) == 0, "no uprobe runs es_pg_query_start")

            # A server that does not stamp goes to two probes, until it exits.
            pg.psql("ALTER SYSTEM SET track_activities = off")
            pg.psql("SELECT pg_reload_conf()")
            pm = pg.postmaster_pid()
            got = lib.wait_for(lambda: pg.psql("SELECT 1 AS unstamped_q", db=db) and
                               log_lines(d, "did not stamp"), 10.0, 0.2)
            t.check(got and len(got) == 1 and f"postmaster={pm}" in got[0],
                    "track_activities off: one log line names the server", str(got))
            t.check(statements_path(d) == "query__start+query__done" and
                    query_start_uprobes(d.pid) > 0,
                    "query__start is attached for it", str(statements_path(d)))
            pg.psql("ALTER SYSTEM RESET track_activities")
            t.require(restart(pg), "restarted with track_activities on")
            got = lib.wait_for(lambda: log_lines(d, "query__start detached"), 10.0, 0.2)
            t.check(got, "the gone server's query__start is detached (logged)")
            t.check(statements_path(d) == "query__done" and query_start_uprobes(d.pid) == 0,
                    "the new server is on query__done alone", str(statements_path(d)))
            before = lib.pg_calls(d, text, db)
            for i in range(K):
                pg.psql(f"SELECT {i} AS {MARKER}", db=db)
            time.sleep(0.5)
            n = lib.pg_calls(d, text, db) - before
            t.check(n == K, f"{K} statements after it count {K}", f"got {n}")
            t.check(len(log_lines(d, "did not stamp")) == 1, "no other fallback is logged")
    finally:
        pg.stop()
    t.check(pg.dir is None, "the cluster was stopped and removed")


if __name__ == "__main__":
    lib.main(body)
