#!/usr/bin/python3.11
"""GET /trace: an on-demand Perfetto trace, decoded by protoc and checked.

Every trace taken here is decoded with `protoc --decode=perfetto.protos.Trace`
against tests/perfetto/perfetto_trace_subset.proto (Perfetto's field numbers).
With `--probes=sched,blkio,oom,pg,requests`:

  - bad input: seconds=0, seconds=1000, seconds=abc, role=nope, pid=x answer
    400 with a JSON error
  - a worker titled `odoo: WorkerHTTP <pid>` spins 1 s, sleeps 1 s and does 100
    O_DIRECT reads inside a 5 s recording: its process track is named
    `odoo_http <pid> odoo: WorkerHTTP <pid>`, its running time in the trace's
    thread states is the CPU time it used within 5%, its sleeping time its
    1 s sleep within 5%, it has uninterruptible (iowait) time, the D sleeps
    of its reads are iowait (a sched_blocked_reason with io_wait 1 after each,
    the UI's "Uninterruptible Sleep (IO)") and its wait in posix_spawn (a vfork
    whose child opens a FIFO the test writes 0.5 s later) is the posix_spawn's
    time within 5%, all of it D without iowait (io_wait 0, "(non-IO)"), its 100 reads
    are 100 block I/O slices of 4096 bytes attributed to it, and the SIGKILL the
    test sends it before the end is an `exit: killed` instant on its track
  - a second recording while one runs answers 429 (JSON); the first still
    answers; its headers say application/octet-stream and
    `attachment; filename=erpscope-<host>-<time>.perfetto-trace`, gzip when asked
  - a client that goes away mid-recording: the daemon lives on and the next
    recording works
  - a prefork server's RPC that runs `SELECT pg_sleep(0.3), '<literal>'` inside
    a 3 s recording with role=odoo_http&pid=<worker>: only that worker and
    its backend in the trace, one request slice of ~0.3 s on the
    worker's thread named account.move.reconcile, one statement slice on the
    backend's thread inside it, a flow from one to the other; the literal is
    nowhere in the file
  - 10 s of a 2-worker server under 6 clients (two statements per request):
    the trace is under 20 MiB, decodes, and every statement a worker sent
    inside a request is joined to that request by a flow; TrackEvent and
    annotation names are interned (no name written as a string, each
    distinct event name defined once in InternedData)
  - Debian's python3.11 running 100 gc.collect() inside a recording
    (`--probes=sched,python`): 100 GC slices of generation 2 on its thread,
    their collected objects adding up to what gc.collect() returned
  - a worker titled `odoo: WorkerHTTP <pid>` (Debian's python3.11, the same
    daemon) burning 1.5 s of CPU in erpscope_burn() inside a 6 s recording:
    its CPU samples are PerfSample packets on its thread whose interned
    callstack is burn:<module> -> burn:erpscope_burn, each stamped
    inside the burn and saying its CPU, as many as its CPU seconds x 49 Hz
    (the default --python.sample-frequency) within 25%, and as many as
    GET /profile counted for the burn (+/- 2)
"""

import gzip
import json
import os
import random
import re
import socket
import subprocess
import threading
import time

import lib
import perfetto
import prefork
import pyworkloads as pw

DB = "erpt_trace"
LITERAL = "erpscope_trace_literal_7731"

WORKLOAD = r"""
import json, mmap, os, sys, time
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
rd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
offsets = [int(x) for x in sys.argv[2].split(",")]
# Once before: the first read of a region may read the file's extent block too
# (a cold cache on a fresh machine), which is not one of the 100.
for off in offsets:
    os.preadv(rd, [buf], off)
# And one posix_spawn as the timed one (an open, of /dev/null): on a cold
# cache the first one faults pages in (a fresh CI machine saw 40 us of iowait
# in the timed one).
os.waitpid(os.posix_spawn("/bin/true", ["true"], os.environ, file_actions=[
    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)]), 0)
print("ready", flush=True)
sys.stdin.readline()
c0 = time.process_time()
end = time.monotonic() + 1.0
while time.monotonic() < end:
    pass
c1 = time.process_time()
t0 = time.monotonic()
time.sleep(1.0)
t1 = time.monotonic()
r0 = time.monotonic_ns()
for off in offsets:
    if os.preadv(rd, [buf], off) != 4096:
        raise SystemExit("short read")
r1 = time.monotonic_ns()
c2 = time.process_time()
print(json.dumps(dict(spin_cpu=c1 - c0, sleep=t1 - t0, cpu=c2 - c0, r0=r0, r1=r1)), flush=True)
# Blocked, not iowait: posix_spawn is a vfork, its parent waits (TASK_KILLABLE)
# until the child execs, and the child first opens a FIFO no one writes yet.
v0 = time.monotonic_ns()
child = os.posix_spawn("/bin/true", ["true"], os.environ,
                       file_actions=[(os.POSIX_SPAWN_OPEN, 0, sys.argv[3], os.O_RDONLY, 0)])
v1 = time.monotonic_ns()
os.waitpid(child, 0)
print(json.dumps(dict(v0=v0, v1=v1)), flush=True)
sys.stdin.readline()
"""

APP = r'''
import sys
import psycopg2
from werkzeug.wrappers import Request, Response

ARGS = sys.argv[1:]
conn = None

@Request.application
def app(request):
    global conn
    if conn is None:
        conn = psycopg2.connect(host=ARGS[0], port=int(ARGS[1]), user="postgres", dbname=ARGS[2])
        conn.autocommit = True
    conn.cursor().execute("SELECT pg_sleep(0.3), '%s' AS x")
    return Response(b"ok", mimetype="text/plain")
''' % LITERAL

DATA_SIZE = 16 << 20

BURN = r"""
import json, os, sys, time
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")


def erpscope_burn(seconds):
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        n += 1
    return n


print("ready", flush=True)
for line in sys.stdin:
    c0, r0 = time.process_time(), time.monotonic_ns()
    erpscope_burn(float(line))
    c1, r1 = time.process_time(), time.monotonic_ns()
    print(json.dumps(dict(cpu=c1 - c0, r0=r0, r1=r1)), flush=True)
"""
HZ = 49  # --python.sample-frequency's default


def get(port, path, headers=None, timeout=90):
    return lib.http_get(port, path, headers=headers, timeout=timeout)


def bad_input(t, d):
    for q in ("seconds=0", "seconds=1000", "seconds=abc", "seconds=-1", "role=nope", "pid=x",
              "worker=abc"):
        st, h, b = get(d.port, f"/trace?{q}")
        ok = st == 400
        try:
            ok = ok and "error" in json.loads(b)
        except ValueError:
            ok = False
        t.check(ok, f"/trace?{q} answers 400 with a JSON error", f"{st} {b[:100]!r}")


def data_file(d):
    path = os.path.join(d, "data")
    chunk = os.urandom(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for _ in range(DATA_SIZE >> 20):
        os.write(fd, chunk)
    os.fsync(fd)
    os.close(fd)
    return path


def worker_states(t, d):
    work = lib.tempdir(base="/var/tmp")
    offsets = ",".join(str(random.randrange(DATA_SIZE // 4096) * 4096) for _ in range(100))
    fifo = os.path.join(work, "fifo")
    os.mkfifo(fifo)
    p = lib.spawn([lib.PYTHON, "-c", WORKLOAD, data_file(work), offsets, fifo],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    t.require(p.stdout.readline().strip() == "ready", "workload started")
    info, _, _ = lib.wait_worker(d, p.pid, timeout=10.0, role="odoo_http")
    t.require(info is not None, "the workload is tracked as odoo_http")
    res = {}

    def record():
        res["first"] = get(d.port, "/trace?seconds=5", headers={"Accept-Encoding": "gzip"})

    th = threading.Thread(target=record)
    th.start()
    time.sleep(0.5)
    st, h, b = get(d.port, "/trace?seconds=1")
    t.check(st == 429 and "error" in json.loads(b), "a second recording answers 429 (JSON)",
            f"{st} {b[:100]!r}")
    stolen = lib.host_steal()
    p.stdin.write("go\n")
    p.stdin.flush()
    r = json.loads(p.stdout.readline())
    stolen = lib.host_steal() - stolen
    time.sleep(0.5)  # the workload waits in posix_spawn (vfork) meanwhile
    with open(fifo, "w"):
        pass
    r.update(json.loads(p.stdout.readline()))
    lib.log(f"workload says {r}")
    p.kill()  # inside the recording: an exit instant
    p.wait(10)
    th.join(60)
    st, h, b = res["first"]
    hl = {k.lower(): v for k, v in h.items()}
    t.require(st == 200, "the recording answers 200", f"{st} {b[:200]!r}")
    t.check(hl.get("content-type") == "application/octet-stream", "application/octet-stream",
            hl.get("content-type"))
    t.check(re.fullmatch(r"attachment; filename=erpscope-[A-Za-z0-9._-]+-\d{8}T\d{6}Z"
                         r"\.perfetto-trace", hl.get("content-disposition", "")) is not None,
            "Content-Disposition names erpscope-<host>-<time>.perfetto-trace",
            hl.get("content-disposition"))
    t.check(hl.get("content-encoding") == "gzip", "gzipped when asked",
            hl.get("content-encoding"))
    data = gzip.decompress(b) if hl.get("content-encoding") == "gzip" else b
    lib.log(f"trace: {len(b)} bytes sent, {len(data)} decoded")
    tr = perfetto.Trace(data)
    name = tr.processes.get(p.pid)
    t.check(name == f"odoo_http {p.pid} odoo: WorkerHTTP {p.pid}",
            "the process track is named role, pid and title", f"{name!r}")
    t.check(tr.threads.get(p.pid, (None,))[0] == p.pid, "its thread is under it")
    sec = tr.state_seconds(p.pid)
    lib.log(f"thread states in the trace: {sec}")
    if abs(sec.get("TASK_STATE_RUNNING", 0) - r["cpu"]) > 0.05 * r["cpu"]:
        with open("/tmp/erpscope-test-trace-states.bin", "wb") as f:
            f.write(data)
        lib.log(f"states: {tr.states(p.pid)}")
    # running is by the stamps: it holds what the hypervisor stole meanwhile
    t.near_oncpu(sec.get("TASK_STATE_RUNNING", 0), r["cpu"], 0.05,
                 "running time in the trace is the CPU time the worker used", stolen)
    t.near(sec.get("TASK_STATE_INTERRUPTIBLE_SLEEP", 0), r["sleep"], 0.05,
           "sleeping time in the trace is its 1 s sleep")
    t.check(sec.get("TASK_STATE_UNINTERRUPTIBLE_SLEEP", 0) > 0,
            "its O_DIRECT reads show as uninterruptible (iowait)", f"{sec}")
    d_reads, d_spawn = tr.d_seconds(p.pid, r["r0"], r["r1"]), tr.d_seconds(p.pid, r["v0"], r["v1"])
    lib.log(f"uninterruptible during the reads {d_reads}, in posix_spawn {d_spawn} "
            f"({(r['v1'] - r['v0']) / 1e9:.3f} s)")
    t.check(d_reads["io"] > 0 and d_reads["non-io"] == 0 == d_reads["unknown"],
            "its O_DIRECT reads' uninterruptible sleeps are iowait (io_wait 1)", f"{d_reads}")
    t.near(d_spawn["non-io"], (r["v1"] - r["v0"]) / 1e9, 0.05,
           "its wait in posix_spawn (vfork, the child blocked on a FIFO) is uninterruptible, "
           "not iowait (io_wait 0)")
    t.check(d_spawn["io"] == 0 == d_spawn["unknown"], "and none of it is iowait", f"{d_spawn}")
    seq = [x[1] for x in tr.states(p.pid)]
    bad = [i for i in range(len(seq) - 1)
           if seq[i] == "TASK_STATE_RUNNABLE" and seq[i + 1] != "TASK_STATE_RUNNING"]
    t.check(not bad, "each runnable state is followed by running (no switch-in missing)",
            f"{[seq[i:i + 2] for i in bad[:5]]}")
    running = [s for s in tr.states(p.pid) if s[1] == "TASK_STATE_RUNNING"]
    t.check(running and all(c is not None for _, _, c in running),
            "each running state says its CPU")
    bios = [s for s in tr.slices if s["args"].get("pid") == p.pid and "bytes" in s["args"]]
    # CLOCK_MONOTONIC on both sides: the reads the workload timed (Python may read
    # a file of its own now and then, outside them).
    reads = [s for s in bios if s["args"].get("op") == "read" and s["args"]["bytes"] == 4096
             and r["r0"] <= s["start"] <= r["r1"]]
    lib.log(f"{len(bios)} block I/O slices of the worker, e.g. {bios[:1]}")
    t.check(len(reads) == 100, "its 100 O_DIRECT reads are 100 block I/O slices",
            f"{len(reads)}")
    t.check(all(s["tid"] is None and 0 < s["seconds"] < 1 for s in reads),
            "on a device's track, each lasting less than a second",
            f"{[s for s in reads if not (s['tid'] is None and 0 < s['seconds'] < 1)][:3]}")
    exits = [e for e in tr.instants if e["track_pid"] == p.pid]
    t.check([e["name"] for e in exits] == ["exit: killed"] and
            exits[0]["args"].get("detail") == "SIGKILL",
            "its SIGKILL is an exit instant on its process track", f"{exits}")


def client_goes_away(t, d):
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(b"GET /trace?seconds=2 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    s.close()
    time.sleep(2.5)
    t.check(d.alive(), "the daemon lives on after a client left mid-recording")
    st, _, b = get(d.port, "/trace?seconds=1")
    t.check(st == 200, "the next recording works", f"{st} {b[:100]!r}")
    perfetto.Trace(b)


def request_and_statement(t, d, pg):
    srv, port, kids = prefork.start(t, d, APP, [pg.dir, str(pg.port), DB], workers=1)
    prefork.wait_attached(t, d, kids)
    st, _ = prefork.request(port, "POST", "/web/dataset/call_kw/account.move/reconcile",
                            b"{}")  # connects, links the backend to the worker
    t.require(st == 200, "the RPC answers", f"{st}")
    time.sleep(0.5)
    res = {}
    # Other odoo_http workers may run on this host: this one's only (and its backend).
    path = f"/trace?seconds=3&role=odoo_http&pid={kids[0]}"
    th = threading.Thread(target=lambda: res.update(r=get(d.port, path)))
    th.start()
    time.sleep(0.5)
    st, took = prefork.request(port, "POST", "/web/dataset/call_kw/account.move/reconcile",
                               b"{}")
    th.join(30)
    st, h, b = res["r"]
    t.require(st == 200, "the recording answers 200", f"{st}")
    t.check(LITERAL.encode() not in b, "the statement's literal is nowhere in the file")
    tr = perfetto.Trace(b)
    reqs = [s for s in tr.slices if s["name"] == "account.move.reconcile"]
    lib.log(f"request slices: {reqs}")
    if len(reqs) != 1:
        lib.log(f"all slices: {[(s['name'], s['tid']) for s in tr.slices]}; processes "
                f"{tr.processes}; client took {took:.3f}s; status {st}")
    t.require(len(reqs) == 1, "one request slice named account.move.reconcile", f"{len(reqs)}")
    t.check(set(tr.processes) - {kids[0]} == {tr.threads[s["tid"]][0] for s in tr.slices
                                               if s["tid"] not in kids},
            "pid= keeps the worker and the backend it talked to, nothing else",
            f"{tr.processes}")
    rq = reqs[0]
    t.check(rq["tid"] in kids, "on the worker's thread", f"{rq['tid']} {kids}")
    t.between(rq["seconds"], 0.3, 0.4, "the request slice lasts ~0.3 s")
    t.check(rq["args"].get("route") == "/web/dataset/call_kw" and rq["args"].get("code") == "200",
            "it carries its route and code", f"{rq['args']}")
    stmts = [s for s in tr.slices if "pg_sleep" in (s["name"] or "")]
    lib.log(f"statement slices: {stmts}")
    t.require(len(stmts) == 1, "one pg_sleep statement slice", f"{len(stmts)}")
    sm = stmts[0]
    t.check(sm["tid"] not in kids and sm["tid"] in tr.threads,
            "on the backend's thread, a track of its own", f"{sm['tid']}")
    t.check(tr.processes.get(tr.threads[sm["tid"]][0], "").startswith(f"pg_backend {sm['tid']} postgres:"),
            "the backend's process track says pg_backend, its pid and title",
            f"{tr.processes.get(tr.threads[sm['tid']][0])!r}")
    t.check(rq["start"] <= sm["start"] and sm["end"] <= rq["end"],
            "the statement slice lies inside the request slice")
    t.between(sm["seconds"], 0.29, 0.4, "the statement slice lasts ~0.3 s")
    t.check(len(sm["ends"]) == 1 and sm["ends"][0] in rq["flows"],
            "a flow joins the request to its statement", f"{rq['flows']} {sm['ends']}")
    lib.kill_group(srv)


LOAD_APP = r'''
import sys
import psycopg2
from werkzeug.wrappers import Request, Response

ARGS = sys.argv[1:]
conn = None

@Request.application
def app(request):
    global conn
    if conn is None:
        conn = psycopg2.connect(host=ARGS[0], port=int(ARGS[1]), user="postgres", dbname=ARGS[2])
        conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM pg_class WHERE relname <> %s", ("x",))
    cur.execute("SELECT pg_sleep(0.002)")
    return Response(b"ok", mimetype="text/plain")
'''


def loaded(t, d, pg):
    """10 s of a 2-worker server under 6 clients: under 20 MiB, every statement
    its workers sent during a request joined to that request by a flow."""
    srv, port, kids = prefork.start(t, d, LOAD_APP, [pg.dir, str(pg.port), DB])
    prefork.wait_attached(t, d, kids)
    stop = time.monotonic() + 13
    done = [0]

    def client():
        while time.monotonic() < stop:
            prefork.request(port, "POST", "/web/dataset/call_kw/res.partner/read", b"{}")
            done[0] += 1
    ths = [threading.Thread(target=client) for _ in range(6)]
    for th in ths:
        th.start()
    time.sleep(1)
    rss0 = int(open(f"/proc/{d.pid}/status").read().split("VmRSS:")[1].split()[0])
    st, h, b = get(d.port, "/trace?seconds=10")
    rss1 = int(open(f"/proc/{d.pid}/status").read().split("VmRSS:")[1].split()[0])
    for th in ths:
        th.join()
    lib.log(f"{done[0]} requests; trace {len(b)} bytes; daemon RSS {rss0} -> {rss1} KiB; "
            + [ln for ln in d.log_text().splitlines() if "trace recorded" in ln][-1])
    t.require(st == 200, "the recording answers 200", f"{st}")
    t.check(len(b) < 20 << 20, "10 s of a loaded server is under 20 MiB", f"{len(b)}")
    tr = perfetto.Trace(b)
    reqs = [s for s in tr.slices if s["tid"] in kids and s["name"] == "res.partner.read"]
    flows = {f for s in reqs for f in s["flows"]}
    stmts = [s for s in tr.slices if s["args"].get("client_pid") in kids]
    inside = [s for s in stmts if any(r["start"] <= s["start"] and s["end"] <= r["end"]
                                      for r in reqs if tr.threads.get(r["tid"], (0,))[0]
                                      == s["args"]["client_pid"])]
    linked = [s for s in inside if s["ends"] and s["ends"][0] in flows]
    lib.log(f"{len(reqs)} request slices, {len(stmts)} statements of the workers, "
            f"{len(inside)} inside a request, {len(linked)} with a flow")
    names = {one_name for p in tr.packets for e in p.get("track_event", [])
                 for one_name in e.get("name", [])}
    lib.log(f"{len(b) / max(len(tr.packets), 1):.1f} bytes per packet, "
            f"{len(b) / max(done[0], 1):.0f} per request; interning {tr.interning}")
    t.check(tr.interning["inline"] == 0 and
            tr.interning["defined"].get("event_names") == len(names),
            "event and annotation names are interned: each distinct name defined once",
            f"{tr.interning} {len(names)} names")
    t.check(len(reqs) > 100, "hundreds of request slices", f"{len(reqs)}")
    # A request astride the start or the end of the recording (2 workers, 2
    # edges) may have a statement outside it.
    t.check(len(inside) >= 2 * len(reqs) - 8 and len(linked) == len(inside),
            "every statement sent during a request is joined to it by a flow",
            f"{len(linked)} of {len(inside)}")
    lib.kill_group(srv)


def gc_pauses(t, d):
    """Debian's python3.11 (USDT) running 100 gc.collect() in a recording:
    100 GC slices of generation 2 on its thread, the objects they collected
    adding up to what gc.collect() returned."""
    paths = pw.write_all(lib.tempdir())
    argv, env = pw.command(pw.DEBIAN, paths["gc"])
    p = lib.spawn(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid, _ = pw.read_ready(p)

    def command(cmd):
        p.stdin.write(cmd + "\n")
        p.stdin.flush()
        return json.loads(p.stdout.readline())

    def seen():
        return d.scrape().total("erpscope_python_gc_pause_seconds_count",
                                worker=str(pid)) >= 1
    ok = False
    for _ in range(20):  # the USDT probes attach a little after the process shows
        command("probe")
        if lib.wait_for(seen, 1.0, 0.1):
            ok = True
            break
    t.require(ok, "the python probe times its GC pauses")
    res = {}
    th = threading.Thread(target=lambda: res.update(r=get(d.port,
                                                          f"/trace?seconds=3&pid={pid}")))
    th.start()
    time.sleep(0.5)
    r = command("go")
    th.join(30)
    st, _, b = res["r"]
    t.require(st == 200, "the recording answers 200", f"{st}")
    tr = perfetto.Trace(b)
    gcs = [x for x in tr.slices if x["tid"] == pid and
           (x["name"] or "").startswith("GC generation")]
    lib.log(f"{len(gcs)} GC slices, e.g. {gcs[:1]}; gc.collect() found {r['total']}")
    t.check(len(gcs) == 100 and all(x["name"] == "GC generation 2" for x in gcs),
            "100 gc.collect() are 100 GC slices of generation 2 on its thread",
            f"{len(gcs)}")
    t.check(sum(x["args"].get("collected", 0) for x in gcs) == r["total"],
            "their collected objects add up to what gc.collect() returned",
            f"{sum(x['args'].get('collected', 0) for x in gcs)} {r['total']}")
    p.stdin.close()
    p.wait(10)


def cpu_samples(t, d):
    """A titled worker burning 1.5 s of CPU in erpscope_burn() inside a 6 s
    recording: its samples, with their interned callstacks."""
    script = os.path.join(lib.tempdir(), "burn.py")  # frames named burn:...
    with open(script, "w") as f:
        f.write(BURN)
    p = lib.spawn([lib.PYTHON, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  text=True)
    t.require(p.stdout.readline().strip() == "ready", "the burner started")
    info, _, _ = lib.wait_worker(d, p.pid, timeout=10.0, role="odoo_http")
    t.require(info is not None, "the burner is tracked as odoo_http")

    def burn(seconds):
        p.stdin.write(f"{seconds}\n")
        p.stdin.flush()
        return json.loads(p.stdout.readline())

    def sampled():  # the python probe found it: its samples reach /profile
        burn(0.2)
        stacks, _, _ = pw.profile(d, kind="cpu", seconds=30, worker=p.pid)
        return pw.leaf_sums(stacks).get("burn:erpscope_burn", 0) > 0
    t.require(lib.wait_for(sampled, 15.0, 0.5), "the python probe samples the burner")

    def in_profile():
        time.sleep(1.5)  # drained once a second
        stacks, _, _ = pw.profile(d, kind="cpu", seconds=120, worker=p.pid)
        return pw.leaf_sums(stacks).get("burn:erpscope_burn", 0)
    before = in_profile()
    res = {}
    th = threading.Thread(target=lambda: res.update(r=get(d.port,
                                                          f"/trace?seconds=6&pid={p.pid}")))
    t0 = time.monotonic_ns()
    th.start()
    time.sleep(0.5)
    r = burn(1.5)
    th.join(30)
    profiled = in_profile() - before
    st, _, b = res["r"]
    t.require(st == 200, "the recording answers 200", f"{st}")
    tr = perfetto.Trace(b)
    samples = tr.samples(p.pid)
    burning = [s for s in samples if s[2][-1:] == ["burn:erpscope_burn"]]
    lib.log(f"{len(samples)} samples of the burner, {len(burning)} in erpscope_burn, "
            f"e.g. {samples[:1]}; it used {r['cpu']:.3f} s of CPU in "
            f"{(r['r1'] - r['r0']) / 1e9:.3f} s, {profiled} samples in /profile; "
            f"trace {len(b)} bytes")
    t.require(r["r1"] < t0 + 5.5e9, "the burn ended inside the recording (a busy host "
              "would stretch it)", f"{(r['r1'] - t0) / 1e9:.2f} s after it began")
    t.check(burning and all(s[2] == ["burn:<module>", "burn:erpscope_burn"]
                            for s in burning),
            "its samples' callstack is burn:<module> -> burn:erpscope_burn",
            f"{set(tuple(s[2]) for s in samples)}")
    t.check(all(r["r0"] <= s[0] <= r["r1"] and s[1] is not None for s in burning),
            "each is stamped inside the burn and says its CPU")
    t.near(len(burning), r["cpu"] * HZ, 0.25,
           f"as many as {r['cpu']:.2f} CPU seconds x {HZ} Hz")
    t.near(len(burning), profiled, 0, "as many as GET /profile counted for the burn",
           abs_tol=2)
    p.stdin.close()
    p.wait(10)


def body(t):
    pg = lib.PgCluster().start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        with lib.Daemon("--probes=sched,blkio,oom,pg,requests") as d:
            bad_input(t, d)
            worker_states(t, d)
            client_goes_away(t, d)
            request_and_statement(t, d, pg)
            loaded(t, d, pg)
    finally:
        pg.stop()
    with lib.Daemon("--probes=sched,python") as d:
        gc_pauses(t, d)
        cpu_samples(t, d)


if __name__ == "__main__":
    lib.main(body)
