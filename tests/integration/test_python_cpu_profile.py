#!/usr/bin/python3.11
"""The Python CPU profile against a workload whose split is known.

Under each CPython of pyworkloads.PYTHONS in turn (Debian's 3.11, with USDT;
pyenv's 3.11, 3.10, 3.12, 3.13, without), under one daemon at the default
49 Hz, pyworkloads' hot.py spends 5 s of CPU in two pure-Python leaf
functions, hot_a 70% and hot_b 30% (the same loop, 7000 and 3000 iterations
per round; the workload measures its own split with the thread's CPU
clock), then waits on stdin. Then, for each:
  GET /profile?kind=cpu&seconds=30&worker=<pid>
      answers at once (the last 30 s, not the next); every stack's root is
      python[<pid>]; hot_a's stacks are python[<pid>];__main__:<module>;
      __main__:hot_a; hot_a / (hot_a + hot_b) samples is 0.70 +/- 0.10; all
      samples ~ the workload's CPU seconds x 49 (+/- 25%)
  &lines=1
      the same samples, hot_a's frame names hot.py's path and hot_a's def
      line, hot_b's likewise
  &role=python keeps them, &role=odoo_cron drops them
  erpscope_python_function_cpu_seconds_total{role="python",
      function="__main__:hot_a"} grows by hot_a's CPU seconds (~3.5 s) +/- 25%
  erpscope_python_processes{version="<its version>"} >= 1 (hot.py; >= 2 on
      3.11, with this test)
  seconds=2, 4 s after the work ended: no hot_a or hot_b sample
  after the process exits: its samples are still there (seconds=60)
"""

import json
import os
import subprocess
import time

import lib
import pyworkloads as pw

HZ = 49


def run(t, d, pyname, python, paths):
    t.prefix = f"[{pyname}] "
    lib.log(f"==== {python}")
    script = paths["hot"]
    fa0 = d.scrape().value("erpscope_python_function_cpu_seconds_total", role="python",
                           function="__main__:hot_a") or 0.0
    argv, env = pw.command(python, script, 5.0)
    p = lib.spawn(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid, _ = pw.read_ready(p)
    t.require(pid == p.pid, "hot.py started", f"ready {pid}, spawned {p.pid}")
    r = json.loads(p.stdout.readline())
    t_done = time.monotonic()
    lib.log("workload says: " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else
                                         f"{k}={v}" for k, v in r.items()))
    t.require(abs(r["share_a"] - 0.70) < 0.03, "the workload's own split is 70/30",
              f"hot_a share of CPU {r['share_a']:.3f}")
    if r["cpu"] < 0.8 * r["wall"]:
        lib.log(f"WARNING: busy machine: 5 s of work got {r['cpu']:.2f}s of CPU")

    root = f"python[{pid}]"
    q = dict(kind="cpu", seconds=30, worker=pid)

    def hot_counts():
        stacks, _, _ = pw.profile(d, **q)
        s = pw.leaf_sums(stacks)
        return s.get("__main__:hot_a", 0), s.get("__main__:hot_b", 0)

    # The daemon may fold samples in on a timer: wait until they stop growing.
    last = [None]

    def settled():
        c = hot_counts()
        ok = c == last[0] and sum(c) > 0
        last[0] = c
        return ok
    lib.wait_for(settled, 10.0, 1.0)

    stacks, body, took = pw.profile(d, **q)
    t.check(took < 5.0, "GET /profile?seconds=30 answers at once (the last 30 s, not "
            "the next)", f"took {took:.2f}s")
    lib.log("profile:\n" + "\n".join(body.splitlines()[:15]))
    roots = {f[0] for f, _ in stacks}
    t.check(roots == {root}, f"every stack's root is {root}", f"roots {sorted(roots)[:5]}")
    leaves = pw.leaf_sums(stacks)
    a, b = leaves.get("__main__:hot_a", 0), leaves.get("__main__:hot_b", 0)
    total = sum(v for _, v in stacks)
    t.require(a + b > 0, "hot_a and hot_b have samples", f"leaves {leaves}")
    t.near(a / (a + b), 0.70, 0, "hot_a's share of hot_a + hot_b samples is 70/30",
           abs_tol=0.10)
    t.near(total, r["cpu"] * HZ, 0.25, f"all samples ~ {r['cpu']:.2f} CPU seconds x {HZ} Hz")
    paths_a = {tuple(f) for f, _ in stacks if f[-1] == "__main__:hot_a"}
    t.check(paths_a == {(root, "__main__:<module>", "__main__:hot_a")},
            "hot_a's stack is root;__main__:<module>;__main__:hot_a",
            f"{sorted(paths_a)[:3]}")
    paths_b = {tuple(f) for f, _ in stacks if f[-1] == "__main__:hot_b"}
    t.check(paths_b == {(root, "__main__:<module>", "__main__:hot_b")},
            "hot_b's stack is root;__main__:<module>;__main__:hot_b",
            f"{sorted(paths_b)[:3]}")

    # lines=1: module:qualname (file:firstlineno)
    ls, lbody, _ = pw.profile(d, lines=1, **q)
    lib.log("profile with lines=1:\n" + "\n".join(lbody.splitlines()[:8]))
    for fn in ("hot_a", "hot_b"):
        want = (f"__main__:{fn}", script, pw.def_line("hot", fn))
        got = {pw.split_lines_frame(f[-1]) for f, _ in ls
               if pw.split_lines_frame(f[-1])[0] == f"__main__:{fn}"}
        t.check(got == {want}, f"with lines=1, {fn}'s frame names {os.path.basename(script)} "
                f"and its def line {want[2]}", f"got {sorted(got, key=str)[:3]}")
    la = pw.leaf_sums(ls, strip_lines=True)
    t.check((la.get("__main__:hot_a", 0), la.get("__main__:hot_b", 0)) == (a, b),
            "with lines=1, the same samples", f"{la} vs hot_a={a} hot_b={b}")

    rs, _, _ = pw.profile(d, role="python", **q)
    t.check(sum(v for _, v in rs) == total, "role=python keeps the worker's samples",
            f"{sum(v for _, v in rs)} vs {total}")
    rs, _, _ = pw.profile(d, role="odoo_cron", **q)
    t.check(not rs, "role=odoo_cron drops them", f"{rs[:3]}")

    m = d.scrape()
    fa = m.value("erpscope_python_function_cpu_seconds_total", role="python",
                 function="__main__:hot_a")
    fb = m.value("erpscope_python_function_cpu_seconds_total", role="python",
                 function="__main__:hot_b")
    lib.log(f"erpscope_python_function_cpu_seconds_total: hot_a {fa} (was {fa0}), "
            f"hot_b {fb}; the workload measured hot_a {r['cpu_a']:.3f}s, "
            f"hot_b {r['cpu_b']:.3f}s")
    t.near(fa - fa0 if fa is not None else None, r["cpu_a"], 0.25,
           "erpscope_python_function_cpu_seconds_total"
           "{role=\"python\",function=\"__main__:hot_a\"} grows by hot_a's CPU seconds")
    t.check(m.types.get("erpscope_python_function_cpu_seconds_total") == "counter",
            "erpscope_python_function_cpu_seconds_total is a counter",
            f"{m.types.get('erpscope_python_function_cpu_seconds_total')}")
    ver = pw.version(python)
    least = 2 if ver == "3.11" else 1
    n = m.value("erpscope_python_processes", version=ver)
    t.check(n is not None and n >= least, f"erpscope_python_processes{{version=\"{ver}\"}} "
            f"counts hot.py{' and this test' if least == 2 else ''}", f"{n}; series "
            f"{m.series('erpscope_python_processes')}")

    time.sleep(max(0.0, t_done + 4.0 - time.monotonic()))
    recent, _, _ = pw.profile(d, kind="cpu", seconds=2, worker=pid)
    rl = pw.leaf_sums(recent)
    t.check(not rl.get("__main__:hot_a") and not rl.get("__main__:hot_b"),
            "seconds=2, 4 s after the work ended: no hot_a or hot_b sample (the LAST "
            "N seconds)", f"{rl}")

    p.stdin.close()
    t.require(p.wait(timeout=10) == 0, "hot.py exits")
    time.sleep(1.5)
    after, _, _ = pw.profile(d, kind="cpu", seconds=60, worker=pid)
    al = pw.leaf_sums(after)
    ga, gb = al.get("__main__:hot_a", 0), al.get("__main__:hot_b", 0)
    t.check(abs(ga - a) <= 1 and abs(gb - b) <= 1,
            "after the process exited, its samples are still in the profile",
            f"hot_a {ga} (was {a}), hot_b {gb} (was {b})")


def body(t):
    paths = pw.write_all(lib.tempdir())
    for python in pw.MISSING:
        lib.log(f"{python} is not installed: not run")
    with lib.Daemon() as d:
        for pyname, python in pw.PYTHONS:
            t.require(os.access(python, os.X_OK), f"{python} is installed")
            run(t, d, pyname, python, paths)


if __name__ == "__main__":
    lib.main(body)
