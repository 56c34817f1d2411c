#!/usr/bin/python3.11
"""Why workers die: erpscope_worker_exits_total{role,reason} and
erpscope_worker_kills_total{role,sender_role}, against exits whose cause is
known, in both tracepoint flavours:

  killed   a worker titled `odoo: WorkerHTTP <pid> `, forked by a python
           running a script named odoo-bin (Odoo's master), is sent SIGKILL
           by that master: reason="killed" and
           worker_kills_total{role="odoo_http",sender_role="odoo_master"}
           rise by 1; its /events entry names the master as the sender
  error    a tracked python exits with status 3: reason="error"
  normal   a tracked python exits with status 0: reason="normal"
  signal   a tracked python gets SIGTERM from an untracked /bin/sh:
           reason="signal", sender role "other"

Each case is a window: scrape, the exit, its log line, scrape. The expected
counter rises by exactly 1 and every other reason of that role by 0. Other
sessions on the same host may end tracked processes inside the window: the
daemon logs every exit (msg="worker exit" ... reason=...), so exits of other
pids with the same role and reason logged inside the window are allowed on
top, and named when they happen. /events must hold exactly one entry for
each non-normal exit and none for the normal one; bad /events parameters
answer 400 with a JSON error.
"""

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import lib

REASONS = ("oom_killed", "killed", "signal", "error", "normal")

MASTER = r"""
import os, signal, sys
import setproctitle
child = os.fork()
if child == 0:
    setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
    while True:
        signal.pause()
print(child, flush=True)
sys.stdin.readline()                 # the test says go once both are tracked
os.kill(child, signal.SIGKILL)
_, status = os.waitpid(child, 0)
print(status, flush=True)
sys.stdin.readline()
"""

# Blocks until told, then exits with the status given.
EXITER = r"""
import sys
print("ready", flush=True)
sys.stdin.readline()
sys.exit(int(sys.argv[1]))
"""

EXIT_LINE = re.compile(r'msg="worker exit" pid=(\d+) comm="(?:[^"\\]|\\.)*" role=(\w+) '
                       r'reason=(\w+)')


def get_json(port, query):
    """(status, parsed body) of GET /events?query."""
    url = f"http://127.0.0.1:{port}/events" + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.load(r), r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers.get("Content-Type")


def exit_lines(d, start):
    """[(pid, role, reason)] of the daemon's exit lines from byte offset start."""
    with open(d.logpath, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    return [(int(m.group(1)), m.group(2), m.group(3)) for m in EXIT_LINE.finditer(text)]


def log_size(d):
    return os.path.getsize(d.logpath)


def exits(m, role):
    return {r: m.value("erpscope_worker_exits_total", 0.0, role=role, reason=r)
            for r in REASONS}


def window_check(t, d, m0, m1, pos0, pid, role, reason, what):
    """The window rule of the module docstring; returns the exit lines seen."""
    lines = exit_lines(d, pos0)
    mine = [x for x in lines if x[0] == pid]
    t.check(mine == [(pid, role, reason)], f"{what}: the daemon logged one exit for pid {pid} "
            f"with role={role} reason={reason}", f"got {mine}")
    e0, e1 = exits(m0, role), exits(m1, role)
    for r in REASONS:
        foreign = sum(1 for p, ro, re_ in lines if p != pid and ro == role and re_ == r)
        want = 1 if r == reason else 0
        delta = e1[r] - e0[r]
        note = f" (+ up to {foreign} exits of other processes in the window)" if foreign else ""
        t.check(want <= delta <= want + foreign,
                f"{what}: erpscope_worker_exits_total{{role=\"{role}\",reason=\"{r}\"}} "
                f"rose by {want}{note}", f"rose by {delta:g}")
    return lines


def wait_exit_event(d, pid, since, timeout=10.0):
    """The worker_exit events for pid after id since, once one shows up."""
    def look():
        st, body, _ = get_json(d.port, f"since={since}&type=worker_exit&limit=1024")
        if st != 200:
            raise lib.Failure(f"GET /events: {st} {body}")
        return [e for e in body["events"] if e["data"].get("pid") == pid]
    return lib.wait_for(look, timeout, 0.1) or look()


def wait_logged(d, pos0, pid, timeout=10.0):
    return lib.wait_for(lambda: [x for x in exit_lines(d, pos0) if x[0] == pid], timeout, 0.05)


def last_id(d):
    st, body, _ = get_json(d.port, "limit=1")
    if st != 200:
        raise lib.Failure(f"GET /events?limit=1: {st} {body}")
    return body["last_id"]


def case_killed(t, d, work):
    script = os.path.join(work, "odoo-bin")
    with open(script, "w") as f:
        f.write(MASTER)
    id0, pos0, m0 = last_id(d), log_size(d), d.scrape()
    k0 = m0.value("erpscope_worker_kills_total", 0.0, role="odoo_http", sender_role="odoo_master")
    master = lib.spawn([lib.PYTHON, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       text=True)
    child = int(master.stdout.readline())
    info, took, last = lib.wait_worker(d, child, timeout=10.0, role="odoo_http")
    t.require(info is not None, f"killed: worker {child} tracked as odoo_http",
              f"last seen: {lib.worker_info(last, child)}")
    info, _, last = lib.wait_worker(d, master.pid, timeout=10.0, role="odoo_master")
    t.require(info is not None, f"killed: master {master.pid} tracked as odoo_master",
              f"last seen: {lib.worker_info(last, master.pid)}")
    master.stdin.write("go\n")
    master.stdin.flush()
    status = int(master.stdout.readline())
    t.require(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL,
              "killed: the master's waitpid says SIGKILL", f"status {status:#x}")
    logged = wait_logged(d, pos0, child)
    t.require(logged, "killed: the daemon logged the exit", "" if logged else d.log_tail(10))
    m1 = d.scrape()
    window_check(t, d, m0, m1, pos0, child, "odoo_http", "killed", "killed")
    k1 = m1.value("erpscope_worker_kills_total", 0.0, role="odoo_http", sender_role="odoo_master")
    t.check(k1 - k0 == 1, 'erpscope_worker_kills_total{role="odoo_http",'
            'sender_role="odoo_master"} rose by 1', f"rose by {k1 - k0:g}")
    ev = wait_exit_event(d, child, id0)
    t.check(len(ev) == 1, "killed: one worker_exit event for the worker", f"got {ev}")
    if ev:
        data = ev[0]["data"]
        t.check(data.get("reason") == "killed" and data.get("signal") == "SIGKILL"
                and data.get("role") == "odoo_http" and data.get("exit_status") is None,
                "killed: the event says odoo_http, killed, SIGKILL", f"data={data}")
        s = data.get("sender") or {}
        t.check(s.get("pid") == master.pid and s.get("role") == "odoo_master"
                and s.get("comm") == "python3.11",
                "killed: the event names the master (pid, role odoo_master, comm) as sender",
                f"sender={s}")
    master.stdin.close()
    t.check(master.wait(timeout=10) == 0, "killed: the master exited 0", f"{master.returncode}")


def case_status(t, d, status, reason):
    what = f"exit {status}"
    id0, pos0, m0 = last_id(d), log_size(d), d.scrape()
    p = lib.spawn([lib.PYTHON, "-c", EXITER, str(status)], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, text=True)
    t.require(p.stdout.readline().strip() == "ready", f"{what}: started")
    info, _, last = lib.wait_worker(d, p.pid, timeout=10.0, role="python")
    t.require(info is not None, f"{what}: pid {p.pid} tracked as python",
              f"last seen: {lib.worker_info(last, p.pid)}")
    p.stdin.write("go\n")
    p.stdin.flush()
    t.require(p.wait(timeout=10) == status, f"{what}: the process exited {status}",
              f"{p.returncode}")
    logged = wait_logged(d, pos0, p.pid)
    t.require(logged, f"{what}: the daemon logged the exit", "" if logged else d.log_tail(10))
    m1 = d.scrape()
    window_check(t, d, m0, m1, pos0, p.pid, "python", reason, what)
    ev = wait_exit_event(d, p.pid, id0, timeout=0.5 if reason == "normal" else 10.0)
    if reason == "normal":
        t.check(not ev, f"{what}: no event for a normal exit", f"got {ev}")
    else:
        t.check(len(ev) == 1 and ev[0]["data"].get("reason") == reason
                and ev[0]["data"].get("exit_status") == status
                and ev[0]["data"].get("signal") is None
                and ev[0]["data"].get("sender") is None,
                f"{what}: one worker_exit event, reason {reason}, exit_status {status}",
                f"got {ev}")


def case_signal(t, d):
    what = "SIGTERM"
    id0, pos0, m0 = last_id(d), log_size(d), d.scrape()
    p = lib.spawn([lib.PYTHON, "-c", EXITER, "0"], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, text=True)
    t.require(p.stdout.readline().strip() == "ready", f"{what}: started")
    info, _, last = lib.wait_worker(d, p.pid, timeout=10.0, role="python")
    t.require(info is not None, f"{what}: pid {p.pid} tracked as python",
              f"last seen: {lib.worker_info(last, p.pid)}")
    r = subprocess.run(["/bin/sh", "-c", f"kill -TERM {p.pid}"], timeout=10)
    t.require(r.returncode == 0, f"{what}: /bin/sh sent it")
    t.require(p.wait(timeout=10) == -signal.SIGTERM, f"{what}: the process died of SIGTERM",
              f"{p.returncode}")
    logged = wait_logged(d, pos0, p.pid)
    t.require(logged, f"{what}: the daemon logged the exit", "" if logged else d.log_tail(10))
    m1 = d.scrape()
    window_check(t, d, m0, m1, pos0, p.pid, "python", "signal", what)
    ev = wait_exit_event(d, p.pid, id0)
    data = ev[0]["data"] if len(ev) == 1 else {}
    s = data.get("sender") or {}
    t.check(data.get("reason") == "signal" and data.get("signal") == "SIGTERM"
            and s.get("role") == "other" and s.get("comm") == "sh" and s.get("pid") != p.pid,
            f"{what}: one worker_exit event, SIGTERM, sent by sh (role other)", f"got {ev}")


def check_bad_queries(t, d):
    for q in ("limit=0", "limit=1025", "limit=x", "since=-1", "since=", "since=1e3",
              "type=Bad-Type", "type=" + "a" * 40):
        st, body, ct = get_json(d.port, q)
        t.check(st == 400 and isinstance(body, dict) and body.get("error")
                and (ct or "").startswith("application/json"),
                f"GET /events?{q} answers 400 with a JSON error", f"{st} {ct} {body}")
    st, body, ct = get_json(d.port, "limit=2")
    t.check(st == 200 and len(body.get("events", [])) <= 2
            and [e["id"] for e in body["events"]] == sorted((e["id"] for e in body["events"]),
                                                             reverse=True),
            "GET /events?limit=2: at most 2 events, newest first",
            f"{st} {[e['id'] for e in body.get('events', [])]}")


def body(t):
    work = lib.tempdir()
    for mode in lib.ATTACH_MODES:
        t.prefix = f"[{mode}] "
        lib.log(f"==== --bpf.attach-mode={mode}")
        with lib.Daemon(f"--bpf.attach-mode={mode}") as d:
            m = d.scrape()
            t.require(m.value("erpscope_probe_up", probe="oom") == 1, "the oom probe is up",
                      f"{m.series('erpscope_probe_up')}")
            case_killed(t, d, work)
            case_status(t, d, 3, "error")
            case_status(t, d, 0, "normal")
            case_signal(t, d)
            check_bad_queries(t, d)


if __name__ == "__main__":
    lib.main(body)
