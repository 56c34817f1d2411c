#!/usr/bin/python3.11
"""The flight recorder: traces saved on triggers, decoded by protoc and checked.

A 2-worker prefork server titled as Odoo's (prefork.py) answers /tffast at
once, /tfslow after 2.3 s and /tfhang after 5 s. With
`--trace.flight-recorder=10s --trace.slow-request=2s --trace.dir=<tmp>/a/traces`
(missing: created 0700):

  - 5 /tffast requests save nothing
  - one /tfslow request saves exactly one trace: /traces lists it (trigger
    slow_request, role odoo_http, the worker, its route, duration ~2.3 s,
    its size); /traces/<id> downloads it, protoc decodes it, and it holds that
    request's slice (~2.3 s on the worker's thread) and the worker's thread
    states; erpscope_traces_saved_total{trigger="slow_request"} counts it
  - a second /tfslow request within the minute saves nothing more
  - a worker SIGKILLed in the middle of /tfhang saves one `killed` trace
    naming it (another trigger kind: not held back by the first)
The daemon sees the whole host: a slow request of another test's server
may take the minute's save of a kind first; the test then waits for the
next minute and tries once more, and only counts traces of its own workers.
  - /traces/<unknown>, /traces/..%2f.. answer 404
Caps, with 3 old traces already in the directory (10 B, 1020 KiB, 10 B) and
`--trace.max-files=3 --trace.max-bytes=1MiB`: after one more save the oldest
goes for the file cap, then the 1020 KiB one for the byte cap, the same on
disk and in /traces.
A PostgreSQL deadlock (two sessions updating rows 1 and 2 in opposite
order, with `--probes=sched,pg`) saves one `deadlock` trace naming the
backend that found it, holding a `deadlock` instant on that backend's track
and both sessions' UPDATE statements as slices (normalised text).
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
    if request.path == "/tfslow":
        time.sleep(2.3)
    elif request.path == "/tfhang":
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
         "--trace.slow-request=2s")


def listing(d):
    st, _, b = lib.http_get(d.port, "/traces")
    if st != 200:
        raise lib.Failure(f"/traces answered {st}")
    return json.loads(b)["traces"]


def saved(m, trigger):
    return m.value("erpscope_traces_saved_total", 0, trigger=trigger)


def mine(d, kids, kind):
    return [x for x in listing(d) if x["trigger"] == kind and x["worker"] and
            int(x["worker"]) in kids]


def save_of(t, d, kids, kind, action):
    """Runs action, which triggers a save of kind on one of kids; returns that
    listed trace. Another test's trigger of that kind may have taken the
    minute's save: then waits for the next minute and runs action again."""
    for _ in range(2):
        action()
        if lib.wait_for(lambda: mine(d, kids, kind), 8.0, 0.2):
            return mine(d, kids, kind)
        foreign = [x for x in listing(d) if x["trigger"] == kind]
        if not foreign:
            break
        wait = max(x["time"] for x in foreign) + 62 - time.time()
        lib.log(f"another server's {kind} trigger took this minute's save ({foreign[0]}); "
                f"waiting {wait:.0f}s")
        time.sleep(max(0.0, wait))
    return []


def triggers(t, d, work):
    srv, port, kids = prefork.start(t, d, APP)
    prefork.wait_attached(t, d, kids)
    for _ in range(5):
        prefork.request(port, "GET", "/tffast")
    time.sleep(3)
    t.check(mine(d, kids, "slow_request") == [], "fast requests save nothing")

    ls = save_of(t, d, kids, "slow_request", lambda: prefork.request(port, "GET", "/tfslow"))
    lib.log(f"/traces: {listing(d)}")
    t.require(len(ls) == 1, "one /tfslow request saved exactly one trace", f"{ls}")
    s = ls[0]
    t.check(s["trigger"] == "slow_request" and s["role"] == "odoo_http" and
            int(s["worker"]) in kids and s["route"] == "/tfslow" and
            2.3 <= s["duration_seconds"] < 2.6 and s["size_bytes"] > 0,
            "it is listed with its trigger, role, worker, route, duration and size", f"{s}")
    tdir = os.path.join(work, "a", "traces")
    mode = stat.S_IMODE(os.stat(tdir).st_mode)
    t.check(mode == 0o700, "--trace.dir was created 0700", oct(mode))
    on_disk = sorted(os.listdir(tdir))
    t.check(s["id"] + ".perfetto-trace" in on_disk, "the file is in --trace.dir", f"{on_disk}")
    st, h, b = lib.http_get(d.port, "/traces/" + s["id"])
    t.check(st == 200 and len(b) == s["size_bytes"], "/traces/<id> downloads it",
            f"{st} {len(b)}")
    t.check(h.get("content-disposition") ==
            f"attachment; filename=erpscope-{s['id']}.perfetto-trace", "named for download",
            h.get("content-disposition"))
    tr = perfetto.Trace(b)
    reqs = [x for x in tr.slices if x["name"] == "/tfslow"]
    t.check(len(reqs) == 1 and reqs[0]["tid"] == int(s["worker"]) and
            2.3 <= reqs[0]["seconds"] < 2.6, "the trace holds the slow request's slice",
            f"{reqs}")
    t.check(len(tr.states(int(s["worker"]))) > 0, "and the worker's thread states")
    n = saved(d.scrape(), "slow_request")
    t.check(n >= 1, 'erpscope_traces_saved_total{trigger="slow_request"} counts it', f"{n}")

    prefork.request(port, "GET", "/tfslow")
    time.sleep(3)
    t.check(len(mine(d, kids, "slow_request")) == 1 and
            saved(d.scrape(), "slow_request") == n,
            "a second slow request within the minute saves nothing")

    def hang():
        th = threading.Thread(target=lambda: prefork.request(port, "GET", "/tfhang"))
        th.daemon = True
        th.start()
        time.sleep(1)
        inflight = json.loads(lib.http_get(d.port, "/requests?format=json")[2])["in_flight"]
        busy = [r["pid"] for r in inflight if r["route"] == "/tfhang" and r["pid"] in kids]
        t.require(len(busy) == 1, "/tfhang is in flight on one worker", f"{inflight}")
        hang.victim = busy[0]
        os.kill(busy[0], 9)
        th.join(10)
    killed = []
    if len(kids) == 2:
        killed = save_of(t, d, kids, "killed", hang)
    t.check(len(killed) == 1 and killed[0]["route"] == "/tfhang" and
            killed[0]["worker"] == str(getattr(hang, "victim", None)),
            "a worker killed mid-request saved one 'killed' trace naming its route",
            f"{killed}")
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
        srv, port, kids = prefork.start(t, d, APP, workers=1)
        prefork.wait_attached(t, d, kids)
        got = save_of(t, d, kids, "slow_request",
                      lambda: prefork.request(port, "GET", "/tfslow"))
        t.require(len(got) == 1, "the slow request saved a trace", f"{listing(d)}")
        ls = listing(d)
        # Other servers' triggers may have saved too: all new traces count.
        new = sorted((x["time"], x["id"], x["size_bytes"]) for x in ls
                     if not x["id"].startswith("2020"))
        keep = old + [(i, sz) for _, i, sz in new]
        while len(keep) > 1 and (len(keep) > 3 or sum(sz for _, sz in keep) > 1 << 20):
            keep.pop(0)
        lib.log(f"new traces {new}; kept {keep}")
        t.check(not any(n.startswith("20200101T000000Z") or n.startswith("20200101T000001Z")
                        for n, _ in keep),
                "both caps had something to delete (3 files, then 1 MiB)", f"{keep}")
        t.check(sorted(x["id"] for x in ls) == sorted(n for n, _ in keep),
                "oldest deleted first until 3 files and 1 MiB hold", f"{ls}")
        t.check(sorted(os.listdir(tdir)) == sorted(n + ".perfetto-trace" for n, _ in keep),
                "the same on disk", f"{os.listdir(tdir)}")
        lib.kill_group(srv)


def pg_deadlock(t, work):
    pg = lib.PgCluster().start()
    try:
        pg.psql("CREATE DATABASE erpt_tflight")
        pg.psql("CREATE TABLE lk (id int PRIMARY KEY, v int); INSERT INTO lk VALUES (1, 0), (2, 0)",
                db="erpt_tflight")
        with lib.Daemon("--probes=sched,pg", "--trace.flight-recorder=10s",
                        f"--trace.dir={work}/d") as d:
            a, b = pg.connect(db="erpt_tflight"), pg.connect(db="erpt_tflight")
            ca, cb = a.cursor(), b.cursor()
            pids = []
            for c in (ca, cb):
                c.execute("SELECT pg_backend_pid()")
                pids.append(c.fetchone()[0])
            box = {}

            def run(name, cur, sql):
                try:
                    cur.execute(sql)
                except Exception as e:
                    box[name] = str(e)

            def cause():
                ca.execute("BEGIN")
                cb.execute("BEGIN")
                ca.execute("UPDATE lk SET v = v WHERE id = 1")
                cb.execute("UPDATE lk SET v = v WHERE id = 2")
                ths = [threading.Thread(target=run, args=("a", ca, "UPDATE lk SET v = v WHERE id = 2")),
                       threading.Thread(target=run, args=("b", cb, "UPDATE lk SET v = v WHERE id = 1"))]
                ths[0].start()
                time.sleep(0.2)
                ths[1].start()
                for th in ths:
                    th.join(15)
                for c in (ca, cb):
                    c.execute("ROLLBACK")
            got = save_of(t, d, pids, "deadlock", cause)
            t.check(sum("deadlock detected" in e for e in box.values()) >= 1,
                    "PostgreSQL found the deadlock", f"{box}")
            t.require(len(got) == 1, "one deadlock trace naming one of the two backends",
                      f"{listing(d)}")
            st, _, body = lib.http_get(d.port, "/traces/" + got[0]["id"])
            tr = perfetto.Trace(body)
            found = [e for e in tr.instants if e["name"] == "deadlock"]
            t.check(len(found) == 1 and found[0]["track_pid"] == int(got[0]["worker"]),
                    "the trace has a deadlock instant on that backend's track", f"{found}")
            upd = [x for x in tr.slices if x["name"] == "UPDATE lk SET v = v WHERE id = ?"
                   and tr.threads.get(x["tid"], (0,))[0] in pids]
            t.check(len(upd) >= 3, "and the sessions' UPDATEs as statement slices",
                    f"{[(x['name'], x['tid']) for x in upd]}")
    finally:
        pg.stop()


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
        said = lib.promtool_check(m.text)
        t.check(said == "", "promtool check metrics is clean", said)


def bad_dir(t):
    with lib.Daemon(*FLAGS, "--trace.dir=/proc/erpscope-no-such-dir/traces") as d:
        srv, port, kids = prefork.start(t, d, APP, workers=1)
        prefork.wait_attached(t, d, kids)
        prefork.request(port, "GET", "/tfslow")
        time.sleep(3)
        t.check(d.alive(), "the daemon lives on")
        lines = [l for l in d.log_text().splitlines() if "trace" in l and "level=warn" in l]
        t.check(len(lines) == 1 and "--trace.dir" in lines[0],
                "one log line says --trace.dir is unusable", f"{lines}")
        m = d.scrape()
        t.check(m.value("erpscope_trace_save_failures_total", 0) >= 1 and
                m.total("erpscope_traces_saved_total") == 0, "the save is counted as failed")
        t.check(listing(d) == [], "/traces is empty")
        lib.kill_group(srv)


def body(t):
    work = lib.tempdir(base="/var/tmp")
    with lib.Daemon(*FLAGS, f"--trace.dir={work}/a/traces") as d:
        triggers(t, d, work)
    caps(t, work)
    pg_deadlock(t, work)
    full_buffer(t, work)
    bad_dir(t)


if __name__ == "__main__":
    lib.main(body)
