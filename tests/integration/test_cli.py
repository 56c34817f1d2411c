#!/usr/bin/python3.11
"""The command line: --check, --help, --version, bad flags, the config file,
a listen address that is taken."""

import os
import re
import socket
import subprocess

import lib

FLAGS = ["--web.listen-address", "--web.telemetry-path", "--probes", "--strict", "--check",
         "--log.level", "--max-workers", "--procs.rescan-interval", "--bpf.attach-mode",
         "--config.file", "--help", "--version"]


def run(*args, timeout=60):
    """Runs erpscope to completion; a hang is reported as exit None."""
    p = lib.spawn([lib.ERPSCOPE] + list(args), stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True, errors="replace")
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        lib.kill_group(p)
        out, err = p.communicate()
        rc = None
        err += f"\n[test: still running after {timeout}s, killed]"
    return subprocess.CompletedProcess(p.args, rc, out, err)


def show(r):
    return f"exit {r.returncode}, stdout {r.stdout[-300:]!r}, stderr {r.stderr[-600:]!r}"


def error_lines(r):
    return [x for x in r.stderr.splitlines() if x.strip()]


def bad_flag(t, args, names, what):
    """args must exit 2 with exactly one line on stderr containing names."""
    r = run(*args)
    lines = error_lines(r)
    t.check(r.returncode == 2, f"{what}: exits 2", show(r))
    t.check(len(lines) == 1, f"{what}: a one-line error", f"{len(lines)} lines: {lines[:4]}")
    t.check(all(n in r.stderr for n in names), f"{what}: the error names {', '.join(names)}",
            f"stderr {r.stderr.strip()[:300]!r}")


def body(t):
    before = lib.es_progs()

    for mode in ("auto", "tp_btf", "raw_tp"):
        r = run("--check", "--strict", f"--bpf.attach-mode={mode}",
                "--web.listen-address=127.0.0.1:0")
        t.check(r.returncode == 0, f"--check --strict --bpf.attach-mode={mode} exits 0", show(r))
        left = lib.wait_progs_gone(before, 5.0)
        t.check(not left, f"--check ({mode}) leaves no es_ programs behind",
                lib.describe_progs(left))
    r = run("--check", "--strict")
    t.check(r.returncode == 0, "--check --strict (defaults) exits 0", show(r))

    r = run("--help")
    t.check(r.returncode == 0, "--help exits 0", show(r))
    listed = r.stdout.replace("--[no-]", "--")  # kingpin style: --[no-]strict
    missing = [f for f in FLAGS if f not in listed]
    t.check(not missing, "--help lists every flag on stdout", f"missing: {missing}")

    r = run("--version")
    t.check(r.returncode == 0, "--version exits 0", show(r))
    t.check(re.search(r"\d+\.\d+\.\d+", r.stdout + r.stderr) is not None,
            "--version prints a version number", show(r))

    bad_flag(t, ["--bogus"], ["--bogus"], "--bogus")
    bad_flag(t, ["--max-workers=abc"], ["max-workers"], "--max-workers=abc")
    bad_flag(t, ["--max-workers=0"], ["max-workers"], "--max-workers=0")
    bad_flag(t, ["--log.level=loud"], ["log.level"], "--log.level=loud")
    bad_flag(t, ["--bpf.attach-mode=kprobe"], ["bpf.attach-mode"], "--bpf.attach-mode=kprobe")
    bad_flag(t, ["--procs.rescan-interval=soon"], ["procs.rescan-interval"],
             "--procs.rescan-interval=soon")
    bad_flag(t, ["--config.file=/nonexistent/erpscope.conf"], ["/nonexistent/erpscope.conf"],
             "a missing config file")

    d = lib.tempdir()
    conf = os.path.join(d, "erpscope.conf")
    with open(conf, "w") as f:
        f.write("# erpscope configuration\n"
                "web.listen-address = 127.0.0.1:9\n"
                "\n"
                "log.levle = debug\n")
    bad_flag(t, [f"--config.file={conf}"], [f"{conf}:4"], "a config file with a typo key")

    # A good config file is used, and a flag wins over it.
    port_file, port_flag = lib.free_port(), lib.free_port()
    with open(conf, "w") as f:
        f.write(f"# erpscope configuration\nweb.listen-address = 127.0.0.1:{port_file}\n"
                "log.level = info\nprobes = procs,sched\n")
    with lib.Daemon(f"--config.file={conf}", port=port_flag) as dm:
        st, _, _ = lib.http_get(dm.port, "/metrics")
        t.check(st == 200, "with a config file, the --web.listen-address flag wins",
                f"GET :{port_flag}/metrics -> {st}")
        try:
            lib.http_get(port_file, "/metrics", timeout=2)
            t.check(False, "nothing listens on the config file's port when the flag overrides it")
        except OSError:
            t.check(True, "nothing listens on the config file's port when the flag overrides it")
    with open(conf, "w") as f:
        f.write(f"web.listen-address = 127.0.0.1:{port_file}\n")
    dm = lib.Daemon(f"--config.file={conf}", port=port_file)
    dm.argv = lambda: [lib.ERPSCOPE, f"--config.file={conf}"]  # the file alone names the port
    with dm:
        st, _, _ = lib.http_get(port_file, "/metrics")
        t.check(st == 200, "web.listen-address from the config file is used", f"status {st}")

    # An address that is already taken.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = run(f"--web.listen-address=127.0.0.1:{port}")
        t.check(r.returncode != 0, "a taken listen address makes erpscope exit non-zero",
                show(r))
        t.check(re.search(r"in use|EADDRINUSE", r.stderr, re.I) is not None
                and str(port) in r.stderr,
                "the error says the address is in use and which one",
                f"stderr tail {r.stderr.strip()[-400:]!r}")
    left = lib.wait_progs_gone(before, 5.0)
    t.check(not left, "after the failed start no es_ programs are left", lib.describe_progs(left))


if __name__ == "__main__":
    lib.main(body)
