#!/usr/bin/python3.11
"""Which worker sent each statement: a python3.11 client titled like an Odoo
HTTP worker (`odoo: WorkerHTTP <pid>`, as Odoo's prefork workers are) connects
to a real PostgreSQL 15 over its Unix socket with psycopg2 and runs
statements. erpscope links the backend to the client through the socket's
peer, so:
  /queries lists the statement as sent by role odoo_http, worker <pid>, with
  its calls;
  the client's slow statement is a pg_slow_query event whose client is
  role odoo_http, worker <pid>;
  statements from psql (a process erpscope does not track) are sent by
  "local" clients.
"""

import json
import os
import subprocess
import time

import lib

# Our own database: other clusters of the same binary are seen too.
DB = f"erpt_{os.getpid()}"

CLIENT = r"""
import os, sys, time
import psycopg2, setproctitle
setproctitle.setproctitle("odoo: WorkerHTTP %d" % os.getpid())
time.sleep(1.2)   # erpscope recognises the worker from its title
c = psycopg2.connect(host=sys.argv[1], port=int(sys.argv[2]), user="postgres",
                     dbname=sys.argv[3], application_name="odoo-%d" % os.getpid())
c.autocommit = True
time.sleep(1.0)   # and links the new backend to it
cur = c.cursor()
for i in range(5):
    cur.execute("SELECT %s AS odoo_marker_q", (i,))
cur.execute("SELECT pg_sleep(0.2) AS odoo_slow_q")
print("done", flush=True)
sys.stdin.readline()
"""


def queries(d):
    st, _, body = lib.http_get(d.port, "/queries?format=json")
    if st != 200:
        raise lib.Failure(f"GET /queries: {st}")
    return [s for s in json.loads(body)["statements"] if s["db"] == DB]


def body(t):
    pg = lib.PgCluster().start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        with lib.Daemon() as d:
            client = lib.spawn([lib.PYTHON, "-c", CLIENT, pg.dir, str(pg.port), DB],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            line = client.stdout.readline().strip()
            t.require(line == "done", "the Odoo-like client ran its statements", line)
            pid = str(client.pid)
            info, _, _ = lib.wait_worker(d, client.pid, timeout=5.0, role="odoo_http")
            t.require(info is not None, f"the client {pid} is tracked as odoo_http")
            # Long enough for the link to be made while both ends live.
            pg.psql("SELECT pg_sleep(0.3) AS psql_marker_q", db=DB)
            time.sleep(0.5)

            st = [s for s in queries(d) if s["query"] == "SELECT ? AS odoo_marker_q"]
            t.require(len(st) == 1, "the client's statement is in /queries", json.dumps(st))
            senders = st[0]["senders"]
            t.check(senders == [{"role": "odoo_http", "worker": pid, "calls": 5}],
                    "sent by role odoo_http, worker <pid>, 5 calls", json.dumps(senders))
            slow = [s for s in queries(d) if s["query"] == "SELECT pg_sleep(?) AS odoo_slow_q"]
            t.check(len(slow) == 1 and slow[0]["senders"][0]["role"] == "odoo_http",
                    "its slow statement too", json.dumps(slow))
            _, _, b = lib.http_get(d.port, "/events?type=pg_slow_query&limit=1000")
            evs = [e["data"] for e in json.loads(b)["events"]
                   if e["data"].get("query") == "SELECT pg_sleep(?) AS odoo_slow_q"
                   and e["data"].get("db") == DB]
            t.check(len(evs) == 1 and evs[0]["client"] == {"role": "odoo_http", "worker": pid,
                                                           "pid": client.pid},
                    "the slow-query event names the client's role and worker", json.dumps(evs))
            ps = [s for s in queries(d) if s["query"] == "SELECT pg_sleep(?) AS psql_marker_q"]
            t.check(len(ps) == 1 and ps[0]["senders"] and ps[0]["senders"][0]["role"] == "local",
                    "psql's statement is from a local, untracked client", json.dumps(ps))
            client.stdin.write("\n")
            client.stdin.flush()
            client.wait(10)
    finally:
        pg.stop()
    t.check(pg.dir is None, "the PostgreSQL cluster was stopped and removed")


if __name__ == "__main__":
    lib.main(body)
