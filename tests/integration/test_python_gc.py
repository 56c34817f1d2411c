#!/usr/bin/python3.11
"""Python GC pauses against collections whose number and yield are known.

pyworkloads' gc.py disables automatic collection, then on command runs
gc.collect() (generation 2) after making reference cycles, and prints what
each call returned: the objects it found unreachable, which is the count the
python:gc__done USDT probe reports. Under Debian's build (USDT probes):
  a first "probe" collection shows up in erpscope_python_gc_pause_seconds for
  its worker (the probes are attached), then, between two scrapes, 100
  collections of 10 two-list cycles each:
    erpscope_python_gc_pause_seconds_count{generation="2"} rises by exactly
      100, generations "0" and "1" by 0
    _sum rises by more than 0 and no more than the loop's wall time
    erpscope_python_gc_collected_objects_total rises by exactly the sum of
      what the 100 gc.collect() calls returned (2000)
  the series are labelled role="python", worker="<pid>"
Under pyenv's builds (3.11, 3.10, 3.12, 3.13: no USDT) the same workload
has no GC series and /workers says gc "unavailable: ...".
"""

import json
import os
import subprocess
import time

import lib
import pyworkloads as pw

PAUSE = "erpscope_python_gc_pause_seconds"
COLLECTED = "erpscope_python_gc_collected_objects_total"


def counts(m, pid):
    """({generation: pause count}, pause sum, collected) of worker pid."""
    c = {g: 0.0 for g in ("0", "1", "2")}
    s = 0.0
    for labels, v in m.series(PAUSE + "_count", worker=str(pid)):
        c[labels.get("generation")] = c.get(labels.get("generation"), 0.0) + v
    for _, v in m.series(PAUSE + "_sum", worker=str(pid)):
        s += v
    return c, s, m.total(COLLECTED, worker=str(pid))


def command(p, cmd):
    p.stdin.write(cmd + "\n")
    p.stdin.flush()
    line = p.stdout.readline()
    if not line:
        raise lib.Failure(f"gc.py exited ({p.poll()}) on {cmd!r}")
    return json.loads(line)


def body(t):
    paths = pw.write_all(lib.tempdir())
    for _, python in pw.PYTHONS:
        t.require(os.access(python, os.X_OK), f"{python} is installed")
    with lib.Daemon() as d:
        procs = {}
        for pyname, python in pw.PYTHONS:
            argv, env = pw.command(python, paths["gc"])
            p = lib.spawn(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True)
            pid, _ = pw.read_ready(p)
            t.require(pid == p.pid, f"[{pyname}] gc.py started")
            procs[pyname] = p

        # Debian's build
        t.prefix = "[debian] "
        p = procs["debian"]
        pid = p.pid
        w = [None]

        def listed():
            w[0] = pw.worker(pw.workers(d), pid)
            return w[0] is not None and w[0].get("gc") == "available"
        lib.wait_for(listed, 10.0, 0.2)
        t.require(w[0] is not None and w[0].get("gc") == "available",
                  f"/workers lists pid {pid} with gc \"available\"", f"{w[0]}")

        # Probes may attach a little after the process is listed: collect until
        # one shows.
        seen = False
        for _ in range(10):
            command(p, "probe")
            if lib.wait_for(lambda: sum(counts(d.scrape(), pid)[0].values()) >= 1, 1.0, 0.1):
                seen = True
                break
        t.require(seen, "a gc.collect() shows up in erpscope_python_gc_pause_seconds_count")
        time.sleep(0.3)
        m0 = d.scrape()
        c0, s0, n0 = counts(m0, pid)
        lib.log(f"before: counts {c0} sum {s0} collected {n0}")
        r = command(p, "go")
        lib.log(f"workload: total {r['total']} in {r['took']:.4f}s, per call {set(r['found'])}, "
                f"gc counts {r['counts']}, enabled {r['enabled']}")
        t.require(len(r["found"]) == 100 and not r["enabled"],
                  "100 collections ran with automatic collection off")

        def done():
            m = d.scrape()
            return m if counts(m, pid)[0]["2"] >= c0["2"] + 100 else None
        m1 = lib.wait_for(done, 5.0, 0.2) or d.scrape()
        c1, s1, n1 = counts(m1, pid)
        lib.log(f"after: counts {c1} sum {s1} collected {n1}")
        t.check(c1["2"] - c0["2"] == 100, "generation=\"2\" pause count rises by exactly 100",
                f"{c0['2']} -> {c1['2']}")
        t.check(c1["0"] == c0["0"] and c1["1"] == c0["1"],
                "generations \"0\" and \"1\" do not move (no automatic collection)",
                f"{c0} -> {c1}")
        t.between(s1 - s0, 1e-9, r["took"] + 0.01,
                  "the pauses' _sum rises by more than 0, no more than the loop lasted")
        t.check(n1 - n0 == r["total"], f"{COLLECTED} rises by exactly what gc.collect() "
                f"returned ({r['total']})", f"{n0} -> {n1}")
        roles = {(lab.get("role"), lab.get("worker")) for lab, _ in
                 m1.series(PAUSE + "_count", worker=str(pid)) + m1.series(COLLECTED,
                                                                          worker=str(pid))}
        t.check(roles == {("python", str(pid))}, "labelled role=\"python\", worker=\"<pid>\"",
                f"{roles}")
        gens = {lab.get("generation") for lab, _ in m1.series(PAUSE + "_count", worker=str(pid))}
        t.check(gens <= {"0", "1", "2"} and "2" in gens, "generations are \"0\", \"1\", \"2\"",
                f"{gens}")
        t.check(m1.types.get(PAUSE) == "histogram" and m1.types.get(COLLECTED) == "counter",
                f"{PAUSE} is a histogram, {COLLECTED} a counter",
                f"{m1.types.get(PAUSE)} {m1.types.get(COLLECTED)}")

        # pyenv's builds: no USDT, no GC series.
        for pyname, q in procs.items():
            if pyname == "debian":
                continue
            t.prefix = f"[{pyname}] "
            command(q, "probe")
            r = command(q, "go")
            t.require(r["total"] == 2000, "the same 100 collections ran", f"{r['total']}")
        time.sleep(1.0)
        m = d.scrape()
        ws = pw.workers(d)
        for pyname, q in procs.items():
            if pyname == "debian":
                continue
            t.prefix = f"[{pyname}] "
            left = m.series(PAUSE + "_count", worker=str(q.pid)) + m.series(COLLECTED,
                                                                           worker=str(q.pid))
            t.check(not left, "no GC series for a build without USDT", f"{left}")
            wq = pw.worker(ws, q.pid)
            t.check(wq is not None and str(wq.get("gc", "")).startswith("unavailable"),
                    "/workers says gc \"unavailable: ...\"", f"{wq and wq.get('gc')!r}")
        t.prefix = ""
        for x in procs.values():
            x.stdin.close()
            x.wait(timeout=10)


if __name__ == "__main__":
    lib.main(body)
