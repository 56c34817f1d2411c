#!/usr/bin/python3.11
"""Cold destinations are evicted from a role's kernel pool, so new ones get
series of their own again, and no count is lost or goes down.

The daemon runs with --tcp.max-remotes=4 (4 labels per role, a kernel pool of
8 destinations: evictions start at 6, down to 4) and
--tcp.remote-idle-timeout=3s. A Debian python3.11 titled like an Odoo
process of a role no other process on the host has when the test starts
(odoo_gevent, odoo_master or odoo_cron: other tests and benchmarks may run
meanwhile, and the role's pool is counted exactly) makes K = 3 connects to
each destination it is told, listeners on distinct 127.0.0.x addresses that
accept and close. Scrapes:
  S1  A0..A3: 4 labels, 3 each; 4 destinations
  S2  A4..A7: no label left: remote="other" 12; 8 destinations (pool full)
  S3  B0: the pool is full, it is folded into other (15) and has no series
  S4  (3.5 s later, everything idle) the 4 coldest, A0..A3, are evicted:
      their series go, other is 27, 4 destinations, 4 evictions, and
      erpscope_bpf_map_entries{map="tcp_remotes"} goes down by 4
  S5  C0..C2 and B0 again: each gets its own series with exactly 3 (B0's
      first 3 stay in other); A4..A7 are evicted (no series goes): other
      stays 27, 4 destinations, 8 evictions
  S6  3 more connects to C0: its series is 6
At every scrape the sum of the role's connect latency counts over its remote
series is exactly what the client made (it never goes down), no series goes
down (lib's check), and the map's entries are its 12 "other" keys plus the
destinations of every role. Both tracepoint flavours are run.
"""

import json
import selectors
import socket
import subprocess
import threading
import time

import lib

K = 3
LABELS = 4
IDLE = 3.0
LAT = "erpscope_tcp_connect_latency_seconds_count"
# Roles the client can take by its title, the least used by tests first.
TITLES = {
    "odoo_gevent": "{python} odoo-bin gevent -d evictdb",
    "odoo_master": "odoo: master",
    "odoo_cron": "odoo: WorkerCron {pid} evictdb",
}

CLIENT = r"""
import json, os, socket, sys
import setproctitle
setproctitle.setproctitle(sys.argv[1].format(pid=os.getpid(), python=sys.executable))
print("ready", flush=True)
for line in sys.stdin:
    out = []
    for host, port, n in json.loads(line):
        for _ in range(n):
            s = socket.socket()
            try:
                s.connect((host, port))
                s.recv(10)  # the server closes: wait for its FIN
                out.append("ok")
            except OSError as e:
                out.append(str(e))
            s.close()
    print(json.dumps(out), flush=True)
"""


def listeners(n):
    """n listeners on 127.0.0.2.., one thread accepting and closing for all.
    Returns their (host, port)."""
    sel = selectors.DefaultSelector()
    out = []
    for i in range(n):
        ls = socket.socket()
        ls.bind((f"127.0.0.{i + 2}", 0))
        ls.listen(64)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ)
        out.append(ls.getsockname())
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            for key, _ in sel.select(0.2):
                try:
                    c, _ = key.fileobj.accept()
                    c.close()
                except OSError:
                    pass

    th = threading.Thread(target=serve, daemon=True)
    th.start()

    def close():
        stop.set()
        th.join(timeout=5)
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()
    lib.on_cleanup(close)
    return out


def remote(dst):
    return f"{dst[0]}:{dst[1]}"


def free_role(t, d):
    """A role of TITLES no tracked process has."""
    m = d.scrape()
    used = {ls.get("role") for ls, _ in m.series("erpscope_worker_info")}
    free = [r for r in TITLES if r not in used]
    t.require(free, f"one of {list(TITLES)} has no process on this host (the test counts "
              "its role's destinations exactly)", f"roles in use: {sorted(used)}")
    return free[0]


def run(t, mode):
    dst = listeners(12)
    a, b0, c = dst[:8], dst[8], dst[9:12]
    with lib.Daemon(f"--bpf.attach-mode={mode}", "--probes=tcp",
                    f"--tcp.max-remotes={LABELS}", f"--tcp.remote-idle-timeout={IDLE:g}s") as d:
        role = free_role(t, d)
        lib.log(f"the client takes role {role}")
        cl = lib.spawn([lib.PYTHON, "-c", CLIENT, TITLES[role]], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True)
        t.require(cl.stdout.readline().strip() == "ready", "client started")
        info, _, m0 = lib.wait_worker(d, cl.pid, timeout=10.0, role=role)
        t.require(info is not None, f"client {cl.pid} is tracked as {role}")
        others = [ls["pid"] for ls, _ in m0.series("erpscope_worker_info", role=role)
                  if ls["pid"] != str(cl.pid)]
        t.require(not others, f"no other {role} process came meanwhile", f"pids {others}")

        def role_series(m, name=LAT):
            """remote -> value of the role's series of name."""
            return {ls["remote"]: v for ls, v in m.series(name, role=role)}

        errors0 = m0.value("erpscope_bpf_map_update_errors_total", 0.0, map="tcp_remotes")
        made = 0

        def connect(targets, n=K):
            nonlocal made
            cl.stdin.write(json.dumps([[h, p, n] for h, p in targets]) + "\n")
            cl.stdin.flush()
            r = json.loads(cl.stdout.readline())
            t.require(r == ["ok"] * (n * len(targets)), f"{len(targets)} listeners took "
                      f"{n} connects each", f"{set(r)}")
            made += n * len(targets)

        def settled():
            """Scrapes until every connect made is counted and closed."""
            def done():
                m = d.scrape()
                lat = sum(role_series(m).values())
                dur = sum(role_series(
                    m, "erpscope_tcp_connection_duration_seconds_count").values())
                return m if lat == made and dur == made else None
            return lib.wait_for(done, 5.0, 0.1) or d.scrape()

        def check(m, step, own, other, dests, evictions):
            """own: remote -> connects; the role has exactly these series."""
            t.prefix = f"[{mode}] {step}: "
            got = role_series(m)
            want = dict(own)
            if other:
                want["other"] = other
            t.check(got == want, "the role's series are exactly the expected ones",
                    f"got {got}, want {want}")
            t.check(sum(got.values()) == made, f"they sum to the {made} connects made",
                    f"{sum(got.values())}")
            n = m.value("erpscope_tcp_remote_destinations", None, role=role)
            t.check(n == dests, f"{dests} destinations in the kernel's pool", f"{n}")
            n = m.value("erpscope_tcp_remote_evictions_total", None, role=role)
            t.check(n == evictions, f"{evictions} evictions so far", f"{n}")
            entries = m.value("erpscope_bpf_map_entries", None, map="tcp_remotes")
            all_dests = m.total("erpscope_tcp_remote_destinations")
            t.check(entries == len(lib.ROLES) + all_dests, "the map holds every role's "
                    "other key and its destinations", f"{entries} entries, {all_dests:g} "
                    "destinations")
            t.prefix = f"[{mode}] "
            return entries, all_dests - (dests or 0)

        connect(a[:4])
        s1 = settled()
        check(s1, "S1", {remote(x): K for x in a[:4]}, 0, 4, 0)
        connect(a[4:])
        s2 = settled()
        check(s2, "S2", {remote(x): K for x in a[:4]}, 4 * K, 8, 0)
        connect([b0])
        s3 = settled()
        e3, rest3 = check(s3, "S3", {remote(x): K for x in a[:4]}, 5 * K, 8, 0)
        time.sleep(IDLE + 0.5)
        s4 = d.scrape()
        e4, rest4 = check(s4, "S4", {}, 9 * K, 4, 4)
        t.prefix = f"[{mode}] S4: "
        t.check(e4 < e3 and e3 - e4 == 4 - (rest4 - rest3),
                "erpscope_bpf_map_entries{map=tcp_remotes} went down by the 4 evicted "
                "(other roles' destinations aside)",
                f"{e3:g} -> {e4:g}, other roles {rest3:g} -> {rest4:g}")
        t.prefix = f"[{mode}] "
        connect(c + [b0])
        s5 = settled()
        check(s5, "S5", {remote(x): K for x in c + [b0]}, 9 * K, 4, 8)
        connect(c[:1])
        s6 = settled()
        own = {remote(x): K for x in c + [b0]}
        own[remote(c[0])] = 2 * K
        check(s6, "S6", own, 9 * K, 4, 8)
        n = s6.value("erpscope_bpf_map_update_errors_total", 0.0, map="tcp_remotes") - errors0
        t.check(n == 0, "no insert into the map failed", f"{n:g}")
        cl.stdin.close()
        cl.wait(timeout=10)


if __name__ == "__main__":
    lib.main(lib.each_attach_mode(run))
