#!/usr/bin/python3.11
"""What clients may cost erpscope's HTTP server.

Slow clients: 300 connections each send half a request (no blank line)
and keep quiet. Then, from a well-behaved client, the median of 5
scrapes of /metrics answers within 100 ms (before the fix: 18 s, the
half-open connections held every place for MHD's 10 s timeout and the
scrape waited in the backlog), and the server closes all 300 within 5 s
of their connect (the 2 s header timeout, swept every 100 ms);
erpscope_web_connections_closed_total{reason="header_timeout"} counts
them.

A client that sends a byte every 0.3 s (activity that resets MHD's own
idle timeout) is closed 2 s after it connected all the same.

A flood: 200 connections each send GET / and keep the connection open
while a fork/exec storm fills the procs probe's ring buffer. With
--web.max-connections=64: exactly 64 answered 200 and 136 answered 503
(each served keep-alive connection holds its place), the counters say
the same per handler and code, and no ring-buffer drop or lost event was
counted during the flood.

Per client: 15 back-to-back GET /events (an expensive endpoint) with
--web.client-rate=10: the first 10 answered 200, at least one 429 after,
nothing else.
"""

import socket
import statistics
import subprocess
import threading
import time

import lib

HALF = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow\r\n"


def drops(m):
    """Every ring-buffer drop and lost-event counter, summed."""
    total = 0.0
    for (n, _), v in m.items():
        if n in ("erpscope_ringbuf_drops_total", "erpscope_events_dropped_total",
                 "erpscope_http_requests_lost_total"):
            total += v
    return total


def timed_scrape(port):
    t0 = time.monotonic()
    st, _, body = lib.http_get(port, "/metrics", timeout=30)
    return st, time.monotonic() - t0


def closed(s):
    """True once the server closed s (EOF or reset), False while open."""
    s.setblocking(False)  # with a timeout, recv would wait for it
    try:
        s.recv(4096)
        return True  # EOF, or an answer before the close
    except BlockingIOError:
        return False
    except OSError:
        return True


def slow_clients(t, d):
    socks, born = [], []
    t_open = time.monotonic()
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        s.sendall(HALF)
        socks.append(s)
        born.append(time.monotonic())
    opened = time.monotonic() - t_open
    lib.log(f"300 half-open connections in {opened:.2f} s")
    time.sleep(0.3)
    times = []
    for _ in range(5):
        st, dt = timed_scrape(d.port)
        t.check(st == 200, "a scrape beside 300 half-open connections is 200", f"{st}")
        times.append(dt)
    med = statistics.median(times)
    t.check(med < 0.1, "median of 5 scrapes beside 300 half-open connections < 100 ms",
            f"{[round(x * 1000, 1) for x in times]} ms")
    t.check(max(times) < 1.0, "no scrape beside them takes a second",
            f"max {max(times) * 1000:.0f} ms")
    # Younger than the header timeout: still open, the scrape needed none gone.
    now = time.monotonic()
    young = [s for s, b in zip(socks, born) if now - b < 1.5]
    still = sum(not closed(s) for s in young)
    t.check(still == len(young), "half-open connections younger than 1.5 s are still open",
            f"{still} of {len(young)} open")
    deadline = t_open + 5.0
    while time.monotonic() < deadline and not all(closed(s) for s in socks):
        time.sleep(0.1)
    n = sum(closed(s) for s in socks)
    t.check(n == 300, "the server closed every half-open connection within 5 s",
            f"{n} of 300 closed at {time.monotonic() - t_open:.2f} s")
    for s in socks:
        s.close()
    m = d.scrape()
    to = m.value("erpscope_web_connections_closed_total", reason="header_timeout")
    t.check(to >= 300, "header_timeout counts the 300", f"{to}")


def dribbler(t, d):
    """A byte every 0.3 s never completes the request: closed all the same."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    t0 = time.monotonic()
    gone = None
    for ch in HALF * 4:
        try:
            s.sendall(bytes([ch]))
        except OSError:
            gone = time.monotonic() - t0
            break
        time.sleep(0.3)
        if closed(s):
            gone = time.monotonic() - t0
            break
        s.setblocking(True)
        s.settimeout(5)
    s.close()
    t.check(gone is not None and 1.9 <= gone <= 3.5,
            "a client sending a byte every 0.3 s is closed 2 s after it connected",
            f"closed after {gone}")


def exec_storm(stop):
    while not stop.is_set():
        subprocess.run(["/bin/true"], check=False)


def flood(t, d):
    before = d.scrape()
    d0 = drops(before)
    stop = threading.Event()
    storm = threading.Thread(target=exec_storm, args=(stop,))
    storm.start()
    socks = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            socks.append(s)
        codes = {}
        for s in socks:
            head = b""
            while b"\r\n" not in head:
                c = s.recv(4096)
                if not c:
                    break
                head += c
            code = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "none"
            codes[code] = codes.get(code, 0) + 1
    finally:
        stop.set()
        storm.join()
        for s in socks:
            s.close()
    t.check(codes == {"200": 64, "503": 136},
            "200 connections at once: 64 served, 136 answered 503", f"{codes}")
    time.sleep(0.5)
    m = d.scrape()
    n503 = (m.value("erpscope_web_requests_total", 0.0, handler="/", code="503")
            - before.value("erpscope_web_requests_total", 0.0, handler="/", code="503"))
    t.check(n503 == 136, "erpscope_web_requests_total{handler=\"/\",code=\"503\"} grew by 136",
            f"{n503}")
    t.check(drops(m) == d0, "no ring-buffer drop or lost event during the flood",
            f"{d0} -> {drops(m)}")
    dur = m.value("erpscope_web_request_duration_seconds_count", 0.0, handler="/metrics")
    t.check(dur >= 1, "erpscope_web_request_duration_seconds{handler=\"/metrics\"} counts",
            f"{dur}")


def per_client(t, d):
    got = []
    for _ in range(15):
        st, _, _ = lib.http_get(d.port, "/events", timeout=10)
        got.append(st)
    t.check(got[:10] == [200] * 10 and 429 in got[10:] and set(got) <= {200, 429},
            "15 quick GET /events: the first 10 answered, then 429", f"{got}")


def body(t):
    with lib.Daemon("--web.max-connections=64", "--web.client-rate=10") as d:
        slow_clients(t, d)
        dribbler(t, d)
        flood(t, d)
        per_client(t, d)


if __name__ == "__main__":
    lib.main(body)
