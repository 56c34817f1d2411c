#!/usr/bin/python3.11
"""Whose Python erpscope reads.

Two copies of pyworkloads' hot.py (pure-Python CPU burn in hot_a/hot_b
for 8 s) on Debian's /usr/bin/python3.11, both plain Python (role
python): one as root, one as a temporary system user made for the test
(useradd), who runs no Odoo worker. With the default --python.users:

  - both are accounted: erpscope_cpu_seconds_total{role="python"} of each
    is what /proc/<pid>/stat says (utime + stime, read just before and
    after the scrape; at least 0.3 s)
  - GET /workers?format=json: root's has a stack with hot_a or hot_b; the
    other user's none, and stack_unavailable names --python.users
  - GET /profile?kind=cpu: stacks rooted at root's pid, none at the other's

Then with --python.users=<that user>: its process has a stack.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time

import lib
import pyworkloads as pw

USER = f"esscope{os.getpid() % 100000}"


def start(path, user=None):
    argv, env = pw.command(lib.PYTHON, path, 8)
    kw = {}
    if user:
        p = pwd.getpwnam(user)
        kw = dict(user=p.pw_uid, group=p.pw_gid, extra_groups=[])
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd="/", **kw)
    lib.on_cleanup(lambda: proc.poll() is None and proc.kill())
    pid, _ = pw.read_ready(proc)
    return proc, pid


def proc_cpu(pid):
    """utime + stime of pid, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def has_stack(w):
    return any(th.get("stack") for th in (w or {}).get("threads") or [])


def wait_listed(d, pids, timeout=10.0):
    def ok():
        ws = pw.workers(d)
        return all(pw.worker(ws, p) for p in pids) and ws
    return lib.wait_for(ok, timeout, 0.3, "both processes in /workers") or []


def body(t):
    r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", USER], capture_output=True, text=True)
    t.require(r.returncode == 0, f"useradd {USER}", r.stderr.strip())
    lib.on_cleanup(lambda: subprocess.run(["userdel", USER], capture_output=True))
    d0 = tempfile.mkdtemp(prefix="erpscope-scope-")
    lib.on_cleanup(lambda: shutil.rmtree(d0, ignore_errors=True))
    os.chmod(d0, 0o755)
    hot = pw.write_all(d0)["hot"]
    os.chmod(hot, 0o644)

    with lib.Daemon() as d:
        mine, mine_pid = start(hot)
        theirs, their_pid = start(hot, USER)
        ws = wait_listed(d, [mine_pid, their_pid])
        time.sleep(3.0)
        ws = pw.workers(d)
        a, b = pw.worker(ws, mine_pid), pw.worker(ws, their_pid)
        t.check(a is not None and b is not None, "both listed in /workers",
                f"{mine_pid}: {a is not None}, {their_pid}: {b is not None}")
        t.check(has_stack(a), "root's Python process has a stack",
                f"{(a or {}).get('stack_unavailable')}")
        t.check(not has_stack(b) and "--python.users" in str((b or {}).get("stack_unavailable")),
                f"{USER}'s has none, and says why",
                f"stack_unavailable={(b or {}).get('stack_unavailable')!r}, "
                f"threads={(b or {}).get('threads')!r}")
        before = {p: proc_cpu(p) for p in (mine_pid, their_pid)}
        m = d.scrape()
        after = {p: proc_cpu(p) for p in (mine_pid, their_pid)}
        for pid, who in ((mine_pid, "root's"), (their_pid, f"{USER}'s")):
            cpu = m.value("erpscope_cpu_seconds_total", 0.0, role="python", worker=str(pid))
            t.check(before[pid] >= 0.3 and 0.9 * before[pid] - 0.05 <= cpu <= after[pid] + 0.05,
                    f"{who} CPU is accounted: what /proc/<pid>/stat says",
                    f"{cpu:.2f} s, /proc says {before[pid]:.2f}..{after[pid]:.2f} s")
        stacks, _, _ = pw.profile(d, kind="cpu", seconds=60)
        roots = {f[0] for f, _ in stacks}
        t.check(f"python[{mine_pid}]" in roots and f"python[{their_pid}]" not in roots,
                f"the CPU profile has root's stacks and none of {USER}'s", f"{sorted(roots)}")
        for p in (mine, theirs):
            p.kill()
            p.wait()

    with lib.Daemon(f"--python.users={USER}") as d:
        theirs, their_pid = start(hot, USER)
        wait_listed(d, [their_pid])
        ok = lib.wait_for(lambda: has_stack(pw.worker(pw.workers(d), their_pid)), 10, 0.5,
                          "a stack")
        t.check(ok, f"with --python.users={USER} its process has a stack")
        theirs.kill()
        theirs.wait()


if __name__ == "__main__":
    lib.main(body)
