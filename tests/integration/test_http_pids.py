#!/usr/bin/python3.11
"""HTTP workers whose pids share their low 15 bits (`--probes=requests`).

The socket tracepoints find a followed process in an array by the pid's
low bits (req_pids), with the others of the same low bits in a hash behind
it. With kernel.pid_max raised for the test (restored after), three
single-process HTTP servers titled `odoo: WorkerHTTP <pid> ` are started at
pids P, P + 32768 and P + 65536 (kernel.ns_last_pid), each answering its
own route:

and a fourth, an untitled python at P + 98304 listening on its port (role
python, followed too):

  - one of them holds the entry (bpftool map lookup), marked: more behind
  - 5 requests to each: exactly 5 on each route
  - the holder is SIGKILLed: another takes the entry, still marked; 5 more
    requests to each one left: each route counts all it was sent
  - one behind the holder is SIGKILLed: the entry unchanged, still marked;
    5 more to each left, counted
  - the last behind it is SIGKILLed: the entry is not marked any more; 5
    more to the holder, counted
  - the holder is SIGKILLed: the entry is empty
"""

import json
import os
import re
import subprocess
import time

import lib
import prefork

SERVER = r"""
import os, socket, sys
import setproctitle
if sys.argv[1] == "worker":
    setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(16)
print(ls.getsockname()[1], flush=True)
body = b"ok"
while True:
    c, _ = ls.accept()
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = c.recv(4096)
        if not got:
            break
        buf += got
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n" + body)
    c.close()
"""

ROUTES = ("/ka/x", "/kb/x", "/kc/x", "/kd/x")  # no digits: a segment with one is templated
SPREAD = 1 << 15  # ES_REQ_PIDS: pids this far apart share an entry


def write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def free_base(pid_max):
    """A pid P with P + k * SPREAD (k = 0..3) all free, P past the last one given."""
    with open("/proc/sys/kernel/ns_last_pid") as f:
        last = int(f.read())
    for p in range(last + 200, SPREAD - 100):
        if all(not os.path.exists(f"/proc/{p + k * SPREAD}") for k in range(4)):
            return p
    return None


def spawn_at(pid, kind):
    """The server started as pid (ns_last_pid, retried a few times when another fork
    took it). Returns (Popen, port) or (None, None)."""
    for _ in range(20):
        write("/proc/sys/kernel/ns_last_pid", pid - 1)
        p = lib.spawn([lib.PYTHON, "-c", SERVER, kind], stdout=subprocess.PIPE, text=True)
        if p.pid == pid:
            return p, int(p.stdout.readline())
        lib.kill_group(p)
    return None, None


def entry(map_id, low):
    """(tgid, more) of req_pids[low]: the u64's low half, and ES_REQ_PID_MORE of its high."""
    r = subprocess.run([lib.BPFTOOL, "-j", "map", "lookup", "id", str(map_id), "key", "hex",
                        *(f"{b:02x}" for b in low.to_bytes(4, "little"))],
                       capture_output=True, text=True, check=True)
    v = json.loads(r.stdout)["value"]
    raw = bytes(int(b, 16) for b in v) if isinstance(v, list) else int(v).to_bytes(8, "little")
    x = int.from_bytes(raw, "little")
    return x & 0xffffffff, bool(x >> 63)


def get(port, path):
    s, _ = prefork.request(port, "GET", path)
    return s


def routes(d):
    m = d.scrape()
    return {r: m.total("erpscope_http_request_duration_seconds_count",
                       role="odoo_http" if r != "/kd/x" else "python", route=r)
            for r in ROUTES}


def body(t):
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    if pid_max < 4 * SPREAD + 1000:
        write("/proc/sys/kernel/pid_max", 4 * SPREAD + 1000)
        lib.on_cleanup(lambda: write("/proc/sys/kernel/pid_max", pid_max))
    with lib.Daemon("--probes=requests") as d:
        base = free_base(pid_max)
        t.require(base is not None, "four free pids sharing their low 15 bits")
        procs = []
        for k in range(4):
            p, port = spawn_at(base + k * SPREAD, "worker" if k < 3 else "plain")
            t.require(p is not None, f"a server started at pid {base + k * SPREAD}")
            procs.append((p, port))
        lib.log(f"servers at pids {[p.pid for p, _ in procs]} (low bits {base})")
        for k, (p, _) in enumerate(procs):
            role = "odoo_http" if k < 3 else "python"
            info, _, _ = lib.wait_worker(d, p.pid, timeout=10.0, role=role)
            t.require(info is not None, f"server {p.pid} is tracked as {role}")
        prefork.wait_attached(t, d, [p.pid for p, _ in procs])

        map_id = lib.held_map_id(d.pid, "req_pids")
        t.require(map_id is not None, "the daemon's req_pids map", f"{map_id}")
        low = base % SPREAD
        count = [0] * 4

        def load(which):
            for k in which:
                for _ in range(5):
                    t.require(get(procs[k][1], ROUTES[k]) == 200, f"server {k} answers")
                count[k] += 5
            want = dict(zip(ROUTES, count))
            got = lib.wait_for(lambda: (lambda r: r if r == want else None)(routes(d)), 5.0, 0.1)
            return got or routes(d), want

        def gone(pid):
            ok = lib.wait_for(lambda: re.search(rf'not followed any more" pid={pid}\b',
                                                d.log_text()), 10.0, 0.1)
            t.require(ok, f"the daemon detached {pid}")

        def kill(k):
            lib.kill_group(procs[k][0])
            gone(procs[k][0].pid)
            left.remove(k)

        left = [0, 1, 2, 3]
        pids = [p.pid for p, _ in procs]
        holder, more = entry(map_id, low)
        t.check(holder in pids and more, "one of the four holds the entry, marked: more behind it",
                f"{holder} more={more}")
        got, want = load(left)
        t.check(got == want, "5 requests on each server's route, the entry's holder's and the "
                "three others' found through the hash", f"{got}")

        kill(pids.index(holder))
        holder, more = entry(map_id, low)
        t.check(holder in [pids[k] for k in left] and more,
                "its holder gone, another takes the entry, still marked", f"{holder} more={more}")
        got, want = load(left)
        t.check(got == want, "the three left: their requests still counted", f"{got}")

        kill(next(k for k in left if pids[k] != holder))
        h2, more = entry(map_id, low)
        t.check(h2 == holder and more, "one behind it gone: the entry unchanged, still marked",
                f"{h2} more={more}")
        got, want = load(left)
        t.check(got == want, "the two left: their requests still counted", f"{got}")

        kill(next(k for k in left if pids[k] != holder))
        h2, more = entry(map_id, low)
        t.check(h2 == holder and not more, "the last behind it gone: the entry is not marked now",
                f"{h2} more={more}")
        got, want = load(left)
        t.check(got == want, "the one left: its requests still counted", f"{got}")

        kill(left[0])
        t.check(entry(map_id, low) == (0, False), "all gone: the entry is empty",
                f"{entry(map_id, low)}")
        t.check(d.alive(), "the daemon runs")


if __name__ == "__main__":
    lib.main(body)
