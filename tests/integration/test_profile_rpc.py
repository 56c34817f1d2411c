#!/usr/bin/python3.11
"""/profile by request: model=, method= and route= keep the samples taken
while a worker served that RPC or route.

A werkzeug server on /usr/bin/python3.11 in Odoo's prefork shape (a parent
holding the listening socket, one child titled `odoo: WorkerHTTP <pid>`)
serves, one connection per request, 20 times each:
  POST /web/dataset/call_kw/res.partner/read         burn_partner: 100 ms of CPU
  POST /web/dataset/call_kw/sale.order/search_read   burn_order: 100 ms of CPU
  GET  /shop/cart                                    burn_cart: 50 ms of CPU
  POST /web/dataset/call_kw/sale.order/nap           nap_order: sleeps 50 ms
(CPU measured by the thread's own clock; each request after a random pause
under one sampling period, so the bursts' phases against the sampling timer
are independent), at the default 49 Hz and 10 ms
off-CPU threshold, twice: under `--probes=python,requests` (the Python
probe's own sched_switch program) and with every probe (the sched probe's
hands it the long blocks). Then, for the worker:
  kind=cpu&model=res.partner&method=read
      has burn_partner frames and no burn_order, burn_cart or nap_order;
      burn_partner's samples ~ 2 s x 49 Hz = 98, +/- 25%, and all of the
      worker's burn_partner samples (a sample is tagged from the request's
      first received bytes on, in the kernel, so none is lost to user
      space's parsing)
  kind=cpu&model=sale.order&method=search_read: burn_order only, ~98
  model=sale.order alone: burn_order (search_read) and not burn_partner
  route=/shop/cart: burn_cart only, ~49 +/- 25%
  route=/web/dataset/call_kw: burn_partner and burn_order, not burn_cart
  model=no.such: an empty 200
  kind=offcpu&model=sale.order&method=nap: nap_order blocked 20 x 50 ms =
      1 s (microseconds), +/- 15% (this VM's kernel may miss one switch-in:
      5%), and no burn_* stack
  kind=offcpu&model=res.partner: no nap_order
Then a keep-alive client sends 10 x POST .../stock.picking/nap (nap_picking
sleeps 50 ms) on one connection, 300 ms apart, to this worker (a socket
timeout: it waits for the next request in poll()), then to the worker of a
second server whose sockets block (it waits in recv()); both servers keep
connections open, as Odoo's handler does:
  kind=offcpu&model=stock.picking: nap_picking ~ 10 x 50 ms, +/- 15%, and
      the RPC's off-CPU time in all under 1.3 x that: the 300 ms waits for
      the client's next request are no request's (they were the previous
      request's in poll(), the next one's in recv(), before the fix), while
      the worker's profile has them (SocketIO.readinto, > 0.8 x 9 x 300 ms)
Then a daemon with `--probes=python` (no requests probe): model= answers
409 and says the requests probe is off.
"""

import http.client
import random
import subprocess
import time

import lib
import prefork
import pyworkloads as pw

HZ = 49
N = 20

APP = r'''
import time
from werkzeug.wrappers import Request, Response

def spin(sec):
    t0 = time.thread_time()
    while time.thread_time() - t0 < sec:
        pass

def burn_partner():
    spin(0.1)

def burn_order():
    spin(0.1)

def burn_cart():
    spin(0.05)

def nap_order():
    time.sleep(0.05)

def nap_picking():
    time.sleep(0.05)

def warm_up():
    spin(0.3)

@Request.application
def app(request):
    p = request.path
    request.get_data()
    if p == "/web/dataset/call_kw/res.partner/read":
        burn_partner()
    elif p == "/web/dataset/call_kw/sale.order/search_read":
        burn_order()
    elif p == "/web/dataset/call_kw/sale.order/nap":
        nap_order()
    elif p == "/web/dataset/call_kw/stock.picking/nap":
        nap_picking()
    elif p == "/shop/cart":
        burn_cart()
    elif p == "/warm":
        warm_up()
    return Response(b"ok", mimetype="text/plain")
'''

RPC = "/web/dataset/call_kw/"
KEEPALIVE_N = 10
PAUSE = 0.3


def request(port, method, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=b'{"params": {}}' if method == "POST" else None,
              headers={"Content-Type": "application/json"} if method == "POST" else {})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def funcs(stacks, name):
    """Summed value of the stacks that have a frame of function name."""
    return sum(v for frames, v in stacks if any(f.endswith(":" + name) for f in frames))


def body(t):
    # With the sched probe the off-CPU walk runs from its sched_switch program.
    for args in (("--probes=python,requests",), ()):
        t.prefix = f"[{' '.join(args) or 'every probe'}] "
        run(t, args)
    t.prefix = ""
    with lib.Daemon("--probes=python") as d:
        st, _, text, _ = pw.get(d, "/profile?kind=cpu&model=sale.order")
        t.check(st == 409 and "requests probe" in text,
                "without the requests probe, model= answers 409 and says why",
                f"{st} {text.strip()!r}")


def serve(t, d, timeout, attached):
    """A one-worker server of APP that keeps connections open (timeout: their
    socket timeout) whose samples the daemon d names by request; (its
    Popen, port, worker)."""
    srv = lib.spawn([lib.PYTHON, "-c", prefork.source(APP, 1, timeout, keepalive=True)],
                    stdout=subprocess.PIPE, text=True)
    first = srv.stdout.readline().split()
    port, pid = int(first[0]), int(first[1])
    lib.log(f"server on port {port}, worker {pid}, socket timeout {timeout}")
    info, _, _ = lib.wait_worker(d, pid, timeout=10.0, role="odoo_http")
    t.require(info is not None, f"worker {pid} is tracked as odoo_http")
    t.require(lib.wait_for(lambda: d.scrape().value("erpscope_http_processes_attached", 0)
                           >= attached, 10.0, 0.1, "uprobes attached"),
              "the worker carries the requests probe's uprobes")

    # Until the Python probe samples the worker and its requests are named.
    def warmed():
        request(port, "GET", "/warm")
        stacks, _, _ = pw.profile(d, kind="cpu", seconds=30, worker=pid, route="/warm")
        return funcs(stacks, "warm_up") > 0
    t.require(lib.wait_for(warmed, 20.0, 0.5, "warm-up samples"),
              "the worker's samples carry their route (warm-up)")
    return srv, port, pid


def keepalive(t, d, port, pid, how):
    """KEEPALIVE_N naps on one connection, PAUSE apart: the waits between
    them are not the RPC's off-CPU time."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    socks, codes = set(), []
    for i in range(KEEPALIVE_N):
        if i:
            time.sleep(PAUSE)
        c.request("POST", RPC + "stock.picking/nap", body=b'{"params": {}}',
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        codes.append(r.status)
        socks.add(c.sock.getsockname() if c.sock else None)
    t.require(codes == [200] * KEEPALIVE_N, f"keep-alive ({how}): the naps answer 200",
              f"{codes}")
    t.check(len(socks) == 1 and None not in socks,
            f"keep-alive ({how}): the {KEEPALIVE_N} requests shared one connection", f"{socks}")
    time.sleep(PAUSE)
    c.close()
    secs = int(time.monotonic() - t0) + 5
    time.sleep(1.5)  # the next drain
    every, _, _ = pw.profile(d, kind="offcpu", seconds=secs, worker=pid)
    for frames, v in sorted(every, key=lambda x: -x[1])[:6]:
        lib.log(f"  worker's off-CPU: {v / 1e6:.3f} s {';'.join(frames[-4:])}")
    # The waits were walked (into werkzeug's read of the next request line), just untagged.
    t.check(funcs(every, "SocketIO.readinto") / 1e6 > 0.8 * (KEEPALIVE_N - 1) * PAUSE,
            f"keep-alive ({how}): the waits between requests are in the worker's profile",
            f"{funcs(every, 'SocketIO.readinto') / 1e6:.3f} s in SocketIO.readinto")
    s, _, _ = pw.profile(d, kind="offcpu", seconds=secs, worker=pid, model="stock.picking")
    want = KEEPALIVE_N * 0.05
    total = sum(v for _, v in s) / 1e6
    t.near(funcs(s, "nap_picking") / 1e6, want, 0.15,
           f"keep-alive ({how}): kind=offcpu&model=stock.picking: nap_picking ~ 10 x 50 ms")
    t.check(total < 1.3 * want,
            f"keep-alive ({how}): the RPC's off-CPU time is its naps, not the waits between "
            "requests", f"{total:.3f} s in all against {want:.2f} s of naps")


def run(t, args):
    with lib.Daemon(*args) as d:
        srv, port, pid = serve(t, d, 3, 1)

        t0 = time.monotonic()
        for _ in range(N):
            for method, path in (("POST", RPC + "res.partner/read"),
                                 ("POST", RPC + "sale.order/search_read"),
                                 ("GET", "/shop/cart"),
                                 ("POST", RPC + "sale.order/nap")):
                # A random pause under one sampling period: each burst's phase
                # against the 49 Hz timer is its own, not locked to the others'
                # (a locked phase gave every 50 ms burst 3 samples, or 2).
                time.sleep(random.uniform(0, 1.0 / HZ))
                st = request(port, method, path)
                t.require(st == 200, f"{path} answers 200", f"{st}")
        secs = int(time.monotonic() - t0) + 5
        time.sleep(1.5)  # the next drain

        def prof(**q):
            stacks, _, _ = pw.profile(d, seconds=secs, worker=pid, **q)
            return stacks

        everything = prof(kind="cpu")
        lib.log("all CPU samples: " + ", ".join(
            f"{f}={funcs(everything, f)}" for f in ("burn_partner", "burn_order", "burn_cart")))

        want = 2.0 * HZ
        s = prof(kind="cpu", model="res.partner", method="read")
        t.near(funcs(s, "burn_partner"), want, 0.25,
               "model=res.partner&method=read: burn_partner's samples ~ 2 s x 49 Hz")
        t.check(funcs(s, "burn_partner") == funcs(everything, "burn_partner"),
                "model=res.partner&method=read: every burn_partner sample is tagged",
                f"{funcs(s, 'burn_partner')} of {funcs(everything, 'burn_partner')}")
        t.check(funcs(s, "burn_order") == funcs(s, "burn_cart") == funcs(s, "nap_order") == 0,
                "model=res.partner&method=read: no burn_order, burn_cart or nap_order",
                f"{funcs(s, 'burn_order')} {funcs(s, 'burn_cart')} {funcs(s, 'nap_order')}")

        s = prof(kind="cpu", model="sale.order", method="search_read")
        t.near(funcs(s, "burn_order"), want, 0.25,
               "model=sale.order&method=search_read: burn_order's samples ~ 2 s x 49 Hz")
        t.check(funcs(s, "burn_partner") == funcs(s, "burn_cart") == 0,
                "model=sale.order&method=search_read: no burn_partner or burn_cart")

        s = prof(kind="cpu", model="sale.order")
        t.check(funcs(s, "burn_order") > 0 and funcs(s, "burn_partner") == 0,
                "model=sale.order alone: burn_order, not burn_partner",
                f"{funcs(s, 'burn_order')} {funcs(s, 'burn_partner')}")

        s = prof(kind="cpu", route="/shop/cart")
        t.near(funcs(s, "burn_cart"), 1.0 * HZ, 0.25,
               "route=/shop/cart: burn_cart's samples ~ 1 s x 49 Hz")
        t.check(funcs(s, "burn_partner") == funcs(s, "burn_order") == 0,
                "route=/shop/cart: no burn_partner or burn_order")

        s = prof(kind="cpu", route="/web/dataset/call_kw")
        t.check(funcs(s, "burn_partner") > 0.75 * want and funcs(s, "burn_order") > 0.75 * want
                and funcs(s, "burn_cart") == 0,
                "route=/web/dataset/call_kw: burn_partner and burn_order, not burn_cart",
                f"{funcs(s, 'burn_partner')} {funcs(s, 'burn_order')} {funcs(s, 'burn_cart')}")

        s = prof(kind="cpu", model="no.such")
        t.check(s == [], "model=no.such: empty", f"{s[:3]}")

        s = prof(kind="offcpu", model="sale.order", method="nap")
        t.near(funcs(s, "nap_order") / 1e6, N * 0.05, 0.15,
               "kind=offcpu&model=sale.order&method=nap: nap_order blocked 20 x 50 ms")
        t.check(funcs(s, "burn_order") == funcs(s, "burn_partner") == 0,
                "kind=offcpu&model=sale.order&method=nap: no burn_* stack")
        s = prof(kind="offcpu", model="res.partner")
        t.check(funcs(s, "nap_order") == 0, "kind=offcpu&model=res.partner: no nap_order")

        keepalive(t, d, port, pid, "poll")
        srv2, port2, pid2 = serve(t, d, None, 2)
        keepalive(t, d, port2, pid2, "blocking recv")
        lib.kill_group(srv)
        lib.kill_group(srv2)


if __name__ == "__main__":
    lib.main(body)
