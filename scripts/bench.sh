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
#
# Environment: LOOPS (200000), ROUNDS (5), PAIRS (10), WORKERS (200),
# ERPSCOPE (build/erpscope), RUNQLAT (/usr/sbin/runqlat), BENCH_CPU (0).
# kernel.bpf_stats_enabled is set to 1 for the run and restored on exit; every
# process started here is stopped on exit, whatever happens.
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
import json, os, re, signal, socket, statistics, subprocess, sys, time, urllib.request

ERPSCOPE = os.environ.get("ERPSCOPE", "build/erpscope")
RUNQLAT = os.environ.get("RUNQLAT", "/usr/sbin/runqlat")
LOOPS = int(os.environ.get("LOOPS", "200000"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
PAIRS = int(os.environ.get("PAIRS", "10"))
WORKERS = int(os.environ.get("WORKERS", "200"))
CPU = os.environ.get("BENCH_CPU", "0")
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


def start_erpscope():
    port = free_port()
    before = progs()
    p = start([ERPSCOPE, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def main():
    global old_stats
    if not os.access(ERPSCOPE, os.X_OK):
        raise SystemExit(f"bench: {ERPSCOPE} not built (make all)")
    old_stats = subprocess.run(["sysctl", "-n", "kernel.bpf_stats_enabled"], capture_output=True,
                               text=True, check=True).stdout.strip()
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
    say(f"# erpscope bench: perf bench sched pipe -l {LOOPS} pinned to CPU {CPU}; "
        f"kernel {os.uname().release}, {os.cpu_count()} CPUs")
    workload()  # warm up

    # (i) per-event cost, alternating runqlat / erpscope
    have_runqlat = os.access(RUNQLAT, os.X_OK)
    if not have_runqlat:
        say(f"# {RUNQLAT} missing (apt install libbpf-tools): ours only")
    ours, theirs = {}, {}
    for rnd in range(ROUNDS):
        if have_runqlat:
            before = progs()
            rq = start([RUNQLAT, "3600", "1"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
            ids = {i for i in wait_new_progs(before, rq, "runqlat")
                   if not progs().get(i, {}).get("name", "").startswith("es_")}
            s0 = stats(ids)
            workload()
            s1 = stats(ids)
            stop(rq, signal.SIGINT)
            for name, (runs, ns) in per_event(s0, s1).items():
                theirs.setdefault(name, []).append((runs, ns))
        d, port, ids = start_erpscope()
        time.sleep(0.5)
        s0 = stats(ids)
        workload()
        s1 = stats(ids)
        stop(d)
        for name, (runs, ns) in per_event(s0, s1).items():
            ours.setdefault(name, []).append((runs, ns))
        say(f"#   round {rnd + 1}/{ROUNDS} done")

    def table(d):
        return {n: (statistics.median(r for r, _ in v), statistics.median(ns for _, ns in v))
                for n, v in d.items()}

    to, tt = table(ours), table(theirs)
    say("")
    say(f"(i) BPF ns per event, median of {ROUNDS} rounds (kernel.bpf_stats_enabled)")
    say(f"  {'tool':<9} {'program':<20} {'hook':<11} {'runs/round':>11} {'ns/event':>9} "
        f"{'vs runqlat':>10}")
    by_hook = {}
    for n, (runs, ns) in tt.items():
        by_hook[hook_of(n)] = ns
    for n, (runs, ns) in sorted(tt.items(), key=lambda x: hook_of(x[0])):
        say(f"  {'runqlat':<9} {n:<20} {hook_of(n):<11} {runs:>11.0f} {ns:>9.1f} {'':>10}")
    for n, (runs, ns) in sorted(to.items(), key=lambda x: hook_of(x[0])):
        ref = by_hook.get(hook_of(n))
        ratio = f"{ns / ref:.2f}x" if ref else "-"
        say(f"  {'erpscope':<9} {n:<20} {hook_of(n):<11} {runs:>11.0f} {ns:>9.1f} {ratio:>10}")
    tot_o = sum(r * ns for r, ns in to.values()) / LOOPS
    tot_t = sum(r * ns for r, ns in tt.values()) / LOOPS if tt else None
    say(f"  BPF ns per pipe op, all programs: erpscope {tot_o:.1f}"
        + (f", runqlat {tot_t:.1f}, ratio {tot_o / tot_t:.2f}x" if tot_t else ""))

    # (ii) A/B throughput: off, on, off, on ... The sysctl goes back first:
    # erpscope itself keeps run-time stats on while it runs (BPF_ENABLE_STATS),
    # so "on" includes their cost, as in production; "off" must not.
    subprocess.run(["sysctl", "-q", "-w", f"kernel.bpf_stats_enabled={old_stats}"], check=True)
    say("")
    say(f"(ii) throughput, {PAIRS} alternating off/on pairs "
        f"(kernel.bpf_stats_enabled={old_stats}; erpscope enables stats for itself)")
    pairs = []
    for i in range(PAIRS):
        off_ops, off_cpu = workload()
        d, port, _ = start_erpscope()
        time.sleep(0.3)
        on_ops, on_cpu = workload()
        stop(d)
        pairs.append((off_ops, on_ops, off_cpu, on_cpu))
        say(f"  pair {i + 1:>2}: off {off_ops:>9.0f} ops/s {off_cpu * 1e6:6.2f} us CPU/op | "
            f"on {on_ops:>9.0f} ops/s {on_cpu * 1e6:6.2f} us CPU/op | "
            f"ratio {on_ops / off_ops:.3f}")
    tr = statistics.median(on / off for off, on, _, _ in pairs)
    cr = statistics.median(onc / offc for _, _, offc, onc in pairs if offc > 0)
    say(f"  median ops/s ratio on/off: {tr:.3f} (throughput {(tr - 1) * 100:+.1f}%); "
        f"median CPU/op ratio on/off: {cr:.3f} (CPU per op {(cr - 1) * 100:+.1f}%)")

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

    say("")
    say("summary")
    say(f"  per-event cost vs runqlat (all programs, ns per pipe op): "
        + (f"{tot_o / tot_t:.2f}x" if tot_t else "n/a"))
    say(f"  throughput on/off (median of {PAIRS} pairs): {tr:.3f}; CPU/op on/off: {cr:.3f}")
    say(f"  daemon VmRSS with {tracked} workers: {rss1 / 1024:.1f} MiB")


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
