#!/usr/bin/python3.11
"""GET /workers against Odoo cron workers whose stack and state are known.

pyworkloads' cron.py runs under every CPython of pyworkloads.PYTHONS at
once (Debian's and pyenv's 3.11, pyenv's 3.10, 3.12, 3.13), titled
`odoo: WorkerCron <pid> pydb` (Debian's: setproctitle; pyenv's, which has
none: exec -a through bash). Its IrCron._callback(self, cron_name,
server_action_id, job_id), called with cron_name="Mail: Fetchmail Service",
connects to a loopback listener whose full accept queue drops the SYN, so it
sleeps in poll() (interruptible) for the connect's 20 s timeout. With the
default --python.capture-args (_callback:cron_name, ...):
  GET /workers?format=json, for each worker:
      pid, worker "<pid>", role odoo_cron, python "<its version>", state
      "sleeping" (or "blocked"); gc "available" for Debian's build (USDT),
      starting with "unavailable" for pyenv's
      (3.10 frames name _callback alone: its code objects have no qualname)
      one thread, tid == pid, not truncated, innermost first: the leaf is
      socket's create_connection, the outermost <module>, and a frame
      ...IrCron._callback in cron.py (line: its def or the connect's) whose
      args are exactly {"cron_name": "'Mail: Fetchmail Service'"}; no other
      frame has args
      state_seconds grows by 1.5..2.5 between two fetches 2 s apart
  ?role=odoo_cron lists them all, ?role=pg_backend none
  GET /workers (text) names IrCron._callback, the cron name and every pid
  once the connect has timed out (~20 s): the off-CPU profile has a stack
      odoo_cron[<pid>];...;...IrCron._callback(cron_name='Mail: Fetchmail
      Service');... worth the 20 s it blocked (+/- 10%)
Then a daemon with --python.capture-args="" shows the same frame without
args, on Debian's build.
"""

import json
import os
import re
import subprocess
import time

import lib
import pyworkloads as pw

CRON_NAME = "Mail: Fetchmail Service"
CONNECT_TIMEOUT = 20.0


def args_frame(python):
    """The off-CPU profile's frame of _callback with its captured argument."""
    return re.compile(r"(^|:)" + re.escape(pw.qual(python, "IrCron._callback")) +
                      r"\(cron_name='Mail: Fetchmail Service'\)$")


def callback_frame(w, python):
    """(thread, index, frame) of the first ...IrCron._callback frame of w."""
    want = ":" + pw.qual(python, "IrCron._callback")
    for th in w.get("threads") or []:
        for i, f in enumerate(th.get("stack") or []):
            if str(f.get("function", "")).endswith(want):
                return th, i, f
    return None, None, None


def wait_callback(d, pid, python, timeout=10.0):
    """The /workers entry of pid once it shows the _callback frame, or the last
    one seen (None if never listed)."""
    last = [None]

    def seen():
        last[0] = pw.worker(pw.workers(d), pid)
        return last[0] is not None and callback_frame(last[0], python)[2] is not None
    lib.wait_for(seen, timeout, 0.2)
    return last[0]


def spawn_cron(paths, python, timeout=CONNECT_TIMEOUT):
    argv, env = pw.command(python, paths["cron"], timeout, title=pw.CRON_TITLE)
    p = lib.spawn(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid, _ = pw.read_ready(p)
    return p, pid


def body(t):
    paths = pw.write_all(lib.tempdir())
    script = paths["cron"]
    def_line = pw.def_line("cron", "_callback")
    call_line = pw.line_of("cron", "port), timeout=timeout)")

    with lib.Daemon() as d:
        procs, pythons = {}, dict(pw.PYTHONS)
        for python in pw.MISSING:
            lib.log(f"{python} is not installed: not run")
        for pyname, python in pw.PYTHONS:
            t.require(os.access(python, os.X_OK), f"{python} is installed")
            p, pid = spawn_cron(paths, python)
            t.require(pid == p.pid, f"[{pyname}] cron.py started", f"ready {pid}, spawned {p.pid}")
            procs[pyname] = p
        t_ready = time.monotonic()

        for pyname, p in procs.items():
            t.prefix = f"[{pyname}] "
            pid, python = p.pid, pythons[pyname]
            info, took, _ = lib.wait_worker(d, pid, timeout=10.0, role="odoo_cron")
            t.check(info is not None, f"pid {pid} is tracked as odoo_cron", f"after {took:.2f}s")
            w = wait_callback(d, pid, python)
            t.require(w is not None, f"GET /workers?format=json lists pid {pid}")
            lib.log(f"/workers entry: {json.dumps(w)[:1500]}")
            t.check(w.get("worker") == str(pid) and w.get("role") == "odoo_cron",
                    "worker is the pid, role odoo_cron",
                    f"worker={w.get('worker')!r} role={w.get('role')!r}")
            ver = pw.version(python)
            t.check(w.get("python") == ver, f"python is \"{ver}\"", f"{w.get('python')!r}")
            t.check(w.get("state") in ("sleeping", "blocked"),
                    "state is sleeping (blocked in connect's poll) or blocked",
                    f"{w.get('state')!r}")
            t.check(isinstance(w.get("comm"), str) and w.get("comm"), "comm is there",
                    f"{w.get('comm')!r}")
            gc = w.get("gc")
            if pyname == "debian":
                t.check(gc == "available", "gc is \"available\" (Debian's build has the "
                        "gc__start/gc__done USDT probes)", f"{gc!r}")
            else:
                t.check(isinstance(gc, str) and gc.startswith("unavailable: ") and
                        len(gc) > len("unavailable: "),
                        "gc is \"unavailable: <reason>\" (pyenv's build has no USDT)",
                        f"{gc!r}")
            threads = w.get("threads") or []
            t.check(len(threads) == 1 and threads[0].get("tid") == pid,
                    "one thread, whose tid is the pid", f"{[x.get('tid') for x in threads]}")
            th, i, f = callback_frame(w, python)
            t.require(f is not None, f"a frame is ...{pw.qual(python, 'IrCron._callback')}",
                      "stacks: " +
                      f"{[[x.get('function') for x in y.get('stack', [])] for y in threads]}")
            stack = th["stack"]
            fns = [x.get("function") for x in stack]
            t.check(th.get("truncated") is False, "the stack is not truncated",
                    f"{th.get('truncated')!r}")
            t.check(fns[0] == "socket:create_connection", "innermost first: the leaf is "
                    "socket:create_connection", f"{fns}")
            t.check(str(fns[-1]).endswith(":<module>") and 0 < i < len(fns) - 1,
                    "outermost last: <module>, with _callback between", f"{fns}")
            t.check(f.get("file") == script, "_callback's file is cron.py",
                    f"{f.get('file')!r}, expected {script!r}")
            t.check(f.get("line") in (def_line, call_line),
                    f"_callback's line is its def ({def_line}) or the connect ({call_line})",
                    f"{f.get('line')!r}")
            t.check(f.get("args") == {"cron_name": f"'{CRON_NAME}'"},
                    "_callback's args are {\"cron_name\": \"'Mail: Fetchmail Service'\"}",
                    f"{f.get('args')!r}")
            others = [x for x in stack if x is not f and x.get("args")]
            t.check(not others, "no other frame has args", f"{others}")

            st0 = w.get("state_seconds")
            time.sleep(2.0)
            w2 = pw.worker(pw.workers(d), pid)
            st1 = w2.get("state_seconds") if w2 else None
            ok = isinstance(st0, (int, float)) and isinstance(st1, (int, float))
            t.between(st1 - st0 if ok else None, 1.5, 2.5,
                      "state_seconds grows by ~2 between fetches 2 s apart")
            t.check(w2 is not None and w2.get("state") == w.get("state"),
                    "and the state stays", f"{w.get('state')!r} -> {w2 and w2.get('state')!r}")
            t.check(ok and st1 <= time.monotonic() - t_ready + 1.0,
                    "state_seconds is no more than the time since it blocked",
                    f"{st1!r} vs {time.monotonic() - t_ready:.2f}s")
        t.prefix = ""

        pids = {p.pid for p in procs.values()}
        ws = pw.workers(d, role="odoo_cron")
        t.check(pids <= {w.get("pid") for w in ws} and
                all(w.get("role") == "odoo_cron" for w in ws),
                "?role=odoo_cron lists every worker, and only odoo_cron ones",
                f"{[(w.get('pid'), w.get('role')) for w in ws]}")
        ws = pw.workers(d, role="pg_backend")
        t.check(not pids & {w.get("pid") for w in ws}, "?role=pg_backend lists none")
        st, ct, text, _ = pw.get(d, "/workers")
        t.check(st == 200 and ct.startswith("text/plain"), "GET /workers (text) answers",
                f"{st} {ct!r}")
        t.check("IrCron._callback" in text and CRON_NAME in text and
                all(str(x) in text for x in pids),
                "the text names IrCron._callback, the cron name and every pid",
                text[:600])
        lib.log("GET /workers:\n" + text[:1500])

        # The connects time out: the off-CPU profile gets _callback with its args.
        for pyname, p in procs.items():
            t.prefix = f"[{pyname}] "
            line = p.stdout.readline()
            t.require(line, "the connect timed out", f"exit {p.poll()}")
            r = json.loads(line)
            lib.log(f"workload says: {r}")
            t.check("timed out" in r["result"] and r["took"] >= 15.0,
                    "it stayed blocked in connect for >= 15 s", f"{r}")
            root = f"odoo_cron[{p.pid}]"
            args_re = args_frame(pythons[pyname])

            def blocked():
                stacks, _, _ = pw.profile(d, kind="offcpu", seconds=60, worker=p.pid)
                return stacks, sum(v for fr, v in stacks if any(args_re.search(x)
                                                                for x in fr))
            lib.wait_for(lambda: blocked()[1] >= 0.9 * r["took"] * 1e6, 5.0, 0.5)
            stacks, got = blocked()
            lib.log("offcpu profile:\n" + "\n".join(f"{';'.join(fr)} {v}" for fr, v in stacks[:8]))
            t.check(all(fr[0] == root for fr, _ in stacks), f"the roots are {root}",
                    f"{sorted({fr[0] for fr, _ in stacks})}")
            t.near(got, r["took"] * 1e6, 0.10, "stacks through ...IrCron._callback(cron_name="
                   "'Mail: Fetchmail Service') hold the connect's block (us)")
            p.stdin.close()
            p.wait(timeout=10)
        t.prefix = ""

    t.prefix = "[capture-args=\"\"] "
    with lib.Daemon("--python.capture-args=") as d:
        p, pid = spawn_cron(paths, pw.DEBIAN, timeout=120.0)
        w = wait_callback(d, pid, pw.DEBIAN)
        t.require(w is not None, f"GET /workers?format=json lists pid {pid}")
        _, _, f = callback_frame(w, pw.DEBIAN)
        t.require(f is not None, "a frame is ...IrCron._callback")
        t.check(not f.get("args"), "with --python.capture-args=\"\", it has no args",
                f"{f.get('args')!r}")
        st, _, text, _ = pw.get(d, "/workers")
        t.check(st == 200 and CRON_NAME not in text, "and the text does not name the cron",
                text[:400])
        lib.kill_group(p)


if __name__ == "__main__":
    lib.main(body)
