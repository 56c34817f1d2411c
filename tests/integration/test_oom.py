#!/usr/bin/python3.11
"""An OOM kill whose victim, cgroup and size are known, in both tracepoint
flavours.

A Debian python3.11 is started inside a fresh memory cgroup limited to
64 MiB without swap (cgroup v2's memory.max and memory.swap.max=0 where a
v2 hierarchy has the memory controller; else v1's memory.limit_in_bytes,
memory.memsw.limit_in_bytes when swap accounting exists, and
memory.swappiness=0). Once erpscope tracks it as role python and has
sampled its memory, it allocates 300 MiB, touching every page. Then:

  - it died of SIGKILL and the kernel's own counter for the cgroup says one
    OOM kill;
  - GET /events?type=oom_kill has exactly one new event: its pid, role
    python, comm, the cgroup's path and id (the directory's inode), itself
    as the task whose allocation triggered the kill, anon RSS between 48 and
    68 MiB (the limit, plus the kernel's per-CPU counter batching), and its
    memory history (at least one sample, "rss rose from ...");
  - erpscope_oom_kills_total{role="python"} and
    erpscope_worker_exits_total{role="python",reason="oom_killed"} rose by
    exactly 1 and no other role's OOM kills moved;
  - one warn line `msg="OOM kill" pid=<pid>` in the daemon's log.

The cgroup is removed afterwards, and whatever is left in it killed, even
when the test fails.
"""

import json
import os
import signal
import subprocess
import time
import urllib.request

import lib

LIMIT = 64 << 20
ALLOC = 300 << 20
MIB = 1 << 20

HOG = r"""
import sys
print("ready", flush=True)
sys.stdin.readline()
x = b"x" * int(sys.argv[1])      # allocates and writes every page
print("survived", len(x), flush=True)
"""


def mounts():
    """[(mount point, fstype, super options)] from /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rest = left.split(), right.split()
            if len(fields) < 5 or len(rest) < 3:
                continue
            mnt = fields[4].encode().decode("unicode_escape")  # \040 and friends
            out.append((mnt, rest[0], rest[2].split(",")))
    return out


def write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


class MemCgroup:
    """A memory cgroup under the root of the hierarchy with the memory
    controller, limited to limit bytes, no swap. Removed at cleanup."""

    def __init__(self, name, limit):
        self.name = name
        self.limit = limit
        self.path = None
        self.version = None

    def create(self):
        v1 = [m for m, t, o in mounts() if t == "cgroup" and "memory" in o]
        v2 = []
        for m, t, _ in mounts():
            try:
                if t == "cgroup2" and "memory" in open(f"{m}/cgroup.controllers").read().split():
                    v2.append(m)
            except OSError:
                pass
        if v2:
            root = v2[0]
            if "memory" not in open(f"{root}/cgroup.subtree_control").read().split():
                write(f"{root}/cgroup.subtree_control", "+memory")
            self.version, self.path = 2, os.path.join(root, self.name)
        elif v1:
            self.version, self.path = 1, os.path.join(v1[0], self.name)
        else:
            raise lib.Failure("no memory cgroup controller mounted (v1 or v2)")
        os.mkdir(self.path)
        lib.on_cleanup(self.remove)
        if self.version == 2:
            write(f"{self.path}/memory.max", self.limit)
            if os.path.exists(f"{self.path}/memory.swap.max"):
                write(f"{self.path}/memory.swap.max", 0)
        else:
            write(f"{self.path}/memory.limit_in_bytes", self.limit)
            if os.path.exists(f"{self.path}/memory.memsw.limit_in_bytes"):
                write(f"{self.path}/memory.memsw.limit_in_bytes", self.limit)
            if os.path.exists(f"{self.path}/memory.swappiness"):
                write(f"{self.path}/memory.swappiness", 0)
        lib.log(f"memory cgroup v{self.version} {self.path}: limit {self.limit >> 20} MiB, no swap")
        return self

    def enter(self):
        """For preexec_fn: moves the calling (child) process in."""
        write(f"{self.path}/cgroup.procs", os.getpid())

    def oom_kills(self):
        """The kernel's own count of OOM kills in this cgroup."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        with open(f"{self.path}/{name}") as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    return int(v)
        return None

    def remove(self):
        if not self.path or not os.path.isdir(self.path):
            return
        deadline = time.monotonic() + 10
        while True:
            try:
                with open(f"{self.path}/cgroup.procs") as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(self.path)
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    raise lib.Failure(f"cannot remove cgroup {self.path}: {e}")
                time.sleep(0.1)


def events(port, query):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/events?{query}", timeout=10) as r:
        t_ = r.headers.get("Content-Type", "")
        if not t_.startswith("application/json"):
            raise lib.Failure(f"GET /events?{query}: Content-Type {t_!r}")
        return json.load(r)


def run(t, mode):
    cg = MemCgroup(f"erpscope-test-oom-{os.getpid()}-{mode}", LIMIT).create()
    cg_rel = "/" + cg.name
    cg_ino = os.stat(cg.path).st_ino

    with lib.Daemon(f"--bpf.attach-mode={mode}") as d:
        m0 = d.scrape()
        t.require(m0.value("erpscope_probe_up", probe="oom") == 1, "the oom probe is up",
                  f"{m0.series('erpscope_probe_up')}")
        id0 = events(d.port, "limit=1")["last_id"]
        pos0 = os.path.getsize(d.logpath)

        p = lib.spawn([lib.PYTHON, "-c", HOG, str(ALLOC)], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, text=True, preexec_fn=cg.enter)
        t.require(p.stdout.readline().strip() == "ready", "the allocator started",
                  f"exit {p.poll()}")
        with open(f"{cg.path}/cgroup.procs") as f:
            inside = [int(x) for x in f.read().split()]
        t.require(inside == [p.pid], f"pid {p.pid} is alone in the cgroup", f"{inside}")
        info, took, last = lib.wait_worker(d, p.pid, timeout=10.0, role="python")
        t.require(info is not None, f"pid {p.pid} tracked as python",
                  f"last seen: {lib.worker_info(last, p.pid)}")

        def sampled():
            m = d.scrape()
            return m.value("erpscope_worker_resident_memory_bytes", role="python",
                           worker=str(p.pid))
        rss0 = lib.wait_for(sampled, 12.0, 0.5)
        t.require(rss0 is not None, "erpscope_worker_resident_memory_bytes has the worker "
                  "within 12 s (one 5 s memory sample)")
        t.check(4 * MIB <= rss0 <= 48 * MIB, "its first RSS sample is an idle python's",
                f"{rss0 / MIB:.1f} MiB")
        m0 = d.scrape()

        lib.log(f"allocating {ALLOC >> 20} MiB in pid {p.pid}")
        p.stdin.write("go\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=60)
        t.require(p.returncode == -signal.SIGKILL, "the allocator died of SIGKILL",
                  f"exit {p.returncode}, said {out!r}")
        t.check(cg.oom_kills() == 1, "the kernel counted one OOM kill in the cgroup",
                f"oom_kill {cg.oom_kills()}")

        def got_event():
            e = events(d.port, f"since={id0}&type=oom_kill&limit=1024")["events"]
            return e if any(x["data"].get("pid") == p.pid for x in e) else None
        evs = lib.wait_for(got_event, 10.0, 0.1) or \
            events(d.port, f"since={id0}&type=oom_kill&limit=1024")["events"]
        lib.log(f"oom_kill events: {json.dumps(evs)}")
        t.require(len(evs) == 1, "exactly one oom_kill event", f"got {len(evs)}")
        data = evs[0]["data"]
        t.check(data.get("pid") == p.pid, "the event names the victim's pid",
                f"pid={data.get('pid')}")
        t.check(data.get("role") == "python" and data.get("worker") == str(p.pid),
                "role python, worker label its pid", f"role={data.get('role')} "
                f"worker={data.get('worker')}")
        t.check(data.get("comm") == "python3.11", "comm python3.11", f"{data.get('comm')!r}")
        t.check(data.get("cgroup") == cg_rel, "the event has the memory cgroup's path",
                f"cgroup={data.get('cgroup')!r}, want {cg_rel!r}")
        t.check(data.get("memcg_id") == cg_ino, "memcg_id is the cgroup directory's inode",
                f"memcg_id={data.get('memcg_id')} inode={cg_ino}")
        trig = data.get("trigger") or {}
        t.check(trig.get("pid") == p.pid and trig.get("role") == "python",
                "the triggering allocation was the victim's own", f"trigger={trig}")
        anon = data.get("rss_anon_bytes") or 0
        # The kernel's RSS counters fold per-CPU deltas in batches: a few MiB of slack.
        t.between(anon / MIB, 48, 68, "anon RSS at the kill, MiB (limit 64)")
        t.check(data.get("rss_bytes") == anon + data.get("rss_file_bytes", -1)
                + data.get("rss_shmem_bytes", -1), "rss_bytes = anon + file + shmem",
                f"{data.get('rss_bytes')}")
        t.check(data.get("total_vm_bytes", 0) >= ALLOC, "total_vm covers the 300 MiB asked for",
                f"{data.get('total_vm_bytes')}")
        hist = data.get("memory_history") or {}
        samples = hist.get("samples") or []
        t.check(len(samples) >= 1 and all(len(s) == 2 and s[1] > 0 for s in samples)
                and abs(samples[0][0] - time.time()) < 120,
                "memory history: [unix time, rss bytes] samples, at least one", f"{samples}")
        t.check((hist.get("summary") or "").startswith("rss rose from "),
                "memory history summary says rss rose", f"{hist.get('summary')!r}")

        def exit_event():
            e = events(d.port, f"since={id0}&type=worker_exit&limit=1024")["events"]
            return [x for x in e if x["data"].get("pid") == p.pid] or None
        ex = lib.wait_for(exit_event, 10.0, 0.1) or []
        t.check(len(ex) == 1 and ex[0]["data"].get("reason") == "oom_killed"
                and ex[0]["data"].get("signal") == "SIGKILL",
                "one worker_exit event for it, reason oom_killed", f"{ex}")

        m1 = d.scrape()
        for role in lib.ROLES:
            k0 = m0.value("erpscope_oom_kills_total", None, role=role)
            k1 = m1.value("erpscope_oom_kills_total", None, role=role)
            want = 1 if role == "python" else 0
            t.check(k0 is not None and k1 is not None and k1 - k0 == want,
                    f'erpscope_oom_kills_total{{role="{role}"}} rose by {want}',
                    f"{k0} -> {k1}")
        x0 = m0.value("erpscope_worker_exits_total", None, role="python", reason="oom_killed")
        x1 = m1.value("erpscope_worker_exits_total", None, role="python", reason="oom_killed")
        t.check(x0 is not None and x1 is not None and x1 - x0 == 1,
                'erpscope_worker_exits_total{role="python",reason="oom_killed"} rose by 1',
                f"{x0} -> {x1}")
        with open(d.logpath, "rb") as f:
            f.seek(pos0)
            text = f.read().decode(errors="replace")
        lines = [x for x in text.splitlines() if 'msg="OOM kill"' in x]
        t.check(len(lines) == 1 and lines[0].startswith("level=warn ")
                and f" pid={p.pid} " in lines[0] and f'cgroup="{cg_rel}"' in lines[0],
                "one warn line for the OOM kill, with pid and cgroup", f"{lines}")
    cg.remove()
    t.check(not os.path.exists(cg.path), "the cgroup is removed")


if __name__ == "__main__":
    lib.main(lib.each_attach_mode(run))
