#!/usr/bin/python3.11
"""PostgreSQL servers that start after erpscope are seen too.

With the daemon running:
  a cluster started from Debian's binary: its statements are counted (the
  probes are attached to the binary file, for every process that runs it);
  a second cluster started from a copy of the binary elsewhere (a new file,
  as after an upgrade or with a second installation): erpscope notices the
  new executable of the new processes, attaches to it, reports it in
  erpscope_pg_binary_info, and counts its statements exactly once picked up;
  a third cluster from a copy without USDT notes (objcopy removes
  .note.stapsdt): one clear log line that it lacks USDT probes,
  erpscope_pg_binary_info{usdt="false"}, and the daemon goes on.
"""

import os
import shutil
import subprocess
import time

import lib

CAP_SYS_ADMIN = 21


def has_cap(pid, cap):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> cap & 1)
    return False


def cluster_from(binary, name):
    """A PgCluster whose postmaster runs binary (pg_ctl -p)."""
    pg = lib.PgCluster(cluster_name=name)
    orig = pg._as_postgres

    def as_postgres(args, check=True, timeout=120):
        if binary and args and args[0].endswith("/pg_ctl") and "start" in args:
            args = args[:1] + ["-p", binary] + args[1:]
        return orig(args, check, timeout)

    pg._as_postgres = as_postgres
    return pg


def seen_after_start(t, d, pg, marker, what):
    """Runs `SELECT <n> AS marker` until /queries shows it, then 10 more."""
    text = f"SELECT ? AS {marker}"
    # Our own database: other clusters of the same binary are seen too.
    db = f"erpt_{os.getpid()}_{marker}"
    pg.psql(f"CREATE DATABASE {db}")
    t0 = time.monotonic()
    got = lib.wait_for(lambda: pg.psql(f"SELECT 1 AS {marker}", db=db) and lib.pg_calls(d, text, db) > 0,
                       20.0, 0.3)
    t.require(got, f"{what}: its statements are seen", f"nothing after 20 s")
    lib.log(f"{what}: first statement seen {time.monotonic() - t0:.2f}s after the cluster started")
    before = lib.pg_calls(d, text, db)
    for i in range(10):
        pg.psql(f"SELECT {i} AS {marker}", db=db)
    time.sleep(0.5)
    t.check(lib.pg_calls(d, text, db) - before == 10, f"{what}: 10 more statements count 10",
            f"{before} -> {lib.pg_calls(d, text, db)}")


def body(t):
    bindir = lib.tempdir("erpscope-pgbin-", "/var/tmp")
    os.chmod(bindir, 0o755)
    copy = os.path.join(bindir, "postgres")
    shutil.copy2(os.path.join(lib.PG_BIN, "postgres"), copy)
    # Named postgres too: erpscope recognises PostgreSQL by its executable's name.
    os.mkdir(os.path.join(bindir, "nousdt"), 0o755)
    bare = os.path.join(bindir, "nousdt", "postgres")
    r = subprocess.run(["objcopy", "--remove-section", ".note.stapsdt", copy, bare],
                       capture_output=True, text=True)
    t.require(r.returncode == 0, "a copy without USDT notes", r.stderr)
    clusters = []
    try:
        with lib.Daemon() as d:
            m = d.scrape()
            t.require(m.value("erpscope_probe_up", probe="pg") == 1, "the pg probe is up")
            t.check(not m.series("erpscope_pg_binary_info", path=copy),
                    "the copy is not known before it runs")

            pg1 = cluster_from(None, "15/later")
            clusters.append(pg1)
            pg1.start()
            seen_after_start(t, d, pg1, "later_cluster_q", "a cluster started after the daemon")

            pg2 = cluster_from(copy, "15/copied")
            clusters.append(pg2)
            pg2.start()
            if has_cap(d.pid, CAP_SYS_ADMIN):
                seen_after_start(t, d, pg2, "copied_binary_q", "a cluster of a new binary")
                m = d.scrape()
                t.check(m.value("erpscope_pg_binary_info", path=copy, usdt="true",
                                attached="true", statements="query__done") == 1,
                        "erpscope_pg_binary_info shows the new binary attached",
                        str(m.series("erpscope_pg_binary_info")))
            else:
                # Uprobe perf events need CAP_SYS_ADMIN on this kernel and the
                # daemon dropped it after attaching (user/core/caps.c): the new
                # binary is found, and said to be unattachable, clearly.
                lib.log("NOTE: erpscope runs without CAP_SYS_ADMIN after attach, so a binary "
                        "that appears later cannot get uprobes; checking that it says so")
                pg2.psql("SELECT 1 AS copied_binary_q")
                m = lib.wait_for(lambda: (lambda m: m if m.series("erpscope_pg_binary_info",
                                                                   path=copy) else None)(d.scrape()),
                                 10.0, 0.2)
                t.check(m is not None and m.value("erpscope_pg_binary_info", path=copy,
                                                  usdt="true", attached="false") == 1,
                        "the new binary is found, with probes, not attached",
                        str(m and m.series("erpscope_pg_binary_info")))
                lines = [x for x in d.log_text().splitlines()
                         if "dropped its capabilities" in x and copy in x]
                t.check(len(lines) == 1, "one log line says why and what to do", "\n".join(lines))

            pg3 = cluster_from(bare, "15/bare")
            clusters.append(pg3)
            pg3.start()
            pg3.psql("SELECT 1")
            m = lib.wait_for(lambda: (lambda m: m if m.series("erpscope_pg_binary_info", path=bare)
                                      else None)(d.scrape()), 10.0, 0.2)
            t.check(m is not None and m.value("erpscope_pg_binary_info", path=bare, usdt="false",
                                              attached="false") == 1,
                    "a binary without USDT notes is reported with usdt=false",
                    str(m and m.series("erpscope_pg_binary_info")))
            lines = [x for x in d.log_text().splitlines() if "lacks USDT probes" in x]
            t.check(len(lines) == 1 and bare in lines[0], "one log line says it lacks USDT probes",
                    "\n".join(lines))
            t.check(m is not None and m.value("erpscope_probe_up", probe="pg") == 1,
                    "the probe stays up for the binaries that have probes")
    finally:
        for pg in clusters:
            pg.stop()
    t.check(all(pg.dir is None for pg in clusters), "every cluster was stopped and removed")


if __name__ == "__main__":
    lib.main(body)
