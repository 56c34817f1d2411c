#!/usr/bin/python3.11
"""The requests probe: HTTP request and Odoo RPC latency of prefork workers.

A werkzeug WSGI server on /usr/bin/python3.11 in Odoo's prefork shape: a
parent titled `<python> odoo-bin ...` opens the listening socket and forks
2 children titled `odoo: WorkerHTTP <pid> ` (setproctitle) that select()
then accept() on the inherited socket and hand each connection to
werkzeug's request handler (HTTP/1.1, so a keep-alive client may send
several requests on one connection). `--probes=tcp,requests --bpf.stats`:
the tcp probe's uprobe session on accept/select shares the functions with
ours; the requests probe's BPF time per request is logged; the sched probe
gives GET /requests the serving thread's state. Run once per tracepoint
flavour (the socket tracepoints typed, tp_btf, and raw, raw_tp).

Asserted, with numbers the workload knows:
  - both workers carry the requests probe's uprobes, no attach failed
  - 10 x /web/dataset/call_kw/sale.order/search_read sleeping 200 ms, 10 x
    /web/dataset/call_kw/res.partner/read burning 100 ms of CPU, 20 x GET
    /web/image/res.partner/7/avatar_128: exact counts per route
    (/web/dataset/call_kw, /web/image/*: the image id templated away) and
    per RPC (model, method), histogram sums within 5% of the client's own
    measure of the slow ones
  - execute_kw over /jsonrpc and /xmlrpc/2/object with a distinctive
    password: model and method right; the password is nowhere in /metrics,
    /events or the daemon's log
  - GET /requests: the 20 slowest of the window are the 10 sale.order and 10
    res.partner RPCs (seconds within 5% of the client's), no query string
  - 5 requests on one keep-alive HTTP/1.1 connection: 5 requests
  - keep-alive servers that wait for a client's next request in recv(),
    poll() (a socket with a timeout), select() or epoll_wait(): the answered
    request is counted within 3 s while the client sends nothing more, and
    once only when the next comes
  - a gevent WSGIServer (role odoo_gevent) serving 20 concurrent requests
    that gevent.sleep(0.5): GET /requests shows the 20 in flight at once;
    exactly 20 counted, all in the (0.5, 1] bucket, sum within 10% of 10 s
  - a plain python process (werkzeug's threaded server, role python) is
    instrumented once it holds a listener: its 5 requests under role python;
    a /longpolling/poll request and a 101-upgraded /websocket connection
    carrying frames are one session each, not in the latency histogram
  - hostile input over raw sockets (random bytes, a 64 KiB request line, a
    request written one byte at a time, two pipelined requests in one
    write): the daemon lives, route="unparsed" and the parse failures are
    counted, the byte-by-byte request has its route, the pipelined pair is
    seen
  - 10,000 distinct random paths, with GET /requests asked back to back
    meanwhile: route series bounded by --http.top-routes (+ other,
    unparsed), every request counted in some series, none counted lost
  - (the oom probe gives worker_exit events)
  - a worker SIGKILLed 1 s into a 5 s request: GET /requests shows it in
    flight (its route, model, method, age, the thread sleeping); after the
    kill one code="killed" on its route and its RPC, and its worker_exit
    event names the route, model and method; bad /requests parameters: 400
  - promtool check metrics is clean
"""

import concurrent.futures
import http.client
import json
import os
import random
import select
import signal
import socket
import string
import struct
import subprocess
import threading
import time
import xmlrpc.client

import lib
import prefork
from prefork import request

PASSWORD = "Zq7-pw-NEVER-EXPORT-81f3c"
TOP = 100

SERVER = r'''
import errno, json, os, select, signal, socket, sys, time, xmlrpc.client
import setproctitle
import werkzeug.serving
from werkzeug.wrappers import Request, Response

pidfile = sys.argv[1]

def burn(sec):
    t0 = time.thread_time()
    while time.thread_time() - t0 < sec:
        pass

@Request.application
def app(request):
    p = request.path
    if p.startswith("/web/dataset/call_kw/sale.order/"):
        time.sleep(0.2)
    elif p.startswith("/web/dataset/call_kw/res.partner/"):
        burn(0.1)
    elif p.startswith("/web/dataset/call_kw/stock.picking/"):
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(5)
    elif p == "/jsonrpc":
        request.get_data()
        return Response(json.dumps({"jsonrpc": "2.0", "id": 1, "result": 3}),
                        mimetype="application/json")
    elif p == "/xmlrpc/2/object":
        request.get_data()
        return Response(xmlrpc.client.dumps((True,), methodresponse=True), mimetype="text/xml")
    return Response(b"ok" * 8, mimetype="text/plain")

'''
SERVER = prefork.source(SERVER, 2)

# How the threaded server's keep-alive listeners wait for a client's next
# request: in recv() itself, or in poll() (a socket with a timeout),
# select() or epoll_wait() before it.
KA_WAITS = ("recv", "poll", "select", "epoll")


# werkzeug's threaded development server: one thread per request.
THREADED = r'''
import werkzeug.serving
from werkzeug.wrappers import Request, Response

@Request.application
def app(request):
    return Response("ok")

import select, socket, sys, threading

def websocket(ls):
    # Not a websocket: the 101 answer, then an echo of whatever comes, as frames.
    while True:
        # select first: an accept() entered before the uprobes were attached
        # would return uninstrumented
        select.select([ls], [], [])
        c, _ = ls.accept()
        c.recv(4096)
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        while True:
            b = c.recv(4096)
            if not b:
                break
            c.sendall(b)
        c.close()

def keepalive(ls, wait):
    # Keep-alive: the wait for the client's next request is in recv() on the
    # connection (a blocking socket without a timeout), or before it in
    # poll() (a socket with a timeout: CPython polls before it reads),
    # select() or epoll_wait().
    while True:
        select.select([ls], [], [])
        c, _ = ls.accept()
        if wait == "poll":
            c.settimeout(60)
        while True:
            if wait == "select":
                select.select([c], [], [])
            elif wait == "epoll":
                ep = select.epoll()
                ep.register(c.fileno(), select.EPOLLIN)
                ep.poll()
                ep.close()
            if not c.recv(4096):
                break
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        c.close()

ws = socket.socket()
ws.bind(("127.0.0.1", 0))
ws.listen(8)
threading.Thread(target=websocket, args=(ws,), daemon=True).start()
kas = []
for wait in sys.argv[1:]:
    ka = socket.socket()
    ka.bind(("127.0.0.1", 0))
    ka.listen(8)
    threading.Thread(target=keepalive, args=(ka, wait), daemon=True).start()
    kas.append(ka.getsockname()[1])
srv = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
print(srv.socket.getsockname()[1], ws.getsockname()[1], *kas, flush=True)
srv.serve_forever()
'''


# Odoo's gevent process in shape: `python ... gevent` (role odoo_gevent), a
# gevent WSGIServer whose slow route sleeps 0.5 s in a greenlet.
# An Odoo worker serving HTTP on a UNIX socket (behind a proxy), that first
# talks to a UNIX server of its own as a client (as to PostgreSQL's socket):
# one request per line on stdin.
UNIX_WORKER = r'''
import os, socket, sys
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ls.bind(sys.argv[1])
ls.listen(8)
print("ready", flush=True)
for line in sys.stdin:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(sys.argv[2])
    c.sendall(b"ping")
    c.recv(16)
    c.close()
    s, _ = ls.accept()
    s.recv(4096)
    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    s.close()
'''


GEVENT = r'''
import time
import gevent
from gevent.pywsgi import WSGIServer

def app(env, start):
    if env["PATH_INFO"].startswith("/gevent/slow"):
        gevent.sleep(0.5)
    start("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]

# Listens well after its uprobes are attached (at exec: the title is its
# command line), as Odoo's gevent process does once its modules are loaded:
# its port is noted at listen()'s entry, there is no accept() hook.
time.sleep(3)
srv = WSGIServer(("127.0.0.1", 0), app, log=None, error_log=None)
srv.start()
print(srv.server_port, flush=True)
srv.serve_forever()
'''


def requests_json(d, query):
    """GET /requests?format=json&<query>: the parsed body."""
    st, _, b = lib.http_get(d.port, "/requests?format=json" + (("&" + query) if query else ""))
    if st != 200:
        raise lib.Failure(f"GET /requests answered {st}: {b[:200]!r}")
    return json.loads(b)


def link_pids(daemon_pid, pid):
    """The uprobe_multi links of the daemon that carry pid: [uprobe_cnt]."""
    out = []
    d = f"/proc/{daemon_pid}/fdinfo"
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                text = f.read()
        except OSError:
            continue
        if "link_type:\tuprobe_multi" in text and f"\npid:\t{pid}\n" in text:
            out += [int(x.split()[1]) for x in text.splitlines() if x.startswith("uprobe_cnt:")]
    return out


def followed(daemon_pid, pid, tcp_pool=None):
    """Whether the requests probe follows pid: its listen carries the entry link
    (1 function), and pid is in req_procs, where the tracepoints look.
    tcp_pool False: no other link (the tcp probe's pool hooks are for prefork workers)."""
    links = link_pids(daemon_pid, pid)
    if 1 not in links or (tcp_pool is False and links != [1]):
        return False
    return pid in [field_u32(e, "key", "", 0) for e in dump_map("req_procs")]


def dump_map(name):
    out = subprocess.run(["bpftool", "map", "dump", "name", name, "-j"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def field_u32(e, part, name, offset):
    """A u32 field of a dumped entry's key or value, by BTF name or raw offset."""
    f = e.get("formatted", {}).get(part)
    if isinstance(f, dict) and name in f:
        return f[name]
    raw_bytes = e[part]
    return int.from_bytes(bytes(int(x, 16) for x in raw_bytes[offset:offset + 4]), "little")


def conn_entries(pids):
    """The requests probe's kernel entries (tgid, fd) for pids: (in the req_conns
    hash, in the array slots of req_slots their processes hold)."""
    hashed = sum(field_u32(e, "key", "tgid", 0) in pids for e in dump_map("req_conns"))
    # struct es_req_conn: tgid after 4 u64, 7 u32 and status[4] (64 bytes)
    slotted = sum(field_u32(e, "value", "tgid", 64) in pids for e in dump_map("req_slots"))
    return hashed, slotted


def pending_buffers(pid):
    """The request bytes held for pid in the requests probe's req_pending buffers
    (struct es_req_pending: es_req_done, busy u64, len u32, pad, data)."""
    out = []
    for e in dump_map("req_pending"):
        v = bytes(int(x, 16) for x in e["value"])
        tgid = int.from_bytes(v[4:8], "little")
        busy = int.from_bytes(v[136:144], "little")
        n = int.from_bytes(v[144:148], "little")
        if tgid == pid and busy:
            out.append(v[152:152 + n])
    return out


def raw(port, chunks, delay=0.0, read=True):
    """Writes chunks on a new connection; returns what came back until EOF."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for ch in chunks:
            s.sendall(ch)
            if delay:
                time.sleep(delay)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while read:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            out += b
        return out
    except OSError:  # the server closed early (a 414 before the rest was read)
        return b""
    finally:
        s.close()


def route_hist(m, route, method, code):
    return m.histogram("erpscope_http_request_duration_seconds", role="odoo_http",
                       route=route, method=method, code=code)


def rpc_hist(m, model, method):
    return m.histogram("erpscope_odoo_rpc_duration_seconds", role="odoo_http", model=model,
                       method=method)


def count_routes(m):
    return m.total("erpscope_http_request_duration_seconds_count", role="odoo_http")


def tracepoint_runs(d, mode, pairs=2000):
    """Runs of the requests probe's sock_recv_length program (of the flavour
    mode) over `pairs` send+recv on a socketpair of this process, which the
    probe never follows."""
    def runs():
        return d.scrape().total("erpscope_bpf_program_runs_total", probe="requests",
                                program="es_req_recv" + ("_r" if mode == "raw_tp" else ""))
    a, b = socket.socketpair()
    before = runs()
    for _ in range(pairs):
        a.send(b"x")
        b.recv(1)
    a.close()
    b.close()
    return runs() - before


def run(t, mode):
    d = lib.Daemon("--probes=tcp,sched,oom,requests", "--bpf.stats", f"--bpf.attach-mode={mode}")
    with d:
        d.scrape()
        idle = tracepoint_runs(d, mode)
        t.check(idle == 0, "no HTTP worker followed: the socket tracepoints are not attached, "
                "another process's socket calls run nothing", f"{idle}")
        pidfile = os.path.join(lib.tempdir(), "victim.pid")
        srv = lib.spawn([lib.PYTHON, "-c", SERVER, pidfile], stdout=subprocess.PIPE, text=True)
        first = srv.stdout.readline().split()
        port, kids = int(first[0]), [int(x) for x in first[1:]]
        lib.log(f"server on port {port}, workers {kids}")
        for k in kids:
            info, _, _ = lib.wait_worker(d, k, timeout=10.0, role="odoo_http")
            t.require(info is not None, f"worker {k} is tracked as odoo_http")
        m = lib.wait_for(lambda: (lambda m: m if m.value("erpscope_http_processes_attached", 0)
                                  >= 2 else None)(d.scrape()), 5.0, 0.1,
                         "the workers carry the uprobes")
        t.require(m is not None, "erpscope_http_processes_attached counts both workers",
                  f"{d.scrape().value('erpscope_http_processes_attached')}")
        t.check(m.value("erpscope_http_attach_failures_total") == 0, "no attach failed")
        busy = tracepoint_runs(d, mode)
        t.check(busy >= 2000, "with workers followed, the socket tracepoints run for every "
                "process's calls (one pid lookup for those not followed)", f"{busy}")

        # ---- the Odoo-shaped workload
        m0 = d.scrape()
        measured = {"sale": [], "partner": [], "image": []}
        for i in range(10):
            st, dt = request(port, "POST", "/web/dataset/call_kw/sale.order/search_read",
                             b'{"params": {}}', {"Content-Type": "application/json"})
            measured["sale"].append(dt)
            st2, dt2 = request(port, "POST", "/web/dataset/call_kw/res.partner/read",
                               b'{"params": {}}', {"Content-Type": "application/json"})
            measured["partner"].append(dt2)
            t.require(st == 200 and st2 == 200, "the RPCs answer 200", f"{st} {st2}")
        for i in range(20):
            st, dt = request(port, "GET", f"/web/image/res.partner/{7 + i}/avatar_128?unique=1")
            measured["image"].append(dt)
        m = lib.requests_settled(d)
        _, s, c = route_hist(m, "/web/dataset/call_kw", "POST", "200")
        t.check(c == 20, "20 requests on route /web/dataset/call_kw", f"count {c}")
        _, s_sale, c_sale = rpc_hist(m, "sale.order", "search_read")
        _, s_part, c_part = rpc_hist(m, "res.partner", "read")
        t.check(c_sale == 10, "10 sale.order.search_read RPCs", f"count {c_sale}")
        t.check(c_part == 10, "10 res.partner.read RPCs", f"count {c_part}")
        t.near(s_sale, sum(measured["sale"]), 0.05,
               "sale.order.search_read seconds match the client's")
        t.near(s_part, sum(measured["partner"]), 0.05,
               "res.partner.read seconds match the client's")
        t.near(s, sum(measured["sale"]) + sum(measured["partner"]), 0.05,
               "the route's seconds match the client's")
        _, s_img, c_img = route_hist(m, "/web/image/*", "GET", "200")
        t.check(c_img == 20, "20 image requests on /web/image/* (ids templated away)",
                f"count {c_img}")
        # A request ends when the worker closes the connection, which may come after
        # the client read the answer when the worker waits for a CPU: 1 ms of slack each.
        t.check(s_img is not None and 0 < s_img <= sum(measured["image"]) + 20 * 1e-3,
                "image seconds are positive and within the client's (+1 ms each)",
                f"{s_img} vs {sum(measured['image']):.4f}")
        runs = (m.total("erpscope_bpf_program_runs_total", probe="requests")
                - m0.total("erpscope_bpf_program_runs_total", probe="requests"))
        secs = (m.total("erpscope_bpf_program_run_seconds_total", probe="requests")
                - m0.total("erpscope_bpf_program_run_seconds_total", probe="requests"))
        lib.log(f"requests probe BPF over 40 requests: {runs:.0f} runs, {secs * 1e6:.1f} us: "
                f"{runs / 40:.1f} runs and {secs / 40 * 1e6:.2f} us per request, "
                f"{secs / max(runs, 1) * 1e9:.0f} ns per run")
        t.check(0 < secs / 40 < 100e-6, "the requests probe's BPF costs under 100 us per request",
                f"{secs / 40 * 1e6:.2f} us")
        # A uprobe run is a trap the worker pays (~0.5 us): only listen() has one. The
        # tracepoints trap nothing; they run for the worker's receive and two sends,
        # and for the client's calls (an untracked process: a look at the socket).
        # Nothing runs at the close nor at the connection's TCP state changes.
        traps = (m.total("erpscope_bpf_program_runs_total", probe="requests", program="es_req_io")
                 - m0.total("erpscope_bpf_program_runs_total", probe="requests",
                            program="es_req_io"))
        t.check(traps == 0, "no trap per request (not even at the close)", f"{traps / 40:.2f}")
        # Host-wide: any other process's socket calls meanwhile count too (~8.4 socket
        # calls a request alone here; 18.7 when a state program ran at the ~10 TCP
        # state changes of each connection's two ends).
        t.check(runs / 40 <= 14, "at most 14 requests-probe runs per request, the client's "
                "and the host's other socket calls included", f"{runs / 40:.2f}")
        leaked = [lbl for (n, ls), _ in m.items() for k, lbl in ls
                  if k == "route" and any(ch.isdigit() for ch in lbl)]
        t.check(not leaked, "no route label holds an id", f"{leaked[:5]}")
        rq = requests_json(d, "role=odoo_http")
        # ours: another workload's HTTP workers on the host are seen too
        slow = [e for e in rq["slowest"] if e["pid"] in kids]
        rpcs = sorted((e["model"], e["method"]) for e in slow
                      if e["route"] == "/web/dataset/call_kw" and e["code"] == "200"
                      and e["http_method"] == "POST")
        t.check(len(slow) == 20 and rpcs == [("res.partner", "read")] * 10
                + [("sale.order", "search_read")] * 10,
                "GET /requests: the 20 slowest are the 10 sale.order and 10 res.partner RPCs",
                f"{[(e['route'], e['model'], e['method']) for e in slow]}")
        durs = [e["duration_seconds"] for e in slow]
        t.check(durs == sorted(durs, reverse=True), "the slowest come slowest first", f"{durs}")
        t.near(sum(e["duration_seconds"] for e in slow if e["model"] == "sale.order"),
               sum(measured["sale"]), 0.05, "their seconds match the client's (sale.order)")
        t.check(all(time.time() - 60 < e["end_time"] <= time.time() for e in slow),
                "their end times are of the last minute")
        ours = [e for e in rq["in_flight"] if e["pid"] in kids]
        t.check(ours == [], "nothing in flight once the client has its answers", f"{ours}")
        st, _, txt = lib.http_get(d.port, "/requests")
        t.check(st == 200 and b"route=/web/dataset/call_kw model=sale.order rpc=search_read"
                b" code=200" in txt, "the text form names them", txt[:300].decode(errors="replace"))
        st, _, txt2 = lib.http_get(d.port, "/requests?format=json")
        t.check(b"unique" not in txt + txt2, "no query string in GET /requests")

        # ---- RPCs in bodies, a password that must stay unseen
        rpc = {"jsonrpc": "2.0", "method": "call", "id": 1,
               "params": {"service": "object", "method": "execute_kw",
                          "args": ["db1", 2, PASSWORD, "res.partner", "search_count", [[]]]}}
        st, _ = request(port, "POST", "/jsonrpc", json.dumps(rpc).encode(),
                        {"Content-Type": "application/json"})
        t.check(st == 200, "/jsonrpc answers 200", f"{st}")
        xml = xmlrpc.client.dumps(("db1", 2, PASSWORD, "sale.order", "write", [[1], {"x": 1}]),
                                  "execute_kw")
        st, _ = request(port, "POST", "/xmlrpc/2/object", xml.encode(),
                        {"Content-Type": "text/xml"})
        t.check(st == 200, "/xmlrpc/2/object answers 200", f"{st}")
        m = lib.requests_settled(d)
        t.check(rpc_hist(m, "res.partner", "search_count")[2] == 1,
                "the JSON-RPC execute_kw is res.partner.search_count")
        t.check(rpc_hist(m, "sale.order", "write")[2] == 1,
                "the XML-RPC execute_kw is sale.order.write")
        t.check(route_hist(m, "/jsonrpc", "POST", "200")[2] == 1, "one /jsonrpc request")
        t.check(route_hist(m, "/xmlrpc/2/object", "POST", "200")[2] == 1,
                "one /xmlrpc/2/object request")

        # ---- keep-alive: 5 requests on one connection
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        socks = set()
        for i in range(5):
            c.request("GET", "/keepalive/ping")
            r = c.getresponse()
            r.read()
            socks.add(id(c.sock))
            t.require(r.status == 200, "keep-alive request answered", f"{r.status}")
        c.close()
        t.check(len(socks) == 1, "the client kept one connection", f"{len(socks)}")

        # ---- an Odoo worker serving on a UNIX socket, itself a UNIX client
        tmp = lib.tempdir()
        path, echo = os.path.join(tmp, "http.sock"), os.path.join(tmp, "echo.sock")
        es = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        es.bind(echo)
        es.listen(4)

        def echo_serve():
            for _ in range(3):
                c, _ = es.accept()
                c.sendall(c.recv(64))
                c.close()

        ux = lib.spawn([lib.PYTHON, "-c", UNIX_WORKER, path, echo], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True)
        t.require(ux.stdout.readline().strip() == "ready", "the UNIX socket worker listens")
        info, _, _ = lib.wait_worker(d, ux.pid, timeout=10.0, role="odoo_http")
        t.require(info is not None, "the UNIX socket worker is tracked as odoo_http")
        t.require(lib.wait_for(lambda: followed(d.pid, ux.pid), 12.0, 0.1),
                  "the UNIX socket worker is followed", f"{link_pids(d.pid, ux.pid)}")
        before = lib.requests_settled(d).total("erpscope_http_request_duration_seconds_count",
                                               role="odoo_http")
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            served = ex.submit(echo_serve)
            for i in range(3):
                ux.stdin.write("serve\n")
                ux.stdin.flush()
                time.sleep(0.05)
                u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                u.connect(path)
                u.sendall(b"GET /unix/ping HTTP/1.1\r\nHost: x\r\n\r\n")
                t.require(u.recv(4096).startswith(b"HTTP/1.1 200"), "the UNIX worker answers")
                u.close()
            served.result(timeout=10)
        es.close()
        # A close is found at the descriptor's next read (the next connection), or
        # by the daemon's sweep from its /proc link (the last one) within ~0.5 s
        m = lib.wait_for(lambda: (lambda m: m if route_hist(m, "/unix/ping", "GET", "200")[2]
                                  >= 3 else None)(d.scrape()), 5.0, 0.1) or d.scrape()
        t.check(route_hist(m, "/unix/ping", "GET", "200")[2] == 3,
                "3 requests over the UNIX socket", f"{route_hist(m, '/unix/ping', 'GET', '200')}")
        _, usum, _ = route_hist(m, "/unix/ping", "GET", "200")
        t.check(usum is not None and usum < 3 * 0.1, "each lasted until its answer, not "
                "until its close was found", f"{usum}")
        t.check(m.total("erpscope_http_request_duration_seconds_count", role="odoo_http")
                - before == 3, "its own UNIX client connection (echo) is no request",
                f"{m.total('erpscope_http_request_duration_seconds_count', role='odoo_http') - before}")
        lib.kill_group(ux)

        # ---- a plain Python process (role python) serving from threads
        py = lib.spawn([lib.PYTHON, "-c", THREADED, *KA_WAITS], stdout=subprocess.PIPE, text=True)
        pyport, wsport, *kaports = (int(x) for x in py.stdout.readline().split())
        info, _, _ = lib.wait_worker(d, py.pid, timeout=10.0, role="python")
        t.require(info is not None, "the threaded server is tracked as python")
        ok = lib.wait_for(lambda: followed(d.pid, py.pid, tcp_pool=False), 12.0, 0.2)
        t.check(ok, "the python process holding a listener is followed: one entry link "
                "over listen, its pid in req_procs", f"{link_pids(d.pid, py.pid)}")
        for i in range(5):
            request(port=pyport, method="GET", path=f"/threaded/{i}/x")
        m = lib.requests_settled(d)
        c5 = m.histogram("erpscope_http_request_duration_seconds", role="python",
                         route="/threaded/*/x", method="GET", code="200")[2]
        t.check(c5 == 5, "5 requests of the threaded python server under role python",
                f"{c5}")
        # sessions: a long poll, and an upgraded connection carrying 3 frames each way
        request(port=pyport, method="GET", path="/longpolling/poll")
        s = socket.create_connection(("127.0.0.1", wsport), timeout=10)
        s.sendall(b"GET /websocket?version=1 HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
        t.check(s.recv(4096).startswith(b"HTTP/1.1 101"), "the upgrade is answered with 101")
        for i in range(3):
            s.sendall(b"\x81\x05frame")
            s.recv(4096)
        s.close()
        m = lib.requests_settled(d)
        t.check(m.value("erpscope_http_sessions_total", 0, role="python",
                        route="/websocket") == 1,
                "one /websocket session (its frames are no requests)")
        t.check(m.value("erpscope_http_sessions_total", 0, role="python",
                        route="/longpolling/poll") == 1, "one /longpolling/poll session")
        kept = [dict(ls).get("route") for (n, ls), _ in m.items()
                if n == "erpscope_http_request_duration_seconds_count"
                and dict(ls).get("role") == "python"]
        t.check(sorted(kept) == ["/threaded/*/x"],
                "sessions stay out of the latency histogram, the frames are not unparsed "
                "requests", f"{kept}")

        # keep-alive with the worker waiting to read the connection: its answer is out
        for wait, kaport in zip(KA_WAITS, kaports):
            route = f"/keepalive/{wait}"

            def idle_count():
                return d.scrape().histogram("erpscope_http_request_duration_seconds",
                                            role="python", route=route, method="GET",
                                            code="200")[2]
            lost0 = d.scrape().total("erpscope_http_requests_lost_total")
            s = socket.create_connection(("127.0.0.1", kaport), timeout=10)
            s.sendall(f"GET {route} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            t.require(s.recv(4096).endswith(b"ok"), f"the keep-alive server ({wait}) answers")
            n1 = lib.wait_for(lambda: idle_count() == 1, 3.0, 0.1)
            t.check(n1, f"a keep-alive request is counted while its client sends nothing more "
                    f"and the worker waits in {'epoll_wait' if wait == 'epoll' else wait}() for the "
                    "connection", f"{idle_count()}")
            s.sendall(f"GET {route} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            t.require(s.recv(4096).endswith(b"ok"), f"the keep-alive server ({wait}) answers "
                      "again")
            s.close()
            time.sleep(0.5)
            t.check(idle_count() == 2, f"{wait}: the connection's 2 requests counted once each "
                    "(the first's end event, when the next came, counted nothing more)",
                    f"{idle_count()}")
            lost = d.scrape().total("erpscope_http_requests_lost_total") - lost0
            t.check(lost == 0, f"{wait}: no request counted as lost", f"{lost}")
        lib.kill_group(py)

        # ---- a gevent server: 20 concurrent slow requests
        gv = lib.spawn([lib.PYTHON, "-c", GEVENT, "gevent"], stdout=subprocess.PIPE, text=True)
        info, _, _ = lib.wait_worker(d, gv.pid, timeout=10.0, role="odoo_gevent")
        t.require(info is not None, "the gevent server is tracked as odoo_gevent")
        ok = lib.wait_for(lambda: followed(d.pid, gv.pid, tcp_pool=False), 12.0, 0.1)
        t.require(ok, "the gevent server is followed", f"{link_pids(d.pid, gv.pid)}")
        # Its port can only be known from listen()'s entry: it had not listened yet.
        t.require(not select.select([gv.stdout], [], [], 0)[0],
                  "the gevent server is attached before it listens (it waits 3 s)")
        gport = int(gv.stdout.readline())
        seen = []

        def watch():
            end = time.monotonic() + 3.0
            while time.monotonic() < end and max(seen, default=0) < 20:
                fl = requests_json(d, "role=odoo_gevent")["in_flight"]
                seen.append(sum(1 for e in fl if e["route"] == "/gevent/slow"
                                and e["pid"] == gv.pid and e["http_method"] == "GET"))
                time.sleep(0.02)

        with concurrent.futures.ThreadPoolExecutor(21) as ex:
            w = ex.submit(watch)
            gres = list(ex.map(lambda i: request(gport, "GET", f"/gevent/slow?i={i}"),
                               range(20)))
            w.result()
        t.check([st for st, _ in gres] == [200] * 20, "the 20 gevent requests answer 200")
        t.check(max(seen, default=0) == 20, "GET /requests shows the 20 in flight at once",
                f"most seen {max(seen, default=0)}")
        m = lib.requests_settled(d)
        gb, gs, gc = m.histogram("erpscope_http_request_duration_seconds", role="odoo_gevent",
                                 route="/gevent/slow", method="GET", code="200")
        t.check(gc == 20, "exactly 20 gevent requests", f"{gc}")
        le = dict(gb)
        t.check(le.get(0.5) == 0 and le.get(1.0) == 20,
                "each in the (0.5 s, 1 s] bucket", f"{gb}")
        t.near(gs, 10.0, 0.10, "their sum is 10 s within 10%")
        t.near(gs, sum(dt for _, dt in gres), 0.10, "their sum is the client's within 10%")
        gslow = requests_json(d, "role=odoo_gevent")["slowest"]
        t.check(len(gslow) == 20 and all(0.5 <= e["duration_seconds"] <= 1.0 for e in gslow),
                "the 20 are the slowest of odoo_gevent, each of 0.5 s to 1 s",
                f"{[e['duration_seconds'] for e in gslow]}")
        lib.kill_group(gv)

        # ---- hostile input
        rnd = random.Random(1234)
        junk = bytes(rnd.getrandbits(8) for _ in range(4096))
        raw(port, [junk])
        raw(port, [b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n"])
        raw(port, [bytes([ch]) for ch in
                   b"GET /bytewise/req HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
            delay=0.002)
        # A browser's request: its line's query string runs past the 512 bytes
        # the kernel keeps of a request whose body is not read, ~1 KiB of
        # headers follow: the route is the path's all the same.
        raw(port, [b"GET /longq/page?utm_source=" + b"x" * 2500 + b" HTTP/1.1\r\nHost: x\r\n"
                   b"Cookie: session_id=" + b"c" * 900 + b"\r\nConnection: close\r\n\r\n"])
        pipe = raw(port, [b"GET /pipe/first HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET /pipe/second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
        # werkzeug 2.2 answers the first and closes; either way one request is timed.
        lib.log(f"the server answered {pipe.count(b'HTTP/1.1 200')} of the pipelined requests")
        time.sleep(3.5)  # the server's 3 s timeout ends what did not end
        m = d.scrape()
        t.check(d.alive(), "the daemon is alive after the hostile input")
        t.check(route_hist(m, "/keepalive/ping", "GET", "200")[2] == 5,
                "5 requests counted on the keep-alive connection",
                f"{route_hist(m, '/keepalive/ping', 'GET', '200')[2]}")
        unparsed = m.total("erpscope_http_request_duration_seconds_count", role="odoo_http",
                           route="unparsed")
        t.check(unparsed == 2, "the random bytes and the 64 KiB line are route=\"unparsed\"",
                f"{unparsed}")
        fails = {r: m.value("erpscope_http_parse_failures_total", 0, role="odoo_http",
                            reason=r) for r in ("request_line", "too_long", "pipelined")}
        t.check(fails["request_line"] == 1, "the random bytes are one request_line failure",
                f"{fails}")
        t.check(fails["too_long"] == 1, "the 64 KiB line is one too_long failure", f"{fails}")
        t.check(fails["pipelined"] == 1, "one pipelined request seen", f"{fails}")
        t.check(route_hist(m, "/bytewise/req", "GET", "200")[2] == 1,
                "the request written byte by byte is parsed to its route")
        t.check(route_hist(m, "/pipe/first", "GET", "200")[2] == 1,
                "the first pipelined request is counted on its route")
        t.check(route_hist(m, "/longq/page", "GET", "200")[2] == 1,
                "a request line whose query string runs past the bytes kept (2.5 KiB) is "
                "counted on its path's route, not too_long",
                f"{route_hist(m, '/longq/page', 'GET', '200')}")

        # ---- 10,000 distinct paths: bounded series, nothing lost
        before = count_routes(m)
        letters = "ghijklmnopqrstuvwxyz"  # no digits nor hex: the routes stay distinct
        paths = ["/rnd/" + "".join(rnd.choice(letters) for _ in range(12))
                 for _ in range(10000)]

        def hit(p):
            return request(port, "GET", p)[0]

        # GET /requests back to back meanwhile: each drains the ring, then reads the
        # workers' kept buffers, where the next request may have begun before the
        # ring brought the last one's end (that order once counted a request lost)
        storm = {"n": 0, "run": True}

        def scrape_storm():
            while storm["run"]:
                lib.http_get(d.port, "/requests")
                storm["n"] += 1

        st = threading.Thread(target=scrape_storm)
        st.start()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            codes = list(ex.map(hit, paths))
        storm["run"] = False
        st.join()
        lib.log(f"{storm['n']} GET /requests during the 10,000 requests")
        t.check(codes.count(200) == 10000, "10,000 random paths answered",
                f"{codes.count(200)}")
        m = lib.requests_settled(d)
        m = d.scrape()  # a rotation may promote; the sum stays
        routes = {dict(ls).get("route") for (n, ls), _ in m.items()
                  if n == "erpscope_http_request_duration_seconds_count"
                  and dict(ls).get("role") == "odoo_http"}
        t.check(len(routes) <= TOP + 2, f"route labels bounded by {TOP} + other + unparsed",
                f"{len(routes)}")
        t.check("other" in routes, "the rest counted under route=\"other\"")
        got = count_routes(m) - before
        t.check(got == 10000, "every random-path request is in some series", f"{got}")
        t.check(m.value("erpscope_http_requests_lost_total", 0, reason="ring") == 0,
                "no request lost to the ring")
        # 10,000 connections accepted and closed: the kernel side keeps an entry per
        # descriptor number a worker reused (and its PostgreSQL-less files), not one each.
        hashed, slotted = conn_entries(kids)
        t.check(0 < hashed + slotted <= 16, "the workers' connection entries stay bounded "
                "after 10,000 connections", f"{hashed} + {slotted}")
        t.check(hashed == 0 and slotted > 0, "a prefork worker's descriptors are in its "
                "array slots, not the hash", f"hash {hashed}, slots {slotted}")

        # ---- a client that resets its connection before the answer (SO_LINGER 0):
        # the worker's close then changes no TCP state; the request ends where its
        # answer's send met the reset, 0.2 s in (the route sleeps)
        rs = socket.create_connection(("127.0.0.1", port))
        rs.sendall(b"POST /web/dataset/call_kw/sale.order/search_read HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        time.sleep(0.05)
        rs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        rs.close()

        def seen_reset():
            m = d.scrape()
            return m if route_hist(m, "/web/dataset/call_kw", "POST", "reset")[2] else None
        m = lib.wait_for(seen_reset, 5.0, 0.1) or d.scrape()
        _, rsum, rcount = route_hist(m, "/web/dataset/call_kw", "POST", "reset")
        t.check(rcount == 1, "a client's reset before the answer: one code=\"reset\" request",
                f"count {rcount}")
        t.between(rsum or 0, 0.19, 0.4, "it lasted until the worker's answer met the reset "
                  "(0.2 s of sleep), not until its close was found")

        # ---- a worker killed mid-request
        killed = {}

        def victim():
            try:
                killed["st"] = request(port, "POST", "/web/dataset/call_kw/stock.picking/nap",
                                       b"{}", {"Content-Type": "application/json"})
            except (OSError, http.client.HTTPException) as e:
                killed["err"] = repr(e)

        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            fut = ex.submit(victim)
            ok = lib.wait_for(lambda: os.path.exists(pidfile) and open(pidfile).read(), 5.0)
            t.require(ok, "the 5 s request started")
            time.sleep(1.0)
            vpid = int(open(pidfile).read())
            fl = [e for e in requests_json(d, "role=odoo_http")["in_flight"] if e["pid"] in kids]
            e = fl[0] if len(fl) == 1 else {}
            t.check((e.get("pid"), e.get("tid"), e.get("http_method"), e.get("route"),
                     e.get("model"), e.get("method")) ==
                    (vpid, vpid, "POST", "/web/dataset/call_kw", "stock.picking", "nap"),
                    "GET /requests: the one request in flight, its worker, route and RPC",
                    f"{fl}")
            t.between(e.get("age_seconds", 0), 1.0, 3.0, "its age is about 1 s")
            t.check(e.get("state") == "sleeping" and e.get("state_seconds", 0) >= 0.9,
                    "its thread sleeps (sched probe) for about as long", f"{e}")
            st, _, txt = lib.http_get(d.port, "/requests?role=odoo_http")
            t.check(f"odoo_http pid={vpid} tid={vpid}".encode() in txt and
                    b"route=/web/dataset/call_kw model=stock.picking rpc=nap age=" in txt,
                    "the text form shows it", txt[:300].decode(errors="replace"))
            other = requests_json(d, "role=odoo_gevent")["in_flight"]
            t.check(all(x["role"] == "odoo_gevent" for x in other), "role= filters it out",
                    f"{other}")
            held = pending_buffers(vpid)
            t.check(len(held) == 1 and held[0].startswith(
                b"POST /web/dataset/call_kw/stock.picking/nap HTTP/1.1\r\n"),
                "its bytes wait in its process's kernel buffer (req_pending) for its end",
                f"{[h[:60] for h in held]}")
            os.kill(vpid, signal.SIGKILL)
            lib.log(f"killed worker {vpid}")
            fut.result(timeout=10)
        t.check("err" in killed, "the client lost its request", f"{killed}")

        def seen_killed():
            m = d.scrape()
            return m if route_hist(m, "/web/dataset/call_kw", "POST", "killed")[2] else None
        m = lib.wait_for(seen_killed, 5.0, 0.2)
        m = m or d.scrape()
        _, ks, kc = route_hist(m, "/web/dataset/call_kw", "POST", "killed")
        t.check(kc == 1, "one code=\"killed\" on /web/dataset/call_kw", f"count {kc}")
        t.between(ks, 0.9, 2.0, "the killed request lasted about 1 s")
        t.check(rpc_hist(m, "stock.picking", "nap")[2] == 1,
                "the killed request is on its RPC, stock.picking.nap")

        def exit_event():
            st, _, b = lib.http_get(d.port, "/events?type=worker_exit&limit=1024")
            evs = [x["data"] for x in json.loads(b)["events"] if x["data"].get("pid") == vpid]
            return evs or None
        evs = lib.wait_for(exit_event, 5.0, 0.1) or []
        ex = evs[0] if len(evs) == 1 else {}
        t.check((ex.get("reason"), ex.get("route"), ex.get("model"), ex.get("method")) ==
                ("killed", "/web/dataset/call_kw", "stock.picking", "nap"),
                "its worker_exit event names the route, model and method it was serving",
                f"{evs}")
        slow = [e for e in requests_json(d, "role=odoo_http")["slowest"] if e["pid"] in kids]
        t.check(slow and (slow[0]["code"], slow[0]["model"], slow[0]["method"], slow[0]["pid"])
                == ("killed", "stock.picking", "nap", vpid),
                "the killed request is the slowest of the window, code killed",
                f"{slow[:1]}")
        for q, what in (("format=xml", "format"), ("role=nope", "role")):
            st, _, b = lib.http_get(d.port, "/requests?" + q)
            t.check(st == 400 and what.encode() in b, f"GET /requests?{q} answers 400 naming "
                    f"the {what}", f"{st} {b!r}")

        # ---- nothing of the password anywhere, lint-clean exposition
        st, _, evbody = lib.http_get(d.port, "/events?limit=1024")
        t.check(st == 200, "GET /events answers", f"{st}")
        st, _, rqbody = lib.http_get(d.port, "/requests?format=json")
        text = m.text + "\n" + evbody.decode(errors="replace") + rqbody.decode(errors="replace")
        t.check(PASSWORD not in text, "the password is not in /metrics, /events nor /requests")
        t.check(PASSWORD not in d.log_text(), "the password is not in the daemon's log")
        said = lib.promtool_check(m.text)
        t.check(said == "", "promtool check metrics is clean", said)
        lib.kill_group(srv)
        gone = lib.wait_for(lambda: d.scrape().value("erpscope_http_processes_attached", 1) == 0,
                            15.0, 0.2)
        t.check(gone, "every HTTP worker gone: none followed",
                f"{d.scrape().value('erpscope_http_processes_attached')}")
        # Detached once the last worker's uprobe links are closed, a pass or more later.
        idle = lib.wait_for(lambda: tracepoint_runs(d, mode, 500) == 0, 10.0, 0.2)
        t.check(idle, "the last worker gone, the socket tracepoints are detached again",
                f"{tracepoint_runs(d, mode, 500)}")


if __name__ == "__main__":
    lib.main(lib.each_attach_mode(run))
