#!/usr/bin/python3.11
"""Pool occupancy of PostgreSQL backends, from the pg probe: a backend is busy
from the start of a statement while it runs or while its transaction is open
(idle in transaction, aborted or not, is busy), idle otherwise.

A throwaway cluster; 4 psycopg2 sessions, each run one statement first (the
kernel knows a backend from its first statement). Then, in both timing modes
(query__done alone, and two probes: a second cluster with track_activities
off, once the daemon has moved it to query__start):
  idle 1.5 s: no busy time gathered (< 5 ms per backend)
  4 x SELECT pg_sleep(1.5) at once: erpscope_workers{role="pg_backend",
      state="busy"} is 4 over what it was before, mid-way each backend's
      busy seconds grew 0.75 s (the open interval) within 0.2 s, and after,
      busy is back where it was and each backend's busy seconds grew
      within 5% of 1.5 s (no more than the client measured), their sum
      within 5% of 6 s
  BEGIN; SELECT 1; 1 s idle in transaction; COMMIT: busy (+1) while idle
      in transaction, idle after, its busy seconds the client's BEGIN ..
      COMMIT within 5%
  BEGIN; SELECT 1/0; 1 s idle in transaction (aborted); ROLLBACK: likewise
  a standalone statement failing after pg_sleep(0.5) (transaction__abort
      closes it): +0.5 s within 5%, idle after
Other tests' backends on this host may be busy now and then: a round whose
gauges are off is run again, and asserted at the fifth.
"""

import os
import threading
import time

import lib

N = 4
SLEEP = 1.5


def busy_s(m, pid):
    return m.value("erpscope_worker_busy_seconds_total", None, role="pg_backend",
                   worker=str(pid))


def gauge(m, state):
    return m.value("erpscope_workers", 0.0, role="pg_backend", state=state)


def movers(m0, m1, ours):
    """Other backends whose busy seconds grew from m0 to m1: why a gauge was off."""
    out = []
    for labels, v in m1.series("erpscope_worker_busy_seconds_total", role="pg_backend"):
        w = labels.get("worker")
        was = m0.value("erpscope_worker_busy_seconds_total", 0.0, role="pg_backend", worker=w)
        if w not in ours and v > was:
            out.append(f"{w} +{v - was:.3f}s")
    return out


def statements_path(d):
    path = os.path.join(lib.PG_BIN, "postgres")
    for labels, _ in d.scrape().series("erpscope_pg_binary_info", path=path):
        return labels.get("statements")
    return None


def sessions(t, d, pg, n):
    """n autocommit sessions, each with one statement run, tracked as pg_backend."""
    out = []
    for _ in range(n):
        conn = pg.connect()
        cur = conn.cursor()
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
        info, _, _ = lib.wait_worker(d, pid, timeout=10.0, role="pg_backend")
        t.require(info is not None, f"backend {pid} is tracked as pg_backend")
        out.append((conn, cur, pid))
    m = lib.wait_for(lambda: (lambda m: m if all(busy_s(m, p) is not None
                                                  for _, _, p in out) else None)(d.scrape()),
                     5.0, 0.2)
    t.require(m is not None, "every backend has a busy seconds series")
    return out


def rounds(what, fn):
    """Runs fn() until its gauges were as expected (fn returns they were), asserting the
    fifth time: other backends on the host move them now and then."""
    for i in range(5):
        if fn(i == 4):
            return
        lib.log(f"{what}: the gauges were off (other backends?), again")


def sleep_round(t, d, ss):
    def one(last):
        pids = [p for _, _, p in ss]
        m0 = d.scrape()
        b0 = {p: busy_s(m0, p) for p in pids}
        base = gauge(m0, "busy")
        took = {}

        def run(cur, pid):
            t0 = time.monotonic()
            cur.execute(f"SELECT pg_sleep({SLEEP})")
            took[pid] = time.monotonic() - t0
        ths = [threading.Thread(target=run, args=(cur, pid)) for _, cur, pid in ss]
        t0 = time.monotonic()
        for th in ths:
            th.start()
        time.sleep(SLEEP / 2 - (time.monotonic() - t0))
        mid0 = time.monotonic() - t0
        m1 = d.scrape()
        mid = time.monotonic() - t0
        for th in ths:
            th.join(timeout=30)
        time.sleep(0.2)
        m2 = d.scrape()
        during, after = gauge(m1, "busy") - base, gauge(m2, "busy")
        if (during != N or after != base) and not last:
            lib.log(f"busy +{during} then {after} (baseline {base}); other backends busy: "
                    f"{movers(m0, m2, {str(p) for p in pids})}")
            return False
        t.check(during == N, f"busy gauge is {N} over its baseline while {N} backends "
                f"run pg_sleep({SLEEP})", f"+{during} (baseline {base})")
        t.check(after == base, "busy gauge back to its baseline after",
                f"{after} (baseline {base})")
        for p in pids:
            t.between(busy_s(m1, p) - b0[p], mid0 - 0.1, mid,
                      f"backend {p}: mid-statement busy seconds include the open interval "
                      f"({mid:.2f} s in)")
        total = 0.0
        for p in pids:
            got = busy_s(m2, p) - b0[p]
            total += got
            t.near(got, SLEEP, 0.05, f"backend {p}: busy seconds of pg_sleep({SLEEP})")
            t.check(got <= took[p] + 0.001, f"backend {p}: no more than the client measured",
                    f"{got:.4f} > {took[p]:.4f}")
        t.near(total, N * SLEEP, 0.05, f"the {N} backends' busy seconds sum to {N} x {SLEEP}")
        return True
    rounds("sleep round", one)


def xact_round(t, d, pg, failing):
    """BEGIN; a statement (failing or not); 1 s idle in transaction; COMMIT or ROLLBACK."""
    what = "idle in transaction (aborted)" if failing else "idle in transaction"
    conn = pg.connect()
    conn.autocommit = False
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    conn.commit()
    info, _, _ = lib.wait_worker(d, pid, timeout=10.0, role="pg_backend")
    t.require(info is not None, f"backend {pid} is tracked as pg_backend")

    def one(last):
        m0 = d.scrape()
        b0, base = busy_s(m0, pid), gauge(m0, "busy")
        t0 = time.monotonic()
        try:
            cur.execute("SELECT 1/0" if failing else "SELECT 1")  # psycopg2 sends BEGIN first
        except Exception:
            pass
        time.sleep(1.0)
        ts = time.monotonic()
        m1 = d.scrape()
        t1 = time.monotonic()
        conn.rollback() if failing else conn.commit()
        t2 = time.monotonic()
        time.sleep(0.2)
        m2 = d.scrape()
        if (gauge(m1, "busy") - base != 1 or gauge(m2, "busy") != base) and not last:
            lib.log(f"busy +{gauge(m1, 'busy') - base} then {gauge(m2, 'busy')} (baseline "
                    f"{base}); other backends busy: {movers(m0, m2, {str(pid)})}")
            return False
        t.check(gauge(m1, "busy") - base == 1, f"{what}: the backend is busy",
                f"+{gauge(m1, 'busy') - base} (baseline {base})")
        t.check(gauge(m2, "busy") == base, f"{what}: idle after the transaction ends",
                f"{gauge(m2, 'busy')} (baseline {base})")
        t.between(busy_s(m1, pid) - b0, ts - t0 - 0.05, t1 - t0,
                  f"{what}: busy seconds grow while the transaction is open")
        got = busy_s(m2, pid) - b0
        t.check(got <= t2 - t0 + 0.001, f"{what}: no more than the client's BEGIN .. end",
                f"{got:.4f} > {t2 - t0:.4f}")
        t.near(got, t2 - t0, 0.05, f"{what}: busy seconds are BEGIN .. "
               f"{'ROLLBACK' if failing else 'COMMIT'}")
        return True
    rounds(what, one)
    conn.close()


def failing_round(t, d, ss):
    conn, cur, pid = ss[0]

    def one(last):
        m0 = d.scrape()
        b0, base = busy_s(m0, pid), gauge(m0, "busy")
        t0 = time.monotonic()
        try:
            cur.execute("DO $$ BEGIN PERFORM pg_sleep(0.5); RAISE EXCEPTION 'busy_fail'; END $$")
        except Exception:
            pass
        took = time.monotonic() - t0
        time.sleep(0.3)
        m1 = d.scrape()
        if gauge(m1, "busy") != base and not last:
            lib.log(f"busy {gauge(m1, 'busy')} (baseline {base}); other backends busy: "
                    f"{movers(m0, m1, {str(pid)})}")
            return False
        t.check(gauge(m1, "busy") == base, "a failed standalone statement leaves the "
                "backend idle", f"{gauge(m1, 'busy')} (baseline {base})")
        got = busy_s(m1, pid) - b0
        t.near(got, 0.5, 0.05, "busy seconds of a statement failing after pg_sleep(0.5)")
        t.check(got <= took + 0.001, "no more than the client measured",
                f"{got:.4f} > {took:.4f}")
        return True
    rounds("failing statement", one)


def scenario(t, d, pg):
    ss = sessions(t, d, pg, N)
    m0 = d.scrape()
    b0 = {p: busy_s(m0, p) for _, _, p in ss}
    time.sleep(1.5)
    m1 = d.scrape()
    for _, _, p in ss:
        t.between(busy_s(m1, p) - b0[p], 0.0, 0.005,
                  f"backend {p}: an idle backend gathers no busy time (1.5 s)")
    sleep_round(t, d, ss)
    xact_round(t, d, pg, failing=False)
    xact_round(t, d, pg, failing=True)
    failing_round(t, d, ss)
    for conn, _, _ in ss:
        conn.close()


def body(t):
    with lib.Daemon("--probes=pg") as d:
        t.prefix = "[query__done] "
        pg = lib.PgCluster().start()
        try:
            t.require(statements_path(d) == "query__done", "statements timed at query__done "
                      "alone", str(statements_path(d)))
            scenario(t, d, pg)
        finally:
            pg.stop()

        t.prefix = "[two probes] "
        pg = lib.PgCluster(settings={"track_activities": "off"}).start()
        try:
            got = lib.wait_for(lambda: pg.psql("SELECT 1") and
                               statements_path(d) == "query__start+query__done", 10.0, 0.2)
            t.require(got, "track_activities off: the server goes to two probes",
                      str(statements_path(d)))
            scenario(t, d, pg)
        finally:
            pg.stop()


if __name__ == "__main__":
    lib.main(body)
