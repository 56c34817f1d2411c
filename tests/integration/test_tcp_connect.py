#!/usr/bin/python3.11
"""Outbound connection health against connects whose outcome is known.

A Debian python3.11 titled like an Odoo cron worker (`odoo: WorkerCron <pid>
tcpdb`, role odoo_cron) runs connects on command; between two scrapes:
  refused      N = 25 connects to a closed loopback port: exactly N failures
               reason="refused" for that remote, none of another reason, and
               N tcp_connect_failed events at GET /events with its pid
  connected    M = 30 connects to a listening loopback port that accepts and
               closes: exactly M connect latencies, and once closed M RTT
               samples and M durations
  timeout      one connect with TCP_SYNCNT=1 to an address routed into a
               network namespace this test creates (a veth pair), where a
               blackhole route drops the SYN: 1 failure reason="timeout", >= 1
               retransmit, an event that says it waited ~3 s
  unreachable  one connect to an address the namespace answers with ICMP
               host unreachable: 1 failure reason="unreachable"
  resets       K = 5 connects to a server that closes with SO_LINGER 0 (the
               client receives a RST), K connects the client itself aborts
               with SO_LINGER 0 (it sends one): exactly K of each direction
The namespace and its veth pair go away at the end, even when a check fails;
the test only ever connects to loopback and to addresses routed into it.
Both tracepoint flavours (tp_btf and raw_tp) are run.
"""

import json
import os
import random
import socket
import struct
import subprocess
import threading
import time
import urllib.request

import lib

N_REFUSED = 25
M_CONNECTED = 30
K_RESETS = 5

CLIENT = r"""
import errno, json, os, socket, struct, sys, time
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerCron {os.getpid()} tcpdb")
print("ready", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    op, host, port, n = cmd["op"], cmd["host"], cmd["port"], cmd.get("n", 1)
    out = []
    for _ in range(n):
        s = socket.socket()
        if op == "syncnt1":
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
        t0 = time.monotonic()
        try:
            s.connect((host, port))
            if op == "rst_recv":
                s.sendall(b"x\n")
                try:
                    while s.recv(100):
                        pass
                    out.append("eof")
                except ConnectionResetError:
                    out.append("reset")
            elif op == "rst_sent":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                out.append("aborted")
            else:
                s.recv(10)  # the server closes: wait for its FIN
                out.append("ok")
        except OSError as e:
            out.append(errno.errorcode.get(e.errno, str(e.errno)) + f" {time.monotonic() - t0:.3f}")
        s.close()
    print(json.dumps(out), flush=True)
"""


def serve(ls, linger0, stop):
    """Accepts and closes (with SO_LINGER 0 after reading a line: a RST)."""
    ls.settimeout(0.2)
    while not stop.is_set():
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        if linger0:
            c.settimeout(5)
            try:
                c.recv(100)
            except OSError:
                pass
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()


def server(linger0=False):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    stop = threading.Event()
    th = threading.Thread(target=serve, args=(ls, linger0, stop), daemon=True)
    th.start()

    def close():
        stop.set()
        th.join(timeout=5)
        ls.close()
    lib.on_cleanup(close)
    return ls.getsockname()[1]


def run_ip(*args, ns=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise lib.Failure(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout


class Netns:
    """A namespace behind a veth pair, routing 198.19.<x>.0/24 (benchmarking
    addresses, RFC 2544): .9 is blackholed (SYNs vanish), the rest answer
    with ICMP host unreachable. Removed at cleanup whatever happens."""

    def __init__(self):
        tag = f"{os.getpid() % 100000}"
        self.ns = f"es-tcp-{tag}"
        self.host_if, self.ns_if = f"est{tag}a", f"est{tag}b"
        self.x = random.randrange(100, 200)
        self.created = False

    def __enter__(self):
        lib.on_cleanup(self.remove)
        x = self.x
        self.created = True
        run_ip("ip", "netns", "add", self.ns)
        run_ip("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        run_ip("ip", "link", "set", self.ns_if, "netns", self.ns)
        run_ip("ip", "addr", "add", f"198.18.{x}.1/30", "dev", self.host_if)
        run_ip("ip", "link", "set", self.host_if, "up")
        run_ip("ip", "addr", "add", f"198.18.{x}.2/30", "dev", self.ns_if, ns=self.ns)
        run_ip("ip", "link", "set", self.ns_if, "up", ns=self.ns)
        run_ip("ip", "link", "set", "lo", "up", ns=self.ns)
        run_ip("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=self.ns)
        run_ip("ip", "route", "add", "blackhole", f"198.19.{x}.9/32", ns=self.ns)
        run_ip("ip", "route", "add", "unreachable", f"198.19.{x}.0/24", ns=self.ns)
        # Only this /24 goes into the namespace; it leaves with the veth.
        run_ip("ip", "route", "add", f"198.19.{x}.0/24", "via", f"198.18.{x}.2")
        lib.log(f"netns {self.ns}: 198.19.{x}.9 drops SYNs, 198.19.{x}.5 is unreachable")
        return self

    @property
    def drop_addr(self):
        return f"198.19.{self.x}.9"

    @property
    def unreachable_addr(self):
        return f"198.19.{self.x}.5"

    def remove(self):
        if not self.created:
            return
        self.created = False
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        if self.ns in left:
            raise lib.Failure(f"netns {self.ns} still there after cleanup")

    def __exit__(self, *exc):
        self.remove()
        return False


def events(port, query):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/events?{query}", timeout=10) as r:
        return json.load(r)


def fam(m, name, remote, **labels):
    return m.value(name, 0.0, role="odoo_cron", remote=remote, **labels)


def delta(m1, m0, name, remote, **labels):
    return fam(m1, name, remote, **labels) - fam(m0, name, remote, **labels)


def run(t, mode, net):
    closed = lib.free_port()
    port_ok = server()
    port_rst = server(linger0=True)
    port_abort = server()
    with lib.Daemon(f"--bpf.attach-mode={mode}") as d:
        c = lib.spawn([lib.PYTHON, "-c", CLIENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                      text=True)
        t.require(c.stdout.readline().strip() == "ready", "client started")
        info, _, _ = lib.wait_worker(d, c.pid, timeout=10.0, role="odoo_cron")
        t.require(info is not None, f"client {c.pid} is tracked as odoo_cron")
        id0 = events(d.port, "limit=1")["last_id"]

        def do(op, host, port, n=1):
            c.stdin.write(json.dumps({"op": op, "host": host, "port": port, "n": n}) + "\n")
            c.stdin.flush()
            return json.loads(c.stdout.readline())

        m0 = d.scrape()
        lo = lambda p: f"127.0.0.1:{p}"
        r_ref = do("plain", "127.0.0.1", closed, N_REFUSED)
        r_ok = do("plain", "127.0.0.1", port_ok, M_CONNECTED)
        r_to = do("syncnt1", net.drop_addr, 9)
        r_un = do("syncnt1", net.unreachable_addr, 9)
        r_rr = do("rst_recv", "127.0.0.1", port_rst, K_RESETS)
        r_rs = do("rst_sent", "127.0.0.1", port_abort, K_RESETS)
        lib.log(f"client says: refused {set(x.split()[0] for x in r_ref)}, connected "
                f"{set(r_ok)}, timeout {r_to}, unreachable {r_un}, rst_recv {set(r_rr)}, "
                f"rst_sent {set(r_rs)}")
        t.require(all(x.startswith("ECONNREFUSED") for x in r_ref), "closed port refused them")
        t.require(r_ok == ["ok"] * M_CONNECTED, "listening port took them")
        t.require(r_to[0].startswith("ETIMEDOUT"), "the blackholed address timed out", f"{r_to}")
        t.require(r_un[0].startswith("EHOSTUNREACH"), "the other address is unreachable",
                  f"{r_un}")
        t.require(r_rr == ["reset"] * K_RESETS, "the linger-0 server reset them", f"{r_rr}")
        time.sleep(0.3)  # closes of the last connections
        m = d.scrape()

        rem = lo(closed)
        t.check(delta(m, m0, "erpscope_tcp_connect_failures_total", rem, reason="refused")
                == N_REFUSED, f"{N_REFUSED} connects to a closed port count {N_REFUSED} "
                "refused", f"got {fam(m, 'erpscope_tcp_connect_failures_total', rem, reason='refused')}")
        others = {r: fam(m, "erpscope_tcp_connect_failures_total", rem, reason=r)
                  for r in ("timeout", "unreachable", "reset", "other")}
        t.check(not any(others.values()), "and no failure of another reason", f"{others}")
        t.check(fam(m, "erpscope_tcp_connect_latency_seconds_count", rem) == 0,
                "and no connect latency for the closed port")

        rem = lo(port_ok)
        n = delta(m, m0, "erpscope_tcp_connect_latency_seconds_count", rem)
        t.check(n == M_CONNECTED, f"{M_CONNECTED} connects to a listening port count "
                f"{M_CONNECTED} latencies", f"got {n}")
        s = fam(m, "erpscope_tcp_connect_latency_seconds_sum", rem)
        t.check(0 < s < 0.01 * M_CONNECTED, "loopback connect latencies are under 10 ms each",
                f"sum {s}")
        fails = sum(fam(m, "erpscope_tcp_connect_failures_total", rem, reason=r)
                    for r in ("refused", "timeout", "unreachable", "reset", "other"))
        t.check(fails == 0, "no failures to the listening port", f"{fails}")

        def closed_all():
            mm = d.scrape()
            return mm if (fam(mm, "erpscope_tcp_rtt_seconds_count", rem) == M_CONNECTED and
                          fam(mm, "erpscope_tcp_connection_duration_seconds_count", rem)
                          == M_CONNECTED) else None
        mm = lib.wait_for(closed_all, 5.0, 0.3) or d.scrape()
        t.check(fam(mm, "erpscope_tcp_rtt_seconds_count", rem) == M_CONNECTED,
                f"{M_CONNECTED} RTT samples, one per closed connection",
                f"got {fam(mm, 'erpscope_tcp_rtt_seconds_count', rem)}")
        t.check(fam(mm, "erpscope_tcp_connection_duration_seconds_count", rem) == M_CONNECTED,
                f"{M_CONNECTED} connection durations",
                f"got {fam(mm, 'erpscope_tcp_connection_duration_seconds_count', rem)}")
        rtt = fam(mm, "erpscope_tcp_rtt_seconds_sum", rem) / M_CONNECTED
        t.check(0 < rtt < 0.005, "loopback smoothed RTT is under 5 ms", f"mean {rtt:.6f}s")

        rem = f"{net.drop_addr}:9"
        t.check(fam(m, "erpscope_tcp_connect_failures_total", rem, reason="timeout") == 1,
                "a connect to a host that drops SYNs counts 1 timeout",
                f"series: {m.series('erpscope_tcp_connect_failures_total', remote=rem)}")
        t.check(fam(m, "erpscope_tcp_retransmits_total", rem) >= 1,
                "its SYN was retransmitted", f"{fam(m, 'erpscope_tcp_retransmits_total', rem)}")
        rem = f"{net.unreachable_addr}:9"
        t.check(fam(m, "erpscope_tcp_connect_failures_total", rem, reason="unreachable") == 1,
                "a connect answered by ICMP host unreachable counts 1 unreachable",
                f"series: {m.series('erpscope_tcp_connect_failures_total', remote=rem)}")

        rem = lo(port_rst)
        t.check(delta(m, m0, "erpscope_tcp_resets_total", rem, direction="received") == K_RESETS,
                f"a server that sends RST: {K_RESETS} resets received",
                f"got {fam(m, 'erpscope_tcp_resets_total', rem, direction='received')}")
        t.check(fam(m, "erpscope_tcp_resets_total", rem, direction="sent") == 0,
                "and none sent to it")
        rem = lo(port_abort)
        t.check(delta(m, m0, "erpscope_tcp_resets_total", rem, direction="sent") == K_RESETS,
                f"aborting with SO_LINGER 0: {K_RESETS} resets sent",
                f"got {fam(m, 'erpscope_tcp_resets_total', rem, direction='sent')}")

        def failed_events():
            e = events(d.port, f"since={id0}&type=tcp_connect_failed&limit=1024")["events"]
            return [x["data"] for x in e if x["data"].get("pid") == c.pid]
        ev = lib.wait_for(lambda: (lambda e: e if len(e) >= N_REFUSED + 2 else None)(
            failed_events()), 3.0, 0.2) or failed_events()
        by = {}
        for x in ev:
            by.setdefault(x["reason"], []).append(x)
        t.check(len(by.get("refused", [])) == N_REFUSED, f"{N_REFUSED} refused events at "
                "GET /events", f"{ {k: len(v) for k, v in by.items()} }")
        ok = all(x["role"] == "odoo_cron" and x["worker"] == str(c.pid) and
                 x["remote"] == lo(closed) and x["errno"] == 111 and
                 x["error"] == "ECONNREFUSED" for x in by.get("refused", []))
        t.check(ok, "refused events name the pid, role, worker, remote and error",
                f"e.g. {by.get('refused', [None])[0]}")
        to = by.get("timeout", [])
        t.check(len(to) == 1 and to[0]["remote"] == f"{net.drop_addr}:9" and
                2.5 <= to[0]["waited_seconds"] <= 10, "the timeout is an event that says how "
                "long it waited (~3 s with TCP_SYNCNT=1)", f"{to}")
        un = by.get("unreachable", [])
        t.check(len(un) == 1 and un[0]["error"] == "EHOSTUNREACH",
                "the unreachable connect is an event too", f"{un}")
        c.stdin.close()
        c.wait(timeout=10)


def body(t):
    with Netns() as net:
        for mode in lib.ATTACH_MODES:
            t.prefix = f"[{mode}] "
            lib.log(f"==== --bpf.attach-mode={mode}")
            run(t, mode, net)


if __name__ == "__main__":
    lib.main(body)
