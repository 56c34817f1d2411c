"""Shared helpers for erpscope's integration tests.

Each tests/integration/test_*.py is a standalone script run with Debian's
/usr/bin/python3.11 (stdlib only, plus python3-setproctitle / python3-psycopg2
where a workload needs them). It calls lib.main(body): body(t) gets a Test
that records checks; the exit status is 0 (all checks passed), 1 (a check
failed or the test crashed) or 77 (skipped: not root or no BPF; under
CI=true a skip is a failure and exits 1).

The daemon: `with lib.Daemon() as d:` starts build/erpscope on a free
loopback port with --log.level=debug, logs to a temp file, waits for
/metrics, and on exit stops it with SIGTERM, asserting exit 0 and that none
of its es_* BPF programs remain. Every scrape goes through `promtool check
metrics`, and any complaint fails the test.
"""

import atexit
import gzip
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ERPSCOPE = os.environ.get("ERPSCOPE", os.path.join(REPO, "build", "erpscope"))
PYTHON = "/usr/bin/python3.11"
PROMTOOL = os.environ.get("PROMTOOL", "promtool")
BPFTOOL = os.environ.get("BPFTOOL", "bpftool")
CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
SKIP = 77

TEXT_CT = "text/plain; version=0.0.4"
OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0"

# Both tracepoint flavours must give the same numbers: tests that measure run
# once per flavour (auto picks tp_btf on the reference kernel).
ATTACH_MODES = ("tp_btf", "raw_tp")

ROLES = {
    "python", "odoo_master", "odoo_http", "odoo_cron", "odoo_gevent",
    "pg_backend", "pg_autovacuum", "pg_checkpointer", "pg_walwriter",
    "pg_bgwriter", "pg_other", "other",
}
OFFCPU_REASONS = ("runqueue", "iowait", "blocked", "sleep")


class Skip(Exception):
    """The test cannot run here (not root, no BPF)."""


class Failure(AssertionError):
    """A fatal check failure: the test cannot go on."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- cleanup

_cleanups = []


def on_cleanup(fn):
    """Runs fn at exit (last registered first), even when the test fails."""
    _cleanups.append(fn)
    return fn


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # cleanup must go on
            print(f"cleanup: {fn!r}: {e}", file=sys.stderr)


atexit.register(_run_cleanups)


def _sig_exit(signum, frame):
    _run_cleanups()
    os._exit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_s, _sig_exit)


def kill_group(proc, sig=signal.SIGKILL, timeout=5.0):
    """Kills proc's process group (spawn() starts each in its own session)."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass
    else:
        try:  # the leader is gone; its children may not be
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=timeout)


def spawn(args, **kw):
    """Popen in a new session (own process group), killed at cleanup."""
    kw.setdefault("start_new_session", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(args, **kw)
    on_cleanup(lambda: kill_group(p))
    return p


def tempdir(prefix="erpscope-test-", base=None):
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_steal():
    """Seconds the hypervisor stole from this host's CPUs, all of them
    together (/proc/stat). A thread's time on a CPU by erpscope's stamps
    includes what was stolen while it ran; time.thread_time() does not
    (paravirtual steal accounting), so a check of one against the other
    allows the steal of its window."""
    with open("/proc/stat") as f:
        v = f.readline().split()
    return int(v[8]) / os.sysconf("SC_CLK_TCK")


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value; returns it, or None."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def requests_settled(d, quiet=0.8, timeout=10.0):
    """Scrapes until the requests probe's counts (requests and sessions) have
    not moved for `quiet` s, and returns that Metrics: a worker's last
    request before it goes idle is counted ~0.3 s after its answer (its
    close is found by the daemon's sweep), later while it still answers."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        m = d.scrape()
        now = (m.total("erpscope_http_request_duration_seconds_count"),
               m.total("erpscope_http_sessions_total"))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet or time.monotonic() >= deadline:
            return m
        time.sleep(0.1)


# ---------------------------------------------------------------- privileges

def bpf_available():
    """(ok, why): root, BTF, and the bpf() syscall answering."""
    if os.geteuid() != 0:
        return False, "not root (integration tests load BPF programs)"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return False, "no kernel BTF at /sys/kernel/btf/vmlinux"
    if shutil.which(BPFTOOL) is None:
        return False, "bpftool not installed (scripts/deps.sh)"
    r = subprocess.run([BPFTOOL, "prog", "show", "-j"], capture_output=True, text=True)
    if r.returncode != 0:
        return False, f"bpftool prog show failed: {r.stderr.strip()}"
    return True, ""


def require_privileges():
    ok, why = bpf_available()
    if not ok:
        raise Skip(why)


# ---------------------------------------------------------------- bpftool

def bpf_progs():
    """{id: prog dict} of every loaded BPF program (bpftool prog show -j)."""
    r = subprocess.run([BPFTOOL, "prog", "show", "-j"], capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure(f"bpftool prog show failed: {r.stderr.strip()}")
    return {p["id"]: p for p in json.loads(r.stdout or "[]")}


def es_progs():
    return {i: p for i, p in bpf_progs().items() if p.get("name", "").startswith("es_")}


def bpf_links():
    r = subprocess.run([BPFTOOL, "link", "show", "-j"], capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure(f"bpftool link show failed: {r.stderr.strip()}")
    return json.loads(r.stdout or "[]")


def describe_progs(progs):
    out = []
    for i, p in sorted(progs.items()):
        pids = ",".join(f"{x.get('comm')}/{x.get('pid')}" for x in p.get("pids", []))
        out.append(f"{i}:{p.get('name')}({pids or 'no holder'})")
    return " ".join(out) or "none"


def held_prog_ids(pid):
    """Ids of the BPF programs a live process holds: its program fds and the
    programs of its link fds, from /proc/<pid>/fdinfo. Other erpscope
    daemons (another test, another session) hold programs of their own."""
    ids = set()
    d = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def held_map_id(pid, name):
    """The id of the BPF map called name that live process pid holds (its
    map fds' fdinfo, then bpftool's names), or None: other daemons hold
    maps of the same name."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                ids |= {int(x.split()[1]) for x in f if x.startswith("map_id:")}
        except OSError:
            pass
    r = subprocess.run([BPFTOOL, "map", "show", "-j"], capture_output=True, text=True)
    for m in json.loads(r.stdout or "[]"):
        if m.get("name") == name and m["id"] in ids:
            return m["id"]
    return None


def map_keys(map_id):
    """The keys of BPF map map_id, each as bytes (bpftool map dump)."""
    r = subprocess.run([BPFTOOL, "-j", "map", "dump", "id", str(map_id)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise Failure(f"bpftool map dump id {map_id} failed: {r.stderr.strip()}")
    return [bytes(int(b, 16) for b in e["key"]) for e in json.loads(r.stdout or "[]")
            if isinstance(e.get("key"), list)]


def wait_progs_gone(before, timeout=5.0, only=None):
    """Waits until no es_ program other than those in before (loaded by someone
    else before our daemon started) is loaded; with only, until none of those
    ids is. Returns the leftovers."""
    left = {}

    def gone():
        nonlocal left
        left = {i: p for i, p in es_progs().items()
                if (i in only if only is not None else i not in before)}
        return not left

    wait_for(gone, timeout, 0.1)
    return left


def bpffs_entries():
    out = set()
    for root, dirs, files in os.walk("/sys/fs/bpf"):
        for n in dirs + files:
            out.add(os.path.join(root, n))
    return out


# ---------------------------------------------------------------- exposition parser

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LNAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class ParseError(Exception):
    pass


class Metrics(dict):
    """(name, frozenset(labels.items())) -> float, plus the families' HELP
    and TYPE (types / helps: family -> str) and the raw text."""

    def __init__(self):
        super().__init__()
        self.types = {}
        self.helps = {}
        self.text = ""
        self.order = []  # sample keys in exposition order
        self.eof = False

    def series(self, name, **labels):
        """[(labels dict, value)] of samples called name whose labels include
        the given ones."""
        want = {k: str(v) for k, v in labels.items()}
        out = []
        for (n, ls), v in self.items():
            if n != name:
                continue
            d = dict(ls)
            if all(d.get(k) == x for k, x in want.items()):
                out.append((d, v))
        return out

    def value(self, name, default=None, **labels):
        """The one sample called name with exactly these labels (after adding
        none), or default when there is none."""
        key = (name, frozenset((k, str(v)) for k, v in labels.items()))
        return self.get(key, default)

    def one(self, name, **labels):
        """The value of the single sample matching name and labels; raises
        Failure with what was there when there is not exactly one."""
        s = self.series(name, **labels)
        if len(s) != 1:
            near = self.series(name)[:8]
            raise Failure(f"expected one {name}{_fmt_labels(labels)}, found {len(s)}; "
                          f"some {name} series: {near}")
        return s[0][1]

    def total(self, name, **labels):
        return sum(v for _, v in self.series(name, **labels))

    def family_of(self, sample_name):
        if sample_name in self.types:
            return sample_name
        for suf in ("_bucket", "_sum", "_count", "_created", "_total", "_info"):
            if sample_name.endswith(suf):
                base = sample_name[: -len(suf)]
                if base in self.types:
                    return base
        return None

    def histogram(self, name, **labels):
        """(buckets [(le, cumulative count)] sorted by le, sum, count) of the
        histogram series with exactly these labels (le aside)."""
        want = {k: str(v) for k, v in labels.items()}
        buckets = []
        for (n, ls), v in self.items():
            if n != name + "_bucket":
                continue
            d = dict(ls)
            le = d.pop("le", None)
            if d == want and le is not None:
                buckets.append((parse_float(le), v))
        buckets.sort()
        s = self.value(name + "_sum", **labels)
        c = self.value(name + "_count", **labels)
        return buckets, s, c


def _fmt_labels(labels):
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def parse_float(s):
    if s in ("+Inf", "Inf", "+inf", "inf"):
        return math.inf
    if s in ("-Inf", "-inf"):
        return -math.inf
    if s in ("NaN", "nan"):
        return math.nan
    try:
        return float(s)
    except ValueError:
        raise ParseError(f"bad number {s!r}") from None


def _unescape_help(s):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            out.append({"\\": "\\", "n": "\n"}.get(n, "\\" + n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _parse_labels(line, i, lineno):
    """Parses {a="x",b="y"} starting at line[i] == '{'; returns (dict, next i)."""
    labels = {}
    i += 1
    while True:
        while i < len(line) and line[i] == " ":
            i += 1
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        m = _LNAME.match(line, i)
        if not m:
            raise ParseError(f"line {lineno}: bad label name at column {i}: {line!r}")
        lname = m.group(0)
        i = m.end()
        if line[i:i + 2] != '="':
            raise ParseError(f"line {lineno}: expected =\" after label {lname}: {line!r}")
        i += 2
        val = []
        while True:
            if i >= len(line):
                raise ParseError(f"line {lineno}: unterminated label value: {line!r}")
            c = line[i]
            if c == "\\":
                if i + 1 >= len(line):
                    raise ParseError(f"line {lineno}: dangling backslash: {line!r}")
                n = line[i + 1]
                if n == "\\":
                    val.append("\\")
                elif n == '"':
                    val.append('"')
                elif n == "n":
                    val.append("\n")
                else:
                    raise ParseError(f"line {lineno}: bad escape \\{n} in label {lname}")
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                val.append(c)
                i += 1
        if lname in labels:
            raise ParseError(f"line {lineno}: duplicate label {lname}")
        labels[lname] = "".join(val)
        if i < len(line) and line[i] == ",":
            i += 1
        elif i < len(line) and line[i] == "}":
            return labels, i + 1
        else:
            raise ParseError(f"line {lineno}: expected , or }} after label {lname}: {line!r}")


def parse(text, openmetrics=False):
    """Parses Prometheus text format 0.0.4 (or OpenMetrics 1.0 when
    openmetrics) into a Metrics. Raises ParseError on anything malformed:
    duplicate series, a sample after # EOF, a value that is not a number."""
    m = Metrics()
    m.text = text
    if text and not text.endswith("\n"):
        raise ParseError("exposition does not end with a newline")
    for lineno, line in enumerate(text.split("\n")[:-1] if text else [], 1):
        if m.eof:
            raise ParseError(f"line {lineno}: content after # EOF: {line!r}")
        if not line.strip():
            if openmetrics:
                raise ParseError(f"line {lineno}: blank line in OpenMetrics")
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if openmetrics and line == "# EOF":
                m.eof = True
                continue
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE", "UNIT"):
                fam = parts[2]
                if not _NAME.fullmatch(fam):
                    raise ParseError(f"line {lineno}: bad family name {fam!r}")
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    if fam in m.helps:
                        raise ParseError(f"line {lineno}: second HELP for {fam}")
                    m.helps[fam] = _unescape_help(rest)
                elif parts[1] == "TYPE":
                    if fam in m.types:
                        raise ParseError(f"line {lineno}: second TYPE for {fam}")
                    ok = ("counter", "gauge", "histogram", "summary", "untyped")
                    if openmetrics:
                        ok = ("counter", "gauge", "histogram", "summary", "unknown",
                              "info", "stateset", "gaugehistogram")
                    if rest not in ok:
                        raise ParseError(f"line {lineno}: bad type {rest!r} for {fam}")
                    m.types[fam] = rest
                continue
            if openmetrics:
                raise ParseError(f"line {lineno}: stray comment in OpenMetrics: {line!r}")
            continue
        nm = _NAME.match(line)
        if not nm:
            raise ParseError(f"line {lineno}: bad metric name: {line!r}")
        name = nm.group(0)
        i = nm.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, lineno)
        if i >= len(line) or line[i] != " ":
            raise ParseError(f"line {lineno}: expected a space before the value: {line!r}")
        fields = line[i:].split()
        if not 1 <= len(fields) <= 2:
            raise ParseError(f"line {lineno}: expected value [timestamp]: {line!r}")
        value = parse_float(fields[0])
        key = (name, frozenset(labels.items()))
        if key in m:
            raise ParseError(f"line {lineno}: duplicate series {name}{_fmt_labels(labels)}")
        m[key] = value
        m.order.append(key)
    if openmetrics and not m.eof:
        raise ParseError("OpenMetrics exposition without # EOF")
    return m


def promtool_check(text):
    """Returns '' when `promtool check metrics` accepts text silently, else
    what it said. Lint warnings count: our output must be lint-clean."""
    if shutil.which(PROMTOOL) is None:
        if CI:
            return "promtool not installed (scripts/deps.sh installs prometheus)"
        log("WARNING: promtool not installed; scrapes are NOT checked by promtool")
        return ""
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    said = (r.stdout + r.stderr).decode(errors="replace").strip()
    if r.returncode != 0 or said:
        return f"exit {r.returncode}: {said or '(no output)'}"
    return ""


def check_families(m):
    """Problems with HELP/TYPE: every sample must belong to a family that has
    both, and each family's samples must have the right shape."""
    problems = []
    for (name, ls) in m.order:
        fam = m.family_of(name)
        if fam is None:
            problems.append(f"{name}: no TYPE line for its family")
            continue
        if fam not in m.helps:
            problems.append(f"{fam}: no HELP line")
        t = m.types[fam]
        if t == "histogram" and name != fam and not name.startswith(fam + "_"):
            problems.append(f"{name}: odd sample in histogram {fam}")
        if t == "histogram" and name == fam + "_bucket" and "le" not in dict(ls):
            problems.append(f"{name}: bucket without le")
    for fam in m.types:
        if fam not in m.helps:
            problems.append(f"{fam}: TYPE without HELP")
    return sorted(set(problems))


def check_histogram(buckets, s, c):
    """Problems with one histogram series: cumulative, +Inf == count."""
    problems = []
    if not buckets:
        return ["no buckets"]
    if buckets[-1][0] != math.inf:
        problems.append("no +Inf bucket")
    prev = -1
    for le, v in buckets:
        if v < prev:
            problems.append(f"bucket le={le} {v} < previous {prev}: not cumulative")
        prev = v
    if c is None or s is None:
        problems.append("missing _sum or _count")
        return problems
    if buckets[-1][1] != c:
        problems.append(f"+Inf bucket {buckets[-1][1]} != _count {c}")
    # Observations are >= 0: the sum lies between what the buckets allow.
    lo = hi = 0.0
    prev_le, prev_cum = 0.0, 0.0
    for le, cum in buckets:
        n = cum - prev_cum
        if n > 0:
            lo += n * max(prev_le, 0.0)
            hi += n * le  # inf when the +Inf bucket has observations
        prev_le, prev_cum = le, cum
    eps = 1e-9 * max(1.0, abs(s))
    if s < lo - eps or s > hi + eps:
        problems.append(f"_sum {s} is outside what the buckets allow [{lo}, {hi}]")
    return problems


# ---------------------------------------------------------------- HTTP

def http_get(port, path="/metrics", headers=None, method="GET", body=None, timeout=30):
    """(status, headers dict with lower-case names, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def pg_statements(d, db=None):
    """GET /queries?format=json's statements (of database db when given)."""
    st, _, body = http_get(d.port, "/queries?format=json&limit=1000")
    if st != 200:
        raise Failure(f"GET /queries: {st} {body[:200]!r}")
    return [s for s in json.loads(body)["statements"] if db is None or s["db"] == db]


def pg_calls(d, text, db):
    """Calls of the statement whose normalised text is text, in database db."""
    return sum(s["calls"] for s in pg_statements(d, db) if s["query"] == text)


def scrape(port, path="/metrics", headers=None):
    """GETs the metrics, checks them with promtool and our parser (HELP and
    TYPE for every family, cumulative histograms), returns a Metrics. Any
    problem raises Failure."""
    headers = dict(headers or {})
    status, hdrs, body = http_get(port, path, headers)
    if status != 200:
        raise Failure(f"GET {path}: status {status}, body {body[:200]!r}")
    if hdrs.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    elif hdrs.get("content-encoding") not in (None, "identity"):
        raise Failure(f"GET {path}: unexpected Content-Encoding {hdrs.get('content-encoding')}")
    ct = hdrs.get("content-type", "")
    om = ct.startswith("application/openmetrics-text")
    if not om and not ct.startswith(TEXT_CT):
        raise Failure(f"GET {path}: Content-Type {ct!r}, expected {TEXT_CT}...")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Failure(f"GET {path}: body is not valid UTF-8: {e}; near "
                      f"{body[max(0, e.start - 60):e.end + 20]!r}") from None
    try:
        m = parse(text, openmetrics=om)
    except ParseError as e:
        raise Failure(f"GET {path}: cannot parse the exposition: {e}") from None
    if not om:
        said = promtool_check(text)
        if said:
            raise Failure(f"promtool check metrics rejected a scrape: {said}")
    problems = check_families(m)
    if problems:
        raise Failure("HELP/TYPE problems: " + "; ".join(problems[:20]))
    for fam, t in m.types.items():
        if t != "histogram":
            continue
        seen = set()
        for (n, ls) in m.order:
            if n == fam + "_count":
                seen.add(ls)
        for ls in seen:
            b, s, c = m.histogram(fam, **dict(ls))
            p = check_histogram(b, s, c)
            if p:
                raise Failure(f"histogram {fam}{_fmt_labels(dict(ls))}: " + "; ".join(p))
    return m


MONOTONIC_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


def check_monotonic(old, new):
    """Raises Failure naming every series of old that new shows lower."""
    down = []
    for key, v in new.items():
        name, ls = key
        if not name.endswith(MONOTONIC_SUFFIXES):
            continue
        was = old.get(key)
        if was is not None and v < was:
            down.append(f"{name}{_fmt_labels(dict(sorted(ls)))} {_n(was)} -> {_n(v)}")
    if down:
        raise Failure(f"{len(down)} series went down between two scrapes: " + "; ".join(down[:20]))


# ---------------------------------------------------------------- the daemon

_daemons = []


class Daemon:
    """build/erpscope on a free loopback port. Use as a context manager, or
    call start() and stop() (or kill()) yourself."""

    def __init__(self, *args, port=None, ready_timeout=60.0, expect_exit=0):
        self.args = list(args)
        self.port = port or free_port()
        self.ready_timeout = ready_timeout
        self.expect_exit = expect_exit
        self.proc = None
        self.logdir = tempdir("erpscope-log-")
        self.logpath = os.path.join(self.logdir, "erpscope.log")
        self.progs_before = {}
        self.our_progs = {}
        self.own_ids = None  # program ids our daemon holds, read once it serves
        self.stopped = False
        self.last_metrics = None  # for check_monotonic()
        _daemons.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def argv(self):
        # Tests poll /events and /workers faster than a person would: no
        # per-client rate unless the test sets one (test_web_limits does).
        rate = [] if any(a.startswith("--web.client-rate") for a in self.args) else \
            ["--web.client-rate=0"]
        return [ERPSCOPE, f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=debug"] + rate + self.args

    def start(self):
        if not os.access(ERPSCOPE, os.X_OK):
            raise Failure(f"{ERPSCOPE} is not built (make all)")
        self.progs_before = es_progs()
        if self.progs_before:
            log(f"WARNING: es_ programs already loaded before our daemon started "
                f"(another erpscope?): {describe_progs(self.progs_before)}")
        self.logf = open(self.logpath, "wb")
        log(f"starting {' '.join(self.argv())}")
        self.proc = spawn(self.argv(), stdout=self.logf, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise Failure(f"erpscope exited with {self.proc.returncode} before serving "
                              f"/metrics; log:\n{self.log_tail()}")
            try:
                st, _, _ = http_get(self.port, "/metrics", timeout=5)
                if st == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > self.ready_timeout:
                raise Failure(f"erpscope did not serve /metrics within {self.ready_timeout}s; "
                              f"log:\n{self.log_tail()}")
            time.sleep(0.1)
        self.own_ids = held_prog_ids(self.pid)
        self.our_progs = {i: p for i, p in es_progs().items() if i in self.own_ids}
        log(f"erpscope pid {self.pid} serving on 127.0.0.1:{self.port} after "
            f"{time.monotonic() - t0:.2f}s; {len(self.our_progs)} es_ programs: "
            f"{' '.join(sorted(p['name'] for p in self.our_progs.values()))}")
        return self

    def log_text(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        """The last n lines of the daemon's log, libbpf's debug chatter aside."""
        lines = [x for x in self.log_text().splitlines() if 'msg="libbpf"' not in x
                 or "level=debug" not in x]
        return "\n".join(lines[-n:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def scrape(self, path="/metrics", headers=None):
        """scrape(), and for /metrics: no counter, histogram count, sum or
        bucket went down since this daemon's previous scrape (a series may go
        away with its worker)."""
        if not self.alive():
            raise Failure(f"erpscope died (exit {self.proc.returncode}); log:\n{self.log_tail()}")
        m = scrape(self.port, path, headers)
        if path.split("?")[0] == "/metrics":
            if self.last_metrics is not None:
                check_monotonic(self.last_metrics, m)
            self.last_metrics = m
        return m

    def stop(self, timeout=15.0):
        """SIGTERM; asserts the exit status and that our programs are gone."""
        if self.stopped or self.proc is None:
            return
        self.stopped = True
        problems = []
        if self.proc.poll() is not None:
            problems.append(f"erpscope had already exited with {self.proc.returncode}")
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"erpscope did not exit within {timeout}s of SIGTERM")
                kill_group(self.proc)
            if self.proc.returncode != self.expect_exit and not problems:
                problems.append(f"erpscope exited with {self.proc.returncode} after SIGTERM, "
                                f"expected {self.expect_exit}")
        kill_group(self.proc)
        self.logf.close()
        left = wait_progs_gone(self.progs_before, 5.0, only=self.own_ids)
        if left:
            problems.append(f"es_ programs still loaded 5s after erpscope exited: "
                            f"{describe_progs(left)}")
        if problems:
            raise Failure("; ".join(problems) + f"\nerpscope log tail:\n{self.log_tail()}")
        log(f"erpscope stopped cleanly (exit {self.proc.returncode}, no es_ programs left)")

    def kill(self):
        """SIGKILL, without checks (the caller checks what it wants)."""
        self.stopped = True
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        kill_group(self.proc)
        self.logf.close()

    def __enter__(self):
        on_cleanup(self._cleanup)
        return self.start()

    def _cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            kill_group(self.proc)

    def __exit__(self, et, ev, tb):
        if et is None:
            self.stop()
        else:
            try:
                self.stop()
            except Failure as e:
                log(f"also, while stopping erpscope: {e}")
        return False


def worker_info(m, pid):
    """The labels of erpscope_worker_info for pid, or None."""
    s = m.series("erpscope_worker_info", pid=str(pid))
    return s[0][0] if s else None


def wait_worker(d, pid, timeout=10.0, role=None, interval=0.1):
    """Scrapes until erpscope_worker_info shows pid (with role, when given).
    Returns (labels, seconds it took, the Metrics), or (None, timeout, last)."""
    t0 = time.monotonic()
    last = None
    while True:
        last = d.scrape()
        info = worker_info(last, pid)
        if info and (role is None or info.get("role") == role):
            return info, time.monotonic() - t0, last
        if time.monotonic() - t0 > timeout:
            return None, timeout, last
        time.sleep(interval)


def worker_series(m, pid):
    """Every sample that names this worker (worker or pid label)."""
    p = str(pid)
    return [(n, dict(ls), v) for (n, ls), v in m.items()
            if dict(ls).get("worker") == p or dict(ls).get("pid") == p]


def offcpu(m, role, worker):
    return {r: m.value("erpscope_offcpu_seconds_total", 0.0, role=role, worker=str(worker),
                       reason=r) for r in OFFCPU_REASONS}


# ---------------------------------------------------------------- checks

class Test:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.prefix = ""  # e.g. "[raw_tp] " while a variant runs

    def check(self, cond, what, detail=""):
        what = self.prefix + what
        if cond:
            self.passed += 1
            log(f"ok    {what}" + (f"  ({detail})" if detail else ""))
        else:
            self.failed += 1
            log(f"FAIL  {what}" + (f"  ({detail})" if detail else ""))
        return bool(cond)

    def between(self, got, lo, hi, what):
        ok = got is not None and lo <= got <= hi
        return self.check(ok, what, f"expected in [{_n(lo)}, {_n(hi)}], got {_n(got)}")

    def near(self, got, want, rel, what, abs_tol=0.0):
        tol = abs(want) * rel + abs_tol
        ok = got is not None and abs(got - want) <= tol
        return self.check(ok, what, f"expected {_n(want)} +/- {_n(tol)} "
                          f"({rel * 100:g}%{f' + {abs_tol:g}' if abs_tol else ''}), got {_n(got)}"
                          + (f", off by {(got - want) / want * 100:+.1f}%" if got is not None
                             and want else ""))

    def near_oncpu(self, got, want, rel, what, steal):
        """got, time on a CPU by the scheduler's stamps, is want (CPU time
        as the kernel charged it) within rel, plus up to the steal seconds
        the host saw meanwhile (host_steal()) and one 10 ms tick of it."""
        lo, hi = want * (1 - rel), want * (1 + rel) + (steal + 0.01 if steal else 0.0)
        ok = got is not None and lo <= got <= hi
        return self.check(ok, what, f"expected {_n(want)} -{rel * 100:g}%/+{rel * 100:g}% "
                          f"+ {steal:.3f} s stolen, in [{_n(lo)}, {_n(hi)}], got {_n(got)}"
                          + (f", off by {(got - want) / want * 100:+.1f}%" if got is not None
                             and want else ""))

    def require(self, cond, what, detail=""):
        if not self.check(cond, what, detail):
            raise Failure(self.prefix + what + (f" ({detail})" if detail else ""))


def _n(x):
    if x is None:
        return "none"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def each_attach_mode(run):
    """A body for main() that runs run(t, mode) once per tracepoint flavour."""
    def body(t):
        for mode in ATTACH_MODES:
            t.prefix = f"[{mode}] "
            log(f"==== --bpf.attach-mode={mode}")
            run(t, mode)
    return body


def main(body):
    """Runs body(t) as a test: exit 0 / 1 / 77 as the module docstring says."""
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    t = Test(name)
    rc = 0
    try:
        require_privileges()
        body(t)
    except Skip as e:
        bar = "!" * 72
        if CI:
            print(f"{bar}\n!!! {name}: CANNOT RUN ({e}) and CI=true: FAILED\n{bar}", flush=True)
            rc = 1
        else:
            print(f"{bar}\n!!! SKIP {name}: {e}\n!!! this privileged test did NOT run; "
                  f"run `make test` as root on a kernel with BTF\n{bar}", flush=True)
            rc = SKIP
    except Failure as e:
        t.failed += 1
        log(f"FAIL  {e}")
    except Exception:
        t.failed += 1
        log("FAIL  the test crashed:\n" + traceback.format_exc())
    finally:
        if t.failed:
            for d in _daemons:
                print(f"---- erpscope log (pid {d.proc.pid if d.proc else '-'}, "
                      f"{' '.join(d.args) or 'default flags'}), last lines:\n{d.log_tail(30)}",
                      flush=True)
        _run_cleanups()
    if rc == 0:
        rc = 1 if t.failed else 0
        print(f"{name}: {t.passed} passed, {t.failed} failed", flush=True)
    sys.exit(rc)


# ---------------------------------------------------------------- PostgreSQL

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")


class PgCluster:
    """A throwaway PostgreSQL from Debian's packages, run as the postgres user
    in a temp dir under /var/tmp, on a free port, with its unix socket in that
    dir and no TCP listener. Always stopped (pg_ctl stop -m immediate, then
    SIGKILL to whatever is left) and removed, even when the test fails."""

    def __init__(self, cluster_name="15/erptest", settings=None):
        self.cluster_name = cluster_name
        self.settings = settings or {}
        self.port = free_port()
        self.dir = None
        self.started = False

    def _as_postgres(self, args, check=True, timeout=120):
        r = subprocess.run(["runuser", "-u", "postgres", "--"] + args, capture_output=True,
                           text=True, timeout=timeout, cwd="/")
        if check and r.returncode != 0:
            raise Failure(f"{' '.join(args)} failed ({r.returncode}): "
                          f"{(r.stdout + r.stderr).strip()[-2000:]}")
        return r

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    @property
    def socket_dir(self):
        return self.dir

    def start(self):
        if not os.path.exists(os.path.join(PG_BIN, "initdb")):
            raise Failure(f"{PG_BIN}/initdb missing (scripts/deps.sh installs postgresql)")
        self.dir = tempfile.mkdtemp(prefix="erpscope-pg-", dir="/var/tmp")
        on_cleanup(self.stop)
        shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o755)
        self._as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                           "--no-sync", "-E", "UTF8", "--locale=C"])
        conf = {
            "port": str(self.port),
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.dir}'",
            "cluster_name": f"'{self.cluster_name}'",
            "fsync": "off",
            "shared_buffers": "32MB",
            "max_connections": "20",
            "logging_collector": "off",
        }
        conf.update(self.settings)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# erpscope integration test\n")
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")
        self.started = True
        self._as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l",
                           os.path.join(self.dir, "server.log"), "-w", "-t", "60", "start"])
        log(f"PostgreSQL {self.cluster_name} up: port {self.port}, socket dir {self.dir}, "
            f"postmaster {self.postmaster_pid()}")
        return self

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def children(self):
        """{pid: cmdline} of the postmaster's children."""
        pm = self.postmaster_pid()
        out = {}
        for e in os.listdir("/proc"):
            if not e.isdigit():
                continue
            try:
                with open(f"/proc/{e}/stat", "rb") as f:
                    st = f.read()
                ppid = int(st[st.rindex(b")") + 2:].split()[1])
                if ppid != pm:
                    continue
                with open(f"/proc/{e}/cmdline", "rb") as f:
                    out[int(e)] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except (OSError, ValueError):
                continue
        return out

    def psql(self, sql, user="postgres", db="postgres"):
        r = subprocess.run([f"{PG_BIN}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.dir, "-p", str(self.port), "-U", user, "-d", db,
                            "-c", sql], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise Failure(f"psql {sql!r}: {r.stderr.strip()}")
        return r.stdout.strip()

    def connect(self, user="postgres", db="postgres"):
        import psycopg2  # python3-psycopg2, Debian's
        c = psycopg2.connect(host=self.dir, port=self.port, user=user, dbname=db)
        c.autocommit = True
        on_cleanup(c.close)
        return c

    def stop(self):
        if self.dir is None:
            return
        try:
            if self.started and os.path.exists(os.path.join(self.data, "postmaster.pid")):
                pm = self.postmaster_pid()
                r = self._as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate",
                                       "-w", "-t", "30", "stop"], check=False)
                if r.returncode != 0 and pm:
                    log(f"pg_ctl stop failed ({r.stderr.strip()}); SIGKILL postmaster {pm}")
                    kids = self.children()
                    for pid in [pm] + list(kids):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
        finally:
            self.started = False
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
