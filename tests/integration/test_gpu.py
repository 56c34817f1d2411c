#!/usr/bin/python3.11
"""The gpu poller against a fake libnvidia-ml.so.1 built here from
tests/fake/fake_nvml.c (two GPUs with known values; see its header): every
per-device value exact, the versioned-name fallbacks taken, the call device 1
does not support skipped without an error, a titled worker's 1 GiB and 40%
SM use (its SM seconds against the fake's own clock, its energy counter at
250 W) in /metrics and /workers, an untracked process under other/all,
device 1 lost without touching device 0; then NVML's init failing, and no
library at all followed by the library appearing (picked up by the retry a
minute later, without a restart). The daemon stays healthy throughout."""

import json
import os
import shutil
import subprocess
import time

import lib

GiB = 1 << 30
MiB = 1 << 20
LOST_AFTER = 15  # polls of device 1 before it answers GPU_IS_LOST (1 s apart)
FAKE_SRC = os.path.join(lib.REPO, "tests", "fake", "fake_nvml.c")
DEV0 = dict(util=0.37, membw=0.12, used=10 * GiB, total=40 * GiB, temp=61, power=250,
            sm=1410e6, mem=1215e6, throttled={"sw_power_cap"})
DEV1 = dict(util=0.05, membw=0.03, used=1 * GiB, total=16 * GiB, temp=45, power=70,
            sm=585e6, mem=5000e6, throttled={"gpu_idle"})
REASONS = ("gpu_idle", "applications_clocks_setting", "sw_power_cap", "hw_slowdown",
           "sync_boost", "sw_thermal_slowdown", "hw_thermal_slowdown",
           "hw_power_brake_slowdown", "display_clock_setting")


def build_fake(d):
    out = os.path.join(d, "libnvidia-ml.so.1")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", out, FAKE_SRC], check=True)
    return out


def gpu_args(path):
    return ["--probes=procs", "--gpu.poll-interval=1s", f"--gpu.nvml-library={path}"]


def with_env(env, fn):
    """Runs fn() with env added to os.environ (the daemon inherits it)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return fn()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def log_lines(d, *needles):
    return [x for x in d.log_text().splitlines() if all(n in x for n in needles)]


def check_device(t, m, gpu, want, ecc):
    g = str(gpu)
    t.check(m.value("erpscope_gpu_utilization_ratio", gpu=g) == want["util"],
            f"gpu {g} utilization", f"{m.value('erpscope_gpu_utilization_ratio', gpu=g)}")
    t.check(m.value("erpscope_gpu_memory_bandwidth_utilization_ratio", gpu=g) == want["membw"],
            f"gpu {g} memory bandwidth utilization")
    # _v2's used (the fake's v1 adds 512 MiB of reserved memory to it)
    t.check(m.value("erpscope_gpu_memory_used_bytes", gpu=g) == want["used"],
            f"gpu {g} memory used from nvmlDeviceGetMemoryInfo_v2",
            f"{m.value('erpscope_gpu_memory_used_bytes', gpu=g)}")
    t.check(m.value("erpscope_gpu_memory_total_bytes", gpu=g) == want["total"],
            f"gpu {g} memory total")
    t.check(m.value("erpscope_gpu_temperature_celsius", gpu=g) == want["temp"],
            f"gpu {g} temperature")
    t.check(m.value("erpscope_gpu_power_watts", gpu=g) == want["power"], f"gpu {g} power")
    t.check(m.value("erpscope_gpu_clock_hertz", gpu=g, clock="sm") == want["sm"],
            f"gpu {g} SM clock")
    t.check(m.value("erpscope_gpu_clock_hertz", gpu=g, clock="memory") == want["mem"],
            f"gpu {g} memory clock")
    thr = {d["reason"]: v for d, v in m.series("erpscope_gpu_throttled", gpu=g)}
    t.check(thr == {r: (1 if r in want["throttled"] else 0) for r in REASONS},
            f"gpu {g} throttle reasons through nvmlDeviceGetCurrentClocksThrottleReasons",
            f"{thr}")
    eccs = {d["type"]: v for d, v in m.series("erpscope_gpu_ecc_errors_total", gpu=g)}
    t.check(eccs == ecc, f"gpu {g} ECC errors", f"{eccs}")


def scenario_fake(t, fake):
    worker = lib.spawn(["/usr/bin/python3.11", "-c",
                        "import os, setproctitle, time\n"
                        "setproctitle.setproctitle(f'odoo: WorkerCron {os.getpid()} gpudb')\n"
                        "time.sleep(600)\n"])
    pid = str(worker.pid)
    env = {"FAKE_NVML_PID": pid, "FAKE_NVML_LOST_AFTER": str(LOST_AFTER)}
    d = with_env(env, lambda: lib.Daemon(*gpu_args(fake)).start())
    t0 = time.monotonic()
    lib.wait_worker(d, worker.pid, role="odoo_cron")

    def worker_listed():
        m = d.scrape()
        return m if m.value("erpscope_gpu_process_memory_bytes", gpu="0", role="odoo_cron",
                            worker=pid) is not None else None
    m = lib.wait_for(worker_listed, 10, what="the worker's GPU memory series")
    t.check(time.monotonic() - t0 < LOST_AFTER - 3, "device 1 is not lost yet at the checks",
            f"{time.monotonic() - t0:.1f}s after start")
    info = {d_["gpu"]: d_ for d_, v in m.series("erpscope_gpu_info") if v == 1}
    t.check(set(info) == {"0", "1"}, "erpscope_gpu_info for both devices", f"{info}")
    t.check(info.get("0", {}) == {"gpu": "0", "uuid": "GPU-11111111-2222-3333-4444-555555555555",
                                  "name": "Fake GPU A100", "driver_version": "550.54.15",
                                  "pci_bus_id": "00000000:17:00.0"},
            "gpu 0 info labels", f"{info.get('0')}")
    check_device(t, m, 0, DEV0, {"corrected": 7, "uncorrected": 1})
    # ECC is NOT_SUPPORTED on device 1: no series, no error, one debug line per call
    check_device(t, m, 1, DEV1, {})
    t.check(not m.series("erpscope_gpu_collector_errors_total"),
            "NOT_SUPPORTED is no error", f"{m.series('erpscope_gpu_collector_errors_total')}")
    for call in ("ecc_corrected", "ecc_uncorrected"):
        n = len(log_lines(d, "call not supported", "gpu=1", f"call={call}"))
        t.check(n == 1, f"one debug line for device 1's unsupported {call}", f"{n}")
    t.check(m.value("erpscope_gpu_collector_up", collector="nvml") == 1, "nvml up")
    t.check(m.value("erpscope_gpu_collector_up", collector="drm") == 1, "drm up")
    t.check(m.value("erpscope_gpu_process_memory_bytes", gpu="0", role="odoo_cron",
                    worker=pid) == GiB, "the worker's GPU memory: 1 GiB")
    t.check(m.value("erpscope_gpu_process_memory_bytes", gpu="0", role="other",
                    worker="all") == 256 * MiB, "an untracked process's 256 MiB under other")
    t.check(m.value("erpscope_gpu_process_memory_bytes", gpu="1", role="other",
                    worker="all") == 0, "nothing on device 1")

    # SM seconds against the fake's clock: its energy grows 250 J per second
    a = d.scrape()
    time.sleep(6)
    b = d.scrape()
    elapsed = (b.value("erpscope_gpu_energy_joules_total", gpu="0") -
               a.value("erpscope_gpu_energy_joules_total", gpu="0")) / 250.0

    def sm(x, role, w):
        return x.value("erpscope_gpu_process_sm_seconds_total", gpu="0", role=role, worker=w)
    t.check(elapsed > 4, "the energy counter advanced with time", f"{elapsed:.2f}s")
    t.near(sm(b, "odoo_cron", pid) - sm(a, "odoo_cron", pid), 0.40 * elapsed, 0.05,
           "the worker's SM seconds: 40% of the elapsed time")
    t.near(sm(b, "other", "all") - sm(a, "other", "all"), 0.10 * elapsed, 0.05,
           "the untracked process's SM seconds under other: 10%")

    st, _, body = lib.http_get(d.port, "/workers?format=json")
    ws = {str(w["pid"]): w for w in json.loads(body)["workers"]} if st == 200 else {}
    g = ws.get(pid, {}).get("gpu", [])
    t.check(len(g) == 1 and g[0]["gpu"] == "0" and g[0]["memory_bytes"] == GiB and
            abs((g[0]["utilization_ratio"] or 0) - 0.4) < 0.01,
            "/workers (JSON) shows the worker's GPU memory and utilisation", f"{g}")
    st, _, body = lib.http_get(d.port, "/workers")
    t.check(b"gpu 0: memory=1024.0MiB utilization=40%" in body,
            "/workers (text) shows the worker's GPU line")

    # device 1 falls off the bus: its series go, device 0's stay
    def lost():
        x = d.scrape()
        return x if not x.series("erpscope_gpu_info", gpu="1") else None
    m = lib.wait_for(lost, LOST_AFTER + 10, what="device 1 to be lost")
    time.sleep(1.5)
    m = d.scrape()
    ones = [n for (n, ls) in m.order if n.startswith("erpscope_gpu_") and ("gpu", "1") in ls]
    t.check(not ones, "no series of the lost device", f"{ones[:5]}")
    check_device(t, m, 0, DEV0, {"corrected": 7, "uncorrected": 1})
    t.check(m.value("erpscope_gpu_collector_up", collector="nvml") == 0,
            "nvml up 0 while a device is lost")
    t.check((m.value("erpscope_gpu_collector_errors_total", collector="nvml",
                     error="GPU_IS_LOST") or 0) >= 1, "GPU_IS_LOST counted")
    lines = log_lines(d, "cause=GPU_IS_LOST")
    t.check(len(lines) == 1 and "level=warn" in lines[0] and "gpu=1" in lines[0],
            "one log line names the lost device", f"{lines}")
    e0 = m.value("erpscope_gpu_energy_joules_total", gpu="0")
    time.sleep(2.5)
    m = d.scrape()
    t.check(m.value("erpscope_gpu_energy_joules_total", gpu="0") > e0,
            "device 0 still polled after device 1 was lost")
    t.check(m.value("erpscope_probe_up", probe="procs") == 1, "the procs probe unaffected")
    d.stop()
    lib.kill_group(worker)


def scenario_init_fails(t, fake):
    d = with_env({"FAKE_NVML_MODE": "initfail"}, lambda: lib.Daemon(*gpu_args(fake)).start())
    time.sleep(2.5)
    m = d.scrape()
    t.check(m.value("erpscope_gpu_collector_up", collector="nvml") == 0, "init fails: nvml up 0")
    t.check(m.value("erpscope_gpu_collector_errors_total", collector="nvml",
                    error="DRIVER_NOT_LOADED") == 1, "init fails: DRIVER_NOT_LOADED counted once")
    t.check(not m.series("erpscope_gpu_info"), "init fails: no device series")
    lines = log_lines(d, "NVML not available")
    t.check(len(lines) == 1 and "level=info" in lines[0] and "cause=DRIVER_NOT_LOADED" in lines[0]
            and "step=init" in lines[0], "init fails: one log line naming the cause", f"{lines}")
    t.check(m.value("erpscope_probe_up", probe="procs") == 1, "init fails: daemon healthy")
    d.stop()


def scenario_no_library(t, fake, tmp):
    path = os.path.join(tmp, "later", "libnvidia-ml.so.1")
    d = lib.Daemon(*gpu_args(path)).start()
    t0 = time.monotonic()
    time.sleep(2.5)
    m = d.scrape()
    t.check(m.value("erpscope_gpu_collector_up", collector="nvml") == 0, "no library: nvml up 0")
    t.check(m.value("erpscope_gpu_collector_up", collector="drm") == 1, "no library: drm up")
    t.check(m.value("erpscope_gpu_collector_errors_total", collector="nvml",
                    error="LIBRARY_NOT_FOUND") == 1, "no library: LIBRARY_NOT_FOUND once")
    lines = log_lines(d, "gpu:")
    t.check(len(lines) == 1 and "level=info" in lines[0] and "cause=LIBRARY_NOT_FOUND" in lines[0],
            "no library: one log line", f"{lines}")
    t.check(m.value("erpscope_probe_up", probe="procs") == 1, "no library: daemon healthy")
    # the library appears: the retry, a minute after the first try, loads it
    os.makedirs(os.path.dirname(path))
    shutil.copy(fake, path)

    def up():
        x = d.scrape()
        return x if x.value("erpscope_gpu_collector_up", collector="nvml") == 1 else None
    m = lib.wait_for(up, 75, interval=1, what="NVML to come up after the library appeared")
    took = time.monotonic() - t0
    t.between(took, 55, 75, "recovered at the one-minute retry, without a restart")
    t.check(len(m.series("erpscope_gpu_info")) == 2, "recovered: both devices")
    t.check(m.value("erpscope_gpu_power_watts", gpu="0") == 250, "recovered: device 0 polled")
    t.check(len(log_lines(d, "gpu: NVML up")) == 1, "recovered: one log line")
    d.stop()


def body(t):
    tmp = lib.tempdir()
    fake = build_fake(tmp)
    scenario_fake(t, fake)
    scenario_init_fails(t, fake)
    scenario_no_library(t, fake, tmp)


if __name__ == "__main__":
    lib.main(body)
