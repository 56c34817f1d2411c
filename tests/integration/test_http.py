#!/usr/bin/python3.11
"""The HTTP side: routes, methods, content negotiation, gzip, hostile
requests, self-metrics."""

import gzip
import os
import re
import socket
import subprocess
import time

import lib


def raw(port, data, read=True, timeout=5.0):
    """Sends raw bytes, returns what came back (b"" on reset/close)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except OSError:
            return b""
        if not read:
            return b""
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        chunks = []
        try:
            while True:
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
        except OSError:
            pass
        return b"".join(chunks)
    finally:
        s.close()


def ping_pong(rounds):
    """Context-switch storm: two processes bounce a byte through pipes."""
    code = ("import os,sys\n"
            "n=int(sys.argv[1]); r1,w1=os.pipe(); r2,w2=os.pipe()\n"
            "pid=os.fork()\n"
            "if pid==0:\n"
            "    for _ in range(n): os.read(r1,1); os.write(w2,b'x')\n"
            "    os._exit(0)\n"
            "for _ in range(n): os.write(w1,b'x'); os.read(r2,1)\n"
            "os.waitpid(pid,0)\n")
    subprocess.run([lib.PYTHON, "-c", code, str(rounds)], check=True, timeout=120)


def sched_runs(m):
    runs = {dict(ls)["program"]: v for (n, ls), v in m.items()
            if n == "erpscope_bpf_program_runs_total" and dict(ls).get("probe") == "sched"}
    secs = {dict(ls)["program"]: v for (n, ls), v in m.items()
            if n == "erpscope_bpf_program_run_seconds_total" and dict(ls).get("probe") == "sched"}
    return runs, secs


def stats_sysctl():
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        return f.read().strip()


def body(t):
    # Run-time stats cost every BPF program on the host two clock reads: off
    # unless asked for. (Only checkable while the operator's sysctl is off.)
    if stats_sysctl() == "0":
        with lib.Daemon() as d:
            m = d.scrape()
            t.check(m.value("erpscope_bpf_stats_enabled") == 0,
                    "without --bpf.stats run-time stats stay off",
                    f"{m.value('erpscope_bpf_stats_enabled')}")
            r0, _ = sched_runs(m)
            ping_pong(1000)
            r1, _ = sched_runs(d.scrape())
            t.check(r0 and all(r1.get(k) == v == 0 for k, v in r0.items()),
                    "and the programs' run counts stay 0", f"{r0} -> {r1}")
    with lib.Daemon("--bpf.stats") as d:
        port = d.port

        st, h, b = lib.http_get(port, "/")
        t.check(st == 200, "GET / is 200", f"status {st}")
        t.check(h.get("content-type", "").startswith("text/html"), "GET / is HTML",
                f"content-type {h.get('content-type')!r}")
        t.check(b'href="/metrics"' in b, "GET / links /metrics", f"body {b[:300]!r}")

        st, _, b = lib.http_get(port, "/nope")
        t.check(st == 404, "GET /nope is 404", f"status {st}")
        st, _, b = lib.http_get(port, "/metrics/extra")
        t.check(st == 404, "GET /metrics/extra is 404", f"status {st}")
        st, h, b = lib.http_get(port, "/metrics", method="POST", body=b"x=1",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        t.check(st == 405, "POST /metrics is 405", f"status {st}")
        st, h, b = lib.http_get(port, "/metrics", method="DELETE")
        t.check(st == 405, "DELETE /metrics is 405", f"status {st}")

        # Text format by default; every family has HELP and TYPE (lib checks).
        st, h, body0 = lib.http_get(port, "/metrics")
        t.check(h.get("content-type", "").startswith("text/plain; version=0.0.4"),
                "default content type is text 0.0.4", f"{h.get('content-type')!r}")
        t.check("content-encoding" not in h, "no gzip unless asked",
                f"content-encoding {h.get('content-encoding')!r}")
        m1 = d.scrape()
        t.check(len(m1.types) > 0 and all(f in m1.helps for f in m1.types),
                "every family has HELP and TYPE", f"{len(m1.types)} families")
        for fam, typ in [("erpscope_build_info", "gauge"), ("erpscope_probe_up", "gauge"),
                         ("erpscope_bpf_program_runs_total", "counter"),
                         ("erpscope_bpf_program_run_seconds_total", "counter"),
                         ("erpscope_scrape_duration_seconds", "gauge"),
                         ("erpscope_worker_info", "gauge"),
                         ("erpscope_cpu_seconds_total", "counter"),
                         ("erpscope_offcpu_seconds_total", "counter"),
                         ("erpscope_runqueue_latency_seconds", "histogram"),
                         ("erpscope_context_switches_total", "counter"),
                         ("erpscope_ringbuf_drops_total", "counter"),
                         ("erpscope_bpf_map_update_errors_total", "counter"),
                         ("erpscope_bpf_map_entries", "gauge"),
                         ("erpscope_bpf_map_max_entries", "gauge")]:
            t.check(m1.types.get(fam) == typ, f"family {fam} is a {typ}",
                    f"TYPE {m1.types.get(fam)!r}")
        for probe in ("procs", "sched"):
            t.check(m1.value("erpscope_probe_up", probe=probe) == 1,
                    f'erpscope_probe_up{{probe="{probe}"}} is 1',
                    f"got {m1.series('erpscope_probe_up')}")
        # A lost lifecycle event makes the daemon rescan /proc: the count it reads.
        t.check(m1.value("erpscope_ringbuf_drops_total", probe="procs") is not None,
                'erpscope_ringbuf_drops_total{probe="procs"} is exported',
                str(m1.series("erpscope_ringbuf_drops_total")))
        fill = m1.series("erpscope_bpf_map_max_entries", map="iowait_by_dev")
        t.check(len(fill) == 1 and fill[0][1] > 0 and
                m1.value("erpscope_bpf_map_entries", map="iowait_by_dev") is not None,
                "the fill level of a walked map is exported", str(fill))
        bi = m1.series("erpscope_build_info")
        r = subprocess.run([lib.ERPSCOPE, "--version"], capture_output=True, text=True)
        ver = bi[0][0].get("version") if bi else None
        t.check(len(bi) == 1 and bi[0][1] == 1 and ver and ver in r.stdout + r.stderr,
                "erpscope_build_info is 1 and its version is what --version says",
                f"build_info {bi}, --version {(r.stdout + r.stderr).strip()!r}")
        other = m1.series("erpscope_cpu_seconds_total", role="other", worker="all")
        t.check(len(other) == 1 and other[0][1] > 0,
                'untracked processes add up in role="other",worker="all"', f"{other}")
        roles = {dict(ls).get("role") for (n, ls) in m1 if n.startswith("erpscope_")} - {None}
        t.check(roles <= lib.ROLES, "only the documented roles appear",
                f"unknown: {roles - lib.ROLES}")
        sd = m1.value("erpscope_scrape_duration_seconds")
        t.check(sd is not None and sd >= 0, "erpscope_scrape_duration_seconds is there", f"{sd}")

        # OpenMetrics when asked.
        st, h, b = lib.http_get(port, "/metrics", headers={"Accept": lib.OPENMETRICS_ACCEPT})
        ct = h.get("content-type", "")
        t.check(st == 200 and ct.startswith("application/openmetrics-text"),
                "Accept: openmetrics gets application/openmetrics-text", f"{st} {ct!r}")
        t.check(b.endswith(b"# EOF\n"), "the OpenMetrics body ends with # EOF", f"{b[-40:]!r}")
        try:
            om = lib.parse(b.decode(), openmetrics=True)
            probs = lib.check_families(om)
            t.check(not probs, "the OpenMetrics body parses with HELP/TYPE everywhere",
                    "; ".join(probs[:5]))
            ctr = [f for f, ty in om.types.items() if ty == "counter"]
            bad = [f for f in ctr if f.endswith("_total")]
            t.check(ctr and not bad, "OpenMetrics counter families are named without _total",
                    f"named with it: {bad[:5]}")
        except lib.ParseError as e:
            t.check(False, "the OpenMetrics body parses", str(e))
        st, h, b = lib.http_get(port, "/metrics", headers={
            "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;q=0.9"})
        t.check(st == 200 and h.get("content-type", "").startswith("text/plain"),
                "Accept preferring text/plain by q-value gets text",
                f"{st} {h.get('content-type')!r}")
        # What Prometheus 2.4x itself sends.
        st, h, b = lib.http_get(port, "/metrics", headers={
            "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                      "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"})
        t.check(st == 200 and h.get("content-type", "").startswith(
                "application/openmetrics-text") and b.endswith(b"# EOF\n"),
                "Prometheus's own Accept header gets OpenMetrics",
                f"{st} {h.get('content-type')!r}")
        st, h, b = lib.http_get(port, "/metrics", headers={"Accept": "text/plain"})
        t.check(h.get("content-type", "").startswith("text/plain; version=0.0.4"),
                "Accept: text/plain gets text 0.0.4", f"{h.get('content-type')!r}")

        # gzip when allowed.
        st, h, b = lib.http_get(port, "/metrics", headers={"Accept-Encoding": "gzip"})
        t.check(h.get("content-encoding") == "gzip", "Accept-Encoding: gzip gets gzip",
                f"content-encoding {h.get('content-encoding')!r}")
        try:
            plain = gzip.decompress(b).decode()
            mz = lib.parse(plain)
            said = lib.promtool_check(plain)
            t.check(not said and "erpscope_build_info" in plain,
                    "the gzip body inflates to valid metrics", said)
        except (OSError, EOFError, lib.ParseError, UnicodeDecodeError) as e:
            t.check(False, "the gzip body inflates to valid metrics", str(e))
        m = d.scrape(headers={"Accept-Encoding": "gzip;q=0, identity"})
        st, h, b = lib.http_get(port, "/metrics", headers={"Accept-Encoding": "gzip;q=0"})
        t.check(h.get("content-encoding") != "gzip", "Accept-Encoding: gzip;q=0 gets no gzip",
                f"content-encoding {h.get('content-encoding')!r}")

        # Hostile requests do not hurt it.
        raw(port, b"\x00\xff\xfe garbage \x01\x02\r\n\r\n" * 10)
        raw(port, os.urandom(8192))
        big = raw(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000
                  + b"\r\n\r\n")
        t.check(not big.startswith(b"HTTP/1.1 200"), "a 100 KB header line is refused",
                f"answer {big[:60]!r}")
        raw(port, b"GET /metr", read=False)           # unfinished, then close
        raw(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\nab",
            read=False)
        raw(port, b"GET " + b"/x" * 20000 + b" HTTP/1.1\r\n\r\n")
        raw(port, b"GET /metrics HTTP/9.9\r\n\r\n")
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        try:
            st, _, _ = lib.http_get(port, "/metrics", timeout=10)
            t.check(st == 200, "serves /metrics while 20 idle connections are open",
                    f"status {st}")
        finally:
            for s in idle:
                s.close()
        t.check(d.alive(), "the daemon survived the malformed requests",
                f"exit {d.proc.poll()}")
        m = d.scrape()
        t.check(m.value("erpscope_probe_up", probe="sched") == 1,
                "and still serves /metrics after them")

        # BPF run-time stats rise while the system is busy.
        r0, s0 = sched_runs(d.scrape())
        rounds = 5000
        ping_pong(rounds)
        r1, s1 = sched_runs(d.scrape())
        lib.log(f"sched program runs before {r0}, after {r1}")
        t.check(r0 and set(r0) == set(s0), "run count and run time cover the same programs",
                f"{sorted(r0)} vs {sorted(s0)}")
        dr = sum(r1.get(k, 0) - r0.get(k, 0) for k in r0)
        ds = sum(s1.get(k, 0) - s0.get(k, 0) for k in s0)
        t.check(dr >= 2 * rounds, f"sched programs ran at least {2 * rounds} times more "
                f"across {rounds} pipe round trips", f"delta {dr}")
        t.check(ds > 0, "their run time rose too", f"delta {ds}s")
        t.check(d.scrape().value("erpscope_bpf_stats_enabled") == 1,
                "with --bpf.stats erpscope_bpf_stats_enabled is 1")
        ours = {p["name"] for p in d.our_progs.values()}
        lib.log(f"program labels {sorted(r0)}; bpftool names {sorted(ours)}")


if __name__ == "__main__":
    lib.main(body)
