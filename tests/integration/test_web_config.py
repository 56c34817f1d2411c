#!/usr/bin/python3.11
"""--web.config.file (exporter-toolkit's YAML: TLS, client certificates,
headers, basic auth, rate_limit) and --web.sensitive-endpoints.

Certificates are made with the openssl CLI in a temp dir; requests go
through curl and openssl s_client. The sensitive-endpoint checks come from
a network namespace the test makes (a veth pair on 10.213.77.0/30), never
from an outside address."""

import http.client
import os
import re
import shutil
import subprocess
import time
import warnings

import lib

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # Debian's python3.11 still has it: bcrypt through libxcrypt

NS = f"esweb{os.getpid()}"
HOST_IF, NS_IF = f"esh{os.getpid() % 100000}", f"esn{os.getpid() % 100000}"
HOST_IP, NS_IP = "10.213.77.1", "10.213.77.2"


def sh(*args, check=True, timeout=30, input=None):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode:
        raise lib.Failure(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[:300]}")
    return r


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1 signed by it, a client one
    signed by it, and a rogue client certificate signed by another CA."""
    def key_csr(name, cn):
        sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/{name}.key",
           "-out", f"{d}/{name}.csr", "-subj", f"/CN={cn}")

    def sign(name, ca, ext=None):
        args = ["openssl", "x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/{ca}.crt",
                "-CAkey", f"{d}/{ca}.key", "-CAcreateserial", "-out", f"{d}/{name}.crt",
                "-days", "2"]
        if ext:
            with open(f"{d}/{name}.ext", "w") as f:
                f.write(ext)
            args += ["-extfile", f"{d}/{name}.ext"]
        sh(*args)

    for ca in ("ca", "rogue"):
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
           f"{d}/{ca}.key", "-out", f"{d}/{ca}.crt", "-days", "2", "-subj", f"/CN=test {ca}")
    key_csr("server", "erpscope-test-server")
    sign("server", "ca", "subjectAltName=IP:127.0.0.1,IP:10.213.77.1,DNS:localhost\n")
    key_csr("server2", "erpscope-test-server-rotated")
    sign("server2", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    key_csr("client", "erpscope-test-client")
    sign("client", "ca")
    key_csr("rogue_client", "erpscope-test-rogue")
    sign("rogue_client", "rogue")


def bcrypt(password, cost=10):
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << cost))


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)  # a new inode, as editors and config management do


class WebDaemon(lib.Daemon):
    """lib.Daemon with its own listen address and readiness check (TLS and
    auth change what a plain GET /metrics gets)."""

    def __init__(self, *args, listen=None, ready=None, **kw):
        super().__init__(*args, **kw)
        self.listen = listen or f"127.0.0.1:{self.port}"
        self.ready = ready or (lambda: http_status(self.port, "/metrics") == 200)

    def argv(self):
        return [lib.ERPSCOPE, f"--web.listen-address={self.listen}", "--log.level=debug",
                "--probes=procs"] + self.args

    def start(self):
        self.progs_before = lib.es_progs()
        self.logf = open(self.logpath, "wb")
        lib.log(f"starting {' '.join(self.argv())}")
        self.proc = lib.spawn(self.argv(), stdout=self.logf, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while not self.ready():
            if self.proc.poll() is not None:
                raise lib.Failure(f"erpscope exited with {self.proc.returncode}; log:\n"
                                  f"{self.log_tail()}")
            if time.monotonic() - t0 > self.ready_timeout:
                raise lib.Failure(f"erpscope not ready within {self.ready_timeout}s; log:\n"
                                  f"{self.log_tail()}")
            time.sleep(0.1)
        self.own_ids = lib.held_prog_ids(self.pid)
        return self


def http_status(port, path, headers=None, host="127.0.0.1", auth=None):
    """The status of a plain-HTTP GET, or None when the connection fails."""
    h = dict(headers or {})
    if auth:
        import base64
        h["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    c = http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.request("GET", path, headers=h)
        r = c.getresponse()
        r.read()
        return r.status
    except OSError:
        return None
    finally:
        c.close()


def curl(url, *args, netns=None):
    """(status code or 0, headers text, curl's exit status)."""
    argv = ["curl", "-sS", "-o", "/dev/null", "-D", "-", "-w", "\n%{http_code}",
            "--max-time", "10", *args, url]
    if netns:
        argv = ["ip", "netns", "exec", netns] + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    lines = r.stdout.rstrip("\n").split("\n")
    code = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    return code, "\n".join(lines[:-1]), r.returncode


def s_client(port, *args):
    """openssl s_client's summary: (protocol, cipher), ("", "") when no handshake."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    m = re.search(r"^New, (\S+), Cipher is (\S+)", r.stdout, re.M)
    if not m or m.group(1) == "(NONE)":
        return "", "", r.stdout
    proto = re.search(r"^\s*Protocol\s*: (\S+)", r.stdout, re.M)
    return proto.group(1) if proto else m.group(1), m.group(2), r.stdout


def test_tls(t, d):
    port = lib.free_port()
    url = f"https://127.0.0.1:{port}/metrics"
    cacert = ("--cacert", f"{d}/ca.crt")
    client = ("--cert", f"{d}/client.crt", "--key", f"{d}/client.key")
    cfg = f"{d}/tls.yml"
    write(cfg, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
               "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
               "  min_version: TLS12\n"
               "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
               "    X-Content-Type-Options: nosniff\n")
    ready = lambda: curl(url, *cacert, *client)[0] == 200  # noqa: E731
    with WebDaemon(f"--web.config.file={cfg}", port=port, ready=ready) as dm:
        code, hdrs, _ = curl(url, *cacert, *client)
        t.check(code == 200, "TLS with --cacert and a client certificate the CA signed: 200",
                f"got {code}")
        t.check(re.search(r"^X-Frame-Options: deny\r?$", hdrs, re.M | re.I) and
                re.search(r"^X-Content-Type-Options: nosniff\r?$", hdrs, re.M | re.I),
                "http_server_config.headers are sent", hdrs.replace("\r\n", " | "))
        code, _, rc = curl(url, *cacert)
        t.check(code != 200 and rc != 0,
                "RequireAndVerifyClientCert: a client without a certificate is refused",
                f"http {code}, curl exit {rc}")
        code, _, rc = curl(url, *cacert, "--cert", f"{d}/rogue_client.crt", "--key",
                           f"{d}/rogue_client.key")
        t.check(code != 200 and rc != 0,
                "RequireAndVerifyClientCert: a certificate from another CA is refused",
                f"http {code}, curl exit {rc}")
        code, _, rc = curl(f"http://127.0.0.1:{port}/metrics")
        t.check(code != 200 and rc != 0, "plain HTTP to the TLS port fails",
                f"http {code}, curl exit {rc}")
        code, _, rc = curl(url)
        t.check(rc == 60 or (code != 200 and rc != 0),
                "without --cacert curl does not trust the server", f"curl exit {rc}")
        proto, _, _ = s_client(port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
                               "-cert", f"{d}/client.crt", "-key", f"{d}/client.key")
        tls11_refused = proto == ""
        proto12, _, _ = s_client(port, "-tls1_2", "-cert", f"{d}/client.crt", "-key",
                                 f"{d}/client.key")
        t.check(proto12 == "TLSv1.2", "min_version TLS12: TLS 1.2 is accepted", proto12)

        # Certificate rotation: a new cert_file on disk is served without a restart.
        pid = dm.pid
        before = s_client(port, "-cert", f"{d}/client.crt", "-key", f"{d}/client.key")[2]
        t.check("erpscope-test-server" in before and "rotated" not in before,
                "the first certificate is served")
        for ext in ("crt", "key"):
            with open(f"{d}/server2.{ext}") as f:
                write(f"{d}/server.{ext}", f.read())
        rotated = lib.wait_for(
            lambda: "erpscope-test-server-rotated" in
            s_client(port, "-cert", f"{d}/client.crt", "-key", f"{d}/client.key")[2], 8)
        t.check(rotated and dm.pid == pid and dm.alive(),
                "a rotated certificate is served within seconds, same process")
        t.check(curl(url, *cacert, *client)[0] == 200, "TLS still works after the rotation")

    # The refusal above means something only if this client can speak TLS 1.1
    # at all: the same client against min_version: TLS10 must succeed.
    port = lib.free_port()
    write(cfg, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
               "  min_version: TLS10\n")
    with WebDaemon(f"--web.config.file={cfg}", port=port,
                   ready=lambda: curl(f"https://127.0.0.1:{port}/metrics", *cacert)[0] == 200):
        proto, _, _ = s_client(port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    if proto:
        t.check(tls11_refused, "min_version TLS12: TLS 1.1 is refused (the same client gets "
                f"{proto} from a min_version TLS10 server)")
    else:
        lib.log("NOTE  this OpenSSL will not speak TLS 1.1 even to a TLS10 server, so the "
                "TLS 1.1 refusal cannot be told apart from the client's own policy")
        t.check(tls11_refused, "min_version TLS12: no TLS 1.1 handshake")


def test_doc_examples(t, d):
    """exporter-toolkit's documented examples (docs/web-config.yml,
    testdata *.good.yml shapes): ciphers, curves, headers, VerifyIfGiven,
    rate_limit."""
    cacert = ("--cacert", f"{d}/ca.crt")
    cases = [
        ("someCiphers", "tls_server_config:\n  cert_file: \"server.crt\"\n"
         "  key_file: \"server.key\"\n  client_auth_type: \"VerifyClientCertIfGiven\"\n"
         "  client_ca_file: ca.crt\n  cipher_suites:\n"
         "  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n  min_version: TLS12\n"
         "  max_version: TLS12\n"),
        ("someCurves", "tls_server_config:\n  cert_file: \"server.crt\"\n"
         "  key_file: \"server.key\"\n  min_version: TLS13\n  curve_preferences:\n"
         "  - CurveP521\n"),
    ]
    for name, text in cases:
        port = lib.free_port()
        cfg = f"{d}/{name}.yml"
        write(cfg, text)
        url = f"https://127.0.0.1:{port}/metrics"
        with WebDaemon(f"--web.config.file={cfg}", port=port,
                       ready=lambda: curl(url, *cacert)[0] == 200):
            if name == "someCiphers":
                proto, cipher, _ = s_client(port)
                t.check((proto, cipher) == ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
                        "cipher_suites + max_version TLS12: the listed suite is chosen",
                        f"{proto} {cipher}")
                proto, _, _ = s_client(port, "-tls1_2", "-cipher",
                                       "ECDHE-RSA-AES256-GCM-SHA384")
                t.check(proto == "", "a suite not listed is refused", proto or "refused")
                proto, _, _ = s_client(port, "-tls1_3")
                t.check(proto == "", "max_version TLS12: TLS 1.3 is refused",
                        proto or "refused")
                code = curl(url, *cacert)[0]
                t.check(code == 200, "VerifyClientCertIfGiven: no certificate is fine",
                        str(code))
                code = curl(url, *cacert, "--cert", f"{d}/client.crt", "--key",
                            f"{d}/client.key")[0]
                t.check(code == 200, "VerifyClientCertIfGiven: a good certificate is fine",
                        str(code))
                code, _, rc = curl(url, *cacert, "--cert", f"{d}/rogue_client.crt", "--key",
                                   f"{d}/rogue_client.key")
                t.check(code != 200 and rc != 0,
                        "VerifyClientCertIfGiven: a certificate from another CA is refused",
                        f"http {code}, curl exit {rc}")
            else:
                _, _, out = s_client(port)
                t.check(re.search(r"Server Temp Key: ECDH, (secp521r1|P-521)", out),
                        "curve_preferences CurveP521: the key exchange uses P-521",
                        (re.findall(r"Server Temp Key: .*", out) or ["none"])[0])
                proto, _, _ = s_client(port, "-tls1_2")
                t.check(proto == "", "min_version TLS13: TLS 1.2 is refused",
                        proto or "refused")

    # docs/web-config.yml's shape: TLS, two users, rate_limit 1s burst 20.
    port = lib.free_port()
    cfg = f"{d}/doc.yml"
    write(cfg, "# TLS and basic authentication configuration example.\n"
               "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\n"
               "basic_auth_users:\n"
               f"  alice: {bcrypt('alice-pw')}\n  bob: {bcrypt('bob-pw')}\n\n"
               "rate_limit:\n  interval: \"1s\"\n  burst: 20\n")
    url = f"https://127.0.0.1:{port}/metrics"
    with WebDaemon(f"--web.config.file={cfg}", port=port,
                   ready=lambda: curl(url, *cacert)[0] == 401):
        time.sleep(1.5)  # the readiness polls took tokens: let the bucket refill
        codes = []
        for _ in range(26):
            codes.append(curl(url, *cacert, "-u", "bob:bob-pw")[0])
        ok, limited = codes.count(200), codes.count(429)
        t.check(20 <= ok <= 23 and ok + limited == 26,
                "rate_limit interval 1s burst 20: about 20 of 26 quick requests pass, the rest 429",
                f"{ok} x 200, {limited} x 429")


def test_basic_auth(t, d):
    port = lib.free_port()
    cfg = f"{d}/auth.yml"
    write(cfg, f"basic_auth_users:\n  alice: {bcrypt('wonderland')}\n")
    with WebDaemon(f"--web.config.file={cfg}", port=port,
                   ready=lambda: http_status(port, "/metrics") == 401) as dm:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        r = c.getresponse()
        r.read()
        t.check(r.status == 401 and r.getheader("WWW-Authenticate") == 'Basic realm="erpscope"',
                "no credentials: 401 with WWW-Authenticate: Basic realm=\"erpscope\"",
                f"{r.status} {r.getheader('WWW-Authenticate')}")
        c.close()
        st = http_status(port, "/metrics", auth="alice:wrong")
        t.check(st == 401, "a wrong password: 401", str(st))
        st = http_status(port, "/metrics", auth="mallory:wonderland")
        t.check(st == 401, "an unknown user: 401", str(st))
        st = http_status(port, "/metrics", auth="alice:wonderland")
        t.check(st == 200, "the right password: 200", str(st))
        st = http_status(port, "/events")
        t.check(st == 401, "loopback needs credentials too (as exporter-toolkit)", str(st))

        # A bcrypt at cost 10 costs tens of ms: 100 scrapes that each paid one
        # would take 100 times that. Measure one here, as the daemon would.
        h = bcrypt("x")
        t0 = time.monotonic()
        for _ in range(3):
            crypt.crypt("x", h)
        one = (time.monotonic() - t0) / 3
        t0 = time.monotonic()
        codes = [http_status(port, "/metrics", auth="alice:wonderland") for _ in range(100)]
        took = time.monotonic() - t0
        t.check(codes.count(200) == 100, "100 authenticated scrapes: all 200",
                f"{codes.count(200)} x 200")
        t.check(took < 100 * one / 4,
                "100 authenticated scrapes take far less than 100 bcrypt checks (cached)",
                f"{took:.2f}s for 100 scrapes, one bcrypt {one * 1000:.0f} ms, "
                f"100 would be {100 * one:.1f}s")

        # The file changes on disk: it applies without a restart.
        pid = dm.pid
        write(cfg, f"basic_auth_users:\n  bob: {bcrypt('builder')}\n")
        swapped = lib.wait_for(lambda: http_status(port, "/metrics", auth="bob:builder") == 200,
                               5, interval=0.2)
        t.check(swapped, "a new user in the file works within seconds, no restart")
        st = http_status(port, "/metrics", auth="alice:wonderland")
        t.check(st == 401, "the removed user (cached before) is refused", str(st))
        t.check(dm.pid == pid and dm.alive(), "same process")
        # A bad file on reload: logged, the old config stays.
        write(cfg, "basic_auth_users:\n  bob: [not a hash\n")
        logged = lib.wait_for(lambda: "web config not reloaded" in dm.log_text(), 5)
        t.check(logged, "a bad file on reload is logged")
        st = http_status(port, "/metrics", auth="bob:builder")
        t.check(st == 200, "a bad file on reload keeps the previous config", str(st))
        # SIGHUP rereads too (even when stat cannot tell).
        write(cfg, f"basic_auth_users:\n  carol: {bcrypt('c')}\n")
        os.kill(dm.pid, 1)
        ok = lib.wait_for(lambda: http_status(port, "/metrics", auth="carol:c") == 200, 5)
        t.check(ok, "SIGHUP rereads the file")


def test_bad_files(t, d):
    """A bad file at start: exit 2 and one line naming the key and line."""
    cases = [
        ("bad YAML", "tls_server_config:\n  cert_file: [x\n", r":\d+: yaml: "),
        ("unknown key", "tls_server_config:\n  cert_file: a\n  key_file: b\n  colour: red\n",
         r":4: tls_server_config: unknown key \"colour\""),
        ("unreadable cert", "tls_server_config:\n  key_file: server.key\n"
         "  cert_file: missing.crt\n", r":3: tls_server_config.cert_file: cannot read"),
        ("unknown top key", "basic_auth:\n  a: b\n", r":1: basic_auth: unknown key"),
        ("not a bcrypt hash", "basic_auth_users:\n  alice: secret\n",
         r":2: basic_auth_users.alice: not a bcrypt hash"),
        ("bad TLS version", "tls_server_config:\n  cert_file: server.crt\n"
         "  key_file: server.key\n  min_version: TLS9\n",
         r":4: tls_server_config.min_version: unknown TLS version"),
        ("forbidden header", "http_server_config:\n  headers:\n    Server: me\n",
         r":3: http_server_config.headers.Server: HTTP header can not be configured"),
        ("header value", "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
         r":3: http_server_config.headers.X-Frame-Options: invalid value"),
        ("CA without policy", "tls_server_config:\n  cert_file: server.crt\n"
         "  key_file: server.key\n  client_ca_file: ca.crt\n",
         r"client CA's have been configured without a Client Auth Policy"),
        ("key mismatch", "tls_server_config:\n  cert_file: server.crt\n"
         "  key_file: client.key\n", r":2: tls_server_config.cert_file: the certificate"),
    ]
    for what, text, want in cases:
        cfg = f"{d}/bad.yml"
        write(cfg, text)
        r = subprocess.run([lib.ERPSCOPE, f"--web.config.file={cfg}",
                            f"--web.listen-address=127.0.0.1:{lib.free_port()}"],
                           capture_output=True, text=True, timeout=30)
        err = r.stderr.strip()
        t.check(r.returncode == 2 and len(err.splitlines()) == 1 and re.search(want, err),
                f"{what} at start: exit 2 with one line naming key and line",
                f"exit {r.returncode}: {err[:240]}")


def make_netns():
    def cleanup():
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)
    lib.on_cleanup(cleanup)
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
    sh("ip", "link", "set", NS_IF, "netns", NS)
    sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    sh("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/30", "dev", NS_IF)
    sh("ip", "netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
    sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
    return cleanup


def test_sensitive(t, d):
    make_netns()
    port = lib.free_port()

    def remote(path, *args):
        return curl(f"http://{HOST_IP}:{port}{path}", *args, netns=NS)[0]

    with WebDaemon(port=port, listen=f"0.0.0.0:{port}"):
        t.check(remote("/metrics") == 200, "default: /metrics from another address: 200")
        for p in ("/queries", "/events", "/workers", "/profile", "/requests", "/nonexistent"):
            code = remote(p)
            t.check(code == 404, f"default: {p} from another address: 404", str(code))
        code = http_status(port, "/events")
        t.check(code == 200, "default: /events from loopback: 200", str(code))
        code = http_status(port, "/queries")
        t.check(code not in (404, None), "default: /queries from loopback is served", str(code))

    cfg = f"{d}/sens.yml"
    write(cfg, f"basic_auth_users:\n  prom: {bcrypt('scrape')}\n")
    with WebDaemon(f"--web.config.file={cfg}", "--web.sensitive-endpoints=auth", port=port,
                   listen=f"0.0.0.0:{port}",
                   ready=lambda: http_status(port, "/metrics") == 401):
        code = remote("/queries")
        t.check(code == 401, "auth: /queries from another address without credentials: 401",
                str(code))
        code = remote("/events", "-u", "prom:scrape")
        t.check(code == 200, "auth: /events from another address with credentials: 200",
                str(code))
        code = remote("/queries", "-u", "prom:scrape")
        t.check(code not in (401, 404, 0), "auth: /queries with credentials is served",
                str(code))
        code = remote("/metrics", "-u", "prom:scrape")
        t.check(code == 200, "auth: /metrics with credentials: 200", str(code))

    with WebDaemon("--web.sensitive-endpoints=off", port=port, listen=f"0.0.0.0:{port}"):
        code = http_status(port, "/events")
        t.check(code == 404, "off: /events from loopback: 404", str(code))
        t.check(http_status(port, "/metrics") == 200, "off: /metrics still 200")
    with WebDaemon("--web.sensitive-endpoints=all", port=port, listen=f"0.0.0.0:{port}"):
        code = remote("/events")
        t.check(code == 200, "all: /events from another address: 200", str(code))


def body(t):
    for tool in ("openssl", "curl", "ip"):
        if not shutil.which(tool):
            raise lib.Skip(f"{tool} is not installed (scripts/deps.sh)")
    d = lib.tempdir("erpscope-web-")
    make_pki(d)
    test_bad_files(t, d)
    test_basic_auth(t, d)
    test_sensitive(t, d)
    test_tls(t, d)
    # test_tls rotated server.crt to server2's; both are signed by the CA.
    test_doc_examples(t, d)


if __name__ == "__main__":
    lib.main(body)
