// SPDX-License-Identifier: GPL-2.0
/*
 * Listen-address parsing, and a real round trip: the test drives httpd_run
 * from an epoll loop, as the daemon does, while a client thread sends raw
 * requests over TCP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "core/expo.h"
#include "core/http.h"
#include "core/negotiate.h"

/* Query numbers: what strtoul took as huge or as 0 is refused. */
static void test_parse_u64(void)
{
	static const struct {
		const char *in;
		int rc;
		uint64_t want;
	} cases[] = {
		{ "0", 0, 0 },
		{ "10", 0, 10 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -EINVAL, 0 },
		{ "99999999999999999999999", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "-0", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "1 ", -EINVAL, 0 },
		{ "1x", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0;
		int rc = http_parse_u64(cases[i].in, &v);

		if (rc != cases[i].rc || (!rc && v != cases[i].want))
			fprintf(stderr, "http_parse_u64(\"%s\"): rc %d, %llu\n", cases[i].in, rc,
				(unsigned long long)v);
		CHECK_INT(rc, cases[i].rc);
		if (!cases[i].rc)
			CHECK(v == cases[i].want);
	}
}

static void test_parse_listen(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	unsigned int len = 0;
	char buf[INET6_ADDRSTRLEN];

	CHECK_INT(http_parse_listen("127.0.0.1:9435", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET);
	CHECK_INT(len, sizeof(*sin));
	CHECK_INT(ntohs(sin->sin_port), 9435);
	CHECK_STR(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)), "127.0.0.1");

	CHECK_INT(http_parse_listen("[::1]:9435", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET6);
	CHECK_INT(len, sizeof(*sin6));
	CHECK_INT(ntohs(sin6->sin6_port), 9435);
	CHECK_STR(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)), "::1");

	/* ":port" is every address: the IPv6 wildcard, made dual-stack at bind. */
	CHECK_INT(http_parse_listen(":9435", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET6);
	CHECK(!memcmp(&sin6->sin6_addr, &in6addr_any, sizeof(in6addr_any)));
	CHECK_INT(ntohs(sin6->sin6_port), 9435);

	CHECK_INT(http_parse_listen("localhost:80", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET);
	CHECK_INT(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	CHECK_INT(ntohs(sin->sin_port), 80);

	CHECK_INT(http_parse_listen("0.0.0.0:0", &ss, &len), 0);
	CHECK_INT(http_parse_listen("[fe80::1:2]:65535", &ss, &len), 0);
	CHECK_INT(ntohs(sin6->sin6_port), 65535);

	static const char *const bad[] = {
		"",
		":",
		"9435",
		"127.0.0.1",
		"127.0.0.1:",
		"127.0.0.1:65536",
		"127.0.0.1:-1",
		"127.0.0.1:+80",
		"127.0.0.1:9435x",
		"127.0.0.1:123456",
		"127.0.0.256:80",
		"::1:9435",
		"[::1]",
		"[::1]9435",
		"[::1:9435",
		"[]:9435",
		"[127.0.0.1]:80",
		"example.com:80",
		" 127.0.0.1:80",
		"127.0.0.1 :80",
		"[::1%lo]:80",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = http_parse_listen(bad[i], &ss, &len);

		if (err != -EINVAL)
			fprintf(stderr, "accepted bad listen address \"%s\"\n", bad[i]);
		CHECK_INT(err, -EINVAL);
	}
	CHECK_INT(http_parse_listen(NULL, &ss, &len), -EINVAL);
}

/* Body of /metrics: big enough to be gzipped. */
static char *metrics_text(void)
{
	size_t n = 0, cap = 8192;
	char *s = malloc(cap);

	while (s && n + 64 < cap)
		n += (size_t)snprintf(s + n, cap - n, "erpscope_test_total{i=\"%zu\"} %zu\n", n, n);
	return s;
}

static int h_metrics(void *arg, struct http_exchange *x)
{
	char *text = metrics_text();
	int err;

	(void)arg;
	if (!text)
		return -ENOMEM;
	err = http_reply_text(x, 200, expo_content_type(negotiate_format(x->accept)), text);
	free(text);
	return err;
}

static int h_query(void *arg, struct http_exchange *x)
{
	const char *v = http_query(x, "name");

	(void)arg;
	return http_reply_text(x, 200, NULL, v ? v : "(none)");
}

static int h_fail(void *arg, struct http_exchange *x)
{
	(void)arg;
	(void)x;
	return -EIO;
}

static const struct http_route routes[] = {
	{ "/metrics", h_metrics, false },
	{ "/query", h_query, false },
	{ "/fail", h_fail, false },
};

static const struct http_limits lim = { .max_conns = 64, .client_rate = 0 };

struct resp {
	int status;
	char head[4096];
	char body[65536];
	size_t bodylen;
};

/* Sends raw, reads to EOF (requests say Connection: close). 0 or -errno. */
static int request(int family, int port, const char *raw, size_t rawlen, struct resp *r)
{
	struct sockaddr_storage ss = { 0 };
	struct timeval tv = { .tv_sec = 5 };
	char buf[sizeof(r->head) + sizeof(r->body)];
	size_t n = 0, len;
	char *end;
	int fd, err = 0;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, (socklen_t)len)) {
		err = -errno;
		goto out;
	}
	for (size_t off = 0; off < rawlen;) {
		ssize_t w = send(fd, raw + off, rawlen - off, MSG_NOSIGNAL);

		if (w <= 0) {
			/* The server may answer and close before taking it all. */
			break;
		}
		off += (size_t)w;
	}
	for (;;) {
		ssize_t got = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno != ECONNRESET) {
			err = -errno;
			goto out;
		}
		if (got <= 0 || (n += (size_t)got) == sizeof(buf) - 1)
			break;
	}
	buf[n] = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
		err = -EPROTO;
		goto out;
	}
	end = strstr(buf, "\r\n\r\n");
	if (!end || (size_t)(end - buf) >= sizeof(r->head)) {
		err = -EPROTO;
		goto out;
	}
	memcpy(r->head, buf, (size_t)(end - buf) + 2);
	r->bodylen = n - (size_t)(end + 4 - buf);
	memcpy(r->body, end + 4, r->bodylen);
out:
	close(fd);
	return err;
}

static int get(int family, int port, const char *raw, struct resp *r)
{
	return request(family, port, raw, strlen(raw), r);
}

/* Value of a response header (case-insensitive name), or "". */
static const char *hdr(const struct resp *r, const char *name)
{
	static char val[256];
	const char *p = r->head;
	size_t n = strlen(name);

	val[0] = 0;
	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (!strncasecmp(p, name, n) && p[n] == ':') {
			const char *v = p + n + 1, *e;

			while (*v == ' ')
				v++;
			e = strstr(v, "\r\n");
			snprintf(val, sizeof(val), "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
			break;
		}
	}
	return val;
}

static int gunzip(const void *in, size_t inlen, char *out, size_t cap, size_t *outlen)
{
	z_stream zs = { 0 };
	int ret;

	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return -1;
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)inlen;
	zs.next_out = (Bytef *)out;
	zs.avail_out = (uInt)cap;
	ret = inflate(&zs, Z_FINISH);
	*outlen = zs.total_out;
	inflateEnd(&zs);
	return ret == Z_STREAM_END ? 0 : -1;
}

struct client {
	int family; /* of the address the requests go to */
	int port;
	bool v6; /* also try ::1 (the server listens on the dual-stack wildcard) */
	atomic_int done;
};

#define REQ(m, path, extra) m " " path " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" extra "\r\n"

static void *client_main(void *arg)
{
	struct client *c = arg;
	static struct resp r;
	char *expect = metrics_text(), *plain = malloc(65536);
	size_t plainlen = 0;
	int p = c->port, f = c->family;

	CHECK_INT(get(f, p, REQ("GET", "/metrics", ""), &r), 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(hdr(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
	CHECK_STR(hdr(&r, "Content-Encoding"), "");
	CHECK_INT(r.bodylen, strlen(expect));
	CHECK(r.bodylen == strlen(expect) && !memcmp(r.body, expect, r.bodylen));

	/* Prometheus' own headers: OpenMetrics, gzip. */
	CHECK_INT(get(f, p,
		      REQ("GET", "/metrics",
			  "Accept: application/openmetrics-text;version=1.0.0,"
			  "application/openmetrics-text;version=0.0.1;q=0.75,"
			  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
			  "Accept-Encoding: gzip\r\n"),
		      &r),
		  0);
	CHECK_INT(r.status, 200);
	CHECK_STR(hdr(&r, "Content-Type"),
		  "application/openmetrics-text; version=1.0.0; charset=utf-8");
	CHECK_STR(hdr(&r, "Content-Encoding"), "gzip");
	CHECK_STR(hdr(&r, "Vary"), "Accept-Encoding");
	CHECK(r.bodylen < strlen(expect));
	CHECK_INT(gunzip(r.body, r.bodylen, plain, 65536, &plainlen), 0);
	CHECK(plainlen == strlen(expect) && !memcmp(plain, expect, plainlen));

	CHECK_INT(get(f, p, REQ("GET", "/metrics", "Accept-Encoding: gzip;q=0\r\n"), &r), 0);
	CHECK_STR(hdr(&r, "Content-Encoding"), "");

	/* Keep-alive: two pipelined requests on one connection, both answered. */
	CHECK_INT(get(f, p,
		      "GET /query?name=one HTTP/1.1\r\nHost: t\r\n\r\n" REQ("GET",
									    "/query?name=two", ""),
		      &r),
		  0);
	CHECK_INT(r.status, 200);
	CHECK(strstr(r.body, "one") == r.body);
	CHECK(strstr(r.body, "HTTP/1.1 200 OK\r\n") != NULL);
	CHECK(strstr(r.body, "two") != NULL);

	/* HEAD: headers only. */
	CHECK_INT(get(f, p, REQ("HEAD", "/metrics", ""), &r), 0);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.bodylen, 0);

	/* The query string is not part of the path, and handlers can read it. */
	CHECK_INT(get(f, p, REQ("GET", "/query?name=odoo%20db&x=1", ""), &r), 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "odoo db");

	CHECK_INT(get(f, p, REQ("GET", "/nope", ""), &r), 0);
	CHECK_INT(r.status, 404);
	CHECK(strstr(r.body, "not found") != NULL);
	CHECK_INT(get(f, p, REQ("GET", "/metrics/", ""), &r), 0);
	CHECK_INT(r.status, 404);

	CHECK_INT(get(f, p, REQ("POST", "/metrics", "Content-Length: 5\r\n") "hello", &r), 0);
	CHECK_INT(r.status, 405);
	CHECK_STR(hdr(&r, "Allow"), "GET, HEAD");
	CHECK_INT(get(f, p, REQ("DELETE", "/metrics", ""), &r), 0);
	CHECK_INT(r.status, 405);

	CHECK_INT(get(f, p, REQ("GET", "/fail", ""), &r), 0);
	CHECK_INT(r.status, 500);

	/* Malformed request lines: MHD answers 400 and the server keeps going. */
	CHECK_INT(get(f, p, "GET /metrics BANANA/1.1\r\nHost: t\r\n\r\n", &r), 0);
	CHECK_INT(r.status, 400);
	CHECK_INT(get(f, p, "GET /metrics HTTP/1.1 extra\r\nHost: t\r\n\r\n", &r), 0);
	CHECK_INT(r.status, 400);
	CHECK_INT(get(f, p, REQ("GET", "/metrics", "Content-Length: x\r\n"), &r), 0);
	CHECK_INT(r.status, 400);
	/* No space at all: MHD 0.9.75 just closes the connection. */
	CHECK_INT(get(f, p, "GARBAGE\r\n\r\n", &r), -EPROTO);
	/* Headers past the connection memory limit: refused, not buffered. */
	{
		size_t n = 40000;
		char *big = malloc(n + 128);

		if (big) {
			int len = snprintf(big, 128, "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: ");

			memset(big + len, 'a', n);
			memcpy(big + len + n, "\r\n\r\n", 5);
			CHECK_INT(request(f, p, big, strlen(big), &r), 0);
			CHECK(r.status >= 400 && r.status < 500);
			free(big);
		}
	}
	CHECK_INT(get(f, p, REQ("GET", "/metrics", ""), &r), 0);
	CHECK_INT(r.status, 200);

	if (c->v6) {
		CHECK_INT(get(AF_INET6, p, REQ("GET", "/query?name=v6", ""), &r), 0);
		CHECK_INT(r.status, 200);
		CHECK_STR(r.body, "v6");
	}
	free(expect);
	free(plain);
	atomic_store(&c->done, 1);
	return NULL;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The daemon's loop in miniature: epoll on httpd_fd, timeout from MHD. */
static void serve_until_done(struct httpd *h, int ep, struct client *c)
{
	uint64_t deadline = now_ms() + 30000;
	struct epoll_event out;

	while (!atomic_load(&c->done) && now_ms() < deadline) {
		int t = httpd_timeout_ms(h);

		/* Short cap: the loop also watches for the client thread's end. */
		if (t < 0 || t > 50)
			t = 50;
		epoll_wait(ep, &out, 1, t);
		httpd_run(h);
	}
}

static void run_server(const char *listen, int family, bool v6)
{
	struct client c = { .family = family, .v6 = v6 };
	struct epoll_event ev = { .events = EPOLLIN };
	struct httpd *h, *h2;
	pthread_t th;
	char addr[64];
	int ep, err = 1;

	h = httpd_start(listen, routes, sizeof(routes) / sizeof(routes[0]), &lim, NULL, &err);
	CHECK(h != NULL);
	CHECK_INT(err, 0);
	if (!h)
		return;
	c.port = httpd_port(h);
	CHECK(c.port > 0);

	/* The same port again: NULL and -EADDRINUSE, not a crash. */
	snprintf(addr, sizeof(addr), family == AF_INET6 ? "[::1]:%d" : "127.0.0.1:%d", c.port);
	h2 = httpd_start(addr, routes, 1, &lim, NULL, &err);
	CHECK(h2 == NULL);
	CHECK_INT(err, -EADDRINUSE);
	httpd_stop(h2);

	ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0);
	CHECK(httpd_fd(h) >= 0);
	CHECK_INT(epoll_ctl(ep, EPOLL_CTL_ADD, httpd_fd(h), &ev), 0);
	/* From here until the join only the client thread counts checks. */
	CHECK_INT(pthread_create(&th, NULL, client_main, &c), 0);
	serve_until_done(h, ep, &c);
	pthread_join(th, NULL);
	CHECK(atomic_load(&c.done));
	close(ep);
	httpd_stop(h);
}

static bool have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = in6addr_loopback };
	bool ok = fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a));

	if (fd >= 0)
		close(fd);
	return ok;
}

int main(void)
{
	struct httpd *h;
	int err = 0;

	test_parse_u64();
	test_parse_listen();

	h = httpd_start("nonsense", routes, 1, &lim, NULL, &err);
	CHECK(h == NULL);
	CHECK_INT(err, -EINVAL);

	run_server("127.0.0.1:0", AF_INET, false);
	/* All addresses: dual-stack where the host has IPv6, IPv4 otherwise. */
	run_server(":0", AF_INET, have_ipv6());
	if (have_ipv6())
		run_server("[::1]:0", AF_INET6, false);
	else
		fprintf(stderr, "SKIP [::1] listener: no IPv6 on this host\n");
	return check_summary("test_http");
}
