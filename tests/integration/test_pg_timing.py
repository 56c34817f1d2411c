#!/usr/bin/python3.11
"""How PostgreSQL statements are timed, against a real PostgreSQL 15.

By default (--pg.single-probe) only query__done is trapped: the statement's
start comes from the backend's own status entry and, for a statement that
fails, its text from debug_query_string at transaction__abort. Asserted for
that mode, for it with --no-pg.direct-args (query__done's argument read
through libbpf's USDT runtime instead of the register its note names) and
for --no-pg.single-probe (query__start + query__done):

  - the query__start uprobe is attached only in the second mode (the log
    line says which);
  - 4 x pg_sleep(0.2) are one fingerprint with 4 calls, each in the
    (0.1, 0.25] bucket, sum 0.8 s within 0.05 s;
  - 3 failing statements (SELECT 1/0 with a changing literal) are one
    fingerprint with 3 calls and 3 errors, and the transaction aborts count
    3; a ROLLBACK of an open transaction is no error;
  - a 3-statement transaction (BEGIN, UPDATE, COMMIT) counts one commit.

With track_activities = off in one session (the start stamp stops
moving), the single-probe daemon goes back to query__start for that
server (until it exits), says so in its log, and times statements again: 5 x pg_sleep(0.2)
in a new session afterwards have 5 calls in the right bucket.
"""

import json
import os
import time

import lib

DB = f"erpt_{os.getpid()}"
SLEEP = "SELECT pg_sleep(?)"
DIV = "SELECT ? / ?"


def queries(d):
    st, _, body = lib.http_get(d.port, "/queries?format=json&limit=1000")
    if st != 200:
        raise lib.Failure(f"GET /queries: {st}")
    return [q for q in json.loads(body)["statements"] if q["db"] == DB]


def one(d, text, calls, timeout=10.0):
    """The statement with this text once it has calls calls, or what there is."""
    got = []

    def ready():
        nonlocal got
        got = [q for q in queries(d) if q["query"] == text]
        return sum(q["calls"] for q in got) >= calls

    lib.wait_for(ready, timeout, 0.2)
    return got


def aborts(m):
    return m.value("erpscope_pg_transactions_total", db=DB, outcome="abort", default=0)


def commits(m):
    return m.value("erpscope_pg_transactions_total", db=DB, outcome="commit", default=0)


def timing(t, pg, single, direct=True):
    mode = "single-probe" if single else "two probes"
    if not direct:
        mode += ", libbpf's USDT runtime"
    t.prefix = f"[{mode}] "
    args = [] if single else ["--no-pg.single-probe"]
    if not direct:
        args.append("--no-pg.direct-args")
    with lib.Daemon(*args) as d:
        want = "statements=query__done" if single else "statements=query__start+query__done"
        lines = [x for x in d.log_text().splitlines() if "attached to PostgreSQL binary" in x]
        t.check(lines and all(want in x for x in lines), f"the log says {want}", str(lines[:2]))
        want = "done_args=register" if direct else "done_args=libbpf"
        t.check(lines and all(want in x for x in lines), f"the log says {want}", str(lines[:2]))

        conn = pg.connect(db=DB)
        conn.autocommit = True
        cur = conn.cursor()
        for _ in range(4):
            cur.execute("SELECT pg_sleep(0.2)")
        st = one(d, SLEEP, 4)
        t.require(len(st) == 1 and st[0]["calls"] == 4, "4 x pg_sleep(0.2): one fingerprint, 4 calls",
                  json.dumps(st))
        fp = st[0]["fingerprint"]
        qs = [st[0][k] for k in ("p50_seconds", "p95_seconds", "p99_seconds")]
        t.check(all(0.2 <= x <= st[0]["max_seconds"] for x in qs),
                "p50/p95/p99 between 0.2 s and the slowest call", json.dumps(st))
        m = d.scrape()
        buckets, total, count = m.histogram("erpscope_pg_statement_duration_seconds",
                                            fingerprint=fp, db=DB)
        b = dict(buckets)
        t.check(count == 4 and b.get(0.1) == 0 and b.get(0.25) == 4,
                "all four in the (0.1, 0.25] bucket", str(buckets))
        t.near(total, 0.8, 0.0625, "their sum is 4 x 0.2 s")

        ab0, c0 = aborts(m), commits(m)
        for i in range(3):
            try:
                cur.execute(f"SELECT {i + 1} / 0")
            except Exception as e:  # psycopg2.errors.DivisionByZero
                lib.log(f"expected error: {str(e).strip()}")
        st = one(d, DIV, 3)
        t.check(len(st) == 1 and st[0]["calls"] == 3 and st[0]["errors"] == 3,
                "3 failing statements: one fingerprint, 3 calls, 3 errors", json.dumps(st))
        cur.execute("BEGIN")
        cur.execute("SELECT 1")
        cur.execute("ROLLBACK")
        cur.execute("BEGIN")
        cur.execute("UPDATE tm SET v = v + 1 WHERE id = 1")
        cur.execute("COMMIT")
        time.sleep(0.5)
        m = d.scrape()
        t.check(aborts(m) - ab0 == 4, "3 failed statements and 1 ROLLBACK: 4 aborts",
                f"{ab0} -> {aborts(m)}")
        t.check(commits(m) - c0 == 1, "BEGIN; UPDATE; COMMIT: 1 commit", f"{c0} -> {commits(m)}")
        rb = [q for q in queries(d) if q["command"] == "ROLLBACK"]
        t.check(rb and sum(q["errors"] for q in rb) == 0 and sum(q["calls"] for q in rb) == 1,
                "the ROLLBACK is one call, no error", json.dumps(rb))
        conn.close()

        if not single:
            return
        # A session without start stamps: the binary goes back to query__start.
        off = pg.connect(db=DB)
        off.autocommit = True
        oc = off.cursor()
        oc.execute("SET track_activities = off")
        oc.execute("SELECT 42")
        oc.execute("SELECT 43")
        lib.wait_for(lambda: "from query__start until it exits" in d.log_text(), 5.0, 0.1)
        t.check("from query__start until it exits" in d.log_text(),
                "a statement without a start stamp: the log says query__start is attached")
        off.close()
        conn = pg.connect(db=DB)
        conn.autocommit = True
        cur = conn.cursor()
        for _ in range(5):
            cur.execute("SELECT pg_sleep(0.2)")
        st = one(d, SLEEP, 9)
        t.check(len(st) == 1 and st[0]["calls"] == 9,
                "5 more pg_sleep(0.2) after the switch are counted (9 calls)", json.dumps(st))
        m = d.scrape()
        buckets, total, count = m.histogram("erpscope_pg_statement_duration_seconds",
                                            fingerprint=fp, db=DB)
        t.check(count == 9 and dict(buckets).get(0.25) == 9, "all nine in the (0.1, 0.25] bucket",
                str(buckets))
        t.check("query__start detached" not in d.log_text(),
                "query__start stays attached while that server runs")
        conn.close()


def body(t):
    pg = lib.PgCluster().start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        pg.psql("CREATE TABLE tm (id int PRIMARY KEY, v int); INSERT INTO tm VALUES (1, 0)", db=DB)
        timing(t, pg, True)
        pg.psql(f"DROP DATABASE {DB}")
        pg.psql(f"CREATE DATABASE {DB}")
        pg.psql("CREATE TABLE tm (id int PRIMARY KEY, v int); INSERT INTO tm VALUES (1, 0)", db=DB)
        timing(t, pg, False)
        pg.psql(f"DROP DATABASE {DB}")
        pg.psql(f"CREATE DATABASE {DB}")
        pg.psql("CREATE TABLE tm (id int PRIMARY KEY, v int); INSERT INTO tm VALUES (1, 0)", db=DB)
        timing(t, pg, True, direct=False)
    finally:
        pg.stop()


if __name__ == "__main__":
    lib.main(body)
