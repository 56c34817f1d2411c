#!/usr/bin/python3.11
"""Host resources: the host poller's numbers agree with /proc and statvfs,
and rise with loopback traffic, direct writes to the root disk and CPU hogs
run by the test itself."""

import mmap
import os
import socket
import threading
import time

import lib

INTERVAL = 5.0  # the host poller's tick
PSEUDO_FS = {"proc", "sysfs", "tmpfs", "devtmpfs", "cgroup", "cgroup2", "overlay", "bpf",
             "tracefs", "debugfs", "securityfs", "pstore", "mqueue", "hugetlbfs", "autofs",
             "configfs", "devpts", "binfmt_misc", "nsfs", "ramfs", "squashfs", "fusectl",
             "nfs", "nfs4", "cifs"}
CPU_MODES = {"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}
HZ = os.sysconf("SC_CLK_TCK")
NET_BYTES = 20 * 1024 * 1024
DIRECT_WRITES = 100
BLOCK = 4096


def cpu_total(m):
    return m.total("erpscope_host_cpu_seconds_total")


def wait_tick(d, m0, timeout=2 * INTERVAL + 2):
    """Scrapes until the poller has ticked since m0 (its CPU seconds moved);
    returns that scrape. The poller's numbers are then at most one scrape old."""
    k0 = cpu_total(m0)
    deadline = time.monotonic() + timeout
    while True:
        m = d.scrape()
        if cpu_total(m) != k0:
            return m
        if time.monotonic() > deadline:
            raise lib.Failure(f"the host poller did not tick within {timeout}s "
                              f"(cpu seconds stayed {k0})")
        time.sleep(0.05)


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * (1024 if v.strip().endswith("kB") else 1)
    return out


def proc_stat_cpu():
    """[user, nice, system, idle, iowait, irq, softirq, steal] ticks."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    assert fields[0] == "cpu"
    return [int(x) for x in fields[1:9]]


def busy_ratio(a, b):
    d = [max(0, y - x) for x, y in zip(a, b)]
    idle = d[3] + d[4]
    return (sum(d) - idle) / sum(d) if sum(d) else None


def unescape(s):
    for esc, c in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        s = s.replace(esc, c)
    return s


def mounts():
    """[(major, minor, mountpoint, fstype, source)] of /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            lf, rf = left.split(), right.split()
            ma, mi = lf[2].split(":")
            out.append((int(ma), int(mi), unescape(lf[4]), rf[0], unescape(rf[1])))
    return out


def root_mount():
    """The mount visible at / (the last one mounted there)."""
    return [m for m in mounts() if m[2] == "/"][-1]


def disk_of(major, minor):
    """The whole disk under a block device (vda for vda1), or None."""
    p = f"/sys/dev/block/{major}:{minor}"
    if not os.path.exists(p):
        return None
    real = os.path.realpath(p)
    if os.path.exists(os.path.join(real, "partition")):
        real = os.path.dirname(real)
    return os.path.basename(real)


def netdev_ifaces():
    with open("/proc/net/dev") as f:
        return {line.split(":", 1)[0].strip() for line in f if ":" in line}


def pressure(res):
    """{kind: seconds} of /proc/pressure/<res>."""
    out = {}
    with open(f"/proc/pressure/{res}") as f:
        for line in f:
            parts = line.split()
            tot = [p for p in parts if p.startswith("total=")]
            if tot:
                out[parts[0]] = int(tot[0][6:]) / 1e6
    return out


def fs_series(m, name):
    return {s[0]["mountpoint"]: (s[0], s[1]) for s in m.series(name)}


def whole_disks():
    with open("/proc/diskstats") as f:
        names = [line.split()[2] for line in f if len(line.split()) >= 14]
    return {n for n in names if os.path.exists("/sys/block/" + n.replace("/", "!"))
            and not n.startswith(("loop", "ram", "zram"))}


def check_static(t, d):
    """Right after a tick: memory, filesystems, interfaces, disks, CPU seconds
    and PSI against what /proc and statvfs say now."""
    # Devices may come and go while the test runs (other tests): the poller's
    # sets lie between what was there before and after its tick.
    ifs0, disks0 = netdev_ifaces(), whole_disks()
    m = wait_tick(d, d.scrape())
    mi = meminfo()
    st = os.statvfs("/")
    cpu_now = proc_stat_cpu()
    ncpu = os.cpu_count() or 1

    # Memory.
    want = 1 - mi["MemAvailable"] / mi["MemTotal"]
    got = m.value("erpscope_host_memory_utilization_ratio")
    t.near(got, want, 0, "memory utilization is 1 - MemAvailable/MemTotal", abs_tol=0.02)
    t.check(m.value("erpscope_host_memory_bytes", kind="total") == mi["MemTotal"],
            "memory total is MemTotal", f"{m.value('erpscope_host_memory_bytes', kind='total')} "
            f"vs {mi['MemTotal']}")
    t.check(m.value("erpscope_host_memory_bytes", kind="swap_total") == mi.get("SwapTotal", 0),
            "swap total is SwapTotal")
    for kind in ("available", "swap_free"):
        t.check(m.value("erpscope_host_memory_bytes", kind=kind) is not None,
                f'erpscope_host_memory_bytes{{kind="{kind}"}} is there')

    # CPU: the counters are /proc/stat's, the ratio a share.
    modes = {s[0]["mode"] for s in m.series("erpscope_host_cpu_seconds_total")}
    t.check(modes == CPU_MODES, "cpu seconds have the eight modes", f"{sorted(modes)}")
    total_now = sum(cpu_now) / HZ
    got = cpu_total(m)
    # the scrape lags the tick by at most one scrape (~0.2 s) on every CPU
    # (+0.1: the poller keeps modes that step back, iowait, at their highest)
    t.between(got, total_now - ncpu * 1.0, total_now + 0.1,
              "cpu seconds since boot match /proc/stat at the tick")
    t.between(m.value("erpscope_host_cpu_utilization_ratio"), 0, 1,
              "cpu utilization is a ratio")

    # Filesystems: / with its own device and type, statvfs's numbers.
    used = fs_series(m, "erpscope_filesystem_used_ratio")
    size = fs_series(m, "erpscope_filesystem_size_bytes")
    avail = fs_series(m, "erpscope_filesystem_avail_bytes")
    lib.log(f"filesystems: {sorted((k, v[0]['device'], v[0]['fstype']) for k, v in used.items())}")
    ma, mi_, mp, fstype, source = root_mount()
    t.require("/" in used, "a filesystem is reported for /", f"{sorted(used)}")
    lbl, ratio = used["/"]
    t.check(lbl["device"] == source and lbl["fstype"] == fstype,
            "/ is reported with its device and fstype",
            f"got {lbl['device']} {lbl['fstype']}, mountinfo says {source} {fstype}")
    dfused = st.f_blocks - st.f_bfree
    want = dfused / (dfused + st.f_bavail)
    t.near(ratio, want, 0, "used ratio of / is df's Use% from statvfs", abs_tol=0.01)
    t.check(size["/"][1] == st.f_blocks * st.f_frsize, "size of / is f_blocks * f_frsize",
            f"{size['/'][1]} vs {st.f_blocks * st.f_frsize}")
    t.near(avail["/"][1], st.f_bavail * st.f_frsize, 0.01, "avail of / is f_bavail * f_frsize",
           abs_tol=64 << 20)
    t.check(set(used) == set(size) == set(avail),
            "used, size and avail cover the same filesystems")
    types = {v[0]["fstype"] for v in used.values()}
    t.check(not types & PSEUDO_FS, "no pseudo, overlay or network filesystem is reported",
            f"types {sorted(types)}")
    t.check(not {"/proc", "/sys", "/dev", "/dev/shm", "/run"} & set(used),
            "no tmpfs or proc mount point is reported", f"{sorted(used)}")
    known = {(x[2], x[4], x[3]) for x in mounts()}
    odd = [k for k, v in used.items() if (k, v[0]["device"], v[0]["fstype"]) not in known]
    t.check(not odd, "every reported filesystem is a mount of mountinfo", f"{odd}")
    visible = {x[2]: (x[0], x[1]) for x in mounts()}  # the last mount at each place
    by_dev = {}
    for k in used:
        by_dev.setdefault(visible.get(k), []).append(k)
    dup = {f"{a}:{b}": v for (a, b), v in by_dev.items() if len(v) > 1}
    t.check(not dup, "each filesystem (major:minor) is reported once", f"{dup}")

    # Interfaces and disks.
    ifs = {s[0]["interface"] for s in m.series("erpscope_network_bytes_total")}
    ifs1 = netdev_ifaces()
    if len(ifs0 | ifs1) <= 64:
        t.check(ifs0 & ifs1 <= ifs <= ifs0 | ifs1,
                "every interface of /proc/net/dev is reported, lo included",
                f"got {sorted(ifs)}, /proc/net/dev {sorted(ifs1)}")
    t.check("lo" in ifs, "lo is among the interfaces")
    disks = {s[0]["device"] for s in m.series("erpscope_disk_ops_total")}
    disks1 = whole_disks()
    t.check(disks0 & disks1 <= disks <= disks0 | disks1,
            "disks are the whole disks of /proc/diskstats, loop and ram aside",
            f"got {sorted(disks)}, /proc/diskstats and /sys/block {sorted(disks1)}")

    # Pressure stall information, when the kernel has it.
    if os.path.exists("/proc/pressure"):
        t.check(m.types.get("erpscope_pressure_seconds_total") == "counter",
                "erpscope_pressure_seconds_total is there", f"{m.types.get('erpscope_pressure_seconds_total')}")
        for res in ("cpu", "memory", "io"):
            try:
                now = pressure(res)
            except OSError as e:
                lib.log(f"/proc/pressure/{res}: {e}")
                continue
            got = {s[0]["kind"]: s[1] for s in m.series("erpscope_pressure_seconds_total",
                                                          resource=res)}
            t.check(set(got) == set(now), f"pressure of {res} has the kinds its file has",
                    f"got {sorted(got)}, file {sorted(now)}")
            for k, v in got.items():
                t.between(v, now[k] - INTERVAL - 1, now[k] + 1e-6,
                          f"pressure {res}/{k} is the file's total= (at most one tick old)")
    else:
        t.check("erpscope_pressure_seconds_total" not in m.types,
                "no pressure family without /proc/pressure")


def check_network(t, d):
    """20 MB through a loopback TCP pair show up on lo, both ways."""
    m0 = d.scrape()
    rx0 = m0.value("erpscope_network_bytes_total", interface="lo", direction="receive")
    tx0 = m0.value("erpscope_network_bytes_total", interface="lo", direction="transmit")
    t.require(rx0 is not None and tx0 is not None, "lo is reported")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = [0]

    def sink():
        c, _ = srv.accept()
        with c:
            while True:
                b = c.recv(1 << 20)
                if not b:
                    break
                got[0] += len(b)

    th = threading.Thread(target=sink)
    th.start()
    with socket.create_connection(srv.getsockname()) as c:
        chunk = b"x" * (1 << 20)
        for _ in range(NET_BYTES // len(chunk)):
            c.sendall(chunk)
    th.join(30)
    srv.close()
    t.require(got[0] == NET_BYTES, f"the sink got {NET_BYTES} bytes", f"{got[0]}")
    m1 = wait_tick(d, d.scrape())
    rx1 = m1.value("erpscope_network_bytes_total", interface="lo", direction="receive")
    tx1 = m1.value("erpscope_network_bytes_total", interface="lo", direction="transmit")
    t.between(rx1 - rx0, NET_BYTES, NET_BYTES * 3, "lo receive bytes rose by what the test sent")
    t.between(tx1 - tx0, NET_BYTES, NET_BYTES * 3, "lo transmit bytes rose by what the test sent")
    p0 = m0.value("erpscope_network_packets_total", interface="lo", direction="receive")
    p1 = m1.value("erpscope_network_packets_total", interface="lo", direction="receive")
    t.check(p1 - p0 >= NET_BYTES // 65536, "lo packets rose too", f"delta {p1 - p0}")


def root_dir():
    """A writable directory on the root filesystem."""
    dev = os.stat("/").st_dev
    for base in ("/var/tmp", "/root", "/"):
        if os.path.isdir(base) and os.stat(base).st_dev == dev:
            return lib.tempdir("erpscope-host-", base)
    raise lib.Failure("no directory on the root filesystem to write to")


def check_disk(t, d):
    """100 O_DIRECT 4 KiB writes to a file on / count on /'s whole disk."""
    ma, mi, _, _, _ = root_mount()
    disk = disk_of(ma, mi)
    t.require(disk is not None, "the root filesystem is on a block device",
              f"{ma}:{mi} is disk {disk}")
    path = os.path.join(root_dir(), "direct")
    # Allocate and write the blocks first, so the direct writes below are
    # plain overwrites: one request each, nothing for the filesystem to add.
    with open(path, "wb") as f:
        f.write(b"\0" * (DIRECT_WRITES * BLOCK))
        f.flush()
        os.fsync(f.fileno())
    m0 = d.scrape()
    ops0 = m0.value("erpscope_disk_ops_total", device=disk, op="write")
    by0 = m0.value("erpscope_disk_bytes_total", device=disk, op="write")
    t.require(ops0 is not None, f"disk {disk} of / is reported",
              f"{[s[0] for s in m0.series('erpscope_disk_ops_total')]}")
    buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT wants
    buf.write(b"erpscope" * (BLOCK // 8))
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        for i in range(DIRECT_WRITES):
            os.pwrite(fd, buf, i * BLOCK)
        os.fsync(fd)
    finally:
        os.close(fd)
    m1 = wait_tick(d, d.scrape())
    ops1 = m1.value("erpscope_disk_ops_total", device=disk, op="write")
    by1 = m1.value("erpscope_disk_bytes_total", device=disk, op="write")
    t.check(ops1 - ops0 >= DIRECT_WRITES,
            f"write ops of {disk} rose by at least the {DIRECT_WRITES} direct writes",
            f"delta {ops1 - ops0:.0f}")
    t.check(by1 - by0 >= DIRECT_WRITES * BLOCK,
            f"write bytes of {disk} rose by at least {DIRECT_WRITES * BLOCK}",
            f"delta {by1 - by0:.0f}")


def check_cpu(t, d):
    """Every CPU busy for 6 s from just after a tick: the next tick's ratio
    says so, and matches /proc/stat over the same interval."""
    n = max(2, os.cpu_count() or 1)
    code = "import time\ne = time.monotonic() + 6\nwhile time.monotonic() < e: pass\n"
    m0 = wait_tick(d, d.scrape())
    s0 = proc_stat_cpu()
    hogs = [lib.spawn([lib.PYTHON, "-c", code]) for _ in range(n)]
    m1 = wait_tick(d, m0)
    s1 = proc_stat_cpu()
    r = m1.value("erpscope_host_cpu_utilization_ratio")
    t.between(r, 0.4, 1.0, f"cpu utilization with {n} CPU hogs on {os.cpu_count()} CPUs")
    own = busy_ratio(s0, s1)
    t.near(r, own, 0, "cpu utilization matches /proc/stat over the same interval",
           abs_tol=0.1)
    for h in hogs:
        h.wait(30)
    c0 = {s[0]["mode"]: s[1] for s in m0.series("erpscope_host_cpu_seconds_total")}
    c1 = {s[0]["mode"]: s[1] for s in m1.series("erpscope_host_cpu_seconds_total")}
    back = [k for k in c0 if c1.get(k, 0) < c0[k]]
    t.check(not back, "cpu seconds never go backwards", f"{back}")
    t.check(c1["user"] + c1["system"] - c0["user"] - c0["system"] > 0.4 * INTERVAL,
            "user+system seconds rose with the hogs",
            f"delta {c1['user'] + c1['system'] - c0['user'] - c0['system']:.2f}s")


def body(t):
    with lib.Daemon() as d:
        m = d.scrape()
        for fam, typ in [("erpscope_host_cpu_utilization_ratio", "gauge"),
                         ("erpscope_host_cpu_seconds_total", "counter"),
                         ("erpscope_host_memory_utilization_ratio", "gauge"),
                         ("erpscope_host_memory_bytes", "gauge"),
                         ("erpscope_filesystem_used_ratio", "gauge"),
                         ("erpscope_filesystem_size_bytes", "gauge"),
                         ("erpscope_filesystem_avail_bytes", "gauge"),
                         ("erpscope_disk_ops_total", "counter"),
                         ("erpscope_disk_bytes_total", "counter"),
                         ("erpscope_network_bytes_total", "counter"),
                         ("erpscope_network_packets_total", "counter")]:
            t.check(m.types.get(fam) == typ, f"family {fam} is a {typ} from the first scrape",
                    f"TYPE {m.types.get(fam)!r}")
        check_static(t, d)
        check_network(t, d)
        check_disk(t, d)
        check_cpu(t, d)


if __name__ == "__main__":
    lib.main(body)
