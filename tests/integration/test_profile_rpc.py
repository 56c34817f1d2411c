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
(CPU measured by the thread's own clock), at the default 49 Hz and 10 ms
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
Then a daemon with `--probes=python` (no requests probe): model= answers
409 and says the requests probe is off.
"""

import http.client
import subprocess
import time

import lib
import prefork
import pyworkloads as pw

HZ = 49
N = 20

SERVER = prefork.source(r'''
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
    elif p == "/shop/cart":
        burn_cart()
    elif p == "/warm":
        warm_up()
    return Response(b"ok", mimetype="text/plain")
''', 1)

RPC = "/web/dataset/call_kw/"


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


def run(t, args):
    with lib.Daemon(*args) as d:
        srv = lib.spawn([lib.PYTHON, "-c", SERVER], stdout=subprocess.PIPE, text=True)
        first = srv.stdout.readline().split()
        port, pid = int(first[0]), int(first[1])
        lib.log(f"server on port {port}, worker {pid}")
        info, _, _ = lib.wait_worker(d, pid, timeout=10.0, role="odoo_http")
        t.require(info is not None, f"worker {pid} is tracked as odoo_http")
        t.require(lib.wait_for(lambda: d.scrape().value("erpscope_http_processes_attached", 0)
                               >= 1, 10.0, 0.1, "uprobes attached"),
                  "the worker carries the requests probe's uprobes")

        # Until the Python probe samples the worker and its requests are named.
        def warmed():
            request(port, "GET", "/warm")
            stacks, _, _ = pw.profile(d, kind="cpu", seconds=30, worker=pid, route="/warm")
            return funcs(stacks, "warm_up") > 0
        t.require(lib.wait_for(warmed, 20.0, 0.5, "warm-up samples"),
                  "the worker's samples carry their route (warm-up)")

        t0 = time.monotonic()
        for _ in range(N):
            for method, path in (("POST", RPC + "res.partner/read"),
                                 ("POST", RPC + "sale.order/search_read"),
                                 ("GET", "/shop/cart"),
                                 ("POST", RPC + "sale.order/nap")):
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
        lib.kill_group(srv)


if __name__ == "__main__":
    lib.main(body)
