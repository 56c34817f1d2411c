"""Python workloads for the Python profiler's integration tests.

Each workload is the source of a script that a test writes to a temp dir
(write_all) and runs under every CPython of the reference host (PYTHONS):
Debian's /usr/bin/python3.11 (USDT probes, python3-setproctitle) and pyenv's
3.11.7, 3.10.13, 3.12.1 and 3.13.0 (no USDT, no setproctitle). Both 3.11
builds are required; the others run wherever they are installed (they are
on the reference host, so CI runs them all). Run as a script file, not with
-c, so that its functions are `__main__:<qualname>` and lines=1 names the
file. CPython 3.10's code objects have no qualified name: its frames are
`module:name` (qual() gives what a test expects).

Every workload prints "ready <pid>" and flushes when its measured part
starts; most print a JSON line with their own measurements when it ends and
then wait on stdin, so the test can look at a live process and then at an
exited one.

Odoo roles: erpscope reads a worker's role from its title, the first string
of /proc/<pid>/cmdline (user/procs/title.c: `odoo: WorkerCron <pid> <db>` is
odoo_cron). With a title, a workload titles itself with setproctitle, as
Odoo does and as the other integration tests do, where the python has it;
pyenv's has not, so command() starts that one through `bash -c 'exec -a
TITLE python script ...'` (as scripts/bench.sh starts its fake workers):
argv[0] is then the title from the exec on, and the pid is bash's, which the
exec keeps. The workload checks that its title is in place either way.

Also here, for the tests: the daemon's side (profile(): GET /profile parsed
as folded stacks; workers(): GET /workers?format=json; leaf_sums(),
split_lines_frame()).

Standalone: `python3.11 pyworkloads.py DIR` writes the scripts to DIR.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

DEBIAN = "/usr/bin/python3.11"
PYENV_ROOT = "/root/.pyenv/versions"
PYENV = os.environ.get("PYENV_PYTHON", f"{PYENV_ROOT}/3.11.7/bin/python3.11")
# The other versions erpscope reads, where pyenv has them.
OTHERS = (("3.10", f"{PYENV_ROOT}/3.10.13/bin/python3.10"),
          ("3.12", f"{PYENV_ROOT}/3.12.1/bin/python3.12"),
          ("3.13", f"{PYENV_ROOT}/3.13.0/bin/python3.13"))
# (name, interpreter): the tests run each workload under each of them.
PYTHONS = (("debian", DEBIAN), ("pyenv", PYENV)) + tuple(
    (n, py) for n, py in OTHERS if os.access(py, os.X_OK))
MISSING = tuple(py for _, py in OTHERS if not os.access(py, os.X_OK))

_versions = {}


def version(python):
    """"3.11" for a python3.11: what /workers and erpscope_python_processes say."""
    if python not in _versions:
        r = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True, check=True)
        _versions[python] = r.stdout.strip()
    return _versions[python]


def qual(python, qualname):
    """The frame name of a function with that qualname under python: 3.10 code
    objects have only the name (the part after the last dot)."""
    return qualname.rsplit(".", 1)[-1] if version(python) == "3.10" else qualname

TITLE_ENV = "ERPSCOPE_TEST_TITLE"
CRON_TITLE = "odoo: WorkerCron {pid} pydb"

# Prepended to every workload: titles the process when TITLE_ENV says so.
PRELUDE = r'''
import os as _os, sys as _sys


def _erpscope_title():
    t = _os.environ.get("ERPSCOPE_TEST_TITLE")
    if not t:
        return
    t = t.replace("{pid}", str(_os.getpid()))
    try:
        import setproctitle
    except ImportError:  # pyenv's build: started through exec -a TITLE
        with open("/proc/self/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode(errors="replace")
        if argv0 != t:
            _sys.exit(f"no setproctitle in {_sys.version.split()[0]} and argv[0] is "
                      f"{argv0!r}, not {t!r}: start me with pyworkloads.command()")
        return
    setproctitle.setproctitle(t)


_erpscope_title()
del _erpscope_title
'''

# hot.py [SECONDS]: hot_a does 70% of the CPU work and hot_b 30%: the same
# pure-Python loop, called alternately for 0.35 s and 0.15 s of the thread's
# CPU time. Segments long against the 20 ms sampling period keep samples
# from locking onto one phase of the loop (with ~0.5 ms iterations, a 49 Hz
# sampler sees a near-fixed phase and the split it finds swings by 10
# points). Both are leaves for Python (range, % and thread_time are C).
# Prints its own split, measured with the thread's CPU clock.
HOT = PRELUDE + r'''
import json, sys, time


def hot_a(budget):
    x = 0
    end = time.thread_time() + budget
    while time.thread_time() < end:
        for i in range(1000):
            x = (x + i * i) % 1000003
    return x


def hot_b(budget):
    x = 0
    end = time.thread_time() + budget
    while time.thread_time() < end:
        for i in range(1000):
            x = (x + i * i) % 1000003
    return x


duration = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
print(f"ready {_os.getpid()}", flush=True)
t0 = time.monotonic()
c0 = time.process_time()
ta = tb = 0.0
calls = 0
while time.monotonic() - t0 < duration:
    c1 = time.thread_time()
    hot_a(0.35)
    c2 = time.thread_time()
    hot_b(0.15)
    c3 = time.thread_time()
    ta += c2 - c1
    tb += c3 - c2
    calls += 1
wall = time.monotonic() - t0
cpu = time.process_time() - c0
print(json.dumps(dict(pid=_os.getpid(), wall=wall, cpu=cpu, cpu_a=ta, cpu_b=tb, calls=calls,
                      share_a=ta / (ta + tb))), flush=True)
sys.stdin.readline()
'''

# sleeper.py: first 10,000 x time.sleep(0.0005) in quick_nap() (each block
# far under the 10 ms off-CPU threshold), then blocked_here() sleeps 1 s,
# twenty times (20 s): one block whose switch-in no BPF program saw (a kernel
# may skip them, see test_python_offcpu_profile) costs 5% of the sum, not 10%.
SLEEPER = PRELUDE + r'''
import json, sys, time


def quick_nap(n):
    for _ in range(n):
        time.sleep(0.0005)


def blocked_here():
    time.sleep(1)


print(f"ready {_os.getpid()}", flush=True)
t0 = time.monotonic()
quick_nap(10000)
t1 = time.monotonic()
blocked = 0.0
for _ in range(20):
    b0 = time.monotonic()
    blocked_here()
    blocked += time.monotonic() - b0
print(json.dumps(dict(pid=_os.getpid(), quick=t1 - t0, blocked=blocked,
                      cpu=time.process_time())), flush=True)
sys.stdin.readline()
'''

# cron.py [TIMEOUT]: an Odoo cron worker (titled when run through
# command(..., title=CRON_TITLE)) whose IrCron._callback, called as Odoo's
# ir.cron calls it, connects to a loopback listener that never answers: its
# accept queue (backlog 0) already holds one connection nobody accepts, so
# the kernel drops our SYN and retransmits it, and create_connection waits
# in poll() (interruptible sleep) until its TIMEOUT (120 s; SYN retries
# alone would take 127 s) runs out. Prints "ready" from inside _callback,
# just before the connect, and a JSON line when the connect has failed.
CRON = PRELUDE + r'''
import json, socket, sys, time

timeout = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0

ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(0)
port = ls.getsockname()[1]
filler = socket.create_connection(("127.0.0.1", port), timeout=5)  # fills the queue


class IrCron:
    def _callback(self, cron_name, server_action_id, job_id):
        print(f"ready {_os.getpid()}", flush=True)
        t0 = time.monotonic()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=timeout)
            what = "connected"
        except OSError as e:
            what = repr(e)
        return what, time.monotonic() - t0


what, took = IrCron()._callback("Mail: Fetchmail Service", 42, 7)
print(json.dumps(dict(pid=_os.getpid(), result=what, took=took)), flush=True)
sys.stdin.readline()
'''

# gc.py: no automatic collection (gc.disable()); then, on stdin commands,
# "probe": one gc.collect(), "go": 100 x (10 fresh reference cycles of two
# lists, gc.collect()). Prints what each gc.collect() returned: the number
# of unreachable objects found, which is the count argument of the
# python:gc__done probe (CPython 3.11's gc_collect_main fires it with n + m,
# the same n + m gc.collect() returns). Explicit collections are generation 2.
GC = PRELUDE + r'''
import gc, json, sys, time

gc.disable()
gc.collect()
print(f"ready {_os.getpid()}", flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "probe":
        print(json.dumps(dict(probe=gc.collect())), flush=True)
    elif cmd == "go":
        found = []
        t0 = time.monotonic()
        for _ in range(100):
            for _ in range(10):
                a = []
                b = [a]
                a.append(b)
            del a, b
            found.append(gc.collect())
        took = time.monotonic() - t0
        print(json.dumps(dict(found=found, total=sum(found), took=took,
                              counts=gc.get_count(), enabled=gc.isenabled())), flush=True)
    else:
        break
'''

# scribble.py: a process that scribbles over its own interpreter's frame
# chains, then sleeps and spins forever in the scribbled frames (it never
# returns from them, so it does not crash): the test kills it. Each thread
# reads its own frame from its thread state with here() (x86_64 offsets per
# version, as user/python/pyrt.c's tables: 3.10 PyThreadState.frame and
# PyFrameObject.f_code/f_back, 3.11 and 3.12 through PyThreadState.cframe,
# 3.13 PyThreadState.current_frame), checks the layout against its own code
# object, then:
#   self_loop  previous -> the frame itself
#   two_cycle  inner -> outer -> inner ...
#   wild       previous -> a non-canonical address (unreadable)
#   junk       previous -> a buffer of 0x41 bytes (readable garbage)
#   bad_code   the caller frame's f_code -> a list (readable, not a code)
#   deep       200 frames deep: not scribbled, beyond --python.stack-depth
#   main       the main thread: previous -> unreadable; waits on stdin, then
#              os._exit (nothing unwinds)
# Every thread but main spins ~3 ms and sleeps 50 ms in a loop, so CPU
# samples and off-CPU blocks (over the 10 ms threshold) land on each chain.
# Prints {"name": native tid} as JSON, then "ready <pid>".
SCRIBBLE = PRELUDE + r'''
import ctypes, gc, json, sys, threading, time
from ctypes import c_void_p

gc.disable()  # the collector would walk frame objects; there are none, still
_get = ctypes.pythonapi.PyThreadState_Get
_get.restype = c_void_p
# PyThreadState's frame or cframe, _PyCFrame.current_frame (None: none),
# the frame's code and its caller's frame
TS_FRAME, CF_CURRENT, FR_CODE, FR_PREVIOUS = {
    (3, 10): (24, None, 32, 24),
    (3, 11): (56, 8, 32, 48),
    (3, 12): (56, 0, 0, 8),
    (3, 13): (72, None, 0, 8),
}[sys.version_info[:2]]
WILD = 0xdead0000beef0000
junk = bytearray(b"\x41" * 4096)
junk_addr = ctypes.addressof((ctypes.c_char * len(junk)).from_buffer(junk))
not_code = [1, 2, 3]
tids = {}


def check(frame, code):
    # No Python call between reading the frame and here, or we would read
    # the callee's frame: the caller passes what it read inline.
    got = c_void_p.from_address(frame + FR_CODE).value
    if got != id(code):
        print(f"layout mismatch: f_code {got:#x} != {id(code):#x}", flush=True)
        _os._exit(3)


def here():
    """The caller's frame: here()'s own is the thread's current one."""
    f = c_void_p.from_address(_get() + TS_FRAME).value
    if CF_CURRENT is not None:
        f = c_void_p.from_address(f + CF_CURRENT).value
    check(f, here.__code__)
    return c_void_p.from_address(f + FR_PREVIOUS).value


def duty():
    end = time.monotonic() + 0.003
    while time.monotonic() < end:
        pass


def scribbled_self_loop():
    f = here()
    check(f, scribbled_self_loop.__code__)
    c_void_p.from_address(f + FR_PREVIOUS).value = f
    tids["self_loop"] = threading.get_native_id()
    while True:
        end = time.monotonic() + 0.003
        while time.monotonic() < end:
            pass
        time.sleep(0.05)


def cycle_inner():
    f = here()
    check(f, cycle_inner.__code__)
    outer = c_void_p.from_address(f + FR_PREVIOUS).value
    check(outer, cycle_outer.__code__)
    c_void_p.from_address(outer + FR_PREVIOUS).value = f
    tids["two_cycle"] = threading.get_native_id()
    while True:
        duty()
        time.sleep(0.05)


def cycle_outer():
    cycle_inner()


def scribbled_wild():
    f = here()
    check(f, scribbled_wild.__code__)
    c_void_p.from_address(f + FR_PREVIOUS).value = WILD
    tids["wild"] = threading.get_native_id()
    while True:
        duty()
        time.sleep(0.05)


def scribbled_junk():
    f = here()
    check(f, scribbled_junk.__code__)
    c_void_p.from_address(f + FR_PREVIOUS).value = junk_addr
    tids["junk"] = threading.get_native_id()
    while True:
        duty()
        time.sleep(0.05)


def scribbled_bad_code():
    f = here()
    check(f, scribbled_bad_code.__code__)
    caller = c_void_p.from_address(f + FR_PREVIOUS).value
    check(caller, threading.Thread.run.__code__)
    # The list is kept alive by not_code; Thread.run's code keeps its own
    # reference, which nothing will ever drop (that frame never resumes).
    c_void_p.from_address(caller + FR_CODE).value = id(not_code)
    tids["bad_code"] = threading.get_native_id()
    while True:
        duty()
        time.sleep(0.05)


def deep_sleep(n):
    if n > 0:
        return deep_sleep(n - 1)
    tids["deep"] = threading.get_native_id()
    while True:
        duty()
        time.sleep(0.05)


def scribbled_main():
    f = here()
    check(f, scribbled_main.__code__)
    c_void_p.from_address(f + FR_PREVIOUS).value = WILD
    tids["main"] = threading.get_native_id()
    print(json.dumps(tids), flush=True)
    print(f"ready {_os.getpid()}", flush=True)
    sys.stdin.readline()
    _os._exit(0)  # never return into the scribbled chain


for target, args in ((scribbled_self_loop, ()), (cycle_outer, ()), (scribbled_wild, ()),
                     (scribbled_junk, ()), (scribbled_bad_code, ()), (deep_sleep, (200,))):
    threading.Thread(target=target, args=args, daemon=True).start()
deadline = time.monotonic() + 10
while len(tids) < 6:
    if time.monotonic() > deadline:
        print(f"threads did not start: {tids}", flush=True)
        _os._exit(4)
    time.sleep(0.01)
scribbled_main()
'''

# burn.py [SECONDS]: a short-lived python: burn() spins SECONDS (0.05) of
# wall time, then the process exits.
BURN = PRELUDE + r'''
import sys, time


def burn(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


print(f"ready {_os.getpid()}", flush=True)
burn(float(sys.argv[1]) if len(sys.argv) > 1 else 0.05)
'''

SCRIPTS = {
    "hot": HOT,
    "sleeper": SLEEPER,
    "cron": CRON,
    "gc": GC,
    "scribble": SCRIBBLE,
    "burn": BURN,
}


def write_all(d):
    """Writes every workload to d (made absolute and real: the path is what a
    frame's file is compared with); returns {name: path}."""
    d = os.path.realpath(d)
    out = {}
    for name, src in SCRIPTS.items():
        path = os.path.join(d, f"{name}.py")
        with open(path, "w") as f:
            f.write(src)
        out[name] = path
    return out


def def_line(name, func):
    """The line of `def func(` in workload name: the code's co_firstlineno."""
    src = SCRIPTS[name]
    for i, line in enumerate(src.split("\n"), 1):
        if re.match(rf"\s*def {re.escape(func)}\(", line):
            return i
    raise KeyError(f"no def {func} in {name}")


def line_of(name, needle):
    """The first line of workload name that contains needle."""
    for i, line in enumerate(SCRIPTS[name].split("\n"), 1):
        if needle in line:
            return i
    raise KeyError(f"{needle!r} not in {name}")


_has_spt = {}


def has_setproctitle(python):
    if python not in _has_spt:
        r = subprocess.run([python, "-c", "import setproctitle"], capture_output=True)
        _has_spt[python] = r.returncode == 0
    return _has_spt[python]


def command(python, script, *args, title=None):
    """(argv, env) that run script under python with args; with title (e.g.
    CRON_TITLE: "{pid}" is the process's pid), titled like an Odoo worker:
    setproctitle where python has it, else exec -a through bash."""
    argv = [python, script] + [str(a) for a in args]
    env = dict(os.environ)
    env.pop(TITLE_ENV, None)
    if title is None:
        return argv, env
    if re.search(r'["$`\\]', title.replace("{pid}", "")):
        raise ValueError(f"title {title!r} would need shell quoting")
    env[TITLE_ENV] = title
    if has_setproctitle(python):
        return argv, env
    t = title.replace("{pid}", "$$")
    return ["/bin/bash", "-c", f'exec -a "{t}" "$0" "$@"'] + argv, env


def read_ready(proc):
    """Reads proc's stdout up to its "ready <pid>" line; returns (pid, the
    lines before it). Raises RuntimeError on EOF."""
    before = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"workload exited ({proc.poll()}) before ready; said {before}")
        line = line.strip()
        if line.startswith("ready "):
            return int(line.split()[1]), before
        before.append(line)


def parse_folded(text):
    """[(frames, value)] of a folded-stack profile (`root;f1;...;leaf VALUE`
    per line, root first). Raises ValueError on a malformed line."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        stack, sep, value = line.rpartition(" ")
        if not sep or not stack:
            raise ValueError(f"line {n}: no `stack value`: {line!r}")
        try:
            v = int(value)
        except ValueError:
            raise ValueError(f"line {n}: value {value!r} is not an integer: {line!r}") from None
        out.append((stack.split(";"), v))
    return out


_LINES = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def split_lines_frame(frame):
    """'mod:qual (file:line)' -> ('mod:qual', file, line); (frame, None, None)
    when it has no location."""
    m = _LINES.match(frame)
    if not m:
        return frame, None, None
    return m.group("func"), m.group("file"), int(m.group("line"))


# ---------------------------------------------------------------- the daemon's side

def get(d, path, timeout=30):
    """(status, content type, body text, seconds it took) of GET path."""
    import lib
    t0 = time.monotonic()
    st, hdrs, body = lib.http_get(d.port, path, timeout=timeout)
    return st, hdrs.get("content-type", ""), body.decode("utf-8", "replace"), \
        time.monotonic() - t0


def profile(d, **params):
    """GET /profile with params: (stacks as parse_folded gives them, body,
    seconds the request took). Raises lib.Failure unless a 200 text/plain
    that parses."""
    import lib
    path = "/profile?" + urllib.parse.urlencode(params)
    st, ct, body, took = get(d, path)
    if st != 200:
        raise lib.Failure(f"GET {path}: status {st}: {body[:300]!r}")
    if not ct.startswith("text/plain"):
        raise lib.Failure(f"GET {path}: Content-Type {ct!r}, expected text/plain")
    try:
        return parse_folded(body), body, took
    except ValueError as e:
        raise lib.Failure(f"GET {path}: {e}") from None


def workers(d, **params):
    """The "workers" list of GET /workers?format=json (with params)."""
    import lib
    path = "/workers?" + urllib.parse.urlencode(dict(format="json", **params))
    st, ct, body, _ = get(d, path)
    if st != 200:
        raise lib.Failure(f"GET {path}: status {st}: {body[:300]!r}")
    if not ct.startswith("application/json"):
        raise lib.Failure(f"GET {path}: Content-Type {ct!r}, expected application/json")
    try:
        return json.loads(body)["workers"]
    except (ValueError, KeyError, TypeError) as e:
        raise lib.Failure(f"GET {path}: not the expected JSON ({e}): {body[:300]!r}") from None


def worker(ws, pid):
    """The entry of /workers for pid, or None."""
    for w in ws:
        if w.get("pid") == pid:
            return w
    return None


def leaf_sums(stacks, strip_lines=False):
    """{leaf frame: summed value}."""
    out = {}
    for frames, v in stacks:
        leaf = frames[-1]
        if strip_lines:
            leaf = split_lines_frame(leaf)[0]
        out[leaf] = out.get(leaf, 0) + v
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: pyworkloads.py DIR")
    os.makedirs(sys.argv[1], exist_ok=True)
    for k, v in write_all(sys.argv[1]).items():
        print(f"{k}: {v}")
