#!/usr/bin/python3.11
"""Where each request's time went: the requests probe's parts.

A prefork werkzeug server on /usr/bin/python3.11 (workers titled `odoo:
WorkerHTTP <pid> `, the prefork server of prefork.py) talks to a real
PostgreSQL 15 over its Unix socket with psycopg2. With `--probes=sched,pg,
requests` (the parts need the sched probe's per-thread times and the pg
probe's per-client statement times):

  - 10 x /web/dataset/call_kw/sale.order/search_read sleeping 200 ms: the
    sleep part of sale.order.search_read within 10% of 2 s
  - 10 x /web/dataset/call_kw/res.partner/read burning 100 ms of CPU: the
    cpu part of res.partner.read within 10% of 1 s (plus the host's steal
    meanwhile: the part is time on a CPU, which holds it)
  - 5 x /web/dataset/call_kw/account.move/reconcile running SELECT
    pg_sleep(0.3) and 3 quick statements: the pg part within 10% of 1.5 s,
    20 statements counted
  - for every RPC the parts add up to its duration within 5%, and the route
    family's parts to the route's
  - `--http.slow-request-threshold=250ms`: the 5 account.move.reconcile
    requests (300 ms and more) are http_slow_request events, with their parts
    and top statements (pg_sleep first, 1 call of ~0.3 s; the quick one with
    3 calls) and the Python stack it blocked in (the python probe is on: it
    waits in reconcile_moves); no request under 250 ms is one
  - with the pg probe off (a second daemon, `--probes=sched,requests`) there
    is no pg part and the time PostgreSQL took stays in sleep
"""

import json
import time

import lib
import prefork

DB = "erpt_breakdown"

APP = r'''
import sys, time
import psycopg2
from werkzeug.wrappers import Request, Response

ARGS = sys.argv[1:]
conn = None

def burn(sec):
    t0 = time.thread_time()
    while time.thread_time() - t0 < sec:
        pass

@Request.application
def app(request):
    global conn
    p = request.path
    if p.startswith("/web/dataset/call_kw/sale.order/"):
        time.sleep(0.2)
    elif p.startswith("/web/dataset/call_kw/res.partner/"):
        burn(0.1)
    elif p.startswith("/web/dataset/call_kw/account.move/"):
        reconcile_moves()
    return Response(b"ok", mimetype="text/plain")

def reconcile_moves():
    global conn
    if True:
        if conn is None:
            conn = psycopg2.connect(host=ARGS[0], port=int(ARGS[1]), user="postgres",
                                    dbname=ARGS[2])
            conn.autocommit = True
        cur = conn.cursor()
        for i in range(3):
            cur.execute("SELECT %s AS odoo_breakdown_q", (i,))
        cur.execute("SELECT pg_sleep(0.3)")
'''

RPCS = (("sale.order", "search_read", 10), ("res.partner", "read", 10),
        ("account.move", "reconcile", 5))


def parts(m, family, **labels):
    out = {}
    for (name, ls), v in m.items():
        d = dict(ls)
        if name == family and all(d.get(k) == w for k, w in labels.items()):
            out[d["part"]] = out.get(d["part"], 0.0) + v
    return out


def run_load(port):
    for _ in range(5):
        for model, method, n in RPCS:
            for _ in range(n // 5):
                st, _ = prefork.request(port, "POST",
                                             f"/web/dataset/call_kw/{model}/{method}",
                                             b'{"params": {}}')
                if st != 200:
                    raise lib.Failure(f"{model}.{method} answered {st}")


def check_slow_events(t, d, srv):
    _, _, b = lib.http_get(d.port, "/events?type=http_slow_request&limit=1000")
    kids = {int(x) for x in open(f"/proc/{srv.pid}/task/{srv.pid}/children").read().split()}
    evs = [e["data"] for e in json.loads(b)["events"] if e["data"]["pid"] in kids]
    lib.log(f"first slow request event: {json.dumps(evs[0]) if evs else None}")
    t.check(all(e["duration_seconds"] >= 0.25 for e in evs),
            "no event for a request under the threshold")
    # The others are 100 to 200 ms: slow only on a loaded host (runqueue).
    evs = [e for e in evs if e["model"] == "account.move"]
    t.check(len(evs) == 5, "5 http_slow_request events of account.move.reconcile",
            f"{len(evs)}")
    t.check(all(e["rpc_method"] == "reconcile" and e["route"] == "/web/dataset/call_kw"
                and e["code"] == "200" and e["role"] == "odoo_http" for e in evs),
            "on /web/dataset/call_kw, code 200, role odoo_http")
    for e in evs:
        p = e.get("parts_seconds", {})
        top = e.get("top_statements", [])
        ok = (0.3 <= e["duration_seconds"] < 0.5 and 0.27 <= p.get("pg", 0) <= 0.33
              and abs(sum(p.values()) - e["duration_seconds"]) <= 0.05 * e["duration_seconds"]
              and e.get("pg_statements") == 4 and len(top) == 2
              and "pg_sleep" in (top[0]["query"] or "") and top[0]["calls"] == 1
              and 0.29 <= top[0]["seconds"] <= 0.33 and top[1]["calls"] == 3
              and "odoo_breakdown_q" in (top[1]["query"] or "")
              and (not e.get("offcpu_stack") or "reconcile_moves" in e["offcpu_stack"]))
        t.check(ok, "a slow request's parts add up, its pg part is its pg_sleep, its "
                "top statements are pg_sleep (1 call) then the quick one (3 calls), the "
                "off-CPU stack it has is reconcile_moves's", json.dumps(e))
    # A block's walk can be lost: it is queued where the sched probe sees the
    # worker switched in after it, and this VM's kernel runs no program while
    # a thread of its PID 1 is current (the likely cause of the one loss seen
    # in about 60 such requests; the counters below are logged to tell).
    # Four of five still prove the stack is the request's.
    stacks = sum(1 for e in evs if e.get("offcpu_stack"))
    if stacks < len(evs):
        ev = d.scrape().series("erpscope_python_profile_events_total")
        lib.log(f"{len(evs) - stacks} slow request(s) without an off-CPU stack; the Python "
                f"probe's walks: {ev}")
    t.check(stacks >= 4, "at least 4 of the 5 blocked in reconcile_moves (their off-CPU "
            "stack)", f"{stacks} with a stack")


def body(t):
    pg = lib.PgCluster().start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        with lib.Daemon("--probes=sched,pg,python,requests",
                        "--http.slow-request-threshold=250ms") as d:
            srv, port, _ = prefork.start(t, d, APP, [pg.dir, str(pg.port), DB])
            stolen = lib.host_steal()
            run_load(port)
            stolen = lib.host_steal() - stolen
            m = lib.requests_settled(d)
            for model, method, n in RPCS:
                _, s, c = m.histogram("erpscope_odoo_rpc_duration_seconds", role="odoo_http",
                                      model=model, method=method)
                t.check(c == n, f"{n} {model}.{method} RPCs", f"{c}")
                p = parts(m, "erpscope_odoo_rpc_time_seconds_total", role="odoo_http",
                          model=model, method=method)
                lib.log(f"{model}.{method}: {s:.3f} s in {c} requests, parts "
                        + " ".join(f"{k}={v:.3f}" for k, v in sorted(p.items())))
                t.check(set(p) == {"cpu", "runqueue", "iowait", "blocked", "sleep", "pg"},
                        f"{model}.{method} has the six parts", f"{sorted(p)}")
                t.near(sum(p.values()), s, 0.05, f"{model}.{method}'s parts add up to its "
                       "duration")
            sale = parts(m, "erpscope_odoo_rpc_time_seconds_total", model="sale.order",
                         method="search_read")
            t.near(sale.get("sleep", 0), 2.0, 0.10, "sale.order.search_read slept 10 x 200 ms")
            partner = parts(m, "erpscope_odoo_rpc_time_seconds_total", model="res.partner",
                            method="read")
            # time on a CPU: it holds what the hypervisor stole meanwhile
            t.near_oncpu(partner.get("cpu", 0), 1.0, 0.10, "res.partner.read burnt 10 x 100 ms",
                         stolen)
            move = parts(m, "erpscope_odoo_rpc_time_seconds_total", model="account.move",
                         method="reconcile")
            t.near(move.get("pg", 0), 1.5, 0.10, "account.move.reconcile waited 5 x 300 ms "
                   "on PostgreSQL")
            t.check(move.get("sleep", 1) < 0.1, "its wait is pg, not sleep",
                    f"{move.get('sleep')}")
            stmts = m.value("erpscope_odoo_rpc_pg_statements_total", 0, role="odoo_http",
                            model="account.move", method="reconcile")
            t.check(stmts == 20, "20 statements sent by account.move.reconcile", f"{stmts}")
            t.check(m.value("erpscope_odoo_rpc_pg_statements_total", 0, role="odoo_http",
                            model="sale.order", method="search_read") == 0,
                    "sale.order.search_read sent no statement")
            route = parts(m, "erpscope_http_request_time_seconds_total", role="odoo_http",
                          route="/web/dataset/call_kw")
            _, rs, rc = m.histogram("erpscope_http_request_duration_seconds", role="odoo_http",
                                    route="/web/dataset/call_kw", method="POST", code="200")
            t.check(rc == 25, "25 requests on /web/dataset/call_kw", f"{rc}")
            t.near(sum(route.values()), rs, 0.05, "the route's parts add up to its duration")
            t.near(m.value("erpscope_http_request_pg_statements_total", 0, role="odoo_http",
                           route="/web/dataset/call_kw"), 20, 0.0, "the route sent 20 statements")
            said = lib.promtool_check(m.text)
            t.check(said == "", "promtool check metrics is clean", said)
            check_slow_events(t, d, srv)
            lib.kill_group(srv)

        with lib.Daemon("--probes=sched,requests") as d:
            srv, port, _ = prefork.start(t, d, APP, [pg.dir, str(pg.port), DB])
            run_load(port)
            m = lib.requests_settled(d)
            move = parts(m, "erpscope_odoo_rpc_time_seconds_total", model="account.move",
                         method="reconcile")
            t.check("pg" not in move, "no pg part without the pg probe", f"{sorted(move)}")
            _, move_s, _ = m.histogram("erpscope_odoo_rpc_duration_seconds", role="odoo_http",
                                       model="account.move", method="reconcile")
            # at least the 5 x 300 ms of pg_sleep; more when the backend waited for a CPU
            t.between(move.get("sleep", 0), 1.45, move_s, "the wait on PostgreSQL is sleep then")
            t.check(m.series("erpscope_odoo_rpc_pg_statements_total") == [],
                    "no statement counts without the pg probe")
            lib.kill_group(srv)
    finally:
        pg.stop()


if __name__ == "__main__":
    lib.main(body)
