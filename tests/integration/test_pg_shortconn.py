#!/usr/bin/python3.11
"""Statements from short-lived backends name their sender. Odoo 16 opens a
new PostgreSQL connection per cursor for the database named by db_name, so
its backends live a few milliseconds: far less than a poller's tick. The
kernel links each backend to its client at the backend's first statement
(the Unix socket's peer credentials; for TCP, the process seen connecting).

Four processes titled `odoo: WorkerHTTP <pid>` run at once, each doing 100
requests of one statement on a new psycopg2 connection (autocommit, so the
statement is the backend's first and only), 10 ms of Python work between
requests; two connect over the Unix socket, two over 127.0.0.1. Then the
same, busier: no pause between requests. Both tracepoint flavours. /queries must show each marker
statement sent by exactly those four workers, 100 calls each: none
"unlinked", none "local". Then 50 connects to a local port no cluster
listens on: the kernel's connect map (pg_conn_owner) holds none of them,
and at least 100 of the clients' connects to PostgreSQL.
"""

import json
import os
import socket
import subprocess
import time

import lib

DB = f"erpt_{os.getpid()}"
PER_WORKER = 100

CLIENT = r"""
import os, sys, time
import psycopg2, setproctitle
setproctitle.setproctitle("odoo: WorkerHTTP %d" % os.getpid())
host, port, db, marker, pause = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
n = int(sys.argv[6])
print("ready", flush=True)
sys.stdin.readline()  # erpscope tracks us by now
for i in range(n):
    c = psycopg2.connect(host=host, port=port, user="postgres", dbname=db)
    c.autocommit = True
    c.cursor().execute("SELECT %%s AS %s" % marker, (i,))
    c.close()
    if pause:
        time.sleep(pause)
print("done", flush=True)
sys.stdin.readline()
"""


def shape(t, d, pg, marker, pause):
    hosts = [pg.dir, pg.dir, "127.0.0.1", "127.0.0.1"]
    clients = [lib.spawn([lib.PYTHON, "-c", CLIENT, h, str(pg.port), DB, marker, str(pause),
                          str(PER_WORKER)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for h in hosts]
    try:
        for c in clients:
            t.require(c.stdout.readline().strip() == "ready", "a client started")
        for c in clients:
            info, _, _ = lib.wait_worker(d, c.pid, timeout=10.0, role="odoo_http")
            t.require(info is not None, f"client {c.pid} is tracked as odoo_http")
        for c in clients:
            c.stdin.write("\n")
            c.stdin.flush()
        for c in clients:
            t.require(c.stdout.readline().strip() == "done", "a client ran its requests")
        want = sorted([{"role": "odoo_http", "worker": str(c.pid), "calls": PER_WORKER}
                       for c in clients], key=lambda s: s["worker"])
        # Backends' first statements reach user space on its 100 ms tick.
        deadline = time.monotonic() + 5.0
        while True:
            st = [s for s in lib.pg_statements(d, DB) if s["query"] == f"SELECT ? AS {marker}"]
            if (st and st[0]["calls"] == 4 * PER_WORKER) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        t.require(len(st) == 1, f"{marker}: the statement is in /queries", json.dumps(st))
        got = sorted(st[0]["senders"], key=lambda s: s["worker"])
        t.check(st[0]["calls"] == 4 * PER_WORKER, f"{marker}: {4 * PER_WORKER} calls",
                f"{st[0]['calls']}; every database: "
                + json.dumps([(s["db"], s["calls"]) for s in lib.pg_statements(d)
                              if s["query"] == f"SELECT ? AS {marker}"]))
        t.check(got == want, f"{marker}: every call attributed to the worker that sent it "
                "(Unix socket and TCP)", json.dumps(got))
    finally:
        for c in clients:
            try:
                c.stdin.write("\n")
                c.stdin.flush()
            except OSError:
                pass
            try:
                c.wait(10)
            except subprocess.TimeoutExpired:
                c.kill()


OTHER_CONNECTS = 50


def sport_of(key):
    """The server port of a pg_conn_owner key (bpf/pg.bpf.c struct
    pg_conn_key: client and server address, 16 bytes each, then the
    client's and the server's port, host order)."""
    return int.from_bytes(key[34:36], "little")


def other_port(t, d, pg):
    """The kernel notes a connecting process only for a connect to a port a
    cluster listens on (postmaster.pid): connects to another local port
    leave nothing in pg_conn_owner, where the clients' TCP connections to
    PostgreSQL were."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(OTHER_CONNECTS)
    port = srv.getsockname()[1]
    try:
        for _ in range(OTHER_CONNECTS):
            c = socket.create_connection(("127.0.0.1", port))
            a, _ = srv.accept()
            c.close()
            a.close()
    finally:
        srv.close()
    map_id = lib.held_map_id(d.pid, "pg_conn_owner")
    t.require(map_id is not None, "the daemon's pg_conn_owner map")
    sports = [sport_of(k) for k in lib.map_keys(map_id)]
    t.check(sports.count(port) == 0, f"{OTHER_CONNECTS} connects to a port no cluster "
            "listens on: no entry in pg_conn_owner", f"{sports.count(port)} of {len(sports)}")
    t.check(sports.count(pg.port) >= PER_WORKER, "the clients' connects to PostgreSQL's port: "
            f">= {PER_WORKER} entries", f"{sports.count(pg.port)} of {len(sports)}")


def body(t):
    pg = lib.PgCluster(settings={"listen_addresses": "'127.0.0.1'",
                                 "max_connections": "40"}).start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        # TCP clients are found from connects the kernel saw: both flavours.
        for mode in lib.ATTACH_MODES:
            t.prefix = f"[{mode}] "
            with lib.Daemon(f"--bpf.attach-mode={mode}") as d:
                shape(t, d, pg, f"shortconn_paced_{mode}_q", 0.01)
                shape(t, d, pg, f"shortconn_busy_{mode}_q", 0)
                other_port(t, d, pg)
        t.prefix = ""
    finally:
        pg.stop()
    t.check(pg.dir is None, "the PostgreSQL cluster was stopped and removed")


if __name__ == "__main__":
    lib.main(body)
