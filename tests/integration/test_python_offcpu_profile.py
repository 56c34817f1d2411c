#!/usr/bin/python3.11
"""The Python off-CPU profile against blocks whose length is known.

pyworkloads' sleeper.py runs under every CPython of pyworkloads.PYTHONS at
once (Debian's and pyenv's 3.11, pyenv's 3.10, 3.12, 3.13), under one daemon
with the default 10 ms threshold: first
quick_nap() sleeps 10,000 x 0.5 ms (each block far under the threshold,
~6 s in all), then blocked_here() sleeps 1 s, twenty times; each workload
measures its own blocks and then waits on stdin. For each worker:
  GET /profile?kind=offcpu&seconds=60&worker=<pid>
      stacks are <role>[<pid>];...; the stacks whose leaf is
      __main__:blocked_here are python[<pid>];__main__:<module>;
      __main__:blocked_here and their values (microseconds) sum to the 20 s
      the workload measured, +/- 10%
      quick_nap's sub-threshold blocks add (almost) nothing: under 0.25 s of
      its ~6 s
  GET /profile?kind=offcpu&seconds=60&role=python has every worker's stacks
A block is walked when its thread is switched back in; this VM's kernel
runs no BPF program on a tracepoint while a thread of PID 1 (its agent) is
current, so a switch-in right after one goes unseen: when the thread
blocks again (sleeping the next second here) that block is walked
(offcpu_late, logged), and the sums stay exact (a CI run lost 3 of one
worker's 20 before it was).
Twice: with every probe, where the sched probe's sched_switch program hands
the long blocks to the Python probe's walk by tail call, and with
--probes=python alone, where the Python probe runs its own (the daemon's
debug log says which ran).
"""

import json
import os
import re
import subprocess

import lib
import pyworkloads as pw


def body(t):
    paths = pw.write_all(lib.tempdir())
    for args, hooked in (((), 1), (("--probes=python",), 0)):
        t.prefix = ""
        lib.log(f"---- daemon {' '.join(args) or 'with every probe'}")
        run(t, paths, args, hooked)


def run(t, paths, args, hooked):
    with lib.Daemon(*args) as d:
        t.check(f"offcpu_on_sched_switch={hooked}" in d.log_text(),
                "the off-CPU walk runs " + ("from the sched probe's sched_switch program"
                                            if hooked else "from the Python probe's own program"))
        procs = {}
        for pyname, python in pw.PYTHONS:
            t.require(os.access(python, os.X_OK), f"{python} is installed")
            argv, env = pw.command(python, paths["sleeper"])
            p = lib.spawn(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True)
            pid, _ = pw.read_ready(p)
            t.require(pid == p.pid, f"[{pyname}] sleeper.py started")
            procs[pyname] = p
        res = {}
        for pyname, p in procs.items():
            line = p.stdout.readline()
            t.require(line, f"[{pyname}] sleeper.py finished its sleeps", f"exit {p.poll()}")
            res[pyname] = json.loads(line)
            lib.log(f"[{pyname}] workload says: {res[pyname]}")

        def blocked_sum(pid):
            stacks, _, _ = pw.profile(d, kind="offcpu", seconds=60, worker=pid)
            return pw.leaf_sums(stacks).get("__main__:blocked_here", 0)

        for pyname, p in procs.items():
            t.prefix = f"[{' '.join(args) or 'every probe'}] [{pyname}] "
            pid, r = p.pid, res[pyname]
            want = r["blocked"] * 1e6
            # The last block ended just now: give it time to be folded in.
            lib.wait_for(lambda: blocked_sum(pid) >= 0.9 * want, 5.0, 0.5)
            stacks, body_, took = pw.profile(d, kind="offcpu", seconds=60, worker=pid)
            lib.log("offcpu profile:\n" + "\n".join(body_.splitlines()[:12]))
            t.check(took < 5.0, "GET /profile answers at once", f"{took:.2f}s")
            root = f"python[{pid}]"
            roots = {f[0] for f, _ in stacks}
            t.check(roots == {root}, f"every stack's root is {root}", f"{sorted(roots)[:5]}")
            leaves = pw.leaf_sums(stacks)
            t.near(leaves.get("__main__:blocked_here", 0), want, 0.10,
                   f"blocked_here's stacks sum to the {r['blocked']:.2f} s it slept (in us)")
            paths_b = {tuple(f) for f, _ in stacks if f[-1] == "__main__:blocked_here"}
            t.check(paths_b == {(root, "__main__:<module>", "__main__:blocked_here")},
                    "blocked_here's stack is root;__main__:<module>;__main__:blocked_here",
                    f"{sorted(paths_b)[:3]}")
            quick = leaves.get("__main__:quick_nap", 0)
            t.check(quick < 250_000, f"quick_nap's 10,000 sub-threshold blocks "
                    f"({r['quick']:.2f} s in all) add under 0.25 s",
                    f"{quick} us in {sum(1 for f, _ in stacks if f[-1] == '__main__:quick_nap')}"
                    " stacks")
        t.prefix = ""
        # What a lost block would leave behind (a CI run once missed 6 of one
        # worker's 20): drops on the way, and BPF runs the kernel skipped.
        text = lib.http_get(d.port)[2].decode(errors="replace")
        lib.log("loss counters: " + "; ".join(
            ln for ln in text.splitlines() if not ln.startswith("#") and re.match(
                r"erpscope_(python_profile_(events|counts_dropped)|ringbuf_drops|"
                r"bpf_map_update_errors|events_dropped)", ln)))
        held = lib.held_prog_ids(d.pid)
        lib.log("recursion misses: " + ", ".join(
            f"{p['name']} {p.get('recursion_misses', 0)}" for i, p in lib.es_progs().items()
            if i in held and p["name"].startswith(("es_py", "es_switch"))))
        both, _, _ = pw.profile(d, kind="offcpu", seconds=60, role="python")
        have = {f[0] for f, _ in both if f[-1] == "__main__:blocked_here"}
        want = {f"python[{p.pid}]" for p in procs.values()}
        t.check(want <= have, "role=python without a worker filter has every worker's "
                "blocked_here stacks", f"roots with blocked_here: {sorted(have)}")
        for p in procs.values():
            p.stdin.close()
            p.wait(timeout=10)


if __name__ == "__main__":
    lib.main(body)
