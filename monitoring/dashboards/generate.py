#!/usr/bin/python3
"""Writes erpscope's three Grafana dashboards (health.json, performance.json,
business.json) from the panel lists below, so that they share variables,
datasource and layout. Each panel is titled by the question it answers.

    generate.py [OUTDIR]      (default: this script's directory)

The JSON files are committed; tests/integration/test_monitoring.py checks
they are what this script writes, and test_monitoring_live.py runs every
panel's query against a Prometheus scraping a live erpscope.
"""

import json
import os
import sys

# Panel queries may use $instance, $role (regex variables, "All" is .*) and
# $__rate_interval.
I = 'instance=~"$instance"'
IR = 'instance=~"$instance",role=~"$role"'
RI = "$__rate_interval"


def p(title, exprs, unit="short", kind="timeseries", legend=None, desc=""):
    if isinstance(exprs, str):
        exprs = [exprs]
    return dict(title=title, exprs=exprs, unit=unit, kind=kind, legend=legend, desc=desc)


HEALTH = ("erpscope: health", "erpscope-health", "What the on-call engineer opens first.", [
    p("Is erpscope up on each host?", f'up{{job="erpscope",{I}}}', kind="stat", legend="{{instance}}"),
    p("Are all probes attached?", f"erpscope_probe_up{{{I}}}", kind="stat",
      legend="{{instance}} {{probe}}"),
    p("Are the Odoo HTTP workers saturated?",
      f'instance_role:erpscope_worker_busy:ratio_rate5m{{{I},role="odoo_http"}}',
      unit="percentunit", legend="{{instance}} {{role}}",
      desc="Busy share of the pool; alert above 90% for 5 minutes."),
    p("How long do connections wait for a worker (p95)?",
      f'instance_role_port:erpscope_listen_queue_wait_seconds:histogram_quantile5m{{{IR},quantile="0.95"}}',
      unit="s", legend="{{instance}} {{role}} :{{port}}"),
    p("Which routes fail (5xx, killed, reset)?",
      f'sum by (instance, route, code) (instance_role_route_code:erpscope_http_requests:rate5m{{{IR},code=~"5..|killed|reset"}})',
      unit="reqps", legend="{{instance}} {{route}} {{code}}"),
    p("Did workers die, and why?",
      f'sum by (instance, role, reason) (increase(erpscope_worker_exits_total{{{IR},reason!="normal"}}[1h]))',
      legend="{{instance}} {{role}} {{reason}}"),
    p("Were workers OOM-killed?", f"sum by (instance, role) (increase(erpscope_oom_kills_total{{{IR}}}[1h]))",
      legend="{{instance}} {{role}}"),
    p("Which outbound destinations fail?",
      f"sum by (instance, role, remote, reason) (rate(erpscope_tcp_connect_failures_total{{{IR}}}[{RI}]))",
      unit="cps", legend="{{role}} -> {{remote}} {{reason}}"),
    p("Is the host short of CPU, memory or disk?",
      [f"instance:erpscope_host_cpu_utilization:ratio_rate5m{{{I}}}",
       f"erpscope_host_memory_utilization_ratio{{{I}}}",
       f"max by (instance) (erpscope_filesystem_used_ratio{{{I}}})"],
      unit="percentunit"),
    p("Do tasks stall on CPU, memory or I/O (PSI)?",
      f'rate(erpscope_pressure_seconds_total{{{I},kind="some"}}[{RI}])',
      unit="percentunit", legend="{{instance}} {{resource}}"),
    p("Is PostgreSQL near max_connections?",
      f"instance_cluster:erpscope_pg_connections:ratio{{{I}}}", unit="percentunit",
      legend="{{instance}} {{cluster}}"),
    p("Is erpscope losing events or map entries?",
      [f"sum by (instance, probe) (rate(erpscope_ringbuf_drops_total{{{I}}}[{RI}]))",
       f"sum by (instance, map) (rate(erpscope_bpf_map_update_errors_total{{{I}}}[{RI}]))"],
      unit="ops"),
])

PERFORMANCE = ("erpscope: performance", "erpscope-performance",
               "For incident investigation: latency, where the time goes, statements, queues.", [
    p("Which routes are slowest (p95)?",
      f'topk(10, instance_role_route:erpscope_http_request_duration_seconds:histogram_quantile5m{{{IR},quantile="0.95"}})',
      unit="s", legend="{{route}}"),
    p("Which routes are slowest (p99)?",
      f'topk(10, instance_role_route:erpscope_http_request_duration_seconds:histogram_quantile5m{{{IR},quantile="0.99"}})',
      unit="s", legend="{{route}}"),
    p("Which RPCs are slowest (p95)?",
      f'topk(10, instance_role_model_method:erpscope_odoo_rpc_duration_seconds:histogram_quantile5m{{{IR},quantile="0.95"}})',
      unit="s", legend="{{model}}.{{method}}"),
    p("Where does request time go?",
      f"sum by (part) (instance_role_route_part:erpscope_http_request_time_seconds:rate5m{{{IR}}})",
      unit="s", legend="{{part}}", desc="Seconds per second spent by requests in each part."),
    p("How much of each route's time is PostgreSQL?",
      f"instance_role_route:erpscope_http_request_pg_time:ratio_rate5m{{{IR}}}",
      unit="percentunit", legend="{{route}}"),
    p("How many statements does each route send per request?",
      f"sum by (route) (rate(erpscope_http_request_pg_statements_total{{{IR}}}[{RI}]))"
      f" / sum by (route) (rate(erpscope_http_request_duration_seconds_count{{{IR}}}[{RI}]))",
      legend="{{route}}"),
    p("Which statements cost the most time?",
      f"topk(10, instance_db_fingerprint:erpscope_pg_statement_seconds:rate5m{{{I}}})",
      unit="s", legend="{{db}} {{fingerprint}}", desc="Texts at /queries."),
    p("Which statements run most often?",
      f"topk(10, instance_db_fingerprint:erpscope_pg_statement_calls:rate5m{{{I}}})",
      unit="ops", legend="{{db}} {{fingerprint}}"),
    p("How slow are statements by command (p95)?",
      f'instance_db_command:erpscope_pg_query_duration_seconds:histogram_quantile5m{{{I},quantile="0.95"}}',
      unit="s", legend="{{db}} {{command}}"),
    p("How many statements are slow?",
      f"sum by (db) (rate(erpscope_pg_slow_queries_total{{{I}}}[{RI}]))", unit="ops", legend="{{db}}"),
    p("Are statements waiting for locks?",
      f"sum by (db, locktype) (rate(erpscope_pg_lock_wait_seconds_count{{{I}}}[{RI}]))",
      unit="ops", legend="{{db}} {{locktype}}"),
    p("How full are the listen queues?",
      f"instance_role_port:erpscope_listen_queue:ratio{{{IR}}}", unit="percentunit",
      legend="{{role}} :{{port}}"),
    p("Where does workers' off-CPU time go?",
      f"instance_role_reason:erpscope_offcpu_seconds:rate5m{{{IR}}}", unit="s",
      legend="{{role}} {{reason}}"),
    p("Which workers wait for the disk?",
      f"topk(10, instance_role_worker_device:erpscope_iowait:ratio_rate5m{{{IR}}})",
      unit="percentunit", legend="{{role}} {{worker}} {{device}}"),
    p("Do workers wait for a CPU (p99 runqueue latency)?",
      f"histogram_quantile(0.99, sum by (role, le) (rate(erpscope_runqueue_latency_seconds_bucket{{{IR}}}[{RI}])))",
      unit="s", legend="{{role}}"),
    p("Which Python functions burn CPU?",
      f"topk(10, sum by (role, function) (rate(erpscope_python_function_cpu_seconds_total{{{IR}}}[{RI}])))",
      unit="s", legend="{{role}} {{function}}"),
])

BUSINESS = ("erpscope: business", "erpscope-business",
            "Cron health, integrations, queue jobs, business operations.", [
    p("How long do crons take (p95)?",
      f"histogram_quantile(0.95, sum by (cron, le) (rate(erpscope_odoo_cron_duration_seconds_bucket{{{I}}}[1h])))",
      unit="s", legend="{{cron}}"),
    p("Which crons fail?",
      f"sum by (cron, result) (increase(erpscope_odoo_cron_runs_total{{{I}}}[1h]))",
      legend="{{cron}} {{result}}"),
    p("How long ago did each cron last succeed?",
      f"time() - erpscope_odoo_cron_last_success_timestamp_seconds{{{I}}}", unit="s",
      kind="table", legend="{{cron}}"),
    p("Are cron workers waking up (wake-ups per minute; 0 is stuck)?",
      f'60 * sum by (instance, worker) (rate(erpscope_context_switches_total{{{I},role="odoo_cron",kind="voluntary"}}[5m]))',
      legend="{{instance}} cron worker {{worker}}"),
    p("Which integrations fail to connect?",
      f'sum by (remote, reason) (increase(erpscope_tcp_connect_failures_total{{{I},role=~"odoo_.*"}}[1h]))',
      legend="{{remote}} {{reason}}"),
    p("How fast do integrations accept connections (p95)?",
      f'histogram_quantile(0.95, sum by (remote, le) (rate(erpscope_tcp_connect_latency_seconds_bucket{{{I},role=~"odoo_.*"}}[{RI}])))',
      unit="s", legend="{{remote}}"),
    p("How many queue jobs run, and how do they end?",
      f'sum by (code) (rate(erpscope_http_request_duration_seconds_count{{{I},route="/queue_job/runjob"}}[{RI}]))',
      unit="ops", legend="{{code}}"),
    p("How long do queue jobs take (p95)?",
      f'histogram_quantile(0.95, sum by (le) (rate(erpscope_http_request_duration_seconds_bucket{{{I},route="/queue_job/runjob"}}[{RI}])))',
      unit="s"),
    p("Which business operations are called most?",
      f"topk(10, instance_role_model_method:erpscope_odoo_rpcs:rate5m{{{IR}}})",
      unit="reqps", legend="{{model}}.{{method}}"),
    p("How many requests per minute do users send?",
      f"60 * sum by (role) (instance_role_route_code:erpscope_http_requests:rate5m{{{IR}}})",
      legend="{{role}}"),
    p("Do transactions commit or abort?",
      f"sum by (db, outcome) (rate(erpscope_pg_transactions_total{{{I}}}[{RI}]))",
      unit="ops", legend="{{db}} {{outcome}}"),
])

DS = {"type": "prometheus", "uid": "${datasource}"}


def variables():
    def query(name, q, label):
        return {"name": name, "label": label, "type": "query", "datasource": DS,
                "query": {"query": q, "refId": name}, "definition": q, "refresh": 2,
                "includeAll": True, "allValue": ".*", "multi": True, "sort": 1,
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}},
        query("instance", "label_values(erpscope_build_info, instance)", "Instance"),
        query("role", 'label_values(erpscope_workers_tracked{instance=~"$instance"}, role)', "Role"),
    ]


def panel(i, spec):
    w = 12 if spec["kind"] == "timeseries" else 6 if spec["kind"] == "stat" else 12
    h = 8 if spec["kind"] != "stat" else 5
    targets = []
    for n, e in enumerate(spec["exprs"]):
        t = {"refId": chr(ord("A") + n), "expr": e, "datasource": DS}
        if spec["legend"]:
            t["legendFormat"] = spec["legend"]
        if spec["kind"] == "table":
            t["format"] = "table"
            t["instant"] = True
        targets.append(t)
    return {"id": i + 1, "type": spec["kind"], "title": spec["title"],
            "description": spec["desc"], "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": {"unit": spec["unit"]}, "overrides": []},
            "options": {}, "gridPos": {"h": h, "w": w, "x": 0, "y": 0}}


def layout(panels):
    x = y = rowh = 0
    for pn in panels:
        g = pn["gridPos"]
        if x + g["w"] > 24:
            x, y, rowh = 0, y + rowh, 0
        g["x"], g["y"] = x, y
        x += g["w"]
        rowh = max(rowh, g["h"])
    return panels


def dashboard(title, uid, desc, specs):
    return {"title": title, "uid": uid, "description": desc, "tags": ["erpscope", "odoo"],
            "editable": True, "schemaVersion": 39, "version": 1, "timezone": "",
            "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
            "templating": {"list": variables()}, "annotations": {"list": []},
            "links": [{"title": "erpscope dashboards", "type": "dashboards", "tags": ["erpscope"],
                       "asDropdown": True}],
            "panels": layout([panel(i, s) for i, s in enumerate(specs)])}


DASHBOARDS = {"health.json": HEALTH, "performance.json": PERFORMANCE, "business.json": BUSINESS}


def main(argv):
    out = argv[0] if argv else os.path.dirname(os.path.abspath(__file__))
    for name, d in DASHBOARDS.items():
        with open(os.path.join(out, name), "w") as f:
            json.dump(dashboard(*d), f, indent=2, sort_keys=True, ensure_ascii=False)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
