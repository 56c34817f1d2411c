#!/usr/bin/python3.11
"""The shipped systemd unit allows what the daemon does. systemd is not
needed: the daemon runs inside what the unit would give it, read from
scripts/erpscope.service:
  RestrictAddressFamilies=  a seccomp filter (libseccomp, as systemd does)
                            failing socket() of any other family with
                            EAFNOSUPPORT;
  CapabilityBoundingSet=    setpriv --bounding-set, root's caps then being
                            exactly these; NoNewPrivileges= likewise.
Then:
  --check --strict exits 0 (a poller that cannot start is fatal);
  under strace -e trace=socket, with a PostgreSQL cluster and an Odoo-titled
  client, every socket() family the daemon used is in the unit's list and
  none failed; the client's backend is linked to it (sock_diag, and
  /proc/<pid>/fd of a postgres-owned backend: CAP_SYS_PTRACE); no poller
  failed; SIGTERM exits 0.
The unit's old AF_INET AF_INET6 AF_UNIX fails all of these."""

import json
import os
import re
import socket
import subprocess
import time

import lib

UNIT = os.path.join(lib.REPO, "scripts", "erpscope.service")
DB = f"erpu_{os.getpid()}"

# Loads the filter, then execs argv[2:]; argv[1] = allowed families (numbers).
SANDBOX = r"""
import ctypes, errno, os, sys
allowed = {int(x) for x in sys.argv[1].split(",")}
sc = ctypes.CDLL("libseccomp.so.2", use_errno=True)
class Cmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]
EQ, GE = 4, 5
sc.seccomp_init.restype = ctypes.c_void_p
ctx = ctypes.c_void_p(sc.seccomp_init(0x7fff0000))           # SCMP_ACT_ALLOW
deny = 0x00050000 | errno.EAFNOSUPPORT                        # SCMP_ACT_ERRNO
nr = sc.seccomp_syscall_resolve_name(b"socket")
for af in range(64):
    if af not in allowed:
        c = Cmp(0, EQ, af, 0)
        assert sc.seccomp_rule_add_array(ctx, deny, nr, 1, ctypes.byref(c)) == 0
c = Cmp(0, GE, 64, 0)
assert sc.seccomp_rule_add_array(ctx, deny, nr, 1, ctypes.byref(c)) == 0
assert sc.seccomp_load(ctx) == 0
os.execvp(sys.argv[2], sys.argv[2:])
"""

CLIENT = r"""
import os, sys, time
import psycopg2, setproctitle
setproctitle.setproctitle("odoo: WorkerHTTP %d" % os.getpid())
time.sleep(1.2)
c = psycopg2.connect(host=sys.argv[1], port=int(sys.argv[2]), user="postgres",
                     dbname=sys.argv[3])
c.autocommit = True
time.sleep(1.0)
cur = c.cursor()
for i in range(5):
    cur.execute("SELECT %s AS unit_marker_q", (i,))
print("done", flush=True)
sys.stdin.readline()
"""


def unit_settings():
    """{key: [words]} of the [Service] lines (a repeated key accumulates)."""
    out = {}
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            out.setdefault(k, []).extend(v.split())
    return out


def sandbox(settings):
    fams = settings.get("RestrictAddressFamilies", [])
    nums = [getattr(socket, f) for f in fams]
    caps = [c.lower().removeprefix("cap_") for c in settings.get("CapabilityBoundingSet", [])]
    helper = os.path.join(lib.tempdir(), "sandbox.py")
    with open(helper, "w") as f:
        f.write(SANDBOX)
    argv = [lib.PYTHON, helper, ",".join(str(int(n)) for n in nums),
            "setpriv", "--bounding-set=-all," + ",".join("+" + c for c in caps)]
    if settings.get("NoNewPrivileges") == ["yes"]:
        argv.append("--no-new-privs")
    return argv


class Confined(lib.Daemon):
    """The daemon under strace and the unit's sandbox. self.proc is strace,
    which exits with the daemon's status; pid is the daemon's own."""

    def __init__(self, prefix, trace, *args):
        super().__init__(*args)
        self.prefix = prefix
        self.trace = trace
        self._pid = None

    def argv(self):
        return (["strace", "-f", "-qq", "-e", "trace=socket", "-o", self.trace] + self.prefix
                + super().argv())

    @property
    def pid(self):
        if self._pid is None:
            exe = os.path.realpath(lib.ERPSCOPE)
            for p in os.listdir("/proc"):
                try:
                    if p.isdigit() and os.readlink(f"/proc/{p}/exe") == exe and \
                            os.getsid(int(p)) == os.getsid(self.proc.pid):
                        self._pid = int(p)
                except OSError:
                    pass
        return self._pid

    def stop(self, timeout=15.0):
        if self.stopped or self.proc is None:
            return
        if self.proc.poll() is None and self.pid:
            os.kill(self.pid, 15)
        super().stop(timeout)  # strace has the daemon's exit status


def socket_calls(path):
    """[(family name, result)] of every socket() in an strace -f log."""
    out = []
    with open(path) as f:
        for line in f:
            m = re.search(r"socket\((AF_\w+|\d+),.*\)\s+=\s+(-?\d+)(?: (\w+))?", line)
            if m:
                out.append((m.group(1), m.group(3) or "ok"))
    return out


def body(t):
    settings = unit_settings()
    fams = settings.get("RestrictAddressFamilies", [])
    caps = settings.get("CapabilityBoundingSet", [])
    t.require(fams and caps, "the unit restricts address families and capabilities",
              f"{fams} {caps}")
    t.check(sorted(settings.get("AmbientCapabilities", [])) == sorted(caps),
            "AmbientCapabilities= is CapabilityBoundingSet=",
            f"{settings.get('AmbientCapabilities')} {caps}")
    prefix = sandbox(settings)

    r = subprocess.run(prefix + [lib.ERPSCOPE, "--check", "--strict",
                                 "--web.listen-address=127.0.0.1:0"],
                       capture_output=True, text=True, timeout=120)
    t.check(r.returncode == 0, "--check --strict inside the unit's sandbox exits 0",
            f"exit {r.returncode}: " + " | ".join(x for x in r.stderr.splitlines()
                                                  if "level=warn" in x or "level=error" in x)[:600])

    pg = lib.PgCluster().start()
    try:
        pg.psql(f"CREATE DATABASE {DB}")
        trace = os.path.join(lib.tempdir(), "socket.trace")
        with Confined(prefix, trace) as d:
            client = lib.spawn([lib.PYTHON, "-c", CLIENT, pg.dir, str(pg.port), DB],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            line = client.stdout.readline().strip()
            t.require(line == "done", "the Odoo-like client ran its statements", line)

            def senders():
                _, _, b = lib.http_get(d.port, "/queries?format=json")
                st = [s for s in json.loads(b)["statements"]
                      if s["db"] == DB and s["query"] == "SELECT ? AS unit_marker_q"]
                return st[0]["senders"] if st and st[0]["senders"][0]["role"] != "local" \
                    else None

            got = lib.wait_for(senders, 10.0, 0.2)
            t.check(got == [{"role": "odoo_http", "worker": str(client.pid), "calls": 5}],
                    "the backend is linked to its odoo_http client: 5 calls", str(got))
            m = d.scrape()
            t.check(m.value("erpscope_probe_up", probe="tcp") == 1, "the tcp probe is up")
            time.sleep(1.2)  # a tcp poller round after the client connected
            d.scrape()
            client.stdin.close()
            lib.kill_group(client)
            log = d.log_text()
        t.check("poller not available" not in log, "every poller started",
                " | ".join(x for x in log.splitlines() if "poller" in x)[:400])
        calls = socket_calls(trace)
        used = sorted({f for f, _ in calls})
        t.check(any(f == "AF_NETLINK" for f in used), "the daemon used sock_diag (AF_NETLINK)",
                str(used))
        t.check(set(used) <= set(fams), "every family it used is in RestrictAddressFamilies=",
                f"used {used}, unit {fams}")
        bad = [c for c in calls if c[1] != "ok"]
        t.check(not bad, "no socket() failed", str(bad[:5]))
    finally:
        pg.stop()


if __name__ == "__main__":
    lib.main(body)
