#!/usr/bin/python3.11
"""A real PostgreSQL 15 (Debian's) backend is recognised, with its db and user.

The test starts its own cluster (cluster_name '15/erptest', as Debian's
pg_createcluster names them, so titles read `postgres: 15/erptest: ...`),
creates role erpuser and database erpdb, and keeps a session open as erpuser
on erpdb over the unix socket. Then:
  erpscope_worker_info{role="pg_backend",db="erpdb",user="erpuser",pid=<backend>} 1
  the cluster's checkpointer, walwriter and background writer have roles
  pg_checkpointer, pg_walwriter, pg_bgwriter
  SELECT pg_sleep(1.0) in that session adds ~1 s of offcpu sleep to the backend
  a CPU-bound query adds about its duration to the backend's cpu seconds
"""

import time

import lib

HELPERS = {
    "checkpointer": "pg_checkpointer",
    "walwriter": "pg_walwriter",
    "background writer": "pg_bgwriter",
}


def body(t):
    with lib.Daemon() as d:
        pg = lib.PgCluster().start()
        try:
            pg.psql("CREATE ROLE erpuser LOGIN")
            pg.psql("CREATE DATABASE erpdb OWNER erpuser")
            conn = pg.connect(user="erpuser", db="erpdb")
            cur = conn.cursor()
            cur.execute("SELECT pg_backend_pid()")
            bpid = cur.fetchone()[0]
            row = pg.psql(f"SELECT datname, usename FROM pg_stat_activity WHERE pid = {bpid}")
            t.require(row == "erpdb|erpuser", "pg_stat_activity agrees on the backend",
                      f"pid {bpid}: {row!r}")
            lib.log(f"backend pid {bpid}: {open(f'/proc/{bpid}/cmdline', 'rb').read()!r}")

            info, took, last = lib.wait_worker(d, bpid, timeout=10.0, role="pg_backend")
            t.require(info is not None, f"backend {bpid} tracked as pg_backend",
                      f"got {lib.worker_info(last, bpid)} after 10s")
            lib.log(f"tracked after {took:.2f}s: {info}")
            t.check(info.get("db") == "erpdb", "db label is erpdb", f"db={info.get('db')!r}")
            t.check(info.get("user") == "erpuser", "user label is erpuser",
                    f"user={info.get('user')!r}")
            t.check(info.get("worker") == str(bpid), "worker label is the backend pid",
                    f"worker={info.get('worker')!r}")

            # The helpers of this cluster (and only this one: match by pid).
            kids = pg.children()
            m = last
            for pid, title in sorted(kids.items()):
                for word, role in HELPERS.items():
                    if title.endswith(": " + word):
                        i, took, m = lib.wait_worker(d, pid, timeout=5.0, role=role)
                        t.check(i is not None, f"{word} (pid {pid}) has role {role}",
                                f"title {title!r}, got {lib.worker_info(m, pid)}")
            for word in HELPERS:
                t.check(any(x.endswith(": " + word) for x in kids.values()),
                        f"the cluster has a {word} to look at", f"children: {kids}")
            for pid, title in sorted(kids.items()):
                if title.endswith("autovacuum launcher"):
                    i = lib.worker_info(m, pid)
                    # Not asserted: the spec names the role but not which helpers map to it.
                    lib.log(f"note: autovacuum launcher {pid} -> {i and i.get('role')} "
                            "(expected pg_autovacuum)")
            pm = pg.postmaster_pid()
            i = lib.worker_info(m, pm)
            lib.log(f"note: postmaster {pm} -> {i and i.get('role')}")

            # Known answers through the backend's own time.
            w = str(bpid)
            cur.execute("SELECT 1")   # ends the backend's idle wait before m0
            t_a = time.monotonic()
            m0 = d.scrape()
            s0 = lib.offcpu(m0, "pg_backend", w)["sleep"]
            t0 = time.monotonic()
            cur.execute("SELECT pg_sleep(1.0)")
            slept = time.monotonic() - t0
            m1 = d.scrape()
            t_b = time.monotonic()
            s1 = lib.offcpu(m1, "pg_backend", w)["sleep"]
            # At least the 1 s it slept; at most all the time since it last worked.
            t.between(s1 - s0, 0.95, (t_b - t_a) + 0.05,
                      f"pg_sleep(1.0) adds ~1 s of offcpu sleep to the backend "
                      f"(the client waited {slept:.3f}s)")

            c1 = m1.value("erpscope_cpu_seconds_total", 0.0, role="pg_backend", worker=w)
            t0 = time.monotonic()
            cur.execute("SELECT sum(length(md5(a::text))) FROM generate_series(1, 1000000) a")
            busy = time.monotonic() - t0
            m2 = d.scrape()
            c2 = m2.value("erpscope_cpu_seconds_total", 0.0, role="pg_backend", worker=w)
            lib.log(f"cpu after sleep {c1}, after the query {c2}; "
                    f"query took {busy:.3f}s at the client")
            t.between(c2 - c1, 0.7 * busy, busy + 0.05,
                      "a CPU-bound query adds about its duration to the backend's cpu seconds")
            conn.close()
        finally:
            pg.stop()
        t.check(pg.dir is None, "the PostgreSQL cluster was stopped and removed")


if __name__ == "__main__":
    lib.main(body)
