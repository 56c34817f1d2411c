"""A werkzeug WSGI server in Odoo's prefork shape, for the HTTP tests.

source(app, workers) is a script for `python3.11 -c`: app is source that
imports what it needs and defines a WSGI `app`; the rest is a parent titled
`<python> odoo-bin --http-port <port>` holding the listening socket, and
`workers` children titled `odoo: WorkerHTTP <pid> ` (setproctitle) that
select() then accept() on the inherited socket and hand each connection to
werkzeug's request handler (HTTP/1.1: a keep-alive client may send several
requests on one connection). The script prints "<port> <child pid>..." and
serves until SIGTERM, which SIGKILLs the children.
"""

SCAFFOLD = r'''
import errno, os, select, signal, socket, sys, time
import setproctitle
import werkzeug.serving

class Handler(werkzeug.serving.WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
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
        client.settimeout(3)
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


def source(app, workers):
    return app + "\nWORKERS = " + str(int(workers)) + "\n" + SCAFFOLD
