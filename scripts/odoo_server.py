#!/usr/bin/python3.11
"""An Odoo-shaped prefork server, for the odoo section of scripts/bench.sh and
as a demo workload for erpscope. Not Odoo: a stand-in with its process layout,
titles and per-request SQL, on Debian's python3.11, werkzeug and psycopg2.

  master   titled `<python> odoo-bin --http-port N -d DB` (erpscope: odoo_master);
           opens the listening socket, forks the others, waits
  2 x      `odoo: WorkerHTTP <pid> ` (trailing space, as Odoo's): select() on the
           shared socket with a 4 s beat, accept(), one request per
           connection through werkzeug's BaseWSGIServer/WSGIRequestHandler,
           as Odoo's WorkerHTTP.process_request
  1 x      `odoo: WorkerCron <pid> <db>`: polls ir_cron every --cron-interval s
           (only with --dsn)
  1 x      `<python> odoo-bin gevent ...` (odoo_gevent): idles on its own socket

With --reference the workers are titled `odoo: WorkerCron <pid> reference`
instead (a role erpscope's requests probe does not follow), there is no
gevent process and the master closes its copy of the listening socket once
the workers have it: the same server that no requests probe attaches to, the
twin bench.sh's requests section interleaves with the real one.

Each POST /web/dataset/call_kw/<model>/search_read (JSON-RPC, model
res.partner or sale.order) opens a new PostgreSQL connection (psycopg2,
REPEATABLE READ: BEGIN ISOLATION LEVEL REPEATABLE READ), runs the registry
signalling SELECT, the search (ids, ORDER BY, LIMIT 80), the read of the
asked fields (an IN list of the ids) and the prefetch of every res_partner
column for the partners shown (~3 KB of SQL), rolls back, closes, and
answers the rows as JSON. POST /web/webclient/version_info (JSON-RPC, as
Odoo's web client calls it) answers Odoo 16's version dict without touching
PostgreSQL: the cheapest request, for the requests section of bench.sh,
which runs the server without --dsn (no cron worker, no search_read) and
with --http11 (HTTP/1.1 and keep-alive, as Odoo's threaded and gevent
servers speak; a client's `Connection: close` still ends the connection
after its request).

  /usr/bin/python3.11 scripts/odoo_server.py --dsn "host=/run/postgresql dbname=odoo" --init
  /usr/bin/python3.11 scripts/odoo_server.py --dsn "host=/run/postgresql dbname=odoo" --port 8069

--init creates the tables (a few thousand rows each) in an existing database
and exits; scripts/odoo_load.c is a load client. SIGTERM or SIGINT to the
master stops every process; a child that dies stops the master; children
leave when the master goes (Odoo's ppid check).
"""
import argparse, datetime, decimal, errno, json, os, select, signal, socket, sys, time, traceback

import psycopg2
import psycopg2.extensions
import setproctitle
import werkzeug.serving
from werkzeug.wrappers import Request, Response

# res_partner and sale_order: ~50 columns each, names and types as Odoo 16's.
PARTNER = [
    ("name", "varchar"), ("complete_name", "varchar"), ("company_id", "int4"),
    ("create_date", "timestamp"), ("title", "int4"), ("parent_id", "int4"), ("user_id", "int4"),
    ("ref", "varchar"), ("lang", "varchar"), ("tz", "varchar"), ("vat", "varchar"),
    ("company_registry", "varchar"), ("website", "varchar"), ("comment", "text"),
    ("active", "bool"), ("employee", "bool"), ("function", "varchar"), ("type", "varchar"),
    ("street", "varchar"), ("street2", "varchar"), ("zip", "varchar"), ("city", "varchar"),
    ("state_id", "int4"), ("country_id", "int4"), ("industry_id", "int4"),
    ("partner_latitude", "numeric"), ("partner_longitude", "numeric"), ("email", "varchar"),
    ("email_normalized", "varchar"), ("phone", "varchar"), ("mobile", "varchar"),
    ("is_company", "bool"), ("color", "int4"), ("partner_share", "bool"),
    ("commercial_partner_id", "int4"), ("commercial_company_name", "varchar"),
    ("company_name", "varchar"), ("barcode", "varchar"), ("create_uid", "int4"),
    ("write_uid", "int4"), ("write_date", "timestamp"), ("message_bounce", "int4"),
    ("message_main_attachment_id", "int4"), ("signup_token", "varchar"),
    ("signup_type", "varchar"), ("signup_expiration", "timestamp"), ("team_id", "int4"),
    ("debit_limit", "numeric"), ("last_time_entries_checked", "timestamp"),
    ("invoice_warn", "varchar"), ("invoice_warn_msg", "text"), ("supplier_rank", "int4"),
    ("customer_rank", "int4"), ("sale_warn", "varchar"), ("sale_warn_msg", "text"),
]
ORDER = [
    ("name", "varchar"), ("origin", "varchar"), ("client_order_ref", "varchar"),
    ("reference", "varchar"), ("state", "varchar"), ("date_order", "timestamp"),
    ("validity_date", "date"), ("require_signature", "bool"), ("require_payment", "bool"),
    ("create_date", "timestamp"), ("user_id", "int4"), ("partner_id", "int4"),
    ("partner_invoice_id", "int4"), ("partner_shipping_id", "int4"), ("pricelist_id", "int4"),
    ("currency_id", "int4"), ("analytic_account_id", "int4"), ("invoice_status", "varchar"),
    ("note", "text"), ("amount_untaxed", "numeric"), ("amount_tax", "numeric"),
    ("amount_total", "numeric"), ("currency_rate", "numeric"), ("payment_term_id", "int4"),
    ("fiscal_position_id", "int4"), ("company_id", "int4"), ("team_id", "int4"),
    ("signed_by", "varchar"), ("signed_on", "timestamp"), ("commitment_date", "timestamp"),
    ("show_update_pricelist", "bool"), ("create_uid", "int4"), ("write_uid", "int4"),
    ("write_date", "timestamp"), ("access_token", "varchar"),
    ("message_main_attachment_id", "int4"), ("campaign_id", "int4"), ("source_id", "int4"),
    ("medium_id", "int4"), ("opportunity_id", "int4"), ("incoterm", "int4"),
    ("incoterm_location", "varchar"), ("picking_policy", "varchar"), ("warehouse_id", "int4"),
    ("procurement_group_id", "int4"), ("effective_date", "timestamp"),
    ("delivery_status", "varchar"), ("website_id", "int4"), ("cart_recovery_email_sent", "bool"),
]
PARTNERS, ORDERS = 4000, 6000


def fill(name):
    """SQL for a column's value in row g of generate_series(1, N) g."""
    kind = dict(PARTNER + ORDER).get(name)
    special = {
        "complete_name": "'Partner ' || lpad(((g * 7919) % 10007)::text, 5, '0')",
        "active": "g % 17 <> 0", "type": "CASE WHEN g % 9 = 0 THEN 'invoice' ELSE 'contact' END",
        "commercial_partner_id": f"1 + (g * 31) % {PARTNERS}", "partner_id": f"1 + (g * 13) % {PARTNERS}",
        "state": "(ARRAY['draft','sent','sale','done','cancel'])[1 + g % 5]",
        "date_order": "timestamp '2023-01-01' + g * interval '97 minutes'",
        "company_id": "1", "currency_id": "2",
    }
    if name in special:
        return special[name]
    return {"varchar": f"'{name} ' || g", "text": f"repeat('{name} ', 1 + g % 5)",
            "int4": "g % 97", "bool": "g % 2 = 0", "numeric": "(g * 1.37)::numeric(12,2)",
            "timestamp": "timestamp '2023-01-01' + g * interval '1 hour'",
            "date": "date '2023-01-01' + g % 365"}[kind]


def init(dsn):
    """Creates the schema and rows (drops what --init made before)."""
    conn = psycopg2.connect(dsn)
    cr = conn.cursor()
    for table, cols, n in (("res_partner", PARTNER, PARTNERS), ("sale_order", ORDER, ORDERS)):
        cr.execute(f'DROP TABLE IF EXISTS "{table}"')
        cr.execute(f'CREATE TABLE "{table}" (id serial PRIMARY KEY, '
                   + ", ".join(f'"{c}" {t}' for c, t in cols) + ")")
        cr.execute(f'INSERT INTO "{table}" (' + ", ".join(f'"{c}"' for c, _ in cols)
                   + ") SELECT " + ", ".join(fill(c) for c, _ in cols)
                   + f" FROM generate_series(1, {n}) g")
    # Odoo indexes its _order columns.
    cr.execute('CREATE INDEX ON "res_partner" ("complete_name")')
    cr.execute('CREATE INDEX ON "sale_order" ("date_order")')
    cr.execute("DROP SEQUENCE IF EXISTS base_registry_signaling, base_cache_signaling")
    cr.execute("CREATE SEQUENCE base_registry_signaling; CREATE SEQUENCE base_cache_signaling")
    cr.execute("DROP TABLE IF EXISTS ir_cron")
    cr.execute("CREATE TABLE ir_cron (id serial PRIMARY KEY, cron_name varchar, active bool, "
               "interval_number int4, interval_type varchar, numbercall int4, priority int4, "
               "nextcall timestamp, lastcall timestamp)")
    cr.execute("INSERT INTO ir_cron (cron_name, active, interval_number, interval_type, "
               "numbercall, priority, nextcall) SELECT 'cron ' || g, true, 1, 'days', -1, 5, "
               "now() at time zone 'UTC' + g * interval '1 hour' FROM generate_series(1, 30) g")
    conn.commit()
    cr.execute("ANALYZE")
    conn.close()


# What each model's search orders and filters by, as Odoo 16 writes it.
MODELS = {
    "res.partner": ("res_partner", PARTNER,
                    '(("res_partner"."active" = %s) AND (("res_partner"."type" != %s) OR '
                    '"res_partner"."type" IS NULL))', (True, "private"),
                    '"res_partner"."complete_name" ASC,"res_partner"."id" DESC',
                    "commercial_partner_id"),
    "sale.order": ("sale_order", ORDER,
                   '(("sale_order"."state" IN %s) AND ("sale_order"."company_id" IN %s))',
                   (("sale", "done", "sent"), (1,)),
                   '"sale_order"."date_order" DESC,"sale_order"."id" DESC', "partner_id"),
}
SIGNALING = ("SELECT base_registry_signaling.last_value, base_cache_signaling.last_value "
             "FROM base_registry_signaling, base_cache_signaling")
# The prefetch of a many2one's records: every column but the text ones.
PREFETCH = ("SELECT " + ", ".join(f'"res_partner"."{c}" AS "{c}"' for c in
                                  ["id"] + [c for c, t in PARTNER if t != "text"])
            + ' FROM "res_partner" WHERE "res_partner".id IN %s')


def json_default(v):
    """Odoo's json_default: dates as strings, numerics as floats."""
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat(" ")
    if isinstance(v, decimal.Decimal):
        return float(v)
    raise TypeError(repr(v))


def search_read(dsn, model, kw):
    table, cols, where, params, order, m2o = MODELS[model]
    known = {"id"} | {c for c, _ in cols}
    fields = ["id"] + [f for f in kw.get("fields", []) if f != "id"]
    if m2o not in fields:
        fields.append(m2o)
    if not set(fields) <= known:
        raise ValueError(f"unknown fields {sorted(set(fields) - known)}")
    # A new connection per request for the request's database, as the
    # benchmarked Odoo does; Odoo names it after the worker.
    conn = psycopg2.connect(dsn, application_name=f"odoo-{os.getpid()}")
    try:
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ)
        cr = conn.cursor()
        cr.execute(SIGNALING)
        cr.fetchall()
        cr.execute(f'SELECT "{table}".id FROM "{table}" WHERE {where} ORDER BY {order} '
                   f'LIMIT {int(kw.get("limit", 80))} OFFSET {int(kw.get("offset", 0))}', params)
        ids = tuple(r[0] for r in cr.fetchall())
        if not ids:
            return []
        cr.execute("SELECT " + ", ".join(f'"{table}"."{f}" AS "{f}"' for f in fields)
                   + f' FROM "{table}" WHERE "{table}".id IN %s', (ids,))
        rows = [dict(zip(fields, r)) for r in cr.fetchall()]
        # Showing the many2one (its display name) prefetches the partners.
        cr.execute(PREFETCH, (tuple(sorted({r[m2o] for r in rows})),))
        names = {r[0]: r[2] for r in cr.fetchall()}  # id, name, complete_name
        for r in rows:
            r[m2o] = [r[m2o], names.get(r[m2o])]
        conn.rollback()
        return rows
    finally:
        conn.close()


# odoo.service.common.exp_version() of Odoo 16
VERSION_INFO = {"server_version": "16.0", "server_version_info": [16, 0, 0, "final", 0, ""],
                "server_serie": "16.0", "protocol_version": 1}


def make_app(dsn):
    @Request.application
    def app(request):
        parts = request.path.split("/")
        if request.method == "POST" and request.path == "/web/webclient/version_info":
            call = json.loads(request.get_data())
            return Response(json.dumps({"jsonrpc": "2.0", "id": call.get("id"),
                                        "result": VERSION_INFO}), mimetype="application/json")
        if not dsn or request.method != "POST" or parts[1:4] != ["web", "dataset", "call_kw"]:
            return Response("not found", status=404)
        call = json.loads(request.get_data())
        p = call["params"]
        if p.get("model") not in MODELS or p.get("method") != "search_read":
            return Response("not found", status=404)
        body = json.dumps({"jsonrpc": "2.0", "id": call.get("id"),
                           "result": search_read(dsn, p["model"], p.get("kwargs", {}))},
                          default=json_default)
        return Response(body, mimetype="application/json")
    return app


class Http11Handler(werkzeug.serving.WSGIRequestHandler):
    """HTTP/1.1: connections kept alive unless the client says close.
    Werkzeug >= 2.1 sends `Connection: close` on every answer (Odoo 16's
    handler drops it for websockets the same way); the app reads each body
    whole, so the next request line is where the stream resumes."""
    protocol_version = "HTTP/1.1"

    def send_header(self, keyword, value):
        if keyword.lower() == "connection" and value == "close" and not self.close_connection:
            return
        super().send_header(keyword, value)


class BaseWSGIServerNoBind(werkzeug.serving.BaseWSGIServer):
    """Odoo's: werkzeug's server object without a socket of its own; the
    worker hands it each accepted connection."""

    def __init__(self, app, http11=False):
        super().__init__("127.0.0.1", 0, app, handler=Http11Handler if http11 else None)
        self.socket.close()

    def server_activate(self):
        pass


BEAT = 4  # seconds: Odoo's worker select() timeout


def http_worker(ls, dsn, http11, reference=False):
    pid, ppid = os.getpid(), os.getppid()
    setproctitle.setproctitle(f"odoo: WorkerCron {pid} reference" if reference
                              else f"odoo: WorkerHTTP {pid} ")
    server = BaseWSGIServerNoBind(make_app(dsn), http11)
    while os.getppid() == ppid:
        if not select.select([ls], [], [], BEAT)[0]:
            continue
        try:
            client, addr = ls.accept()
        except OSError as e:  # the other worker took it
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED):
                raise
            continue
        client.setblocking(True)
        client.settimeout(2)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            server.process_request(client, addr)
        except BrokenPipeError:
            pass


def cron_worker(dsn, db, interval):
    pid, ppid = os.getpid(), os.getppid()
    setproctitle.setproctitle(f"odoo: WorkerCron {pid} {db}")
    while os.getppid() == ppid:
        conn = psycopg2.connect(dsn, application_name=f"odoo-{pid}")
        cr = conn.cursor()
        # Odoo 16's _get_all_ready_jobs, less the ir_cron_trigger part.
        cr.execute("SELECT * FROM ir_cron WHERE active = true AND numbercall != 0 AND "
                   "nextcall <= (now() at time zone 'UTC') ORDER BY priority")
        cr.fetchall()
        conn.rollback()
        conn.close()
        time.sleep(interval)


def gevent_process(port, db):
    ppid = os.getppid()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    setproctitle.setproctitle(f"{sys.executable} odoo-bin gevent -d {db} "
                              f"--gevent-port {ls.getsockname()[1]}")
    # Odoo's GeventServer watchdog: wake every beat, leave with the master.
    while os.getppid() == ppid:
        if select.select([ls], [], [], BEAT)[0]:
            ls.accept()[0].close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", help="libpq DSN of the database (dbname=...); without it: no cron "
                    "worker, and only /web/webclient/version_info answers")
    ap.add_argument("--init", action="store_true", help="create the schema and rows, then exit")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8069)
    ap.add_argument("--gevent-port", type=int, default=0, help="0: any free port")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cron-interval", type=float, default=3.0, help="seconds between polls")
    ap.add_argument("--http11", action="store_true",
                    help="HTTP/1.1 with keep-alive (default: HTTP/1.0, one request per connection, "
                    "as Odoo's prefork workers)")
    ap.add_argument("--reference", action="store_true",
                    help="workers titled as Odoo cron workers (not followed by the requests "
                    "probe), no gevent process, no listener left in the master")
    a = ap.parse_args()
    if a.init and not a.dsn:
        ap.error("--init needs --dsn")
    if a.init:
        init(a.dsn)
        return
    db = psycopg2.extensions.parse_dsn(a.dsn).get("dbname", "odoo") if a.dsn else "odoo"
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(128)
    ls.setblocking(False)
    setproctitle.setproctitle(f"{sys.executable} odoo-bin --http-port {ls.getsockname()[1]} -d {db}")
    print(ls.getsockname()[1], flush=True)
    def leave(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    kids = []
    cron = [(cron_worker, (a.dsn, db, a.cron_interval))] if a.dsn else []
    gevent = [] if a.reference else [(gevent_process, (a.gevent_port, db))]
    for run, args in ([(http_worker, (ls, a.dsn, a.http11, a.reference))] * a.workers + cron
                      + gevent):
        pid = os.fork()
        if pid == 0:
            # The master stops its children with SIGTERM, also on ^C.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            code = 0
            try:
                run(*args)
            except BaseException:
                traceback.print_exc()
                code = 1
            os._exit(code)
        kids.append(pid)
    if a.reference:
        ls.close()
    try:
        pid, status = os.wait()
        print(f"odoo_server: child {pid} exited ({status:#x}); stopping", file=sys.stderr)
        sys.exit(1)
    finally:
        for pid in kids:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


if __name__ == "__main__":
    main()
