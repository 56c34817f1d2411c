#!/usr/bin/python3.11
"""The tcp probe's pool hooks cost nothing outside the pool workers.

`--probes=tcp` runs; then, after the daemon has dropped its capabilities,
two python3.11 processes start, each listening on a loopback port and
waiting in select() on it from a second thread (as Odoo's WorkerHTTP does
from its workthread), then accept():
  worker     titled `odoo: WorkerHTTP <pid>` (role odoo_http) and running as
             nobody (another user, not dumpable: the attach needs the
             CAP_SYS_PTRACE and CAP_SYS_ADMIN the daemon keeps)
  bystander  untitled, so untracked
Asserted:
  - no classic syscall tracepoint is attached by the daemon (bpftool perf
    show: no sys_enter_*/sys_exit_* entry; the old hooks set the syscall
    tracing flag on every task of the host)
  - the daemon holds one uprobe session link (fdinfo: link_type
    uprobe_multi) with the worker's pid over 4 functions of its libc (accept
    and accept4 with cookie 1, select and pselect with cookie 2), none with
    the bystander's; the breakpoint is in the worker's copy of libc at each
    offset and not in the bystander's (/proc/<pid>/mem: 0xcc vs the file's
    byte)
  - erpscope_tcp_pool_processes_attached equals the daemon's links (other
    odoo_http workers on the host count too), no attach failed
  - the worker is idle, then 5 connects: 5 listen queue waits on its port
    and busy seconds > 0
  - the worker exits: its link goes, the gauge counts the links left
"""

import json
import os
import re
import socket
import subprocess
import time

import lib

NOBODY = 65534
CONNECTS = 5

PROG = r"""
import os, select, socket, sys, threading
titled = sys.argv[1] == "worker"
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(16); ls.setblocking(False)
if titled:
    import setproctitle
    setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()}")
    os.setgroups([]); os.setgid(%d); os.setuid(%d)
print(ls.getsockname()[1], flush=True)

def loop():
    while True:
        r, _, _ = select.select([ls], [], [], 4.0)
        if not r:
            continue
        try:
            c, _ = ls.accept()
        except BlockingIOError:
            continue
        c.recv(10)
        c.close()

threading.Thread(target=loop, daemon=True).start()
sys.stdin.readline()
""" % (NOBODY, NOBODY)


def perf_entries(pid):
    r = subprocess.run([lib.BPFTOOL, "perf", "show", "-j"], capture_output=True, text=True)
    if r.returncode != 0:
        raise lib.Failure(f"bpftool perf show failed: {r.stderr.strip()}")
    return [e for e in json.loads(r.stdout or "[]") if e.get("pid") == pid]


def uprobe_links(pid):
    """The uprobe_multi links pid holds, from /proc/<pid>/fdinfo: dicts with
    link_id, pid (0 once that process is reaped), path, uprobe_cnt and sites
    [(cookie, offset)]."""
    out = []
    d = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                text = f.read()
        except OSError:
            continue
        if "link_type:\tuprobe_multi" not in text:
            continue
        link = {"sites": []}
        for line in text.splitlines():
            k, _, v = line.partition(":")
            if k in ("pid", "uprobe_cnt", "link_id"):
                link[k] = int(v)
            elif k == "path":
                link[k] = v.strip()
            elif re.match(r"\d+\s+0x[0-9a-f]+", line):
                c, off = line.split()[:2]
                link["sites"].append((int(c), int(off, 16)))
        out.append(link)
    return out


def text_byte(pid, fileoff):
    """The byte at file offset fileoff of the libc pid maps, read from its
    memory, and the same byte of the file."""
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 6 or "x" not in parts[1] or "/libc.so" not in parts[5]:
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            off = int(parts[2], 16)
            if off <= fileoff < off + (hi - lo):
                with open(f"/proc/{pid}/mem", "rb") as m:
                    m.seek(lo + fileoff - off)
                    mem = m.read(1)[0]
                with open(f"/proc/{pid}/root{parts[5]}", "rb") as lf:
                    lf.seek(fileoff)
                    disk = lf.read(1)[0]
                return mem, disk
    return None, None


def cap_eff(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return None


def body(t):
    with lib.Daemon("--probes=tcp") as d:
        t.require(d.scrape().value("erpscope_tcp_pool_processes_attached", None) is not None,
                  "erpscope_tcp_pool_processes_attached is exported")
        fail0 = d.scrape().value("erpscope_tcp_pool_attach_failures_total", None)
        # CAP_NET_ADMIN (12) is one of those dropped after attach.
        t.require(not cap_eff(d.pid) & (1 << 12), "the daemon dropped its capabilities",
                  f"CapEff {cap_eff(d.pid):#x}")

        procs = {}
        for kind in ("worker", "bystander"):
            p = lib.spawn([lib.PYTHON, "-c", PROG, kind], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
            procs[kind] = (p, int(p.stdout.readline()))
        wpid, wport = procs["worker"][0].pid, procs["worker"][1]
        bpid = procs["bystander"][0].pid
        lib.log(f"worker {wpid} on port {wport}, bystander {bpid}")
        info, _, _ = lib.wait_worker(d, wpid, timeout=10.0, role="odoo_http")
        t.require(info is not None, f"worker {wpid} is tracked as odoo_http")

        def worker_links():
            return [x for x in uprobe_links(d.pid) if x.get("pid") == wpid]
        lib.wait_for(worker_links, 5.0, 0.1)
        mine = worker_links()
        t.check(len(mine) == 1, "one uprobe session link carries the worker's pid", f"{mine}")
        sites = sorted(mine[0]["sites"]) if mine else []
        t.check(len(sites) == 4 and [c for c, _ in sites] == [1, 1, 2, 2],
                "over 4 functions: accept, accept4 (cookie 1), select, pselect (cookie 2)",
                f"{mine}")
        t.check(not [x for x in uprobe_links(d.pid) if x.get("pid") == bpid],
                "no link carries the untracked process's pid")
        sys_tp = [e for e in perf_entries(d.pid) if e.get("fd_type") == "tracepoint"
                  and e.get("tracepoint", "").startswith(("sys_enter_", "sys_exit_"))]
        t.check(not sys_tp, "no syscall tracepoint is attached (no host-wide slow path)",
                f"{sys_tp}")
        offs = [o for _, o in sites]
        brk = [text_byte(wpid, o) for o in offs]
        clean = [text_byte(bpid, o) for o in offs]
        t.check(offs and all(m == 0xcc for m, _ in brk),
                "the worker's libc carries a breakpoint at each hooked function",
                f"(memory, file) bytes {brk}")
        t.check(offs and all(m == f and m != 0xcc for m, f in clean),
                "the untracked process's libc is untouched", f"(memory, file) bytes {clean}")

        # Other odoo_http workers on this host may come and go: the gauge is
        # compared with the daemon's links until they agree.
        def agree():
            m = d.scrape()
            links = uprobe_links(d.pid)
            n = m.value("erpscope_tcp_pool_processes_attached")
            return (n, links) if n == len(links) else None
        r = lib.wait_for(agree, 3.0, 0.1)
        t.check(r is not None and r[0] >= 1, "erpscope_tcp_pool_processes_attached counts "
                "the daemon's links, the worker's among them",
                f"{r[0] if r else d.scrape().value('erpscope_tcp_pool_processes_attached')}")
        m = d.scrape()
        t.check(m.value("erpscope_tcp_pool_attach_failures_total") == fail0,
                "no attach failed", f"{m.value('erpscope_tcp_pool_attach_failures_total')}")

        def idle():
            m = d.scrape()
            return m if m.value("erpscope_worker_busy_seconds_total", None, role="odoo_http",
                                worker=str(wpid)) is not None else None
        m = lib.wait_for(idle, 6.0, 0.2)
        t.check(m is not None, "the worker's wait in select() from its second thread is seen",
                "its busy seconds series " + ("is there" if m else "is missing"))
        for _ in range(CONNECTS):
            s = socket.create_connection(("127.0.0.1", wport), timeout=5)
            s.sendall(b"x")
            s.recv(10)
            s.close()
        time.sleep(0.3)
        m = d.scrape()
        _, _, count = m.histogram("erpscope_listen_queue_wait_seconds", role="odoo_http",
                                  port=str(wport))
        t.check(count == CONNECTS, f"{CONNECTS} listen queue waits on the worker's port",
                f"count {count}")
        busy = m.value("erpscope_worker_busy_seconds_total", 0.0, role="odoo_http",
                       worker=str(wpid))
        t.check(busy > 0, "the worker gathered busy seconds", f"{busy}")

        p = procs["worker"][0]
        p.stdin.write("\n")
        p.stdin.flush()
        p.wait(timeout=10)
        link_id = mine[0].get("link_id") if mine else None
        gone = lib.wait_for(lambda: link_id not in {x.get("link_id") for x in
                                                    uprobe_links(d.pid)}, 5.0, 0.1)
        t.check(gone, "the exited worker's link is gone", f"link {link_id}")

        r = lib.wait_for(agree, 3.0, 0.1)
        m = d.scrape()
        pids = sorted(x.get("pid") for x in uprobe_links(d.pid))
        t.check(r is not None,
                "erpscope_tcp_pool_processes_attached drops the worker: it counts the "
                "daemon's links", f"gauge {m.value('erpscope_tcp_pool_processes_attached')}, "
                f"links of {sorted(pids)}")
        p = procs["bystander"][0]
        p.stdin.write("\n")
        p.stdin.flush()
        p.wait(timeout=10)


if __name__ == "__main__":
    lib.main(body)
