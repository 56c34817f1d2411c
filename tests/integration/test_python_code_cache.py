#!/usr/bin/python3.11
"""The Python probe's code-object caches: names stored once, freed with the process.

The daemon names a sampled frame from the code object the process ran,
read once per (process, code object) and cached; a stack holds its frames'
texts for GET /profile's window. Forked workers of one server run the same
code: each caches its own code objects (their addresses are the
process's), but the texts (file, module, function; a frame's text) are one
copy in the daemon for all of them.

Workload (Debian's python3.11 as user nobody; one daemon at
--python.sample-frequency=499 --python.users=nobody, so that no other
Python on the host, this test's own included, is read meanwhile): a parent
compiles FUNCS (3000) generated functions f0 .. f2999 from one file
(gen_funcs.py, never written), forks one worker that calls them, 5 nested
at a time, picked at random (a fixed order would alias with the sampling),
on CPU for 6 s (CPU clock), then on a word from the test WORKERS - 1 (3)
more that do the same.

  after the first worker: erpscope_python_code_objects rose by >= FUNCS x
      0.9 (~3000 samples of 5 generated frames see nearly all) and
      erpscope_python_names_bytes by >= FUNCS x 0.9 x 60 (a name and a
      frame text with file and line for each)
  after the 3 others: code objects rose by >= 3 x FUNCS x 0.9 more (each
      process's own), names by <= 20% of what the first added (a copy each
      would be 300%)
  GET /profile?kind=cpu&seconds=60: >= 100 stacks with gen_funcs:f<i>
      frames in every worker; with lines=1 they name gen_funcs.py and a line
  when the workers and their parent exit: the code objects are where they
      were before; the names shrink (the code objects' go) but stay above
      that (the stacks, and their frames' texts, stay for the profile window)

Then a daemon with --python.profile-max-stacks=100 and 4 workers for 3 s
of CPU each over 3 functions (3^5 = 243 possible stacks, each held one
sampled in every worker every second): 100 stacks held
(erpscope_python_profile_stacks), what came for others counted in
erpscope_python_profile_counts_dropped_total{reason="stack_limit"}; past
800 records (8 per stack) the oldest go, counted (reason="window_full");
GET /profile answers with 1..100 distinct stacks in <= 800 lines, samples
of the 3 workers that ran last among them.
"""

import os
import pwd
import subprocess
import time

import lib
import pyworkloads as pw

FUNCS = 3000
WORKERS = 4
CPU_S = 6.0
HZ = 499
USER = "nobody"
LIMIT = 100
LIMIT_FUNCS = 3

WORKLOAD = r'''
import os, random, sys, time

FUNCS, WORKERS, CPU_S = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen_funcs.py")
src = "\n".join(f"def f{i}(g):\n    return g()" for i in range(FUNCS))
ns = {}
exec(compile(src, path, "exec"), ns)
fs = [ns[f"f{i}"] for i in range(FUNCS)]


def spin():
    t = time.thread_time() + 0.0005
    while time.thread_time() < t:
        pass


def work():
    # Random picks: a fixed order would alias with the sampling period.
    rnd = random.Random(os.getpid())
    end = time.thread_time() + CPU_S
    while time.thread_time() < end:
        a, b, c, d, e = (fs[rnd.randrange(FUNCS)] for k in range(5))
        a(lambda: b(lambda: c(lambda: d(lambda: e(spin)))))


kids = []


def fork(n):
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            sys.stdin.close()
            work()
            os.write(1, f"done {os.getpid()}\n".encode())
            time.sleep(3600)
            os._exit(0)
        pids.append(pid)
    kids.extend(pids)
    print("ready " + " ".join(map(str, pids)), flush=True)


fork(1)
sys.stdin.readline()
fork(WORKERS - 1)
sys.stdin.read()
for k in kids:
    os.kill(k, 9)
    os.waitpid(k, 0)
'''


def gauges(d):
    m = d.scrape()
    return (m.value("erpscope_python_code_objects"),
            m.value("erpscope_python_names_bytes"))


def settle(d):
    """The profile drains once a second: the gauges once they stop moving."""
    last = [None]

    def settled():
        g = gauges(d)
        ok = g == last[0]
        last[0] = g
        return ok
    lib.wait_for(settled, 15.0, 1.5)
    return gauges(d)


def start_workers(t, p, n):
    line = p.stdout.readline().split()
    t.require(line and line[0] == "ready", f"the workload forked {n} worker(s)", f"{line}")
    kids = [int(x) for x in line[1:]]
    done = [p.stdout.readline().split() for _ in kids]
    t.require(all(x and x[0] == "done" for x in done), "every worker did its CPU work",
              f"{done}")
    return kids


def body(t):
    tmp = lib.tempdir()
    os.chmod(tmp, 0o755)
    script = os.path.join(tmp, "codes.py")
    with open(script, "w") as f:
        f.write(WORKLOAD)
    os.chmod(script, 0o644)
    nobody = pwd.getpwnam(USER)
    with lib.Daemon(f"--python.sample-frequency={HZ}", f"--python.users={USER}") as d:
        time.sleep(1.0)
        o0, b0 = gauges(d)
        t.require(o0 is not None and b0 is not None,
                  "erpscope_python_code_objects and erpscope_python_names_bytes are "
                  "exported", f"{o0} {b0}")
        lib.log(f"before: code objects {o0:.0f}, names {b0:.0f} bytes")
        p = lib.spawn([pw.DEBIAN, script, str(FUNCS), str(WORKERS), str(CPU_S)],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/",
                      user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
        kids = start_workers(t, p, 1)
        o1, b1 = settle(d)
        lib.log(f"one worker: code objects {o1:.0f} (+{o1 - o0:.0f}), names {b1:.0f} bytes "
                f"(+{b1 - b0:.0f})")
        t.check(o1 - o0 >= FUNCS * 0.9,
                f"the first worker's code objects were read: >= {FUNCS} x 0.9", f"+{o1 - o0:.0f}")
        t.check(b1 - b0 >= FUNCS * 0.9 * 60,
                f"with their names and frames: >= {FUNCS} x 0.9 x 60 bytes", f"+{b1 - b0:.0f}")

        p.stdin.write("more\n")
        p.stdin.flush()
        kids += start_workers(t, p, WORKERS - 1)
        o2, b2 = settle(d)
        lib.log(f"{WORKERS} workers: code objects {o2:.0f} (+{o2 - o1:.0f}), names {b2:.0f} bytes "
                f"(+{b2 - b1:.0f}); daemon RssAnon {lib_rss_anon(d.pid) / 1024:.1f} MiB")
        t.check(o2 - o1 >= (WORKERS - 1) * FUNCS * 0.9,
                f"each further worker's code objects were read: >= {WORKERS - 1} x {FUNCS} x 0.9",
                f"+{o2 - o1:.0f}")
        t.check(b2 - b1 <= 0.2 * (b1 - b0),
                f"their names are the first worker's, stored once: the {WORKERS - 1} others add "
                f"<= 20% of its {b1 - b0:.0f} bytes (each a copy would add 100%)",
                f"+{b2 - b1:.0f}")

        stacks, _, _ = pw.profile(d, kind="cpu", seconds=60)
        seen = {}
        for frames, _ in stacks:
            if any(f.startswith("gen_funcs:f") for f in frames[1:]):
                seen[frames[0]] = seen.get(frames[0], 0) + 1
        t.check(all(seen.get(f"python[{k}]", 0) >= 100 for k in kids),
                "every worker's profile names the generated frames gen_funcs:f<i> (>= 100 stacks)",
                f"stacks with them per root: {seen}")
        ls, _, _ = pw.profile(d, kind="cpu", seconds=60, lines=1, worker=kids[-1])
        want = f" ({os.path.join(tmp, 'gen_funcs.py')}:"
        lf = [f for frames, _ in ls for f in frames if f.startswith("gen_funcs:f")]
        t.check(lf and all(want in f for f in lf),
                f"with lines=1 the same frames name gen_funcs.py and a line", f"{lf[:3]}")

        p.stdin.close()
        t.require(p.wait(timeout=20) == 0, "the workload and its workers exit")

        lib.wait_for(lambda: gauges(d)[0] == o0, 20.0, 0.5)
        o3, b3 = gauges(d)
        lib.log(f"after: code objects {o3:.0f}, names {b3:.0f} bytes")
        t.check(o3 == o0, "when the processes exit, their code caches go",
                f"code objects {o3:.0f} (was {o0:.0f})")
        # The stacks stay for GET /profile's window, and their frames' texts with them.
        t.check(b0 < b3 < b2, "the code objects' names go with them; the held stacks' "
                "frames stay for the profile window", f"names {b3:.0f} bytes (was {b2:.0f})")
    limits(t, script, nobody)


def limits(t, script, nobody):
    """A daemon that holds at most LIMIT stacks and 8 x LIMIT records, 4 workers
    making LIMIT_FUNCS^5 distinct stacks, each sampled in every worker."""
    with lib.Daemon(f"--python.sample-frequency={HZ}", f"--python.users={USER}",
                    f"--python.profile-max-stacks={LIMIT}") as d:
        p = lib.spawn([pw.DEBIAN, script, str(LIMIT_FUNCS), str(WORKERS), "3"],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/",
                      user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
        kids = start_workers(t, p, 1)
        p.stdin.write("more\n")
        p.stdin.flush()
        kids += start_workers(t, p, WORKERS - 1)
        settle(d)
        m = d.scrape()
        held = m.value("erpscope_python_profile_stacks")
        over = m.value("erpscope_python_profile_counts_dropped_total", reason="stack_limit")
        full = m.value("erpscope_python_profile_counts_dropped_total", reason="window_full")
        lib.log(f"--python.profile-max-stacks={LIMIT}: {held} stacks held; counts dropped: "
                f"{over} at the stack limit, {full} records gone early")
        t.check(held == LIMIT, f"with --python.profile-max-stacks={LIMIT}, {LIMIT} stacks are held",
                f"{held}")
        t.check(over and over > 0, "what came for further stacks is dropped and counted "
                "(reason=\"stack_limit\")", f"{over}")
        t.check(full and full > 0, f"past {8 * LIMIT} records the oldest go, counted "
                "(reason=\"window_full\")", f"{full}")
        stacks, _, _ = pw.profile(d, kind="cpu", seconds=60)
        distinct = {tuple(f[1:]) for f, _ in stacks}
        roots = {f[0] for f, _ in stacks}
        t.check(0 < len(distinct) <= LIMIT and len(stacks) <= 8 * LIMIT,
                f"GET /profile answers from what is held: 1..{LIMIT} distinct stacks, "
                f"<= {8 * LIMIT} lines", f"{len(distinct)} stacks, {len(stacks)} lines")
        t.check({f"python[{k}]" for k in kids[1:]} <= roots,
                "with samples of the workers that ran last (the first one's may be the "
                "records that went)", f"{sorted(roots)}")
        p.stdin.close()
        t.require(p.wait(timeout=20) == 0, "the workload exits")


def lib_rss_anon(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


if __name__ == "__main__":
    lib.main(body)
