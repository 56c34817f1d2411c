#!/usr/bin/python3.11
"""PostgreSQL statements from the server's USDT probes, against a real
PostgreSQL 15 (Debian's) started here in a temp dir on a free port.

  5 x `SELECT pg_sleep(0.3)` from psql: one fingerprint, 5 calls, all five in
  the (0.25, 0.5] bucket of its histogram, and 5 slow-query events at
  /events with the normalised text and the backend's db and user.

  1000 statements that differ only in literals (numbers, strings with quotes
  and backslashes inside, E'' strings, booleans, IN lists of 1 to 50 items)
  collapse to one fingerprint with 1000 calls, and no literal value appears
  anywhere in /metrics, /queries (text and JSON) or /events.

  pgbench -S for a few seconds: the select statement's calls equal the
  transactions pgbench reports (one statement each) within 1%.

  And: an open idle connection in erpscope_pg_backends, a CHECKPOINT counted
  with the buffers it wrote, erpscope_pg_max_connections from the
  cluster's postgresql.conf.
"""

import json
import os
import re
import subprocess
import time

import lib

SLEEP_TEXT = "SELECT pg_sleep(?)"
# Our own database: other clusters of the same binary (other tests running at
# the same time) are seen too, and their statements have the same fingerprints.
DB = f"erpt_{os.getpid()}"


def queries(d):
    st, hdrs, body = lib.http_get(d.port, "/queries?format=json")
    if st != 200:
        raise lib.Failure(f"GET /queries?format=json: {st} {body[:200]!r}")
    if not hdrs.get("content-type", "").startswith("application/json"):
        raise lib.Failure(f"/queries?format=json content type {hdrs.get('content-type')}")
    return json.loads(body)


def statements(d, pred):
    return [s for s in queries(d)["statements"]
            if s["query"] and s["db"] == DB and pred(s["query"])]


def events(d, typ):
    st, _, body = lib.http_get(d.port, f"/events?type={typ}&limit=1000")
    if st != 200:
        raise lib.Failure(f"GET /events: {st} {body[:200]!r}")
    return json.loads(body)["events"]


def wait_calls(d, pred, calls, timeout=15.0):
    """Polls /queries until the statements matching pred add up to calls."""
    last = []

    def done():
        nonlocal last
        last = statements(d, pred)
        return sum(s["calls"] for s in last) >= calls

    lib.wait_for(done, timeout, 0.2)
    return last


def sleeps(t, d, pg):
    for _ in range(5):
        pg.psql("SELECT pg_sleep(0.3)", db=DB)
    st = wait_calls(d, lambda q: q == SLEEP_TEXT, 5)
    t.require(len(st) == 1, "5 x pg_sleep(0.3) are one fingerprint",
              f"statements: {[(s['fingerprint'], s['db'], s['calls']) for s in st]}")
    s = st[0]
    fp = s["fingerprint"]
    t.check(s["calls"] == 5 and s["db"] == DB, "its calls are 5, on its db",
            f"calls {s['calls']} db {s['db']}")
    t.check(s["command"] == "SELECT", "its command is SELECT", s["command"])
    t.between(s["p50_seconds"], 0.25, 0.375, "its p50 from the fine bins is about 0.3 s")
    m = d.scrape()
    t.check(m.value("erpscope_pg_statement_calls_total", fingerprint=fp, db=DB) == 5,
            "erpscope_pg_statement_calls_total is 5",
            str(m.series("erpscope_pg_statement_calls_total", fingerprint=fp)))
    buckets, total, count = m.histogram("erpscope_pg_statement_duration_seconds",
                                        fingerprint=fp, db=DB)
    b = dict(buckets)
    t.check(count == 5 and b.get(0.25) == 0 and b.get(0.5) == 5,
            "all five in the (0.25, 0.5] bucket", f"buckets {buckets}")
    t.between(total, 1.5, 1.6, "the histogram's sum is 5 x 0.3 s")
    t.check(m.value("erpscope_pg_slow_queries_total", db=DB, default=0) == 5,
            "erpscope_pg_slow_queries_total of its db counts them",
            str(m.series("erpscope_pg_slow_queries_total")))
    qd = m.histogram("erpscope_pg_query_duration_seconds", db=DB, command="SELECT")
    t.check(qd[2] is not None and qd[2] >= 5 and dict(qd[0]).get(0.5, 0) >= 5,
            "erpscope_pg_query_duration_seconds{command=SELECT} has them", str(qd))
    evs = [e for e in events(d, "pg_slow_query")
           if e["data"].get("fingerprint") == fp and e["data"].get("db") == DB]
    t.check(len(evs) == 5, "5 slow-query events", f"{len(evs)}: {evs[:2]}")
    ok = all(e["data"]["query"] == SLEEP_TEXT
             and e["data"]["user"] == "postgres" and 0.29 < e["data"]["duration_seconds"] < 0.5
             and e["data"]["command"] == "SELECT" for e in evs)
    t.check(ok, "each has the normalised text, db, user and a duration of about 0.3 s",
            json.dumps(evs[:1]))


def literals(t, d, pg):
    pg.psql("CREATE TABLE lit_t (id bigint, name text, note text, code bigint, flag bool, "
            "amount numeric)", db=DB)
    conn = pg.connect(db=DB)
    cur = conn.cursor()
    markers = []
    misses0 = d.scrape().value("erpscope_pg_statement_head_misses_total")
    for i in range(1000):
        ident = 737370000 + i
        name = f"zq{i}x'y\\z\"w"
        note = f"E'ev{i}q\\'w\\\\'"
        codes = tuple(848480000 + i * 10 + k for k in range(1 + i % 50))
        sql = (f"SELECT id FROM lit_t WHERE id = %s AND name = %s AND note = {note} "
               f"AND code IN %s AND flag = %s AND amount = %s")
        cur.execute(sql, (ident, name, codes, i % 2 == 0, float(f"31337{i:04d}.5")))
        markers.append(str(ident))
    st = wait_calls(d, lambda q: "FROM lit_t WHERE id" in q, 1000)
    t.require(len(st) == 1, "1000 statements differing only in literals are one fingerprint",
              f"{[(s['fingerprint'], s['calls'], s['query']) for s in st][:5]}")
    t.check(st[0]["calls"] == 1000, "with 1000 calls", str(st[0]["calls"]))
    lib.log(f"normalised: {st[0]['query']}")
    t.check(st[0]["query"] == "SELECT id FROM lit_t WHERE id = ? AND name = ? AND note = ? "
            "AND code IN (?) AND flag = ? AND amount = ?", "the normalised text",
            st[0]["query"])
    m = d.scrape()
    t.check(m.value("erpscope_pg_statement_calls_total", fingerprint=st[0]["fingerprint"],
                    db=DB) == 1000, "erpscope_pg_statement_calls_total is 1000")
    # Their head ("SELECT id FROM lit_t WHERE id = ", 32 bytes up to the
    # first digit) is normalised once and cached; the other 999 resume after it.
    t.check(m.value("erpscope_pg_statement_head_misses_total") - misses0 == 1,
            "one head-cache miss for the 1000 statements",
            f"{misses0} -> {m.value('erpscope_pg_statement_head_misses_total')}")

    # In /metrics only labels can hold text; sample values are the daemon's numbers.
    pages = {"/metrics": "\n".join(re.findall(r"\{[^}]*\}", m.text))}
    for path in ("/queries", "/queries?format=json", "/events?limit=1000"):
        status, _, body = lib.http_get(d.port, path)
        t.require(status == 200, f"GET {path}", str(status))
        pages[path] = body.decode()
    pat = re.compile(r"zq\d+x|ev\d+q|73737\d{4}|84848\d{4}|31337\d{4}")
    for path, text in pages.items():
        found = pat.findall(text)
        t.check(not found, f"no literal value in {path}", f"found {found[:5]}")
    log = d.log_text()
    t.check(not pat.findall(log), "no literal value in the daemon's log", str(pat.findall(log)[:5]))
    # The connection is open and idle: a backend of our db in the gauge.
    got = lib.wait_for(lambda: d.scrape().value("erpscope_pg_backends", db=DB, user="postgres",
                                                 state="idle"), 5.0, 0.2)
    t.check(got == 1, "erpscope_pg_backends counts our idle backend", str(got))
    conn.close()


def pgbench(t, d, pg):
    base = ["-h", pg.dir, "-p", str(pg.port), "-U", "postgres"]
    r = subprocess.run(["pgbench", "-i", "-s", "1", "-q"] + base + [DB],
                       capture_output=True, text=True, timeout=120)
    t.require(r.returncode == 0, "pgbench -i", r.stderr[-500:])
    text = "SELECT abalance FROM pgbench_accounts WHERE aid = ?;"
    before = sum(s["calls"] for s in statements(d, lambda q: q == text))
    r = subprocess.run(["pgbench", "-S", "-T", "4", "-c", "2", "-j", "2", "-M", "simple"] + base +
                       [DB], capture_output=True, text=True, timeout=120)
    t.require(r.returncode == 0, "pgbench -S", r.stderr[-500:])
    m = re.search(r"number of transactions actually processed: (\d+)", r.stdout)
    t.require(m is not None, "pgbench reports its transactions", r.stdout[-500:])
    n = int(m.group(1))
    time.sleep(0.5)
    st = statements(d, lambda q: q == text)
    calls = sum(s["calls"] for s in st) - before
    lib.log(f"pgbench: {n} transactions; erpscope: {calls} calls of {text!r} "
            f"({[(s['db'], s['calls']) for s in st]})")
    t.near(calls, n, 0.01, "pgbench -S: statement calls equal its transactions within 1%")
    t.check(len({s["fingerprint"] for s in st}) == 1, "one fingerprint for pgbench's select")
    misses = sum(s["buffer_misses"] for s in statements(d, lambda q: "pgbench_accounts" in q))
    lib.log(f"buffer misses of statements on pgbench_accounts: {misses}")


def checkpoint(t, d, pg):
    m0 = d.scrape()
    c0 = m0.value("erpscope_pg_checkpoint_duration_seconds_count")
    b0 = m0.value("erpscope_pg_checkpoint_buffers_written_total")
    pg.psql("UPDATE pgbench_branches SET bbalance = bbalance + 1", db=DB)
    pg.psql("CHECKPOINT", db=DB)
    m1 = lib.wait_for(lambda: (lambda m: m if m.value("erpscope_pg_checkpoint_duration_seconds_count")
                               > c0 else None)(d.scrape()), 10.0, 0.2)
    t.require(m1 is not None, "CHECKPOINT is one more checkpoint")
    # Not "exactly one": the families have no cluster label, and other
    # clusters of this binary (other tests, their initdb) checkpoint too.
    t.check(m1.value("erpscope_pg_checkpoint_duration_seconds_count") - c0 >= 1,
            "counted in erpscope_pg_checkpoint_duration_seconds")
    t.check(m1.value("erpscope_pg_checkpoint_buffers_written_total") - b0 >= 1,
            "it wrote the dirty buffers", f"{b0} -> "
            f"{m1.value('erpscope_pg_checkpoint_buffers_written_total')}")


def max_connections(t, d, pg):
    m = d.scrape()
    v = m.series("erpscope_pg_max_connections", data_directory=pg.data)
    t.check(len(v) == 1 and v[0][1] == 20 and v[0][0]["cluster"] == "15/erptest",
            "erpscope_pg_max_connections is the cluster's (20, set in postgresql.conf)", str(v))


def body(t):
    pg = lib.PgCluster().start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        with lib.Daemon() as d:
            m = d.scrape()
            t.require(m.value("erpscope_probe_up", probe="pg") == 1, "the pg probe is up",
                      str(m.series("erpscope_probe_up")))
            info = m.series("erpscope_pg_binary_info", attached="true")
            t.check(any(i[0]["path"].startswith("/usr/lib/postgresql/15/") for i in info),
                    "attached to Debian's PostgreSQL 15 binary", str(info))
            st, _, b = lib.http_get(d.port, "/queries?format=xml")
            t.check(st == 400, "/queries?format=xml is a 400", str(st))
            for bad in ("-1", "abc", "1x", "", "99999999999999999999999"):
                st, _, b = lib.http_get(d.port, f"/queries?limit={bad}")
                t.check(st == 400, f"/queries?limit={bad} is a 400", f"{st} {b[:80]!r}")
            lib.log(f"statements go to database {DB}")
            sleeps(t, d, pg)
            literals(t, d, pg)
            pgbench(t, d, pg)
            checkpoint(t, d, pg)
            max_connections(t, d, pg)
            st, hdrs, b = lib.http_get(d.port, "/queries")
            t.check(st == 200 and hdrs.get("content-type", "").startswith("text/plain")
                    and b"SELECT pg_sleep(?)" in b, "GET /queries serves the table as text")
            st, _, b = lib.http_get(d.port, "/queries?format=json&limit=1")
            n = len(json.loads(b)["statements"]) if st == 200 else None
            t.check(n == 1, "/queries?limit=1 serves one statement", f"{st}, {n}")
            m = d.scrape()
            t.check(m.value("erpscope_ringbuf_drops_total", probe="pg", default=0) == 0,
                    "no pg event was dropped")
            t.check(m.value("erpscope_pg_fingerprint_mismatches_total") == 0,
                    "kernel and user space agree on every fingerprint")
    finally:
        pg.stop()
    t.check(pg.dir is None, "the PostgreSQL cluster was stopped and removed")


if __name__ == "__main__":
    lib.main(body)
