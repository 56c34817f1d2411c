#!/usr/bin/python3.11
"""monitoring/ with Debian's real tools, no daemon (test_monitoring_live.py
runs the rules and dashboards against a live erpscope):

  - promtool check rules on the recording rules and the alerts
  - promtool test rules: monitoring/tests/alerts_test.yml against a copy of
    the alerts without annotations (behaviour: each alert fires with its
    labels, its near miss does not), every alert covered; then the same
    cases with the annotations of monitoring/tests/annotations.yml added,
    against the real file (what the summary and description render);
    monitoring/tests/rules_test.yml for recording rules with known answers
  - monitoring/lint.py passes, and fails on a duplicate alert name, a
    missing severity, summary, description or runbook_url, and a runbook
    anchor without a section
  - amtool check-config on the Alertmanager example; `amtool config routes
    test` sends each severity to its receiver; a real Alertmanager
    (prometheus-alertmanager on a temporary port) given each inhibition
    case's source and target alerts mutes the target, and not the near miss
    (another instance, role, cluster or mount)
  - the dashboards are what monitoring/dashboards/generate.py writes, each
    panel titled as a question, on the ${datasource} variable
  - promtool check config on the Prometheus example (its rule paths pointed
    at the repository's files)
  - `make install DESTDIR=...` installs monitoring/ under
    /usr/share/erpscope/monitoring
"""

import copy
import filecmp
import json
import os
import re
import shutil
import subprocess

import lib
import monitoring_tools as mt


def check_rules(t):
    for f in (mt.RULES, mt.ALERTS):
        r = mt.run([mt.need(lib.PROMTOOL), "check", "rules", f], check=False)
        t.check(r.returncode == 0, f"promtool check rules {os.path.relpath(f, lib.REPO)}",
                (r.stdout + r.stderr).strip().splitlines()[-1])


def unit_tests(t, tmp):
    promtool = mt.need(lib.PROMTOOL)
    copy_dir = os.path.join(tmp, "monitoring")
    shutil.copytree(mt.MON, copy_dir)
    alerts = mt.load_yaml(mt.ALERTS)
    tests = mt.load_yaml(os.path.join(mt.MON, "tests", "alerts_test.yml"))
    expected = mt.load_yaml(os.path.join(mt.MON, "tests", "annotations.yml"))

    names = [r["alert"] for r in mt.alert_rules(alerts)]
    fired = {}
    for case in tests["tests"]:
        for a in case["alert_rule_test"]:
            if a.get("exp_alerts"):
                fired[a["alertname"]] = len(a["exp_alerts"])
    missing = [n for n in names if n not in fired]
    t.check(not missing, f"every alert ({len(names)}) has a firing unit test case",
            f"none for {missing}")
    missing = [n for n in names if len(expected.get(n, [])) != fired.get(n)]
    t.check(not missing, "annotations.yml has the annotations of every firing case",
            f"missing or miscounted: {missing}")

    # behaviour: the alerts without annotations
    stripped = copy.deepcopy(alerts)
    for r in mt.alert_rules(stripped):
        r.pop("annotations", None)
    mt.dump_yaml(stripped, os.path.join(copy_dir, "alerts", "erpscope.alerts.yml"))
    r = mt.run([promtool, "test", "rules", os.path.join(copy_dir, "tests", "alerts_test.yml")],
               check=False)
    t.check(r.returncode == 0, "promtool test rules alerts_test.yml: every alert fires with "
            "its labels and no near miss fires", (r.stdout + r.stderr).strip()[-3000:])

    # annotations: the same cases on the real file, annotations expected
    shutil.copy(mt.ALERTS, os.path.join(copy_dir, "alerts", "erpscope.alerts.yml"))
    with_ann = copy.deepcopy(tests)
    for case in with_ann["tests"]:
        for a in case["alert_rule_test"]:
            for i, e in enumerate(a.get("exp_alerts") or []):
                e["exp_annotations"] = expected[a["alertname"]][i]
    path = os.path.join(copy_dir, "tests", "annotations_test.yml")
    mt.dump_yaml(with_ann, path)
    r = mt.run([promtool, "test", "rules", path], check=False)
    t.check(r.returncode == 0, "promtool test rules: every firing case renders the summary, "
            "description and runbook_url of annotations.yml", (r.stdout + r.stderr).strip()[-3000:])

    # a wrong expected annotation fails (the check above can fail)
    name = names[0]
    for case in with_ann["tests"]:
        for a in case["alert_rule_test"]:
            if a["alertname"] == name:
                a["exp_alerts"][0]["exp_annotations"]["summary"] += " (not this)"
    mt.dump_yaml(with_ann, path)
    r = mt.run([promtool, "test", "rules", path], check=False)
    t.check(r.returncode != 0 and name in r.stdout + r.stderr,
            f"promtool fails when {name}'s expected summary differs")

    r = mt.run([promtool, "test", "rules", os.path.join(mt.MON, "tests", "rules_test.yml")],
               check=False)
    t.check(r.returncode == 0, "promtool test rules rules_test.yml (recording rules)",
            (r.stdout + r.stderr).strip()[-2000:])


def lint(t, tmp):
    lint_py = os.path.join(mt.MON, "lint.py")
    r = mt.run([lib.PYTHON, lint_py], check=False)
    t.check(r.returncode == 0, "lint.py passes on monitoring/", r.stdout.strip()[-2000:])

    base = mt.load_yaml(mt.ALERTS)
    first = mt.alert_rules(base)[0]

    def broken(what, change, want):
        doc = copy.deepcopy(base)
        change(doc, mt.alert_rules(doc))
        path = os.path.join(tmp, "lint-" + re.sub(r"[^a-z]+", "-", what) + ".yml")
        mt.dump_yaml(doc, path)
        r = mt.run([lib.PYTHON, lint_py, "--runbooks", mt.RUNBOOKS, path, mt.RULES], check=False)
        t.check(r.returncode == 1 and want in r.stdout, f"lint.py fails on {what}",
                r.stdout.strip().splitlines()[0] if r.stdout.strip() else "no output")

    broken("a duplicate alert name", lambda d, rs: d["groups"][0]["rules"].append(
        copy.deepcopy(rs[0])), f"alert {first['alert']}: duplicate alert name")
    broken("a missing severity", lambda d, rs: rs[0]["labels"].pop("severity"),
           "severity label None")
    broken("a severity outside critical/warning/info",
           lambda d, rs: rs[0]["labels"].update(severity="page"), "severity label 'page'")
    for a in ("summary", "description", "runbook_url"):
        broken(f"a missing {a}", lambda d, rs, a=a: rs[0]["annotations"].pop(a), f"no {a} annotation")
    broken("a runbook link without a section",
           lambda d, rs: rs[0]["annotations"].update(
               runbook_url=rs[0]["annotations"]["runbook_url"] + "-gone"),
           "has no section in")


def alertmanager(t):
    amtool = mt.need(mt.AMTOOL)
    r = mt.run([amtool, "check-config", mt.AM_CONFIG], check=False)
    t.check(r.returncode == 0, "amtool check-config alertmanager.example.yml",
            (r.stdout + r.stderr).strip()[-1000:])

    def route(labels, receiver, what):
        r = mt.run([amtool, "config", "routes", "test", f"--config.file={mt.AM_CONFIG}",
                    f"--verify.receivers={receiver}"]
                   + [f"{k}={v}" for k, v in labels.items()], check=False)
        t.check(r.returncode == 0, f"amtool config routes test: {what} goes to {receiver}",
                r.stdout.strip())

    route({"alertname": "ErpscopeDown", "severity": "critical", "instance": "h1"}, "pager",
          "critical")
    route({"alertname": "OdooCronStuck", "severity": "warning", "instance": "h1"},
          "team-channel", "warning")
    route({"alertname": "PostgresDeadlocks", "severity": "info", "instance": "h1"},
          "daily-digest", "info")
    route({"alertname": "Unlabelled", "instance": "h1"}, "team-channel",
          "an alert without severity")

    # Inhibition: (source, muted target, near miss that stays active).
    cases = [
        ({"alertname": "ErpscopeDown", "severity": "critical", "instance": "h1", "job": "erpscope"},
         {"alertname": "OdooWorkerPoolSaturated", "severity": "critical", "instance": "h1",
          "role": "odoo_http"},
         {"alertname": "OdooWorkerPoolSaturated", "severity": "critical", "instance": "h2",
          "role": "odoo_http"}),
        ({"alertname": "OdooWorkerPoolSaturated", "severity": "critical", "instance": "h3",
          "role": "odoo_http"},
         {"alertname": "OdooRouteLatencyHigh", "severity": "warning", "instance": "h3",
          "role": "odoo_http", "route": "/web/dataset/call_kw", "quantile": "0.95"},
         {"alertname": "HostCpuHigh", "severity": "warning", "instance": "h3"}),
        ({"alertname": "OdooWorkerPoolSaturated", "severity": "critical", "instance": "h3",
          "role": "odoo_http"},
         {"alertname": "OdooListenQueueWaitHigh", "severity": "warning", "instance": "h3",
          "role": "odoo_http", "port": "8069", "quantile": "0.95"},
         {"alertname": "OdooRpcLatencyHigh", "severity": "warning", "instance": "h4",
          "role": "odoo_http", "model": "sale.order", "method": "read", "quantile": "0.95"}),
        ({"alertname": "OdooWorkerOOMKilled", "severity": "critical", "instance": "h5",
          "role": "odoo_http"},
         {"alertname": "OdooWorkerRestarts", "severity": "warning", "instance": "h5",
          "role": "odoo_http"},
         {"alertname": "OdooWorkerRestarts", "severity": "warning", "instance": "h5",
          "role": "odoo_cron"}),
        ({"alertname": "OdooWorkerKilledByMaster", "severity": "warning", "instance": "h6",
          "role": "odoo_http"},
         {"alertname": "OdooWorkerRestarts", "severity": "warning", "instance": "h6",
          "role": "odoo_http"},
         {"alertname": "OdooWorkerRestarts", "severity": "warning", "instance": "h7",
          "role": "odoo_http"}),
        ({"alertname": "PostgresConnectionsExhausted", "severity": "critical", "instance": "h8",
          "cluster": "15/main"},
         {"alertname": "PostgresConnectionsNearLimit", "severity": "warning", "instance": "h8",
          "cluster": "15/main"},
         {"alertname": "PostgresConnectionsNearLimit", "severity": "warning", "instance": "h8",
          "cluster": "15/other"}),
        ({"alertname": "HostFilesystemFillingUp", "severity": "critical", "instance": "h9",
          "mountpoint": "/"},
         {"alertname": "HostFilesystemAlmostFull", "severity": "warning", "instance": "h9",
          "mountpoint": "/"},
         {"alertname": "HostFilesystemAlmostFull", "severity": "warning", "instance": "h9",
          "mountpoint": "/srv"}),
    ]
    receivers = {"critical": "pager", "warning": "team-channel", "info": "daily-digest"}
    for src, target, miss in cases:
        for a in (src, target, miss):
            route(a, receivers[a["severity"]], f"{a['alertname']}{{instance={a['instance']}}}")

    port = lib.free_port()
    am = mt.Service("alertmanager", [
        mt.need(mt.ALERTMANAGER), f"--config.file={mt.AM_CONFIG}",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        f"--storage.path={lib.tempdir('erpscope-am-data-')}"], port, "/-/ready")
    am.post("/api/v2/alerts", [{"labels": a, "annotations": {}}
                               for case in cases for a in case])

    def key(labels):
        return tuple(sorted(labels.items()))

    def states():
        return {key(a["labels"]): a["status"] for a in am.get("/api/v2/alerts")}

    def settled():
        st = states()
        return st if all(st.get(key(c[1]), {}).get("state") == "suppressed"
                         for c in cases) and len(st) >= len({key(a) for c in cases
                                                              for a in c}) else None

    st = lib.wait_for(settled, 15.0, 0.2) or states()
    for src, target, miss in cases:
        what = f"{src['alertname']} on {src['instance']}"
        got = st.get(key(target), {})
        t.check(got.get("state") == "suppressed" and got.get("inhibitedBy"),
                f"Alertmanager: {what} inhibits {target['alertname']} "
                f"({', '.join(f'{k}={v}' for k, v in target.items() if k not in ('alertname', 'severity'))})",
                json.dumps(got))
        got = st.get(key(miss), {})
        t.check(got.get("state") == "active" and not got.get("inhibitedBy"),
                f"Alertmanager: {what} leaves {miss['alertname']} "
                f"({', '.join(f'{k}={v}' for k, v in miss.items() if k not in ('alertname', 'severity'))}) active",
                json.dumps(got))
    am.stop()


def dashboards(t, tmp):
    out = os.path.join(tmp, "dashboards")
    os.mkdir(out)
    mt.run([lib.PYTHON, os.path.join(mt.MON, "dashboards", "generate.py"), out])
    for name in mt.DASHBOARDS:
        t.check(filecmp.cmp(os.path.join(out, name), os.path.join(mt.MON, "dashboards", name),
                            shallow=False),
                f"dashboards/{name} is what generate.py writes (run it after editing)")
    panels = mt.dashboard_panels()
    bad = [f"{d}: {title}" for d, title, _ in panels if not title.endswith("?")]
    t.check(not bad, f"every panel ({len(panels)}) is titled by its question", f"{bad}")
    for name in mt.DASHBOARDS:
        with open(os.path.join(mt.MON, "dashboards", name)) as f:
            d = json.load(f)
        names = [v["name"] for v in d["templating"]["list"]]
        uses = {t2["datasource"]["uid"] for p in d["panels"] for t2 in p["targets"]}
        t.check(names == ["datasource", "instance", "role"] and uses == {"${datasource}"},
                f"{name}: datasource, instance and role variables; every query on ${{datasource}}",
                f"{names} {uses}")


def prometheus_example(t, tmp):
    doc = mt.load_yaml(os.path.join(mt.MON, "prometheus.example.yml"))
    t.check([os.path.basename(f) for f in doc["rule_files"]]
            == ["erpscope.rules.yml", "erpscope.alerts.yml"]
            and doc["scrape_configs"][0]["job_name"] == "erpscope"
            and doc["scrape_configs"][0].get("honor_labels") is True,
            "prometheus.example.yml: job erpscope, honor_labels, both rule files")
    doc["rule_files"] = [mt.RULES, mt.ALERTS]
    path = os.path.join(tmp, "prometheus.yml")
    mt.dump_yaml(doc, path)
    r = mt.run([mt.need(lib.PROMTOOL), "check", "config", path], check=False)
    t.check(r.returncode == 0, "promtool check config prometheus.example.yml",
            (r.stdout + r.stderr).strip()[-1500:])


def install(t, tmp):
    dest = os.path.join(tmp, "root")
    r = mt.run(["make", "-C", lib.REPO, "-s", "install", f"DESTDIR={dest}"], check=False,
               timeout=600)
    t.require(r.returncode == 0, "make install DESTDIR=...", (r.stdout + r.stderr)[-2000:])
    share = os.path.join(dest, "usr", "share", "erpscope", "monitoring")
    want = ["rules/erpscope.rules.yml", "alerts/erpscope.alerts.yml", "alerts/runbooks.md",
            "alertmanager/alertmanager.example.yml", "prometheus.example.yml"] + \
        [f"dashboards/{d}" for d in mt.DASHBOARDS]
    missing = [w for w in want if not os.path.exists(os.path.join(share, w))
               or not filecmp.cmp(os.path.join(share, w), os.path.join(mt.MON, w), shallow=False)]
    t.check(not missing, "make install puts monitoring/ under /usr/share/erpscope/monitoring",
            f"missing or different: {missing}")


def body(t):
    tmp = lib.tempdir("erpscope-monitoring-")
    check_rules(t)
    unit_tests(t, tmp)
    lint(t, tmp)
    alertmanager(t)
    dashboards(t, tmp)
    prometheus_example(t, tmp)
    install(t, tmp)


if __name__ == "__main__":
    mt.main(body)
