#!/usr/bin/python3.11
"""The README's two commands each work alone on a fresh machine: `make test`,
like `make run`, installs what is missing and mounts tracefs/bpffs before it
builds, and both scripts are quiet no-ops when everything is there, for root
and for an unprivileged user alike."""

import subprocess

import lib


def recipe(target):
    """The commands `make -n target` would run, in order."""
    r = subprocess.run(["make", "-n", "-C", lib.REPO, target], capture_output=True, text=True)
    return r.returncode, r.stdout.splitlines()


def first(lines, needle):
    for i, line in enumerate(lines):
        if needle in line:
            return i
    return None


def body(t):
    for target, last in (("test", "tests/run-all.sh"), ("run", "exec ")):
        rc, lines = recipe(target)
        t.require(rc == 0, f"make -n {target} exits 0", f"exit {rc}")
        deps, mounts, end = (first(lines, n) for n in ("scripts/deps.sh", "scripts/mounts.sh", last))
        t.check(deps is not None and end is not None and deps < end,
                f"make {target} runs scripts/deps.sh before {last.strip()}", f"at {deps}, {end}")
        t.check(mounts is not None and end is not None and mounts < end,
                f"make {target} runs scripts/mounts.sh before {last.strip()}", f"at {mounts}, {end}")

    # Everything is installed and mounted by now (the daemon tests need it):
    # both scripts must then say nothing and succeed, even without root.
    for script in ("scripts/deps.sh", "scripts/mounts.sh"):
        for who, prefix in (("root", []), ("nobody", ["setpriv", "--reuid=nobody", "--regid=nogroup",
                                                      "--clear-groups", "--"])):
            r = subprocess.run(prefix + [f"{lib.REPO}/{script}"], capture_output=True, text=True,
                               cwd="/")
            t.check(r.returncode == 0 and not r.stdout and not r.stderr,
                    f"{script} as {who} with everything there: exit 0, silent",
                    f"exit {r.returncode}, stdout {r.stdout[-200:]!r}, stderr {r.stderr[-200:]!r}")


if __name__ == "__main__":
    lib.main(body)
