#!/usr/bin/python3.11
"""PostgreSQL lock waits, deadlocks and transactions, against a real
PostgreSQL 15 started here.

  Session A holds a row lock (SELECT ... FOR UPDATE in a transaction) for
  about 1 s while session B updates the row: one lock wait of about 1 s in
  erpscope_pg_lock_wait_seconds (transactionid, ShareLock: B waits for A's
  transaction), the UPDATE in /queries with its wait time, and a
  pg_lock_wait event (the wait is above the 100 ms slow threshold).

  A deliberate deadlock (A locks row 1 then wants 2, B locks 2 then wants 1)
  counts 1 in erpscope_pg_deadlocks_total and is a pg_deadlock event; the
  victim's transaction counts as an abort, the rest as commits.
"""

import json
import os
import threading
import time

import lib

# Our own database: other clusters of the same binary are seen too.
DB = f"erpt_{os.getpid()}"


def lock_waits(m, db=DB):
    """(count, sum) over every lock wait series of db."""
    count = total = 0.0
    for labels, v in m.series("erpscope_pg_lock_wait_seconds_count", db=db):
        count += v
        total += m.value("erpscope_pg_lock_wait_seconds_sum", **labels)
    return count, total


def events(d, typ):
    st, _, body = lib.http_get(d.port, f"/events?type={typ}&limit=1000")
    if st != 200:
        raise lib.Failure(f"GET /events: {st}")
    return json.loads(body)["events"]


def run_bg(fn):
    box = {}

    def go():
        try:
            box["result"] = fn()
        except Exception as e:  # the test looks at it
            box["error"] = e

    th = threading.Thread(target=go, daemon=True)
    th.start()
    return th, box


def row_lock(t, d, pg):
    a = pg.connect(db=DB)
    b = pg.connect(db=DB)
    ca, cb = a.cursor(), b.cursor()
    m0 = d.scrape()
    c0, s0 = lock_waits(m0)
    ca.execute("BEGIN")
    ca.execute("SELECT v FROM lk WHERE id = 1 FOR UPDATE")
    t0 = time.monotonic()
    th, box = run_bg(lambda: cb.execute("UPDATE lk SET v = v + 1 WHERE id = 1"))
    time.sleep(1.0)
    ca.execute("COMMIT")
    th.join(10)
    waited = time.monotonic() - t0
    t.require("error" not in box and not th.is_alive(), "session B's UPDATE went through",
              str(box.get("error")))
    time.sleep(0.3)
    m1 = d.scrape()
    c1, s1 = lock_waits(m1)
    lib.log(f"lock waits {c0} -> {c1}, seconds {s0:.3f} -> {s1:.3f}; B waited {waited:.3f}s")
    t.check(c1 - c0 == 1, "one lock wait", f"{c1 - c0}")
    t.between(s1 - s0, 0.9, waited + 0.05, "of about 1 s")
    key = dict(db=DB, mode="ShareLock", locktype="transactionid")
    t.check(m1.value("erpscope_pg_lock_wait_seconds_count", default=0, **key)
            - m0.value("erpscope_pg_lock_wait_seconds_count", default=0, **key) == 1,
            "on the holder's transactionid, in ShareLock mode",
            str(m1.series("erpscope_pg_lock_wait_seconds_count")))
    buckets = dict(m1.histogram("erpscope_pg_lock_wait_seconds", **key)[0])
    t.check(buckets.get(1.0, 0) - buckets.get(0.5, 0) >= 1 or
            buckets.get(2.5, 0) - buckets.get(1.0, 0) >= 1, "in the bucket of ~1 s",
            str(buckets))
    st, _, body = lib.http_get(d.port, "/queries?format=json")
    upd = [s for s in json.loads(body)["statements"]
           if s["query"] == "UPDATE lk SET v = v + ? WHERE id = ?" and s["db"] == DB]
    t.check(len(upd) == 1 and upd[0]["lock_waits"] == 1 and
            0.9 <= upd[0]["lock_wait_seconds"] <= waited + 0.05,
            "/queries shows the UPDATE with its lock wait", json.dumps(upd))
    evs = [e["data"] for e in events(d, "pg_lock_wait")
           if e["data"].get("query") == "UPDATE lk SET v = v + ? WHERE id = ?"
           and e["data"].get("db") == DB]
    t.check(len(evs) == 1 and evs[0]["locktype"] == "transactionid"
            and 0.9 <= evs[0]["wait_seconds"] <= waited + 0.05,
            "a pg_lock_wait event with the statement and the lock", json.dumps(evs))
    a.close()
    b.close()


def deadlock(t, d, pg):
    a = pg.connect(db=DB)
    b = pg.connect(db=DB)
    ca, cb = a.cursor(), b.cursor()
    m0 = d.scrape()
    dl0 = m0.value("erpscope_pg_deadlocks_total", db=DB, default=0)
    ab0 = m0.value("erpscope_pg_transactions_total", db=DB, outcome="abort", default=0)
    ca.execute("BEGIN")
    cb.execute("BEGIN")
    ca.execute("UPDATE lk SET v = v WHERE id = 1")
    cb.execute("UPDATE lk SET v = v WHERE id = 2")
    th_a, box_a = run_bg(lambda: ca.execute("UPDATE lk SET v = v WHERE id = 2"))
    time.sleep(0.2)
    th_b, box_b = run_bg(lambda: cb.execute("UPDATE lk SET v = v WHERE id = 1"))
    th_a.join(15)
    th_b.join(15)
    errs = [str(x.get("error", "")) for x in (box_a, box_b)]
    t.require(sum("deadlock detected" in e for e in errs) == 1, "PostgreSQL found one deadlock",
              str(errs))
    for c in (a, b):
        try:
            c.cursor().execute("ROLLBACK")
        except Exception:
            pass
    time.sleep(0.3)
    m1 = d.scrape()
    t.check(m1.value("erpscope_pg_deadlocks_total", db=DB, default=0) - dl0 == 1,
            "erpscope_pg_deadlocks_total of its db counts 1",
            str(m1.series("erpscope_pg_deadlocks_total")))
    ab1 = m1.value("erpscope_pg_transactions_total", db=DB, outcome="abort", default=0)
    t.check(ab1 - ab0 >= 1, "the victim's transaction is an abort", f"{ab0} -> {ab1}")
    evs = [e for e in events(d, "pg_deadlock") if e["data"].get("db") == DB]
    t.check(len(evs) == 1
            and evs[0]["data"]["query"] == "UPDATE lk SET v = v WHERE id = ?",
            "one pg_deadlock event with the statement that waited", json.dumps(evs))
    a.close()
    b.close()


def body(t):
    pg = lib.PgCluster().start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        pg.psql("CREATE TABLE lk (id int PRIMARY KEY, v int); INSERT INTO lk VALUES (1, 0), (2, 0)",
                db=DB)
        with lib.Daemon() as d:
            m0 = d.scrape()
            c0 = m0.value("erpscope_pg_transactions_total", db=DB, outcome="commit",
                          default=0)
            for _ in range(10):
                pg.psql("SELECT 1", db=DB)
            time.sleep(0.3)
            m1 = d.scrape()
            c1 = m1.value("erpscope_pg_transactions_total", db=DB, outcome="commit",
                          default=0)
            # One implicit transaction each, counted at query__done (MyProc->lxid).
            t.check(c1 - c0 == 10, "10 psql statements commit 10 transactions",
                    f"{c0} -> {c1}")
            row_lock(t, d, pg)
            deadlock(t, d, pg)
    finally:
        pg.stop()
    t.check(pg.dir is None, "the PostgreSQL cluster was stopped and removed")


if __name__ == "__main__":
    lib.main(body)
