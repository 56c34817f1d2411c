#!/usr/bin/python3.11
"""The flight recorder: traces saved on triggers, decoded by protoc and checked.

A 2-worker prefork server titled as Odoo's (prefork.py) answers /fast at
once, /slow after 0.8 s and /hang after 5 s. With `--trace.flight-recorder=10s
--trace.slow-request=500ms --trace.dir=<tmp>/a/traces` (missing: created 0700):

  - 5 /fast requests save nothing
  - one /slow request saves exactly one trace: /traces lists it (trigger
    slow_request, role odoo_http, the worker, route /slow, duration ~0.8 s,
    its size); /traces/<id> downloads it, protoc decodes it, and it holds that
    request's slice (~0.8 s on the worker's thread) and the worker's thread
    states; erpscope_traces_saved_total{trigger="slow_request"} is 1
  - a second /slow request within the minute saves nothing more
  - a worker SIGKILLed in the middle of /hang saves one `killed` trace naming
    /hang (another trigger kind: not held back by the first)
  - /traces/<unknown>, /traces/..%2f.. answer 404
Caps, with 3 old traces already in the directory (10 B, 1020 KiB, 10 B) and
`--trace.max-files=3 --trace.max-bytes=1MiB`: after one more save the oldest
goes for the file cap, then the 1020 KiB one for the byte cap, the same on
disk and in /traces.
A full buffer (`--trace.buffer-size=64KiB` under a worker switching 2,000
times a second) drops the oldest: erpscope_trace_events_dropped_total grows
and erpscope_trace_buffer_bytes stays within 64 KiB.
A --trace.dir that cannot be created: one log line, no crash, the slow
request's save counted in erpscope_trace_save_failures_total, /traces empty.
"""

import json
import os
import stat
import subprocess
import threading
import time

import lib
import perfetto
import prefork

APP = r'''
import time
from werkzeug.wrappers import Request, Response

@Request.application
def app(request):
    if request.path == "/slow":
        time.sleep(0.8)
    elif request.path == "/hang":
        time.sleep(5)
    return Response(b"ok", mimetype="text/plain")
'''

SWITCHER = r"""
import os, time, setproctitle
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
end = time.monotonic() + 4
while time.monotonic() < end:
    time.sleep(0.0005)
"""

FLAGS = ("--probes=sched,oom,requests", "--trace.flight-recorder=10s",
         "--trace.slow-request=500ms")


def listing(d):
    st, _, b = lib.http_get(d.port, "/traces")
    if st != 200:
        raise lib.Failure(f"/traces answered {st}")
    return json.loads(b)["traces"]


def saved(m, trigger):
    return m.value("erpscope_traces_saved_total", 0, trigger=trigger)


def triggers(t, d, work):
    srv, port, kids = prefork.start(t, d, APP)
    for _ in range(5):
        prefork.request(port, "GET", "/fast")
    time.sleep(3)
    t.check(listing(d) == [], "fast requests save nothing", f"{listing(d)}")

    st, took = prefork.request(port, "GET", "/slow")
    time.sleep(3)
    ls = listing(d)
    lib.log(f"/traces: {ls}")
    t.require(len(ls) == 1, "one /slow request saved exactly one trace", f"{len(ls)}")
    s = ls[0]
    t.check(s["trigger"] == "slow_request" and s["role"] == "odoo_http" and
            int(s["worker"]) in kids and s["route"] == "/slow" and
            0.8 <= s["duration_seconds"] < 1.0 and s["size_bytes"] > 0,
            "it is listed with its trigger, role, worker, route, duration and size", f"{s}")
    tdir = os.path.join(work, "a", "traces")
    mode = stat.S_IMODE(os.stat(tdir).st_mode)
    t.check(mode == 0o700, "--trace.dir was created 0700", oct(mode))
    on_disk = sorted(os.listdir(tdir))
    t.check(on_disk == [s["id"] + ".perfetto-trace"], "the file is in --trace.dir", f"{on_disk}")
    st, h, b = lib.http_get(d.port, "/traces/" + s["id"])
    t.check(st == 200 and len(b) == s["size_bytes"], "/traces/<id> downloads it",
            f"{st} {len(b)}")
    t.check(h.get("content-disposition") ==
            f"attachment; filename=erpscope-{s['id']}.perfetto-trace", "named for download",
            h.get("content-disposition"))
    tr = perfetto.Trace(b)
    reqs = [x for x in tr.slices if x["name"] == "/slow"]
    t.check(len(reqs) == 1 and reqs[0]["tid"] == int(s["worker"]) and
            0.8 <= reqs[0]["seconds"] < 1.0, "the trace holds the slow request's slice",
            f"{reqs}")
    t.check(len(tr.states(int(s["worker"]))) > 0, "and the worker's thread states")
    t.check(saved(d.scrape(), "slow_request") == 1,
            'erpscope_traces_saved_total{trigger="slow_request"} is 1')

    prefork.request(port, "GET", "/slow")
    time.sleep(3)
    t.check(len(listing(d)) == 1, "a second slow request within the minute saves nothing")

    def hang():
        try:
            prefork.request(port, "GET", "/hang")
        except Exception:
            pass
    th = threading.Thread(target=hang)
    th.start()
    time.sleep(1)
    inflight = json.loads(lib.http_get(d.port, "/requests?format=json")[2])["in_flight"]
    busy = [r["pid"] for r in inflight if r["route"] == "/hang" and r["pid"] in kids]
    t.require(len(busy) == 1, "/hang is in flight on one worker", f"{inflight}")
    victim = busy[0]
    os.kill(victim, 9)
    th.join(10)
    ok = lib.wait_for(lambda: any(x["trigger"] == "killed" for x in listing(d)), 8.0, 0.2)
    ls = listing(d)
    killed = [x for x in ls if x["trigger"] == "killed"]
    t.check(ok and len(killed) == 1 and killed[0]["route"] == "/hang" and
            killed[0]["worker"] == str(victim),
            "a worker killed mid-request saved one 'killed' trace naming /hang", f"{ls}")
    for bad in ("/traces/nope", "/traces/..%2f..%2fetc%2fpasswd", "/traces/" + "a" * 100):
        st, _, _ = lib.http_get(d.port, bad)
        t.check(st == 404, f"{bad[:30]} answers 404", f"{st}")
    lib.kill_group(srv)


def caps(t, work):
    tdir = os.path.join(work, "b")
    os.makedirs(tdir, mode=0o700)
    old = [("20200101T000000Z-slow_request", 10), ("20200101T000001Z-killed", 1020 << 10),
           ("20200101T000002Z-deadlock", 10)]
    for name, size in old:
        with open(os.path.join(tdir, name + ".perfetto-trace"), "wb") as f:
            f.write(b"x" * size)
    with lib.Daemon(*FLAGS, f"--trace.dir={tdir}", "--trace.max-files=3",
                    "--trace.max-bytes=1MiB") as d:
        ls = listing(d)
        t.check([x["id"] for x in ls] == [n for n, _ in reversed(old)],
                "the traces already there are listed, newest first", f"{ls}")
        srv, port, _ = prefork.start(t, d, APP, workers=1)
        prefork.request(port, "GET", "/slow")
        time.sleep(3)
        ls = listing(d)
        new = [x for x in ls if not x["id"].startswith("2020")]
        t.require(len(new) == 1, "the slow request saved a trace", f"{ls}")
        keep = old + [(new[0]["id"], new[0]["size_bytes"])]
        while len(keep) > 1 and (len(keep) > 3 or sum(s for _, s in keep) > 1 << 20):
            keep.pop(0)
        lib.log(f"new trace of {new[0]['size_bytes']} bytes; kept {keep}")
        t.check(len(keep) == 2, "both caps had something to delete (3 files, then 1 MiB)",
                f"{keep}")
        t.check(sorted(x["id"] for x in ls) == sorted(n for n, _ in keep),
                "oldest deleted first until 3 files and 1 MiB hold", f"{ls}")
        t.check(sorted(os.listdir(tdir)) == sorted(n + ".perfetto-trace" for n, _ in keep),
                "the same on disk", f"{os.listdir(tdir)}")
        lib.kill_group(srv)


def full_buffer(t, work):
    with lib.Daemon(*FLAGS, f"--trace.dir={work}/c", "--trace.buffer-size=64KiB") as d:
        p = lib.spawn([lib.PYTHON, "-c", SWITCHER])
        lib.wait_worker(d, p.pid, timeout=5.0, role="odoo_http")
        p.wait(20)
        m = d.scrape()
        dropped = m.value("erpscope_trace_events_dropped_total", 0)
        held = m.value("erpscope_trace_buffer_bytes", -1)
        lib.log(f"dropped={dropped} buffer_bytes={held}")
        t.check(dropped > 1000, "a full buffer drops events and counts them", f"{dropped}")
        t.check(0 < held <= 64 << 10, "the buffer stays within --trace.buffer-size", f"{held}")


def bad_dir(t):
    with lib.Daemon(*FLAGS, "--trace.dir=/proc/erpscope-no-such-dir/traces") as d:
        srv, port, _ = prefork.start(t, d, APP, workers=1)
        prefork.request(port, "GET", "/slow")
        time.sleep(3)
        t.check(d.alive(), "the daemon lives on")
        lines = [l for l in d.log_text().splitlines() if "trace" in l and "level=warn" in l]
        t.check(len(lines) == 1 and "--trace.dir" in lines[0],
                "one log line says --trace.dir is unusable", f"{lines}")
        m = d.scrape()
        t.check(m.value("erpscope_trace_save_failures_total", 0) == 1 and
                saved(m, "slow_request") == 0, "the save is counted as failed")
        t.check(listing(d) == [], "/traces is empty")
        lib.kill_group(srv)


def body(t):
    work = lib.tempdir(base="/var/tmp")
    with lib.Daemon(*FLAGS, f"--trace.dir={work}/a/traces") as d:
        triggers(t, d, work)
    caps(t, work)
    full_buffer(t, work)
    bad_dir(t)


if __name__ == "__main__":
    lib.main(body)
