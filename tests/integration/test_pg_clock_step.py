#!/usr/bin/python3.11
"""A wall-clock step during a statement makes no false duration.

In single-probe mode a statement's start is PostgreSQL's wall-clock stamp
converted with CLOCK_REALTIME - CLOCK_MONOTONIC. Here a statement waits on a
table lock another session holds (pg_sleep would not do: it sleeps until a
wall-clock time, so a step ends it at once), the wall clock is stepped +2 s
0.3 s into the wait, the lock is released 0.5 s later, and the clock is set
back (from CLOCK_MONOTONIC, to the microsecond) once the statement is over.
Asserted:
  a statement before the step is timed (the control, pg_sleep(1): ~1 s);
  erpscope_pg_clock_steps_total counts the 2 steps;
  the statement spanning the step is not timed: untimed{reason="clock_step"}
  is 1 more, it adds no call, and there is no slow-query event for it
  (before the fix: a ~2.8 s statement and a slow-query event).

Stepping the clock disturbs everything else on the host for under a
second: the test refuses to run (skips, saying why; under CI=true a skip
fails) while another erpscope runs, since its numbers would be hit.
"""

import json
import os
import subprocess
import time

import lib

DB = f"erpck_{os.getpid()}"
STEP = 2.0
MARK = "SELECT count(*) AS clock_marker_q FROM tm"
CTRL = "SELECT pg_sleep(?) AS clock_control_q"


def others(ours):
    """Other erpscope daemons, which a clock step would disturb (ours: pids
    to leave out). Other PostgreSQL servers are left alone: a step only
    moves their statements' wall-clock stamps, and a CI machine may run
    Debian's default cluster."""
    found = []
    for e in os.listdir("/proc"):
        if not e.isdigit() or int(e) in ours:
            continue
        try:
            with open(f"/proc/{e}/comm") as f:
                comm = f.read().strip()
            if comm != "erpscope":
                continue
            with open(f"/proc/{e}/stat", "rb") as f:
                st = f.read()
            ppid = int(st[st.rindex(b")") + 2:].split()[1])
            if ppid in ours:
                continue
            found.append(f"{comm}/{e}")
        except (OSError, ValueError):
            continue
    return found


def step_clock(seconds):
    time.clock_settime_ns(time.CLOCK_REALTIME, time.clock_gettime_ns(time.CLOCK_REALTIME)
                          + int(seconds * 1e9))


def statements(d, query):
    _, _, b = lib.http_get(d.port, "/queries?format=json")
    return [s for s in json.loads(b)["statements"] if s["db"] == DB and s["query"] == query]


def untimed(m):
    return m.value("erpscope_pg_statements_untimed_total", reason="clock_step")


def body(t):
    pg = lib.PgCluster().start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        pg.psql("CREATE TABLE tm (id int)", db=DB)
        with lib.Daemon() as d:
            ours = {d.pid, pg.postmaster_pid()}
            busy = others(ours)
            if busy:
                raise lib.Skip("a clock step would disturb what else runs here: "
                               + " ".join(busy[:6]))
            pg.psql("SELECT pg_sleep(1.0) AS clock_control_q", db=DB)
            ctrl = lib.wait_for(lambda: statements(d, CTRL), 5.0, 0.1)
            t.require(ctrl and ctrl[0]["calls"] == 1, "the control statement is counted",
                      json.dumps(ctrl))
            t.between(ctrl[0]["total_seconds"], 0.99, 1.1, "the control pg_sleep(1) is timed ~1 s")
            a = d.scrape()

            holder = pg.connect(db=DB)
            hc = holder.cursor()
            hc.execute("BEGIN")
            hc.execute("LOCK TABLE tm IN ACCESS EXCLUSIVE MODE")
            off0 = time.clock_gettime_ns(time.CLOCK_REALTIME) - \
                time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            psql = lib.spawn([f"{lib.PG_BIN}/psql", "-X", "-q", "-h", pg.dir, "-p", str(pg.port),
                              "-U", "postgres", "-d", DB, "-c", MARK], stdout=subprocess.DEVNULL)
            time.sleep(0.3)
            try:
                step_clock(STEP)
                lib.log(f"wall clock stepped +{STEP} s")
                time.sleep(0.5)  # the daemon sees the step
                hc.execute("ROLLBACK")
                rc = psql.wait(timeout=10)
            finally:
                # Back to the offset it had, to the microsecond.
                time.clock_settime_ns(time.CLOCK_REALTIME,
                                      time.clock_gettime_ns(time.CLOCK_MONOTONIC) + off0)
                lib.log("wall clock set back")
            t.check(rc == 0, "the statement across the step ran", f"psql exit {rc}")
            time.sleep(0.5)  # the poller sees the step back
            b = d.scrape()

            t.check(b.value("erpscope_pg_clock_steps_total")
                    - a.value("erpscope_pg_clock_steps_total") == 2,
                    "erpscope_pg_clock_steps_total counted the step and the step back",
                    f"{a.value('erpscope_pg_clock_steps_total')} -> "
                    f"{b.value('erpscope_pg_clock_steps_total')}")
            t.check(untimed(b) - untimed(a) == 1,
                    "the statement across the step is counted untimed, reason clock_step",
                    f"{untimed(a)} -> {untimed(b)}")
            mark = statements(d, MARK)
            t.check(not mark, "it adds no call and no duration to /queries", json.dumps(mark))
            _, _, body_ = lib.http_get(d.port, "/events?type=pg_slow_query&limit=1000")
            evs = [e["data"] for e in json.loads(body_)["events"]
                   if e["data"].get("query") == MARK]
            t.check(not evs, "no slow-query event for it", json.dumps(evs))
    finally:
        pg.stop()


if __name__ == "__main__":
    lib.main(body)
