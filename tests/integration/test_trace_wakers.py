#!/usr/bin/python3.11
"""Traces: untracked processes that wake a tracked thread (`--probes=sched`).

  - with no recording running, the daemon's sched_waking program (es_waking)
    is loaded but not attached: no BPF link of it (bpftool link), before the
    first recording and after it; inside a recording it has exactly one
  - a worker titled `odoo: WorkerHTTP <pid>` (tracked) reads a pipe 5 times;
    an untracked bash writes one byte to it every 0.5 s, 5 times, inside an
    8 s recording (3 s of it needed; room for a loaded machine): the trace
    has exactly 5 sched_waking ftrace events whose woken pid is the worker,
    each with that bash as the waker (FtraceEvent.pid), the bash has a
    process track `other <pid> <cmdline>` with its thread under it, and the
    worker's state just before each is interruptible sleep (the first: none,
    it slept since before the recording), the next one running before the
    read returns (no runnable state written: the sched_waking begins it); the
    bash is running on the waking's CPU at each (a generic state from the
    start of its run), and leaves that state later (its switch-out)
  - then it sleeps 10 x 50 ms (time.sleep: woken by a timer IRQ) while
    untracked spinners (sh loops: a plain Python process would be tracked,
    role python) keep every CPU busy: no sched_waking of it then (the
    spinner an IRQ interrupted is no waker); but someone held the CPU it
    waited for: at each switch-in after a runnable wait (at least 8 of its
    10 wakeups; the VM kernel skips a switch now and then) exactly one
    thread of the trace leaves the running state on that CPU at that very
    timestamp (all but one: the CPU may have been idle), and at 6 of them
    at least that is a spinner, with a process
    track `other <pid> /bin/sh -c ...`, runnable (preempted); the others are
    whatever ran first (a kworker, the daemon itself)
  - the daemon logs what attaching and detaching cost (reported, not asserted)
"""

import os
import re
import subprocess
import threading
import time

import lib
import perfetto

WORKER = r"""
import os, sys, time
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
fd = int(sys.argv[1])
print("ready", flush=True)
for _ in range(5):
    if os.read(fd, 1) != b"x":
        raise SystemExit("short read")
    print(time.monotonic_ns(), flush=True)
sys.stdin.readline()
t0 = time.monotonic_ns()
for _ in range(10):
    time.sleep(0.05)
print(t0, time.monotonic_ns(), flush=True)
"""

SPIN = ["/bin/sh", "-c", "while :; do :; done"]

WRITER = "for i in 1 2 3 4 5; do sleep 0.5; printf x >&$0; done"


def waking_prog(d, timeout=30.0):
    """The id of the daemon's es_waking program, once its probes are loaded."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        held = lib.held_prog_ids(d.pid)
        ids = [i for i, p in lib.es_progs().items() if i in held and p.get("name") == "es_waking"]
        if ids:
            return ids[0]
        time.sleep(0.2)
    return None


def waking_links(prog):
    """Links of program prog (bpftool link show)."""
    return [x for x in lib.bpf_links() if x.get("prog_id") == prog]


def wakings(tr):
    """[(monotonic ts, cpu, waker pid, woken pid)] of the trace's sched_waking events."""
    return [(ts, cpu, pid, perfetto.one(w, "pid")) for ts, cpu, pid, w in tr.ftrace("sched_waking")]


def body(t):
    with lib.Daemon("--probes=sched") as d:
        prog = waking_prog(d)
        t.require(prog is not None, "the daemon loaded es_waking")
        t.check(not waking_links(prog), "es_waking is not attached before any recording",
                f"{waking_links(prog)}")
        rd, wr = os.pipe()
        p = lib.spawn([lib.PYTHON, "-c", WORKER, str(rd)], pass_fds=(rd,),
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        os.close(rd)
        t.require(p.stdout.readline().strip() == "ready", "worker started")
        info, _, _ = lib.wait_worker(d, p.pid, timeout=10.0, role="odoo_http")
        t.require(info is not None, "the worker is tracked as odoo_http")
        res = {}

        def record():
            res["trace"] = lib.http_get(d.port, "/trace?seconds=8", timeout=90)

        th = threading.Thread(target=record)
        th.start()
        time.sleep(0.5)
        t.check(len(waking_links(prog)) == 1, "es_waking has one link while a trace records",
                f"{waking_links(prog)}")
        w = lib.spawn(["/bin/bash", "-c", WRITER, str(wr)], pass_fds=(wr,))
        os.close(wr)
        w.wait(30)
        reads = [int(p.stdout.readline()) for _ in range(5)]
        # Timer wakeups come from an IRQ, on CPUs kept busy by untracked spinners:
        # the task they interrupt is no waker.
        spin = [lib.spawn(SPIN) for _ in range(os.cpu_count() or 2)]
        time.sleep(0.2)
        p.stdin.write("go\n")
        p.stdin.flush()
        s0, s1 = map(int, p.stdout.readline().split())
        p.wait(10)
        for x in spin:
            x.kill()
            x.wait(10)
        th.join(60)
        st, _, data = res["trace"]
        t.require(st == 200, "the recording answers 200", f"{st} {data[:200]!r}")
        time.sleep(0.3)
        t.check(not waking_links(prog), "es_waking is detached once the recording ended",
                f"{waking_links(prog)}")
        tr = perfetto.Trace(data)
        all_w = wakings(tr)
        # Other tracked processes on the host (this test's own process, which
        # the worker's title makes an odoo_master) have untracked wakers too.
        mine = [x for x in all_w if x[3] == p.pid]
        lib.log(f"bash {w.pid}, worker {p.pid}: {len(all_w)} sched_waking events, "
                f"of the worker {mine}; its reads returned at {reads}")
        t.check(len(mine) == 5 and all(x[2] == w.pid for x in mine),
                "5 wakeups of the worker, each by the untracked bash",
                f"{[(x[2], x[3]) for x in mine]}")
        timer = [x for x in all_w if x[3] == p.pid and s0 <= x[0] <= s1]
        t.check(not timer, "its 10 timer wakeups (time.sleep, from an IRQ) have no waker",
                f"{timer} by {[tr.processes.get(x[2]) for x in timer]}")
        name = tr.processes.get(w.pid, "")
        t.check(re.fullmatch(rf"other {w.pid} /bin/bash -c .*", name) is not None,
                "the bash has a process track named other <pid> <cmdline>", f"{name!r}")
        t.check(tr.threads.get(w.pid, (None,))[0] == w.pid, "its thread is under it",
                f"{tr.threads.get(w.pid)}")
        states = tr.generic_states(p.pid)
        ends = []
        for (ts, _, _, _), r in zip(mine, reads):
            before = [s for s in states if s[0] <= ts]
            after = [s for s in states if s[0] >= ts]
            ends.append((before[-1][1] if before else None,
                         after[0][1] if after else None,
                         after[0][0] <= r if after else None))
        lib.log(f"the worker around each wakeup (state before, after, before the read "
                f"returned): {ends}")
        # The first read began before the recording: no state of it before then.
        # Its runnable state is the sched_waking's (trace_processor begins it
        # there, with its waker): no second one written after it.
        t.check(len(ends) == 5 and all(
            b in ("TASK_STATE_INTERRUPTIBLE_SLEEP",) + ((None,) if i == 0 else ()) and
            a == "TASK_STATE_RUNNING" and ok
            for i, (b, a, ok) in enumerate(ends)),
            "the worker sleeps until each wakeup, then runs, before its read returns",
            f"{ends}")
        seq = [(s[1], s[0] in {x[0] for x in mine}) for s in tr.states(p.pid)]
        t.check(sum(1 for x in seq if x == ("TASK_STATE_RUNNABLE", True)) == 5,
                "as trace_processor reads it, each wakeup begins a runnable state",
                f"{seq}")
        # The UI draws a wakeup from the waker's running state (thread_state.waker_id).
        bst = tr.generic_states(w.pid)
        running = []
        for ts, cpu, _, _ in mine:
            before = [s for s in bst if s[0] <= ts]
            after = [s for s in bst if s[0] > ts]
            running.append((before[-1][1:] if before else None, bool(after), cpu))
        lib.log(f"the bash at each wakeup (state, cpu; a later state; the waking's cpu): "
                f"{running}")
        t.check(all(b == ("TASK_STATE_RUNNING", cpu) and later for b, later, cpu in running),
                "the bash is running on the waking's CPU at each, until a later state",
                f"{running}")
        # Who held the CPU the worker waited for during its sleeps: every
        # thread of the trace that left the running state at some instant
        # (tid, its CPU, the state it left for).
        spids = {x.pid for x in spin}
        leaves = {}
        for tid in tr.threads:
            st = tr.generic_states(tid)
            for a, b in zip(st, st[1:]):
                if a[1] == "TASK_STATE_RUNNING":
                    leaves.setdefault(b[0], []).append((tid, a[2], b[1]))
        wst = tr.generic_states(p.pid)
        ins = [(b[0], b[2]) for a, b in zip(wst, wst[1:])
               if a[1] == "TASK_STATE_RUNNABLE" and b[1] == "TASK_STATE_RUNNING" and
               s0 <= b[0] <= s1]
        held = [[h for h in leaves.get(ts, []) if h[1] == cpu] for ts, cpu in ins]
        lib.log(f"spinners {sorted(spids)}: the worker's switch-ins after a runnable wait in "
                f"its sleeps (ts, cpu) {ins}; who left that CPU then (tid, cpu, state, its "
                f"process track): {[[h + (tr.processes.get(tr.threads.get(h[0], (h[0],))[0]),) for h in x] for x in held]}")
        # The CPU came from someone at each: a spinner mostly, now and then
        # another task (a kworker, this test's daemon) that ran first; from
        # the idle task (not in a trace) only if that CPU's spinner was away.
        t.check(len(ins) >= 8 and all(len(h) <= 1 for h in held) and
                sum(len(h) == 1 for h in held) >= len(ins) - 1,
                "at each switch-in after a wait in its sleeps (8 at least; one may come from an "
                "idle CPU), the one thread that left that CPU then is in the trace",
                f"{list(zip(ins, held))}")
        good = [h[0] for h in held
                if len(h) == 1 and h[0][0] in spids and h[0][2] == "TASK_STATE_RUNNABLE"]
        t.check(len(good) >= 6,
                "at 6 of them at least, a spinner left that CPU then, preempted",
                f"{list(zip(ins, held))}")
        names = {sp: tr.processes.get(sp, "") for sp in {h[0] for h in good}}
        t.check(names and all(re.fullmatch(rf"other {sp} /bin/sh -c while .*", n)
                              for sp, n in names.items()),
                "those spinners have process tracks named other <pid> <cmdline>", f"{names}")
        costs = re.findall(r'msg="sched_waking (attached|detached)".*?us=(\d+)', d.log_text())
        lib.log(f"attach/detach cost (us): {costs}")
        t.check(len(costs) >= 2, "the daemon logged attaching and detaching", f"{costs}")


if __name__ == "__main__":
    lib.main(body)
