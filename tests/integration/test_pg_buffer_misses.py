#!/usr/bin/python3.11
"""Blocks a statement reads from the OS, only when asked for. A sequential
scan of a table larger than a quarter of shared_buffers goes through a
small ring of buffers, so every one of its blocks is read from the OS:
smgr__md__read__done fires once per 8 KiB block, and a uprobe trap per
block can double the CPU of a scan served from the page cache. So the
probe is off unless --pg.buffer-misses says otherwise:

  without the flag: the scan's statement counts 0 buffer misses;
  with it: at least 90% of the table's blocks (pg_relation_size / 8192) per
  scan, over 3 scans.
"""

import os

import lib

DB = f"erpt_{os.getpid()}"
SCAN = "SELECT count(*) AS misses_scan_q FROM big"
SCANS = 3


def misses(d):
    return [s for s in lib.pg_statements(d, DB) if s["query"] == SCAN]


def scan(t, pg, d, what):
    for _ in range(SCANS):
        pg.psql(SCAN, db=DB)
    return lib.wait_for(lambda: (lambda s: s if s and s[0]["calls"] == SCANS else None)(misses(d)),
                        5.0, 0.2)


def body(t):
    # No parallel workers: the backend itself reads every block.
    pg = lib.PgCluster(settings={"shared_buffers": "16MB",
                                 "max_parallel_workers_per_gather": "0"}).start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        pg.psql("CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad "
                "FROM generate_series(1, 200000) g", db=DB)
        blocks = int(pg.psql("SELECT pg_relation_size('big') / 8192", db=DB).strip())
        lib.log(f"table big: {blocks} blocks")
        with lib.Daemon() as d:
            st = scan(t, pg, d, "off")
            t.require(st, f"{SCANS} scans counted without the flag")
            t.check(st[0]["buffer_misses"] == 0, "without --pg.buffer-misses no block is counted",
                    f"{st[0]['buffer_misses']}")
        # The counts above live in the kernel maps of that daemon: a new one starts at 0.
        with lib.Daemon("--pg.buffer-misses") as d:
            st = scan(t, pg, d, "on")
            t.require(st, f"{SCANS} scans counted with the flag")
            got = st[0]["buffer_misses"]
            t.check(got >= 0.9 * blocks * SCANS,
                    f"with --pg.buffer-misses each scan counts its blocks (>= 90% of "
                    f"{blocks} x {SCANS})", f"{got}")
    finally:
        pg.stop()
    t.check(pg.dir is None, "the PostgreSQL cluster was stopped and removed")


if __name__ == "__main__":
    lib.main(body)
