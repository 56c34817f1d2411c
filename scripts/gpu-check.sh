#!/bin/bash
# scripts/gpu-check.sh: the gpu poller against the real NVIDIA library, on a
# host with an NVIDIA GPU and driver (not part of `make test`: no GPU in CI).
# Needs root (the daemon's procs probe) and nvidia-smi.
#
# Starts build/erpscope --probes=procs --gpu.poll-interval=1s, runs a small
# CUDA-free load if one is available (GPU_LOAD, a command; by default ffmpeg
# encoding a test pattern with h264_nvenc when ffmpeg has that encoder;
# otherwise the GPUs idle), then CHECK_ROUNDS times reads /metrics and
# `nvidia-smi --query-gpu=... --format=csv` back to back and compares every
# per-device value: info labels (uuid, name, driver version, PCI bus id) and
# memory total exactly (to the MiB nvidia-smi prints), memory used within
# max(64 MiB, 1% of total) (nvidia-smi and NVML's _v2 may count reserved
# memory differently), temperature within 2 C, power within max(5 W, 10%),
# SM and memory clocks within 15%, GPU and memory utilization within 15
# points (both sampled over their own windows). A value is a mismatch only
# when no round matched. Prints a table, the daemon's CPU per poll and its
# VmRSS with the library loaded, and exits 1 on any mismatch (2 when it
# cannot run).
# Environment: ERPSCOPE (build/erpscope), NVML_LIBRARY (libnvidia-ml.so.1),
# GPU_LOAD (a command), CHECK_ROUNDS (5), CHECK_SECONDS (20: daemon run for
# the CPU figure).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "gpu-check: needs root (the daemon's procs probe)" >&2
	exit 2
fi
command -v nvidia-smi >/dev/null || { echo "gpu-check: nvidia-smi not found: not an NVIDIA host?" >&2; exit 2; }

exec /usr/bin/env python3 - "$@" <<'PY'
import os, re, shutil, signal, socket, subprocess, sys, time, urllib.request

ERPSCOPE = os.environ.get("ERPSCOPE", "build/erpscope")
LIB = os.environ.get("NVML_LIBRARY", "libnvidia-ml.so.1")
ROUNDS = int(os.environ.get("CHECK_ROUNDS", "5"))
SECONDS = float(os.environ.get("CHECK_SECONDS", "20"))
HZ = os.sysconf("SC_CLK_TCK")
MiB = 1 << 20
FIELDS = ("index,uuid,name,driver_version,pci.bus_id,utilization.gpu,utilization.memory,"
          "memory.used,memory.total,temperature.gpu,power.draw,clocks.sm,clocks.mem")
procs = []


def start(args, **kw):
    p = subprocess.Popen(args, start_new_session=True, stdin=subprocess.DEVNULL, **kw)
    procs.append(p)
    return p


def cleanup():
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=10)
            except Exception:
                os.killpg(p.pid, signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'^(erpscope_gpu_\w+)\{(.*)\} (\S+)$', line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
            out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def smi():
    rows = subprocess.run(["nvidia-smi", f"--query-gpu={FIELDS}", "--format=csv,noheader,nounits"],
                          capture_output=True, text=True, check=True).stdout.strip().splitlines()
    return [[x.strip() for x in r.split(",")] for r in rows]


def num(s):
    try:
        return float(s)
    except ValueError:
        return None  # [N/A], [Not Supported]


def get(m, name, **labels):
    want = {k: str(v) for k, v in labels.items()}
    for (n, ls), v in m.items():
        if n == name and all(dict(ls).get(k) == x for k, x in want.items()):
            return v
    return None


def compare(m, row):
    """[(what, gpu, erpscope, nvidia-smi, tolerance text, ok)] for one device."""
    g = row[0]
    out = []
    info = [dict(ls) for (n, ls), v in m.items() if n == "erpscope_gpu_info" and dict(ls).get("gpu") == g]
    i = info[0] if info else {}
    for key, col in (("uuid", 1), ("name", 2), ("driver_version", 3)):
        out.append((key, g, i.get(key), row[col], "exact", i.get(key) == row[col]))
    bus = (i.get("pci_bus_id") or "").upper()
    out.append(("pci_bus_id", g, bus, row[4].upper(), "exact", bus == row[4].upper()))

    def near(what, got, want, tol, text):
        ok = got is not None and want is not None and abs(got - want) <= tol
        if want is None and got is None:
            ok = True  # not supported by either
        out.append((what, g, got, want, text, ok))
    total = num(row[8])
    near("utilization", _x(get(m, "erpscope_gpu_utilization_ratio", gpu=g), 100), num(row[5]), 15, "15 points")
    near("memory_bandwidth", _x(get(m, "erpscope_gpu_memory_bandwidth_utilization_ratio", gpu=g), 100),
         num(row[6]), 15, "15 points")
    near("memory_total_mib", _x(get(m, "erpscope_gpu_memory_total_bytes", gpu=g), 1 / MiB), total, 1, "1 MiB")
    near("memory_used_mib", _x(get(m, "erpscope_gpu_memory_used_bytes", gpu=g), 1 / MiB), num(row[7]),
         max(64, (total or 0) * 0.01), "max(64 MiB, 1%)")
    near("temperature_c", get(m, "erpscope_gpu_temperature_celsius", gpu=g), num(row[9]), 2, "2 C")
    p = num(row[10])
    near("power_w", get(m, "erpscope_gpu_power_watts", gpu=g), p, max(5, (p or 0) * 0.1), "max(5 W, 10%)")
    for what, clock, col in (("clock_sm_mhz", "sm", 11), ("clock_mem_mhz", "memory", 12)):
        c = num(row[col])
        near(what, _x(get(m, "erpscope_gpu_clock_hertz", gpu=g, clock=clock), 1e-6), c,
             (c or 0) * 0.15, "15%")
    return out


def _x(v, k):
    return None if v is None else v * k


def main():
    if not os.access(ERPSCOPE, os.X_OK):
        print(f"gpu-check: {ERPSCOPE} is not built (make all)", file=sys.stderr)
        return 2
    load = os.environ.get("GPU_LOAD")
    if not load and shutil.which("ffmpeg"):
        enc = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
        if "h264_nvenc" in enc:
            load = ("ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=60 "
                    "-t 600 -c:v h264_nvenc -f null -")
    if load:
        print(f"gpu-check: load: {load}")
        start(["/bin/sh", "-c", load], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        print("gpu-check: no load available (set GPU_LOAD): the GPUs idle")
    port = free_port()
    log = open("/tmp/gpu-check-erpscope.log", "w")
    d = start([ERPSCOPE, f"--web.listen-address=127.0.0.1:{port}", "--probes=procs",
               "--gpu.poll-interval=1s", f"--gpu.nvml-library={LIB}"], stdout=log, stderr=log)
    time.sleep(3)
    m = scrape(port)
    if get(m, "erpscope_gpu_collector_up", collector="nvml") != 1:
        print("gpu-check: erpscope_gpu_collector_up{collector=\"nvml\"} is not 1; "
              "see /tmp/gpu-check-erpscope.log", file=sys.stderr)
        return 1
    best = {}
    for _ in range(ROUNDS):
        m = scrape(port)
        for row in smi():
            for r in compare(m, row):
                key = (r[0], r[1])
                if key not in best or (r[5] and not best[key][5]):
                    best[key] = r
        time.sleep(1)
    # cost: the daemon's CPU over a quiet window, per poll (its procs probe included)
    t0 = time.monotonic()
    with open(f"/proc/{d.pid}/stat") as f:
        v0 = f.read().rsplit(")", 1)[1].split()
    time.sleep(SECONDS)
    with open(f"/proc/{d.pid}/stat") as f:
        v1 = f.read().rsplit(")", 1)[1].split()
    cpu_us = (int(v1[11]) + int(v1[12]) - int(v0[11]) - int(v0[12])) * 1e6 / HZ
    polls = (time.monotonic() - t0)  # one poll a second
    with open(f"/proc/{d.pid}/status") as f:
        rss = next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
    ngpu = len(smi())
    print(f"{'value':<18} {'gpu':>3} {'erpscope':>42} {'nvidia-smi':>42} {'tolerance':>16}  ok")
    bad = 0
    for r in sorted(best.values(), key=lambda r: (r[1], r[0])):
        fmt = lambda x: "-" if x is None else (f"{x:.1f}" if isinstance(x, float) else str(x))
        print(f"{r[0]:<18} {r[1]:>3} {fmt(r[2]):>42} {fmt(r[3]):>42} {r[4]:>16}  "
              f"{'ok' if r[5] else 'MISMATCH'}")
        bad += not r[5]
    print(f"gpu-check: daemon CPU {cpu_us / polls:.0f} us per 1 s poll interval with {ngpu} GPU(s) "
          f"({cpu_us / polls / max(ngpu, 1):.0f} us per GPU, procs probe included; "
          f"10 ms resolution over {SECONDS:.0f} s); VmRSS with the library loaded {rss / 1024:.1f} MiB")
    print(f"gpu-check: {len(best) - bad} values match, {bad} mismatch")
    return 1 if bad else 0


try:
    rc = main()
finally:
    cleanup()
sys.exit(rc)
PY
