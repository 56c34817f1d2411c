"""A werkzeug WSGI server in Odoo's prefork shape, for the HTTP tests.

source(app, workers) is a script for `python3.11 -c`: app is source that
imports what it needs and defines a WSGI `app`; the rest is a parent titled
`<python> odoo-bin --http-port <port>` holding the listening socket, and
`workers` children titled `odoo: WorkerHTTP <pid> ` (setproctitle) that
select() then accept() on the inherited socket and hand each connection to
werkzeug's request handler (HTTP/1.1; werkzeug closes each connection after
its answer unless told to keep it open for the client's next request, as
Odoo's handler does) with a socket timeout of 3 s unless told (so CPython
polls before each read, as in Odoo's workers). The script prints
"<port> <child pid>..." and serves until SIGTERM, which SIGKILLs the
children.

start() runs such a server and waits until a daemon follows its workers;
request() sends one request on a connection of its own.
"""

import http.client
import subprocess
import time

import lib

SCAFFOLD = r'''
import errno, os, select, signal, socket, sys, time
import setproctitle
import werkzeug.serving

class Handler(werkzeug.serving.WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    def send_header(self, keyword, value):
        # Werkzeug >= 2.1 closes after each answer; Odoo's handler does not.
        if (KEEPALIVE and keyword.lower() == "connection" and value == "close"
                and not self.close_connection):
            return
        super().send_header(keyword, value)
    def log_request(self, *a, **k):
        pass
    def log_error(self, *a, **k):
        pass

class NoBind(werkzeug.serving.BaseWSGIServer):
    def __init__(self):
        super().__init__("127.0.0.1", 0, app, handler=Handler)
        self.socket.close()
    def server_activate(self):
        pass

def worker(ls):
    ppid = os.getppid()
    setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
    server = NoBind()
    while os.getppid() == ppid:
        if not select.select([ls], [], [], 4)[0]:
            continue
        try:
            client, addr = ls.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED):
                raise
            continue
        client.setblocking(True)
        client.settimeout(TIMEOUT)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            server.process_request(client, addr)
        except OSError:
            pass

ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(128)
ls.setblocking(False)
setproctitle.setproctitle(f"{sys.executable} odoo-bin --http-port {ls.getsockname()[1]}")
kids = []
for _ in range(WORKERS):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            worker(ls)
        finally:
            os._exit(0)
    kids.append(pid)
print(ls.getsockname()[1], " ".join(map(str, kids)), flush=True)
def leave(signum, frame):
    for k in kids:
        try:
            os.kill(k, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os._exit(0)
signal.signal(signal.SIGTERM, leave)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(1)
'''


def source(app, workers, timeout=3, keepalive=False):
    """timeout: the connections' socket timeout in seconds (CPython polls
    before each read), None: blocking reads; keepalive: connections stay
    open for the client's next request."""
    return (app + f"\nWORKERS = {int(workers)}\nTIMEOUT = {timeout!r}\n"
            f"KEEPALIVE = {bool(keepalive)}\n" + SCAFFOLD)


HANDLER_PRELUDE = r'''
import json, os, socket, sys, time
from werkzeug.wrappers import Request, Response

ARGS = sys.argv[1:]

def burn(sec):
    t0 = time.thread_time()
    while time.thread_time() - t0 < sec:
        pass
'''

HANDLER_APP = r'''
@Request.application
def app(request):
    r = handle(request)
    return r if r is not None else Response(b"ok" * 8, mimetype="text/plain")
'''


def from_handler(src):
    """An app for source() from src defining handle(request), which returns a
    werkzeug Response or None (then "ok"); it sees the server's arguments as
    ARGS, and burn(seconds), which spends thread CPU time."""
    return HANDLER_PRELUDE + src + HANDLER_APP


def start(t, d, app, args=(), workers=2):
    """Runs source(app, workers) with args; waits until daemon d tracks the
    workers as odoo_http and carries the requests probe's uprobes on them.
    Returns (the server's Popen, its port, the worker pids)."""
    srv = lib.spawn([lib.PYTHON, "-c", source(app, workers), *args],
                    stdout=subprocess.PIPE, text=True)
    first = srv.stdout.readline().split()
    t.require(len(first) == workers + 1, "the prefork server started", f"{first}")
    port, kids = int(first[0]), [int(x) for x in first[1:]]
    lib.log(f"prefork server on port {port}, workers {kids}")
    for k in kids:
        info, _, _ = lib.wait_worker(d, k, timeout=10.0, role="odoo_http")
        t.require(info is not None, f"worker {k} is tracked as odoo_http")
    ok = lib.wait_for(lambda: d.scrape().value("erpscope_http_processes_attached", 0)
                      >= workers, 10.0, 0.1)
    t.require(ok, "the workers carry the requests probe's uprobes")
    return srv, port, kids


def wait_attached(t, d, kids):
    """start() counts attached workers host-wide, other tests' servers included:
    this waits for these workers' own uprobes (the daemon's debug log says so)."""
    ok = lib.wait_for(lambda: all(f"for=requests pid={k} " in d.log_text() for k in kids),
                      10.0, 0.1)
    t.require(ok, "the requests probe's uprobes are on these very workers")


def request(port, method, path, body=None, headers=None):
    """One request on its own connection; (status, seconds the client measured)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t0 = time.monotonic()
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    r.read()
    dt = time.monotonic() - t0
    c.close()
    return r.status, dt
