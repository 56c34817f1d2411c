#!/usr/bin/python3.11
"""The root daemon reads only trusted PostgreSQL binaries.

A process running an ELF file named postgres that belongs to neither root
nor the user it runs as (a copy of sleep owned by nobody, run as the
postgres user) is not ELF-parsed and takes no binary slot: no
erpscope_pg_binary_info row for it, one log line says why. Debian's
root-owned server binary is attached, and its statements are
seen.
"""

import json
import os
import shutil
import subprocess

import lib


def body(t):
    d0 = lib.tempdir("erpscope-foreign-", "/var/tmp")
    os.chmod(d0, 0o755)
    fake = os.path.join(d0, "postgres")
    shutil.copy2("/usr/bin/sleep", fake)
    os.chmod(fake, 0o755)
    shutil.chown(fake, "nobody", "nogroup")
    pg = lib.PgCluster(cluster_name="15/trusted")
    proc = None
    try:
        with lib.Daemon() as d:
            proc = subprocess.Popen(["runuser", "-u", "postgres", "--", "bash", "-c",
                                     f"exec -a 'postgres: 15/fake: checkpointer ' {fake} 60"])
            lib.on_cleanup(proc.kill)
            got = lib.wait_for(lambda: [x for x in d.log_text().splitlines()
                                        if "not reading a PostgreSQL binary" in x], 10.0, 0.2)
            t.check(got and len(got) == 1 and fake in got[0] and "owner=65534" in got[0],
                    "one log line says the nobody-owned binary is not read", str(got))
            pg.start()
            m = d.scrape()
            t.check(not m.series("erpscope_pg_binary_info", path=fake),
                    "no erpscope_pg_binary_info row for it",
                    str(m.series("erpscope_pg_binary_info")))
            real = os.path.join(lib.PG_BIN, "postgres")
            t.check(m.series("erpscope_pg_binary_info", path=real, attached="true"),
                    "the root-owned binary is attached", str(m.series("erpscope_pg_binary_info")))
            def seen():
                pg.psql("SELECT 1 AS foreign_bin_q")
                st, _, b = lib.http_get(d.port, "/queries?format=json")
                return st == 200 and any(s["query"] == "SELECT ? AS foreign_bin_q"
                                         for s in json.loads(b)["statements"])

            t.check(lib.wait_for(seen, 10.0, 0.3), "its statements are seen")
            lines = [x for x in d.log_text().splitlines() if "not reading a PostgreSQL binary" in x]
            t.check(len(lines) == 1, "said once", str(len(lines)))
    finally:
        if proc:
            proc.kill()
            proc.wait()
        pg.stop()
    t.check(pg.dir is None, "the cluster was stopped and removed")


if __name__ == "__main__":
    lib.main(body)
