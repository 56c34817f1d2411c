#!/usr/bin/python3
"""Lints erpscope's alert and recording rules beyond `promtool check rules`.

Fails (exit 1, one line per problem) on: an alert name used twice, an alert
without a severity label (critical, warning or info) or without summary,
description or runbook_url annotations, a runbook_url whose #anchor has no
section in runbooks.md, a runbooks.md section no alert links to, and a
recording rule not named level:metric:operations.

    lint.py [--runbooks PATH] [RULE_FILE...]

Without files: monitoring/alerts/*.yml and monitoring/rules/*.yml next to
this script, and monitoring/alerts/runbooks.md.
"""

import glob
import os
import re
import sys

import yaml

SEVERITIES = ("critical", "warning", "info")
ANNOTATIONS = ("summary", "description", "runbook_url")
RECORD = re.compile(r"^[a-z_]+:[a-zA-Z_][a-zA-Z0-9_]*:[a-z0-9_]+$")


def slug(heading):
    """GitHub's anchor for a markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def sections(path):
    with open(path) as f:
        return {slug(m.group(1)) for m in re.finditer(r"^##\s+(.+)$", f.read(), re.M)}


def lint(files, runbooks):
    problems = []
    anchors = sections(runbooks)
    linked = set()
    seen = {}
    for path in files:
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
        for g in doc.get("groups") or []:
            for r in g.get("rules") or []:
                if "record" in r:
                    if not RECORD.match(r["record"]):
                        problems.append(f"{path}: recording rule {r['record']!r} is not "
                                        "named level:metric:operations")
                    continue
                name = r.get("alert")
                where = f"{path}: alert {name}"
                if name in seen:
                    problems.append(f"{where}: duplicate alert name (also in {seen[name]})")
                seen[name] = path
                sev = (r.get("labels") or {}).get("severity")
                if sev not in SEVERITIES:
                    problems.append(f"{where}: severity label {sev!r} is not one of "
                                    f"{', '.join(SEVERITIES)}")
                ann = r.get("annotations") or {}
                for a in ANNOTATIONS:
                    if not str(ann.get(a) or "").strip():
                        problems.append(f"{where}: no {a} annotation")
                url = str(ann.get("runbook_url") or "")
                if url:
                    base, _, anchor = url.partition("#")
                    if not base.endswith("runbooks.md") or not anchor:
                        problems.append(f"{where}: runbook_url {url!r} is not "
                                        "runbooks.md#<section>")
                    elif anchor not in anchors:
                        problems.append(f"{where}: runbook_url anchor #{anchor} has no "
                                        f"section in {runbooks}")
                    linked.add(anchor)
    for a in sorted(anchors - linked):
        problems.append(f"{runbooks}: section #{a} belongs to no alert")
    return problems, len(seen)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    runbooks = os.path.join(here, "alerts", "runbooks.md")
    if len(argv) >= 2 and argv[0] == "--runbooks":
        runbooks, argv = argv[1], argv[2:]
    files = argv or sorted(glob.glob(os.path.join(here, "alerts", "*.yml"))
                           + glob.glob(os.path.join(here, "rules", "*.yml")))
    problems, n = lint(files, runbooks)
    for p in problems:
        print(p)
    print(f"lint: {n} alerts, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
