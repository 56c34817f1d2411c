#!/usr/bin/python3.11
"""The kernel's statement table full, against a real PostgreSQL 15.

erpscope runs with --pg.max-fingerprints=64 (pg_stats holds 64 entries) and
--pg.top-statements=10000 (every statement has series of its own). 200
statement shapes, each run once, overflow the table:

  erpscope_bpf_map_update_errors_total{map="pg_stats"} counts the failed
  inserts (two per statement: its own key, then its database's "other"),
  erpscope_bpf_map_entries / erpscope_bpf_map_max_entries say the table is
  full (64 of 64).

Two scrapes later the coldest statements have moved to user space
(erpscope_pg_statement_evictions_total > 0, the table at most 75% full), every
series seen before is still there with the same value, and a new statement
shape gets a fingerprint of its own with its 5 calls, not "other". No counter
goes down between any two scrapes (the scrape helper checks).
"""

import json
import os

import lib

DB = f"erpfull_{os.getpid()}"
MAX = 64
SHAPES = 200
NEW_TEXT = "SELECT ? AS brand_new_shape"


def alias(i):
    """A name of letters only: digits would be normalised away."""
    s = ""
    while True:
        s += chr(ord("a") + i % 26)
        i //= 26
        if not i:
            return "c_" + s


def calls(m):
    return {ls["fingerprint"]: v for ls, v in m.series("erpscope_pg_statement_calls_total", db=DB)}


def fill(t, d, pg):
    conn = pg.connect(db=DB)
    cur = conn.cursor()
    for i in range(SHAPES):
        cur.execute(f"SELECT 1 AS {alias(i)}")
    lib.wait_for(lambda: d.scrape().value("erpscope_bpf_map_update_errors_total", map="pg_stats",
                                          default=0) > 0, 15, 0.3, "failed pg_stats inserts")
    m = d.scrape()
    errors = m.value("erpscope_bpf_map_update_errors_total", map="pg_stats")
    entries = m.value("erpscope_bpf_map_entries", map="pg_stats")
    t.check(m.value("erpscope_bpf_map_max_entries", map="pg_stats") == MAX,
            "erpscope_bpf_map_max_entries{map=\"pg_stats\"} is --pg.max-fingerprints",
            str(m.series("erpscope_bpf_map_max_entries")))
    # A gone backend's entries may have moved to user space meanwhile.
    t.check(entries >= MAX - 2, f"pg_stats is full ({entries} of {MAX})")
    t.check(errors >= SHAPES - MAX - 2, f"the failed inserts are counted ({errors})")
    return conn, m


def evict(t, d):
    before = calls(d.scrape())
    lib.wait_for(lambda: d.scrape().value("erpscope_pg_statement_evictions_total", default=0) > 0,
                 15, 0.3, "evictions")
    m = d.scrape()
    entries = m.value("erpscope_bpf_map_entries", map="pg_stats")
    t.check(entries <= MAX * 3 // 4, f"cold statements left the table ({entries} of {MAX})")
    after = calls(m)
    lost = [fp for fp, v in before.items() if after.get(fp, -1) < v]
    t.check(not lost, f"all {len(before)} statement series are still there, none lower",
            f"missing or lower: {lost[:10]}")
    return m


def new_shape(t, d, conn):
    cur = conn.cursor()
    for _ in range(5):
        cur.execute("SELECT 1 AS brand_new_shape")
    rows = []

    def seen():
        nonlocal rows
        st, _, body = lib.http_get(d.port, "/queries?format=json")
        rows = [s for s in json.loads(body)["statements"]
                if s["db"] == DB and s["query"] == NEW_TEXT]
        return rows and rows[0]["calls"] >= 5

    lib.wait_for(seen, 15, 0.3, "the new statement in /queries")
    fp = rows[0]["fingerprint"]
    t.check(fp != "other" and rows[0]["calls"] == 5,
            "a new statement shape has its own fingerprint with its 5 calls",
            str(rows))
    m = d.scrape()
    t.check(m.value("erpscope_pg_statement_calls_total", fingerprint=fp, db=DB) == 5,
            "and its own series in /metrics")


def body(t):
    pg = lib.PgCluster().start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        with lib.Daemon(f"--pg.max-fingerprints={MAX}", "--pg.top-statements=10000") as d:
            m = d.scrape()
            t.require(m.value("erpscope_probe_up", probe="pg") == 1, "the pg probe is up")
            conn, _ = fill(t, d, pg)
            evict(t, d)
            new_shape(t, d, conn)
            d.scrape()
    finally:
        pg.stop()


if __name__ == "__main__":
    lib.main(body)
