#!/bin/bash
# `make bench`: measures and prints; asserts nothing. Needs root.
#
# Workload: `taskset -c 0 perf bench sched pipe -l LOOPS`, a context-switch
# storm pinned to one CPU.
#  (i)   ns per event of each of our sched BPF programs beside libbpf-tools
#        runqlat's, from the kernel's BPF run-time stats (run_time_ns /
#        run_cnt deltas over the same workload), runqlat and erpscope one after
#        the other, alternating, ROUNDS rounds, median.
#  (ii)  throughput with erpscope attached vs not: PAIRS alternating off/on
#        pairs, median of the per-pair ratios of ops/s, and of CPU time per op
#        (non-idle delta of /proc/stat over the run, all CPUs). erpscope keeps
#        BPF run-time stats on while it runs, so "on" includes their cost.
#  (iii) daemon RSS (VmRSS) with 200 tracked `odoo: WorkerHTTP` pythons.
#  (iv)  daemon memory with 4 profiled Python workers whose every sample is a
#        new 47-frame stack (6000 functions in random chains, 997 Hz, 40 s).
# The block probe gets the same (i) and (ii) on a direct-I/O workload (dd,
# DIO_OPS 4 KiB O_DIRECT reads of a DIO_MB MiB file on /var/tmp), beside
# libbpf-tools biolatency -Q (queue + device time, the nearest peer).
# The TCP probe gets (i) and (ii) on a loopback connect/request loop (a python
# client titled as an Odoo cron worker doing TCP_CONNS connect, send, receive,
# close against a select()+accept() server titled as an Odoo HTTP worker),
# beside libbpf-tools tcplife (same hook, inet_sock_set_state); tcpconnlat
# is tried too and said so when it cannot attach (it needs kprobes or fentry).
# BENCH_ONLY=tcp runs only that section.
# The pg probe gets (i) ns per event of its USDT programs beside a bpftrace
# script that builds a latency histogram from query__start/query__done, on
# pgbench -S against a PostgreSQL started here (in /var/tmp, in its own
# cgroup, stopped on exit), and (ii) rounds of off / erpscope / erpscope
# --probes=pg / bpftrace on pgbench -S and TPC-B: TPS ratio, CPU per
# transaction (the cgroup's) and the cost per statement in microseconds
# (every probe: what running erpscope costs; --probes=pg: the statement
# probe alone, beside bpftrace's two probes), then (iii) one uprobe trap,
# (iv) the statement program on an Odoo-style SELECT and (v) TPC-B again
# with durable commits (fsync, synchronous_commit on), (vi) sequential scans
# read from the page cache (one smgr__md__read__done per 8 KiB block) off /
# --probes=pg / --probes=pg --pg.buffer-misses (BENCH_ONLY=pgscan runs only
# that; PG_SCANS (20) scans a run). BENCH_ONLY=pg runs
# only that. PG_SCALE (10), PG_TX_S (40000), PG_TX_B (4000) and PG_TX_D
# (1500) transactions per client.
# The Python profiler gets A/B rounds on one python3.11 pinned to BENCH_CPU
# that runs each trial on command (started before the daemons, which find
# it by their /proc scan): (a) a CPU-bound pure-Python loop, iterations/s
# off / erpscope (default 49 Hz) / bpftrace `profile:hz:49 /pid == PID/
# { @[ustack] = count(); }` (the nearest peer: native stacks of the same
# pid at the same rate), target < 1% slower; (b) a loop blocking and waking
# PY_WAKES times a second (back-to-back time.sleep(), calibrated to that
# rate with 1 ns timer slack), wakeups/s off / erpscope, target < 3%. Each
# round also prints what the profilers sampled of the loop, to show they
# were on. BENCH_ONLY=python runs only that; PY_TRIAL (1.0) seconds per run.
# The whole daemon, last, on an Odoo-shaped prefork server (scripts/
# odoo_server.py: a master titled odoo-bin, 2 werkzeug WorkerHTTP, a
# WorkerCron, a gevent process, in their own cgroup; each request a new
# psycopg2 connection running Odoo 16's search_read SQL, a ~3 KB res_partner
# prefetch included) on a PostgreSQL started here, under 6 clients (scripts/
# odoo_load.c, built here; one request per connection): ODOO_ROUNDS rounds,
# each running every arm twice for ODOO_SECONDS, in a rotating order and then
# mirrored (A B C C B A: a drift within the round weighs on every arm
# alike), each run after ODOO_WARM s of load it does not count; arms off / every
# probe / each probe alone (ODOO_ARMS, "+" joins probes: blkio+oom), with
# kernel.bpf_stats_enabled=0. Per arm, medians of each round's ratio to off:
# requests/s, p50 and p95 latency, CPU per request (server + PostgreSQL +
# the daemon's utime+stime; the client's is left out) and the daemon's own;
# PostgreSQL connections/s and the daemon's RSS. First, the roles erpscope
# gave the server's processes; last, one every-probe round with stats on:
# BPF ns per request of each program. BENCH_ONLY=odoo runs only that;
# BENCH_ONLY=sched runs the sched and block sections and (iii) alone.
# The requests probe, after it, on the cheapest request (BENCH_ONLY=requests
# runs only that): (a) the host-wide syscall cost: `dd bs=1 count=
# REQ_DD_COUNT if=/dev/zero of=/dev/null` (a read and a write per byte, in a
# process no probe follows) pinned to BENCH_CPU, every probe on vs off,
# REQ_DD_PAIRS alternating pairs, dd's own CPU per syscall; (b) calls on
# descriptors the probe does not follow (send+recv on a socketpair,
# open+close, REQ_CALLS of each a run, in an `odoo: WorkerHTTP`-titled
# python; send+recv in an untitled one, a process not followed: what every
# socket call of the host pays), off vs --probes=requests, REQ_DD_PAIRS
# pairs; (b2) the worker's open+close with REQ_FANOUT (32) idle `odoo:
# WorkerHTTP` processes attached besides against none: a trap would run
# each attached process's uprobe handler, so its cost would grow with the
# workers attached (close has none now: this should read 0); (b3) with BPF stats on, ns per run of the tracepoint
# programs for the untitled process, which also prices the load
# generator's own socket calls (counted by it) in (c)'s BPF per request; (c) scripts/
# odoo_server.py without PostgreSQL (--http11: a master titled odoo-bin, 2
# WorkerHTTP, a gevent process, in their own cgroup) answering POST
# /web/webclient/version_info (a tiny JSON) to scripts/odoo_load.c, one
# request per connection (REQ_CLIENTS clients) and keep-alive (a client per
# worker, one connection each), REQ_PAIRS rounds of REQ_ARMS mirrored as in
# the Odoo section, each run REQ_SECONDS per variant after REQ_WARM s not
# counted, kernel.bpf_stats_enabled=0: medians of each round's ratios to off
# of requests/s, p50, p95 and CPU per request (the server's cgroup + the
# daemon's, started in a cgroup of its own; the client's left out); then
# REQ_BPF_PAIRS (2) alternating pairs of runs --probes=requests / every probe
# with stats on, over both variants and a third, one request per connection
# carrying a browser's ~900 bytes of headers (odoo_load.c "browser": the
# bytes a real request has the probe look at, where the tiny one has none):
# medians of the BPF ns per request of the requests probe's
# es_req_* programs (alone, and with its parts' totals and tags when the
# sched, pg and python probes are on) and of every program, the same
# above the floor (scripts/bpf_floor.bpf.c: programs that do nothing,
# attached on the same tracepoints after the daemon's in the same runs:
# each of the probe's runs less the floor's ns per run on its hook, which
# is the stats' own clock reads and the dispatch), and the
# requests erpscope counted on the route beside those the client got
# answered; in the same rotation, --probes=requests with each of
# REQ_COMPANIONS (sched,pg,python,tcp; empty: none) in turn, one request per
# connection only: what each other probe adds to the requests probe's
# programs (its parts' totals and tags, and the other's programs on the
# same calls); (d) before that run, the
# share of the workers' CPU samples (perf record -e cpu-clock, 4999 Hz) in
# the probe's own code (uprobe traps, BPF programs and helpers), off vs
# --probes=requests, REQ_PROFILE_PAIRS (3) alternating pairs: a share
# within one run, which the VM's drift between runs does not move;
# (c2) interleaved A/B: the same server run twice at once, the real one and
# a twin whose workers the probe does not follow (odoo_server.py
# --reference), loaded in turn for REQ_SLICE (0.5 s) slices, REQ_SLICES (10)
# each, daemon off then --probes=requests, REQ_IL_PAIRS (3) pairs: CPU per
# request of the real server over the twin's, on over off, so the VM's
# drift, which moves both servers alike within a second, cancels.
# The gpu poller (BENCH_ONLY=gpu runs only that; also last in a full run):
# one poll against the fake libnvidia-ml.so.1 (tests/fake/fake_nvml.c, 2 GPUs,
# 2 processes with samples every 100 ms, built by make): scripts/
# gpu_poll_bench.c, built here against build/liberpscope.a, runs the poller's
# tick GPU_POLLS times, one every GPU_INTERVAL_MS, with this host's process
# table, and prints this thread's CPU time per poll and per poll per GPU
# (target < 200 us per GPU) and its RSS before and after the library loaded;
# then the daemon's VmRSS (--probes=procs) with NVML off and with the fake
# loaded. A real libnvidia-ml is larger and its calls are ioctls to the
# driver: scripts/gpu-check.sh measures that on a host with a GPU.
# The flight recorder (BENCH_ONLY=flight runs only that; last in a full
# run): FLIGHT_ROUNDS rounds of every probe without and with
# --trace.flight-recorder=30s (--trace.buffer-size=FLIGHT_BUFFER), the order
# alternating, kernel.bpf_stats_enabled=1: BPF ns per event of es_switch and
# es_wakeup over the sched pipe workload beside a titled worker sleeping
# 0.2 ms in a loop (tracked threads' state changes are what it records),
# BPF ns per statement of the pg programs over pgbench -S (2 x FLIGHT_PG_TX
# transactions), medians and the difference; what the flight recorder adds
# to the daemon's peak RSS against --trace.buffer-size + 10 MiB.
#
# Environment: LOOPS (200000), ROUNDS (5), PAIRS (10), WORKERS (200),
# ERPSCOPE (build/erpscope), RUNQLAT (/usr/sbin/runqlat), BENCH_CPU (0),
# TCP_CONNS (10000), TCPLIFE (/usr/sbin/tcplife), TCPCONNLAT (/usr/sbin/tcpconnlat),
# PY_TRIAL (1.0), PY_WAKES (10000), BENCH_PYTHON (/usr/bin/python3.11),
# ODOO_SECONDS (6), ODOO_ROUNDS (8), ODOO_WARM (1),
# ODOO_ARMS (off,all,sched,tcp,pg,python,blkio+oom), REQ_PAIRS (10 rounds),
# REQ_SECONDS (3), REQ_WARM (0.5), REQ_CLIENTS (6), REQ_ARMS (off,requests,all),
# REQ_DD_PAIRS (6), REQ_BPF_PAIRS (2), REQ_COMPANIONS (sched,pg,python,tcp),
# REQ_DD_COUNT (1048576), REQ_CALLS (20000), GPU_POLLS (200), GPU_INTERVAL_MS (100),
# FLIGHT_ROUNDS (ROUNDS), FLIGHT_BUFFER (32MiB), FLIGHT_PG_TX (10000).
# kernel.bpf_stats_enabled is set to 1 for the run (0 for the Odoo and requests rounds) and
# restored on exit; every process and cgroup started here is stopped or
# removed on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench.sh: needs root (BPF, bpf_stats_enabled)" >&2
	exit 1
fi
for tool in perf bpftool taskset sysctl; do
	command -v "$tool" >/dev/null || { echo "bench.sh: $tool missing (scripts/deps.sh)" >&2; exit 1; }
done

exec /usr/bin/python3.11 - "$@" <<'PY'
import json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ERPSCOPE = os.environ.get("ERPSCOPE", "build/erpscope")
RUNQLAT = os.environ.get("RUNQLAT", "/usr/sbin/runqlat")
BIOLATENCY = os.environ.get("BIOLATENCY", "/usr/sbin/biolatency")
DIO_OPS = int(os.environ.get("DIO_OPS", "20000"))
DIO_MB = int(os.environ.get("DIO_MB", "128"))
DIO_PATH = None
LOOPS = int(os.environ.get("LOOPS", "200000"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
PAIRS = int(os.environ.get("PAIRS", "10"))
WORKERS = int(os.environ.get("WORKERS", "200"))
CPU = os.environ.get("BENCH_CPU", "0")
TCP_CONNS = int(os.environ.get("TCP_CONNS", "10000"))
TCPLIFE = os.environ.get("TCPLIFE", "/usr/sbin/tcplife")
TCPCONNLAT = os.environ.get("TCPCONNLAT", "/usr/sbin/tcpconnlat")
TCP_PORT = None
HZ = os.sysconf("SC_CLK_TCK")

children = []          # every Popen we start, stopped in cleanup()
old_stats = None


def say(*a):
    print(*a, flush=True)


def cleanup():
    for p in reversed(children):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
        try:
            p.wait(timeout=10)
        except Exception:
            pass
    children.clear()
    if DIO_PATH and os.path.exists(DIO_PATH):
        os.unlink(DIO_PATH)
    odoo_cleanup()
    pg_cleanup()
    if old_stats is not None:
        subprocess.run(["sysctl", "-q", "-w", f"kernel.bpf_stats_enabled={old_stats}"])


def on_signal(signum, frame):
    raise KeyboardInterrupt


for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, on_signal)


def start(args, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("start_new_session", True)
    p = subprocess.Popen(args, **kw)
    children.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=15):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if p in children:
        children.remove(p)


def progs():
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True,
                         check=True).stdout
    return {p["id"]: p for p in json.loads(out or "[]")}


def wait_new_progs(before, proc, what, timeout=60, settle=0.5):
    """Ids of the programs that appeared since before, once proc's load settles."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: {what} exited with {proc.returncode} while loading")
        new = set(progs()) - set(before)
        if new and new == last:
            return new
        last = new
        time.sleep(settle)
    raise SystemExit(f"bench: {what} loaded no BPF program within {timeout}s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_us(pid):
    """utime + stime of pid, all its threads, dead ones included (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) * 1e6 / HZ


def settle_daemon(p, what):
    """Waits until erpscope p stops using CPU: it serves /metrics before its
    probes are all loaded and attached (seconds of CPU on this VM), which
    must stay out of any measured window."""
    last, deadline = proc_cpu_us(p.pid), time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = proc_cpu_us(p.pid)
        if now - last <= 1e6 / HZ:
            return
        last = now
    say(f"#   erpscope ({what}) still busy 60 s after start")


def start_erpscope(probes=None, cgroup=None, extra=()):
    """The daemon with these probes (every probe: None), in cgroup when given
    (its CPU then read from there, dead threads included, to the microsecond)."""
    port = free_port()
    before = progs()
    p = start([ERPSCOPE, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
              + ([f"--probes={probes}"] if probes else []) + list(extra),
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
              preexec_fn=(lambda: cgroup_join(cgroup)) if cgroup else None)
    deadline = time.monotonic() + 60
    while True:
        if p.poll() is not None:
            raise SystemExit(f"bench: erpscope exited with {p.returncode} at start")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("bench: erpscope did not serve /metrics within 60s")
            time.sleep(0.1)
    settle_daemon(p, probes or "every probe")
    ids = {i for i, x in progs().items() if i not in before and x.get("name", "").startswith("es_")}
    return p, port, ids


def nonidle_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest* are inside user)
    return sum(v[:8]) - v[3] - v[4]


def workload():
    """(ops/s, CPU seconds per op) of one pinned perf bench sched pipe run."""
    t0 = nonidle_ticks()
    r = subprocess.run(["taskset", "-c", CPU, "perf", "bench", "sched", "pipe", "-l", str(LOOPS)],
                       capture_output=True, text=True, check=True)
    t1 = nonidle_ticks()
    m = re.search(r"^\s*([\d.]+)\s+ops/sec", r.stdout, re.M)
    if not m:
        raise SystemExit(f"bench: cannot read ops/sec from perf:\n{r.stdout}")
    return float(m.group(1)), (t1 - t0) / HZ / LOOPS


def stats(ids):
    p = progs()
    return {i: (p[i].get("name", "?"), p[i].get("run_cnt", 0), p[i].get("run_time_ns", 0))
            for i in ids if i in p}


def per_event(before, after):
    """name -> (runs, ns/event) over a workload."""
    out = {}
    for i, (name, c1, t1) in after.items():
        _, c0, t0 = before.get(i, (name, 0, 0))
        dc, dt = c1 - c0, t1 - t0
        if dc > 0:
            out[name] = (dc, dt / dc)
    return out


def hook_of(name):
    n = name.lower()
    for h in ("wakeup_new", "wakeup", "switch", "exec", "fork", "exit"):
        if h in n or h.replace("_", "") in n:
            return h
    return name


def pipe_workload():
    """(ops/s, CPU seconds per op) of one pinned perf bench sched pipe run."""
    return workload()


def dio_file():
    """A DIO_MB MiB file on /var/tmp (a real disk) for the direct-I/O workload."""
    global DIO_PATH
    if DIO_PATH is None:
        DIO_PATH = f"/var/tmp/erpscope-bench-{os.getpid()}.dat"
        subprocess.run(["dd", "if=/dev/zero", f"of={DIO_PATH}", "bs=1M", f"count={DIO_MB}",
                        "oflag=direct", "status=none"], check=True)
    return DIO_PATH


def dio_workload():
    """(ops/s, CPU seconds per op) of DIO_OPS 4 KiB O_DIRECT reads by dd."""
    t0 = nonidle_ticks()
    w0 = time.monotonic()
    subprocess.run(["dd", f"if={dio_file()}", "of=/dev/null", "bs=4096", f"count={DIO_OPS}",
                    "iflag=direct", "status=none"], check=True)
    w1 = time.monotonic()
    t1 = nonidle_ticks()
    return DIO_OPS / (w1 - w0), (t1 - t0) / HZ / DIO_OPS


def per_event_vs_peer(peer_argv, peer_stop, our_prefix, work, ops, hooks, title):
    """ns per event of our programs whose name starts with our_prefix and of
    the peer tool's, over the same workload, alternating, ROUNDS rounds."""
    have_peer = os.access(peer_argv[0], os.X_OK)
    if not have_peer:
        say(f"# {peer_argv[0]} missing (apt install libbpf-tools): ours only")
    ours, theirs = {}, {}
    for rnd in range(ROUNDS):
        if have_peer:
            before = progs()
            pp = start(peer_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ids = {i for i in wait_new_progs(before, pp, peer_argv[0])
                   if not progs().get(i, {}).get("name", "").startswith("es_")}
            s0 = stats(ids)
            work()
            s1 = stats(ids)
            stop(pp, peer_stop)
            for name, (runs, ns) in per_event(s0, s1).items():
                theirs.setdefault(name, []).append((runs, ns))
        d, port, ids = start_erpscope()
        time.sleep(0.5)
        ids = {i for i in ids if progs().get(i, {}).get("name", "").startswith(our_prefix)}
        s0 = stats(ids)
        work()
        s1 = stats(ids)
        stop(d)
        for name, (runs, ns) in per_event(s0, s1).items():
            ours.setdefault(name, []).append((runs, ns))
        say(f"#   round {rnd + 1}/{ROUNDS} done")

    def table(d):
        return {n: (statistics.median(r for r, _ in v), statistics.median(ns for _, ns in v))
                for n, v in d.items()}

    def hook(n):
        low = n.lower()
        for h in hooks:
            if h in low or h.replace("_", "") in low:
                return h
        return n

    to, tt = table(ours), table(theirs)
    peer = os.path.basename(peer_argv[0])
    say("")
    say(f"{title}, median of {ROUNDS} rounds (kernel.bpf_stats_enabled)")
    say(f"  {'tool':<10} {'program':<20} {'hook':<15} {'runs/round':>11} {'ns/event':>9} "
        f"{'vs peer':>8}")
    by_hook = {}
    for n, (runs, ns) in tt.items():
        by_hook[hook(n)] = ns
    for n, (runs, ns) in sorted(tt.items(), key=lambda x: hook(x[0])):
        say(f"  {peer:<10} {n:<20} {hook(n):<15} {runs:>11.0f} {ns:>9.1f} {'':>8}")
    for n, (runs, ns) in sorted(to.items(), key=lambda x: hook(x[0])):
        ref = by_hook.get(hook(n))
        ratio = f"{ns / ref:.2f}x" if ref else "-"
        say(f"  {'erpscope':<10} {n:<20} {hook(n):<15} {runs:>11.0f} {ns:>9.1f} {ratio:>8}")
    tot_o = sum(r * ns for r, ns in to.values()) / ops
    tot_t = sum(r * ns for r, ns in tt.values()) / ops if tt else None
    say(f"  BPF ns per workload op, all programs: erpscope {tot_o:.1f}"
        + (f", {peer} {tot_t:.1f}, ratio {tot_o / tot_t:.2f}x" if tot_t else ""))
    per_event_vs_peer.totals = (tot_o, tot_t)  # BPF ns per op: ours, the peer's
    return tot_o / tot_t if tot_t else None


def ab(work, unit, title, npairs=None):
    """npairs (PAIRS) alternating off/on runs: median ratios of ops/s and CPU
    per op; ab.delta_ns: the median per-pair difference of CPU per op, in ns."""
    npairs = npairs or PAIRS
    now = subprocess.run(["sysctl", "-n", "kernel.bpf_stats_enabled"], capture_output=True,
                         text=True, check=True).stdout.strip()
    say("")
    say(f"{title}: {npairs} alternating off/on pairs "
        f"(kernel.bpf_stats_enabled={now}; erpscope without --bpf.stats)")
    pairs = []
    for i in range(npairs):
        off_ops, off_cpu = work()
        d, port, _ = start_erpscope()
        time.sleep(0.3)
        on_ops, on_cpu = work()
        stop(d)
        pairs.append((off_ops, on_ops, off_cpu, on_cpu))
        say(f"  pair {i + 1:>2}: off {off_ops:>9.0f} {unit} {off_cpu * 1e6:6.2f} us CPU/op | "
            f"on {on_ops:>9.0f} {unit} {on_cpu * 1e6:6.2f} us CPU/op | "
            f"ratio {on_ops / off_ops:.3f}")
    tr = statistics.median(on / off for off, on, _, _ in pairs)
    cr = statistics.median(onc / offc for _, _, offc, onc in pairs if offc > 0)
    ab.delta_ns = statistics.median((onc - offc) * 1e9 for _, _, offc, onc in pairs)
    say(f"  median {unit} ratio on/off: {tr:.3f} (throughput {(tr - 1) * 100:+.1f}%); "
        f"median CPU/op ratio on/off: {cr:.3f} (CPU per op {(cr - 1) * 100:+.1f}%)")
    return tr, cr


TCP_SERVER = r"""
import os, select, socket
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()}")
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(1024)
ls.setblocking(False)
print(ls.getsockname()[1], flush=True)
while True:
    select.select([ls], [], [])
    try:
        c, _ = ls.accept()
    except BlockingIOError:
        continue
    c.setblocking(True)
    c.recv(64)
    c.sendall(b"ok\n")
    c.close()
"""

TCP_CLIENT = r"""
import os, socket, sys, time
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerCron {os.getpid()} bench")
port, n = int(sys.argv[1]), int(sys.argv[2])
t0 = time.monotonic()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET\n")
    s.recv(64)
    s.close()
print(time.monotonic() - t0, flush=True)
"""


def tcp_workload():
    """(connections/s, CPU seconds per connection) of TCP_CONNS loopback
    connect/request/close round trips against a select()+accept() server."""
    global TCP_PORT
    if TCP_PORT is None:
        srv = start(["/usr/bin/python3.11", "-c", TCP_SERVER], stdout=subprocess.PIPE, text=True)
        TCP_PORT = int(srv.stdout.readline())
    t0 = nonidle_ticks()
    r = subprocess.run(["/usr/bin/python3.11", "-c", TCP_CLIENT, str(TCP_PORT), str(TCP_CONNS)],
                       capture_output=True, text=True, check=True)
    t1 = nonidle_ticks()
    return TCP_CONNS / float(r.stdout.strip()), (t1 - t0) / HZ / TCP_CONNS


def try_attach(argv, what):
    """Starts a peer tool; returns None when it loaded programs, else why not."""
    if not os.access(argv[0], os.X_OK):
        return f"{argv[0]} missing (apt install libbpf-tools)"
    before = progs()
    p = start(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if p.poll() is not None:
            err = [x for x in p.stderr.read().splitlines() if x.strip()]
            stop(p)
            return f"exited with {p.returncode}: " + (err[0] if err else "no message")
        if set(progs()) - set(before):
            stop(p, signal.SIGINT)
            return None
        time.sleep(0.2)
    stop(p, signal.SIGINT)
    return "loaded no BPF program within 10 s"


def tcp_bench():
    """The TCP probe: (i) ns per event beside tcplife (and tcpconnlat where it
    attaches), (ii) A/B throughput of the loopback connect/request loop.
    Returns (BPF cost ratio vs tcplife or None, throughput ratio, CPU/op ratio)."""
    tcp_workload()  # warm up; starts the server
    why = try_attach([TCPCONNLAT], "tcpconnlat")
    say("")
    if why:
        say(f"# tcpconnlat cannot attach on this kernel ({why}): it hooks tcp_v4_connect and "
            "tcp_rcv_state_process with fentry or kprobes, which this kernel refuses; no "
            "connect-latency peer to compare with")
    else:
        say("# tcpconnlat attaches here: compare it with a manual run (its hooks are not "
            "tracepoints, so it is not timed by this section)")
    ratio = per_event_vs_peer([TCPLIFE], signal.SIGINT, "es_tcp_", tcp_workload, TCP_CONNS,
                              ("state", "inet_sock_set_state", "wait", "rexmit", "rst_tx",
                               "rst_rx", "skerr"),
                              f"(i) tcp: BPF ns per event vs tcplife, {TCP_CONNS} loopback "
                              "connect/request/close round trips")
    say("  (tcplife hooks only inet_sock_set_state; erpscope also runs on accept() and the "
        "select() of the tracked HTTP worker, entry and return, for the queue wait and busy "
        "time: es_tcp_wait, a uprobe session, whose trap cost is not in these BPF times)")
    subprocess.run(["sysctl", "-q", "-w", f"kernel.bpf_stats_enabled={old_stats}"], check=True)
    tr, cr = ab(tcp_workload, "conn/s", "(ii) loopback connect/request throughput")
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
    return ratio, tr, cr


# ---------------------------------------------------------------- PostgreSQL

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PG_SCALE = int(os.environ.get("PG_SCALE", "10"))
PG_TX_S = int(os.environ.get("PG_TX_S", "40000"))  # select-only transactions per client
PG_TX_B = int(os.environ.get("PG_TX_B", "4000"))   # TPC-B transactions per client
PG_SCANS = int(os.environ.get("PG_SCANS", "20"))
PG_TX_D = int(os.environ.get("PG_TX_D", "1500"))   # ... with durable commits
PG = {}  # the bench's cluster: dir, port, cgroup; stopped in pg_cleanup()
BPFTRACE_PG = (
    "usdt:{bin}:postgresql:query__start {{ @start[tid] = nsecs; }} "
    "usdt:{bin}:postgresql:query__done /@start[tid]/ "
    "{{ @lat = hist(nsecs - @start[tid]); delete(@start[tid]); }}")


def pg_cleanup():
    """Stops the bench's PostgreSQL and removes its directory and cgroup."""
    if PG.get("dir"):
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D",
                        os.path.join(PG["dir"], "data"), "-m", "immediate", "-w", "-t", "30",
                        "stop"], capture_output=True, cwd="/")
        subprocess.run(["rm", "-rf", PG["dir"]])
        PG["dir"] = None
    if PG.get("cgroup"):
        try:
            os.rmdir(PG["cgroup"])
        except OSError:
            pass
        PG["cgroup"] = None


def cgroup_new(what):
    """A cgroup2 group of the bench's (cpu.stat: the CPU of what runs in it)."""
    root = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
    path = os.path.join(root, f"erpscope-bench-{what}-{os.getpid()}")
    os.mkdir(path)
    return path


def cgroup_join(path):
    """The calling process (a preexec_fn's child) and what it starts are
    accounted in path."""
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def cgroup_usec(path):
    with open(os.path.join(path, "cpu.stat")) as f:
        for line in f:
            if line.startswith("usage_usec"):
                return int(line.split()[1])
    raise SystemExit("bench: no usage_usec in the cgroup's cpu.stat")


def pg_in_cgroup():
    """preexec_fn: the child and what it starts are accounted in PG's cgroup."""
    cgroup_join(PG["cgroup"])


def pg_cgroup_usec():
    return cgroup_usec(PG["cgroup"])


def pg_start(pgbench_tables=True):
    import shutil
    PG["cgroup"] = cgroup_new("pg")
    PG["dir"] = tempfile.mkdtemp(prefix="erpscope-bench-pg-", dir="/var/tmp")
    shutil.chown(PG["dir"], "postgres", "postgres")
    os.chmod(PG["dir"], 0o755)
    PG["port"] = free_port()
    data = os.path.join(PG["dir"], "data")
    subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/initdb", "-D", data, "-A", "trust",
                    "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"],
                   capture_output=True, check=True, cwd="/")
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write(f"port = {PG['port']}\nlisten_addresses = ''\n"
                f"unix_socket_directories = '{PG['dir']}'\nshared_buffers = 256MB\n"
                "fsync = off\nsynchronous_commit = off\nmax_connections = 20\n")
    subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", data, "-l",
                    os.path.join(PG["dir"], "log"), "-w", "start"], capture_output=True, check=True,
                   cwd="/", preexec_fn=pg_in_cgroup)
    if pgbench_tables:
        subprocess.run(["pgbench", "-i", "-q", "-s", str(PG_SCALE)] + pg_conn(), capture_output=True,
                       check=True)


def pg_conn():
    return ["-h", PG["dir"], "-p", str(PG["port"]), "-U", "postgres", "postgres"]


def pg_work(select_only, tx=None):
    """(transactions/s, CPU seconds per transaction) of one pgbench run of 2
    clients; the CPU is that of the server and pgbench (their cgroup): the
    uprobe traps and BPF programs run in the backends, so it holds the cost."""
    tx = tx or (PG_TX_S if select_only else PG_TX_B)
    args = ["pgbench", "-n", "-M", "simple", "-c", "2", "-j", "2", "-t", str(tx)]
    if select_only:
        args.append("-S")
    else:
        # Every TPC-B run starts from the same tables, as pgbench's own
        # pre-run vacuum would have it, outside the measured window:
        # otherwise dead rows and the history table grow run after run.
        subprocess.run(["psql", "-q", "-X", "-c", "VACUUM pgbench_branches, pgbench_tellers",
                        "-c", "TRUNCATE pgbench_history", "-c", "CHECKPOINT"] + pg_conn(),
                       capture_output=True, check=True)
    u0, w0 = pg_cgroup_usec(), time.monotonic()
    r = subprocess.run(args + pg_conn(), capture_output=True, text=True, preexec_fn=pg_in_cgroup)
    u1, w1 = pg_cgroup_usec(), time.monotonic()
    m = re.search(r"number of transactions actually processed: (\d+)", r.stdout)
    if r.returncode or not m:
        raise SystemExit(f"bench: pgbench failed:\n{r.stdout}\n{r.stderr}")
    n = int(m.group(1))
    return n / (w1 - w0), (u1 - u0) / 1e6 / n


def start_bpftrace():
    script = BPFTRACE_PG.format(bin=os.path.join(PG_BIN, "postgres"))
    before = progs()
    p = start(["bpftrace", "-e", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_new_progs(before, p, "bpftrace")
    return p


def pg_erpscope(probes=None, extra=()):
    """The daemon as start_erpscope() runs it, with only these probes when given."""
    port = free_port()
    args = [ERPSCOPE, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"] + list(extra)
    if probes:
        args.append(f"--probes={probes}")
    p = start(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        if p.poll() is not None:
            raise SystemExit(f"bench: erpscope exited with {p.returncode} at start")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            settle_daemon(p, probes or "every probe")
            return p
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("bench: erpscope did not serve /metrics within 60s")
            time.sleep(0.1)


def pg_ab(select_only, title, tx=None):
    """Rounds of off, erpscope (every probe), erpscope --probes=pg,
    erpscope --probes=pg --no-pg.single-probe (query__start too: the A/B
    of timing statements at query__done alone) and bpftrace, alternating:
    median ratios to the round's off run."""
    say("")
    say(f"{title}: {PAIRS} rounds of off / erpscope / erpscope --probes=pg / --probes=pg "
        "--no-pg.single-probe / bpftrace, each round starting with the next arm, median; CPU is "
        "the server's and pgbench's (their cgroup)")
    def off():
        return pg_work(select_only, tx)

    def daemon(probes, extra=()):
        def arm():
            d = pg_erpscope(probes, extra)
            time.sleep(0.3)
            r = pg_work(select_only, tx)
            stop(d)
            return r
        return arm

    def bpftrace():
        bt = start_bpftrace()
        time.sleep(0.3)
        r = pg_work(select_only, tx)
        stop(bt, signal.SIGINT)
        return r

    arms = [off, daemon(None), daemon("pg"), daemon("pg", ("--no-pg.single-probe",)), bpftrace]
    rows = []
    for i in range(PAIRS):
        # Each round starts with another arm, so none always runs first
        # or right after a daemon stopped.
        runs = [None] * len(arms)
        for k in range(len(arms)):
            j = (i + k) % len(arms)
            runs[j] = arms[j]()
        rows.append(runs)
        say(f"  round {i + 1:>2}: " + " | ".join(
            f"{name} {r[0]:7.0f} tx/s {r[1] * 1e6:6.1f} us"
            for name, r in zip(("off", "all", "pg", "pg2", "bpftrace"), runs)))
    med = statistics.median
    res = {"cpu_off": med(r[0][1] * 1e6 for r in rows)}
    for k, name in ((1, "on"), (2, "pg"), (3, "pg2"), (4, "bt")):
        res[f"tps_{name}"] = med(r[k][0] / r[0][0] for r in rows)
        res[f"cpu_{name}"] = med(r[k][1] / r[0][1] for r in rows)
        res[f"us_{name}"] = med((r[k][1] - r[0][1]) * 1e6 for r in rows)
        # Against bpftrace's run of the same round: the comparison the
        # target asks for, without the off run's own swing in between.
        res[f"cpu_{name}_bt"] = med(r[k][1] / r[4][1] for r in rows)
    say(f"  median TPS ratio: erpscope {res['tps_on']:.3f}, --probes=pg {res['tps_pg']:.3f}, "
        f"two probes {res['tps_pg2']:.3f}, bpftrace {res['tps_bt']:.3f}; CPU/tx ratio: erpscope "
        f"{res['cpu_on']:.3f}, --probes=pg {res['cpu_pg']:.3f}, two probes {res['cpu_pg2']:.3f}, "
        f"bpftrace {res['cpu_bt']:.3f} (off: {res['cpu_off']:.1f} us CPU/tx)")
    say(f"  median CPU/tx ratio to bpftrace's run in the same round: erpscope "
        f"{res['cpu_on_bt']:.3f}, --probes=pg {res['cpu_pg_bt']:.3f}, two probes "
        f"{res['cpu_pg2_bt']:.3f}")
    return res


# A loop calling a function that does nothing, N times, printing the CPU
# seconds (user + system: a uprobe's trap and handler are charged to the
# task) it took. With an empty uprobe on the function, the difference per
# call is what one uprobe trap costs on this machine, BPF aside. The
# function starts with a nop, as a USDT site is one: the kernel emulates
# it, where most other instructions would cost a second trap to single-step.
TRAP_LOOP_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
__attribute__((noinline)) void es_bench_probe(long i) { __asm__ volatile("nop" : : "r"(i) : "memory"); }
int main(int argc, char **argv)
{
	long n = atol(argv[1]);
	struct rusage a, b;
	getrusage(RUSAGE_SELF, &a);
	for (long i = 0; i < n; i++)
		es_bench_probe(i);
	getrusage(RUSAGE_SELF, &b);
	printf("%.9f\n", (b.ru_utime.tv_sec - a.ru_utime.tv_sec) + (b.ru_stime.tv_sec - a.ru_stime.tv_sec) +
	       ((b.ru_utime.tv_usec - a.ru_utime.tv_usec) + (b.ru_stime.tv_usec - a.ru_stime.tv_usec)) / 1e6);
	return 0;
}
"""
TRAP_CALLS = int(os.environ.get("TRAP_CALLS", "200000"))


def trap_cost():
    """Median ns one uprobe trap adds per call (empty bpftrace uprobe on vs
    off, PAIRS alternating pairs), or None when cc or bpftrace is missing."""
    d = tempfile.mkdtemp(prefix="erpscope-bench-trap-")
    src, exe = os.path.join(d, "loop.c"), os.path.join(d, "loop")
    with open(src, "w") as f:
        f.write(TRAP_LOOP_C)
    if subprocess.run(["cc", "-O2", "-o", exe, src], capture_output=True).returncode:
        say("# cc failed: no uprobe trap measurement")
        return None

    def run():
        r = subprocess.run(["taskset", "-c", CPU, exe, str(TRAP_CALLS)], capture_output=True,
                           text=True, check=True)
        return float(r.stdout) / TRAP_CALLS * 1e9

    run()
    diffs = []
    for _ in range(PAIRS):
        off = run()
        before = progs()
        bt = start(["bpftrace", "-e", f"uprobe:{exe}:es_bench_probe {{ }}"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_new_progs(before, bt, "bpftrace")
        on = run()
        stop(bt, signal.SIGINT)
        diffs.append(on - off)
    subprocess.run(["rm", "-rf", d])
    return statistics.median(diffs)


# An Odoo-style statement: every name quoted and qualified, an IN list and
# literals at the end, sent with its literals inlined as psycopg2 does.
ODOO_SQL = (
    '\\set aid random(1, 100000 * :scale)\n'
    'SELECT "pgbench_accounts"."aid" AS "aid", "pgbench_accounts"."bid" AS "bid", '
    '"pgbench_accounts"."abalance" AS "abalance", "pgbench_accounts"."filler" AS "filler" '
    'FROM "pgbench_accounts" LEFT JOIN "pgbench_branches" AS "pgbench_accounts__bid" ON '
    '("pgbench_accounts"."bid" = "pgbench_accounts__bid"."bid") WHERE '
    '(("pgbench_accounts"."aid" IN (:aid, :aid + 1, :aid + 2, :aid + 3)) AND '
    '("pgbench_accounts"."filler" IS NOT NULL OR "pgbench_accounts"."abalance" >= -100000)) '
    'AND ("pgbench_accounts__bid"."bbalance" IS NOT NULL OR true) '
    'ORDER BY "pgbench_accounts"."aid" DESC, "pgbench_accounts"."bid" LIMIT 80 OFFSET 0;\n')
PG_ODOO_TX = int(os.environ.get("PG_ODOO_TX", "20000"))


def pg_odoo_cost():
    """BPF ns per statement of es_pg_query_done on an Odoo-style statement,
    median of ROUNDS daemons: the normaliser's share grows with the text."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(ODOO_SQL)
    text = ODOO_SQL.split("\n")[1]
    per = []
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
    for _ in range(ROUNDS):
        d, port, ids = start_erpscope()
        time.sleep(0.5)
        s0 = stats(ids)
        r = subprocess.run(["pgbench", "-n", "-M", "simple", "-c", "1", "-t", str(PG_ODOO_TX),
                            "-f", f.name] + pg_conn(), capture_output=True, text=True)
        s1 = stats(ids)
        stop(d)
        if r.returncode:
            raise SystemExit(f"bench: pgbench -f failed:\n{r.stdout}\n{r.stderr}")
        ev = per_event(s0, s1).get("es_pg_query_done")
        if ev:
            per.append(ev[1])
    subprocess.run(["sysctl", "-q", "-w", f"kernel.bpf_stats_enabled={old_stats}"], check=True)
    os.unlink(f.name)
    if per:
        say("")
        say(f"(iv) es_pg_query_done on an Odoo-style SELECT (~{len(text)} bytes, quoted names, an "
            f"IN list, literals last), {PG_ODOO_TX} statements, median of {ROUNDS} rounds: "
            f"{statistics.median(per):.0f} ns per statement")


def pg_durable():
    """TPC-B as PostgreSQL ships (fsync and synchronous_commit on): each
    commit waits for its WAL flush, as in production."""
    subprocess.run(["psql", "-q", "-X", "-c", "ALTER SYSTEM SET fsync = on", "-c",
                    "ALTER SYSTEM SET synchronous_commit = on", "-c", "SELECT pg_reload_conf()"]
                   + pg_conn(), capture_output=True, check=True)
    time.sleep(0.5)
    return pg_ab(False, "(v) pgbench TPC-B with durable commits (fsync and synchronous_commit on, "
                 "PostgreSQL's defaults)", PG_TX_D)


def pg_seqscan():
    """(vi) Sequential scans served from the page cache: pgbench_accounts is
    more than a quarter of shared_buffers, so each scan reads every block
    from the OS through a small ring, and smgr__md__read__done fires per
    8 KiB block. CPU per scan (the cgroup's) off / --probes=pg /
    --probes=pg --pg.buffer-misses, ROUNDS rounds, the order rotating."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write("SELECT count(*) FROM pgbench_accounts;\n")
    blocks = int(subprocess.run(["psql", "-X", "-A", "-t", "-c",
                                 "SELECT pg_relation_size('pgbench_accounts') / 8192"]
                                + pg_conn(), capture_output=True, text=True,
                                check=True).stdout.strip())
    arms = [("off", None), ("--probes=pg", ()), ("--probes=pg --pg.buffer-misses",
                                                 ("--pg.buffer-misses",))]
    per = {a: [] for a, _ in arms}

    def scans():
        u0 = pg_cgroup_usec()
        subprocess.run(["pgbench", "-n", "-M", "simple", "-c", "1", "-t", str(PG_SCANS), "-f",
                        f.name] + pg_conn(), capture_output=True, check=True,
                       preexec_fn=pg_in_cgroup)
        return (pg_cgroup_usec() - u0) / PG_SCANS

    scans()  # the table into the page cache
    for r in range(ROUNDS):
        for name, extra in arms[r % len(arms):] + arms[:r % len(arms)]:
            d = None if extra is None else pg_erpscope("pg", extra)
            if d:
                time.sleep(0.5)
            per[name].append(scans())
            if d:
                stop(d)
    os.unlink(f.name)
    off = statistics.median(per["off"])
    say("")
    say(f"(vi) sequential scan of pgbench_accounts ({blocks} blocks, read from the page cache "
        f"through the ring), {PG_SCANS} scans a run, {ROUNDS} rounds, median CPU per scan:")
    res = {}
    for name, _ in arms:
        m = statistics.median(per[name])
        res[name] = m / off
        say(f"  {name:34s} {m / 1000:8.1f} ms  ratio {m / off:.3f}  "
            f"({(m - off) * 1000 / blocks:+.0f} ns per block)")
    return res


def pg_bench():
    """PostgreSQL statements: (i) ns per event of the pg probe's USDT
    programs beside a bpftrace latency-histogram script (query__start/done)
    on the same pgbench -S run, (ii) TPS and CPU per transaction with
    erpscope and with that bpftrace script, against off, for select-only
    and TPC-B, and the cost per statement in microseconds."""
    if not os.access(os.path.join(PG_BIN, "postgres"), os.X_OK):
        say(f"# {PG_BIN}/postgres missing (scripts/deps.sh): no PostgreSQL bench")
        return None
    pg_start()
    say("")
    say(f"# PostgreSQL bench: pgbench -M simple, 2 clients, scale {PG_SCALE}, select-only "
        f"{2 * PG_TX_S} and TPC-B {2 * PG_TX_B} transactions per run, fsync off")
    pg_work(True)  # warm the cache
    ops = 2 * PG_TX_S
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
    script = BPFTRACE_PG.format(bin=os.path.join(PG_BIN, "postgres"))
    ratio = per_event_vs_peer(["/usr/bin/bpftrace", "-e", script], signal.SIGINT, "es_pg_",
                              lambda: pg_work(True), ops,
                              ("query_start", "query__start", "query_done", "query__done",
                               "xact_commit", "read_done"),
                              "(i) pg: BPF ns per event vs a bpftrace latency histogram, pgbench -S")
    subprocess.run(["sysctl", "-q", "-w", f"kernel.bpf_stats_enabled={old_stats}"], check=True)
    trap = trap_cost()
    if trap is not None and ratio:
        ours, peer = per_event_vs_peer.totals
        say("")
        say(f"(iii) one uprobe trap (an empty uprobe on a C function, {PAIRS} pairs, median): "
            f"{trap:.0f} ns. Per statement, traps + BPF: erpscope 1 x {trap:.0f} + {ours:.0f} = "
            f"{trap + ours:.0f} ns; with --no-pg.single-probe 2 x {trap:.0f} + BPF; bpftrace "
            f"2 x {trap:.0f} + {peer:.0f} = {2 * trap + peer:.0f} ns: ratio "
            f"{(trap + ours) / (2 * trap + peer):.2f}")
    pg_odoo_cost()
    s = pg_ab(True, "(ii) pgbench -S (select-only, 1 statement per transaction)")
    b = pg_ab(False, "(ii) pgbench TPC-B (7 statements per transaction)")
    say(f"  cost per statement, from the CPU per transaction: select-only erpscope "
        f"{s['us_on']:.2f} us (--probes=pg {s['us_pg']:.2f}, two probes {s['us_pg2']:.2f}), "
        f"bpftrace {s['us_bt']:.2f} us; TPC-B erpscope {b['us_on'] / 7:.2f} us (--probes=pg "
        f"{b['us_pg'] / 7:.2f}, two probes {b['us_pg2'] / 7:.2f}), bpftrace {b['us_bt'] / 7:.2f} us")
    durable = pg_durable()
    pg_seqscan()
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
    pg_cleanup()
    return ratio, s, b, durable


def pg_summary(res):
    if not res:
        return
    ratio, s, b, dur = res
    say(f"  pg: BPF cost per select-only transaction vs bpftrace: "
        + (f"{ratio:.2f}x" if ratio else "n/a")
        + f"; -S TPS on/off {s['tps_on']:.3f} (--probes=pg {s['tps_pg']:.3f}, bpftrace "
        f"{s['tps_bt']:.3f}), CPU/tx {s['cpu_on']:.3f} (--probes=pg {s['cpu_pg']:.3f}, bpftrace "
        f"{s['cpu_bt']:.3f}, two probes {s['cpu_pg2']:.3f}); TPC-B TPS {b['tps_on']:.3f} "
        f"(--probes=pg {b['tps_pg']:.3f}, bpftrace {b['tps_bt']:.3f}), CPU/tx {b['cpu_on']:.3f} "
        f"(--probes=pg {b['cpu_pg']:.3f}, two probes {b['cpu_pg2']:.3f}, bpftrace "
        f"{b['cpu_bt']:.3f}); per statement {s['us_on']:.2f} us (-S), "
        f"{b['us_on'] / 7:.2f} us (TPC-B); --probes=pg {s['us_pg']:.2f} / {b['us_pg'] / 7:.2f} us; "
        f"--probes=pg CPU/tx over bpftrace's in the same round -S {s['cpu_pg_bt']:.3f}, TPC-B "
        f"{b['cpu_pg_bt']:.3f}; "
        f"durable TPC-B TPS {dur['tps_on']:.3f} (--probes=pg {dur['tps_pg']:.3f}, bpftrace "
        f"{dur['tps_bt']:.3f}), CPU/tx {dur['cpu_on']:.3f} (--probes=pg {dur['cpu_pg']:.3f}, "
        f"bpftrace {dur['cpu_bt']:.3f})")


# ---------------------------------------------------------------- Python

PY_BIN = os.environ.get("BENCH_PYTHON", "/usr/bin/python3.11")
PY_TRIAL = float(os.environ.get("PY_TRIAL", "1.0"))   # seconds per run
PY_WAKES = int(os.environ.get("PY_WAKES", "10000"))   # blocks and wakeups per second
PY = {}  # the bench's Python loop: proc, pid (stopped in cleanup() with the children)
BPFTRACE_PY = "profile:hz:49 /pid == {pid}/ {{ @[ustack] = count(); }}"

# One long-lived python3.11 pinned to BENCH_CPU runs every trial on command,
# so that each daemon (started after it, as ab() does) finds it by its /proc
# scan and the bpftrace peer can filter on its pid:
#   cpu S   a pure-Python arithmetic loop for S seconds: iterations per second
#   wake S  back-to-back time.sleep(nap) for S seconds: wakeups per second
#   cal N   sets nap so that wake runs at N wakeups per second (timer slack
#           is 1 ns, so a sleep ends when asked; nap = 1/N - what one
#           iteration costs beyond the sleep, measured)
PY_LOOP = r"""
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK: 1 ns
nap = 1e-4
print(os.getpid(), flush=True)


def cpu(seconds):
    n = x = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        for i in range(10000):
            x = (x + i * i) % 1000003
        n += 10000
        t = time.perf_counter()
        if t >= end:
            return n, t - t0


def wake(seconds):
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        time.sleep(nap)
        n += 1
        t = time.perf_counter()
        if t >= end:
            return n, t - t0


for line in sys.stdin:
    cmd, arg = line.split()
    if cmd == "cal":
        want = float(arg)
        for _ in range(5):
            n, s = wake(0.5)
            nap = max(1e-6, 1.0 / want - (s / n - nap))
        n, s = wake(1.0)
        print(nap, n / s, flush=True)
    else:
        c0 = time.process_time_ns()
        n, s = (cpu if cmd == "cpu" else wake)(float(arg))
        print(n, s, time.process_time_ns() - c0, flush=True)
"""


def py_cmd(cmd, arg):
    """Sends a command to the bench's Python loop (started on first use)."""
    if "proc" not in PY:
        p = start(["taskset", "-c", CPU, PY_BIN, "-c", PY_LOOP], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, text=True)
        PY["proc"], PY["pid"] = p, int(p.stdout.readline())
    p = PY["proc"]
    p.stdin.write(f"{cmd} {arg}\n")
    p.stdin.flush()
    out = p.stdout.readline().split()
    if len(out) not in (2, 3):
        raise SystemExit(f"bench: the Python loop died ({p.poll()}) on {cmd} {arg}")
    return [float(x) for x in out]


def task_ns(pid):
    """CPU time of every thread of pid, in ns (/proc/<pid>/task/*/schedstat)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def py_workload(kind):
    """work() for py_ab: (ops/s, CPU seconds per op) of one PY_TRIAL run of the
    loop (kind "cpu": loop iterations; "wake": sleeps). The CPU is the loop's
    own (what the kernel charges it, BPF programs run in its context
    included) plus the profiler process's (PY["prof"]: the daemon or
    bpftrace), in ns: /proc/stat's ticks would round a 1 s run of the wake
    loop, ~10% of a CPU, to ~10 ticks."""
    def work():
        prof = PY.get("prof")
        p0 = task_ns(prof) if prof else 0
        n, s, loop_ns = py_cmd(kind, PY_TRIAL)
        p1 = task_ns(prof) if prof else 0
        return n / s, (loop_ns + p1 - p0) / 1e9 / n
    return work


def py_profiled(port, timeout=5.0):
    """True once the daemon lists the loop's pid at /workers as a Python it reads
    (BENCH_PYTHON: 3.10 to 3.13)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/workers?format=json",
                                          timeout=5).read()
            for w in json.loads(body).get("workers", []):
                if w.get("pid") == PY["pid"] and w.get("python"):
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return False


def py_samples(port, kind):
    """The loop's samples (cpu) or blocked microseconds (offcpu) in the daemon's
    profile of the last run."""
    secs = int(PY_TRIAL) + 2
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/profile?kind={kind}&"
                                      f"seconds={secs}&worker={PY['pid']}", timeout=10).read()
    except OSError:
        return None
    try:
        return sum(int(x.rsplit(" ", 1)[1]) for x in body.decode().splitlines() if " " in x)
    except ValueError:
        return "unparsable"


def py_ab(kind, unit, title, peer, target):
    """PAIRS rounds of off / erpscope (defaults: 49 Hz CPU samples, 10 ms
    off-CPU threshold) [/ bpftrace profile:hz:49 /pid == loop/ { @[ustack] =
    count(); }], alternating: median ratios to each round's off run. Each
    on-run also says how much the profiler took of the loop (so it was on)."""
    work = py_workload(kind)
    work()  # warm up (and start the loop)
    arms = ["off", "erpscope"] + (["bpftrace"] if peer else [])
    say("")
    say(f"{title}: {PAIRS} rounds of {' / '.join(arms)}, {PY_TRIAL:g} s each, median "
        f"(loop pid {PY['pid']} on CPU {CPU})")
    rows = []
    for i in range(PAIRS):
        runs, took = [work()], []
        d, port, _ = start_erpscope()
        if not py_profiled(port):
            say(f"#   round {i + 1}: erpscope does not list the loop at /workers within 5 s")
        time.sleep(0.3)
        PY["prof"] = d.pid
        runs.append(work())
        PY["prof"] = None
        took.append(f"erpscope {py_samples(port, 'cpu')} samples"
                    + (f", {py_samples(port, 'offcpu')} us off-CPU" if kind == "wake" else ""))
        stop(d)
        if peer:
            out = tempfile.TemporaryFile(mode="w+")
            before = progs()
            bt = start(["bpftrace", "-e", BPFTRACE_PY.format(pid=PY["pid"])], stdout=out,
                       stderr=subprocess.DEVNULL)
            wait_new_progs(before, bt, "bpftrace")
            time.sleep(0.3)
            PY["prof"] = bt.pid
            runs.append(work())
            PY["prof"] = None
            stop(bt, signal.SIGINT)
            out.seek(0)
            n = sum(int(m) for m in re.findall(r"^\]: (\d+)$", out.read(), re.M))
            out.close()
            took.append(f"bpftrace {n} samples")
        rows.append(runs)
        say(f"  round {i + 1:>2}: " + " | ".join(
            f"{a} {r[0]:10.0f} {unit} {r[1] * 1e9:7.1f} ns CPU/op" for a, r in zip(arms, runs))
            + f"  ({'; '.join(took)})")
    med = statistics.median
    res = {}
    for k, a in enumerate(arms[1:], 1):
        res[f"ops_{a}"] = med(r[k][0] / r[0][0] for r in rows)
        res[f"cpu_{a}"] = med(r[k][1] / r[0][1] for r in rows if r[0][1] > 0)
    say("  median " + unit + " ratio on/off: " + ", ".join(
        f"{a} {res['ops_' + a]:.4f} ({(res['ops_' + a] - 1) * 100:+.2f}%)" for a in arms[1:])
        + "; CPU/op ratio: " + ", ".join(
        f"{a} {res['cpu_' + a]:.3f} ({(res['cpu_' + a] - 1) * 100:+.1f}%)" for a in arms[1:])
        + f"; target: erpscope {unit} within {target}% of off")
    return res


def python_bench():
    """The Python profiler: (a) a CPU-bound pure-Python loop with erpscope's
    profiler on (49 Hz) and with bpftrace sampling the same pid at 49 Hz with
    native stacks (the nearest peer: no eBPF Python-stack profiler is
    packaged for Debian 12), against off; target: < 1% slower. (b) a loop
    that blocks and wakes PY_WAKES times a second (time.sleep), erpscope on vs
    off; target: < 3% fewer wakeups per second. CPU per op beside each: the
    loop's own CPU plus the profiler process's (py_workload). Returns ((a),
    (b)) results."""
    if not os.access(PY_BIN, os.X_OK):
        say(f"# {PY_BIN} missing: no Python bench")
        return None
    say("")
    nap, rate = py_cmd("cal", PY_WAKES)[:2]
    say(f"# Python bench: {PY_BIN} pinned to CPU {CPU}; pure-Python loop, and "
        f"time.sleep({nap * 1e6:.1f} us) back to back at {rate:.0f} wakeups/s "
        f"(asked {PY_WAKES}), {PY_TRIAL:g} s per run")
    subprocess.run(["sysctl", "-q", "-w", f"kernel.bpf_stats_enabled={old_stats}"], check=True)
    a = py_ab("cpu", "it/s", "(a) CPU-bound Python loop, iterations per second", True, 1)
    b = py_ab("wake", "wake/s", f"(b) Python loop blocking and waking ~{PY_WAKES}/s", False, 3)
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
    stop(PY.pop("proc"))
    return a, b


def python_summary(res):
    if not res:
        return
    a, b = res
    say(f"  python: CPU-bound loop iterations/s on/off {a['ops_erpscope']:.4f} "
        f"({(a['ops_erpscope'] - 1) * 100:+.2f}%, target > -1%), bpftrace 49 Hz ustack "
        f"{a['ops_bpftrace']:.4f} ({(a['ops_bpftrace'] - 1) * 100:+.2f}%); CPU/op "
        f"{a['cpu_erpscope']:.3f} (bpftrace {a['cpu_bpftrace']:.3f}); {PY_WAKES}/s "
        f"block-wake loop wakeups/s on/off {b['ops_erpscope']:.4f} "
        f"({(b['ops_erpscope'] - 1) * 100:+.2f}%, target > -3%), CPU/wake "
        f"{b['cpu_erpscope']:.3f}")


# ---------------------------------------------------------------- Odoo

ODOO_SECONDS = float(os.environ.get("ODOO_SECONDS", "6"))
ODOO_WARM = float(os.environ.get("ODOO_WARM", "1"))
ODOO_ROUNDS = int(os.environ.get("ODOO_ROUNDS", "8"))
# "off", "all" (every probe) or probes joined by "+" (--probes=blkio,oom).
ODOO_ARMS = os.environ.get("ODOO_ARMS", "off,all,sched,tcp,pg,python,blkio+oom")
ODOO_CLIENTS = 6
ODOO_ROLES = {"odoo_master": 1, "odoo_http": 2, "odoo_cron": 1, "odoo_gevent": 1}
ODOO = {}  # server proc, port, cgroup, client binary's dir, server log


def odoo_cleanup():
    """Stops the server, removes its cgroup and the daemons' (once their
    processes are gone) and the client's directory."""
    if ODOO.get("proc"):
        stop(ODOO.pop("proc"))
    for key in ("cgroup", "dcgroup", "twin_cgroup"):
        if not ODOO.get(key):
            continue
        for _ in range(50):  # SIGKILLed workers are reaped by init, not us
            try:
                os.rmdir(ODOO[key])
                break
            except OSError:
                time.sleep(0.1)
        ODOO[key] = None
    if ODOO.get("dir"):
        subprocess.run(["rm", "-rf", ODOO["dir"]])
        ODOO["dir"] = None


def arm_daemon(arm, cgroup=None):
    """erpscope with arm's probes ("all": every probe; "+" joins probes), once
    idle: it serves /metrics before its probes are all loaded and attached
    (seconds of CPU on this VM), which must stay out of the measured window.
    Returns (proc, port, the ids of the BPF programs it holds: its own alone,
    even while another bench's daemons run)."""
    d, port, _ = start_erpscope(None if arm == "all" else arm.replace("+", ","), cgroup)
    ids = set()
    for fd in os.listdir(f"/proc/{d.pid}/fdinfo"):
        try:
            with open(f"/proc/{d.pid}/fdinfo/{fd}") as f:
                m = re.search(r"^prog_id:\s+(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    return d, port, ids


def odoo_sessions():
    """Backends started for the odoo database so far (pg_stat_database)."""
    r = subprocess.run(["psql", "-AtX", "-c", "SELECT sessions FROM pg_stat_database "
                        "WHERE datname = 'odoo'"] + pg_conn(), capture_output=True, text=True,
                       check=True)
    return int(r.stdout)


def odoo_load(seconds, clients=ODOO_CLIENTS, extra=(), port=None):
    """One run of scripts/odoo_load.c (extra: PATH [keepalive]) against the
    server (port: another one): its JSON line."""
    r = subprocess.run([os.path.join(ODOO["dir"], "odoo_load"), str(port or ODOO["port"]),
                        str(seconds), str(clients)] + list(extra), capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout)


def odoo_server_start(args):
    """scripts/odoo_server.py with args in its own cgroup, and the load
    client built."""
    ODOO["dir"] = tempfile.mkdtemp(prefix="erpscope-bench-odoo-")
    subprocess.run(["cc", "-O2", "-pthread", "-o", os.path.join(ODOO["dir"], "odoo_load"),
                    "scripts/odoo_load.c"], check=True)
    ODOO["cgroup"] = cgroup_new("odoo")
    ODOO["log"] = tempfile.TemporaryFile("w+")
    ODOO["proc"] = start([PY_BIN, "scripts/odoo_server.py", "--port", "0"] + args,
                         stdout=subprocess.PIPE, stderr=ODOO["log"], text=True,
                         preexec_fn=lambda: cgroup_join(ODOO["cgroup"]))
    ODOO["port"] = int(ODOO["proc"].stdout.readline())
    time.sleep(1.0)  # the children fork and retitle


def odoo_start():
    """PostgreSQL with the odoo database, scripts/odoo_server.py in its own
    cgroup, and the load client built."""
    pg_start(pgbench_tables=False)
    subprocess.run(["psql", "-qX", "-c", "CREATE DATABASE odoo"] + pg_conn(), capture_output=True,
                   check=True)
    dsn = f"host={PG['dir']} port={PG['port']} dbname=odoo user=postgres"
    subprocess.run([PY_BIN, "scripts/odoo_server.py", "--dsn", dsn, "--init"], capture_output=True,
                   check=True)
    odoo_server_start(["--dsn", dsn])


def odoo_roles(port):
    """Role -> how many of the server's processes erpscope lists at /metrics."""
    master = ODOO["proc"].pid
    with open(f"/proc/{master}/task/{master}/children") as f:
        pids = {str(master)} | set(f.read().split())
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    seen = {}
    for line in text.splitlines():
        if line.startswith("erpscope_worker_info{"):
            pid = re.search(r'[{,]pid="(\d+)"', line)
            role = re.search(r'[{,]role="([^"]+)"', line)
            if pid and role and pid.group(1) in pids:
                seen[role.group(1)] = seen.get(role.group(1), 0) + 1
    return seen


def odoo_warmup():
    """Warms PostgreSQL and the workers under load with every probe on, and
    checks meanwhile that erpscope gives the server's processes their roles,
    and whether the daemon turns BPF run-time stats on for itself."""
    d, port, _ = arm_daemon("all")
    client = start([os.path.join(ODOO["dir"], "odoo_load"), str(ODOO["port"]), "5",
                    str(ODOO_CLIENTS)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 4
    while True:
        seen = odoo_roles(port)
        if seen == ODOO_ROLES or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    client.wait()
    children.remove(client)
    own_stats = False
    for fd in os.listdir(f"/proc/{d.pid}/fd"):
        try:
            own_stats = own_stats or os.readlink(f"/proc/{d.pid}/fd/{fd}") == "anon_inode:bpf-stats"
        except OSError:
            pass
    stop(d)
    say("  roles erpscope gave the server's processes: " + ", ".join(
        f"{r} {seen.get(r, 0)}/{n}" for r, n in ODOO_ROLES.items())
        + ("" if seen == ODOO_ROLES else f"  <-- MISMATCH (saw {seen})"))
    if own_stats:
        say("  note: this erpscope turns BPF run-time stats on for itself (it holds a "
            "BPF_ENABLE_STATS fd), so its arms below pay for them (two clock reads per program "
            "run) whatever kernel.bpf_stats_enabled says")


def measured(load, cgroups, d=None, ids=None):
    """One load() (odoo_load's JSON line) measured: requests/s, p50 and p95,
    the CPU per request (us) of each of cgroups (name -> path) and of the
    daemon d (its utime+stime; 0 without one, or its cgroup's when cgroups
    has "daemon"), their sum ("cpu"), and with ids the BPF run time of those
    programs over the load (per_event)."""
    dc0 = proc_cpu_us(d.pid) if d else 0
    s0 = stats(ids) if ids else None
    u0 = {k: cgroup_usec(path) for k, path in cgroups.items()}
    r = load()
    u1 = {k: cgroup_usec(path) for k, path in cgroups.items()}
    n = max(r["requests"], 1)
    res = {"rps": r["requests"] / r["seconds"], "p50": r["p50_ms"], "p95": r["p95_ms"],
           "errors": r["errors"], "n": n, "secs": r["seconds"], "daemon": 0.0,
           "client_calls": r.get("socket_calls", 0) / n}
    if d:
        res["daemon"] = (proc_cpu_us(d.pid) - dc0) / n
    res.update({k: (u1[k] - u0[k]) / n for k in cgroups})
    if ids:
        res["bpf"] = per_event(s0, stats(ids))
    res["cpu"] = sum(res[k] for k in set(cgroups) | {"daemon"})
    return res


def odoo_run(arm, want_stats=False):
    """One ODOO_SECONDS load with arm's daemon (none for "off"), after
    ODOO_WARM s of load not counted (the server's and PostgreSQL's state
    after a daemon started or stopped). CPU is that of the server's cgroup,
    PostgreSQL's and the daemon's, not the client's."""
    d = ids = None
    if arm != "off":
        d, port, ids = arm_daemon(arm)
    if ODOO_WARM > 0:
        odoo_load(ODOO_WARM)
    if d:
        rss0 = vmrss(d.pid)
    n0 = odoo_sessions()
    res = measured(lambda: odoo_load(ODOO_SECONDS), {"server": ODOO["cgroup"], "pg": PG["cgroup"]},
                   d, ids if want_stats else None)
    res["conn_s"] = (odoo_sessions() - n0) / res["secs"]
    if d:
        res["rss"] = (rss0, vmrss(d.pid))
        stop(d)
    return res


def combine_runs(a, b, per_req=("server", "pg", "daemon", "cpu")):
    """One arm's figures for a round from its two runs: rates and CPU per
    request (per_req) over both runs' requests, latencies averaged."""
    n, secs = a["n"] + b["n"], a["secs"] + b["secs"]
    res = {k: (a[k] * a["n"] + b[k] * b["n"]) / n for k in per_req}
    res.update({"n": n, "secs": secs, "rps": n / secs, "errors": a["errors"] + b["errors"],
                "p50": (a["p50"] + b["p50"]) / 2, "p95": (a["p95"] + b["p95"]) / 2})
    if "conn_s" in a:
        res["conn_s"] = (a["conn_s"] * a["secs"] + b["conn_s"] * b["secs"]) / secs
    if "rss" in a:
        res["rss"] = (a["rss"][0], b["rss"][1])
    return res


def mirrored_rounds(arms, rounds, run, combine, show):
    """rounds rounds of every arm twice: each round starts with another arm,
    none always first, and runs the order back again (A B C C B A: a drift
    within the round weighs on every arm alike). run(arm) -> one run's
    figures, combine(x, y) -> an arm's for the round from its two runs,
    show(round, arm, figures) prints a run. Returns [{arm: figures}]."""
    rows = []
    for i in range(rounds):
        res, order = {}, arms[i % len(arms):] + arms[:i % len(arms)]
        for a in order + order[::-1]:
            r = run(a)
            res[a] = combine(res[a], r) if a in res else r
            show(i, a, r)
        rows.append(res)
    return rows


def arm_medians(rows, arms, keys, ratio_keys):
    """Per arm: the median over rounds of each of keys, of each round's
    arm/off ratio of ratio_keys (k + "_r"), and the range of the req/s ratio."""
    med = statistics.median
    out = {}
    for a in arms:
        ratio = [r[a]["rps"] / r["off"]["rps"] for r in rows]
        out[a] = {k: med(r[a][k] for r in rows) for k in keys}
        out[a].update({f"{k}_r": med(r[a][k] / r["off"][k] for r in rows if r["off"][k] > 0)
                       for k in ratio_keys})
        out[a]["rps_lo"], out[a]["rps_hi"] = min(ratio), max(ratio)
    return out


def bpf_table(bpf, n, indent="    "):
    """Prints per_event()'s figures per request (n requests), the costliest
    first; returns the total, in ns per request."""
    say(f"{indent}{'program':<24} {'runs/req':>9} {'ns/run':>8} {'ns/req':>8}")
    for name, (runs, ns) in sorted(bpf.items(), key=lambda x: -x[1][0] * x[1][1]):
        say(f"{indent}{name:<24} {runs / n:9.2f} {ns:8.0f} {runs * ns / n:8.0f}")
    return sum(runs * ns for runs, ns in bpf.values()) / n


def arm_label(arm):
    return {"off": "off", "all": "every probe"}.get(arm, "--probes=" + arm.replace("+", ","))


def odoo_bench():
    """Whole-daemon overhead on an Odoo-shaped server (scripts/odoo_server.py)
    under ODOO_CLIENTS clients (scripts/odoo_load.c): ODOO_ROUNDS rounds of
    every arm, in an order that rotates from round to round, each arm's
    figures the median of its per-round ratios to the round's off run; then
    one every-probe round with kernel.bpf_stats_enabled=1 for the BPF time of
    each program. Returns (arms, per-arm medians, BPF us per request)."""
    if not os.access(os.path.join(PG_BIN, "postgres"), os.X_OK) or not os.access(PY_BIN, os.X_OK):
        say(f"# {PG_BIN}/postgres or {PY_BIN} missing (scripts/deps.sh): no Odoo bench")
        return None
    arms = ODOO_ARMS.split(",")
    if "off" not in arms:
        arms.insert(0, "off")
    odoo_start()
    say("")
    say(f"# Odoo bench: a prefork server (master, {ODOO_ROLES['odoo_http']} WorkerHTTP, "
        f"WorkerCron, gevent; werkzeug, a new psycopg2 connection per request: search, read, "
        f"res_partner prefetch) on PostgreSQL 15, {ODOO_CLIENTS} clients, one request per "
        f"connection, {ODOO_ROUNDS} rounds, each arm twice a round (A B C C B A) for "
        f"{ODOO_SECONDS:g} s after {ODOO_WARM:g} s not counted, arms "
        f"{', '.join(arm_label(a) for a in arms)}; CPU per request: server + PostgreSQL + "
        "daemon, not the client; kernel.bpf_stats_enabled=0")
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=0"], check=True)
    odoo_warmup()
    def show(i, a, r):
        say(f"  round {i + 1:>2} {arm_label(a):<22} {r['rps']:6.1f} req/s  p50 "
            f"{r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms  {r['cpu']:6.0f} us CPU/req (server "
            f"{r['server']:5.0f} + pg {r['pg']:5.0f} + daemon {r['daemon']:5.1f})  "
            f"{r['conn_s']:5.1f} conn/s"
            + (f"  {r['errors']} ERRORS" if r["errors"] else ""))

    rows = mirrored_rounds(arms, ODOO_ROUNDS, odoo_run, combine_runs, show)
    med = statistics.median
    out = arm_medians(rows, arms, ("rps", "p50", "p95", "cpu", "daemon", "conn_s"),
                      ("rps", "p50", "p95", "cpu"))
    say("")
    say(f"  {'arm':<22} {'req/s':>7} {'ratio':>6} {'p50 ms':>7} {'ratio':>6} {'p95 ms':>7} "
        f"{'ratio':>6} {'CPU us/req':>10} {'ratio':>6} {'daemon us/req':>13} {'conn/s':>7}")
    for a in arms:
        o = out[a]
        say(f"  {arm_label(a):<22} {o['rps']:7.1f} {o['rps_r']:6.3f} {o['p50']:7.1f} "
            f"{o['p50_r']:6.3f} {o['p95']:7.1f} {o['p95_r']:6.3f} {o['cpu']:10.0f} "
            f"{o['cpu_r']:6.3f} {o['daemon']:13.1f} {o['conn_s']:7.1f}")
    say(f"  (medians over {ODOO_ROUNDS} rounds; ratios are medians of each round's arm/off; "
        "conn/s: PostgreSQL backends started per second; the daemon's CPU is read in "
        f"{1000 / HZ:.0f} ms ticks, {1e6 / HZ / med(r['off']['n'] for r in rows):.1f} us per "
        "request at off's rate)")
    off = sorted(r["off"]["cpu"] for r in rows)
    say(f"  off CPU/req over the rounds: {off[0]:.0f} to {off[-1]:.0f} us, median {med(off):.0f} "
        f"(spread {(off[-1] - off[0]) / med(off) * 100:.1f}% of the median)")
    errors = sum(r[a]["errors"] for r in rows for a in arms)
    if errors:
        ODOO["log"].seek(0)
        say(f"  {errors} requests failed; the server's log ends with:\n"
            + "".join(ODOO["log"].readlines()[-10:]))
    singles = [a for a in arms if a not in ("off", "all")]
    if singles:
        say("  daemon CPU per request by probe (the single-probe arms; procs is always on): "
            + ", ".join(f"{a.replace('+', ',')} {out[a]['daemon']:.1f} us" for a in singles))
    bpf_us = None
    if "all" in arms:
        rss = [r["all"]["rss"] for r in rows]
        say(f"  daemon VmRSS in the every-probe rounds: at start {med(x for x, _ in rss) / 1024:.1f}"
            f" MiB (median), at end {med(y for _, y in rss) / 1024:.1f} MiB (median; max "
            f"{max(y for _, y in rss) / 1024:.1f})")
        subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
        r = odoo_run("all", want_stats=True)
        n = r["n"]
        say("")
        say(f"  BPF run time, one every-probe round with kernel.bpf_stats_enabled=1 "
            f"({r['rps']:.1f} req/s, {r['cpu']:.0f} us CPU/req):")
        bpf_us = bpf_table(r["bpf"], n) / 1e3
        say(f"    total: {bpf_us:.1f} us of BPF per request (the programs run for every "
            "process on the host: runs per request include whatever else runs here)")
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
    odoo_cleanup()
    pg_cleanup()
    return arms, out, bpf_us


def odoo_summary(res):
    if not res:
        return
    arms, out, bpf_us = res
    for a in arms[1:]:
        o = out[a]
        say(f"  odoo: {arm_label(a)}: req/s on/off {o['rps_r']:.2f} (rounds {o['rps_lo']:.2f}-"
            f"{o['rps_hi']:.2f}), CPU/req on/off {o['cpu_r']:.2f}, p50 {o['p50_r']:.2f}, p95 "
            f"{o['p95_r']:.2f}; daemon {o['daemon']:.0f} us/req"
            + (f"; BPF {bpf_us:.0f} us/req" if a == "all" and bpf_us is not None else ""))


# ---------------------------------------------------------------- requests

REQ_PAIRS = int(os.environ.get("REQ_PAIRS", "10"))        # rounds, each arm twice
REQ_SECONDS = float(os.environ.get("REQ_SECONDS", "3"))   # per variant and run
REQ_WARM = float(os.environ.get("REQ_WARM", "0.5"))
REQ_PROFILE_PAIRS = int(os.environ.get("REQ_PROFILE_PAIRS", "3"))  # (d): off/on pairs
REQ_CLIENTS = int(os.environ.get("REQ_CLIENTS", "6"))
REQ_ARMS = os.environ.get("REQ_ARMS", "off,requests,all")
REQ_DD_PAIRS = int(os.environ.get("REQ_DD_PAIRS", "6"))
REQ_DD_COUNT = int(os.environ.get("REQ_DD_COUNT", str(1 << 20)))
REQ_CALLS = int(os.environ.get("REQ_CALLS", "20000"))
REQ_FANOUT = int(os.environ.get("REQ_FANOUT", "32"))  # (b2): idle workers attached besides
REQ_SLICE = float(os.environ.get("REQ_SLICE", "0.5"))  # (c2): seconds of load a slice
REQ_SLICES = int(os.environ.get("REQ_SLICES", "10"))   # (c2): slices per server and period
REQ_IL_PAIRS = int(os.environ.get("REQ_IL_PAIRS", "3"))  # (c2): off/on periods
REQ_BPF_PAIRS = int(os.environ.get("REQ_BPF_PAIRS", "2"))  # stats runs, each arm
# Probes run with the requests probe, one at a time, in the stats runs.
REQ_COMPANIONS = [c for c in os.environ.get("REQ_COMPANIONS", "sched,pg,python,tcp").split(",")
                  if c]
REQ_PATH = "/web/webclient/version_info"
# The floor (scripts/bpf_floor.bpf.c, built by `make bench`): programs that
# do nothing, attached beside the daemon's on the same tracepoints while the
# stats are on.
BPF_FLOOR = os.environ.get("BPF_FLOOR", "build/bench/bpf_floor")
BPF_FLOOR_OBJ = os.environ.get("BPF_FLOOR_OBJ", "build/bench/bpf_floor.bpf.o")
REQ_WORKERS = 2
# One request per connection (as Odoo's prefork workers serve), and
# keep-alive: a client per worker, each holding its connection (no accept,
# no close: the cheapest request, the probe's worst case).
REQ_VARIANTS = (("close", REQ_CLIENTS, (REQ_PATH,)),
                ("keepalive", REQ_WORKERS, (REQ_PATH, "keepalive")))
# In the BPF run-time pairs only: one request per connection carrying a
# browser's ~900 bytes of headers (odoo_load.c "browser"), what the probe
# copies of a real request, where the tiny request above has none.
REQ_STATS_VARIANTS = REQ_VARIANTS + (("browser", REQ_CLIENTS, (REQ_PATH, "browser")),)

# A python titled as an Odoo HTTP worker (so the requests probe follows it;
# with argument "plain", untitled: a process it does not follow) making
# calls on descriptors the probe does not follow, on command:
#   sr N  N x send(1 byte) + recv on a socketpair
#   oc N  N x open("/dev/null") + close
# and printing the CPU ns (its own, the traps included) per pair of calls.
REQ_FD_LOOP = r"""
import os, socket, sys, time
import setproctitle
if sys.argv[1:] != ["plain"]:
    setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
a, b = socket.socketpair()
print(os.getpid(), flush=True)
for line in sys.stdin:
    cmd, n = line.split()
    n = int(n)
    c0 = time.process_time_ns()
    if cmd == "sr":
        for _ in range(n):
            a.send(b"x")
            b.recv(1)
    else:
        for _ in range(n):
            os.close(os.open("/dev/null", os.O_RDONLY))
    print((time.process_time_ns() - c0) / n, flush=True)
"""


def dd_workload():
    """(syscalls/s, CPU seconds per syscall) of `dd bs=1 count=REQ_DD_COUNT
    if=/dev/zero of=/dev/null` pinned to BENCH_CPU: a read and a write per
    byte, in a process no probe follows; the CPU is dd's own (rusage)."""
    import resource
    r0, w0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    subprocess.run(["taskset", "-c", CPU, "dd", "bs=1", f"count={REQ_DD_COUNT}", "if=/dev/zero",
                    "of=/dev/null", "status=none"], check=True)
    w1, r1 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    n = 2 * REQ_DD_COUNT
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    return n / (w1 - w0), cpu / n


def http_attached(port):
    """erpscope_http_processes_attached at the daemon on port."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    m = re.search(r"^erpscope_http_processes_attached (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def fd_calls():
    """What the requests probe costs calls on descriptors it does not
    follow: REQ_DD_PAIRS alternating off / --probes=requests pairs of
    REQ_CALLS send+recv and open+close in an `odoo: WorkerHTTP`-titled
    python (the tracepoints, a lookup of the connection; no trap on close)
    and send+recv in an untitled one (a process the probe does not follow:
    the tracepoints' lookup of its pid, what every socket call of the host
    pays), both pinned to BENCH_CPU and started before the daemons (found by
    their /proc scan). Returns {kind: (off ns, on ns, median on-off ns)} per
    pair of calls."""
    procs = {}
    for who, argv in (("worker", []), ("plain", ["plain"])):
        q = start(["taskset", "-c", CPU, PY_BIN, "-c", REQ_FD_LOOP] + argv,
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        q.stdout.readline()
        procs[who] = q

    def runner(who):
        def run(cmd):
            q = procs[who]
            q.stdin.write(f"{cmd} {REQ_CALLS}\n")
            q.stdin.flush()
            return float(q.stdout.readline())
        return run

    run = runner("worker")
    kinds = {("worker", "sr"): "send+recv", ("worker", "oc"): "open+close",
             ("plain", "sr"): "send+recv, a process not followed"}
    for who, cmd in kinds:
        runner(who)(cmd)  # warm up
    got = {k: [] for k in kinds}
    say("")
    say(f"(b) calls on descriptors the probe does not follow: an `odoo: WorkerHTTP` python and "
        f"an untitled one (not followed) on CPU {CPU}, {REQ_CALLS} pairs of calls a run, "
        f"{REQ_DD_PAIRS} alternating off / --probes=requests pairs, its CPU (process_time) per "
        "pair")
    for i in range(REQ_DD_PAIRS):
        off = {k: runner(k[0])(k[1]) for k in kinds}
        d, port, _ = arm_daemon("requests")
        attached = http_attached(port)
        on = {k: runner(k[0])(k[1]) for k in kinds}
        stop(d)
        for k in kinds:
            got[k].append((off[k], on[k]))
        say(f"  pair {i + 1:>2}: " + " | ".join(
            f"{kinds[k]} off {off[k]:6.0f} ns on {on[k]:6.0f} ns" for k in kinds)
            + f"  (HTTP processes followed: {attached})")
    med = statistics.median
    res = {kinds[k]: (med(x for x, _ in v), med(y for _, y in v), med(y - x for x, y in v))
           for k, v in got.items()}
    say("  median: " + "; ".join(f"{k} {off:.0f} -> {on:.0f} ns ({d:+.0f} ns per pair of calls)"
                                 for k, (off, on, d) in res.items()))
    res["fanout"] = fan_out(run)
    for q in procs.values():
        stop(q)
    return res


def floor_start():
    """The floor's programs attached (after the daemon's: they run last on
    each hook, on the warmest caches, so what is taken off the probe's runs
    is if anything too little). Returns (proc, {prog id: name}); stop(proc)
    detaches them."""
    f = start([BPF_FLOOR, BPF_FLOOR_OBJ], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
              text=True)
    ids = {}
    for line in f.stdout:
        if line.strip() == "ready":
            return f, ids
        i, name = line.split()
        ids[int(i)] = name
    raise RuntimeError(f"{BPF_FLOOR}: exited before its programs were attached")


def floor_of(name, ev):
    """The floor's ns per run on the hook of the probe's program name
    (es_req_recv, its raw_tp twin es_req_recv_r ...), from per_event()'s ev;
    0 for a hook the floor is not on (a uprobe)."""
    hook = re.sub(r"^es_req_|_r$", "", name)
    return ev.get("floor_" + hook, (0, 0.0))[1]


def net_of_floor(ev, prefix="es_req_"):
    """per_event()'s ev for prefix's programs, each run less the floor's
    ns per run on its hook: name -> (runs, ns above the floor)."""
    return {n: (runs, max(ns - floor_of(n, ev), 0.0)) for n, (runs, ns) in ev.items()
            if n.startswith(prefix)}


def untracked_runs():
    """(b3) With kernel.bpf_stats_enabled=1: BPF ns per run of the
    tracepoint programs for a process the probe does not follow (an
    untitled python's send+recv on a socketpair, REQ_CALLS pairs,
    --probes=requests): what each socket call of every other process on the
    host runs, and what the load generator's own calls add to (c)'s BPF per
    request. Returns ns per run (median of the two programs' own) and the
    same above the floor (a program that does nothing, on the same hooks)."""
    q = start(["taskset", "-c", CPU, PY_BIN, "-c", REQ_FD_LOOP, "plain"],
              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    q.stdout.readline()
    d, _, ids = arm_daemon("requests")
    f, fids = floor_start()
    s0 = stats(ids | set(fids))
    q.stdin.write(f"sr {REQ_CALLS}\n")
    q.stdin.flush()
    q.stdout.readline()
    ev = per_event(s0, stats(ids | set(fids)))
    stop(f)
    stop(d)
    stop(q)
    per = {n: ns for n, (runs, ns) in ev.items() if n in ("es_req_recv", "es_req_send")}
    say("")
    say(f"(b3) BPF per run for a process the probe does not follow ({REQ_CALLS} send+recv, "
        "kernel.bpf_stats_enabled=1, --probes=requests): "
        + ", ".join(f"{n} {ns:.0f} ns (a program that does nothing there: "
                    f"{floor_of(n, ev):.0f})" for n, ns in sorted(per.items()))
        + " (the stats' own clock reads included)")
    net = [max(ns - floor_of(n, ev), 0.0) for n, ns in per.items()]
    return (statistics.median(per.values()) if per else 0.0,
            statistics.median(net) if net else 0.0)


# An idle process the requests probe attaches to (role odoo_http by its title).
REQ_IDLE_WORKER = r"""
import os, time
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
time.sleep(3600)
"""


def uprobe_links(pid):
    """The uprobe_multi links process pid holds."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                n += "link_type:\tuprobe_multi" in f.read()
        except OSError:
            pass
    return n


def fan_out(run):
    """(b2) A trap runs the handler of every process attached at that
    function (one uprobe consumer per process's link; each but the trapping
    process's returns at once): the worker's open+close (close was the
    probe's trapped call; now none, so this should read 0) with REQ_FANOUT idle `odoo: WorkerHTTP` processes
    attached besides, against none, 2 alternating pairs, one daemon. Returns
    ns per pair of calls per extra process attached."""
    say("")
    say(f"(b2) the same worker's open+close with {REQ_FANOUT} more idle `odoo: WorkerHTTP` "
        "processes attached (close has no uprobe: should read 0), "
        "--probes=requests, 2 alternating pairs")
    d, port, _ = arm_daemon("requests")
    deltas = []
    base = uprobe_links(d.pid)
    for i in range(2):
        # The last pair's idle processes detached, their links closed (by a helper thread).
        deadline = time.monotonic() + 30
        while uprobe_links(d.pid) > base and time.monotonic() < deadline:
            time.sleep(0.2)
        alone = run("oc")
        idle = [start([PY_BIN, "-c", REQ_IDLE_WORKER]) for _ in range(REQ_FANOUT)]
        deadline = time.monotonic() + 20
        while http_attached(port) < REQ_FANOUT + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        attached = http_attached(port)
        crowded = run("oc")
        for q in idle:
            stop(q)
        deltas.append((crowded - alone) / max(attached - 1, 1))
        say(f"  pair {i + 1}: open+close {alone:6.0f} ns alone, {crowded:6.0f} ns with "
            f"{attached - 1} other processes attached: {deltas[-1]:+.1f} ns per pair of calls "
            "per process")
    stop(d)
    per = statistics.median(deltas)
    say(f"  median: {per:+.1f} ns per pair of calls per attached process: "
        f"{per * REQ_FANOUT:+.0f} ns per pair with {REQ_FANOUT} workers")
    return per


def requests_run(arm, want_stats=False, only=None):
    """Both REQ_VARIANTS (REQ_STATS_VARIANTS with want_stats; only: those
    named) with arm's daemon (none for "off"), each REQ_SECONDS
    after REQ_WARM s not counted; CPU per request: the server's cgroup and
    the daemon's, not the client's. With want_stats, each variant's BPF run
    time, and "counted": the requests erpscope counted on the route against
    those the client got answered (warm-ups included)."""
    d = ids = f = None
    if arm != "off":
        d, port, ids = arm_daemon(arm, ODOO["dcgroup"])
    if d and want_stats:
        f, fids = floor_start()
        ids = ids | set(fids)
    cgroups = {"server": ODOO["cgroup"], "daemon": ODOO["dcgroup"]}
    res, answered = {}, 0
    for v, clients, extra in (REQ_STATS_VARIANTS if want_stats else REQ_VARIANTS):
        if only and v not in only:
            continue
        if REQ_WARM > 0:
            answered += odoo_load(REQ_WARM, clients, extra)["requests"]
        res[v] = measured(lambda: odoo_load(REQ_SECONDS, clients, extra), cgroups, None,
                          ids if want_stats else None)
        answered += res[v]["n"]
    if d and want_stats:
        time.sleep(0.5)  # the daemon drains its ring every 100 ms
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                      timeout=10).read().decode()
        res["counted"] = (sum(float(x) for x in re.findall(
            r'^erpscope_http_request_duration_seconds_count\{[^}]*route="' + REQ_PATH
            + r'"[^}]*\} (\S+)', text, re.M)), answered)
    if f:
        stop(f)
    if d:
        stop(d)
    return res


def twin_start():
    """(c2)'s twin: scripts/odoo_server.py --reference (workers the probe
    does not follow), as the real server is run, in a cgroup of its own
    (removed by odoo_cleanup()). Returns (proc, port, cgroup)."""
    cg = ODOO["twin_cgroup"] = cgroup_new("twin")
    p = start([PY_BIN, "scripts/odoo_server.py", "--port", "0", "--http11", "--workers",
               str(REQ_WORKERS), "--reference"], stdout=subprocess.PIPE,
              stderr=subprocess.DEVNULL, text=True, preexec_fn=lambda: cgroup_join(cg))
    port = int(p.stdout.readline())
    time.sleep(1.0)  # the children fork and retitle
    return p, port, cg


def interleaved(servers, clients, extra):
    """REQ_SLICES slices of load on each of servers ({name: (port,
    cgroup)}), in turn, the order swapped each time. Returns {name: (server
    CPU us, requests, the daemon's CPU us during its slices)}."""
    tot = {s: [0, 0, 0] for s in servers}
    names = list(servers)
    for s in names:
        odoo_load(0.3, clients, extra, port=servers[s][0])  # warm up
    for i in range(REQ_SLICES):
        for s in (names if i % 2 == 0 else names[::-1]):
            port, cg = servers[s]
            u0, d0 = cgroup_usec(cg), cgroup_usec(ODOO["dcgroup"])
            n = odoo_load(REQ_SLICE, clients, extra, port=port)["requests"]
            tot[s][0] += cgroup_usec(cg) - u0
            tot[s][1] += n
            tot[s][2] += cgroup_usec(ODOO["dcgroup"]) - d0
    return tot


def requests_interleaved(twin):
    """(c2): CPU per request of the real server over its twin's, daemon
    off then --probes=requests, REQ_IL_PAIRS times; the daemon's CPU during
    the real server's slices less that during the twin's goes to the real
    server's requests. Returns {variant: (median on/off, off ratios, on
    ratios)}."""
    if REQ_IL_PAIRS < 1:
        return {}
    servers = {"real": (ODOO["port"], ODOO["cgroup"]), "twin": (twin[1], twin[2])}
    say("")
    say(f"(c2) interleaved: the server above and its twin (odoo_server.py --reference: the same "
        f"code, workers titled as cron workers, which the probe does not follow), loaded in turn "
        f"for {REQ_SLICE:g} s slices, {REQ_SLICES} each, the order swapped every slice; daemon off, "
        f"then --probes=requests, {REQ_IL_PAIRS} pairs; CPU per request real/twin (the daemon's "
        "CPU in the real server's slices less the twin's counted with the real one)")
    got = {v: {"off": [], "on": []} for v, _, _ in REQ_VARIANTS}
    for i in range(REQ_IL_PAIRS):
        for arm in ("off", "on"):
            d = arm_daemon("requests", ODOO["dcgroup"])[0] if arm == "on" else None
            for v, clients, extra in REQ_VARIANTS:
                t = interleaved(servers, clients, extra)
                real = (t["real"][0] + t["real"][2] - t["twin"][2]) / max(t["real"][1], 1)
                twin_cpu = t["twin"][0] / max(t["twin"][1], 1)
                got[v][arm].append(real / twin_cpu)
                say(f"  pair {i + 1} {arm:<3} {v:<10} real {real:6.1f} us/req ({t['real'][1]} req), "
                    f"twin {twin_cpu:6.1f} us/req ({t['twin'][1]} req): {real / twin_cpu:.3f}")
            if d:
                stop(d)
    out = {}
    for v, _, _ in REQ_VARIANTS:
        off, on = got[v]["off"], got[v]["on"]
        ratio = statistics.median(b / a for a, b in zip(off, on))
        out[v] = (ratio, off, on)
        say(f"  {v}: CPU per request with the probe, over without: {ratio:.3f} (median of the "
            f"pairs; real/twin off {', '.join(f'{x:.3f}' for x in off)}, on "
            f"{', '.join(f'{x:.3f}' for x in on)}; target <= 1.03)")
    return out


# Symbols of the probe's own work in a worker: the uprobe traps (int3 entry,
# the handlers, the return trampoline and exit to user mode) and the BPF
# programs and helpers they run.
PROBE_SYMS = re.compile(r"uprobe|uretprobe|swbp|bpf_|htab_|ringbuf|task_storage|irqentry_|"
                        r"exc_int3|lru")


def http_workers():
    """The bench server's `odoo: WorkerHTTP` pids."""
    out = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"odoo: WorkerHTTP"):
                    out.append(int(pid))
        except (OSError, ValueError):
            pass
    return out


def probe_share(clients, extra):
    """Share (%) of the HTTP workers' CPU samples (perf record -e cpu-clock,
    4999 Hz, REQ_SECONDS of load) in PROBE_SYMS, and the samples counted."""
    data = os.path.join(ODOO["dir"], "perf.data")
    pids = ",".join(str(p) for p in http_workers())
    rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999", "-p", pids,
                            "-o", data, "--", "sleep", str(REQ_SECONDS + 0.5)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.2)
    odoo_load(REQ_SECONDS, clients, extra)
    rec.wait()
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "sym", "-q",
                          "--stdio", "-F", "sample,sym"], capture_output=True, text=True).stdout
    total = probe = 0
    for line in rep.splitlines():
        m = re.match(r"\s*(\d+)\s+\[[.k]\]\s+(\S+)", line)
        if m:
            total += int(m.group(1))
            if PROBE_SYMS.search(m.group(2)):
                probe += int(m.group(1))
    return 100.0 * probe / max(total, 1), total


def requests_profile():
    """(d) what the probe's own code takes of a worker's CPU, from samples of
    the workers alone: a share within one run, so the VM's drift between runs
    (10-20% here) does not enter it. A lower bound of the cost: caches and
    TLBs the traps disturb are not in it. Off first (what those symbols take
    anyway: syscalls' exit path), then --probes=requests, REQ_PROFILE_PAIRS
    alternating pairs. Returns {variant: (off %, on %)} (medians)."""
    if not shutil.which("perf"):
        say("  (d) perf missing (linux-perf, scripts/deps.sh): no profile")
        return {}
    if REQ_PROFILE_PAIRS < 1:
        return {}
    say("")
    say(f"(d) the probe's own code in the workers' CPU: perf record -e cpu-clock at 4999 Hz of "
        f"the {REQ_WORKERS} workers over {REQ_SECONDS:g} s of load, share of samples in uprobe "
        "traps, BPF programs and helpers; off vs --probes=requests, "
        f"{REQ_PROFILE_PAIRS} alternating pairs")
    got = {v: {"off": [], "on": []} for v, _, _ in REQ_VARIANTS}
    for i in range(REQ_PROFILE_PAIRS):
        for arm in (("off", "on") if i % 2 == 0 else ("on", "off")):
            d = arm_daemon("requests", ODOO["dcgroup"])[0] if arm == "on" else None
            for v, clients, extra in REQ_VARIANTS:
                odoo_load(REQ_WARM or 0.5, clients, extra)
                pct, n = probe_share(clients, extra)
                got[v][arm].append(pct)
                say(f"  pair {i + 1} {arm:<3} {v:<10} {pct:5.2f}% of {n} samples")
            if d:
                stop(d)
    out = {}
    for v, _, _ in REQ_VARIANTS:
        off, on = statistics.median(got[v]["off"]), statistics.median(got[v]["on"])
        out[v] = (off, on)
        say(f"  {v}: {on:.2f}% on, {off:.2f}% off: the probe's code takes {on - off:.2f}% of the "
            "workers' CPU (target: CPU per request <= 1.03x, i.e. <= 3%)")
    return out


def requests_bench():
    """The requests probe on the cheapest request: (a) host-wide syscall cost
    (dd bs=1, every probe on vs off), (b) a worker's calls on descriptors it
    does not follow, (c) a prefork werkzeug server (scripts/odoo_server.py
    without PostgreSQL, 2 `odoo: WorkerHTTP` workers) answering
    /web/webclient/version_info: REQ_PAIRS mirrored rounds of REQ_ARMS,
    one request per connection and keep-alive, medians of the per-round
    ratios to off, and one every-probe run with kernel.bpf_stats_enabled=1:
    BPF ns per request. Returns the figures for requests_summary()."""
    if not os.access(PY_BIN, os.X_OK):
        say(f"# {PY_BIN} missing (scripts/deps.sh): no requests bench")
        return None
    arms = REQ_ARMS.split(",")
    if "off" not in arms:
        arms.insert(0, "off")
    others = subprocess.run(["pgrep", "-x", "erpscope"], capture_output=True,
                            text=True).stdout.split()
    say("")
    say(f"# requests bench: the requests probe (the sock_recv_length and sock_send_length "
        f"tracepoints for every process; an entry uprobe on libc's listen in HTTP workers "
        f"only) on the cheapest request, {REQ_PATH}")
    if others:
        say(f"  note: {len(others)} other erpscope daemon(s) run on this host (pids "
            f"{', '.join(others)}): their probes attach to this section's workers in every arm")
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=0"], check=True)
    dd_workload()  # warm up
    dtr, dcr = ab(dd_workload, "syscalls/s",
                  f"(a) host-wide syscall cost: dd bs=1 count={REQ_DD_COUNT} if=/dev/zero "
                  f"of=/dev/null on CPU {CPU} ({2 * REQ_DD_COUNT} syscalls), every probe on vs off, "
                  "dd's own CPU", REQ_DD_PAIRS)
    dd = (dtr, dcr, ab.delta_ns)
    say(f"  median on-off CPU per syscall: {ab.delta_ns:+.1f} ns")
    fds = fd_calls()

    ODOO["dcgroup"] = cgroup_new("daemon")
    odoo_server_start(["--http11", "--workers", str(REQ_WORKERS)])
    for v, clients, extra in REQ_VARIANTS:
        odoo_load(1, clients, extra)  # warm up
    say("")
    say(f"(c) a prefork werkzeug server ({REQ_WORKERS} `odoo: WorkerHTTP` workers, a master "
        f"titled odoo-bin, a gevent process; no PostgreSQL) answering POST {REQ_PATH} (a tiny "
        f"JSON): one request per connection ({REQ_CLIENTS} clients) and keep-alive "
        f"({REQ_WORKERS} clients, one connection each), {REQ_SECONDS:g} s each after "
        f"{REQ_WARM:g} s not counted; {REQ_PAIRS} rounds, each arm twice (A B C C B A), arms "
        f"{', '.join(arm_label(a) for a in arms)}; CPU per request: the server's cgroup + the "
        "daemon's, not the client's; kernel.bpf_stats_enabled=0")

    def show(i, a, r):
        say(f"  round {i + 1:>2} {arm_label(a):<18} " + " | ".join(
            f"{v} {x['rps']:6.0f} req/s {x['cpu']:6.1f} us CPU/req (daemon {x['daemon']:4.1f}) "
            f"p50 {x['p50']:5.2f} ms" + (f" {x['errors']} ERRORS" if x["errors"] else "")
            for v, x in r.items()))

    def combine(x, y):
        return {v: combine_runs(x[v], y[v], ("server", "daemon", "cpu")) for v in x}

    rows = mirrored_rounds(arms, REQ_PAIRS, requests_run, combine, show)
    out = {v: arm_medians([{a: r[a][v] for a in arms} for r in rows], arms,
                          ("rps", "p50", "p95", "cpu", "daemon"), ("rps", "p50", "p95", "cpu"))
           for v, _, _ in REQ_VARIANTS}
    say("")
    say(f"  {'variant':<10} {'arm':<18} {'req/s':>7} {'ratio':>6} {'p50 ms':>7} {'ratio':>6} "
        f"{'p95 ms':>7} {'ratio':>6} {'CPU us/req':>10} {'ratio':>6} {'daemon us/req':>13}")
    for v, _, _ in REQ_VARIANTS:
        for a in arms:
            o = out[v][a]
            say(f"  {v:<10} {arm_label(a):<18} {o['rps']:7.0f} {o['rps_r']:6.3f} {o['p50']:7.2f} "
                f"{o['p50_r']:6.3f} {o['p95']:7.2f} {o['p95_r']:6.3f} {o['cpu']:10.1f} "
                f"{o['cpu_r']:6.3f} {o['daemon']:13.2f}")
    say(f"  (medians over {REQ_PAIRS} rounds; ratios are medians of each round's arm/off; "
        "target: CPU per request <= 1.03x off)")

    twin = twin_start()
    try:
        inter = requests_interleaved(twin)
    finally:
        stop(twin[0])

    prof = requests_profile()

    # The probe alone, and with every probe (its parts' totals: the sched and
    # pg probes' maps, the Python probe's request tags), in turn.
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
    plain_ns, plain_net = untracked_runs()
    runs = {"requests": [], "all": []}
    duo = {c: [] for c in REQ_COMPANIONS}
    for i in range(REQ_BPF_PAIRS):
        order = ["requests", "all"] + ["requests+" + c for c in REQ_COMPANIONS]
        for arm in (order if i % 2 == 0 else order[::-1]):
            if arm in runs:
                runs[arm].append(requests_run(arm, want_stats=True))
            else:
                duo[arm.split("+", 1)[1]].append(requests_run(arm, want_stats=True,
                                                              only=("close",)))
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=0"], check=True)
    r = runs["all"][-1]
    bpf = {}
    say("")
    say(f"  BPF run time, kernel.bpf_stats_enabled=1, {REQ_BPF_PAIRS} alternating pairs of "
        "runs --probes=requests / every probe; the last every-probe run:")
    for v, _, _ in REQ_STATS_VARIANTS:
        x = r[v]
        say(f"   {v} ({x['rps']:.0f} req/s, {x['cpu']:.1f} us CPU/req):")
        bpf_table({k: e for k, e in x["bpf"].items() if not k.startswith("floor_")}, x["n"])
        say("    the floor, programs that do nothing on the same hooks: " + ", ".join(
            f"{k} {e[0] / x['n']:.2f} runs/req x {e[1]:.0f} ns" for k, e in
            sorted(x["bpf"].items()) if k.startswith("floor_")))
        bpf[v] = {}
        for arm, rs in runs.items():
            def per_req(ev, y):
                return sum(runs_ * ns for runs_, ns in ev.values()) / y[v]["n"]
            req = [per_req({k: e for k, e in y[v]["bpf"].items() if k.startswith("es_req_")},
                           y) for y in rs]
            net = [per_req(net_of_floor(y[v]["bpf"]), y) for y in rs]
            total = [per_req({k: e for k, e in y[v]["bpf"].items()
                              if not k.startswith("floor_")}, y) for y in rs]
            # The load generator runs here too: its own socket calls run the
            # tracepoints as any process's do (one lookup each).
            calls = statistics.median(y[v]["client_calls"] for y in rs)
            client, client_net = calls * plain_ns, calls * plain_net
            m_req, m_net = statistics.median(req), statistics.median(net)
            bpf[v][arm] = (m_req, statistics.median(total), m_req - client, m_net - client_net)
            say(f"    the requests probe (es_req_*), {arm_label(arm)}: "
                f"{m_req:.0f} ns per request (runs: "
                + ", ".join(f"{x:.0f}" for x in req) + "; target <= 2000), of which the "
                f"client's own socket calls {client:.0f} "
                f"({calls:.2f} a request x {plain_ns:.0f} ns, (b3)): the workers' "
                f"{m_req - client:.0f} ns; above the floor (each run less a program that does "
                f"nothing on its hook): {m_net:.0f} ns (runs: "
                + ", ".join(f"{x:.0f}" for x in net) + f"), the workers' {m_net - client_net:.0f}"
                f"; every program: {statistics.median(total):.0f} ns (most run for every "
                "process on the host: whatever else runs here counts in them)")
    if duo:
        alone = bpf["close"]["requests"][0]
        bpf["companions"] = {}
        for c, rs in duo.items():
            req = [sum(n * ns for k, (n, ns) in y["close"]["bpf"].items() if k.startswith("es_req_"))
                   / y["close"]["n"] for y in rs]
            bpf["companions"][c] = statistics.median(req)
            say(f"    the requests probe (es_req_*), close, --probes=requests,{c}: "
                f"{statistics.median(req):.0f} ns per request (runs: "
                + ", ".join(f"{x:.0f}" for x in req) + f"), {statistics.median(req) - alone:+.0f} "
                "over the probe alone")
    if "counted" in r:
        counted, answered = r["counted"]
        say(f"  erpscope counted {counted:.0f} requests on {REQ_PATH}; the client got {answered} "
            "answers (warm-ups included)")
    odoo_cleanup()
    return arms, out, bpf, dd, fds, prof, inter


def requests_summary(res):
    if not res:
        return
    arms, out, bpf, dd, fds, prof, inter = res
    for v, _, _ in REQ_VARIANTS:
        say(f"  requests ({v}, {REQ_PATH}): " + "; ".join(
            f"{arm_label(a)} req/s on/off {out[v][a]['rps_r']:.3f}, CPU/req "
            f"{out[v][a]['cpu_r']:.3f}" for a in arms[1:])
            + f" (target CPU/req <= 1.03); BPF es_req_* {bpf[v]['requests'][0]:.0f} ns/req "
            f"alone, {bpf[v]['all'][0]:.0f} with every probe (target <= 2000; the workers' "
            f"own {bpf[v]['requests'][2]:.0f} and {bpf[v]['all'][2]:.0f}, the rest the local "
            f"client's socket calls; above the floor of a program that does nothing, the "
            f"workers' {bpf[v]['requests'][3]:.0f} and {bpf[v]['all'][3]:.0f}), all programs "
            f"{bpf[v]['all'][1]:.0f} ns/req"
            + (f"; the probe's code in the workers' CPU samples {prof[v][1] - prof[v][0]:.2f}%"
               if v in prof else "")
            + (f"; interleaved with a twin, --probes=requests CPU/req {inter[v][0]:.3f}"
               if v in inter else ""))
    co = bpf.get("companions")
    if co:
        alone = bpf["close"]["requests"][0]
        say("  requests (close): BPF es_req_* with one other probe, over the probe alone "
            f"({alone:.0f} ns/req; every probe {bpf['close']['all'][0] - alone:+.0f}): "
            + ", ".join(f"{c} {ns - alone:+.0f}" for c, ns in co.items()))
    b = bpf.get("browser")
    if b:
        say(f"  requests (browser: one request per connection with a browser's headers): BPF "
            f"es_req_* {b['requests'][0]:.0f} ns/req alone, {b['all'][0]:.0f} with every probe "
            f"(the workers' own {b['requests'][2]:.0f} and {b['all'][2]:.0f})")
    dtr, dcr, dns = dd
    say(f"  requests: dd bs=1 (a process no probe follows), every probe on/off: syscalls/s "
        f"{dtr:.3f}, CPU/syscall {dcr:.3f} ({dns:+.1f} ns); a worker's unfollowed calls, "
        "--probes=requests: " + ", ".join(f"{k} {v[2]:+.0f} ns" for k, v in fds.items()
                                          if k != "fanout")
        + f"; each other attached process adds {fds['fanout']:+.1f} ns to an open+close pair")


GPU_POLLS = int(os.environ.get("GPU_POLLS", "200"))
GPU_INTERVAL_MS = int(os.environ.get("GPU_INTERVAL_MS", "100"))


# ---------------------------------------------------------------- flight recorder

FLIGHT_ROUNDS = int(os.environ.get("FLIGHT_ROUNDS", str(ROUNDS)))
FLIGHT_BUFFER = os.environ.get("FLIGHT_BUFFER", "32MiB")
FLIGHT_PG_TX = int(os.environ.get("FLIGHT_PG_TX", "10000"))  # pgbench -S transactions per client
FLIGHT_SLEEPER = r"""
import os, time
import setproctitle
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
while True:
    time.sleep(0.0002)
"""


def size_bytes(s):
    m = re.fullmatch(r"(\d+)(KiB|MiB|GiB)?", s)
    if not m:
        raise SystemExit(f"bench: FLIGHT_BUFFER={s!r}: a number of bytes, KiB, MiB or GiB")
    return int(m.group(1)) << {None: 0, "KiB": 10, "MiB": 20, "GiB": 30}[m.group(2)]


def flight_run(on):
    """One daemon (every probe; the flight recorder when on): BPF ns per event of
    the sched programs over the pipe workload (a titled worker sleeping 0.2 ms
    in a loop beside it, so tracked threads switch), BPF ns per statement of the
    pg programs over pgbench -S, the daemon's VmRSS and VmHWM at the end."""
    extra = [f"--trace.buffer-size={FLIGHT_BUFFER}"]
    if on:
        extra.append("--trace.flight-recorder=30s")
    d, port, ids = start_erpscope(extra=extra)
    time.sleep(0.5)
    s0 = stats(ids)
    workload()
    s1 = stats(ids)
    n0 = pg_work(True, FLIGHT_PG_TX)
    s2 = stats(ids)
    sched = {n: ns for n, (_, ns) in per_event(s0, s1).items()
             if n.startswith(("es_switch", "es_wakeup"))}
    pg = sum(runs * ns for n, (runs, ns) in per_event(s1, s2).items() if n.startswith("es_pg_"))
    # pgbench -S: one SELECT per transaction, 2 clients
    per_stmt = pg / (2 * FLIGHT_PG_TX)
    rss, hwm = vmrss(d.pid), vmhwm(d.pid)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    m = re.search(r"^erpscope_trace_buffer_bytes (\S+)$", text, re.M)
    stop(d)
    return dict(sched=sched, pg=per_stmt, rss=rss, hwm=hwm, tps=n0[0],
                buf=float(m.group(1)) if m else 0.0)


def flight_bench():
    """The flight recorder's cost: FLIGHT_ROUNDS rounds of off / on (the
    order alternating), kernel.bpf_stats_enabled=1: added ns per sched event
    and per statement, and the daemon's memory against its bound."""
    limit = size_bytes(FLIGHT_BUFFER) + (10 << 20)
    sleeper = start(["/usr/bin/python3.11", "-c", FLIGHT_SLEEPER],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pg_start()
    pg_work(True, 1000)  # warm up
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
    say("")
    say(f"flight recorder: {FLIGHT_ROUNDS} rounds of every probe without / with "
        f"--trace.flight-recorder=30s (--trace.buffer-size={FLIGHT_BUFFER}), the order "
        f"alternating; sched: perf bench sched pipe -l {LOOPS} beside a titled worker "
        f"sleeping 0.2 ms in a loop; pg: pgbench -S, 2 x {FLIGHT_PG_TX} transactions; "
        "kernel.bpf_stats_enabled=1")
    runs = {False: [], True: []}
    for rnd in range(FLIGHT_ROUNDS):
        for on in ((False, True) if rnd % 2 == 0 else (True, False)):
            r = flight_run(on)
            runs[on].append(r)
            say(f"  round {rnd + 1} {'on ' if on else 'off'}: "
                + " ".join(f"{n} {ns:.1f}" for n, ns in sorted(r["sched"].items()))
                + f" ns/event; pg {r['pg']:.0f} ns/statement ({r['tps']:.0f} tx/s); "
                f"VmRSS {r['rss'] / 1024:.1f} MiB (peak {r['hwm'] / 1024:.1f}), trace buffers "
                f"{r['buf'] / 2**20:.1f} MiB")
    stop(sleeper, signal.SIGKILL, 5)
    med = statistics.median
    names = sorted({n for r in runs[False] + runs[True] for n in r["sched"]})
    sched = {n: (med(r["sched"].get(n, 0.0) for r in runs[False]),
                 med(r["sched"].get(n, 0.0) for r in runs[True])) for n in names}
    pg = (med(r["pg"] for r in runs[False]), med(r["pg"] for r in runs[True]))
    hwm = max(r["hwm"] for r in runs[True]) * 1024
    hwm_off = max(r["hwm"] for r in runs[False]) * 1024
    say(f"  medians of {FLIGHT_ROUNDS} rounds, off -> on (added):")
    for n, (a, b) in sched.items():
        say(f"    {n:<16} {a:7.1f} -> {b:7.1f} ns/event ({b - a:+.1f})")
    say(f"    pg programs      {pg[0]:7.0f} -> {pg[1]:7.0f} ns/statement ({pg[1] - pg[0]:+.0f})")
    # What the recorder adds to the daemon is bounded, not the daemon's own RSS.
    say(f"    daemon peak RSS with the flight recorder {hwm / 2**20:.1f} MiB (without "
        f"{hwm_off / 2**20:.1f}: {(hwm - hwm_off) / 2**20:+.1f} MiB); bound on what it adds, "
        f"--trace.buffer-size + 10 MiB = {limit / 2**20:.1f} MiB: "
        + ("within" if hwm - hwm_off <= limit else "OVER")
        + "; the buffer fills only after a window of events: see trace buffers above")
    return dict(sched=sched, pg=pg, hwm=hwm, hwm_off=hwm_off, limit=limit)


def flight_summary(res):
    if not res:
        return
    added = ", ".join(f"{n} {b - a:+.1f}" for n, (a, b) in res["sched"].items())
    say(f"  flight recorder: added ns per sched event {added}; per statement "
        f"{res['pg'][1] - res['pg'][0]:+.0f} ns; peak RSS {res['hwm'] / 2**20:.1f} MiB, "
        f"{(res['hwm'] - res['hwm_off']) / 2**20:+.1f} MiB with it (bound on that "
        f"{res['limit'] / 2**20:.1f} MiB)")


def gpu_bench():
    """One gpu poll against the fake NVML: CPU per poll per GPU (the poller's
    tick alone, scripts/gpu_poll_bench.c), and the daemon's VmRSS with the
    library loaded beside NVML off."""
    say("")
    say(f"gpu: {GPU_POLLS} polls, {GPU_INTERVAL_MS} ms apart, against the fake "
        "libnvidia-ml.so.1 (tests/fake/fake_nvml.c: 2 GPUs, 2 processes)")
    subprocess.run(["make", "-s", "build/liberpscope.a", "build/tests/libnvidia-ml.so.1"],
                   check=True)
    fake = os.path.abspath("build/tests/libnvidia-ml.so.1")
    tmp = tempfile.mkdtemp(prefix="erpscope-gpu-bench-")
    exe = os.path.join(tmp, "gpu_poll_bench")
    libs = subprocess.run(["pkg-config", "--libs", "libbpf", "libelf", "zlib", "libmicrohttpd"],
                          capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["cc", "-O2", "-g", "-std=gnu11", "-D_GNU_SOURCE", "-iquote", "user",
                    "-Ibuild", "-o", exe, "scripts/gpu_poll_bench.c", "build/liberpscope.a"]
                   + libs, check=True)
    env = dict(os.environ, FAKE_NVML_PID=str(os.getpid()))
    r = json.loads(subprocess.run([exe, fake, str(GPU_POLLS), str(GPU_INTERVAL_MS)], env=env,
                                  capture_output=True, text=True, check=True).stdout)
    os.unlink(exe)
    os.rmdir(tmp)
    say(f"  CPU per poll {r['cpu_us_per_poll']:.1f} us ({r['gpus']} GPUs: "
        f"{r['cpu_us_per_poll_per_gpu']:.1f} us per GPU, target < 200; slowest poll "
        f"{r['cpu_us_max']:.1f} us); RSS {r['rss_kib_before']} KiB before the library, "
        f"{r['rss_kib_loaded']} KiB with it")
    rss = {}
    for arm, lib in (("NVML off", ""), ("fake loaded", fake)):
        d, _, _ = start_erpscope("procs", extra=[f"--gpu.nvml-library={lib}",
                                                 "--gpu.poll-interval=1s"])
        time.sleep(2.0)
        rss[arm] = vmrss(d.pid)
        stop(d)
    say("  daemon VmRSS (--probes=procs): " +
        ", ".join(f"{k} {v / 1024:.1f} MiB" for k, v in rss.items()))
    return r, rss


def gpu_summary(res):
    r, rss = res
    say(f"  gpu: one poll {r['cpu_us_per_poll_per_gpu']:.1f} us CPU per GPU against the fake "
        f"NVML (target < 200); daemon VmRSS NVML off {rss['NVML off'] / 1024:.1f} MiB, "
        f"fake loaded {rss['fake loaded'] / 1024:.1f} MiB")


def main():
    global old_stats
    if not os.access(ERPSCOPE, os.X_OK):
        raise SystemExit(f"bench: {ERPSCOPE} not built (make all)")
    old_stats = subprocess.run(["sysctl", "-n", "kernel.bpf_stats_enabled"], capture_output=True,
                               text=True, check=True).stdout.strip()
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
    say(f"# erpscope bench: kernel {os.uname().release}, {os.cpu_count()} CPUs; "
        f"sched workload: perf bench sched pipe -l {LOOPS} pinned to CPU {CPU}; "
        f"block workload: {DIO_OPS} x 4 KiB O_DIRECT reads (dd) of a {DIO_MB} MiB file on /var/tmp")
    if os.environ.get("BENCH_ONLY") == "pg":
        res = pg_bench()
        say("")
        pg_summary(res)
        return
    if os.environ.get("BENCH_ONLY") == "pgscan":
        pg_start()
        pg_seqscan()
        return
    if os.environ.get("BENCH_ONLY") == "python":
        res = python_bench()
        say("")
        python_summary(res)
        return
    if os.environ.get("BENCH_ONLY") == "odoo":
        res = odoo_bench()
        say("")
        odoo_summary(res)
        return
    if os.environ.get("BENCH_ONLY") == "requests":
        res = requests_bench()
        say("")
        requests_summary(res)
        return
    if os.environ.get("BENCH_ONLY") == "gpu":
        res = gpu_bench()
        say("")
        gpu_summary(res)
        return
    if os.environ.get("BENCH_ONLY") == "flight":
        res = flight_bench()
        say("")
        flight_summary(res)
        return
    if os.environ.get("BENCH_ONLY") == "tcp":
        tcp_ratio, ttr, tcr = tcp_bench()
        say("")
        say(f"  tcp: BPF cost per connection vs tcplife: "
            + (f"{tcp_ratio:.2f}x" if tcp_ratio else "n/a")
            + f"; throughput on/off {ttr:.3f}, CPU/op on/off {tcr:.3f}")
        return
    workload()  # warm up
    dio_workload()

    # (i) per-event cost vs the nearest libbpf-tools peers, stats sysctl on
    sched_ratio = per_event_vs_peer([RUNQLAT, "3600", "1"], signal.SIGINT,
                                    ("es_switch", "es_wakeup"), workload,
                                    LOOPS, ("wakeup_new", "wakeup", "switch", "exec", "fork",
                                            "exit", "rq_insert", "rq_issue", "rq_complete"),
                                    "(i) sched: BPF ns per event vs runqlat")
    blk_ratio = per_event_vs_peer([BIOLATENCY, "-Q", "3600", "1"], signal.SIGINT,
                                  ("es_rq_", "es_io_"), dio_workload, DIO_OPS,
                                  ("io_start", "rq_insert", "rq_issue", "rq_requeue",
                                   "rq_complete", "block_rq_insert", "block_rq_issue",
                                   "block_rq_complete"),
                                  "(i) block: BPF ns per event vs biolatency -Q")

    only_sched = os.environ.get("BENCH_ONLY") == "sched"
    if not only_sched:
        tcp_ratio, ttr, tcr = tcp_bench()
        pg_res = pg_bench()
        py_res = python_bench()

    # (ii) A/B throughput: off, on, off, on ... The sysctl goes back first:
    # erpscope runs without run-time stats by default (--bpf.stats), so "on"
    # is what production pays, and "off" must not pay for them either.
    subprocess.run(["sysctl", "-q", "-w", f"kernel.bpf_stats_enabled={old_stats}"], check=True)
    tr, cr = ab(workload, "ops/s", "(ii) sched pipe throughput")
    dtr, dcr = ab(dio_workload, "IO/s", "(ii) direct-I/O throughput")

    # (iii) RSS with WORKERS tracked workers
    say("")
    say(f"(iii) daemon memory with {WORKERS} tracked odoo_http workers")
    d, port, _ = start_erpscope()
    time.sleep(1.0)
    rss0 = vmrss(d.pid)
    sleepers = []
    for i in range(WORKERS):
        sleepers.append(start(["/bin/bash", "-c", 'exec -a "odoo: WorkerHTTP $$ " '
                               '/usr/bin/python3.11 -c "import time; time.sleep(600)"'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    pids = {str(p.pid) for p in sleepers}
    tracked = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
        tracked = 0
        for line in text.splitlines():
            if line.startswith("erpscope_worker_info{") and 'role="odoo_http"' in line:
                m = re.search(r'[{,]pid="(\d+)"', line)
                if m and m.group(1) in pids:
                    tracked += 1
        if tracked >= WORKERS:
            break
        time.sleep(0.5)
    time.sleep(1.0)
    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()
    rss1, hwm = vmrss(d.pid), vmhwm(d.pid)
    say(f"  tracked {tracked}/{WORKERS}; VmRSS idle {rss0 / 1024:.1f} MiB, with workers "
        f"{rss1 / 1024:.1f} MiB (peak {hwm / 1024:.1f} MiB); target < 20 MiB")
    stop(d)
    for p in sleepers:
        stop(p, signal.SIGKILL, 5)

    py_mem = python_memory_bench()

    odoo_res = None if only_sched else odoo_bench()
    req_res = None if only_sched else requests_bench()
    gpu_res = None if only_sched else gpu_bench()
    flight_res = None if only_sched else flight_bench()

    say("")
    say("summary")
    say(f"  sched: BPF cost per pipe op vs runqlat: "
        + (f"{sched_ratio:.2f}x" if sched_ratio else "n/a")
        + f"; throughput on/off {tr:.3f}, CPU/op on/off {cr:.3f} (median of {PAIRS} pairs)")
    say(f"  block: BPF cost per I/O vs biolatency -Q: "
        + (f"{blk_ratio:.2f}x" if blk_ratio else "n/a")
        + f"; throughput on/off {dtr:.3f}, CPU/op on/off {dcr:.3f}")
    say(f"  daemon VmRSS with {tracked} workers: {rss1 / 1024:.1f} MiB")
    say(f"  daemon memory with {PYMEM_WORKERS} profiled Python workers ({PYMEM_FUNCS} functions, "
        f"deep random stacks): VmRSS {py_mem['rss'] / 1024:.1f} MiB, RssAnon "
        f"{py_mem['anon'] / 1024:.1f} MiB, {py_mem['stacks']:.0f} stacks held")
    if only_sched:
        return
    say(f"  tcp: BPF cost per connection vs tcplife: "
        + (f"{tcp_ratio:.2f}x" if tcp_ratio else "n/a")
        + f"; throughput on/off {ttr:.3f}, CPU/op on/off {tcr:.3f}")
    pg_summary(pg_res)
    python_summary(py_res)
    odoo_summary(odoo_res)
    requests_summary(req_res)
    gpu_summary(gpu_res)
    flight_summary(flight_res)


PYMEM_WORKERS = int(os.environ.get("PYMEM_WORKERS", "4"))
PYMEM_FUNCS = int(os.environ.get("PYMEM_FUNCS", "6000"))
PYMEM_SECS = int(os.environ.get("PYMEM_SECS", "40"))
PYMEM_HZ = 997
PYMEM_WORKER = r"""
import os, random, setproctitle, sys, time
N = int(sys.argv[1])
src = "\n".join(f"def f{i}(g):\n    return g()" for i in range(N))
ns = {}
exec(compile(src, "/var/tmp/erpscope_bench_funcs.py", "exec"), ns)
fs = [ns[f"f{i}"] for i in range(N)]
for _ in range(int(sys.argv[2]) - 1):
    if os.fork() == 0:
        break
setproctitle.setproctitle(f"odoo: WorkerHTTP {os.getpid()} ")
rnd = random.Random(os.getpid())


def spin():
    t = time.thread_time() + 0.0005
    while time.thread_time() < t:
        pass


def chain(n):
    return spin() if n == 0 else fs[rnd.randrange(N)](lambda: chain(n - 1))


while True:
    chain(15)
"""


def python_memory_bench():
    """(iv) What the Python profile costs the daemon in memory, worst case:
    PYMEM_WORKERS forked workers calling PYMEM_FUNCS functions in random
    15-deep chains (every sample a new stack, 47 frames) at PYMEM_HZ for
    PYMEM_SECS. Code objects are cached per process, their names and the
    frames' texts once for all; stacks are held up to
    --python.profile-max-stacks (32768)."""
    say("")
    say(f"(iv) daemon memory with {PYMEM_WORKERS} profiled Python workers: {PYMEM_FUNCS} "
        f"functions in random 15-deep chains, --python.sample-frequency={PYMEM_HZ}, "
        f"{PYMEM_SECS} s")
    d, port, _ = start_erpscope(extra=(f"--python.sample-frequency={PYMEM_HZ}",))
    time.sleep(1.0)
    rss0, anon0 = vmrss(d.pid), _status(d.pid, "RssAnon")
    w = start([PY_BIN, "-c", PYMEM_WORKER, str(PYMEM_FUNCS), str(PYMEM_WORKERS)],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    gauges = {}
    for i in range(PYMEM_SECS // 10):
        time.sleep(10)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
        for line in text.splitlines():
            for name in ("erpscope_python_profile_stacks", "erpscope_python_code_objects",
                         "erpscope_python_names_bytes"):
                if line.startswith(name + " "):
                    gauges[name] = float(line.split()[1])
            if line.startswith('erpscope_python_profile_counts_dropped_total{reason="stack_limit"}'):
                gauges["dropped"] = float(line.split()[1])
        say(f"  {(i + 1) * 10:3d} s: VmRSS {vmrss(d.pid) / 1024:.1f} MiB, RssAnon "
            f"{_status(d.pid, 'RssAnon') / 1024:.1f} MiB; stacks "
            f"{gauges.get('erpscope_python_profile_stacks', 0):.0f}, code objects "
            f"{gauges.get('erpscope_python_code_objects', 0):.0f}, names "
            f"{gauges.get('erpscope_python_names_bytes', 0) / 1024:.0f} KiB, counts dropped at the "
            f"stack limit {gauges.get('dropped', 0):.0f}")
    res = {"rss": vmrss(d.pid), "anon": _status(d.pid, "RssAnon"),
           "stacks": gauges.get("erpscope_python_profile_stacks", 0)}
    say(f"  VmRSS {rss0 / 1024:.1f} -> {res['rss'] / 1024:.1f} MiB (peak "
        f"{vmhwm(d.pid) / 1024:.1f}), RssAnon {anon0 / 1024:.1f} -> {res['anon'] / 1024:.1f} MiB")
    try:
        os.killpg(w.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    stop(w, signal.SIGKILL, 5)
    stop(d)
    return res


def _status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def vmrss(pid):
    return _status(pid, "VmRSS")


def vmhwm(pid):
    return _status(pid, "VmHWM")


try:
    main()
except KeyboardInterrupt:
    say("bench: interrupted")
    sys.exit(130)
finally:
    cleanup()
PY
