#!/usr/bin/python3.11
"""Window quantiles at /queries beside the lifetime ones.

With --pg.quantile-window=5s, one statement shape runs 40 times as
pg_sleep(0.05), then, 5.5 s later, 5 times as pg_sleep(0.3) (the literal
differs, the fingerprint is the same). Asserted from /queries?format=json:
  lifetime: 45 calls, p50 ~0.05 s (the regression is buried);
  window:   5 calls, p50 and p99 ~0.3 s (it shows);
and ?window= takes a shorter window, refuses a longer one and non-durations
with 400; the text table has the window columns.
"""

import json
import os
import time

import lib

DB = f"erpw_{os.getpid()}"
QUERY = "SELECT pg_sleep(?)"


def stmt(d, path="/queries?format=json"):
    st, _, b = lib.http_get(d.port, path)
    if st != 200:
        raise lib.Failure(f"GET {path}: {st} {b[:200]!r}")
    doc = json.loads(b)
    s = [x for x in doc["statements"] if x["db"] == DB and x["query"] == QUERY]
    return doc, (s[0] if s else None)


def body(t):
    pg = lib.PgCluster().start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        with lib.Daemon("--pg.quantile-window=5s") as d:
            c = pg.connect(db=DB)
            cur = c.cursor()
            for _ in range(40):
                cur.execute("SELECT pg_sleep(%s)", (0.05,))
            got = lib.wait_for(lambda: (stmt(d)[1] or {}).get("calls") == 40, 5.0, 0.1)
            t.require(got, "the 40 fast calls are counted", json.dumps(stmt(d)[1]))
            doc, s = stmt(d)
            t.check(s["window"]["calls"] == 40, "the 40 fast calls are in the window",
                    json.dumps(s["window"]))
            t.between(s["window"]["p50_seconds"], 0.045, 0.06, "window p50 ~0.05 s")
            time.sleep(5.5)  # the window moves past them
            for _ in range(5):
                cur.execute("SELECT pg_sleep(%s)", (0.3,))
            lib.wait_for(lambda: (stmt(d)[1] or {}).get("calls") == 45, 5.0, 0.1)
            doc, s = stmt(d)
            lib.log(f"statement: {json.dumps(s)}")
            t.check(doc["window_seconds"] == 5 and doc["window_step_seconds"] == 0.5,
                    "the window is 5 s in steps of 0.5 s",
                    f"{doc['window_seconds']} {doc['window_step_seconds']}")
            t.check(s["calls"] == 45, "lifetime: 45 calls", str(s["calls"]))
            t.between(s["p50_seconds"], 0.045, 0.06, "lifetime p50 stays ~0.05 s")
            t.check(s["window"]["calls"] == 5, "window: the 5 slow calls only",
                    json.dumps(s["window"]))
            t.between(s["window"]["p50_seconds"], 0.26, 0.32, "window p50 ~0.3 s")
            t.between(s["window"]["p99_seconds"], 0.26, s["max_seconds"], "window p99 ~0.3 s")

            _, s1 = stmt(d, "/queries?format=json&window=1s")
            t.check(s1["window"]["calls"] <= 5, "?window=1s holds no more than the last calls",
                    json.dumps(s1["window"]))
            for bad in ("60s", "abc", "-1", "0", ""):
                st, _, b = lib.http_get(d.port, f"/queries?window={bad}")
                t.check(st == 400, f"/queries?window={bad} is a 400", f"{st} {b[:80]!r}")
            st, _, b = lib.http_get(d.port, "/queries")
            t.check(st == 200 and b"w_p50_ms" in b and b"last 5.0 s" in b,
                    "the text table has the window columns")
    finally:
        pg.stop()


if __name__ == "__main__":
    lib.main(body)
