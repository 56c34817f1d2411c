#!/usr/bin/python3.11
"""What a /metrics scrape copies from the pg probe's per-CPU maps.

300 statement shapes, each run once on one open connection, against a
real PostgreSQL 15; --pg.quantile-window=1h (the fine bins' own walk is
once a 6 min slot, so none falls in the test). With E entries in pg_stats
and C possible CPUs:

  5 scrapes copy at most 5 x E x C x 280 bytes from pg_stats (plus the
  retire walk's, one every 2 s) and nothing of pg_fine beyond single-key
  folds: less than one full walk (E x C x 880). Before the fine bins had a
  map of their own, each scrape copied E x C x 1160 bytes;
  erpscope_pg_map_read_bytes_total{map} counts what is copied.
  One GET /queries then walks pg_fine once: E x C x 880 bytes or more,
  and its rows still have quantiles (p50 > 0 for a statement that ran).
"""

import json
import os
import time

import lib

DB = f"erpbytes_{os.getpid()}"
SHAPES = 300
STAT, FINE = 280, 880


def alias(i):
    s = ""
    while True:
        s += chr(ord("a") + i % 26)
        i //= 26
        if not i:
            return "c_" + s


def read_bytes(m):
    return (m.value("erpscope_pg_map_read_bytes_total", 0.0, map="pg_stats"),
            m.value("erpscope_pg_map_read_bytes_total", 0.0, map="pg_fine"))


def body(t):
    ncpus = os.sysconf("SC_NPROCESSORS_CONF")
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            last = f.read().strip().split(",")[-1].split("-")[-1]
            ncpus = int(last) + 1
    except OSError:
        pass
    pg = lib.PgCluster().start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        with lib.Daemon("--pg.quantile-window=1h", "--pg.top-statements=10000") as d:
            m = d.scrape()
            t.require(m.value("erpscope_probe_up", probe="pg") == 1, "the pg probe is up")
            conn = pg.connect(db=DB)
            cur = conn.cursor()
            for i in range(SHAPES):
                cur.execute(f"SELECT 1 AS {alias(i)}")
            lib.wait_for(lambda: d.scrape().value("erpscope_bpf_map_entries", 0,
                                                  map="pg_stats") >= SHAPES, 15, 0.3,
                         "the shapes in pg_stats")
            m0 = d.scrape()
            e = m0.value("erpscope_bpf_map_entries", map="pg_stats")
            s0, f0 = read_bytes(m0)
            t0 = time.monotonic()
            for _ in range(5):
                m = d.scrape()
            secs = time.monotonic() - t0
            s1, f1 = read_bytes(m)
            walks = 5 + int(secs / 2) + 2  # scrapes, and the retire walk every 2 s
            per = e * ncpus * STAT
            lib.log(f"E={e:.0f} C={ncpus}: 5 scrapes copied {s1 - s0:.0f} B of pg_stats, "
                    f"{f1 - f0:.0f} B of pg_fine; before the split a scrape copied "
                    f"{e * ncpus * (STAT + FINE):.0f} B, at 64 CPUs "
                    f"{e * 64 * (STAT + FINE) / 1e6:.1f} MB, now {e * 64 * STAT / 1e6:.1f} MB")
            t.check(5 * per <= s1 - s0 <= walks * per,
                    "5 scrapes copy E x C x 280 bytes of pg_stats each (retire walks aside)",
                    f"{s1 - s0:.0f} B, one walk {per:.0f} B, at most {walks} walks")
            t.check(f1 - f0 < e * ncpus * FINE,
                    "and no walk of pg_fine", f"{f1 - f0:.0f} B, a walk is {e * ncpus * FINE:.0f} B")
            st, _, body = lib.http_get(d.port, f"/queries?format=json&limit=10000")
            t.check(st == 200, "GET /queries is 200", f"{st}")
            rows = [r for r in json.loads(body)["statements"] if r["db"] == DB
                    and r["query"] and "AS c_" in r["query"]]
            t.check(len(rows) >= SHAPES - 5 and all(r["p50_seconds"] > 0 for r in rows),
                    "/queries rows have their quantiles from pg_fine",
                    f"{len(rows)} rows, {sum(r['p50_seconds'] > 0 for r in rows)} with p50 > 0")
            _, f2 = read_bytes(d.scrape())
            t.check(f2 - f1 >= e * ncpus * FINE, "GET /queries walked pg_fine once",
                    f"{f2 - f1:.0f} B, a walk is {e * ncpus * FINE:.0f} B")
    finally:
        pg.stop()


if __name__ == "__main__":
    lib.main(body)
