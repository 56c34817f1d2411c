"""Helpers for the monitoring/ tests: where its files are, Debian's
Prometheus and Alertmanager on temporary ports and data dirs (killed on
exit, even when the test fails), their HTTP APIs, and PromQL's metric and
label names as the live test checks them against a scrape."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
import urllib.parse

import lib

MON = os.path.join(lib.REPO, "monitoring")
RULES = os.path.join(MON, "rules", "erpscope.rules.yml")
ALERTS = os.path.join(MON, "alerts", "erpscope.alerts.yml")
RUNBOOKS = os.path.join(MON, "alerts", "runbooks.md")
AM_CONFIG = os.path.join(MON, "alertmanager", "alertmanager.example.yml")
DASHBOARDS = ("health.json", "performance.json", "business.json")
PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
ALERTMANAGER = os.environ.get("ALERTMANAGER", "/usr/bin/prometheus-alertmanager")
AMTOOL = os.environ.get("AMTOOL", "amtool")

# No GPU on the test hosts (issue 17): promtool unit tests only. Nothing
# else may be absent from the live scrape.
NOT_LIVE_PREFIX = "erpscope_gpu_"


def run(argv, check=True, timeout=120, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise lib.Failure(f"{' '.join(argv)} exited {r.returncode}: "
                          f"{(r.stdout + r.stderr).strip()[-3000:]}")
    return r


def need(tool):
    path = shutil.which(tool)
    if path is None:
        raise lib.Failure(f"{tool} is not installed (scripts/deps.sh installs prometheus and "
                          "prometheus-alertmanager)")
    return path


def load_yaml(path):
    import yaml  # python3-yaml
    with open(path) as f:
        return yaml.safe_load(f)


def dump_yaml(doc, path):
    import yaml
    with open(path, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True, width=1000)


def alert_rules(doc):
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def record_rules(doc):
    return [r for g in doc["groups"] for r in g["rules"] if "record" in r]


def dashboard_panels():
    """[(dashboard, title, [expr])] of the committed dashboards."""
    out = []
    for name in DASHBOARDS:
        with open(os.path.join(MON, "dashboards", name)) as f:
            d = json.load(f)
        for p in d["panels"]:
            out.append((name, p["title"], [t["expr"] for t in p["targets"]]))
    return out


class Service:
    """A server process in its own process group, with its log in a temp
    dir; killed at cleanup."""

    def __init__(self, name, argv, port, ready_path):
        self.name, self.port = name, port
        self.dir = lib.tempdir(f"erpscope-{name}-")
        self.logf = open(os.path.join(self.dir, f"{name}.log"), "wb")
        lib.log(f"starting {' '.join(argv)}")
        self.proc = lib.spawn(argv, stdout=self.logf, stderr=subprocess.STDOUT, cwd=self.dir)
        lib.on_cleanup(self.stop)
        ok = lib.wait_for(lambda: self._ready(ready_path), 30.0, 0.2, f"{name} ready")
        if not ok:
            raise lib.Failure(f"{name} did not answer {ready_path} in 30 s; log:\n{self.log()}")

    def _ready(self, path):
        if self.proc.poll() is not None:
            raise lib.Failure(f"{self.name} exited {self.proc.returncode}; log:\n{self.log()}")
        try:
            st, _, _ = lib.http_get(self.port, path, timeout=2)
            return st == 200
        except OSError:
            return False

    def log(self):
        try:
            with open(self.logf.name, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def get(self, path, **params):
        q = urllib.parse.urlencode(params)
        st, _, body = lib.http_get(self.port, path + ("?" + q if q else ""), timeout=30)
        if st != 200:
            raise lib.Failure(f"{self.name} {path} {params}: HTTP {st}: {body[:500]}")
        return json.loads(body)

    def post(self, path, doc):
        st, _, body = lib.http_get(self.port, path, method="POST",
                                   body=json.dumps(doc).encode(),
                                   headers={"Content-Type": "application/json"})
        if st != 200:
            raise lib.Failure(f"{self.name} POST {path}: HTTP {st}: {body[:500]}")

    def stop(self):
        if self.proc.poll() is None:
            lib.kill_group(self.proc)
        self.logf.close()


# PromQL names: a word followed by "(" is a function or aggregation; words in
# by/without (...) and on/ignoring (...) and group_left/right (...) are labels;
# keywords and durations are neither.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
             "unless", "offset", "bool", "inf", "nan", "time", "vector", "scalar"}


def promql_names(expr):
    """(metric names, {metric: {label names in its matchers}}, grouping
    labels) of a PromQL expression (good enough for our own expressions)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string contents out
    s = re.sub(r"\[[^\]]*\]", "", s)              # range selectors out
    s = re.sub(r"\boffset\s+\w+", "", s)           # offsets out
    s = re.sub(r"(?<![\w:])\d[\w.]*", "", s)       # numbers out
    grouping = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", s):
        grouping |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    s2 = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", s)
    metrics, matchers = set(), {}
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?", s2):
        name, sel, call = m.group(1), m.group(2), m.group(3)
        if call or name.lower() in _KEYWORDS or re.fullmatch(r"\d.*", name):
            continue
        metrics.add(name)
        if sel:
            labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", sel))
            matchers.setdefault(name, set()).update(labels)
    return metrics, matchers, grouping


def main(body):
    """lib.main without the root/BPF requirement, for tests that load none."""
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    t = lib.Test(name)
    try:
        body(t)
    except lib.Failure as e:
        t.failed += 1
        lib.log(f"FAIL  {e}")
    except Exception:
        t.failed += 1
        lib.log("FAIL  the test crashed:\n" + traceback.format_exc())
    finally:
        lib._run_cleanups()
    print(f"{name}: {t.passed} passed, {t.failed} failed", flush=True)
    sys.exit(1 if t.failed else 0)
