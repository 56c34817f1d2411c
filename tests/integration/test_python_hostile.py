#!/usr/bin/python3.11
"""The Python profiler against processes that lie to it and that vanish.

One daemon at --python.sample-frequency=999:
  scribble  pyworkloads' scribble.py, under every CPython of
            pyworkloads.PYTHONS (3.11 Debian and pyenv, 3.10, 3.12, 3.13): each
            thread scribbles over its own interpreter's frame chain (a frame
            whose previous is itself, a two-frame cycle, previous pointing to
            an unreadable address or to readable junk, a caller whose f_code
            is a list, a 200-deep stack, a main thread whose previous is
            unreadable), then spins and sleeps there forever. /workers lists
            every thread; each stack starts at the thread's own function,
            holds at most --python.stack-depth (64) frames, and those that
            cannot be walked to the bottom are truncated; the CPU and off-CPU
            profiles of the worker answer, with stacks no deeper than 64.
  exiting   200 pythons (the builds in turn) each spin 50 ms in burn()
            and exit, one after another, while GET /workers (JSON and text)
            and GET /profile are fetched in a loop: every answer is a 200
            that parses; some of the exited pythons are still in the profile
            with burn() as the leaf.
  requests  malformed /profile queries (kind=bogus, seconds=-1, seconds=abc,
            worker=xyz, seconds too large to be a number of seconds) get a
            400 with a one-line reason.
The daemon stays up through all of it, /metrics still scrapes (promtool) and
has the erpscope_python_* families, and it stops cleanly.
"""

import json
import os
import subprocess
import threading
import time

import lib
import pyworkloads as pw

DEPTH = 64
N_EXIT = 200

# thread name -> (its function's qualname, must the walk be truncated)
SCRIBBLED = {
    "self_loop": ("scribbled_self_loop", True),
    "two_cycle": ("cycle_inner", True),
    "wild": ("scribbled_wild", True),
    "junk": ("scribbled_junk", True),
    "bad_code": ("scribbled_bad_code", None),  # stops or skips: either is fine
    "deep": ("deep_sleep", True),
    "main": ("scribbled_main", True),
}


def check_scribbled(t, w, tids):
    threads = {th.get("tid"): th for th in w.get("threads") or []}
    t.check(set(tids.values()) <= set(threads), "/workers lists every thread",
            f"tids {sorted(threads)}, expected {sorted(tids.values())}")
    for name, tid in tids.items():
        th = threads.get(tid)
        if th is None:
            continue
        qual, trunc = SCRIBBLED[name]
        stack = th.get("stack") or []
        fns = [str(f.get("function")) for f in stack]
        lib.log(f"  {name} (tid {tid}): truncated={th.get('truncated')} depth {len(fns)}: "
                f"{fns[:4]}{' ...' if len(fns) > 4 else ''}")
        # A thread caught in duty() (its spin) has that frame first.
        i = 1 if fns and fns[0].endswith(":duty") else 0
        t.check(len(fns) > i and fns[i].endswith(f":{qual}"),
                f"{name}: the stack starts at ...:{qual}", f"{fns[:3]}")
        t.check(len(fns) <= DEPTH, f"{name}: at most {DEPTH} frames", f"{len(fns)}")
        if trunc:
            t.check(th.get("truncated") is True, f"{name}: truncated",
                    f"{th.get('truncated')!r}")


def scribble_phase(t, d, paths):
    procs = {}
    for pyname, python in pw.PYTHONS:
        argv, env = pw.command(python, paths["scribble"])
        p = lib.spawn(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        pid, before = pw.read_ready(p)
        t.require(pid == p.pid and before, f"[{pyname}] scribble.py scribbled and started",
                  f"{before}")
        procs[pyname] = (p, json.loads(before[-1]))
    time.sleep(2.0)  # samples and off-CPU blocks on the scribbled chains
    for pyname, (p, tids) in procs.items():
        t.prefix = f"[{pyname}] "
        t.check(p.poll() is None, "scribble.py is still alive")
        w = [None]

        def listed():
            w[0] = pw.worker(pw.workers(d), p.pid)
            return w[0] is not None and len(w[0].get("threads") or []) >= len(tids)
        lib.wait_for(listed, 10.0, 0.3)
        t.require(w[0] is not None, f"/workers lists the scribbled process {p.pid}")
        ver = pw.version(dict(pw.PYTHONS)[pyname])
        t.check(w[0].get("python") == ver, f"python is \"{ver}\"", f"{w[0].get('python')!r}")
        check_scribbled(t, w[0], tids)
        for kind in ("cpu", "offcpu"):
            stacks, _, _ = pw.profile(d, kind=kind, seconds=30, worker=p.pid)
            deepest = max((len(f) for f, _ in stacks), default=0)
            lib.log(f"  {kind} profile: {len(stacks)} stacks, deepest {deepest} frames")
            t.check(stacks, f"the {kind} profile has the scribbled process's stacks")
            # root + at most DEPTH frames (+ one for a truncation mark, if any)
            t.check(deepest <= DEPTH + 2, f"{kind} stacks hold at most {DEPTH} frames",
                    f"deepest {deepest}")
        st, _, text, _ = pw.get(d, "/workers")
        t.check(st == 200 and str(p.pid) in text, "GET /workers (text) lists it")
    t.prefix = ""
    t.check(d.alive(), "the daemon survived the scribbled processes")
    return procs


def exiting_phase(t, d, paths):
    pids, errors, fetched = [], [], [0]
    stop = threading.Event()

    def spawner():
        try:
            for i in range(N_EXIT):
                python = pw.PYTHONS[i % len(pw.PYTHONS)][1]
                argv, env = pw.command(python, paths["burn"], 0.05)
                p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
                pids.append(p.pid)
                if p.wait(timeout=30) != 0:
                    errors.append(f"burn.py {p.pid} exited with {p.returncode}")
        except Exception as e:
            errors.append(f"spawner: {e!r}")
        finally:
            stop.set()

    th = threading.Thread(target=spawner, daemon=True)
    t0 = time.monotonic()
    th.start()
    while not stop.is_set():
        for path in ("/workers?format=json", "/workers", "/profile?kind=cpu&seconds=5",
                     "/profile?kind=offcpu&seconds=5&lines=1"):
            try:
                st, _, body, _ = pw.get(d, path, timeout=10)
                fetched[0] += 1
                if st != 200:
                    errors.append(f"GET {path}: {st} {body[:200]!r}")
                elif "format=json" in path:
                    json.loads(body)["workers"]
                elif path.startswith("/profile"):
                    pw.parse_folded(body)
            except Exception as e:
                errors.append(f"GET {path}: {e!r}")
            if not d.alive():
                errors.append("the daemon died")
                stop.set()
                break
    th.join(timeout=60)
    took = time.monotonic() - t0
    lib.log(f"{len(pids)} short-lived pythons in {took:.1f}s; {fetched[0]} requests meanwhile")
    t.check(len(pids) == N_EXIT, f"{N_EXIT} short-lived pythons ran", f"{len(pids)}")
    t.check(not errors, "every /workers and /profile request during the churn got a 200 "
            "that parses", f"{len(errors)} problems: {errors[:5]}")
    t.check(d.alive(), "the daemon survived the churn")
    stacks, _, _ = pw.profile(d, kind="cpu", seconds=int(took) + 30)
    burned = {f[0] for f, _ in stacks if f[-1] == "__main__:burn"}
    ours = {f"python[{x}]" for x in pids}
    lib.log(f"{len(burned & ours)}/{N_EXIT} of the exited pythons have burn() samples in the "
            "profile")
    t.check(burned & ours, "exited short-lived pythons keep their samples in the profile",
            f"{len(burned & ours)} of {N_EXIT}")
    t.check(burned <= ours, "every burn() stack's root is one of them (python[<pid>])",
            f"{sorted(burned - ours)[:5]}")


BAD = [
    "/profile?kind=bogus",
    "/profile?kind=cpu&seconds=-1",
    "/profile?kind=cpu&seconds=abc",
    "/profile?kind=cpu&worker=xyz",
    "/profile?kind=offcpu&seconds=99999999999999999999999999",
]


def requests_phase(t, d):
    for path in BAD:
        st, _, body, _ = pw.get(d, path)
        text = body.rstrip("\n")
        t.check(st == 400 and text and "\n" not in text,
                f"GET {path} -> 400 with a one-line reason", f"{st} {body[:200]!r}")
    t.check(d.alive(), "the daemon is still up after the malformed requests")
    st, _, _, _ = pw.get(d, "/profile?kind=cpu&seconds=10")
    t.check(st == 200, "and a good /profile request still works", f"{st}")


def body(t):
    paths = pw.write_all(lib.tempdir())
    for _, python in pw.PYTHONS:
        t.require(os.access(python, os.X_OK), f"{python} is installed")
    with lib.Daemon("--python.sample-frequency=999") as d:
        procs = scribble_phase(t, d, paths)
        exiting_phase(t, d, paths)
        requests_phase(t, d)

        m = d.scrape()
        for fam, typ in (("erpscope_python_processes", "gauge"),
                         ("erpscope_python_function_cpu_seconds_total", "counter"),
                         ("erpscope_python_gc_pause_seconds", "histogram"),
                         ("erpscope_python_gc_collected_objects_total", "counter")):
            t.check(m.types.get(fam) == typ, f"/metrics still has {fam} ({typ})",
                    f"{m.types.get(fam)!r}")
        n = m.value("erpscope_python_processes", version="3.11")
        t.check(n is not None and n >= 3, "erpscope_python_processes{version=\"3.11\"} counts "
                "both scribbled processes and this test", f"{n}")
        for pyname, python in pw.PYTHONS[2:]:
            ver = pw.version(python)
            n = m.value("erpscope_python_processes", version=ver)
            t.check(n is not None and n >= 1, f"erpscope_python_processes{{version=\"{ver}\"}} "
                    "counts the scribbled process", f"{n}")
        ws = pw.workers(d)
        for pyname, (p, tids) in procs.items():
            w = pw.worker(ws, p.pid)
            t.check(w is not None and p.poll() is None,
                    f"[{pyname}] the scribbled process is still listed at the end")
            lib.kill_group(p)
        t.check(d.alive(), "the daemon is up at the end")


if __name__ == "__main__":
    lib.main(body)
